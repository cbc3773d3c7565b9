"""Query embeddings are cached per encoder: the same question embedded again (an eval asks it
in every retrieval mode, a user searches and then asks) costs no model call, and the shared
array is read-only, so no caller can change what the next one gets."""

from __future__ import annotations

import numpy as np
import pytest

from verirag.core.settings import Settings
from verirag.retrievers.encoders import QUERY_CACHE, SentenceTransformerEncoder
from verirag.retrievers.learned_sparse import SparseVector, SpladeEncoder


def test_dense_query_vectors_are_embedded_once_and_read_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = SentenceTransformerEncoder(settings=Settings())
    asked: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        asked.append(texts)
        return np.full((len(texts), 4), float(len(texts[0])), dtype=np.float32)

    monkeypatch.setattr(encoder, "encode", encode)
    first = encoder.encode_query("who wrote it?")
    again = encoder.encode_query("who wrote it?")
    other = encoder.encode_query("when?")
    assert asked == [["who wrote it?"], ["when?"]]
    assert again is first and first.shape == (1, 4) and other[0, 0] == 5.0
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 1.0
    # Bounded: the oldest query is embedded again once the cache has moved past it.
    for i in range(QUERY_CACHE):
        encoder.encode_query(f"q{i}")
    encoder.encode_query("who wrote it?")
    assert asked[-1] == ["who wrote it?"]


def test_sparse_query_vectors_are_encoded_once_and_read_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = SpladeEncoder(settings=Settings())
    asked: list[tuple[list[str], int]] = []

    def encode(texts: list[str], max_tokens: int = 0) -> list[SparseVector]:
        asked.append((texts, max_tokens))
        terms = np.array([3, 7], dtype=np.int32)
        return [SparseVector(terms, np.ones(2, dtype=np.float32)) for _ in texts]

    monkeypatch.setattr(encoder, "encode", encode)
    first = encoder.encode_query("who wrote it?")
    assert encoder.encode_query("who wrote it?") is first and len(asked) == 1
    assert asked[0][1] > 0  # the query length limit, not the passages'
    with pytest.raises(ValueError, match="read-only"):
        first.weights[0] = 2.0
    with pytest.raises(ValueError, match="read-only"):
        first.terms[0] = 1
