"""Follow-up questions: a question asked after earlier turns of a conversation ("and when did
it open?") is rewritten as a standalone question before retrieval, since the sources can only
be searched for what the question itself says."""

from __future__ import annotations

import re
from collections.abc import Sequence

from verirag.core.records import Message
from verirag.generators.base import Generator
from verirag.generators.params import GenerationParams
from verirag.generators.prompts import PromptSet

MAX_TOKENS = 64
_LABEL = re.compile(r"^\s*(?:standalone question|rewritten question|question)\s*:\s*", re.I)
_QUOTES = "\"'“”‘’`"


def clean_rewrite(raw: str) -> str:
    """The model's first line without a leading label or surrounding quotes."""
    line = next((x for x in raw.strip().splitlines() if x.strip()), "")
    line = _LABEL.sub("", line).strip().strip(_QUOTES).strip()
    return " ".join(line.split())


def standalone_question(
    generator: Generator,
    prompts: PromptSet,
    history: Sequence[Message],
    question: str,
    max_chars: int,
) -> str:
    """`question` as one that stands without `history`; `question` itself when there is no
    history, or when the rewrite is empty or longer than a question may be (the original
    still retrieves something, a broken rewrite could retrieve anything)."""
    if not history:
        return question
    prompt = generator.render(prompts.rewrite_messages(list(history), question))
    reply = generator.generate(prompt, GenerationParams(max_tokens=MAX_TOKENS, stop=("\n",)))
    rewritten = clean_rewrite(reply.text)
    return rewritten if rewritten and len(rewritten) <= max_chars else question
