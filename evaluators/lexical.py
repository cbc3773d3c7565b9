"""Lexical evidence: numbers and names in a claim that no retrieved source contains. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’-]*")
# Capitalised words that are not names (sentence starts, pronouns, months are names).
_COMMON = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "you",
        "i",
        "his",
        "her",
        "their",
        "our",
        "my",
        "your",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "to",
        "of",
        "and",
        "or",
        "but",
        "if",
        "when",
        "while",
        "as",
        "with",
        "without",
        "after",
        "before",
        "during",
        "since",
        "until",
        "there",
        "here",
        "yes",
        "no",
        "not",
        "none",
        "all",
        "some",
        "many",
        "most",
        "one",
        "two",
        "three",
        "yet",
        "so",
        "also",
        "however",
        "although",
        "because",
        "therefore",
        "thus",
        "according",
        "based",
        "source",
        "sources",
        "answer",
    ]
)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _numbers(text: str) -> set[str]:
    out = set()
    for match in _NUMBER.finditer(text):
        value = match.group().replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        out.add(value)
    return out


@dataclass(frozen=True)
class LexicalEvidence:
    missing: tuple[str, ...]  # numbers and names found in no source
    bad_citations: tuple[int, ...]  # citation numbers that point to no retrieved source

    @property
    def clean(self) -> bool:
        return not self.missing and not self.bad_citations


def lexical_evidence(
    claim: str,
    sources: Sequence[str],
    citations: Sequence[int] = (),
    question: str = "",
) -> LexicalEvidence:
    """Terms the question itself supplies are not held against the answer."""
    corpus = " ".join(sources)
    folded_words = {_fold(w) for w in _WORD.findall(corpus + " " + question)}
    known_numbers = _numbers(corpus) | _numbers(question)
    missing: list[str] = [n for n in sorted(_numbers(claim)) if n not in known_numbers]
    for word in _WORD.findall(claim):
        if not word[0].isupper() or len(word) < 2:
            continue
        folded = _fold(word.strip("'’-"))
        if folded in _COMMON:
            continue
        stem = re.sub(r"('s|’s)$", "", folded)
        if folded not in folded_words and stem not in folded_words and word not in missing:
            missing.append(word)
    bad = tuple(n for n in citations if not 1 <= n <= len(sources))
    return LexicalEvidence(tuple(missing), bad)
