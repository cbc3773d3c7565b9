"""A collection's vector side: one interface, two implementations. FAISS files beside SQLite
(the default) and Milvus (a server or cluster, `milvus_vectors`). Both mirror SQLite, the
source of truth, by generation: the store commits a batch, then hands the backend the chunk
ids added and removed; a backend found behind SQLite catches up from SQLite's stored vectors,
never by embedding again.

No SQL here either: a backend reads the store through `VectorSource`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from verirag.retrievers.collection_dir import CollectionConfig, CollectionError
from verirag.retrievers.milvus_vectors import MilvusVectors, milvus_collection_name
from verirag.retrievers.vector_index import (
    DEFAULT_SAVE_INTERVAL_S,
    EXACT_WITHIN,
    VectorIndex,
    exact_top,
    search_index,
    search_within,
)

Ids = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]
BACKENDS = ("faiss", "milvus")


class VectorSource(Protocol):
    """What a backend reads of the store: SQLite's committed state, and its own bookkeeping
    (`meta`), written in a transaction of its own."""

    name: str
    path: Path

    @property
    def generation(self) -> int: ...

    @property
    def reading(self) -> contextlib.AbstractContextManager[Any]:
        """The store's read lock (re-entrant): a reader catching FAISS up changes it in place."""
        ...

    @property
    def writable(self) -> bool: ...

    def snapshot(self) -> contextlib.AbstractContextManager[Any]: ...

    def count(self, table: str) -> int: ...

    def chunk_ids(self) -> Ids: ...

    def vectors_for(self, chunk_ids: Sequence[int]) -> dict[int, npt.NDArray[np.float32]]: ...

    def vectors_of(self, chunk_ids: Sequence[int]) -> Matrix: ...

    def stored_vectors(self) -> tuple[Ids, Matrix]: ...

    def meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str, **more: str) -> None: ...


class VectorBackend(Protocol):
    """The vector side of one open store."""

    def before_write(self) -> None:
        """Called before a batch commits (FAISS loads the generation it will move on from)."""

    def after_commit(
        self, generation: int, vectors: Matrix, added: Sequence[int], removed: Sequence[int]
    ) -> None:
        """A committed batch: its new chunks' vectors, and the chunk ids it removed."""

    def search(self, query: Matrix, k: int, within: Ids | None) -> list[tuple[int, float]]:
        """The k nearest chunk ids with their inner products, best first; only among
        `within` when given (a filter's chunk ids: applied before top-k)."""

    def count(self) -> int:
        """Vectors served (SQLite's chunk count when the backend is caught up)."""

    def save(self) -> None:
        """Persist, or catch up and seal, what the committed generation holds (a writer's)."""

    def drop(self) -> None:
        """Forget everything this backend holds outside SQLite."""

    def set_save_interval(self, seconds: float) -> None:
        """How often a long run persists (FAISS) or seals (Milvus) what it wrote."""


class FaissBackend:
    """FAISS files in the collection's folder (`vector_index`), loaded lazily."""

    def __init__(self, source: VectorSource, config: CollectionConfig) -> None:
        self.source = source
        self.config = config
        self.files = VectorIndex(source.path, config)

    def index(self) -> Any:
        """The FAISS index for the committed generation, read in one snapshot (generation,
        count and vectors agree): the one in memory, caught up with what was committed since
        where the index type allows, else loaded from disk, else rebuilt from SQLite. Only
        `save` writes files, and only a writer calls it."""
        source = self.source
        with source.snapshot():
            gen = source.generation
            index = self.files.cached(gen)
            if index is not None:
                return index
            n = source.count("chunks")
            index = self.files.catch_up(gen, source.chunk_ids, source.vectors_of)
            if index is not None:
                return index
            saved = self.files.read(gen)
            # Never trust a file that disagrees with SQLite (its tombstones are not rows).
            if saved is not None and saved[0].ntotal - len(saved[1]) == n:
                self.files.adopt(gen, *saved)
                return saved[0]
            index = self.files.build(*source.stored_vectors())
            self.files.adopt(gen, index)
            return index

    def before_write(self) -> None:
        if self.config.index_type != "ivfpq":
            self.index()  # load the current generation before it moves on

    def after_commit(
        self, generation: int, vectors: Matrix, added: Sequence[int], removed: Sequence[int]
    ) -> None:
        if self.files.mirror(generation, vectors, added, removed):
            self.save()

    def search(self, query: Matrix, k: int, within: Ids | None) -> list[tuple[int, float]]:
        # Under the read lock: a reader catching the index up changes it in place.
        with self.source.reading:
            index = self.index()
            if within is None:
                exact = self.source.vectors_for
                return search_index(index, query, k, exact, self.files.search_params(index))
            # A filter's chunk ids come from SQLite: no tombstone among them.
            return search_within(index, query, k, within, self.source.vectors_for)

    def count(self) -> int:
        """Rows the index serves: its vectors less the tombstones an HNSW graph keeps."""
        with self.source.reading:
            return int(self.index().ntotal) - len(self.files.dead)

    def save(self) -> None:
        self.index()
        self.files.save()

    def drop(self) -> None:
        for stale in self.source.path.glob("faiss-g*"):
            stale.unlink(missing_ok=True)

    def set_save_interval(self, seconds: float) -> None:
        self.files.set_save_interval(seconds)


class MilvusBackend:
    """A Milvus collection (`milvus_vectors`) that mirrors SQLite. The generation it mirrors
    is kept in SQLite (`milvus_generation`), written after Milvus took the batch; a writer
    finding it behind replays the difference from SQLite's vectors."""

    def __init__(self, source: VectorSource, config: CollectionConfig) -> None:
        self.source = source
        self.config = config
        name = source.meta("milvus_collection")
        if name is None:
            if not source.writable:
                raise CollectionError(
                    f"collection '{source.name}' has no Milvus collection yet: index into it first"
                )
            name = milvus_collection_name(source.name)
            source.set_meta("milvus_collection", name, milvus_generation="-1")
        if not config.backend_uri:
            raise CollectionError(
                f"collection '{source.name}' uses Milvus but names no server (vector_uri)"
            )
        self.milvus = MilvusVectors(config.backend_uri, name, config)
        self._flush_every = DEFAULT_SAVE_INTERVAL_S
        self._last_flush = time.monotonic()
        if source.writable:
            self.catch_up()

    def _mirrored(self) -> int:
        return int(self.source.meta("milvus_generation") or -1)

    def catch_up(self) -> None:
        """Make Milvus hold exactly SQLite's chunks (after a crash, a new backend or new index
        settings): ids Milvus lacks are sent from SQLite's vectors, ids SQLite no longer has
        are deleted. Nothing to do when the generations agree."""
        with self.source.snapshot():
            gen = self.source.generation
            if self._mirrored() == gen and self.milvus.exists():
                return
            current = self.source.chunk_ids()
        held = self.milvus.ids()
        self.milvus.ensure(len(current))
        self.milvus.delete(np.setdiff1d(held, current, assume_unique=True).tolist())
        missing = np.setdiff1d(current, held, assume_unique=True)
        for start in range(0, len(missing), 10_000):
            part = missing[start : start + 10_000].tolist()
            self.milvus.upsert(part, self.source.vectors_of(part))
        self.milvus.flush()
        self.source.set_meta("milvus_generation", str(gen))

    def before_write(self) -> None:
        pass

    def after_commit(
        self, generation: int, vectors: Matrix, added: Sequence[int], removed: Sequence[int]
    ) -> None:
        if self._mirrored() != generation - 1:
            self.catch_up()  # behind already: replay everything from SQLite
            return
        self.milvus.delete(removed)
        if len(added):
            self.milvus.upsert(added, vectors)
        self.source.set_meta("milvus_generation", str(generation))
        if time.monotonic() - self._last_flush >= self._flush_every:
            self.milvus.flush()
            self._last_flush = time.monotonic()

    def search(self, query: Matrix, k: int, within: Ids | None) -> list[tuple[int, float]]:
        if within is not None and len(within) <= EXACT_WITHIN:
            q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
            return exact_top(self.source.vectors_for, within.tolist(), q, min(k, len(within)))
        return self.milvus.search(query, k, within)

    def count(self) -> int:
        return self.milvus.count()

    def save(self) -> None:
        self.catch_up()
        self.milvus.flush()

    def drop(self) -> None:
        self.milvus.drop()

    def set_save_interval(self, seconds: float) -> None:
        self._flush_every = seconds


def open_backend(source: VectorSource, config: CollectionConfig) -> FaissBackend | MilvusBackend:
    if config.backend == "faiss":
        return FaissBackend(source, config)
    if config.backend == "milvus":
        return MilvusBackend(source, config)
    raise CollectionError(
        f"collection '{source.name}' uses vector backend '{config.backend}', which this "
        f"verirag does not know ({', '.join(BACKENDS)})"
    )
