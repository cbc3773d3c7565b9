"""verirag: answers only from your own documents, and says when an answer must not be trusted.

The one import users need::

    from verirag import IndexingPipeline, RagPipeline, Settings

Names resolve on first use (PEP 562), so ``import verirag`` loads no model and no torch.

The distribution installs a single import name, ``verirag``. The repository's top-level folders
(``pipeline/``, ``retrievers/``, ``generators/``, ``evaluators/``) are its sub-packages
``verirag.pipeline`` and so on: ``verirag/`` links to them, so generic names such as
``pipeline`` never reach ``site-packages`` where they could collide with another project.

Layers, imports pointing down only (enforced by import-linter in ``make lint``):

- ``verirag.core``: records, settings, model registry, compute thread, device, db helpers
- stages: ``verirag.retrievers`` and ``verirag.generators``, then ``verirag.evaluators``
  (the answer checks and the ``Verifier``)
- ``verirag.pipeline``: ``IndexingPipeline`` and ``RagPipeline`` (orchestration)
- faces: ``verirag.pipeline.cli``, ``verirag.pipeline.api``, ``verirag.pipeline.evaluation``
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Answer": "verirag.core.records",
    "ClaimResult": "verirag.core.records",
    "Citation": "verirag.core.records",
    "Document": "verirag.core.records",
    "IndexReport": "verirag.core.records",
    "SearchHit": "verirag.core.records",
    "Settings": "verirag.core.settings",
    "GenerationParams": "verirag.generators.params",
    "IndexingPipeline": "verirag.pipeline.indexing",
    "RagPipeline": "verirag.pipeline.rag",
}

__all__ = [
    "Answer",
    "Citation",
    "ClaimResult",
    "Document",
    "GenerationParams",
    "IndexReport",
    "IndexingPipeline",
    "RagPipeline",
    "SearchHit",
    "Settings",
]

if TYPE_CHECKING:
    from verirag.core.records import (
        Answer,
        Citation,
        ClaimResult,
        Document,
        IndexReport,
        SearchHit,
    )
    from verirag.core.settings import Settings
    from verirag.generators.params import GenerationParams
    from verirag.pipeline.indexing import IndexingPipeline
    from verirag.pipeline.rag import RagPipeline


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'verirag' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
