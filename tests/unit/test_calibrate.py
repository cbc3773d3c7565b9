"""Calibration helpers: thresholds, the logistic fit, and how own answers are labelled."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from verirag.pipeline.evaluation.calibrate import fit_logistic, own_answer, youden_threshold
from verirag.pipeline.evaluation.metrics import auroc
from verirag.core.records import Answer, ClaimResult, Timings

FEATURES = {
    "n_tokens": 5.0,
    "mean_logprob": -0.4,
    "min_logprob": -2.0,
    "mean_entropy": 0.8,
    "low_share": 0.2,
}


def _answer(text: str, decision: str = "answer", score: float | None = 0.9) -> Answer:
    claim = ClaimResult(text, 0, len(text), (1,), "supported", score, "", missing_terms=())
    return Answer(
        question="When?",
        collection="c",
        text=text,
        decision=decision,
        decision_reason="",
        confidence=0.5,
        claims=(claim,),
        citations=(),
        retrieved=(),
        generator="g",
        prompt_version="v2",
        params={},
        timings=Timings(),
        source_lift=0.7,
        confidence_features=FEATURES,
    )


def test_youden_threshold_separates_classes() -> None:
    scores = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    labels = [False, False, False, True, True, True]
    assert youden_threshold(scores, labels) == 0.6
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold([0.1, 0.2], [True, True])


def test_fit_logistic_ranks_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x @ np.array([2.0, -1.0, 0.0]) + rng.normal(scale=0.5, size=300) > 0).astype(float)
    bias, w = fit_logistic(x, y)
    ours = x @ w + bias
    theirs = LogisticRegression().fit(x, y).decision_function(x)
    labels = [bool(v) for v in y]
    assert auroc(list(ours), labels) == pytest.approx(auroc(list(theirs), labels), abs=0.01)
    assert w[0] > 0 > w[1]  # the signs of the true weights


def test_own_answers_are_labelled_by_source_and_gold() -> None:
    gold = ("1889",)
    right = own_answer(_answer("It was completed in 1889 [1]."), gold, gold_indexed=True)
    assert right is not None and right.correct and right.lift == 0.7
    assert right.features.mean_logprob == -0.4 and right.claim_scores == (0.9,)
    wrong = own_answer(_answer("It was completed in 1901 [1]."), gold, gold_indexed=True)
    assert wrong is not None and not wrong.correct
    # Without its source: a delivered answer is wrong, unless it still contains the gold
    # answer (memory or a sibling passage), which cannot be decided here.
    unsourced = own_answer(_answer("It was completed in 1901."), gold, gold_indexed=False)
    assert unsourced is not None and not unsourced.correct
    assert own_answer(_answer("It was completed in 1889."), gold, gold_indexed=False) is None
    assert own_answer(_answer("I don't know.", "abstain"), gold, gold_indexed=True) is None
    undecided = replace(_answer("In 1889."), claims=(replace(right_claim(), score=None),))
    row = own_answer(undecided, gold, gold_indexed=True)
    assert row is not None and row.claim_scores == (0.5,)  # an undecided claim: unknown


def right_claim() -> ClaimResult:
    return _answer("In 1889.").claims[0]


def test_calibration_data_round_trips_and_fits(tmp_path: Path) -> None:
    from verirag.pipeline.evaluation.calibrate import CalibrationData, HaluRow, OwnAnswer, fit
    from verirag.evaluators.confidence import ConfidenceFeatures
    from verirag.evaluators.decision import Thresholds

    rng = np.random.default_rng(1)
    own, halu = [], []
    for i in range(40):
        good = i % 2 == 0
        lp = -0.2 if good else -1.0
        feats = ConfidenceFeatures(10, lp + rng.normal(0, 0.2), lp * 4, 1 - lp, 0.1)
        own.append(OwnAnswer(feats, 1.0 if good else 0.2, (0.9 if good else 0.4,), good))
        halu.append(HaluRow(feats, 0.8 if good else 0.3, 1.5 if good else -0.5, 0.8, 1.0, good))
    data = CalibrationData(own, halu, 3, "synthetic")
    path = tmp_path / "signals.json"
    data.dump(path)
    assert CalibrationData.load(path) == data
    logged: list[str] = []
    t = fit(data, Thresholds(version="4"), "m", log=logged.append)
    assert t.version == "5" and t.model == "m" and t.fitted_on == "synthetic"
    assert 0.3 < t.claim_support <= 0.8 and 0 < t.answer_min < 1
    assert any("combined 1.000" in line for line in logged)
