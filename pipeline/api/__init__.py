"""The HTTP API (`verirag serve`): a FastAPI app over the same pipelines as the CLI."""

from verirag.pipeline.api.app import create_app
from verirag.pipeline.api.services import Services

__all__ = ["Services", "create_app"]
