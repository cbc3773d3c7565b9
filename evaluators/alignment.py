"""Question alignment: is the passage an answer rests on about what the question asks?

A claim can be fully supported by a source that answers another question: a sibling review
of another product, another year's event, the paragraph beside the right one. For each claim,
the sentence of its cited source that the claim rests on (most words in common) and its
neighbours form a window; the share of the question's content words found in that window is
the claim's alignment, and the answer's is its weakest claim's. Pure Python.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from verirag.generators.short_answer import STOP_WORDS, stem, words

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Words a question uses to ask rather than to say what it is about.
_ASKING = frozenset({"name", "many", "much", "called", "type", "kind", "one", "according"})


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOP_WORDS and w not in _ASKING}


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _window_alignment(asked: set[str], claim: set[str], source: str) -> float:
    sentences = _sentences(source)
    if not sentences:
        return 0.0
    stems = [content_stems(s) for s in sentences]
    rests_on = max(range(len(stems)), key=lambda i: len(claim & stems[i]))
    window = set().union(*stems[max(0, rests_on - 1) : rests_on + 2])
    return len(asked & window) / len(asked)


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
