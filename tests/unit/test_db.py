"""SQLite files opened side by side: a new database is born in WAL mode, so processes that
open it at the same moment never race to convert it ("database is locked")."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from verirag.core import db as dbmod
from verirag.core.db import connect


def _open_at(args: tuple[str, float]) -> str:
    path, start = args
    while time.time() < start:  # every process opens the new file in the same instant
        pass
    try:
        db = connect(Path(path))
        mode = str(db.execute("PRAGMA journal_mode").fetchone()[0])
        db.close()
        return mode
    except sqlite3.OperationalError as error:
        return str(error)


def test_processes_opening_a_new_database_at_once_all_get_it_in_wal_mode(
    tmp_path: Path,
) -> None:
    # Before the file was made in WAL mode up front, about one trial in four had a process
    # fail with "database is locked" (two readers both upgrading to convert the file).
    results: list[str] = []
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        # Every worker takes one of these (each waits for the same instant), so all six have
        # imported this module before the trials: none arrives late to a trial's instant.
        warm = time.time() + 2.0
        pool.map(_open_at, [(str(tmp_path / f"warm{i}.db"), warm) for i in range(6)])
        for trial in range(12):
            start = time.time() + 0.3
            results += pool.map(_open_at, [(str(tmp_path / f"t{trial}.db"), start)] * 6)
    assert set(results) == {"wal"}, [r for r in results if r != "wal"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_new_database_is_wal_on_disk_before_anyone_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    dbmod._create_in_wal_mode(path)
    header = path.read_bytes()[:100]
    assert header[:16] == b"SQLite format 3\x00"
    assert (header[18], header[19]) == (2, 2)  # read and write versions 2: WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]
    db = connect(path)
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    db.close()


def test_an_existing_database_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = connect(path)
    db.execute("CREATE TABLE t(x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()
    inode = path.stat().st_ino
    db = connect(path)
    assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
    db.close()
    assert path.stat().st_ino == inode


def test_without_hard_links_sqlite_makes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "fat.db"
    db = connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("fat.db")) == []
