"""The human review queue over HTTP, limited to the caller's collections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from verirag.core.records import split_collections
from verirag.pipeline.api.deps import ReadKey, ServicesDep, WriteKey, authorize_collection
from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.keys import ApiKey
from verirag.pipeline.api.schemas import (
    Problem,
    ReviewItemDetailOut,
    ReviewItemOut,
    ReviewResolveRequest,
)
from verirag.pipeline.api.sources import present_recorded

router = APIRouter(prefix="/v1", tags=["review"])

SQLITE_MAX_INT = 2**63 - 1

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (400, 401, 403, 404, 422, 429)
}


def _scope(key: ApiKey, collection: str | None) -> list[str] | None:
    """The collections a listing may read: the one asked for (403 outside the key), else the
    key's (None: all)."""
    if collection:
        return [authorize_collection(key, collection)]
    return None if key.all_collections else list(key.collections)


@router.get("/review", response_model=list[ReviewItemOut], responses=_ERRORS)
def list_review(
    key: ReadKey,
    services: ServicesDep,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    collection: Annotated[str | None, Query(description="one of the key's collections")] = None,
    reason: Annotated[
        str | None, Query(max_length=200, description="the decision reason contains this")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ReviewItemOut]:
    """Review items of the key's collections, newest first (open ones by default)."""
    items = services.rag.review_queue().list(
        None if status == "all" else status, _scope(key, collection), limit, reason
    )
    return [ReviewItemOut.of(i) for i in items]


@router.get("/review/reasons", response_model=list[str], responses=_ERRORS)
def review_reasons(key: ReadKey, services: ServicesDep) -> list[str]:
    """The distinct decision reasons among the key's review items (to filter by)."""
    return list(services.rag.review_queue().reasons(_scope(key, None)))


@router.get(
    "/review/export",
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "one resolved item per line, as labelled data for calibration: "
            "the answer's recorded signals, `right` (the reviewer found it right as given), "
            "the resolution, the corrected text, who resolved it and when",
        },
        **_ERRORS,
    },
)
def export_review(
    key: ReadKey,
    services: ServicesDep,
    collection: Annotated[str | None, Query()] = None,
) -> StreamingResponse:
    """Resolved items of the key's collections as JSON Lines, oldest first."""
    items = services.rag.review_queue().resolved(_scope(key, collection))

    view = services.source_view(key)

    def lines() -> Iterator[str]:
        for item in items:
            shown = present_recorded(item.answer, item.collection, view)
            row = replace(item, answer=shown).labelled()
            yield json.dumps(row, ensure_ascii=False) + "\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="verirag-review.jsonl"'},
    )


@router.get("/review/{item_id}", response_model=ReviewItemDetailOut, responses=_ERRORS)
def get_review(
    item_id: Annotated[int, Path(ge=1, le=SQLITE_MAX_INT)], key: ReadKey, services: ServicesDep
) -> ReviewItemDetailOut:
    """One review item with its recorded answer. An item of another collection is unknown."""
    item = _covered_item(services, key.covers, item_id)
    shown = present_recorded(item.answer, item.collection, services.source_view(key))
    return ReviewItemDetailOut.of(replace(item, answer=shown))


def _covered_item(services: Any, covers: Any, item_id: int) -> Any:
    try:
        item = services.rag.review_queue().get(item_id)
    except KeyError:
        item = None
    # An answer drawn from several collections quotes them all: the key must cover each.
    if item is None or not all(covers(name) for name in split_collections(item.collection)):
        raise ProblemError(404, "no review item with that id", kind="unknown-review-item")
    return item


@router.post("/review/{item_id}", response_model=ReviewItemOut, responses=_ERRORS)
def resolve_review(
    item_id: Annotated[int, Path(ge=1, le=SQLITE_MAX_INT)],
    body: ReviewResolveRequest,
    key: WriteKey,
    services: ServicesDep,
) -> ReviewItemOut:
    """Record a reviewer's verdict, with the key's name as who resolved it. An item of
    another collection is unknown (404)."""
    _covered_item(services, key.covers, item_id)
    try:
        item = services.rag.review_queue().resolve(
            item_id,
            body.resolution,
            body.note,
            resolved_by=key.name or key.prefix,
            corrected_text=body.corrected_text,
        )
    except ValueError as exc:
        raise ProblemError(422, str(exc), kind="invalid-parameter") from exc
    return ReviewItemOut.of(item)
