"""OpenAI-compatible chat completions, so that existing OpenAI clients can ask a collection.

`POST /v1/chat/completions`: the model name is the collection; the last user message is the
question (verirag's constrained prompt stays in force: a client's system message cannot
loosen it). The message is the verified answer; verirag's decision, confidence, claims and
citations come in the `verirag` extension field. An answer that was not delivered (sent to
review, or abstained) comes back as a message that says so, never as the unverified text.
Streaming sends the message only after verification, for the same reason: a token streamed
before the checks could not be taken back. `GET /v1/models` lists the key's collections.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from verirag.core.records import Answer
from verirag.pipeline.api.deps import ReadKey, ServicesDep
from verirag.pipeline.api.errors import ProblemError, classify
from verirag.pipeline.api.routers.ask import PING_SECONDS, _answer, _prepare
from verirag.pipeline.api.schemas import AnswerOut, AskRequest, Problem, Turn
from verirag.pipeline.api.services import Cancelled
from verirag.pipeline.api.sources import present_answer

router = APIRouter(prefix="/v1", tags=["openai"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (400, 401, 403, 404, 409, 422, 429, 503, 504)
}
_PIECE_CHARS = 64  # the verified message is streamed in pieces of about this size


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool_calls ...: not used here

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts are read
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    # Unknown OpenAI options (n, logprobs, tools, user ...) are ignored as OpenAI-compatible
    # servers do; the ones verirag honours are mapped onto its own generation parameters.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="the collection to ask")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None

    def ask_request(self) -> AskRequest:
        turns = [m for m in self.messages if m.role in ("user", "assistant")]
        last = max((i for i, m in enumerate(turns) if m.role == "user"), default=None)
        if last is None:
            raise ProblemError(422, "messages hold no user message to answer", kind="invalid")
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        try:
            return AskRequest(
                question=turns[last].text(),
                # Earlier turns make it a follow-up; system messages are not passed on.
                history=[
                    Turn(role=m.role, content=m.text())  # type: ignore[arg-type]
                    for m in turns[:last]
                    if m.text()
                ],
                collection=self.model,
                max_tokens=self.max_completion_tokens or self.max_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                frequency_penalty=self.frequency_penalty,
                presence_penalty=self.presence_penalty,
                stop=stop,
                seed=self.seed,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
            raise ProblemError(422, problems, kind="invalid") from exc


def message_for(answer: Answer) -> str:
    """What an OpenAI client shows: the answer only when verirag delivers it."""
    if answer.decision == "answer":
        return answer.text
    if answer.decision == "review":
        item = f" (review item {answer.review_id})" if answer.review_id is not None else ""
        return (
            "verirag withheld this answer: it could not be verified against the sources "
            f"({answer.decision_reason}). It was sent for human review{item}."
        )
    return f"verirag did not answer: {answer.decision_reason}."


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


@router.get("/models")
def list_models(key: ReadKey, services: ServicesDep) -> dict[str, Any]:
    """The collections this key may ask, as OpenAI models."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "verirag"}
            for name in services.collections()
            if key.covers(name)
        ],
    }


@router.post(
    "/chat/completions",
    responses={
        200: {
            "description": "an OpenAI chat completion (or, with `stream`, its chunks as "
            "server-sent events ending in `data: [DONE]`), with the verified answer in "
            "`verirag`"
        },
        **_ERRORS,
    },
)
async def chat_completions(
    body: ChatRequest, key: ReadKey, services: ServicesDep
) -> Any:  # a dict, or the event stream
    request = body.ask_request()
    accepted = _prepare(services, key, request)
    abandoned = threading.Event()

    def on_token(_: str) -> None:
        if abandoned.is_set():
            raise Cancelled

    completion_id, created = _completion_id(), int(time.time())
    if not body.stream:
        try:
            answer = await services.run(lambda: _answer(services, key, request, accepted, on_token))
        finally:
            abandoned.set()
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": accepted.collection,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": message_for(answer)},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(answer),
            "verirag": AnswerOut.of(present_answer(answer, services.source_view(key))).model_dump(
                mode="json"
            ),
        }

    # Submitted before the response starts, so that a full queue is still a plain 503.
    future = services.submit(lambda: _answer(services, key, request, accepted, on_token))
    timeout = services.settings.api_request_timeout_seconds

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ServerSentEvent:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": accepted.collection,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return ServerSentEvent(json.dumps(data, ensure_ascii=False), sep="\n")

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            try:
                answer = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            except TimeoutError:
                detail = f"the answer took longer than {timeout:g}s and was abandoned"
                yield ServerSentEvent(
                    json.dumps({"error": {"message": detail, "code": 504}}), sep="\n"
                )
                return
            except Exception as exc:
                failed = classify(exc)
                yield ServerSentEvent(
                    json.dumps({"error": {"message": failed.detail, "code": failed.status}}),
                    sep="\n",
                )
                return
            text = message_for(answer)
            yield chunk({"role": "assistant", "content": ""})
            for start in range(0, len(text), _PIECE_CHARS):
                yield chunk({"content": text[start : start + _PIECE_CHARS]})
            yield chunk(
                {},
                "stop",
                usage=_usage(answer),
                verirag=AnswerOut.of(present_answer(answer, services.source_view(key))).model_dump(
                    mode="json"
                ),
            )
            yield ServerSentEvent("[DONE]", sep="\n")
        finally:
            abandoned.set()  # a client gone before the end stops the generation

    return EventSourceResponse(events(), ping=PING_SECONDS, sep="\n")
