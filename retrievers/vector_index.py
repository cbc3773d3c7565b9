"""The FAISS index of one collection, derived from the vectors SQLite stores; never the truth.

`faiss-g<N>.index` holds the index for SQLite generation N. It is written tmp + fsync + rename,
so a file on disk is always whole and names the generation it mirrors: after a crash between a
commit and the next save the file is for an older generation and is never loaded. FAISS's own
format, no pickle.

No SQL here: the store hands in generations, chunk ids and vectors, and judges whether a file
agrees with SQLite, so how the store reads (and which snapshot) stays its own business.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from verirag.retrievers.collection_dir import CollectionConfig, fsync_dir

DEFAULT_SAVE_INTERVAL_S = 60.0
# IVF's k-means trains on at most this many vectors per list: faiss wants 39 at least, and
# training on all of a million vectors took most of the build on 2 cores for no recall.
TRAIN_PER_LIST = 64


def _empty_index(config: CollectionConfig, n_train: int) -> Any:
    if config.index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(config.dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = config.hnsw_ef_search
        inner.hnsw.efConstruction = max(40, 2 * config.hnsw_m)
        return faiss.IndexIDMap2(inner)
    if config.index_type == "ivfpq":
        nlist = _nlist(config, n_train)
        m = config.pq_m or max(1, config.dim // 8)
        # Below ~39 points per centroid and 256 per PQ code book training is unreliable;
        # such a small collection is searched exactly until it grows.
        if _trainable(config, n_train):
            quantizer = faiss.IndexFlatIP(config.dim)
            ivf = faiss.IndexIVFPQ(quantizer, config.dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            ivf.nprobe = config.ivf_nprobe
            return ivf
    return faiss.IndexIDMap2(faiss.IndexFlatIP(config.dim))


def _nlist(config: CollectionConfig, n: int) -> int:
    return config.ivf_nlist or max(1, int(4 * np.sqrt(max(n, 1))))


def _trainable(config: CollectionConfig, n: int) -> bool:
    return n >= max(39 * _nlist(config, n), 256 * 4)


def _supports_incremental(config: CollectionConfig, index: Any, total: int) -> bool:
    if config.index_type in ("flat", "hnsw"):
        return True  # HNSW drops nothing from its graph: removed rows become tombstones
    # IVF-PQ: a trained index takes adds and removals as they come (its lists and code books
    # stay as trained); the exact fallback of a small collection is rebuilt, and trained,
    # once the collection is large enough.
    if isinstance(index, faiss.IndexIVF):
        return True
    return not _trainable(config, total)


# IVF-PQ's codes keep ~1/24 of a vector, and its own ranking found 0.43 of the exact top-10 at
# a million chunks (bench/scale.py): it proposes this many times k candidates, and their
# stored float32 vectors (SQLite, on disk) rank them exactly.
RERANK_FACTOR = 10

# An HNSW graph cannot drop nodes: a removed chunk stays in the graph as a tombstone that
# searches skip (a FAISS ID selector) until tombstones are this share of the graph, when the
# graph is rebuilt without them. Rebuilding on every delete took 140 s at a million chunks.
TOMBSTONE_SHARE = 0.2

ExactVectors = Callable[[Sequence[int]], dict[int, npt.NDArray[np.float32]]]


def search_index(
    index: Any,
    query: npt.NDArray[np.float32],
    k: int,
    exact: ExactVectors | None = None,
    params: Any = None,
) -> list[tuple[int, float]]:
    """The `k` nearest chunk ids with their inner-product scores, best first. A compressed
    index (IVF-PQ) is re-ranked over `exact` stored vectors when they are given."""
    if index.ntotal == 0:
        return []
    compressed = exact is not None and isinstance(index, faiss.IndexIVFPQ)
    want = min(k * RERANK_FACTOR if compressed else k, int(index.ntotal))
    q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    scores, ids = index.search(q, want) if params is None else index.search(q, want, params=params)
    found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    if not compressed or exact is None:
        return found
    return exact_top(exact, [cid for cid, _ in found], q[0], k)


def exact_top(
    exact: ExactVectors, chunk_ids: Sequence[int], query: npt.NDArray[np.float32], k: int
) -> list[tuple[int, float]]:
    """The k of `chunk_ids` nearest to `query` by their stored vectors (a row deleted since
    is simply not there), best first, ties in id order."""
    stored = exact(chunk_ids)
    scored = [(cid, float(vec @ query)) for cid, vec in stored.items()]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:k]


# A filter that leaves this many chunks or fewer is searched exactly over their stored
# vectors: faster than a selective pass through an ANN index, and it always finds k.
EXACT_WITHIN = 20_000


def _filtered_params(index: Any, selector: Any) -> Any:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    # The stubs of faiss's SWIG classes lack these; they exist at run time (faiss >= 1.7.3).
    params: Any
    if isinstance(inner, faiss.IndexHNSW):
        params = getattr(faiss, "SearchParametersHNSW")()  # noqa: B009
        params.efSearch = inner.hnsw.efSearch
    elif isinstance(inner, faiss.IndexIVF):
        params = getattr(faiss, "SearchParametersIVF")()  # noqa: B009
        params.nprobe = inner.nprobe
    else:
        params = getattr(faiss, "SearchParameters")()  # noqa: B009
    params.sel = selector
    return params


def search_within(
    index: Any,
    query: npt.NDArray[np.float32],
    k: int,
    within: npt.NDArray[np.int64],
    exact: ExactVectors,
) -> list[tuple[int, float]]:
    """The `k` nearest of the chunk ids `within` (a metadata filter's chunks), best first:
    the index searches only them (a FAISS ID selector, so the filter applies before top-k),
    and exactly over their stored vectors when they are few or when an approximate index
    finds fewer than k of them (a graph walk can run out of matching neighbours)."""
    if len(within) == 0:
        return []
    want = min(k, len(within))
    if len(within) > EXACT_WITHIN:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(within, dtype=np.int64))
        params = _filtered_params(index, selector)
        found = search_index(index, query, want, exact, params)
        if len(found) >= want:
            return found
    q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    return exact_top(exact, within.tolist(), q, want)


class VectorIndex:
    """The in-memory FAISS index of a collection directory and the generation it mirrors."""

    def __init__(self, directory: Path, config: CollectionConfig) -> None:
        self.directory = directory
        self.config = config
        self._index: Any = None
        self._generation = -1
        # Chunk ids still in the HNSW graph but deleted from SQLite, ascending.
        self._dead: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._skip: Any = None  # the selector that skips them (kept alive beside its params)
        self._save_every = DEFAULT_SAVE_INTERVAL_S
        self._last_save = time.monotonic()

    def path_for(self, generation: int) -> Path:
        return self.directory / f"faiss-g{generation}.index"

    def cached(self, generation: int) -> Any:
        """The index in memory if it mirrors `generation`, else None."""
        if self._index is not None and self._generation == generation:
            return self._index
        return None

    def dead_path(self, generation: int) -> Path:
        return self.directory / f"faiss-g{generation}.dead.npy"

    def read(self, generation: int) -> tuple[Any, npt.NDArray[np.int64]] | None:
        """The index saved for `generation` and its tombstones, or None; the caller checks it
        against SQLite (its live rows: ntotal less the tombstones)."""
        path = self.path_for(generation)
        if not path.is_file():
            return None
        dead = self.dead_path(generation)
        tombs = np.load(dead, allow_pickle=False) if dead.is_file() else np.empty(0, np.int64)
        return faiss.read_index(str(path)), tombs.astype(np.int64)

    @property
    def dead(self) -> npt.NDArray[np.int64]:
        return self._dead

    def _bury(self, index: Any, removed: npt.NDArray[np.int64]) -> bool:
        """Removed rows of an HNSW graph become tombstones; False when there would be too
        many, and the graph must be rebuilt instead."""
        dead = np.union1d(self._dead, removed)
        if len(dead) > TOMBSTONE_SHARE * max(int(index.ntotal), 1):
            return False
        self._set_dead(dead)
        return True

    def _set_dead(self, dead: npt.NDArray[np.int64]) -> None:
        self._dead = np.asarray(dead, dtype=np.int64)
        self._skip = (
            faiss.IDSelectorNot(faiss.IDSelectorBatch(np.ascontiguousarray(self._dead)))
            if len(self._dead)
            else None
        )

    def search_params(self, index: Any) -> Any:
        """Search parameters that skip the tombstones, or None when there are none."""
        if self._skip is None or index is not self._index:
            return None
        return _filtered_params(index, self._skip)

    def build(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> Any:
        """A fresh index over the stored vectors (trained first where the type needs it)."""
        index = _empty_index(self.config, len(ids))
        if not index.is_trained:
            sample = min(len(vectors), TRAIN_PER_LIST * faiss.extract_index_ivf(index).nlist)
            rows = np.random.default_rng(0).choice(len(vectors), sample, replace=False)
            index.train(vectors[np.sort(rows)])
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index

    def catch_up(
        self,
        generation: int,
        current_ids: Callable[[], npt.NDArray[np.int64]],
        vectors: Callable[[Sequence[int]], npt.NDArray[np.float32]],
    ) -> Any:
        """The index in memory moved on to `generation` in place, from what was committed
        since (chunks added and removed), so that a reader does not rebuild the whole index
        for every batch a writer commits. None where it cannot: no index in memory, a type
        that cannot drop rows, or so many changes that a rebuild costs the same. The caller
        reads `current_ids` and `vectors` in one snapshot."""
        index = self._index
        if index is None or not hasattr(index, "id_map"):
            return None  # a trained IVF index keeps no id list to compare with SQLite's
        known = np.setdiff1d(
            faiss.vector_to_array(index.id_map).astype(np.int64), self._dead, assume_unique=True
        )
        current = current_ids()
        gone = np.setdiff1d(known, current, assume_unique=True)
        new = np.setdiff1d(current, known, assume_unique=True)
        total = len(current)
        if not _supports_incremental(self.config, index, total):
            return None
        if len(gone) + len(new) > max(1000, len(current) // 2):
            return None
        if len(gone) and not self._remove(index, gone):
            return None
        if len(new):
            index.add_with_ids(vectors(new.tolist()), new)
        self._generation = generation
        return index

    def _remove(self, index: Any, removed: npt.NDArray[np.int64]) -> bool:
        if self.config.index_type == "hnsw":
            return self._bury(index, removed)
        index.remove_ids(removed)
        return True

    def adopt(self, generation: int, index: Any, dead: npt.NDArray[np.int64] | None = None) -> None:
        self._index = index
        self._generation = generation
        self._set_dead(np.empty(0, np.int64) if dead is None else dead)

    def reconfigure(self, config: CollectionConfig) -> None:
        """New index settings: the index in memory no longer fits and is rebuilt on next use."""
        self.config = config
        self._index = None
        self._set_dead(np.empty(0, np.int64))

    def mirror(
        self,
        generation: int,
        vectors: npt.NDArray[np.float32],
        added: Sequence[int],
        removed: Sequence[int],
    ) -> bool:
        """Apply a committed batch to the index in memory, or drop it where the index type
        cannot follow incrementally. True when the index moved on and a periodic save is due."""
        index = self._index
        total = 0 if index is None else int(index.ntotal) + len(added) - len(removed)
        if index is None or not _supports_incremental(self.config, index, total):
            self._index = None  # rebuilt from SQLite on next use
            return False
        if removed and not self._remove(index, np.asarray(removed, dtype=np.int64)):
            self._index = None
            return False
        if added:
            index.add_with_ids(vectors, np.asarray(added, dtype=np.int64))
        self._generation = generation
        return time.monotonic() - self._last_save >= self._save_every

    def set_save_interval(self, seconds: float) -> None:
        self._save_every = seconds

    def save(self) -> None:
        """Persist the adopted index under its generation (tmp + fsync + rename), then drop the
        files of other generations, which can never be loaded again."""
        if self._index is None:
            raise RuntimeError("no index to save: adopt one first")
        target = self.path_for(self._generation)
        tombs = self.dead_path(self._generation)
        if not target.exists():
            if len(self._dead):
                # Before the index file: a file on disk always finds its tombstones beside it.
                tmp_dead = tombs.with_suffix(".tmp")
                with tmp_dead.open("wb") as handle:
                    np.save(handle, self._dead, allow_pickle=False)
                    handle.flush()
                    os.fsync(handle.fileno())
                tmp_dead.replace(tombs)
            tmp = target.with_suffix(".tmp")
            faiss.write_index(self._index, str(tmp))
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            tmp.replace(target)
            fsync_dir(self.directory)
        # Other generations' files and the temporary files of saves that died half-way
        # (`faiss-gN.tmp`): only the writer gets here, so none of them is being written.
        for old in self.directory.glob("faiss-g*"):
            if old != target and not (old == tombs and len(self._dead)):
                old.unlink(missing_ok=True)
        self._last_save = time.monotonic()
