"""BM25 over a collection's chunks, kept in immutable segments beside the FAISS index, so that
a small add tokenizes only the new chunks and a delete rewrites nothing.

Why not bm25s's own index: it bakes the corpus-wide statistics (document frequency, mean
length) into its stored scores, so any add or delete means re-tokenizing and re-scoring every
chunk (217 s at a million chunks, `bench/scale.py`). Here each segment stores raw term counts
(bm25s's tokenizer, scipy sparse columns), and a query is scored with statistics over the
chunks alive in the reader's SQLite snapshot: the same Lucene BM25 as
`bm25s.BM25(method="lucene")` over the live chunks (tested). A reader masks chunks deleted
since its segments were saved; the writer rewrites the segments that held them.

The same segments hold the learned sparse side's term weights (`retrievers/learned_sparse.py`,
under `<collection>/splade/`): `SegmentKind` says how a kind builds a segment and searches.

Layout of `<collection>/bm25/`:
  seg-<G>-<K>-<R>/   one segment: ids.npy, lengths.npy, terms.json and the postings
                     (CSC arrays, .npy, no pickle), written to a temporary folder and renamed
  manifest.json      the segments in use, replaced atomically (written last)

Chunk ids are never reused (SQLite AUTOINCREMENT) and a chunk's text and title never change
(an update re-inserts its chunks), so a segment stays valid for as long as any of its chunks
lives. Only a writer saves segments, replaces the manifest and removes what it no longer
names; a reader builds what is missing in memory and never writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from verirag.retrievers.store import FaissStore

# Parameters of the reference BM25 run on SQuAD in ../shared/data/README.md.
K1 = 0.9
B = 0.4
# A writer merges MERGE_FACTOR segments of one size tier (sizes a power of MERGE_FACTOR
# apart), and rewrites any segment that holds a deleted chunk (deleting means deleted: no
# word of it stays on disk); both copy stored counts, nothing is tokenized again.
MERGE_FACTOR = 4
SUBDIR = "bm25"

Ids = npt.NDArray[np.int64]


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased words without English stopwords, as BM25 indexes them."""
    import bm25s

    tokens: list[list[str]] = bm25s.tokenize(
        texts, stopwords="en", return_ids=False, show_progress=False
    )
    return tokens


@dataclass
class Segment:
    """Term counts of a fixed set of chunks: row i is chunk `ids[i]`, column j term `terms[j]`."""

    ids: Ids  # ascending
    lengths: npt.NDArray[np.float32]  # tokens per chunk (stopwords removed)
    terms: dict[str, int]
    indptr: npt.NDArray[np.int64]  # CSC: column j's rows are rows[indptr[j]:indptr[j + 1]]
    rows: npt.NDArray[np.int32]
    counts: npt.NDArray[np.float32]
    name: str = ""  # its folder under bm25/, "" while only in memory

    @classmethod
    def from_texts(cls, ids: Ids, texts: list[str]) -> Segment:
        from scipy import sparse

        tokens = tokenize(texts) if texts else []
        terms: dict[str, int] = {}
        cols: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for i, doc in enumerate(tokens):
            lengths[i] = len(doc)
            cols.extend(terms.setdefault(t, len(terms)) for t in doc)
        doc_of = np.repeat(np.arange(len(texts), dtype=np.int32), lengths.astype(np.int64))
        matrix = sparse.csc_matrix(
            (np.ones(len(cols), dtype=np.float32), (doc_of, np.asarray(cols, dtype=np.int64))),
            shape=(len(texts), len(terms)),
        )
        matrix.sum_duplicates()
        return cls._of(ids, lengths, terms, matrix)

    @classmethod
    def from_weights(
        cls, ids: Ids, rows: Sequence[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]]
    ) -> Segment:
        """A segment of given term weights: row i is (term ids, weights) of chunk `ids[i]`,
        a term named by its id; `lengths` holds each row's number of terms."""
        from scipy import sparse

        terms: dict[str, int] = {}
        cols: list[int] = []
        data: list[npt.NDArray[np.float32]] = []
        lengths = np.zeros(len(rows), dtype=np.float32)
        for i, (term_ids, weights) in enumerate(rows):
            lengths[i] = len(term_ids)
            cols.extend(terms.setdefault(str(int(t)), len(terms)) for t in term_ids)
            data.append(np.asarray(weights, dtype=np.float32))
        doc_of = np.repeat(np.arange(len(rows), dtype=np.int32), lengths.astype(np.int64))
        matrix = sparse.csc_matrix(
            (
                np.concatenate(data) if data else np.zeros(0, np.float32),
                (doc_of, np.asarray(cols, dtype=np.int64)),
            ),
            shape=(len(rows), len(terms)),
        )
        matrix.sum_duplicates()
        return cls._of(ids, lengths, terms, matrix)

    @classmethod
    def _of(
        cls, ids: Ids, lengths: npt.NDArray[np.float32], terms: dict[str, int], matrix: Any
    ) -> Segment:
        return cls(
            np.asarray(ids, dtype=np.int64),
            np.asarray(lengths, dtype=np.float32),
            terms,
            np.asarray(matrix.indptr, dtype=np.int64),
            np.asarray(matrix.indices, dtype=np.int32),
            np.asarray(matrix.data, dtype=np.float32),
        )

    def matrix(self) -> Any:
        from scipy import sparse

        return sparse.csc_matrix(
            (self.counts, self.rows, self.indptr), shape=(len(self.ids), len(self.terms))
        )

    def postings(self, term: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        j = self.terms.get(term)
        if j is None:
            return np.empty(0, np.int32), np.empty(0, np.float32)
        lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
        return self.rows[lo:hi], self.counts[lo:hi]

    def save(self, folder: Path) -> None:
        """Write to a temporary folder beside `folder`, then rename: a segment on disk is whole."""
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".seg."))
        try:
            for name in ("ids", "lengths", "indptr", "rows", "counts"):
                np.save(tmp / f"{name}.npy", getattr(self, name), allow_pickle=False)
            vocab = sorted(self.terms, key=self.terms.__getitem__)
            (tmp / "terms.json").write_text(json.dumps(vocab))
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.name = folder.name

    @classmethod
    def load(cls, folder: Path) -> Segment:
        arrays = {
            name: np.load(folder / f"{name}.npy", allow_pickle=False)
            for name in ("ids", "lengths", "indptr", "rows", "counts")
        }
        vocab = json.loads((folder / "terms.json").read_text())
        segment = cls(terms={t: j for j, t in enumerate(vocab)}, name=folder.name, **arrays)
        if len(segment.indptr) != len(vocab) + 1 or len(segment.lengths) != len(segment.ids):
            raise ValueError(f"{folder}: a damaged index segment")
        return segment


def merge(segments: list[Segment], alive: list[npt.NDArray[np.bool_]]) -> Segment:
    """One segment holding the live chunks of `segments`, from their stored counts."""
    from scipy import sparse

    terms: dict[str, int] = {}
    rows, cols, data, ids, lengths = [], [], [], [], []
    offset = 0
    for seg, keep in zip(segments, alive, strict=True):
        remap = np.asarray([terms.setdefault(t, len(terms)) for t in seg.terms], dtype=np.int64)
        coo = seg.matrix().tocsr()[np.flatnonzero(keep)].tocoo()
        rows.append(coo.row.astype(np.int64) + offset)
        cols.append(remap[coo.col])
        data.append(coo.data)
        ids.append(seg.ids[keep])
        lengths.append(seg.lengths[keep])
        offset += int(keep.sum())
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))  # row i of the merge goes to position[i]
    col = np.concatenate(cols)
    # Terms only deleted chunks used go too: a deleted document leaves no word behind.
    used = np.flatnonzero(np.bincount(col, minlength=len(terms)))
    renumber = np.full(len(terms), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    vocab = sorted(terms, key=terms.__getitem__)
    matrix = sparse.csc_matrix(
        (np.concatenate(data).astype(np.float32), (position[np.concatenate(rows)], renumber[col])),
        shape=(offset, len(used)),
    )
    kept_terms = {vocab[j]: k for k, j in enumerate(used.tolist())}
    return Segment._of(all_ids[order], np.concatenate(lengths)[order], kept_terms, matrix)


@dataclass
class SegmentIndex:
    """The segments serving one committed generation, with which of their chunks are alive."""

    segments: list[Segment]
    alive: list[npt.NDArray[np.bool_]]
    _n: int = field(init=False)

    def __post_init__(self) -> None:
        self._n = int(sum(int(a.sum()) for a in self.alive))

    def __len__(self) -> int:
        return self._n

    def _top_k(
        self, k: int, within: Ids | None, score: Callable[[Segment], npt.NDArray[np.float32]]
    ) -> list[tuple[int, float]]:
        """The k best live chunks (positive scores only) by `score`, a segment's scores per
        row; only among the chunk ids `within` when given (masked out before ranking)."""
        ids: list[Ids] = []
        scores: list[npt.NDArray[np.float32]] = []
        for seg, live in zip(self.segments, self.alive, strict=True):
            keep = live if within is None else live & np.isin(seg.ids, within)
            if not keep.any():
                continue
            total = score(seg)
            hit = np.flatnonzero(keep & (total > 0))
            if len(hit) > k:
                # Everything scoring at least the k-th best (ties included), found in linear
                # time: a full sort of every matching chunk was most of a query's time.
                kth = np.partition(total[hit], len(hit) - k)[len(hit) - k]
                hit = hit[total[hit] >= kth]
            if len(hit):
                top = hit[np.lexsort((seg.ids[hit], -total[hit]))[:k]]
                ids.append(seg.ids[top])
                scores.append(total[top])
        if not ids:
            return []
        all_ids, all_scores = np.concatenate(ids), np.concatenate(scores)
        # Ties go to the lower chunk id, whichever segment holds it.
        order = np.lexsort((all_ids, -all_scores))[:k]
        return [(int(all_ids[i]), float(all_scores[i])) for i in order]


@dataclass
class Bm25Index(SegmentIndex):
    _avgdl: float = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        pairs = zip(self.segments, self.alive, strict=True)
        total = sum(float(s.lengths[a].sum()) for s, a in pairs)
        self._avgdl = total / self._n if self._n else 0.0

    def idf(self, terms: list[str]) -> dict[str, float]:
        """Lucene's inverse document frequency of each of `terms` the live chunks contain.

        Document frequency is counted over live chunks, so a deleted chunk no longer counts.
        """
        pairs = list(zip(self.segments, self.alive, strict=True))
        df = {t: sum(int(a[s.postings(t)[0]].sum()) for s, a in pairs) for t in set(terms)}
        return {t: float(np.log1p((self._n - d + 0.5) / (d + 0.5))) for t, d in df.items() if d}

    def search(self, query: str, k: int, within: Ids | None = None) -> list[tuple[int, float]]:
        """Top-k chunks by Lucene BM25 over the live chunks; only among the chunk ids `within`
        when given (a filter's: the others are masked out before ranking)."""
        if self._n == 0 or k <= 0:
            return []
        terms = tokenize([query])[0]
        if not any(t in s.terms for s in self.segments for t in terms):
            return []
        idf = self.idf(terms)

        def score(seg: Segment) -> npt.NDArray[np.float32]:
            total = np.zeros(len(seg.ids), dtype=np.float32)
            for t in terms:  # a repeated query word counts each time, as in bm25s
                if t not in idf:
                    continue
                rows, tf = seg.postings(t)
                norm = K1 * ((1 - B) + B * seg.lengths[rows] / self._avgdl)
                total[rows] += (idf[t] * tf / (norm + tf)).astype(np.float32)
            return total

        return self._top_k(k, within, score)


def _read_manifest(root: Path) -> list[str]:
    try:
        names = json.loads((root / "manifest.json").read_text())["segments"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [str(n) for n in names]


def _load_segments(root: Path, names: list[str], cached: dict[str, Segment]) -> list[Segment]:
    out = []
    for name in names:
        seg = cached.get(name)
        if seg is None:
            try:
                seg = Segment.load(root / name)
            except (OSError, ValueError):
                continue  # replaced by a writer's merge since the manifest was read
        out.append(seg)
    return out


IndexT = TypeVar("IndexT", bound=SegmentIndex)


@dataclass(frozen=True)
class SegmentKind(Generic[IndexT]):
    """One kind of segmented index over a collection's chunks: its folder, how it builds a
    segment for chunks no saved segment holds (ids, their lexical texts), and its index."""

    subdir: str
    build: Callable[[Ids, list[str]], Segment]
    index: Callable[[list[Segment], list[npt.NDArray[np.bool_]]], IndexT]


BM25 = SegmentKind(SUBDIR, Segment.from_texts, Bm25Index)


def assemble(store: FaissStore, previous: list[Segment], kind: SegmentKind[IndexT]) -> IndexT:
    """The index of the store's current snapshot: the saved (or cached) segments, masked to
    the live chunks, plus one new segment for the live chunks none of them holds."""
    root = store.path / kind.subdir
    cached = {s.name: s for s in previous if s.name}
    segments = _load_segments(root, _read_manifest(root), cached)
    covered = np.concatenate([s.ids for s in segments]) if segments else np.empty(0, np.int64)
    if len(np.unique(covered)) != len(covered):
        segments, covered = [], np.empty(0, np.int64)  # overlapping on disk: start again
    for own in (s for s in previous if not s.name):
        # A reader's own segment, kept in memory, unless a writer has saved its chunks since.
        if not np.isin(own.ids, covered, assume_unique=True).any():
            segments.append(own)
            covered = np.concatenate([covered, own.ids])
    live = store.chunk_ids()
    alive = [np.isin(s.ids, live, assume_unique=True) for s in segments]
    keep = [i for i, a in enumerate(alive) if a.any()]
    segments, alive = [segments[i] for i in keep], [alive[i] for i in keep]
    missing = np.setdiff1d(live, covered, assume_unique=True)
    if len(missing):
        segments.append(kind.build(missing, store.lexical_texts(missing)))
        alive.append(np.ones(len(missing), dtype=bool))
    return kind.index(segments, alive)


def _compact(index: IndexT) -> IndexT:
    """Merge what the policy asks for: segments that hold deleted chunks, and segments of
    about the same size once there are MERGE_FACTOR of them. Tiered, as Lucene merges, so
    that a chunk is copied O(log n) times over a collection's life, not at every add."""
    pairs = list(zip(index.segments, index.alive, strict=True))
    worn = [i for i, (_, alive) in enumerate(pairs) if not alive.all()]
    tiers: dict[int, list[int]] = {}
    for i, (_, alive) in enumerate(pairs):
        if i not in worn:
            tiers.setdefault(int(math.log(max(int(alive.sum()), 1), MERGE_FACTOR)), []).append(i)
    full = [i for tier in tiers.values() if len(tier) >= MERGE_FACTOR for i in tier]
    merging = worn + full
    if not merging:
        return index
    merged = merge([pairs[i][0] for i in merging], [pairs[i][1] for i in merging])
    chosen = set(merging)
    kept = [p for i, p in enumerate(pairs) if i not in chosen]
    kept.append((merged, np.ones(len(merged.ids), dtype=bool)))
    return type(index)([p[0] for p in kept], [p[1] for p in kept])


def _save(store: FaissStore, index: SegmentIndex, gen: int, subdir: str = SUBDIR) -> None:
    root = store.path / subdir
    root.mkdir(exist_ok=True)
    for k, seg in enumerate(index.segments):
        if not seg.name or not (root / seg.name).is_dir():
            seg.save(root / f"seg-{gen}-{k}-{uuid.uuid4().hex[:8]}")
    tmp = root / ".manifest.tmp"
    tmp.write_text(json.dumps({"segments": [s.name for s in index.segments], "generation": gen}))
    tmp.replace(root / "manifest.json")
    names = {s.name for s in index.segments}
    for old in root.iterdir():
        if old.name != "manifest.json" and old.name not in names:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    if subdir == SUBDIR:
        for legacy in store.path.glob("bm25-g*"):  # the whole-index format before segments
            shutil.rmtree(legacy, ignore_errors=True)


# A reader whose BM25 index is older than the committed generation serves it (consistent, if
# stale: rows deleted since are dropped when hits are read) until this many times its
# catch-up time has passed, so that a writer committing batch after batch does not make every
# question catch BM25 up. Small collections catch up in milliseconds and are always fresh.
STALE_FACTOR = 10.0


@dataclass
class _Cached(Generic[IndexT]):
    generation: int
    index: IndexT
    built_at: float
    build_seconds: float


def _caches(store: FaissStore) -> dict[str, _Cached[Any]]:
    """The store's in-memory segment indexes, by kind (its folder)."""
    caches: dict[str, _Cached[Any]] = store.__dict__.setdefault("_segment_indexes", {})
    return caches


def drop_index(store: FaissStore, subdir: str) -> None:
    """Forget and remove a kind's segments (their producer changes; a later `index_for`
    builds them anew)."""
    _caches(store).pop(subdir, None)
    shutil.rmtree(store.path / subdir, ignore_errors=True)


def bm25_for(store: FaissStore) -> Bm25Index:
    """The BM25 index of the store's committed generation (`index_for`)."""
    return index_for(store, BM25)


def index_for(store: FaissStore, kind: SegmentKind[IndexT]) -> IndexT:
    """The `kind` index of the store's committed generation, read in one snapshot: from
    memory, caught up from the segments on disk and in memory. A writer then saves the new
    segment (and any merge) and removes what the manifest no longer names; a reader never
    writes or removes index files (it could remove what a writer just saved)."""
    caches = _caches(store)
    cached: _Cached[IndexT] | None = caches.get(kind.subdir)
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
        started = time.monotonic()
        index = assemble(store, cached.index.segments if cached is not None else [], kind)
    if store.writable:
        index = _compact(index)
        with contextlib.suppress(OSError):  # a read-only collection still searches, from memory
            _save(store, index, gen, kind.subdir)
    caches[kind.subdir] = _Cached(gen, index, time.monotonic(), time.monotonic() - started)
    return index
