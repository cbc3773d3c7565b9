"""Short answers: the fewest words of a cited answer that answer the question.

The generator continues its own conversation (the answer prompt, its answer, then
`short_answer.txt`), greedily and for a few tokens, so the KV cache of the answer prompt is
reused. What it replies is kept only if it comes from the answer (a model that names words its
answer does not contain is not summarising it) and says more than the question already does.
"""

from __future__ import annotations

import re
import unicodedata

from verirag.generators.base import Generator
from verirag.generators.params import GenerationParams
from verirag.generators.prompts import PromptSet

MAX_TOKENS = 24
MAX_WORDS = 15
_NONE = frozenset({"none", "n a", "na", "unknown", "no answer", "not stated", "not given"})
_CITATION = re.compile(r"\s*\[\d+\]")
_LEAD = re.compile(r"^(?:short answer|answer)\s*:\s*", re.IGNORECASE)
# Words that carry no content: a short answer made only of them (and of the question's own
# words) answers nothing.
_STOP = frozenset(
    {
        *("a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with"),
        *("and", "or", "is", "are", "was", "were", "be", "been", "it", "its"),
        *("this", "that", "these", "those", "what", "which", "who", "whom", "whose"),
        *("when", "where", "why", "how", "does", "do", "did"),
    }
)
_YES_NO = frozenset({"yes", "no", "true", "false"})


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words, accents folded (so "Élysée" matches "Elysee")."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return re.findall(r"[a-z0-9]+", folded)


def clean_short_answer(raw: str) -> str:
    """The reply's first line without a label, citations, quotes or a final full stop; "" for
    a reply that declines or is not short."""
    line = raw.strip().splitlines()[0].strip() if raw.strip() else ""
    line = _CITATION.sub("", _LEAD.sub("", line)).strip().strip("\"'`*").strip()
    line = line.rstrip(".").strip()
    if not line or " ".join(words(line)) in _NONE or len(line.split()) > MAX_WORDS:
        return ""
    return line


def grounded_in(short: str, answer: str) -> bool:
    """At least half of the short answer's content words stand in the cited answer."""
    every = words(short)
    content = [w for w in every if w not in _STOP] or every
    if not content:
        return False
    answer_words = set(words(answer))
    return sum(w in answer_words for w in content) * 2 >= len(content)


def answers_question(short: str, question: str) -> bool:
    """A short answer that only repeats the question's words (or the titles the question
    names) does not answer it; yes and no do."""
    content = [w for w in words(short) if w not in _STOP]
    if any(w in _YES_NO for w in content):
        return True
    asked = set(words(question))
    return any(w not in asked for w in content)


def short_answer(
    generator: Generator,
    prompts: PromptSet,
    context_block: str,
    question: str,
    idk: str,
    answer: str,
) -> str:
    """The short answer to `question` taken from `answer`, or "" when there is none."""
    prompt = generator.render(prompts.short_answer_messages(context_block, question, idk, answer))
    reply = generator.generate(prompt, GenerationParams(max_tokens=MAX_TOKENS, stop=("\n",)))
    short = clean_short_answer(reply.text)
    return short if short and grounded_in(short, answer) else ""
