"""Answer text to claims (sentences) with their citations and character spans. Pure Python."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# A sentence ends at . ! or ? (plus any citations right after it) followed by space or end.
_END = re.compile(r"[.!?](?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*(?=\s|$)")
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|Prof|St|No|Inc|Ltd|Co|Jr|Sr|approx|ca|U\.S|U\.K)"
    r"|\b[A-Z])\.$"
)


@dataclass(frozen=True)
class ClaimSpan:
    text: str  # the claim without citation markers
    start: int  # span in the answer text, citations included
    end: int
    citations: tuple[int, ...]


def citations_in(text: str) -> tuple[int, ...]:
    found: list[int] = []
    for match in _CITE.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part.strip())
            if number not in found:
                found.append(number)
    return tuple(found)


def strip_citations(text: str) -> str:
    return re.sub(r"\s+([.,;!?])", r"\1", _CITE.sub("", text)).strip()


def split_claims(answer: str) -> list[ClaimSpan]:
    claims: list[ClaimSpan] = []
    start = 0
    for match in _END.finditer(answer):
        head = answer[start : match.start() + 1]
        if _ABBREV.search(head):
            continue
        _append(answer, start, match.end(), claims)
        start = match.end()
    _append(answer, start, len(answer), claims)
    return claims


def _append(answer: str, start: int, end: int, claims: list[ClaimSpan]) -> None:
    while start < end and answer[start].isspace():
        start += 1
    while end > start and answer[end - 1].isspace():
        end -= 1
    span = answer[start:end]
    text = strip_citations(span)
    if not any(ch.isalnum() for ch in text):
        if claims and span:  # a lone "[2]" after a sentence belongs to that sentence
            last = claims[-1]
            claims[-1] = ClaimSpan(
                last.text,
                last.start,
                end,
                tuple(dict.fromkeys(last.citations + citations_in(span))),
            )
        return
    claims.append(ClaimSpan(text, start, end, citations_in(span)))
