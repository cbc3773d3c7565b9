"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from verirag.pipeline.api.deps import ServicesDep, metrics_access
from verirag.pipeline.api.metrics import CONTENT_TYPE
from verirag.pipeline.api.schemas import Health, Problem, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Always 200 while the process serves requests (no key needed)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "models still loading, or failed"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 once the generator and encoder are loaded; 503 until then (no key needed)."""
    if services.ready.is_set():
        body = Readiness(status="ready", detail="models loaded")
        return JSONResponse(body.model_dump(), status_code=200)
    if services.warm_error:
        body = Readiness(status="failed", detail=services.warm_error)
    else:
        body = Readiness(status="loading", detail="models are loading")
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
)
async def metrics(services: ServicesDep, _: Annotated[None, Depends(metrics_access)]) -> Response:
    """Prometheus text format; needs an admin key unless `api_metrics_public`."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
