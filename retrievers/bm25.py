"""BM25 over a collection's chunks (bm25s), persisted beside the FAISS index.

Like FAISS, the BM25 index is derived from SQLite and named by generation
(`bm25-g<N>/`, numpy arrays and JSON, no pickle); a missing or stale one is rebuilt from the
stored chunk texts, which takes seconds, never an embedding pass.
"""

from __future__ import annotations

import json
import shutil
import tempfile
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
        self._vocab: dict[str, int] = retriever.vocab_dict

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

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if len(self._ids) == 0:
            return []
        terms = [t for t in _tokenize([query])[0] if t in self._vocab]
        if not terms:
            return []
        docs, scores = self._retriever.retrieve(
            [terms], k=min(k, len(self._ids)), show_progress=False, n_threads=1
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


def bm25_for(store: FaissStore) -> Bm25Index:
    """The BM25 index of the store's committed generation: loaded, or rebuilt and saved."""
    gen = store.generation
    cached: tuple[int, Bm25Index] | None = getattr(store, "_bm25", None)
    if cached is not None and cached[0] == gen:
        return cached[1]
    directory = store.path / f"bm25-g{gen}"
    index: Bm25Index | None = None
    if (directory / "chunk_ids.npy").is_file():
        index = Bm25Index.load(directory)
        if len(index._ids) != store.count("chunks"):
            index = None
    if index is None:
        index = Bm25Index.build(store)
        try:
            index.save(directory)
            for old in store.path.glob("bm25-g*"):
                if old != directory:
                    shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass  # a read-only collection still searches, from memory
    store._bm25 = (gen, index)  # type: ignore[attr-defined]
    return index
