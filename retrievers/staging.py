"""One file's staging: load it, skip its unchanged documents, chunk the others.

The in-process `IndexingPipeline` and the Ray chunking workers (`retrievers/distributed`) run
this same function; only where a document's previous state comes from differs (the store, or
the states the driver sent with the file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from verirag.core.records import Chunk, Document, FileOutcome
from verirag.retrievers.chunking import Chunker
from verirag.retrievers.loaders import LoadError, load_file


@dataclass
class FileWork:
    """One changed file: where to read it, its bookkeeping, the states of its documents."""

    path: str  # as given (the in-process engine) or resolved (Ray workers)
    key: str  # the resolved path, the store's file key
    mtime_ns: int
    size: int
    known: dict[str, tuple[str, str]] = field(default_factory=dict)  # doc id -> (hash, fp)


@dataclass
class FileResult:
    """What staging made of one file; the pipeline records it and writes it."""

    work: FileWork
    # Failures and unchanged documents, in the order the file gave them.
    outcomes: list[FileOutcome] = field(default_factory=list)
    staged: list[tuple[Document, list[Chunk]]] = field(default_factory=list)
    vectors: npt.NDArray[np.float32] | None = None  # one row per staged chunk, in order
    # Every document the file holds now; None when it was not read cleanly, so it must not
    # drop the documents it no longer holds.
    doc_ids: frozenset[str] | None = None

    @property
    def texts(self) -> list[str]:
        return [c.embed_text(doc.title) for doc, chunks in self.staged for c in chunks]


def stage_file(
    work: FileWork,
    chunker: Chunker,
    max_bytes: int,
    fingerprint: str,
    state_of: Callable[[str], tuple[str, str] | None],
) -> FileResult:
    result = FileResult(work)
    try:
        docs, failures = load_file(Path(work.path), max_bytes)
    except LoadError as exc:
        # Existing documents of this file stay as they were: a bad new version never
        # deletes a good old one.
        result.outcomes.append(FileOutcome(work.key, None, "failed", reason=str(exc)))
        return result
    for failure in failures:
        result.outcomes.append(FileOutcome(failure.source, None, "failed", reason=failure.reason))
    for doc in docs:
        if state_of(doc.doc_id) == (doc.content_hash, fingerprint):
            result.outcomes.append(FileOutcome(doc.source, doc.doc_id, "unchanged"))
            continue
        chunks = chunker.split(doc)
        if chunks:
            result.staged.append((doc, chunks))
        else:
            result.outcomes.append(
                FileOutcome(doc.source, doc.doc_id, "failed", reason="no text left after chunking")
            )
    if not failures:
        # Only a cleanly read file may drop the documents it no longer holds.
        result.doc_ids = frozenset(d.doc_id for d in docs)
    return result
