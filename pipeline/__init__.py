"""verirag's spine: typed records, settings, the model registry and the two pipelines.

`IndexingPipeline` turns documents into a searchable collection; `RagPipeline` reads it.
The CLI, the HTTP API, the evaluators and the notebooks all go through these two objects.
"""

from pipeline.records import Chunk, Document, IndexReport, SearchHit
from pipeline.settings import Settings

__all__ = ["Chunk", "Document", "IndexReport", "SearchHit", "Settings"]
