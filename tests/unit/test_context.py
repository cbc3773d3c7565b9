"""Context packing: best chunks first, numbered from 1, within the token budget."""

from __future__ import annotations

from verirag.core.records import SearchHit
from verirag.generators.context import pack_context
from verirag.generators.prompts import load_prompts


def _hit(rank: int, text: str, title: str = "T", headings: tuple[str, ...] = ()) -> SearchHit:
    return SearchHit(
        rank, 1.0 / rank, rank, f"d{rank}", f"s{rank}.md", title, text, 10, 10 + len(text), headings
    )


def _words(text: str) -> int:
    return len(text.split())


def test_best_first_skipping_what_does_not_fit() -> None:
    hits = [_hit(1, "a " * 10), _hit(2, "b " * 50), _hit(3, "c " * 5, "Other", ("H1", "H2"))]
    packed = pack_context(hits, _words, budget=25, prompts=load_prompts("v2"))
    # The 50-word chunk is over what is left; the smaller third one still fits.
    assert [c.chunk_id for c in packed.citations] == [1, 3]
    assert [c.number for c in packed.citations] == [1, 2]
    assert "[2] Other > H1 > H2" in packed.block
    assert packed.texts[1].startswith("Other H1 H2\n")
    assert "b b b" not in packed.block


def test_an_oversized_best_chunk_keeps_its_head_with_exact_offsets() -> None:
    text = "word " * 100
    packed = pack_context([_hit(1, text)], _words, budget=20, prompts=load_prompts("v2"))
    (only,) = packed.citations
    assert 0 < len(only.snippet) < len(text) and text.startswith(only.snippet)
    assert only.end - only.start == len(only.snippet)
