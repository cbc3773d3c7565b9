"""bench/unanswerable_ranking.py reads how well stored signals tell a left-out paragraph."""

from __future__ import annotations

import random

import pytest

from bench.unanswerable_ranking import (
    figures,
    precision_at_recall,
    rankings,
)
from tests.records import stored_answer, uninformative_signals
from verirag.pipeline.evaluation.metrics import auroc
from verirag.pipeline.evaluation.suites.shared import AnswerRecord


def test_precision_at_recall_takes_the_best_cut_that_keeps_the_recall() -> None:
    # Ranked: pos, neg, pos, pos, neg. Recall 1/3 at the top (precision 1); 2/3 at the top
    # three (precision 2/3), but the top four reach recall 1 at 3/4, a better cut for it.
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [True, False, True, True, False]
    assert precision_at_recall(scores, labels, 0.3) == pytest.approx(1.0)
    assert precision_at_recall(scores, labels, 0.6) == pytest.approx(3 / 4)
    assert precision_at_recall(scores, labels, 0.9) == pytest.approx(3 / 4)


def _records(informative: bool, n: int = 200) -> list[AnswerRecord]:
    """Answers to half answerable, half left-out questions; the retrieval signal follows the
    label when `informative`, and is drawn whatever it when not."""
    rng = random.Random(5)
    out = []
    for i in range(n):
        answerable = i % 2 == 0
        signals = uninformative_signals(rng)
        high = rng.uniform(0.6, 1.0) if answerable else rng.uniform(0.0, 0.4)
        signals["retrieval"] = high if informative else rng.uniform(0.0, 1.0)
        abstained = not answerable and i % 10 == 1
        out.append(
            stored_answer(
                answerable=answerable,
                decision="abstain" if abstained else "review",
                confidence=0.0 if abstained else rng.uniform(0.2, 0.8),
                signals={} if abstained else signals,
            )
        )
    return out


def test_the_blend_finds_a_signal_that_tells_the_paragraph_left_out() -> None:
    records = _records(informative=True)
    labels = [not r.answerable for r in records]
    scores = rankings(records)
    blend = scores["out-of-fold blend"]
    assert auroc(blend, labels) > 0.95
    assert figures(blend, labels)["precision at recall 0.9"] > 0.9
    assert auroc(scores["out-of-fold trees"], labels) > 0.95


def test_the_blend_finds_nothing_where_no_signal_tells() -> None:
    records = _records(informative=False)
    labels = [not r.answerable for r in records]
    scores = rankings(records)
    # Only the abstentions (a tenth of the left-out questions) are told apart.
    assert auroc(scores["out-of-fold blend"], labels) < 0.75
    assert auroc(scores["out-of-fold trees"], labels) < 0.75
    assert auroc(scores["1 - retrieval"], labels) < 0.7
    assert figures(scores["1 - confidence"], labels)["precision at recall 0.9"] < 0.7
