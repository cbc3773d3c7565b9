"""What a caller asks: the question, validated once, the conversation before it, and the
access check on the collection. Imported by the pipelines and the faces alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from verirag.core.records import Message


class QueryError(ValueError):
    """The question itself is unusable (empty, too long)."""


class CollectionAccessError(PermissionError):
    """The caller may not read this collection (checked before the store is opened)."""


AccessCheck = Callable[[str], bool]

MAX_COLLECTIONS = 8  # asked at once: each adds a retrieval to the question's latency


def collection_names(collection: str | Sequence[str]) -> tuple[str, ...]:
    """One collection or several (in the order asked, repeats dropped)."""
    names = (collection,) if isinstance(collection, str) else tuple(dict.fromkeys(collection))
    if not names:
        raise QueryError("name at least one collection")
    if len(names) > MAX_COLLECTIONS:
        raise QueryError(f"at most {MAX_COLLECTIONS} collections per question, got {len(names)}")
    return names


def check_access(collection: str, allowed: AccessCheck | None) -> None:
    if allowed is not None and not allowed(collection):
        raise CollectionAccessError(f"no access to collection '{collection}'")


@dataclass(frozen=True)
class Question:
    """A question that passed validation once (`RagPipeline.question`); passing it on to
    `search` or `ask` does not check it again."""

    text: str


def validate_query(query: str | Question, limit: int) -> str:
    if isinstance(query, Question):
        return query.text
    cleaned = query.strip()
    if not cleaned:
        raise QueryError("the query is empty")
    if len(cleaned) > limit:
        raise QueryError(f"the query is {len(cleaned)} characters, over the limit of {limit}")
    return cleaned


ROLES = ("user", "assistant")


def validate_history(history: Sequence[Message], limit: int) -> list[Message]:
    """Earlier turns of a conversation: user and assistant messages, not empty, at most
    `limit` characters in all."""
    turns = list(history)
    for i, turn in enumerate(turns):
        if turn.role not in ROLES:
            raise QueryError(f"history turn {i}: role must be user or assistant, got {turn.role!r}")
        if not turn.content.strip():
            raise QueryError(f"history turn {i} is empty")
    total = sum(len(t.content) for t in turns)
    if total > limit:
        raise QueryError(f"the history is {total} characters, over the limit of {limit}")
    return turns
