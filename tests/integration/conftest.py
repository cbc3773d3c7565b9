from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.settings import Settings
from verirag.retrievers.encoders import SentenceTransformerEncoder


@pytest.fixture(scope="session")
def minilm() -> Iterator[SentenceTransformerEncoder]:
    """The real bundled MiniLM, loaded once per test session."""
    encoder = SentenceTransformerEncoder(
        "minilm", settings=Settings(data_dir=MODEL_CACHE.parent, model_cache=MODEL_CACHE)
    )
    encoder.warm_up()
    yield encoder


@pytest.fixture
def real_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model_cache=MODEL_CACHE)
