"""`RagPipeline`: the read side. For now retrieval (`search`); answering builds on it."""

from __future__ import annotations

import threading

from pipeline.records import SearchHit
from pipeline.settings import Settings
from retrievers.encoders import SentenceTransformerEncoder
from retrievers.store import FaissStore, validate_name

MAX_QUERY_CHARS = 4000


class QueryError(ValueError):
    """The question itself is unusable (empty, too long)."""


def validate_query(query: str) -> str:
    cleaned = query.strip()
    if not cleaned:
        raise QueryError("the query is empty")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(cleaned)} characters, over the limit of {MAX_QUERY_CHARS}"
        )
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
        self, query: str, collection: str = "default", k: int | None = None
    ) -> list[SearchHit]:
        """Dense top-k chunks for `query`; the query embeds with the collection's own model."""
        text = validate_query(query)
        k = k or self.settings.top_k
        if k < 1:
            raise QueryError("k must be at least 1")
        store = self.store(collection)
        encoder = self.encoder_for(store.config.embedder)
        vector = encoder.encode_query(text)
        return store.hits(store.search(vector[0], k))

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
