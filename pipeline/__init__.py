"""Orchestration and faces.

`IndexingPipeline` (`indexing`) turns documents into a searchable collection; `RagPipeline`
(`rag`) reads it, running the stages in order. The faces sit on top and only call those two:
the command line (`cli`), the HTTP API (`api`) and the offline evaluation (`evaluation`).
"""
