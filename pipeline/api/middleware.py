"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and breaks streaming responses)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verirag.pipeline.api.errors import PROBLEM_JSON, problem_body
from verirag.pipeline.api.metrics import Metrics


class BodyTooLargeError(HTTPException):
    """An HTTPException, so that FastAPI's body parsing re-raises it as is (it turns any
    other error while reading the body into a vague 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


async def _send_problem(send: Send, status: int, detail: str, kind: str) -> None:
    body = json.dumps(problem_body(status, detail, kind)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for a body over `limit` bytes: at once from Content-Length, else while it streams
    in (chunked uploads), so an oversize body is never read whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body is over the limit of {self.limit} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(send, 400, "invalid Content-Length", "bad-request")
                    return
                if declared > self.limit:
                    await _send_problem(send, 413, detail, "body-too-large")
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await _send_problem(send, 413, detail, "body-too-large")


class MetricsMiddleware:
    """Counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        root_path = scope.get("root_path", "")

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route: Any = scope.get("route")
            endpoint = getattr(route, "path", None)
            if endpoint is None:
                # FastAPI names no route for a mount (the docs assets), but its prefix has
                # been added to root_path by the time the request is handled.
                mount = scope.get("root_path", "")[len(root_path) :]
                endpoint = f"{mount}/{{path}}" if mount else "unmatched"
            self.metrics.observe_request(
                scope.get("method", ""), endpoint, status, time.perf_counter() - started
            )


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("verirag.access")


class RequestIdMiddleware:
    """Every response carries `X-Request-ID` (the client's, when it is a safe token, else a
    new one), and every request is logged as one JSON line with that id: method, route
    template (never the raw path, which is request data), status and milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", ())).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            route: Any = scope.get("route")
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": scope.get("method", ""),
                        "route": getattr(route, "path", "unmatched"),
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                )
            )
