"""A collection on disk: SQLite (the source of truth) plus a FAISS index derived from it.

Layout of `<data_dir>/collections/<name>/`:
  meta.sqlite          documents, chunks (text, offsets, float32 vector) and settings
  faiss-g<N>.index     the FAISS index for SQLite generation N (written atomically)
  lock                 flock'ed by the one writer

Crash safety: every batch is one SQLite transaction that also bumps `generation`. The FAISS
file carries its generation in its name, so a process killed between the commit and the FAISS
write leaves a file for an older generation, which is never loaded: the index is rebuilt from
the vectors stored in SQLite (no re-embedding). No pickle anywhere.

The store owns the SQLite side and hands ids and vectors to its vector backend
(`vector_backend`: FAISS files through `vector_index`, the default, or Milvus through
`milvus_vectors`), which mirrors SQLite by generation in the same way; `collection_schema`
defines the tables, `batch` the rows a batch writes, and `collection_dir` the name, settings
and writer lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from verirag.core.db import connect
from verirag.core.records import CollectionStats, DocumentInfo, SearchHit
from verirag.retrievers.batch import (
    BatchResult,
    BatchWrite,
    delete_document,
    insert_chunk,
    upsert_document,
    upsert_file,
)
from verirag.retrievers.collection_dir import (
    CollectionBusyError,
    CollectionConfig,
    CollectionError,
    WriterLock,
    collection_exists,
    list_collections,
    validate_name,
)
from verirag.retrievers.collection_schema import (
    SCHEMA_VERSION,
    create_tables,
    get_meta,
    init_meta,
    load_config,
    set_meta,
)
from verirag.retrievers.filters import MetadataFilter
from verirag.retrievers.milvus_vectors import milvus_collection_name
from verirag.retrievers.vector_backend import FaissBackend, VectorBackend, open_backend

__all__ = [
    "SCHEMA_VERSION",
    "BatchResult",
    "BatchWrite",
    "CollectionBusyError",
    "CollectionConfig",
    "CollectionError",
    "FaissStore",
    "collection_exists",
    "drop_collection",
    "list_collections",
    "validate_name",
]


class FaissStore:
    """One collection. Opening is cheap; the FAISS index is loaded on first search/write."""

    def __init__(
        self, path: Path, *, create: CollectionConfig | None = None, writable: bool = False
    ) -> None:
        self.path = path
        self.name = path.name
        self._lock: WriterLock | None = None
        # One connection serves every thread of the process: reads that must see one
        # committed state (a snapshot) take turns on it.
        self._reading = threading.RLock()
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
            self._lock = WriterLock(path)
        self.db = connect(db_path, synchronous_full=True)
        self._identity = _file_identity(db_path)
        if writable or create is not None:
            with self.transaction():
                create_tables(self.db)
                if create is not None and get_meta(self.db, "schema_version") is None:
                    init_meta(self.db, create)
        self.config = load_config(self.db, self.name)
        # FAISS files or Milvus (`vector_backend`); a writer's Milvus catches up here.
        self.vectors: VectorBackend = open_backend(self, self.config)

    # -- bookkeeping ---------------------------------------------------------------------
    def is_current(self) -> bool:
        """False once the collection was dropped (or dropped and created anew) under this
        open store, e.g. by `verirag drop` while a server holds it: a reader must reopen."""
        return _file_identity(self.path / "meta.sqlite") == self._identity

    def close(self) -> None:
        with self._reading:  # not under another thread's snapshot
            self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> FaissStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._reading:  # not inside another thread's snapshot on this connection
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every read inside sees the same committed state, whatever a
        writer commits meanwhile (WAL). Inside a write transaction, that transaction."""
        with self._reading:
            if self.db.in_transaction:
                yield self.db
                return
            self.db.execute("BEGIN")  # deferred: the snapshot is taken at the first read
            try:
                yield self.db
            finally:
                self.db.execute("COMMIT")

    @property
    def reading(self) -> threading.RLock:
        return self._reading

    @property
    def writable(self) -> bool:
        """This store holds the collection's writer lock (only a writer writes index files)."""
        return self._lock is not None

    @property
    def generation(self) -> int:
        return int(get_meta(self.db, "generation") or 0)

    def set_index_config(self, config: CollectionConfig) -> None:
        """Change index type or parameters: the vectors are kept, only FAISS is rebuilt (not
        even FAISS when only the learned sparse model changes)."""
        if config.embedder != self.config.embedder or config.dim != self.config.dim:
            raise CollectionError("the embedder of an existing collection cannot change")
        if config == self.config:
            return
        if replace(config, splade_model="") == replace(self.config, splade_model=""):
            # Only the learned sparse side changes: the vectors and their index stay.
            with self.transaction():
                set_meta(self.db, "config", json.dumps(config.__dict__))
                self._bump_generation()
            self.config = config
            return
        old = self.vectors
        with self.transaction():
            set_meta(self.db, "config", json.dumps(config.__dict__))
            self._bump_generation()
            if config.backend == "milvus":
                # A new Milvus collection (its index type is fixed at creation), filled from
                # SQLite's vectors when the backend opens.
                set_meta(self.db, "milvus_collection", milvus_collection_name(self.name))
                set_meta(self.db, "milvus_generation", "-1")
        self.config = config
        self.vectors = open_backend(self, config)
        old.drop()

    def _bump_generation(self) -> int:
        gen = self.generation + 1
        set_meta(self.db, "generation", str(gen))
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
        vectors = self.vector_count()
        return CollectionStats(
            name=self.name,
            documents=self.count("documents"),
            chunks=self.count("chunks"),
            vectors=vectors,
            dim=self.config.dim,
            embedder=self.config.embedder,
            index_type=self.config.index_type,
            generation=self.generation,
            disk_bytes=disk,
            chunk_tokens=int(get_meta(self.db, "chunk_tokens") or 0),
            chunk_overlap=int(get_meta(self.db, "chunk_overlap") or 0),
        )

    def record_chunking(self, chunk_tokens: int, overlap: int) -> None:
        with self.transaction():
            set_meta(self.db, "chunk_tokens", str(chunk_tokens))
            set_meta(self.db, "chunk_overlap", str(overlap))

    # -- writes --------------------------------------------------------------------------
    def write_batch(self, batch: BatchWrite) -> BatchResult:
        """Apply one batch atomically, then mirror it into the in-memory FAISS index."""
        added: list[int] = []
        removed: list[int] = []
        removed_docs: list[tuple[str, str]] = []
        now = time.time()
        row = 0
        self.vectors.before_write()
        with self.transaction() as db:
            for doc, file_path, fingerprint, chunks in batch.documents:
                removed.extend(delete_document(db, doc.doc_id, keep_row=True))
                upsert_document(db, doc, file_path, fingerprint, now)
                for chunk in chunks:
                    added.append(insert_chunk(db, doc.doc_id, chunk, batch.vectors[row]))
                    row += 1
            if row != len(batch.vectors):
                raise ValueError(f"{len(batch.vectors)} vectors for {row} chunks")
            for path, mtime_ns, size, fingerprint, current in batch.finished_files:
                for doc_id, source in self.docs_of_file(path):
                    if doc_id not in current:
                        removed.extend(delete_document(db, doc_id))
                        removed_docs.append((doc_id, source))
                upsert_file(db, path, mtime_ns, size, fingerprint, now)
            gen = self._bump_generation()
        self.vectors.after_commit(gen, batch.vectors, added, removed)
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
                removed.extend(delete_document(db, doc_id))
            for path in sorted(forget):
                db.execute("DELETE FROM files WHERE path=?", (path,))
            gen = self._bump_generation()
        self.vectors.after_commit(gen, np.zeros((0, self.config.dim), np.float32), [], removed)
        return len(removed)

    # -- vectors -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        return get_meta(self.db, key)

    def set_meta(self, key: str, value: str, **more: str) -> None:
        """Bookkeeping values, in one transaction of their own (a writer's)."""
        with self.transaction():
            for name, text in {key: value, **more}.items():
                set_meta(self.db, name, text)

    def index(self) -> Any:
        """The FAISS index for the committed generation (`FaissBackend.index`)."""
        if not isinstance(self.vectors, FaissBackend):
            raise CollectionError(
                f"collection '{self.name}' keeps its vectors in Milvus, not in a FAISS index"
            )
        return self.vectors.index()

    def vector_count(self) -> int:
        """Rows the index serves: its vectors less the tombstones an HNSW graph keeps."""
        return self.vectors.count()

    def chunk_ids(self) -> npt.NDArray[np.int64]:
        """Every chunk id, ascending. Read without ORDER BY, so that SQLite scans the small
        doc_id index instead of every row with its text and vector (seconds at a million
        chunks), and sorted here."""
        rows = self.db.execute("SELECT chunk_id FROM chunks").fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def vectors_of(self, chunk_ids: Sequence[int]) -> npt.NDArray[np.float32]:
        found = self.vectors_for(chunk_ids)
        return np.stack([found[int(c)] for c in chunk_ids]).astype(np.float32, copy=False)

    def stored_vectors(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Every stored (chunk id, vector); call inside a snapshot. Sized by the rows read,
        never by a count taken apart from them."""
        ids: list[int] = []
        vecs: list[npt.NDArray[np.float32]] = []
        for cid, blob in self.db.execute("SELECT chunk_id, vector FROM chunks ORDER BY chunk_id"):
            ids.append(int(cid))
            vecs.append(np.frombuffer(blob, dtype=np.float32))
        matrix = np.stack(vecs) if vecs else np.zeros((0, self.config.dim), np.float32)
        return np.asarray(ids, dtype=np.int64), matrix

    def set_save_interval(self, seconds: float) -> None:
        self.vectors.set_save_interval(seconds)

    def save(self) -> None:
        """Persist the index for the committed generation (FAISS: tmp + fsync + rename;
        Milvus: caught up and its segments sealed)."""
        self.vectors.save()

    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        within: npt.NDArray[np.int64] | None = None,
    ) -> list[tuple[int, float]]:
        """The k nearest chunks; only among the chunk ids `within` when given (a filter's,
        from `chunk_ids_where`)."""
        return self.vectors.search(query, k, within)

    def chunk_ids_where(self, where: MetadataFilter) -> npt.NDArray[np.int64]:
        """The chunk ids of the documents that match `where`, ascending."""
        clause, params = where.sql()
        with self.snapshot():
            rows = self.db.execute(
                "SELECT c.chunk_id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                f"WHERE {clause} ORDER BY c.chunk_id",
                params,
            ).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def vectors_for(self, chunk_ids: Sequence[int]) -> dict[int, npt.NDArray[np.float32]]:
        found: dict[int, npt.NDArray[np.float32]] = {}
        ids = [int(c) for c in chunk_ids]
        # In slices: SQLite caps the number of bound parameters.
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for cid, blob in self.db.execute(
                f"SELECT chunk_id, vector FROM chunks WHERE chunk_id IN ({marks})", part
            ):
                found[int(cid)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def lexical_texts(self, chunk_ids: Sequence[int] | npt.NDArray[np.int64]) -> list[str]:
        """What BM25 indexes of each chunk, in id order: its document's title, its headings
        and its text. Ids no longer stored are left out."""
        return list(self.lexical_text_of(chunk_ids).values())

    def lexical_text_of(self, chunk_ids: Sequence[int] | npt.NDArray[np.int64]) -> dict[int, str]:
        """`lexical_texts` by chunk id, in id order."""
        out: dict[int, str] = {}
        ids = sorted(int(c) for c in chunk_ids)
        for start in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
            part = ids[start : start + 500]
            rows = self.db.execute(
                "SELECT c.chunk_id, d.title, c.headings, c.text FROM chunks c "
                "JOIN documents d ON d.doc_id = c.doc_id WHERE c.chunk_id IN "
                f"({','.join('?' * len(part))}) ORDER BY c.chunk_id",
                part,
            ).fetchall()
            out.update((int(r[0]), " ".join([r[1], *json.loads(r[2]), r[3]])) for r in rows)
        return out

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


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _like_prefix(path: str) -> str:
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"


def drop_collection(root: Path, name: str) -> None:
    path = root / validate_name(name)
    if not collection_exists(root, name):
        raise CollectionError(f"unknown collection '{name}'")
    # Moved aside while the writer lock is held: no writer can start in between, and a writer
    # that creates the collection anew right after gets a fresh directory that this removal
    # never touches.
    tomb = path.with_name(f".{path.name}.deleted-{os.getpid()}-{time.monotonic_ns()}")
    with FaissStore(path, writable=True) as store:
        vectors = store.vectors
        path.rename(tomb)
    vectors.drop()  # Milvus's collection; FAISS's files went with the folder
    shutil.rmtree(tomb, ignore_errors=True)
