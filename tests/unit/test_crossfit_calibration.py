"""bench/crossfit_calibration.py scores each run by what the procedure made from the others."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.crossfit_calibration import cross_fitted, runs_rows
from tests.records import over_confident_signals, stored_answer
from verirag.evaluators.decision import Thresholds
from verirag.pipeline.evaluation.calibration_fit import held_out_scores


def _runs(tmp_path: Path, n_runs: int, per_run: int, right_share: float) -> list[str]:
    """Runs of confident answers right only `right_share` of the time: every calibration is
    over-confident on them, by about as much in each run."""
    rng = random.Random(3)
    specs = []
    for k in range(n_runs):
        run = tmp_path / f"run{k}"
        run.mkdir(parents=True)
        lines = []
        for i in range(per_run):
            signals = over_confident_signals(rng)
            right = rng.random() < right_share
            record = stored_answer(answerable=True, contains=right, text="x [1]")
            body = {**record.__dict__, "signals": signals}
            lines.append(json.dumps({"id": f"r{k}q{i}", "ok": True, "record": body}) + "\n")
        # A question an earlier run drew counts once, with the earlier run's answer.
        if k:
            lines.append(json.dumps({"id": "r0q0", "ok": True, "record": body}) + "\n")
        (run / "items.jsonl").write_text("".join(lines))
        specs.append(str(run))
    return specs


def test_a_shift_fitted_on_the_other_runs_corrects_a_drift_they_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = Thresholds.load(model="qwen2.5-1.5b")
    by_run = runs_rows(_runs(tmp_path, 3, 60, 0.5), shipped, set(), keep_excluded=False)
    assert [len(rows) for rows in by_run.values()] == [60, 60, 60]  # r0q0 counted once
    items, made, above = cross_fitted(by_run, shipped, "shift")
    right = [i.correct for i in items]
    before = held_out_scores(shipped, items)
    gap_before = sum(before) / len(items) - sum(right) / len(items)
    gap_after = sum(made) / len(items) - sum(right) / len(items)
    assert gap_before > 0.2  # the shipped model trusts confident-looking answers
    assert abs(gap_after) < 0.1
    out = capsys.readouterr().out
    # Each run left out was scored by a shift fitted on the two others only.
    assert "left out run0 (60 answers" in out and "of run1, run2" in out
    assert "left out run2 (60 answers" in out and "of run0, run1" in out
    assert len(above) == len(items)


def test_the_refit_never_fits_on_the_run_it_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = Thresholds.load(model="qwen2.5-1.5b")
    by_run = runs_rows(_runs(tmp_path, 3, 110, 0.4), shipped, set(), keep_excluded=False)
    items, made, _ = cross_fitted(by_run, shipped, "refit")
    assert len(made) == len(items) == 330
    out = capsys.readouterr().out
    assert "from 220 answers of run1, run2" in out
    assert "from 220 answers of run0, run1" in out
    # Excluded questions are left out of a shift's sample and kept for a refit's.
    kept = runs_rows(_runs(tmp_path / "x", 2, 5, 0.5), shipped, {"r0q1"}, keep_excluded=True)
    dropped = runs_rows(_runs(tmp_path / "y", 2, 5, 0.5), shipped, {"r0q1"}, keep_excluded=False)
    assert len(kept["run0"]) == 5 and len(dropped["run0"]) == 4
