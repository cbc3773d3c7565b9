from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verirag.core.records import Document, Section
from verirag.retrievers.chunking import Chunker, RegexTokenizer
from verirag.retrievers.loaders import content_hash, markdown_sections

TOK = RegexTokenizer()


def _doc(text: str, sections: tuple[Section, ...] = ()) -> Document:
    return Document("d", "src", "T", text, content_hash(text, "T", {}), sections=sections)


def _count(text: str) -> int:
    return len(TOK.token_starts(text))


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
texts = st.lists(
    st.one_of(words, st.sampled_from([" ", "\n", "\n\n", ". ", ", ", "  "])), max_size=300
).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=texts, size=st.integers(4, 60), overlap_frac=st.floats(0, 0.5))
def test_offsets_round_trip_and_size_bound(text: str, size: int, overlap_frac: float) -> None:
    overlap = int(size * overlap_frac)
    chunker = Chunker(TOK, size, overlap)
    chunks = chunker.split(_doc(text))
    for i, chunk in enumerate(chunks):
        assert chunk.ordinal == i
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.n_tokens == _count(chunk.text) <= size
    # Every token of the document is in some chunk.
    covered: set[int] = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(start in covered for start in TOK.token_starts(text))
    # Chunks move forward.
    assert all(a.start < b.start for a, b in itertools.pairwise(chunks))


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    para1 = "One two three four five. Six seven eight nine ten."
    para2 = "Eleven twelve thirteen. Fourteen fifteen."
    text = f"{para1}\n\n{para2}"
    chunks = Chunker(TOK, 14, 0).split(_doc(text))
    assert [c.text for c in chunks] == [para1, para2]
    small = Chunker(TOK, 7, 0).split(_doc(para1))
    assert [c.text for c in small] == ["One two three four five.", "Six seven eight nine ten."]


def test_overlap_repeats_trailing_sentences() -> None:
    text = " ".join(f"Sentence number {i} here." for i in range(12))
    chunks = Chunker(TOK, 20, 6).split(_doc(text))
    assert len(chunks) > 2
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlapping spans
        assert _count(text[b.start : a.end]) <= 6


def test_sections_are_never_crossed_and_carry_headings() -> None:
    text = "# Alpha\nfirst part words\n# Beta\nsecond part words\n"
    chunks = Chunker(TOK, 100, 0).split(_doc(text, markdown_sections(text)))
    assert [c.headings for c in chunks] == [("Alpha",), ("Beta",)]
    assert chunks[0].text.startswith("# Alpha")
    assert "Beta" not in chunks[0].text


def test_one_enormous_word_is_cut_on_tokens() -> None:
    text = "-" * 50  # 50 punctuation tokens, no separator
    chunks = Chunker(TOK, 8, 0).split(_doc(text))
    assert [c.n_tokens for c in chunks] == [8] * 6 + [2]
    assert "".join(c.text for c in chunks) == text


def test_embed_text_adds_title_and_headings() -> None:
    text = "# Setup\nInstall it.\n"
    [chunk] = Chunker(TOK, 50, 0).split(_doc(text, markdown_sections(text)))
    assert chunk.embed_text("Manual") == "Manual > Setup\n# Setup\nInstall it."


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Chunker(TOK, 10, 10)
    with pytest.raises(ValueError, match="chunk_tokens"):
        Chunker(TOK, 0, 0)
