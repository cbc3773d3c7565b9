"""Each shipped calibration is reproduced from its shipped signals, without a model: the
issue's promise that any fit can be redone from what is shipped. A refit reads the anchors as
saved unless told to read them again (`--read-anchors-again`), which is a different fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verirag.pipeline.cli import app

SHIPPED = Path(__file__).resolve().parents[2] / "evaluators" / "calibration"
GENERATORS = sorted(p.stem for p in (SHIPPED / "signals").glob("*.json"))
# Bumped by every fit, or said of the run rather than of the fit.
NOT_COMPARED = {"version", "stale", "report"}


def test_every_shipped_calibration_has_its_signals() -> None:
    fitted = sorted(p.stem for p in SHIPPED.glob("*.json") if not p.stem.endswith(".exclude"))
    assert fitted == GENERATORS


@pytest.mark.parametrize("generator", GENERATORS)
def test_a_refit_from_the_shipped_signals_reproduces_the_shipped_calibration(
    generator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    refit = tmp_path / f"{generator}.json"
    args = ["calibrate", "--generator", generator, "--output", str(refit)]
    signals = SHIPPED / "signals" / f"{generator}.json"
    result = CliRunner().invoke(app, [*args, "--from-signals", str(signals)])
    assert result.exit_code == 0, result.output
    shipped = json.loads((SHIPPED / f"{generator}.json").read_text())
    again = json.loads(refit.read_text())
    for key in shipped.keys() - NOT_COMPARED:
        assert again[key] == shipped[key], key
    assert again["report"]["out_of_fold"] == shipped["report"]["out_of_fold"]
    # A recalibration on held-out answers is redone from the rows the signals keep.
    assert again["report"].get("recalibration") == shipped["report"].get("recalibration")
    excluded = json.loads((SHIPPED / f"{generator}.exclude.json").read_text())
    assert json.loads((tmp_path / f"{generator}.exclude.json").read_text()) == excluded


def test_read_anchors_again_measures_them_from_the_stored_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verirag.evaluators.alignment import anchor_alignment
    from verirag.pipeline.evaluation.calibrate import CalibrationData

    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    generator = "qwen2.5-1.5b"
    signals = SHIPPED / "signals" / f"{generator}.json"
    saved = tmp_path / "read.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", generator, "--from-signals", str(signals)),
            *("--read-anchors-again", "--data", str(tmp_path / "no-public-files")),
            *("--output", str(tmp_path / "out.json"), "--save-signals", str(saved)),
        ],
    )
    assert result.exit_code == 0, result.output
    before = CalibrationData.load(signals).own
    read = CalibrationData.load(saved).own
    assert len(read) == len(before)
    for o in read:
        s = o.sources
        assert o.anchor == anchor_alignment(s.question, s.short, s.read)
    # Stored from the bodies alone, before the titles were read.
    assert sum(a.anchor != b.anchor for a, b in zip(read, before, strict=True)) > 0
