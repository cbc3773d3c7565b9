"""`RagPipeline`: the read side. For now retrieval (`search`); answering builds on it."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Literal

from pipeline.records import SearchHit
from pipeline.settings import Settings
from retrievers.bm25 import bm25_for
from retrievers.encoders import SentenceTransformerEncoder
from retrievers.fusion import reciprocal_rank_fusion
from retrievers.store import FaissStore, validate_name

SearchMode = Literal["hybrid", "dense", "bm25"]


class QueryError(ValueError):
    """The question itself is unusable (empty, too long)."""


def validate_query(query: str, limit: int) -> str:
    cleaned = query.strip()
    if not cleaned:
        raise QueryError("the query is empty")
    if len(cleaned) > limit:
        raise QueryError(f"the query is {len(cleaned)} characters, over the limit of {limit}")
    return cleaned


class RagPipeline:
    """Cheap to construct; encoders load on first use, one per embedder, shared by threads."""

    def __init__(
        self,
        settings: Settings | None = None,
        encoder: SentenceTransformerEncoder | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._encoders: dict[str, SentenceTransformerEncoder] = {}
        if encoder is not None:
            self._encoders[encoder.model_spec] = encoder
        self._stores: dict[str, FaissStore] = {}
        self._lock = threading.Lock()

    def encoder_for(self, embedder: str) -> SentenceTransformerEncoder:
        with self._lock:
            if embedder not in self._encoders:
                self._encoders[embedder] = SentenceTransformerEncoder(
                    embedder, settings=self.settings
                )
            return self._encoders[embedder]

    def store(self, collection: str) -> FaissStore:
        with self._lock:
            store = self._stores.get(collection)
            if store is None:
                path = self.settings.collections_dir / validate_name(collection)
                store = FaissStore(path)
                self._stores[collection] = store
            return store

    def search(
        self,
        query: str,
        collection: str = "default",
        k: int | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """Top-k chunks for `query`: dense (FAISS), BM25, or both fused by weighted RRF.

        The query embeds with the collection's own model. Every hit carries its dense cosine,
        so callers can apply the relevance floor whichever retriever found it.
        """
        text = validate_query(query, self.settings.max_question_chars)
        k = k or self.settings.top_k
        if k < 1:
            raise QueryError("k must be at least 1")
        s = self.settings
        store = self.store(collection)
        depth = max(k, s.retrieval_k)
        vector = self.encoder_for(store.config.embedder).encode_query(text)[0]
        dense = store.search(vector, depth) if mode != "bm25" else []
        sparse = bm25_for(store).search(text, depth) if mode != "dense" else []
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "bm25":
            ranked = sparse[:k]
        else:
            ranked = reciprocal_rank_fusion(
                [[cid for cid, _ in dense], [cid for cid, _ in sparse]],
                [s.dense_weight, s.bm25_weight],
                s.rrf_k,
            )[:k]
        cosine = dict(dense)
        missing = [cid for cid, _ in ranked if cid not in cosine]
        for cid, vec in store.vectors_for(missing).items():
            cosine[cid] = float(vec @ vector)
        bm25 = dict(sparse)
        return [
            replace(hit, dense_score=cosine.get(hit.chunk_id), bm25_score=bm25.get(hit.chunk_id))
            for hit in store.hits(ranked)
        ]

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
