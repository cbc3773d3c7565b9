"""A collection on disk: SQLite (the source of truth) plus a FAISS index derived from it.

Layout of `<data_dir>/collections/<name>/`:
  meta.sqlite          documents, chunks (text, offsets, float32 vector) and settings
  faiss-g<N>.index     the FAISS index for SQLite generation N (written atomically)
  lock                 flock'ed by the one writer

Crash safety: every batch is one SQLite transaction that also bumps `generation`. The FAISS
file carries its generation in its name, so a process killed between the commit and the FAISS
write leaves a file for an older generation, which is never loaded: the index is rebuilt from
the vectors stored in SQLite (no re-embedding). No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from verirag.core.db import connect
from verirag.core.records import Chunk, CollectionStats, Document, DocumentInfo, SearchHit

SCHEMA_VERSION = "1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    fingerprint TEXT NOT NULL, indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, file_path TEXT NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL,
    content_hash TEXT NOT NULL, fingerprint TEXT NOT NULL, mtime REAL,
    metadata TEXT NOT NULL, indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_file ON documents(file_path);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    text TEXT NOT NULL, n_tokens INTEGER NOT NULL, headings TEXT NOT NULL,
    page_start INTEGER, page_end INTEGER, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
"""


class CollectionError(ValueError):
    """Bad collection name, unknown collection, or incompatible settings."""


class CollectionBusyError(RuntimeError):
    """Another process is writing this collection."""


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise CollectionError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def list_collections(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "meta.sqlite").is_file())


@dataclass(frozen=True)
class CollectionConfig:
    embedder: str
    dim: int
    index_type: str
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int = 0
    ivf_nprobe: int = 16
    pq_m: int = 0


@dataclass(frozen=True)
class BatchWrite:
    """One atomic unit: documents with their chunks and vectors, plus finished files."""

    documents: Sequence[tuple[Document, str, str, Sequence[Chunk]]]  # doc, file, fingerprint
    vectors: npt.NDArray[np.float32]  # one row per chunk, in document order
    finished_files: Sequence[tuple[str, int, int, str, frozenset[str]]]
    # (path, mtime_ns, size, fingerprint, doc ids the file holds now)


@dataclass(frozen=True)
class BatchResult:
    added_chunk_ids: list[int]
    removed_chunk_ids: list[int]
    removed_docs: list[tuple[str, str]]  # (doc_id, source) dropped because their file lost them


class FaissStore:
    """One collection. Opening is cheap; the FAISS index is loaded on first search/write."""

    def __init__(
        self, path: Path, *, create: CollectionConfig | None = None, writable: bool = False
    ) -> None:
        self.path = path
        self.name = path.name
        self._lock_fd: int | None = None
        db_path = path / "meta.sqlite"
        if not db_path.is_file():
            if create is None:
                existing = list_collections(path.parent)
                raise CollectionError(
                    f"unknown collection '{self.name}'"
                    + (f"; existing: {', '.join(existing)}" if existing else "; none exist yet")
                    + " (create one with `verirag index PATH --collection NAME`)"
                )
            path.mkdir(parents=True, exist_ok=True)
        if writable:
            self._acquire_lock()
        self.db = connect(db_path, synchronous_full=True)
        if writable or create is not None:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                if create is not None and self._meta("schema_version") is None:
                    self._init_meta(create)
        self.config = self._load_config()
        self._index: Any = None
        self._index_generation = -1
        self._dirty = False
        self._last_save = time.monotonic()

    # -- bookkeeping ---------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise CollectionBusyError(
                f"collection '{self.name}' is being written by another process; "
                "wait for it to finish"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> FaissStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _init_meta(self, config: CollectionConfig) -> None:
        self._set_meta("schema_version", SCHEMA_VERSION)
        self._set_meta("generation", "0")
        self._set_meta("created_at", str(time.time()))
        self._set_meta("config", json.dumps(config.__dict__))

    def _load_config(self) -> CollectionConfig:
        try:
            raw = self._meta("config")
        except sqlite3.OperationalError as exc:  # the file exists but has no tables yet
            raise CollectionError(
                f"collection '{self.name}' is not initialised (being created, or its creation "
                "was interrupted): run `verirag index` on it again"
            ) from exc
        if raw is None:
            raise CollectionError(f"collection '{self.name}' has no configuration (corrupt?)")
        version = self._meta("schema_version")
        if version != SCHEMA_VERSION:
            raise CollectionError(
                f"collection '{self.name}' has schema {version}, this verirag reads "
                f"{SCHEMA_VERSION}"
            )
        return CollectionConfig(**json.loads(raw))

    @property
    def generation(self) -> int:
        return int(self._meta("generation") or 0)

    def set_index_config(self, config: CollectionConfig) -> None:
        """Change index type or parameters: the vectors are kept, only FAISS is rebuilt."""
        if config.embedder != self.config.embedder or config.dim != self.config.dim:
            raise CollectionError("the embedder of an existing collection cannot change")
        if config == self.config:
            return
        with self.transaction():
            self._set_meta("config", json.dumps(config.__dict__))
            self._bump_generation()
        self.config = config
        self._index = None

    def _bump_generation(self) -> int:
        gen = self.generation + 1
        self._set_meta("generation", str(gen))
        return gen

    # -- reads ---------------------------------------------------------------------------
    def file_state(self, path: str) -> tuple[int, int, str] | None:
        row = self.db.execute(
            "SELECT mtime_ns, size, fingerprint FROM files WHERE path=?", (path,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]))

    def doc_state(self, doc_id: str) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT content_hash, fingerprint FROM documents WHERE doc_id=?", (doc_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def docs_of_file(self, path: str) -> list[tuple[str, str]]:
        rows = self.db.execute(
            "SELECT doc_id, source FROM documents WHERE file_path=? ORDER BY source", (path,)
        ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    def files(self) -> list[str]:
        return [str(r[0]) for r in self.db.execute("SELECT path FROM files ORDER BY path")]

    def documents(self, limit: int | None = None, offset: int = 0) -> list[DocumentInfo]:
        rows = self.db.execute(
            "SELECT d.doc_id, d.source, d.title, d.content_hash, d.indexed_at, d.metadata, "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id) "
            "FROM documents d ORDER BY d.source LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),
        ).fetchall()
        return [
            DocumentInfo(
                doc_id=r[0],
                source=r[1],
                title=r[2],
                content_hash=r[3],
                indexed_at=r[4],
                metadata=json.loads(r[5]),
                n_chunks=r[6],
            )
            for r in rows
        ]

    def find_documents(self, ref: str) -> list[tuple[str, str]]:
        """Documents matching an id, an exact source, or every document of a file path."""
        rows = self.db.execute(
            "SELECT doc_id, source FROM documents WHERE doc_id=? OR source=? OR file_path=?",
            (ref, ref, ref),
        ).fetchall()
        if not rows:
            resolved = str(Path(ref).expanduser().resolve())
            rows = self.db.execute(
                "SELECT doc_id, source FROM documents WHERE source=? OR file_path=? "
                "OR file_path LIKE ? ESCAPE '\\'",
                (resolved, resolved, _like_prefix(resolved)),
            ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    def count(self, table: str) -> int:
        assert table in ("documents", "chunks", "files")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def stats(self) -> CollectionStats:
        disk = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        index = self.index()
        return CollectionStats(
            name=self.name,
            documents=self.count("documents"),
            chunks=self.count("chunks"),
            vectors=int(index.ntotal),
            dim=self.config.dim,
            embedder=self.config.embedder,
            index_type=self.config.index_type,
            generation=self.generation,
            disk_bytes=disk,
            chunk_tokens=int(self._meta("chunk_tokens") or 0),
            chunk_overlap=int(self._meta("chunk_overlap") or 0),
        )

    def record_chunking(self, chunk_tokens: int, overlap: int) -> None:
        with self.transaction():
            self._set_meta("chunk_tokens", str(chunk_tokens))
            self._set_meta("chunk_overlap", str(overlap))

    # -- writes --------------------------------------------------------------------------
    def write_batch(self, batch: BatchWrite) -> BatchResult:
        """Apply one batch atomically, then mirror it into the in-memory FAISS index."""
        added: list[int] = []
        removed: list[int] = []
        removed_docs: list[tuple[str, str]] = []
        now = time.time()
        row = 0
        if self.config.index_type != "ivfpq":
            self.index()  # load the current generation before it moves on
        with self.transaction() as db:
            for doc, file_path, fingerprint, chunks in batch.documents:
                removed.extend(self._delete_doc(doc.doc_id, keep_row=True))
                db.execute(
                    "INSERT INTO documents(doc_id, file_path, source, title, content_hash, "
                    "fingerprint, mtime, metadata, indexed_at) VALUES (?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(doc_id) DO UPDATE SET file_path=excluded.file_path, "
                    "source=excluded.source, title=excluded.title, "
                    "content_hash=excluded.content_hash, fingerprint=excluded.fingerprint, "
                    "mtime=excluded.mtime, metadata=excluded.metadata, "
                    "indexed_at=excluded.indexed_at",
                    (
                        doc.doc_id,
                        file_path,
                        doc.source,
                        doc.title,
                        doc.content_hash,
                        fingerprint,
                        doc.mtime,
                        json.dumps(doc.metadata, default=str),
                        now,
                    ),
                )
                for chunk in chunks:
                    vec = batch.vectors[row]
                    row += 1
                    cur = db.execute(
                        'INSERT INTO chunks(doc_id, ordinal, start, "end", text, n_tokens, '
                        "headings, page_start, page_end, vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (
                            doc.doc_id,
                            chunk.ordinal,
                            chunk.start,
                            chunk.end,
                            chunk.text,
                            chunk.n_tokens,
                            json.dumps(chunk.headings),
                            chunk.pages[0] if chunk.pages else None,
                            chunk.pages[1] if chunk.pages else None,
                            np.ascontiguousarray(vec, dtype=np.float32).tobytes(),
                        ),
                    )
                    assert cur.lastrowid is not None
                    added.append(int(cur.lastrowid))
            if row != len(batch.vectors):
                raise ValueError(f"{len(batch.vectors)} vectors for {row} chunks")
            for path, mtime_ns, size, fingerprint, current in batch.finished_files:
                for doc_id, source in self.docs_of_file(path):
                    if doc_id not in current:
                        removed.extend(self._delete_doc(doc_id))
                        removed_docs.append((doc_id, source))
                db.execute(
                    "INSERT INTO files(path, mtime_ns, size, fingerprint, indexed_at) "
                    "VALUES (?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
                    "mtime_ns=excluded.mtime_ns, size=excluded.size, "
                    "fingerprint=excluded.fingerprint, indexed_at=excluded.indexed_at",
                    (path, mtime_ns, size, fingerprint, now),
                )
            gen = self._bump_generation()
        self._mirror(gen, batch.vectors, added, removed)
        return BatchResult(added, removed, removed_docs)

    def delete_documents(self, doc_ids: Sequence[str], files: Sequence[str] = ()) -> int:
        """Delete documents (and forget files) in one transaction; returns chunks removed."""
        removed: list[int] = []
        with self.transaction() as db:
            # Forget the files too, so re-indexing a still-present source brings it back.
            forget = set(files)
            for doc_id in doc_ids:
                row = db.execute(
                    "SELECT file_path FROM documents WHERE doc_id=?", (doc_id,)
                ).fetchone()
                if row is not None:
                    forget.add(str(row[0]))
                removed.extend(self._delete_doc(doc_id))
            for path in sorted(forget):
                db.execute("DELETE FROM files WHERE path=?", (path,))
            gen = self._bump_generation()
        self._mirror(gen, np.zeros((0, self.config.dim), np.float32), [], removed)
        return len(removed)

    def _delete_doc(self, doc_id: str, keep_row: bool = False) -> list[int]:
        ids = [
            int(r[0])
            for r in self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))
        ]
        self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        if not keep_row:
            self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return ids

    # -- FAISS ---------------------------------------------------------------------------
    def _faiss_path(self, generation: int) -> Path:
        return self.path / f"faiss-g{generation}.index"

    def index(self) -> Any:
        """The FAISS index for the committed generation: loaded if on disk, else rebuilt."""
        gen = self.generation
        if self._index is not None and self._index_generation == gen:
            return self._index
        path = self._faiss_path(gen)
        index = None
        if path.is_file():
            index = faiss.read_index(str(path))
            if index.ntotal != self.count("chunks"):
                index = None  # never trust a file that disagrees with SQLite
        if index is None:
            index = self._build()
        self._index = index
        self._index_generation = gen
        self._dirty = False
        return index

    def _vectors(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        n = self.count("chunks")
        ids = np.empty(n, dtype=np.int64)
        vecs = np.empty((n, self.config.dim), dtype=np.float32)
        for i, (cid, blob) in enumerate(
            self.db.execute("SELECT chunk_id, vector FROM chunks ORDER BY chunk_id")
        ):
            ids[i] = cid
            vecs[i] = np.frombuffer(blob, dtype=np.float32)
        return ids, vecs

    def _empty_index(self, n_train: int) -> Any:
        cfg = self.config
        if cfg.index_type == "hnsw":
            inner = faiss.IndexHNSWFlat(cfg.dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = cfg.hnsw_ef_search
            inner.hnsw.efConstruction = max(40, 2 * cfg.hnsw_m)
            return faiss.IndexIDMap2(inner)
        if cfg.index_type == "ivfpq":
            nlist = cfg.ivf_nlist or max(1, int(4 * np.sqrt(max(n_train, 1))))
            m = cfg.pq_m or max(1, cfg.dim // 8)
            # Below ~39 points per centroid and 256 per PQ code book training is unreliable;
            # such a small collection is searched exactly until it grows.
            if n_train >= max(39 * nlist, 256 * 4):
                quantizer = faiss.IndexFlatIP(cfg.dim)
                ivf = faiss.IndexIVFPQ(quantizer, cfg.dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
                ivf.nprobe = cfg.ivf_nprobe
                return ivf
        return faiss.IndexIDMap2(faiss.IndexFlatIP(cfg.dim))

    def _build(self) -> Any:
        ids, vecs = self._vectors()
        index = self._empty_index(len(ids))
        if not index.is_trained:
            index.train(vecs)
        if len(ids):
            index.add_with_ids(vecs, ids)
        return index

    def _supports_incremental(self, removing: bool) -> bool:
        if self.config.index_type == "flat":
            return True
        if self.config.index_type == "hnsw":
            return not removing  # HNSW graphs cannot drop nodes
        return False  # IVF-PQ is retrained from the stored vectors

    def _mirror(
        self, gen: int, vectors: npt.NDArray[np.float32], added: list[int], removed: list[int]
    ) -> None:
        index = self._index
        if index is not None and self._supports_incremental(bool(removed)):
            if removed:
                index.remove_ids(np.asarray(removed, dtype=np.int64))
            if added:
                index.add_with_ids(vectors, np.asarray(added, dtype=np.int64))
            self._index_generation = gen
            if time.monotonic() - self._last_save >= self._save_every:
                self.save()
        else:
            self._index = None  # rebuilt from SQLite on next use

    _save_every = 60.0

    def set_save_interval(self, seconds: float) -> None:
        self._save_every = seconds

    def save(self) -> None:
        """Persist the index for the current generation (tmp + fsync + rename)."""
        index = self.index()
        gen = self._index_generation
        target = self._faiss_path(gen)
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            faiss.write_index(index, str(tmp))
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            tmp.replace(target)
            _fsync_dir(self.path)
        for old in self.path.glob("faiss-g*.index*"):
            if old != target:
                old.unlink(missing_ok=True)
        self._last_save = time.monotonic()

    def search(self, query: npt.NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        index = self.index()
        if index.ntotal == 0:
            return []
        scores, ids = index.search(
            np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), min(k, int(index.ntotal))
        )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors_for(self, chunk_ids: Sequence[int]) -> dict[int, npt.NDArray[np.float32]]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        return {
            int(cid): np.frombuffer(blob, dtype=np.float32)
            for cid, blob in self.db.execute(
                f"SELECT chunk_id, vector FROM chunks WHERE chunk_id IN ({marks})", list(chunk_ids)
            )
        }

    def hits(self, ranked: Sequence[tuple[int, float]]) -> list[SearchHit]:
        if not ranked:
            return []
        marks = ",".join("?" * len(ranked))
        rows = {
            int(r[0]): r
            for r in self.db.execute(
                f'SELECT c.chunk_id, c.doc_id, d.source, d.title, c.text, c.start, c."end", '
                f"c.headings, c.page_start, c.page_end FROM chunks c JOIN documents d "
                f"ON d.doc_id = c.doc_id WHERE c.chunk_id IN ({marks})",
                [cid for cid, _ in ranked],
            )
        }
        out: list[SearchHit] = []
        for cid, score in ranked:
            r = rows.get(cid)
            if r is None:
                continue
            out.append(
                SearchHit(
                    rank=len(out) + 1,
                    score=score,
                    chunk_id=cid,
                    doc_id=r[1],
                    source=r[2],
                    title=r[3],
                    text=r[4],
                    start=r[5],
                    end=r[6],
                    headings=tuple(json.loads(r[7])),
                    pages=(r[8], r[9]) if r[8] is not None else None,
                )
            )
        return out


def _like_prefix(path: str) -> str:
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_collection(root: Path, name: str) -> None:
    path = root / validate_name(name)
    if not (path / "meta.sqlite").is_file():
        raise CollectionError(f"unknown collection '{name}'")
    with FaissStore(path, writable=True):
        pass  # taking the lock proves no writer is active
    shutil.rmtree(path)
