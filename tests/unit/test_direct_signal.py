"""bench/direct_signal.py: a candidate signal is judged by refits that never see the run scored."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench.direct_signal import compare, left_out_predictions, weighed
from verirag.evaluators.decision import Thresholds
from verirag.pipeline.evaluation.calibrate import HeldOutAnswer


def _rows(
    rng: random.Random,
) -> tuple[list[HeldOutAnswer], dict[tuple[str, str], dict[str, float | None]]]:
    """Three runs of answers whose stored signals say a little about being right, a candidate
    that says much more (`direct`), one that says nothing (`agrees`), and one unrecorded on
    some answers (`short_first`)."""
    rows, features = [], {}
    for k in range(3):
        for i in range(120):
            right = rng.random() < 0.5
            lean = 0.1 if right else -0.1
            rows.append(
                HeldOutAnswer(
                    item_id=f"q{i}",
                    run=f"run{k}",
                    correct=right,
                    support=rng.random(),
                    lift=rng.gauss(lean, 1.0),
                    logprob=min(1.0, max(0.0, rng.gauss(0.5 + lean, 0.2))),
                    alignment=rng.random(),
                    anchor=rng.random(),
                    retrieval=rng.random(),
                )
            )
            features[(f"run{k}", f"q{i}")] = {
                "direct": min(1.0, max(0.0, rng.gauss(0.7 if right else 0.3, 0.2))),
                "agrees": float(rng.random() < 0.5),
                "short_first": None if i % 4 == 0 else rng.random(),
            }
    return rows, features


def test_an_informative_candidate_gains_and_noise_does_not() -> None:
    shipped = Thresholds.load(model="qwen2.5-1.5b")
    rows, features = _rows(random.Random(5))
    result = compare(shipped, rows, features, resamples=300)
    assert result["gain direct"]["value"] > 0.1 and result["gain direct"]["low"] > 0.05
    noise = result["gain agrees"]
    assert noise["low"] < 0 < noise["high"] and abs(noise["value"]) < 0.03
    assert result["alone direct"]["value"] > 0.8
    assert result["refit"]["answers"] == 360 and result["refit"]["runs"] == 3


def test_a_run_is_scored_by_a_model_fitted_on_the_others_only() -> None:
    shipped = Thresholds.load(model="qwen2.5-1.5b")
    rows, _ = _rows(random.Random(6))
    columns = {
        name: np.asarray([getattr(h, name) for h in rows], dtype=float) for name in weighed(shipped)
    }
    runs = np.asarray([h.run for h in rows])
    right = np.asarray([h.correct for h in rows], dtype=float)
    before = left_out_predictions(columns, weighed(shipped), right, runs)
    flipped = np.where(runs == "run0", 1 - right, right)  # run0's own labels change
    after = left_out_predictions(columns, weighed(shipped), flipped, runs)
    assert np.allclose(before[runs == "run0"], after[runs == "run0"])
    assert not np.allclose(before[runs != "run0"], after[runs != "run0"])


def test_candidates_from_one_run_only_are_refused() -> None:
    shipped = Thresholds.load(model="qwen2.5-1.5b")
    rows, features = _rows(random.Random(7))
    one = {key: value for key, value in features.items() if key[0] == "run1"}
    with pytest.raises(ValueError, match="fewer than two runs"):
        compare(shipped, rows, one, resamples=10)
