"""Indexing stages that run on a Ray cluster (Ray Data): load and chunk files on CPU workers,
embed on an actor pool with one encoder per actor (GPUs where the cluster has them).

Nothing here writes: each stage returns a file's documents, chunks and vectors, and the
driver writes them through the store's normal batch writer (`IndexingPipeline`), so
incremental updates, pruning, crash safety and the summary are the in-process ones. A worker
that dies is retried by Ray; its output was never written, so a retry cannot duplicate chunks.

Rows carry one file each; documents and chunks travel pickled (`payload`), because Arrow has
no type for them and a file's records must stay together.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.retrievers.chunking import Chunker
from verirag.retrievers.encoders import SentenceTransformerEncoder, load_tokenizer
from verirag.retrievers.staging import FileResult, stage_file

# Fault injection for the recovery test: the first embedding actor to see this file missing
# creates it and dies, as a worker lost mid-run would.
CRASH_ONCE_ENV = "VERIRAG_TEST_CRASH_EMBED_ONCE"


def _rows(batch: dict[str, Any]) -> list[Any]:
    return [pickle.loads(bytes(p)) for p in batch["payload"]]


def _batch(items: list[Any]) -> dict[str, Any]:
    return {"payload": np.array([pickle.dumps(i) for i in items], dtype=object)}


class ChunkStage:
    """Ray Data callable class: loads each file and chunks its changed documents."""

    def __init__(self, settings: Settings, size: int, overlap: int, fingerprint: str) -> None:
        # Chunking workers never embed: the tokenizer alone, no weights.
        path = resolve_model(settings.embedder, settings.models_dir, kind="embedder")
        self.chunker = Chunker(load_tokenizer(path), size, overlap)
        self.max_bytes = settings.max_file_bytes
        self.fingerprint = fingerprint

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return _batch(
            [
                stage_file(w, self.chunker, self.max_bytes, self.fingerprint, w.known.get)
                for w in _rows(batch)
            ]
        )


class EmbedStage:
    """Ray Data callable class: one encoder per actor, the whole batch's chunks in one call."""

    def __init__(self, settings: Settings) -> None:
        self.encoder = SentenceTransformerEncoder(settings.embedder, settings=settings)
        self.encoder.warm_up()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results: list[FileResult] = _rows(batch)
        marker = os.environ.get(CRASH_ONCE_ENV)
        if marker and not Path(marker).exists():
            Path(marker).touch()
            os._exit(1)
        texts = [t for r in results for t in r.texts]
        vectors = self.encoder.encode(texts)
        at = 0
        for r in results:
            n = sum(len(chunks) for _, chunks in r.staged)
            r.vectors = vectors[at : at + n]
            at += n
        return _batch(results)


@contextmanager
def ray_session(settings: Settings) -> Iterator[tuple[Any, float]]:
    """`ray.data` on the configured cluster (joined, or a local instance started once per
    process and kept for later runs), with the GPUs each embedding actor takes."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ValueError("index_engine 'ray' needs Ray Data: pip install 'verirag[ray]'") from exc
    if not ray.is_initialized():
        ray.init(
            address=settings.ray_address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # results, and chunk ids, in file order
    context.enable_progress_bars = False
    gpus = settings.ray_gpus_per_actor
    if gpus is None:
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        has_gpu = resources.get("GPU", 0) > 0 and settings.device != "cpu"
        gpus = 1.0 if has_gpu else 0.0
    yield ray.data, gpus
