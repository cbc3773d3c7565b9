"""How the API shows a document's source path: as indexed to an admin key, and relative to
its collection's root to any other key, so that read and write keys never see the server's
directory layout. A collection's root is the deepest directory holding all its documents
(the uploads folder for uploaded files). Pure: no I/O."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from verirag.core.records import Answer

# (collection, source as indexed) -> source as shown
SourceView = Callable[[str, str], str]


def as_indexed(collection: str, source: str) -> str:
    return source


def source_root(sources: Iterable[str]) -> str | None:
    """The deepest directory that holds every absolute path among `sources` (a JSONL
    record's `#line` ignored); None when there is none."""
    parents = [str(PurePosixPath(s.split("#", 1)[0]).parent) for s in sources if s[:1] == "/"]
    return os.path.commonpath(parents) if parents else None


def relative_source(source: str, root: str | None) -> str:
    """`source` relative to `root`; an absolute path outside it (a document indexed after
    the root was computed) shows its file name only, never the server's directories."""
    path, sep, fragment = source.partition("#")
    if not path.startswith("/"):
        return source
    prefix = (root or "").rstrip("/") + "/"
    shown = path[len(prefix) :] if root is not None and path.startswith(prefix) else ""
    return (shown or PurePosixPath(path).name) + sep + fragment


def present_answer(answer: Answer, view: SourceView) -> Answer:
    """The answer with its citations' and retrieved hits' sources as `view` shows them."""
    if view is as_indexed:
        return answer
    return replace(
        answer,
        citations=tuple(
            replace(c, source=view(c.collection or answer.collection, c.source))
            for c in answer.citations
        ),
        retrieved=tuple(
            replace(h, source=view(h.collection or answer.collection, h.source))
            for h in answer.retrieved
        ),
    )


def present_recorded(
    answer: Mapping[str, Any], collection: str, view: SourceView
) -> dict[str, Any]:
    """A recorded answer (a review item's JSON) with its sources as `view` shows them."""
    shown = dict(answer)
    for field in ("citations", "retrieved"):
        shown[field] = [
            {**s, "source": view(s.get("collection") or collection, str(s.get("source", "")))}
            for s in answer.get(field, ())
        ]
    return shown
