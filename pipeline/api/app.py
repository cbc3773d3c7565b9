"""The app factory: `create_app(settings)` for `verirag serve`, or with prepared services
(tests pass a fake answering pipeline)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from verirag.core.settings import Settings
from verirag.pipeline.api.docs import install_docs
from verirag.pipeline.api.errors import install_handlers
from verirag.pipeline.api.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from verirag.pipeline.api.routers import ask, documents, health, jobs, openai_compat, review
from verirag.pipeline.api.services import Services
from verirag.pipeline.api.web import install_ui

API_VERSION = "1"

DESCRIPTION = """\
Answers only from your documents, with citations, per-claim checks and a decision
(answer / review / abstain). Every endpoint but `/healthz` and `/readyz` needs an API key
(`verirag keys create`), sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Errors are RFC 9457 problem details (`application/problem+json`).
"""


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app. Models warm up in the background once the app starts (lifespan)."""
    owned = services is None
    svc = services or Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In a thread: start-up must not wait minutes for a model; /readyz tells when done.
        svc.start_warm_up()
        try:
            yield
        finally:
            if owned:
                svc.close()
            else:
                svc.pool.shutdown()

    app = FastAPI(
        title="verirag",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's pages load from a CDN; install_docs serves Swagger UI from the package.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = svc
    install_handlers(app)
    install_docs(app)
    install_ui(app)
    for module in (ask, documents, jobs, review, health, openai_compat):
        app.include_router(module.router)
    # Added innermost first: CORS (only when origins are configured), then the body limit,
    # then metrics outermost so that a 413 is counted too.
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodyLimitMiddleware, limit=settings.api_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    app.add_middleware(RequestIdMiddleware)  # outermost: every response gets its id
    return app
