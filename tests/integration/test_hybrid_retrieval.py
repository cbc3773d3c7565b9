"""Retrieval with the real bundled MiniLM on the committed SQuAD sample, indexed once: the
index holds every chunk, dense retrieval finds the passages, and hybrid retrieval earns its
place by beating BM25 alone and dense alone in recall@5 and nDCG@10.

Measured on the committed sample (all 600 paragraphs, 800 of their questions, seed 13):
R@5 / nDCG@10 dense 0.921 / 0.857, BM25 0.940 / 0.907, hybrid 0.961 / 0.912. The lead over
BM25 in nDCG@10 is thin (on the full dev set BM25 leads there, bench/RESULTS.md); recall@5,
what the generator is given, is where hybrid clearly wins."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import SQUAD_SAMPLE
from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets import squad_sample, write_jsonl
from verirag.pipeline.evaluation.metrics import dedupe, mean, ndcg_at_k, recall_at_k
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.store import FaissStore

pytestmark = pytest.mark.integration

N_PASSAGES, N_QUESTIONS, SEED = 600, 800, 13


def test_hybrid_beats_dense_and_bm25(
    tmp_path: Path,
    real_settings: Settings,
    minilm: SentenceTransformerEncoder,
) -> None:
    passages, questions = squad_sample(SQUAD_SAMPLE, N_PASSAGES, SEED)
    questions = random.Random(SEED).sample(questions, N_QUESTIONS)
    corpus = write_jsonl(passages, tmp_path / "squad.jsonl")
    report = IndexingPipeline(real_settings, encoder=minilm).run([corpus], "squad")
    assert report.added == N_PASSAGES and report.failed == 0
    with FaissStore(real_settings.collections_dir / "squad") as store:
        assert store.index().ntotal == store.count("chunks") == report.chunks_added
    rag = RagPipeline(real_settings, encoder=minilm)
    scores: dict[str, tuple[float, float]] = {}
    dense_r10 = 0.0
    for mode in ("dense", "bm25", "hybrid"):
        ranked = [
            dedupe([h.doc_id for h in rag.search(q.question, "squad", 20, mode=mode)])
            for q in questions
        ]
        if mode == "dense":
            dense_r10 = mean(
                [recall_at_k(r, q.relevant, 10) for r, q in zip(ranked, questions, strict=True)]
            )
        scores[mode] = (
            mean([recall_at_k(r, q.relevant, 5) for r, q in zip(ranked, questions, strict=True)]),
            mean([ndcg_at_k(r, q.relevant, 10) for r, q in zip(ranked, questions, strict=True)]),
        )
    print(
        f"\nSQuAD {N_PASSAGES} passages / {N_QUESTIONS} questions (seed {SEED}): "
        + "; ".join(f"{m} R@5 {r:.4f} nDCG@10 {n:.4f}" for m, (r, n) in scores.items())
        + f"; dense R@10 {dense_r10:.4f}"
    )
    # Dense alone finds the passage in its top 10 for most questions (measured 0.951): room
    # for a dozen more misses, not for a broken index.
    assert dense_r10 > 0.93
    for other in ("dense", "bm25"):
        assert scores["hybrid"][0] > scores[other][0]
        assert scores["hybrid"][1] > scores[other][1]
    # Floors a little under the measured 0.961 / 0.912, so a regression that hurts every mode
    # alike still fails.
    assert scores["hybrid"][0] > 0.94 and scores["hybrid"][1] > 0.89
