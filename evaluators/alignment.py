"""Question alignment: is the passage an answer rests on about what the question asks?

A claim can be fully supported by a source that answers another question: a sibling review
of another product, another year's event, the paragraph beside the right one. For each claim,
the sentence of its cited source that the claim rests on (most words in common) and its
neighbours form a window; the share of the question's content words found in that window is
the claim's alignment, and the answer's is its weakest claim's.

The anchor asks the same of the short answer: where do the answer's own words stand in the
sources, and is the question asked there? A model that answers from the wrong paragraph
names something that stands among other words than the question's (the classic sliding
window of reading-comprehension baselines, Richardson et al. 2013). It reads the short answer
rather than the claim, so it finds the place even where the cited sentence is long or the
claim paraphrases it. Pure Python.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from verirag.generators.short_answer import MAX_WORDS, STOP_WORDS, stem, words

# A full stop after a lone capital is an initial ("C. J. Anderson", "U.S. forces"), not a
# sentence's end: split there and a name's words never stand in one sentence.
_SENTENCE_END = re.compile(r"(?<![\s.(][A-Z]\.)(?<!^[A-Z]\.)(?<=[.!?])\s+|\n+")
# Words a question uses to ask rather than to say what it is about.
_ASKING = frozenset({"name", "many", "much", "called", "type", "kind", "one", "according"})


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOP_WORDS and w not in _ASKING}


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Each sentence of `text` as a (start, end) span, surrounding whitespace left out."""
    spans, start = [], 0
    for boundary in [*_SENTENCE_END.finditer(text), None]:
        end = boundary.start() if boundary else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = boundary.end() if boundary else end
    return spans


def rests_on(claim: str, source: str) -> tuple[int, int] | None:
    """The span of the sentence of `source` that has the most content words in common with
    `claim` (the first such sentence on a tie), as `source[start:end]`; None when no sentence
    shares one. What a reader is shown as the claim's evidence."""
    words_of_claim = content_stems(claim)
    best, best_shared = None, 0
    for start, end in sentence_spans(source):
        shared = len(words_of_claim & content_stems(source[start:end]))
        if shared > best_shared:
            best, best_shared = (start, end), shared
    return best


def rests_on_sources(claim: str, sources: Sequence[str]) -> tuple[int, int, int] | None:
    """Where `claim` rests among all `sources`: (source index from 0, start, end) of the
    sentence `rests_on` picks in the source where it shares the most content words with the
    claim (the earlier source on a tie); None when no sentence of any source shares one. Every
    source is read, not only the cited ones: the choice `bench/quote_grounding.py` measured."""
    words_of_claim = content_stems(claim)
    best, best_shared = None, 0
    for number, source in enumerate(sources):
        span = rests_on(claim, source)
        if span is None:
            continue
        shared = len(words_of_claim & content_stems(source[span[0] : span[1]]))
        if shared > best_shared:
            best, best_shared = (number, *span), shared
    return best


def _window_share(asked: set[str], stems: Sequence[set[str]], at: int) -> float:
    """The share of `asked` in sentence `at` and its neighbours (`stems`: each sentence's)."""
    window = set().union(*stems[max(0, at - 1) : at + 2])
    return len(asked & window) / len(asked)


def _window_alignment(asked: set[str], claim: set[str], source: str) -> float:
    sentences = _sentences(source)
    if not sentences:
        return 0.0
    stems = [content_stems(s) for s in sentences]
    rests_on = max(range(len(stems)), key=lambda i: len(claim & stems[i]))
    return _window_share(asked, stems, rests_on)


def question_alignment(
    question: str, claims: Sequence[tuple[str, Sequence[int]]], sources: Sequence[str]
) -> float | None:
    """The answer's alignment in [0, 1]: `claims` are (text, cited source numbers from 1),
    `sources` the texts the model saw. A claim without a valid citation is read against every
    source. None when the question has no content word or the answer no claim."""
    asked = content_stems(question)
    if not asked or not claims or not sources:
        return None
    per_claim = []
    for text, citations in claims:
        cited = [sources[n - 1] for n in citations if 1 <= n <= len(sources)] or list(sources)
        claim = content_stems(text)
        per_claim.append(max(_window_alignment(asked, claim, s) for s in cited))
    return min(per_claim)


def anchor_alignment(question: str, short: str, sources: Sequence[str]) -> float | None:
    """The anchor in [0, 1]: for every source sentence that holds all of the short answer's
    content words, the share of the question's content words in that sentence and its
    neighbours; the best such place's. 0 when the model named no short answer or its words
    stand together in no source (nothing anchors it); None when the question has no content
    word or there are no sources."""
    asked = content_stems(question)
    if not asked or not sources:
        return None
    named = set(words(short)) - STOP_WORDS
    if not named:
        return 0.0
    best = 0.0
    for source in sources:
        sentences = _sentences(source)
        stems = [content_stems(s) for s in sentences]
        for i, sentence in enumerate(sentences):
            if named <= set(words(sentence)):
                best = max(best, _window_share(asked, stems, i))
    return best


def given_anchor(question: str, answer: str, sources: Sequence[str]) -> float | None:
    """The anchor of an answer someone else wrote, which is its own short answer when it is
    one (at most MAX_WORDS words); None for a longer text (a summary, an essay), whose words
    never stand in one sentence: not measurable, rather than 0."""
    if len(answer.split()) > MAX_WORDS:
        return None
    return anchor_alignment(question, answer, sources)
