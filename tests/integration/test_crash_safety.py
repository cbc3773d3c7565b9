"""SIGKILL a real `verirag index` at random moments: the collection is always consistent, and
a re-run finishes the job without duplicates."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE, SQUAD_SAMPLE
from verirag.pipeline.evaluation.datasets import squad_sample
from verirag.retrievers.store import FaissStore

pytestmark = pytest.mark.integration

VERIRAG = [sys.executable, "-m", "verirag.pipeline.cli"]
N_DOCS = 120


def _generation(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return -1
    return int(row[0]) if row else -1


def _check(collection: Path, backend: str) -> int:
    """Consistency of whatever is on disk; returns the number of documents. Milvus is checked
    as the next writer leaves it (a writer killed after a commit leaves Milvus behind SQLite
    until then; readers drop what their snapshot lacks)."""
    with FaissStore(collection, writable=backend == "milvus") as store:
        n_chunks = store.count("chunks")
        assert store.vector_count() == n_chunks
        rows = store.db.execute(
            "SELECT doc_id, COUNT(*), MIN(ordinal), MAX(ordinal), COUNT(DISTINCT ordinal) "
            "FROM chunks GROUP BY doc_id"
        ).fetchall()
        for doc_id, count, lo, hi, distinct in rows:
            assert (lo, hi, distinct) == (0, count - 1, count), doc_id
        assert len(rows) == store.count("documents")  # no document without chunks
        return len(rows)


@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_sigkill_at_random_moments(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    passages, _ = squad_sample(SQUAD_SAMPLE, N_DOCS, 7)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in passages:
        (corpus / f"{p.pid}.txt").write_text(p.text)
    env = {
        **os.environ,
        "VERIRAG_DATA_DIR": str(tmp_path / "data"),
        "VERIRAG_MODEL_CACHE": str(MODEL_CACHE),
        "VERIRAG_DOCS_PER_BATCH": "6",
        "VERIRAG_FAISS_SAVE_SECONDS": "0",  # write FAISS after every batch: more to interrupt
        "VERIRAG_VECTOR_BACKEND": backend,
    }
    if backend == "milvus":
        env["VERIRAG_VECTOR_URI"] = request.getfixturevalue("milvus_uri")
    cmd = [*VERIRAG, "index", str(corpus), "-c", "crash", "--json", "--no-progress"]
    db = tmp_path / "data" / "collections" / "crash" / "meta.sqlite"
    rng = random.Random(2024)
    kills = 0
    for target in (2, 6, 11):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while _generation(db) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "indexer made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))  # land anywhere inside the next batch
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        done = _check(db.parent, backend)
        assert 0 < done < N_DOCS
    assert kills == 3

    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    assert summary["failed"] == 0
    assert summary["added"] + summary["unchanged"] == N_DOCS
    assert summary["added"] > 0  # the kills really left work to finish
    assert _check(db.parent, backend) == N_DOCS
    assert len(list(db.parent.glob("faiss-g*.index"))) == (backend == "faiss")
