"""Token-aware recursive splitting that keeps exact character offsets.

Lengths are measured in the embedder's own tokenizer: the document is tokenised once, and the
token count of any character span is two binary searches over the token start offsets. Chunks
never cross a section (heading) boundary, and `doc.text[chunk.start:chunk.end] == chunk.text`.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from verirag.core.records import Chunk, Document, Section

SEPARATORS: tuple[str, ...] = ("\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ")


class TokenOffsets(Protocol):
    """Anything that returns the character offset where each token of `text` starts."""

    def token_starts(self, text: str) -> list[int]: ...


class RegexTokenizer:
    """Words and punctuation as tokens: a dependency-free stand-in for tests and fallbacks."""

    _TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

    def token_starts(self, text: str) -> list[int]:
        return [m.start() for m in self._TOKEN.finditer(text)]


class HfTokenizer:
    """A Hugging Face fast tokenizer (the embedder's), with truncation switched off."""

    def __init__(self, tokenizer: object) -> None:
        self._tok = tokenizer

    def token_starts(self, text: str) -> list[int]:
        enc = self._tok(  # type: ignore[operator]
            text,
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,
        )
        return [int(start) for start, end in enc["offset_mapping"] if end > start]


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


class _Counter:
    def __init__(self, starts: Sequence[int]) -> None:
        self._starts = starts

    def count(self, start: int, end: int) -> int:
        return bisect.bisect_left(self._starts, end) - bisect.bisect_left(self._starts, start)

    def cut_points(self, start: int, end: int, size: int) -> list[int]:
        """Character offsets that split [start, end) every `size` tokens."""
        lo = bisect.bisect_left(self._starts, start)
        hi = bisect.bisect_left(self._starts, end)
        return [self._starts[i] for i in range(lo + size, hi, size)]


class Chunker:
    """Recursive splitter: paragraphs, then lines, sentences, clauses, words, then tokens."""

    def __init__(
        self,
        tokenizer: TokenOffsets,
        chunk_tokens: int = 200,
        overlap_tokens: int = 32,
        separators: tuple[str, ...] = SEPARATORS,
    ) -> None:
        if chunk_tokens < 1:
            raise ValueError("chunk_tokens must be at least 1")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError("overlap_tokens must be in [0, chunk_tokens)")
        self.tokenizer = tokenizer
        self.size = chunk_tokens
        self.overlap = overlap_tokens
        self.separators = separators

    def fingerprint(self) -> str:
        """Changes whenever the same document would be cut differently."""
        return f"recursive-v1:{self.size}:{self.overlap}:{'|'.join(self.separators)!r}"

    def split(self, doc: Document) -> list[Chunk]:
        text = doc.text
        counter = _Counter(self.tokenizer.token_starts(text))
        sections = doc.sections or (Section(0, len(text), ()),)
        chunks: list[Chunk] = []
        for section in sections:
            pieces = self._pieces(text, _Span(section.start, section.end), counter, 0)
            for span in self._merge(pieces, counter):
                start, end = _strip(text, span.start, span.end)
                if start >= end:
                    continue
                chunks.append(
                    Chunk(
                        doc_id=doc.doc_id,
                        ordinal=len(chunks),
                        start=start,
                        end=end,
                        text=text[start:end],
                        n_tokens=counter.count(start, end),
                        headings=section.headings,
                        pages=doc.page_span(start, end),
                    )
                )
        return chunks

    def _pieces(self, text: str, span: _Span, counter: _Counter, level: int) -> list[_Span]:
        if counter.count(span.start, span.end) <= self.size:
            return [span]
        for depth in range(level, len(self.separators)):
            sep = self.separators[depth]
            cuts = _cuts(text, span, sep)
            if not cuts:
                continue
            out: list[_Span] = []
            prev = span.start
            for cut in [*cuts, span.end]:
                if cut > prev:
                    out.extend(self._pieces(text, _Span(prev, cut), counter, depth + 1))
                prev = cut
            return out
        # No separator left (e.g. one enormous word): cut on token boundaries.
        points = [span.start, *counter.cut_points(span.start, span.end, self.size), span.end]
        return [_Span(a, b) for a, b in itertools.pairwise(points) if b > a]

    def _merge(self, pieces: list[_Span], counter: _Counter) -> list[_Span]:
        chunks: list[_Span] = []
        i = 0
        first = 0  # index of the first piece in the current chunk
        while i < len(pieces):
            first = i
            start = pieces[i].start
            end = pieces[i].end
            i += 1
            while i < len(pieces) and counter.count(start, pieces[i].end) <= self.size:
                end = pieces[i].end
                i += 1
            chunks.append(_Span(start, end))
            if i >= len(pieces) or self.overlap == 0:
                continue
            # Step back over whole pieces for overlap, never past the chunk just emitted
            # and never so far that the next piece no longer fits.
            back = i
            while (
                back - 1 > first
                and counter.count(pieces[back - 1].start, end) <= self.overlap
                and counter.count(pieces[back - 1].start, pieces[i].end) <= self.size
            ):
                back -= 1
            i = back
        return chunks


def _cuts(text: str, span: _Span, sep: str) -> list[int]:
    """Positions just after each occurrence of `sep` inside the span (not at its end)."""
    cuts: list[int] = []
    pos = text.find(sep, span.start, span.end)
    while pos != -1:
        cut = pos + len(sep)
        if span.start < cut < span.end:
            cuts.append(cut)
        pos = text.find(sep, cut, span.end)
    return cuts


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
