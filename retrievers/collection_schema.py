"""The SQLite layout of a collection and its `meta` table (schema version, generation, settings).

Separate from the store so the tables are defined in one place and the store reads as what it
does with them.
"""

from __future__ import annotations

import json
import sqlite3
import time

from verirag.retrievers.collection_dir import CollectionConfig, CollectionError

SCHEMA_VERSION = "1"

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


def create_tables(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def get_meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )


def init_meta(db: sqlite3.Connection, config: CollectionConfig) -> None:
    set_meta(db, "schema_version", SCHEMA_VERSION)
    set_meta(db, "generation", "0")
    set_meta(db, "created_at", str(time.time()))
    set_meta(db, "config", json.dumps(config.__dict__))


def load_config(db: sqlite3.Connection, name: str) -> CollectionConfig:
    try:
        raw = get_meta(db, "config")
    except sqlite3.OperationalError as exc:  # the file exists but has no tables yet
        raise CollectionError(
            f"collection '{name}' is not initialised (being created, or its creation "
            "was interrupted): run `verirag index` on it again"
        ) from exc
    if raw is None:
        raise CollectionError(f"collection '{name}' has no configuration (corrupt?)")
    version = get_meta(db, "schema_version")
    if version != SCHEMA_VERSION:
        raise CollectionError(
            f"collection '{name}' has schema {version}, this verirag reads {SCHEMA_VERSION}"
        )
    return CollectionConfig(**json.loads(raw))
