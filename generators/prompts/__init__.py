"""Prompt templates live in versioned text files beside this module (`v1/`, ...).

Every prompt starts with the same system message and source block, so the judge's prompts
share a prefix with the answer's and llama.cpp reuses the sources' KV cache across them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

from verirag.core.records import Message
from verirag.generators.prompts.quarantine import quarantine

log = logging.getLogger("verirag.prompts")

PROMPTS_DIR = Path(__file__).resolve().parent
FENCE_END = "SOURCES>>>"


def _defuse(text: str) -> str:
    """`text` with every fence marker replaced, however it is spaced or cased, so that no
    source can open or close the fence."""
    return _FENCE_MARK.sub(FENCE_REMOVED, text)


FENCE_REMOVED = "(fence marker removed)"
_FENCE_MARK = re.compile(
    r"s\s*o\s*u\s*r\s*c\s*e\s*s\s*>\s*>\s*>|<\s*<\s*<\s*s\s*o\s*u\s*r\s*c\s*e\s*s",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PromptSet:
    version: str
    system: str
    context: Template
    answer: Template
    judge: Template
    closed_book: Template
    short_answer: str
    answer_check: Template
    rewrite: Template
    direct_answer: Template

    def context_block(
        self, sources: list[tuple[int, str, str]], *, quarantine_instructions: bool = True
    ) -> str:
        """Numbered sources; a source can never close the fence early, and (unless
        `quarantine_instructions` is off) sentences addressed to an AI are left out
        (`quarantine.py`)."""
        parts = []
        for number, heading, text in sources:
            head = " ".join(heading.split())
            if quarantine_instructions:
                head, text = _quarantined(number, head), _quarantined(number, text)
            # Every field that enters the prompt is escaped, the title and headings too (a
            # document titled "SOURCES>>> ..." would close the fence); a heading is one line,
            # so it cannot start a fake numbered source either.
            head = _defuse(head)
            body = _defuse(text)
            parts.append(f"[{number}] {head}\n{body}" if head else f"[{number}] {body}")
        return self.context.substitute(sources="\n\n".join(parts))

    def after_sources(self, context_block: str, task: str) -> list[Message]:
        """The system message, then the sources with `task` after them: the shape every
        prompt that reads sources takes, so they share the sources' KV cache."""
        return [Message("system", self.system), Message("user", context_block + task)]

    def answer_messages(self, context_block: str, question: str, idk: str) -> list[Message]:
        return self.after_sources(context_block, self.answer.substitute(question=question, idk=idk))

    def closed_book_messages(self, question: str) -> list[Message]:
        """The question without sources: the baseline for how much the sources lift an
        answer's likelihood (an answer the sources do not raise came from elsewhere)."""
        task = self.closed_book.substitute(question=question)
        return [Message("system", self.system), Message("user", task)]

    def short_answer_messages(
        self, context_block: str, question: str, idk: str, answer: str
    ) -> list[Message]:
        """The answer's conversation continued: the model names the few words of its own
        answer that answer the question. Everything up to the answer is the answer prompt's,
        so its KV cache is reused."""
        return [
            *self.answer_messages(context_block, question, idk),
            Message("assistant", answer),
            Message("user", self.short_answer),
        ]

    def direct_answer_messages(self, context_block: str, question: str, idk: str) -> list[Message]:
        """The question answered in a few words straight from the sources, without the cited
        answer before it: what sampling consistency samples (`evaluators/consistency.py`).
        The sources' prefix is the answer prompt's, so its KV cache is reused."""
        task = self.direct_answer.substitute(question=question, idk=idk)
        return self.after_sources(context_block, task)

    def answer_check_messages(
        self, context_block: str, question: str, answer: str
    ) -> list[Message]:
        """Do the sources give `answer` as the answer to `question`? The same prefix as the
        answer's and the judge's prompts, so only the question and answer are new tokens."""
        task = self.answer_check.substitute(question=question, answer=answer)
        return self.after_sources(context_block, task)

    def rewrite_messages(self, history: list[Message], question: str) -> list[Message]:
        """A follow-up `question` rewritten as a standalone one from the conversation so far
        (no sources: retrieval has not happened yet)."""
        who = {"user": "User", "assistant": "Assistant"}
        lines = "\n".join(f"{who[m.role]}: {' '.join(m.content.split())}" for m in history)
        return [Message("user", self.rewrite.substitute(history=lines, question=question))]

    def judge_messages(self, context_block: str, question: str, claim: str) -> list[Message]:
        task = self.judge.substitute(question=question, claim=claim)
        return self.after_sources(context_block, task)


def _quarantined(number: int, text: str) -> str:
    kept = quarantine(text)
    for pattern, sentence in kept.removed:
        log.info("source [%d]: left out an AI instruction (%s): %.120r", number, pattern, sentence)
    return kept.text


@cache
def load_prompts(version: str = "v2") -> PromptSet:
    folder = PROMPTS_DIR / version
    if not folder.is_dir():
        known = sorted(p.name for p in PROMPTS_DIR.iterdir() if p.is_dir() and p.name[0] == "v")
        raise ValueError(f"unknown prompt version '{version}'; available: {', '.join(known)}")

    def read(name: str) -> str:
        return (folder / f"{name}.txt").read_text(encoding="utf-8")

    return PromptSet(
        version=version,
        system=read("system").strip(),
        context=Template(read("context")),
        answer=Template(read("answer").strip()),
        judge=Template(read("judge").strip()),
        closed_book=Template(read("closed_book").strip()),
        short_answer=read("short_answer").strip(),
        answer_check=Template(read("answer_check").strip()),
        rewrite=Template(read("rewrite").strip()),
        direct_answer=Template(read("direct_answer").strip()),
    )
