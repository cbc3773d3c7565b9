"""What one indexing batch carries, and the SQLite rows it becomes.

The row writers take the open connection and never commit: the store runs them inside the one
transaction that also bumps the generation, which is what makes a batch all-or-nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from verirag.core.records import Chunk, Document


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


def upsert_document(
    db: sqlite3.Connection, doc: Document, file_path: str, fingerprint: str, now: float
) -> None:
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


def insert_chunk(
    db: sqlite3.Connection, doc_id: str, chunk: Chunk, vector: npt.NDArray[np.float32]
) -> int:
    """Store the chunk with its vector (the FAISS index is rebuilt from these); its new id."""
    cur = db.execute(
        'INSERT INTO chunks(doc_id, ordinal, start, "end", text, n_tokens, '
        "headings, page_start, page_end, vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            doc_id,
            chunk.ordinal,
            chunk.start,
            chunk.end,
            chunk.text,
            chunk.n_tokens,
            json.dumps(chunk.headings),
            chunk.pages[0] if chunk.pages else None,
            chunk.pages[1] if chunk.pages else None,
            np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
        ),
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


def upsert_file(
    db: sqlite3.Connection, path: str, mtime_ns: int, size: int, fingerprint: str, now: float
) -> None:
    db.execute(
        "INSERT INTO files(path, mtime_ns, size, fingerprint, indexed_at) "
        "VALUES (?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
        "mtime_ns=excluded.mtime_ns, size=excluded.size, "
        "fingerprint=excluded.fingerprint, indexed_at=excluded.indexed_at",
        (path, mtime_ns, size, fingerprint, now),
    )


def delete_document(db: sqlite3.Connection, doc_id: str, keep_row: bool = False) -> list[int]:
    """Drop a document's chunks (and its row unless `keep_row`, for a re-index); their ids."""
    ids = [int(r[0]) for r in db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))]
    db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
    if not keep_row:
        db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
    return ids
