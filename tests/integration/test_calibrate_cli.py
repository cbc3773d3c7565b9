"""`verirag calibrate` end to end with a real generator on the committed public-data samples:
measure, fit and write a calibration with its exclusion list, then add a second set of given
answers (HaluEval summaries) and more HaluEval QA pairs to the saved signals in one run and
refit, and ask the own answers again. The
smallest bundled generator keeps CI time down; the figures worth quoting come from the shipped
calibrations' runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import MODEL_CACHE, PUBLIC_SAMPLE
from verirag.pipeline.cli import app
from verirag.pipeline.evaluation.calibrate import CalibrationData

pytestmark = pytest.mark.integration

SMALL = "smollm2-135m"


def _calibrate(*args: str) -> str:
    result = CliRunner().invoke(app, ["calibrate", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_calibrate_measures_fits_and_adds_a_second_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VERIRAG_MODEL_CACHE", str(MODEL_CACHE))
    # SmolLM2 rambles to its cap, and every claim it writes is judged: this test checks what
    # the run measures, writes and excludes, not the answers (172 s -> 151 s in all).
    monkeypatch.setenv("VERIRAG_MAX_TOKENS", "48")
    common = ["--generator", SMALL, "--data", str(PUBLIC_SAMPLE), "--seed", "3"]
    first, signals = tmp_path / "first.json", tmp_path / "signals.json"
    shown = _calibrate(
        *common,
        *("--questions", "10", "--pairs", "10", "--distractors", "10", "--k", "2"),
        *(
            "--output",
            str(first),
            "--save-signals",
            str(signals),
            "--work-dir",
            str(tmp_path / "w"),
        ),
    )
    assert "out of fold:" in shown
    data = CalibrationData.load(signals)
    assert len(data.halueval) == 20 and data.confirm == []
    calibration = json.loads(first.read_text())
    assert calibration["model"] == SMALL and calibration["report"]["samples"]["summaries"] == 0
    excluded = json.loads((tmp_path / "first.exclude.json").read_text())
    assert set(excluded["halueval"]) == {h.item_id for h in data.halueval}

    # The same signals with 3 summarization pairs and 3 more HaluEval QA pairs, both scored by
    # the same generator in one run: only those are measured, none the signals sampled; the
    # fit chooses the given-answer signals on both sets, and every new id joins the exclusion
    # list.
    third, more = tmp_path / "third.json", tmp_path / "more.json"
    shown = _calibrate(
        *common,
        *("--from-signals", str(signals), "--summary-pairs", "3", "--more-pairs", "3"),
        *("--output", str(third), "--save-signals", str(more), "--work-dir", str(tmp_path / "m")),
    )
    data3 = CalibrationData.load(more)
    assert data3.own == data.own and data3.halueval[:20] == data.halueval
    assert len(data3.confirm) == 6 and "HaluEval summarization 3 pairs" in data3.described
    summaries = {h.item_id for h in data3.confirm}
    assert not summaries & {h.item_id for h in data.halueval}
    assert len(data3.halueval) == 26 and "plus HaluEval QA 3 pairs" in data3.described
    added = {h.item_id for h in data3.halueval[20:]}
    assert len(added) == 3 and not added & (summaries | {h.item_id for h in data.halueval})
    report = json.loads(third.read_text())["report"]
    assert report["samples"]["summaries"] == 6 and report["samples"]["halueval"] == 26
    assert "given_summaries" in report["signals"]["tried"]
    assert "second set" in shown
    excluded = set(json.loads((tmp_path / "third.exclude.json").read_text())["halueval"])
    assert summaries | added <= excluded

    # Own answers asked again by the pipeline as it is now, with two more pairs in the same
    # run: the generator is loaded once for both; the own answers replace the saved ones, no
    # question drawn before is drawn again, and both samples' ids stay excluded.
    import verirag.generators as generators

    loads: list[str] = []
    make = generators.make_generator

    def counted(name: str, *args: object, **kwargs: object) -> object:
        loads.append(name)
        return make(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(generators, "make_generator", counted)
    fourth, again = tmp_path / "fourth.json", tmp_path / "again.json"
    _calibrate(
        *common,
        *("--from-signals", str(more), "--own-questions", "5", "--more-pairs", "2"),
        *("--distractors", "10", "-k", "2"),
        *("--output", str(fourth), "--save-signals", str(again), "--work-dir", str(tmp_path / "o")),
    )
    assert loads == [SMALL]
    data4 = CalibrationData.load(again)
    assert data4.halueval[:26] == data3.halueval and len(data4.halueval) == 30
    assert data4.confirm == data3.confirm
    before, now = set(data3.excluded["squad"]), {a.item_id for a in data4.asked}
    assert len(now) == 5 and not now & before and len(data4.asked) == 10
    assert {o.item_id for o in data4.own} <= now
    assert set(data4.excluded["squad"]) == before | now
    assert "own answers replaced by 5 new SQuAD questions" in data4.described
    excluded4 = json.loads((tmp_path / "fourth.exclude.json").read_text())
    assert before | now <= set(excluded4["squad"])
    assert json.loads(fourth.read_text())["report"]["samples"]["asked"] == 10


@pytest.mark.parametrize("option", ["--more-pairs", "--own-questions"])
def test_changing_signals_needs_saved_signals(option: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["calibrate", option, "3", "--data", str(tmp_path)])
    assert result.exit_code != 0 and "--from-signals" in result.output
