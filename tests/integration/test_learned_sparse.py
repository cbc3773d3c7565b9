"""The bundled SPLADE-tiny, for real: its weights resolve and pass their sha256, a text's
weights name its own words and related ones (expansion), the max-logit shortcut gives the
literal SPLADE weights, and a question finds its passage through `--mode splade`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.learned_sparse import SpladeEncoder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def splade() -> SpladeEncoder:
    encoder = SpladeEncoder(settings=Settings(data_dir=MODEL_CACHE.parent, model_cache=MODEL_CACHE))
    encoder.warm_up()
    return encoder


def _top_words(encoder: SpladeEncoder, text: str, n: int) -> list[str]:
    v = encoder.encode([text])[0]
    order = np.argsort(-v.weights)[:n]
    words: list[str] = encoder._tokenizer.convert_ids_to_tokens(v.terms[order].tolist())
    return words


def test_weights_name_the_texts_words_and_match_literal_splade(splade: SpladeEncoder) -> None:
    import torch

    text = "The violinist tuned her instrument before the concert in Vienna."
    top = _top_words(splade, text, 15)
    assert {"instrument", "vienna", "concert"} <= set(top), top
    own = set(splade._tokenizer.tokenize(text))
    assert len(set(top) - own) >= 3, top  # expansion: related words the text does not use
    vector = splade.encode([text])[0]
    assert len(vector.terms) < 400 and (vector.weights > 0).all()  # sparse, positive
    # The shortcut (log1p of the max logit) equals SPLADE computed literally.
    model, tok = splade._model, splade._tokenizer
    batch = tok([text], return_tensors="pt")
    with torch.inference_mode():
        literal = torch.log1p(torch.relu(model(**batch).logits)).max(dim=1).values[0].numpy()
    np.testing.assert_array_equal(np.flatnonzero(literal > 0), vector.terms)
    np.testing.assert_allclose(literal[vector.terms], vector.weights, rtol=1e-5)


def test_a_question_finds_its_passage_by_splade_alone(
    tmp_path: Path, minilm: SentenceTransformerEncoder, splade: SpladeEncoder
) -> None:
    settings = Settings(data_dir=tmp_path / "data", model_cache=MODEL_CACHE)
    docs = tmp_path / "docs"
    docs.mkdir()
    passages = {
        "bread.txt": "Sourdough rises because wild yeast and lactobacilli ferment the dough.",
        "tides.txt": "The moon's gravity pulls the oceans, which makes the tides rise and fall.",
        "bees.txt": "Honey bees dance to tell the hive where the flowers with nectar are.",
    }
    for name, text in passages.items():
        (docs / name).write_text(text)
    IndexingPipeline(settings, encoder=minilm, splade=splade).run([docs], "c")
    rag = RagPipeline(settings, encoder=minilm, splade=splade)
    for question, want in [
        ("What causes ocean tides?", "tides.txt"),
        ("How do bees communicate?", "bees.txt"),
        ("What makes sourdough bread rise?", "bread.txt"),
    ]:
        hits = rag.search(question, "c", 3, mode="splade")
        assert hits[0].source.endswith(want), (question, [h.source for h in hits])
    rag.close()
