"""Readers and a writer in separate processes, for a bounded time: every search returns
chunks of committed documents, no reader raises, and the store is consistent at the end;
also with the writer killed (SIGKILL) while the readers run. No model: a hashing encoder."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from verirag.retrievers.store import FaissStore

pytestmark = pytest.mark.integration

WORKER = [sys.executable, str(Path(__file__).with_name("store_stress_worker.py"))]
SEARCHERS = 3


def _consistent(collection: Path) -> int:
    store = FaissStore(collection)
    try:
        n = store.count("chunks")
        assert store.vector_count() == n
        orphans = store.db.execute(
            "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)"
        ).fetchone()[0]
        assert orphans == 0
        return n
    finally:
        store.close()


def _has_chunks(collection: Path) -> bool:
    try:
        db = sqlite3.connect(f"file:{collection / 'meta.sqlite'}?mode=ro", uri=True)
        try:
            return bool(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return False


Procs = list[tuple["subprocess.Popen[bytes]", Path]]


def _searchers(data: Path, tmp_path: Path, seconds: float, env: dict[str, str]) -> Procs:
    procs: Procs = []
    for i in range(SEARCHERS):
        out = tmp_path / f"searcher{i}.json"
        cmd = [*WORKER, "searcher", str(data), str(seconds), str(out)]
        procs.append((subprocess.Popen(cmd, env=env), out))
    return procs


def _reports(procs: Procs) -> list[dict[str, Any]]:
    reports = []
    for proc, out in procs:
        assert proc.wait(timeout=120) == 0
        reports.append(json.loads(out.read_text()))
    return reports


@pytest.mark.parametrize("backend", ["faiss", "milvus"])
@pytest.mark.parametrize("kill_writer", [False, True])
def test_searchers_beside_a_writer_see_only_committed_documents(
    tmp_path: Path, kill_writer: bool, backend: str, request: pytest.FixtureRequest
) -> None:
    data, folder = tmp_path / "data", tmp_path / "docs"
    seconds = 8.0
    env = dict(os.environ)
    if backend == "milvus":  # the workers' Settings read these
        env["VERIRAG_VECTOR_BACKEND"] = "milvus"
        env["VERIRAG_VECTOR_URI"] = request.getfixturevalue("milvus_uri")
    writer = subprocess.Popen(
        [*WORKER, "writer", str(data), str(folder), str(seconds)],
        stdout=subprocess.PIPE,
        env=env,
    )
    searchers = _searchers(data, tmp_path, seconds + 2, env)
    if kill_writer:
        # Killed mid-run, with documents already committed: the searchers must have seen some.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not _has_chunks(data / "collections" / "c"):
            time.sleep(0.1)
        time.sleep(seconds / 4)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    else:
        out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0
        assert json.loads(out)["rounds"] >= 5
    reports = _reports(searchers)
    print(
        f"\nstore stress ({'writer killed' if kill_writer else 'writer ran'} {seconds:g}s, "
        f"{SEARCHERS} searchers): "
        + ", ".join(f"{r['searches']} searches/{r['hits']} hits" for r in reports)
    )
    assert sum(r["hits"] for r in reports) > 0
    for report in reports:
        assert report["errors"] == [], report["errors"][:1]
        assert report["foreign"] == 0
        assert report["searches"] > 20
    if kill_writer:
        # A new writer run after the kill finishes the job; the store is whole.
        subprocess.run(
            [*WORKER, "writer", str(data), str(folder), "1"], check=True, timeout=120, env=env
        )
    assert _consistent(data / "collections" / "c") > 0
    assert not list((data / "collections" / "c").glob("faiss-g*.tmp"))
