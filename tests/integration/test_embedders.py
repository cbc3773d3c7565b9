"""The bundled embedders, loaded for real: mpnet is selectable, int8 stays close to fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.encoders import SentenceTransformerEncoder, model_shape
from verirag.retrievers.store import FaissStore

pytestmark = pytest.mark.integration

DOCS = {
    "volcano.txt": "Mount Etna in Sicily is one of the most active volcanoes in Europe.",
    "bread.txt": "Sourdough bread rises thanks to wild yeast and lactic acid bacteria.",
    "chess.txt": "In chess, castling moves the king two squares towards a rook.",
}


def _corpus(root: Path) -> Path:
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text)
    return root


def test_mpnet_collection(tmp_path: Path, real_settings: Settings) -> None:
    settings = real_settings.with_overrides(embedder="mpnet")
    IndexingPipeline(settings).run([_corpus(tmp_path / "docs")], "mp")
    with FaissStore(settings.collections_dir / "mp") as store:
        assert store.config.dim == 768 and store.config.embedder == "mpnet"
    # The reader embeds the query with the collection's own model, whatever the default.
    hit = RagPipeline(real_settings).search("which volcano erupts often?", "mp", 1)[0]
    assert hit.source.endswith("volcano.txt")


@pytest.mark.parametrize("name", ["minilm", "mpnet"])
def test_the_shape_read_from_files_is_the_loaded_models(name: str, real_settings: Settings) -> None:
    encoder = SentenceTransformerEncoder(name, settings=real_settings)
    path = resolve_model(name, real_settings.models_dir, kind="embedder")
    assert model_shape(path) == (encoder.dim, encoder.max_tokens)


def test_int8_fast_path_stays_close_to_fp32(
    real_settings: Settings, minilm: SentenceTransformerEncoder
) -> None:
    fast = SentenceTransformerEncoder("minilm", settings=real_settings, backend="int8")
    texts = list(DOCS.values())
    cos = np.sum(minilm.encode(texts) * fast.encode(texts), axis=1)
    assert cos.min() > 0.95


def test_a_long_input_is_embedded_batch_by_batch_in_its_own_order(
    real_settings: Settings, minilm: SentenceTransformerEncoder
) -> None:
    """One model call per batch (so answers can run between an upload's batches), and the
    same vectors, row for row, as one call over everything."""
    texts = [f"{t} Sentence {i} adds {'words ' * (i % 5)}." for i, t in enumerate(DOCS.values())]
    texts = texts * 3 + ["A short one."]
    small = SentenceTransformerEncoder("minilm", settings=real_settings, batch_size=2)
    calls: list[int] = []
    inner = small._encode_batch

    def counted(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return inner(batch)

    small._encode_batch = counted  # type: ignore[method-assign,assignment]
    split = small.encode(texts)
    assert calls == [2, 2, 2, 2, 2]
    whole = minilm.encode(texts)
    np.testing.assert_allclose(split, whole, atol=1e-5)
