"""`HybridRetriever`: dense (FAISS), BM25 and, where the collection has it, learned sparse
(SPLADE) candidates of one collection, fused (a weighted sum of standardised or min-max
normalised scores, weighted reciprocal rank fusion, or RRF weighted per query by how sure
each side is); each side alone stays selectable."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from verirag.core.records import SearchHit
from verirag.retrievers.bm25 import bm25_for, tokenize
from verirag.retrievers.collection_dir import CollectionError
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.filters import MetadataFilter
from verirag.retrievers.fusion import fuse_sides
from verirag.retrievers.learned_sparse import SpladeEncoder, sparse_index_for
from verirag.retrievers.rerank import RerankCandidate, RerankInput, RerankModel, rerank
from verirag.retrievers.store import FaissStore

SearchMode = Literal["hybrid", "dense", "bm25", "splade"]


FusionMethod = Literal["rrf", "convex", "zscore", "adaptive"]

Scored = list[tuple[int, float]]


@dataclass(frozen=True)
class FusionConfig:
    depth: int = 30  # candidates per retriever
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    method: FusionMethod = "zscore"
    alpha: float = 0.5  # convex and zscore: the dense share of what SPLADE leaves
    splade_share: float = 1 / 3  # convex and zscore: the learned sparse side's share
    splade_weight: float = 1.0  # rrf
    rerank_depth: int = 30  # fused candidates the reranker scores again

    def weights(self, sides: int) -> list[float]:
        """Each side's weight for `fuse_sides`, sides in the order dense, BM25, SPLADE."""
        if self.method == "rrf":
            return [self.dense_weight, self.bm25_weight, self.splade_weight][:sides]
        rest = 1.0 - self.splade_share if sides == 3 else 1.0
        pair = [self.alpha * rest, (1.0 - self.alpha) * rest]
        return [*pair, self.splade_share] if sides == 3 else pair


@dataclass(frozen=True)
class Candidates:
    """Scored candidates of each side, best first, (chunk id, score); a side the mode does
    not use, or the collection does not have (SPLADE), is empty."""

    dense: Scored
    bm25: Scored
    splade: Scored

    def sides(self, with_splade: bool) -> list[Scored]:
        return [self.dense, self.bm25, self.splade] if with_splade else [self.dense, self.bm25]


class HybridRetriever:
    """Cheap to build over an open store; the encoders load on the first query."""

    def __init__(
        self,
        store: FaissStore,
        encoder: SentenceTransformerEncoder,
        fusion: FusionConfig,
        splade: SpladeEncoder | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.fusion = fusion
        self.splade = splade  # None: the collection was indexed without a learned sparse side

    def retrieve(
        self,
        query: str,
        k: int,
        mode: SearchMode = "hybrid",
        where: MetadataFilter | None = None,
        reranker: RerankModel | None = None,
    ) -> list[SearchHit]:
        """Top-k chunks for an already validated `query`, among the documents that match
        `where` when given (every side ranks only those: the filter applies before top-k).
        `reranker`: the fused top `rerank_depth` are ordered again by it (hybrid mode only:
        a single side is what a user asks for to see that side alone).

        Every hit carries its dense cosine (computed for hits the dense side did not find
        too), so callers can apply the relevance floor whichever retriever found it, and its
        BM25 score if BM25 found it.
        """
        f = self.fusion
        within = None if where is None else self.store.chunk_ids_where(where)
        if within is not None and len(within) == 0:
            return []
        if reranker is not None and mode == "hybrid":
            given = self.rerank_input(query, max(k, f.rerank_depth), within)
            by_id = {c.chunk_id: c for c in given.candidates}
            return [
                replace(
                    hit,
                    dense_score=by_id[hit.chunk_id].dense,
                    bm25_score=by_id[hit.chunk_id].bm25,
                    rerank_score=hit.score,
                )
                for hit in self.store.hits(rerank(reranker, given, tokenize)[:k])
            ]
        vector = self.encoder.encode_query(query)[0]
        found = self.candidates(query, max(k, f.depth), mode, vector, within)
        if mode == "dense":
            ranked = found.dense[:k]
        elif mode == "bm25":
            ranked = found.bm25[:k]
        elif mode == "splade":
            ranked = found.splade[:k]
        else:
            ranked = self._fused(found)[:k]
        cosine = self._cosines(ranked, found, vector)
        bm25 = dict(found.bm25)
        return [
            replace(hit, dense_score=cosine.get(hit.chunk_id), bm25_score=bm25.get(hit.chunk_id))
            for hit in self.store.hits(ranked)
        ]

    def _fused(self, found: Candidates) -> Scored:
        """The sides this collection has, fused as its settings say."""
        f = self.fusion
        sides = found.sides(self.splade is not None)
        return fuse_sides(f.method, sides, f.weights(len(sides)), f.rrf_k)

    def _cosines(self, ranked: Scored, found: Candidates, vector: Any) -> dict[int, float]:
        """Dense cosine of every chunk in `ranked`, computed for those the dense side missed."""
        cosine = dict(found.dense)
        missing = [cid for cid, _ in ranked if cid not in cosine]
        for cid, vec in self.store.vectors_for(missing).items():
            cosine[cid] = float(vec @ vector)
        return cosine

    def rerank_input(
        self, query: str, depth: int, within: npt.NDArray[np.int64] | None = None
    ) -> RerankInput:
        """The fused top `depth` chunks with what a reranker reads of them: what `retrieve`
        reranks, and what a reranker is fitted on (`pipeline/evaluation/rerank_fit.py`)."""
        f = self.fusion
        vector = self.encoder.encode_query(query)[0]
        found = self.candidates(query, max(depth, f.depth), "hybrid", vector, within)
        fused = self._fused(found)[:depth]
        cosine = self._cosines(fused, found, vector)
        texts = self.store.lexical_text_of([cid for cid, _ in fused])
        bm25, splade = dict(found.bm25), dict(found.splade)
        candidates = [
            RerankCandidate(cid, texts[cid], score, cosine.get(cid), bm25.get(cid), splade.get(cid))
            for cid, score in fused
            if cid in texts  # deleted since the sides ranked it
        ]
        terms = tokenize([query])[0]
        return RerankInput(terms, bm25_for(self.store).idf(terms), candidates)

    def candidates(
        self,
        query: str,
        depth: int,
        mode: SearchMode = "hybrid",
        vector: Any = None,
        within: npt.NDArray[np.int64] | None = None,
    ) -> Candidates:
        """Each side's candidates for `query` that `mode` uses (all of them for hybrid)."""
        if mode == "splade" and self.splade is None:
            raise CollectionError(
                f"collection '{self.store.name}' has no learned sparse (SPLADE) index: it "
                "was made with splade_model empty, or before verirag had one; add it with "
                "`verirag index --change-index` (splade_model set) or search another mode"
            )
        dense: Scored = []
        if mode in ("hybrid", "dense"):
            if vector is None:
                vector = self.encoder.encode_query(query)[0]
            dense = self.store.search(vector, depth, within)
        bm25 = (
            bm25_for(self.store).search(query, depth, within) if mode in ("hybrid", "bm25") else []
        )
        splade: Scored = []
        if self.splade is not None and mode in ("hybrid", "splade"):
            index = sparse_index_for(self.store, self.splade)
            splade = index.search(self.splade.encode_query(query), depth, within)
        return Candidates(dense, bm25, splade)
