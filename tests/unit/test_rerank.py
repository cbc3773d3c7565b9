"""The reranker: its interaction features, the model file it is shipped as, and the retriever
ordering the fused candidates by it when asked (and only then). Hashed stand-ins replace the
encoders here; tests/integration/test_hybrid_retrieval.py measures the shipped model on SQuAD."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HashEncoder, HashSplade, _hash_settings
from verirag.core.registry import ModelError
from verirag.core.settings import Settings
from verirag.pipeline.api.errors import classify
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.bm25 import tokenize
from verirag.retrievers.rerank import (
    FEATURES,
    SHIPPED_FEATURES,
    WINDOW,
    RerankCandidate,
    RerankModel,
    _window_share,
    features,
    load_reranker,
    model_path,
)

IDF = {"lighthouse": 2.0, "keeper": 1.0, "storm": 1.0}
QUERY = tokenize(["Who was the lighthouse keeper in the storm?"])[0]


def _column(name: str) -> int:
    return FEATURES.index(name)


def test_words_together_score_above_the_same_words_apart() -> None:
    together = RerankCandidate(1, "Tom was the lighthouse keeper. The storm came later.", 1.0)
    apart = RerankCandidate(
        2,
        "A lighthouse stood on the cliff above the harbour. Fishing was poor that year, and "
        "the village kept bees. A keeper of bees sold honey. The storm.",
        1.0,
    )
    x = features(QUERY, IDF, [together, apart], tokenize)
    cov, sent, win, pairs = (_column(n) for n in ("coverage", "sentence", "window", "pairs"))
    assert x[0, cov] == x[1, cov] == pytest.approx(1.0)  # every word is in both
    assert x[0, sent] == pytest.approx(3 / 4) and x[1, sent] == pytest.approx(2 / 4)
    assert x[0, win] == pytest.approx(1.0)
    assert x[1, win] < 1.0
    # Stopwords are dropped first, so "keeper. The storm" is a kept pair too.
    assert x[0, pairs] == pytest.approx(2 / 3) and x[1, pairs] == 0.0


def test_the_sliding_window_equals_every_window_counted_afresh() -> None:
    def every_window(tokens: list[str], weight: dict[str, float]) -> float:
        starts = range(max(1, len(tokens) - WINDOW + 1))
        return max(sum(weight.get(t, 0.0) for t in set(tokens[i : i + WINDOW])) for i in starts)

    rng = random.Random(1)
    for _ in range(500):
        tokens = [rng.choice("abcdefghij") for _ in range(rng.randint(0, 40))]
        weight = {c: rng.random() for c in rng.sample("abcdefghij", 4)}
        assert _window_share(tokens, weight, 2.0) == pytest.approx(every_window(tokens, weight) / 2)


def test_side_scores_are_standardised_and_a_missing_one_counts_as_the_lowest() -> None:
    cands = [
        RerankCandidate(1, "a", 3.0, dense=0.9, bm25=12.0),
        RerankCandidate(2, "b", 2.0, dense=0.5, bm25=None),
        RerankCandidate(3, "c", 1.0, dense=0.1, bm25=4.0),
    ]
    x = features(QUERY, IDF, cands, tokenize)
    assert x[:, _column("fused")] == pytest.approx([1.2247, 0.0, -1.2247], abs=1e-4)
    bm25 = x[:, _column("bm25")]
    assert bm25[1] == bm25[2] < bm25[0]  # not found by BM25 = the list's lowest
    assert (x[:, _column("splade")] == 0).all()  # no SPLADE side: no information
    # A question of words the collection lacks leaves the lexical features at 0.
    assert (features(["zzz"], IDF, cands, tokenize)[:, _column("coverage") :] == 0).all()


def _model(weights: dict[str, float], bias: float = 0.0) -> RerankModel:
    n = len(FEATURES)
    return RerankModel(
        "t", tuple(weights.get(f, 0.0) for f in FEATURES), bias, (0.0,) * n, (1.0,) * n
    )


def test_the_model_file_round_trips_and_refuses_other_features(tmp_path: Path) -> None:
    model = _model({"sentence": 2.0, "fused": 0.5}, bias=-1.0)
    path = tmp_path / "m.json"
    model.save(path)
    again = RerankModel.load(path)
    assert again == model
    x = np.eye(len(FEATURES))
    assert again.score(x) == pytest.approx(model.score(x))
    assert model.score(x) == pytest.approx([-0.5, -1, -1, -1, -1, 1, -1, -1])
    # A model reads only its own features, standardised as fitted.
    some = RerankModel("s", (1.0, 3.0), 0.0, (0.0, 1.0), (1.0, 2.0), ("window", "fused"))
    # Row i of the identity has feature i at 1: fused (row 0) at its mean gives 0, window
    # (row 6) gives 1 + 3 * (0 - 1) / 2, every other row 3 * (0 - 1) / 2.
    assert some.score(x) == pytest.approx([0.0, -1.5, -1.5, -1.5, -1.5, -1.5, -0.5, -1.5])
    assert some.score(x + 1.0)[0] == pytest.approx(1.0 + 3.0 * (2.0 - 1.0) / 2.0)
    raw = json.loads(path.read_text())
    raw["features"][0] = "title_match"  # from a newer verirag
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="fit it again"):
        RerankModel.load(path)
    path.with_name("other.json").write_text(json.dumps(raw))
    raw["features"] = raw["features"][1:]
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="one weight, mean and scale per feature"):
        RerankModel.load(path)
    with pytest.raises(ModelError, match=r"no reranker 'nope'.*lexical-v1"):
        load_reranker("nope")
    with pytest.raises(ModelError, match=r"cannot be read: .*fit it again"):
        load_reranker(str(path.with_name("other.json")))  # a file from a newer verirag
    assert classify(ModelError("x")).status == 503  # what the API answers


def test_the_shipped_reranker_says_how_it_was_fitted() -> None:
    model = load_reranker("lexical-v1")
    assert model_path("lexical-v1").parent.name == "rerankers"
    about = model.about
    assert about["questions"] >= 1000 and about["folds"] >= 5
    oof = about["out_of_fold"]
    assert oof["reranked_ndcg@10"] > oof["first_stage_ndcg@10"]  # out of fold, on HaluEval
    assert model.features == SHIPPED_FEATURES  # no side's own score: see SHIPPED_FEATURES
    assert len(about["trained_on_ids"]) == about["questions"]


WORDS = ["harbour", "lantern", "granite", "orchard", "compass", "meadow", "furnace", "violin"]


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Settings, HashSplade]:
    settings = _hash_settings(tmp_path, splade_model="hash-splade")
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(30):
        words = ". ".join(WORDS[(i * j + j) % len(WORDS)] for j in range(1, i % 5 + 3))
        (folder / f"d{i}.txt").write_text(f"Note {i} is about subject{i}. {words}.")
    splade = HashSplade()
    IndexingPipeline(settings, encoder=HashEncoder(), splade=splade).run([folder], "c")  # type: ignore[arg-type]
    return settings, splade


def _rag(settings: Settings, splade: HashSplade) -> RagPipeline:
    return RagPipeline(settings, encoder=HashEncoder(), splade=splade)  # type: ignore[arg-type]


def test_reranking_orders_the_fused_candidates_by_the_model_unless_turned_off(
    indexed: tuple[Settings, HashSplade], tmp_path: Path
) -> None:
    settings, splade = indexed
    query = "orchard compass meadow"
    rag = _rag(settings, splade)
    plain = rag.search(query, "c", 5, rerank=False)
    retriever = rag.retriever("c")
    given = retriever.rerank_input(query, retriever.fusion.rerank_depth)
    assert [c.chunk_id for c in given.candidates[:5]] == [h.chunk_id for h in plain]
    # The shipped model is on by default.
    shipped = load_reranker(settings.rerank_model)
    scores = shipped.score(given.features(tokenize))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:5]
    assert [h.chunk_id for h in rag.search(query, "c", 5)] == [
        given.candidates[i].chunk_id for i in order
    ]
    # A model that reads only the best window: the order follows it, not the fusion.
    path = tmp_path / "window.json"
    _model({"window": 1.0}).save(path)
    reranking = _rag(settings.with_overrides(rerank_model=str(path)), splade)
    got = reranking.search(query, "c", 5)
    window = given.features(tokenize)[:, _column("window")]
    order = sorted(range(len(window)), key=lambda i: (-window[i], i))[:5]
    assert [h.chunk_id for h in got] == [given.candidates[i].chunk_id for i in order]
    assert [h.chunk_id for h in got] != [h.chunk_id for h in plain]
    assert all(h.dense_score is not None for h in got)  # the relevance floor still applies
    # One side alone is what a user asks for to see that side: never reranked.
    assert reranking.search(query, "c", 5, mode="bm25") == rag.search(
        query, "c", 5, mode="bm25", rerank=False
    )
    # The setting turns it off for every search that does not say otherwise.
    off = _rag(settings.with_overrides(rerank_model=str(path), rerank=False), splade)
    assert off.search(query, "c", 5) == plain
    assert off.search(query, "c", 5, rerank=True) == got
    for r in (rag, reranking, off):
        r.close()
