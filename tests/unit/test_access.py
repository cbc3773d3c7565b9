"""Collection access is checked inside retrieval, before any store is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from verirag.core.settings import Settings
from verirag.pipeline.rag import CollectionAccessError, RagPipeline


def test_search_and_ask_refuse_a_collection_the_caller_may_not_read(tmp_path: Path) -> None:
    rag = RagPipeline(Settings(data_dir=tmp_path))
    only_a = {"a"}.__contains__
    for call in (
        lambda: rag.search("q?", "b", allowed=only_a),
        lambda: rag.prepare("q?", "b", allowed=only_a),
        lambda: rag.ask("q?", "b", allowed=only_a),
    ):
        with pytest.raises(CollectionAccessError, match="'b'"):
            call()
    assert not (tmp_path / "collections" / "b").exists()  # never opened, never created
    assert rag._stores == {}
