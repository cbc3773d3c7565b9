"""The human review queue over HTTP, limited to the caller's collections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from verirag.pipeline.api.deps import ReadKey, ServicesDep, WriteKey
from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.schemas import Problem, ReviewItemOut, ReviewResolveRequest

router = APIRouter(prefix="/v1", tags=["review"])

SQLITE_MAX_INT = 2**63 - 1

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (400, 401, 403, 404, 422, 429)
}


@router.get("/review", response_model=list[ReviewItemOut], responses=_ERRORS)
def list_review(
    key: ReadKey,
    services: ServicesDep,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ReviewItemOut]:
    """Review items of the key's collections, newest first (open ones by default)."""
    collections = None if key.all_collections else list(key.collections)
    items = services.rag.review_queue().list(
        None if status == "all" else status, collections, limit
    )
    return [ReviewItemOut.of(i) for i in items]


@router.get("/review/{item_id}", response_model=ReviewItemOut, responses=_ERRORS)
def get_review(
    item_id: Annotated[int, Path(ge=1, le=SQLITE_MAX_INT)], key: ReadKey, services: ServicesDep
) -> ReviewItemOut:
    """One review item with its recorded answer. An item of another collection is unknown."""
    return ReviewItemOut.of(_covered_item(services, key.covers, item_id))


def _covered_item(services: Any, covers: Any, item_id: int) -> Any:
    try:
        item = services.rag.review_queue().get(item_id)
    except KeyError:
        item = None
    if item is None or not covers(item.collection):
        raise ProblemError(404, "no review item with that id", kind="unknown-review-item")
    return item


@router.post("/review/{item_id}", response_model=ReviewItemOut, responses=_ERRORS)
def resolve_review(
    item_id: Annotated[int, Path(ge=1, le=SQLITE_MAX_INT)],
    body: ReviewResolveRequest,
    key: WriteKey,
    services: ServicesDep,
) -> ReviewItemOut:
    """Record a reviewer's verdict. An item of another collection is unknown (404)."""
    _covered_item(services, key.covers, item_id)
    return ReviewItemOut.of(
        services.rag.review_queue().resolve(item_id, body.resolution, body.note)
    )
