"""SQLite connections opened the same way for every store (collections, review queue)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


def connect(path: Path, *, synchronous_full: bool = False) -> sqlite3.Connection:
    """Autocommit (callers open their own transactions), WAL so readers never block the
    writer, and a generous busy timeout for the CLI, the API and the indexer side by side."""
    _create_in_wal_mode(path)
    # The timeout is the busy handler from the first statement on, pragmas included.
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    # A no-op on a file already in WAL mode (it is persistent); kept for files made elsewhere.
    db.execute("PRAGMA journal_mode=WAL")
    if synchronous_full:
        # The collection store is the source of truth after a crash: fsync every commit.
        db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    # Deleted means deleted: freed pages are zeroed, so a deleted document's text does not
    # linger in the file (the WAL is checkpointed after deletions, see `purge_wal`).
    db.execute("PRAGMA secure_delete=ON")
    return db


def _create_in_wal_mode(path: Path) -> None:
    """Make a missing database file already in WAL mode, and publish it whole.

    Switching a new (rollback-mode) file to WAL reads it and then writes it; two processes
    opening it at once both hold the read lock and want the write lock, and SQLite answers
    one of them "database is locked" at once, without waiting (it would deadlock). So the
    file is made under a private name and hard-linked into place, which fails rather than
    replaces when another process published first; nobody ever opens a rollback-mode file.
    """
    if path.exists():
        return
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.new")
    try:
        db = sqlite3.connect(staging, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA user_version=0")  # writes the header, so the mode is on disk
        finally:
            db.close()  # the last connection: its WAL is checkpointed and removed
        # FileExistsError: another process published first, so theirs is used. Any other
        # OSError: no hard links on this file system (some network or FAT ones), so SQLite
        # creates the file itself; replacing instead could overwrite one just made elsewhere.
        with contextlib.suppress(OSError):
            os.link(staging, path)
    finally:
        for leftover in (staging, *(Path(f"{staging}{s}") for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)


def purge_wal(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database and empty it, so that the pages a deletion replaced are
    gone from the WAL file too (readers still open keep their snapshot until they finish)."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
