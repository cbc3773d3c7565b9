"""`HybridRetriever`: dense (FAISS) and BM25 candidates of one collection, fused (a convex
combination of standardised or min-max normalised scores, weighted reciprocal rank fusion, or
RRF weighted per query by how sure each side is); BM25 alone and dense alone stay selectable."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from verirag.core.records import SearchHit
from verirag.retrievers.bm25 import bm25_for
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.filters import MetadataFilter
from verirag.retrievers.fusion import fuse
from verirag.retrievers.store import FaissStore

SearchMode = Literal["hybrid", "dense", "bm25"]


FusionMethod = Literal["rrf", "convex", "zscore", "adaptive"]


@dataclass(frozen=True)
class FusionConfig:
    depth: int = 30  # candidates per retriever
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    method: FusionMethod = "zscore"
    alpha: float = 0.5  # convex and zscore: the dense share


class HybridRetriever:
    """Cheap to build over an open store; the encoder loads on its first query."""

    def __init__(
        self, store: FaissStore, encoder: SentenceTransformerEncoder, fusion: FusionConfig
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.fusion = fusion

    def retrieve(
        self,
        query: str,
        k: int,
        mode: SearchMode = "hybrid",
        where: MetadataFilter | None = None,
    ) -> list[SearchHit]:
        """Top-k chunks for an already validated `query`, among the documents that match
        `where` when given (both sides rank only those: the filter applies before top-k).

        Every hit carries its dense cosine (computed for BM25-only hits too), so callers can
        apply the relevance floor whichever retriever found it, and its BM25 score if BM25
        found it.
        """
        f = self.fusion
        within = None if where is None else self.store.chunk_ids_where(where)
        if within is not None and len(within) == 0:
            return []
        vector = self.encoder.encode_query(query)[0]
        dense, sparse = self.candidates(query, max(k, f.depth), mode, vector, within)
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "bm25":
            ranked = sparse[:k]
        else:
            fused = fuse(f.method, dense, sparse, f.rrf_k, f.dense_weight, f.bm25_weight, f.alpha)
            ranked = fused[:k]
        cosine = dict(dense)
        missing = [cid for cid, _ in ranked if cid not in cosine]
        for cid, vec in self.store.vectors_for(missing).items():
            cosine[cid] = float(vec @ vector)
        bm25 = dict(sparse)
        return [
            replace(hit, dense_score=cosine.get(hit.chunk_id), bm25_score=bm25.get(hit.chunk_id))
            for hit in self.store.hits(ranked)
        ]

    def candidates(
        self,
        query: str,
        depth: int,
        mode: SearchMode = "hybrid",
        vector: Any = None,
        within: npt.NDArray[np.int64] | None = None,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """(dense, BM25) candidates, best first, with their scores (chunk id, score); the
        side `mode` does not use is empty."""
        if vector is None:
            vector = self.encoder.encode_query(query)[0]
        dense = self.store.search(vector, depth, within) if mode != "bm25" else []
        sparse = bm25_for(self.store).search(query, depth, within) if mode != "dense" else []
        return dense, sparse
