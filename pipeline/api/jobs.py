"""Indexing jobs of the HTTP API: their own worker and queue, and a record that survives a
restart.

Jobs never run on the request workers: an upload that waits for a collection's writer lock
must not hold a worker that questions on every collection need. A job is accepted (queued)
before its files replace anything: the staged files move into the upload directory when the
job starts, so a refused job (503) leaves earlier uploads and the index as they were. Jobs are
kept in SQLite (`jobs.sqlite` in the data directory); a job that was queued or running when
the server stopped is reported as failed after a restart, never as missing.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from verirag.core.db import connect
from verirag.core.records import FileOutcome, IndexReport
from verirag.pipeline.indexing import Progress

JobStatus = Literal["queued", "running", "done", "failed"]
INTERRUPTED = "interrupted: the server stopped before this job finished; upload the files again"


@dataclass
class Job:
    id: str
    collection: str
    files: list[str]  # the sanitised names the files were saved under
    paths: list[Path]  # where they are indexed from (the upload directory)
    staging: Path | None = None  # where they wait until the job starts
    status: JobStatus = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    report: IndexReport | None = None
    error: str = ""
    # Live while it runs (not persisted): files finished so far, and chunks embedded.
    files_done: int = 0
    chunks_done: int = 0

    def outcomes(self) -> list[FileOutcome]:
        return list(self.report.outcomes) if self.report else []


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    files TEXT NOT NULL,
    paths TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    report TEXT,
    error TEXT NOT NULL DEFAULT ''
)
"""


def _report_json(report: IndexReport | None) -> str | None:
    return json.dumps(asdict(report)) if report is not None else None


def _report(raw: str | None) -> IndexReport | None:
    if raw is None:
        return None
    data = json.loads(raw)
    outcomes = [FileOutcome(**o) for o in data.pop("outcomes", [])]
    return IndexReport(**data, outcomes=outcomes)


class JobRegistry:
    """Jobs in memory, written through to SQLite at every change (`path` None: memory only).
    At most `keep` finished jobs are kept; queued and running ones are never dropped."""

    def __init__(self, path: Path | None = None, keep: int = 1000) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = keep
        self._db = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect(path)
            self._db.execute(_SCHEMA)
            self._recover()

    def _recover(self) -> None:
        assert self._db is not None
        now = time.time()
        self._db.execute(
            "UPDATE jobs SET status='failed', error=?, finished_at=? "
            "WHERE status IN ('queued', 'running')",
            (INTERRUPTED, now),
        )
        rows = self._db.execute(
            "SELECT id, collection, files, paths, status, created_at, started_at, finished_at, "
            "report, error FROM jobs ORDER BY created_at DESC LIMIT ?",
            (self.keep,),
        ).fetchall()
        for row in reversed(rows):
            job = Job(
                id=row[0],
                collection=row[1],
                files=json.loads(row[2]),
                paths=[Path(p) for p in json.loads(row[3])],
                status=row[4],
                created_at=row[5],
                started_at=row[6],
                finished_at=row[7],
                report=_report(row[8]),
                error=row[9],
            )
            self._jobs[job.id] = job

    def add(self, collection: str, files: list[str], staging: Path | None = None) -> Job:
        job = Job(uuid.uuid4().hex, collection, files, [], staging)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
                if self._db is not None:
                    self._db.execute("DELETE FROM jobs WHERE id=?", (oldest.id,))
        self.save(job)
        return job

    def save(self, job: Job) -> None:
        """Record the job's current state."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (id, collection, files, paths, status, created_at, "
                "started_at, finished_at, report, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    job.id,
                    job.collection,
                    json.dumps(job.files),
                    json.dumps([str(p) for p in job.paths]),
                    job.status,
                    job.created_at,
                    job.started_at,
                    job.finished_at,
                    _report_json(job.report),
                    job.error,
                ),
            )

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.status in ("queued", "running"))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def run_job(
    job: Job,
    registry: JobRegistry,
    upload_dir: Path,
    index: Callable[[list[Path], str, Callable[[Progress], None]], IndexReport],
) -> None:
    """Move the job's staged files over earlier uploads, index them, record each step."""
    job.status = "running"
    job.started_at = time.time()
    registry.save(job)
    try:
        if job.staging is not None:
            upload_dir.mkdir(parents=True, exist_ok=True)
            for name in job.files:
                (job.staging / name).replace(upload_dir / name)
            job.paths = [upload_dir / name for name in job.files]

        def progress(state: Progress) -> None:
            job.files_done, job.chunks_done = state.files_done, state.chunks

        job.report = index(job.paths, job.collection, progress)
        job.files_done = len(job.files)
        job.status = "done"
    except Exception as exc:
        job.error = str(exc) or type(exc).__name__
        job.status = "failed"
        raise
    finally:
        if job.staging is not None:
            shutil.rmtree(job.staging, ignore_errors=True)
        job.finished_at = time.time()
        registry.save(job)
