"""`GET /v1/jobs/{id}`: an indexing job's progress and per-file outcome."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter

from verirag.pipeline.api.deps import ReadKey, ServicesDep
from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.schemas import FileOutcomeOut, JobOut, Problem

router = APIRouter(prefix="/v1", tags=["jobs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (401, 403, 404, 429)
}


@router.get("/jobs/{job_id}", response_model=JobOut, responses=_ERRORS)
def get_job(job_id: str, key: ReadKey, services: ServicesDep) -> JobOut:
    """A job of another key's collection is reported as unknown (404), not forbidden."""
    job = services.jobs.get(job_id)
    if job is None or not key.covers(job.collection):
        raise ProblemError(404, "no job with that id", kind="unknown-job")
    report = job.report
    view = services.source_view(key)
    return JobOut(
        job_id=job.id,
        collection=job.collection,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        files=list(job.files),
        files_done=job.files_done,
        chunks_done=job.chunks_done,
        added=report.added if report else 0,
        updated=report.updated if report else 0,
        unchanged=report.unchanged if report else 0,
        failed=report.failed if report else 0,
        chunks_added=report.chunks_added if report else 0,
        outcomes=[
            FileOutcomeOut.of(replace(o, source=view(job.collection, o.source)))
            for o in job.outcomes()
        ],
        error=job.error,
    )
