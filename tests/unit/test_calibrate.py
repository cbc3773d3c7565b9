"""Calibration helpers: thresholds, the logistic fit, and how own answers are labelled."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from verirag.core.records import Answer, ClaimResult, Timings
from verirag.pipeline.evaluation.calibrate import fit_logistic, own_answer, youden_threshold
from verirag.pipeline.evaluation.metrics import auroc

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


def _youden_by_counting(scores: list[float], positive: list[bool]) -> float:
    """Every distinct score tried as the cut, lowest first; the first best J wins."""
    pos, neg = sum(positive), len(positive) - sum(positive)
    best, best_j = math.nan, Fraction(-(10**9))
    for cut in sorted(set(scores)):
        tp = sum(s >= cut and y for s, y in zip(scores, positive, strict=True))
        fp = sum(s >= cut and not y for s, y in zip(scores, positive, strict=True))
        if (j := Fraction(tp, pos) - Fraction(fp, neg)) > best_j:
            best, best_j = cut, j
    return best


def test_youden_threshold_separates_classes() -> None:
    scores = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    labels = [False, False, False, True, True, True]
    assert youden_threshold(scores, labels) == 0.6
    # Cut 0.5 keeps both positives and the tied negative: J = 1 - 1/2. Cut 0.8: J = 1/2 - 0.
    # Equal J: the lower cut wins.
    assert youden_threshold([0.8, 0.5, 0.5, 0.1], [True, True, False, False]) == 0.5
    assert youden_threshold([0.4, 0.4], [True, False]) == 0.4  # one tie group: J 0
    # Inverted scores: every J < 0 but the lowest cut's 0, so the lowest score.
    assert youden_threshold([0.9, 0.1], [False, True]) == 0.1
    for scores, labels in [([0.1, 0.2], [True, True]), ([0.1], [False]), ([], [])]:
        with pytest.raises(ValueError, match="both classes"):
            youden_threshold(scores, labels)


@pytest.mark.parametrize("seed", range(4))
def test_youden_threshold_matches_counting(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = [bool(v) for v in rng.random(200) < 0.5]
    raw = rng.normal(0.4 + 0.2 * np.asarray(labels), 0.25)
    scores = [float(s) for s in np.round(raw, 1 if seed % 2 else 3)]  # many ties, or few
    assert youden_threshold(scores, labels) == _youden_by_counting(scores, labels)


def _case(seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    # Features on very different scales, as logprobs, entropies and shares are.
    x = rng.normal(size=(300, 3)) * np.array([1.0, 10.0, 0.01]) + np.array([-2.0, 5.0, 0.3])
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    y = (z @ np.array([2.0, -1.0, 0.0]) + rng.normal(scale=0.5, size=300) > 0).astype(float)
    return x, y


@pytest.mark.parametrize("l2", [0.1, 1.0, 30.0])
def test_fit_logistic_solves_the_penalised_objective(l2: float) -> None:
    """At the optimum of sum log loss + l2/2 |w|^2 (w on standardised features, bias free) the
    gradient vanishes: the residuals sum to 0 and z.T @ residual = -l2 * w."""
    x, y = _case(0)
    bias, w = fit_logistic(x, y, l2=l2)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    p = 1 / (1 + np.exp(-(x @ w + bias)))
    residual = p - y
    assert abs(residual.sum()) < 1e-2
    np.testing.assert_allclose(((x - mu) / sd).T @ residual, -l2 * w * sd, atol=1e-2)
    assert w[0] > 0 > w[1]  # the signs of the true weights


def test_fit_logistic_shrinks_with_l2_and_ignores_a_constant_feature() -> None:
    x, y = _case(1)
    x[:, 2] = 0.7
    _, loose = fit_logistic(x, y, l2=0.1)
    _, tight = fit_logistic(x, y, l2=100.0)
    assert loose[2] == pytest.approx(0.0, abs=1e-9) and tight[2] == pytest.approx(0.0, abs=1e-9)
    sd = x.std(axis=0)[:2]
    assert np.all(np.abs(tight[:2] * sd) < np.abs(loose[:2] * sd))
    bias, w = fit_logistic(x, y)
    assert auroc(list(x @ w + bias), [bool(v) for v in y]) > 0.9


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
    from verirag.evaluators.confidence import ConfidenceFeatures
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibrate import CalibrationData, HaluRow, OwnAnswer, fit

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
