"""SQLite connections opened the same way for every store (collections, review queue)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, *, synchronous_full: bool = False) -> sqlite3.Connection:
    """Autocommit (callers open their own transactions), WAL so readers never block the
    writer, and a generous busy timeout for the CLI, the API and the indexer side by side."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    if synchronous_full:
        # The collection store is the source of truth after a crash: fsync every commit.
        db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    # Deleted means deleted: freed pages are zeroed, so a deleted document's text does not
    # linger in the file (the WAL is checkpointed after deletions, see `purge_wal`).
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def purge_wal(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database and empty it, so that the pages a deletion replaced are
    gone from the WAL file too (readers still open keep their snapshot until they finish)."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
