"""RFC 9457 problem details for every error response, and the mapping from library errors.

Messages never echo request bodies or name collections the caller may not see: an unknown
collection's library message lists the existing ones, so it is replaced here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from verirag.core.registry import ModelError
from verirag.generators.base import InferenceServerError
from verirag.generators.params import GenerationError
from verirag.pipeline.calibrations import CollectionCalibrationError
from verirag.pipeline.rag import CollectionAccessError, QueryError
from verirag.retrievers.loaders import LoadError
from verirag.retrievers.milvus_vectors import VectorDatabaseError
from verirag.retrievers.store import CollectionBusyError, CollectionError

log = logging.getLogger("verirag.api")

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = dict(headers or {})


def problem_body(status: int, detail: str, kind: str | None = None) -> dict[str, Any]:
    title = HTTPStatus(status).phrase
    return {
        # about:blank means "the status code says it all"; specific kinds get a stable URN.
        "type": f"urn:verirag:problem:{kind}" if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }


def problem_response(
    status: int, detail: str, kind: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, kind),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def classify(exc: BaseException) -> ProblemError:
    """A library exception as the problem it means for an HTTP client."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, CollectionAccessError):
        return ProblemError(
            403,
            "this API key does not give access to the requested collection",
            kind="forbidden-collection",
        )
    if isinstance(exc, QueryError):
        return ProblemError(422, str(exc), kind="invalid-query")
    if isinstance(exc, GenerationError):
        return ProblemError(
            422, f"invalid generation parameters: {exc}", kind="invalid-generation-parameters"
        )
    if isinstance(exc, CollectionBusyError):
        return ProblemError(
            409,
            "the collection is being written by another process; retry when it has finished",
            kind="collection-busy",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, VectorDatabaseError):  # before CollectionError, which it is
        # Not the message: it names the server's address, which a client has no use for.
        log.warning("vector database unavailable: %s", exc)
        return ProblemError(
            503,
            "the vector database does not answer; retry shortly",
            kind="vector-database-unavailable",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, CollectionCalibrationError):  # before CollectionError, which it is
        # Not the message: it names a path on the server. The server's fault, not the caller's.
        log.error("%s", exc)
        return ProblemError(
            500,
            f"the calibration of collection '{exc.collection}' cannot be read; an administrator "
            "must write it again (`verirag calibrate --collection`) or remove it",
            kind="collection-calibration",
        )
    if isinstance(exc, CollectionError):
        message = str(exc)
        if message.startswith("unknown collection"):
            return ProblemError(404, "the collection does not exist", kind="unknown-collection")
        if "is empty" in message:
            return ProblemError(409, message, kind="empty-collection")
        return ProblemError(422, message, kind="invalid-collection")
    if isinstance(exc, InferenceServerError):  # before ModelError, which it is
        return ProblemError(502, str(exc), kind="inference-server", headers={"Retry-After": "5"})
    if isinstance(exc, ModelError):
        return ProblemError(503, f"a model cannot be loaded: {exc}", kind="model-unavailable")
    if isinstance(exc, LoadError):
        return ProblemError(422, str(exc), kind="unreadable-file")
    log.exception("unexpected error", exc_info=exc)
    return ProblemError(500, "internal error; the server log has the details", kind="internal")


def _validation_detail(exc: RequestValidationError) -> tuple[int, str]:
    problems: list[str] = []
    status = 422
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            status = 400
            ctx = error.get("ctx") or {}
            problems.append(f"malformed JSON body: {ctx.get('error', error.get('msg'))}")
            continue
        loc = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        # `input` is deliberately left out: a problem document never echoes request data.
        problems.append(f"{loc or 'body'}: {error.get('msg', 'invalid')}")
    return status, "; ".join(problems) or "invalid request"


_HTTP_KINDS = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}


def install_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        problem = classify(exc)
        return problem_response(problem.status, problem.detail, problem.kind, problem.headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, detail = _validation_detail(exc)
        kind = "malformed-json" if status == 400 else "validation"
        return problem_response(status, detail, kind)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        kind = _HTTP_KINDS.get(exc.status_code)
        return problem_response(exc.status_code, detail, kind, headers=exc.headers)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for kind in (
        ProblemError,
        CollectionAccessError,
        QueryError,
        GenerationError,
        CollectionError,
        CollectionBusyError,
        ModelError,
        LoadError,
        Exception,
    ):
        app.add_exception_handler(kind, on_problem)
