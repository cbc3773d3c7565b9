"""BM25 over a collection's chunks (bm25s), persisted beside the FAISS index.

Like FAISS, the BM25 index is derived from SQLite and named by generation
(`bm25-g<N>/`, numpy arrays and JSON, no pickle); a missing or stale one is rebuilt from the
stored chunk texts, which takes seconds, never an embedding pass.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from verirag.retrievers.store import FaissStore

# Parameters of the reference BM25 run on SQuAD in ../shared/data/README.md.
K1 = 0.9
B = 0.4


def _tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    tokens: list[list[str]] = bm25s.tokenize(
        texts, stopwords="en", return_ids=False, show_progress=False
    )
    return tokens


class Bm25Index:
    def __init__(self, retriever: Any, chunk_ids: np.ndarray) -> None:
        self._retriever = retriever
        self._ids = chunk_ids
        # An empty collection has an unindexed retriever, without a vocabulary.
        self._vocab: dict[str, int] = getattr(retriever, "vocab_dict", None) or {}

    @classmethod
    def build(cls, store: FaissStore) -> Bm25Index:
        import bm25s

        rows = store.db.execute(
            "SELECT c.chunk_id, d.title, c.headings, c.text FROM chunks c "
            "JOIN documents d ON d.doc_id = c.doc_id ORDER BY c.chunk_id"
        ).fetchall()
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        texts = [" ".join([r[1], *json.loads(r[2]), r[3]]) for r in rows]
        retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
        if texts:
            retriever.index(_tokenize(texts), show_progress=False)
        return cls(retriever, ids)

    def search(
        self, query: str, k: int, within: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k chunks by BM25; only among the chunk ids `within` when given (a filter's:
        the others are masked out before ranking)."""
        if len(self._ids) == 0:
            return []
        terms = [t for t in _tokenize([query])[0] if t in self._vocab]
        if not terms:
            return []
        mask = None
        if within is not None:
            mask = np.isin(self._ids, within).astype(np.float32)
            if not mask.any():
                return []
        docs, scores = self._retriever.retrieve(
            [terms], k=min(k, len(self._ids)), show_progress=False, n_threads=1, weight_mask=mask
        )
        return [
            (int(self._ids[d]), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0
        ]

    def save(self, directory: Path) -> None:
        if directory.exists():
            return
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".bm25."))
        try:
            if len(self._ids):
                self._retriever.save(str(tmp), show_progress=False)
            np.save(tmp / "chunk_ids.npy", self._ids, allow_pickle=False)
            tmp.rename(directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> Bm25Index:
        import bm25s

        ids = np.load(directory / "chunk_ids.npy", allow_pickle=False)
        if len(ids) == 0:
            return cls(bm25s.BM25(method="lucene", k1=K1, b=B), ids)
        retriever = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(retriever, ids)


# A reader whose BM25 index is older than the committed generation serves it (consistent, if
# stale: rows deleted since are dropped when hits are read) until this many times its build
# time has passed, so that a writer committing batch after batch does not make every
# question rebuild BM25. Small collections build in milliseconds and are always fresh.
STALE_FACTOR = 10.0


@dataclass
class _Cached:
    generation: int
    index: Bm25Index
    built_at: float
    build_seconds: float


def bm25_for(store: FaissStore) -> Bm25Index:
    """The BM25 index of the store's committed generation, read in one snapshot: from
    memory, from disk, or rebuilt. Only a writer saves it and deletes older ones: a reader
    never writes or removes index files (it could remove what a writer just saved)."""
    cached: _Cached | None = getattr(store, "_bm25", None)
    with store.snapshot():
        gen = store.generation
        if cached is not None and cached.generation == gen:
            return cached.index
        if (
            cached is not None
            and not store.writable
            and time.monotonic() - cached.built_at < STALE_FACTOR * cached.build_seconds
        ):
            return cached.index
        directory = store.path / f"bm25-g{gen}"
        started = time.monotonic()
        index: Bm25Index | None = None
        if (directory / "chunk_ids.npy").is_file():
            try:
                index = Bm25Index.load(directory)
            except (OSError, ValueError):
                index = None  # being replaced by a writer: build it instead
            if index is not None and len(index._ids) != store.count("chunks"):
                index = None
        built = index is None
        if index is None:
            index = Bm25Index.build(store)
    if built and store.writable:
        try:
            index.save(directory)
            for old in store.path.glob("bm25-g*"):
                if old != directory:
                    shutil.rmtree(old, ignore_errors=True)
            for tmp in store.path.glob(".bm25.*"):
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass  # a read-only collection still searches, from memory
    store._bm25 = _Cached(gen, index, time.monotonic(), time.monotonic() - started)  # type: ignore[attr-defined]
    return index
