"""`POST /v1/ask` and `POST /v1/ask/stream` (server-sent events)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from verirag.core.records import Answer, joined_collections
from verirag.generators.params import GenerationParams, generation_params
from verirag.pipeline.api.deps import ReadKey, ServicesDep, existing_collection
from verirag.pipeline.api.errors import ProblemError, classify
from verirag.pipeline.api.keys import ApiKey
from verirag.pipeline.api.schemas import AnswerOut, AskRequest, HitOut, Problem, SearchRequest
from verirag.pipeline.api.services import Cancelled, Services
from verirag.pipeline.api.sources import present_answer
from verirag.pipeline.rag import Question
from verirag.retrievers.filters import FilterError, MetadataFilter, parse_filters

router = APIRouter(prefix="/v1", tags=["ask"])

# A comment line while nothing is sent: retrieval, the prompt and the claim checks can be
# minutes of silence on a CPU, and proxies drop a connection idle for 60 s by default.
PING_SECONDS = 15.0
# sse-starlette defaults to CRLF; LF keeps the bytes that existing clients parse unchanged.
_SEP = "\n"

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503, 504)
}


@dataclass(frozen=True)
class _Accepted:
    question: Question
    collections: tuple[str, ...]
    params: GenerationParams
    where: MetadataFilter | None = None

    @property
    def collection(self) -> str:
        """The name the answer carries: one collection, or all asked joined by ','."""
        return joined_collections(self.collections)


def _prepare(services: Services, key: Any, body: AskRequest) -> _Accepted:
    """Everything that can be refused before a worker is taken: access, existence, limits.
    The question is validated here, once; the pipeline takes it as validated."""
    s = services.settings
    if body.collections and "collection" in body.model_fields_set:
        raise ProblemError(
            422, "give either `collection` or `collections`, not both", kind="invalid-parameter"
        )
    # Every collection is checked (403 before 404) before any work is queued.
    collections = tuple(existing_collection(services, key, n) for n in body.asked_collections())
    question = services.rag.question(body.question)
    if body.k is not None and body.k > s.api_max_k:
        raise ProblemError(422, f"k must be at most {s.api_max_k}, got {body.k}", kind="limit")
    params = generation_params(  # raises GenerationError -> 422
        s, max_tokens_cap=s.api_max_tokens, **body.generation_fields()
    )
    return _Accepted(question, collections, params, _where(body.filter))


def _where(expressions: list[str] | None) -> MetadataFilter | None:
    try:
        return parse_filters(expressions)
    except FilterError as exc:
        raise ProblemError(422, str(exc), kind="invalid-parameter") from exc


def _answer(
    services: Services,
    key: ApiKey,
    body: AskRequest,
    accepted: _Accepted,
    on_token: Callable[[str], None],
) -> Answer:
    # The key is checked again inside retrieval, before the collection is opened.
    answer = services.rag.ask(
        accepted.question,
        accepted.collections,
        body.k,
        accepted.params,
        on_token,
        allowed=key.covers,
        history=body.turns(),
        where=accepted.where,
    )
    services.metrics.count_answer(answer.decision)
    return answer


@router.post("/ask", response_model=AnswerOut, responses=_ERRORS)
async def ask(body: AskRequest, key: ReadKey, services: ServicesDep) -> AnswerOut:
    """Retrieve from the collection, answer, check every claim, decide."""
    accepted = _prepare(services, key, body)
    abandoned = threading.Event()

    def on_token(_: str) -> None:
        # The only hook inside generation: lets a timed-out request stop burning the CPU.
        if abandoned.is_set():
            raise Cancelled

    try:
        answer = await services.run(lambda: _answer(services, key, body, accepted, on_token))
    finally:
        abandoned.set()
    return AnswerOut.of(present_answer(answer, services.source_view(key)))


@router.post("/search", response_model=list[HitOut], responses=_ERRORS)
async def search(body: SearchRequest, key: ReadKey, services: ServicesDep) -> list[HitOut]:
    """The collection's top-k chunks for a query (the CLI's `search`): no generation."""
    k = body.k or services.settings.top_k
    if k > services.settings.api_max_k:
        raise ProblemError(
            422, f"k is at most {services.settings.api_max_k}", kind="invalid-parameter"
        )
    where = _where(body.filter)
    hits = await services.run(
        lambda: services.rag.search(
            body.query, body.collection, k, body.mode, key.covers, where, body.rerank
        )
    )
    view = services.source_view(key)
    return [
        HitOut.of(replace(h, source=view(h.collection or body.collection, h.source))) for h in hits
    ]


def _sse(event: str, data: dict[str, Any]) -> ServerSentEvent:
    # One JSON line per event: newlines inside tokens cannot break the framing.
    return ServerSentEvent(json.dumps(data, ensure_ascii=False), event=event, sep=_SEP)


@router.post(
    "/ask/stream",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: token` per text piece, then one `event: answer` (the "
            "verified answer, as /v1/ask returns it) or one `event: error` (a problem). "
            "Lines starting with `:` are keep-alive comments.",
        },
        **_ERRORS,
    },
    response_class=EventSourceResponse,
)
async def ask_stream(body: AskRequest, key: ReadKey, services: ServicesDep) -> EventSourceResponse:
    """The answer's tokens as they are generated, then the verified answer."""
    accepted = _prepare(services, key, body)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    abandoned = threading.Event()

    def put(event: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (event, data))

    def on_token(piece: str) -> None:
        if abandoned.is_set():
            raise Cancelled
        put("token", {"text": piece})

    def job() -> None:
        try:
            answer = _answer(services, key, body, accepted, on_token)
        except Cancelled:
            return
        except Exception as exc:
            problem = classify(exc)
            put(
                "error",
                {"status": problem.status, "detail": problem.detail, "kind": problem.kind or ""},
            )
            return
        shown = present_answer(answer, services.source_view(key))
        put("answer", AnswerOut.of(shown).model_dump(mode="json"))

    # Submitted before the response starts, so a full queue is still a plain 503.
    services.submit(job)
    deadline = time.monotonic() + services.settings.api_request_timeout_seconds

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    event, data = await asyncio.wait_for(queue.get(), max(remaining, 0.001))
                except TimeoutError:
                    abandoned.set()
                    yield _sse(
                        "error",
                        {
                            "status": 504,
                            "detail": "the answer took longer than "
                            f"{services.settings.api_request_timeout_seconds:g}s and was abandoned",
                            "kind": "timeout",
                        },
                    )
                    return
                yield _sse(event, data)
                if event in ("answer", "error"):
                    return
        finally:
            # Reached too when the response cancels the stream because the client went away
            # (sse-starlette listens for the disconnect, even while no token comes): the
            # generation stops at its next token.
            abandoned.set()

    return EventSourceResponse(events(), ping=PING_SECONDS, sep=_SEP)
