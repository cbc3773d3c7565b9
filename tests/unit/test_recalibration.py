"""Held-out recalibration: own answers of evaluation runs move the own-answer model's
intercept (and the answer cut with it), never a decision; `verirag calibrate
--recalibrate-with` reads them from run directories, excludes them, and saves them so that a
refit reproduces the calibration."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.records import over_confident_signals, stored_answer, write_eval_run
from verirag.evaluators.decision import AnswerModel, ClaimModel, Thresholds
from verirag.pipeline.cli import app
from verirag.pipeline.evaluation.calibrate import CalibrationData, HeldOutAnswer, with_held_out
from verirag.pipeline.evaluation.calibration_fit import (
    held_out_scores,
    measures_weighed,
    recalibrate,
)
from verirag.pipeline.evaluation.held_out import held_out_answers
from verirag.pipeline.evaluation.suites.shared import AnswerRecord

SHIPPED = Path(__file__).resolve().parents[2] / "evaluators" / "calibration"
GENERATOR = "qwen2.5-1.5b"


def _thresholds() -> Thresholds:
    return Thresholds(
        version="4",
        model=GENERATOR,
        answer_min=0.8,
        own_model=AnswerModel(bias=-3.0, support=2.0, lift=0.5, logprob=4.0, alignment=1.0),
        claim_model=ClaimModel(bias=-1.5, slope=7.0),
    )


def _held(n: int, right_rate: float, seed: int = 0) -> list[HeldOutAnswer]:
    """Answers whose confidence ranks them (higher logprob, more often right) but whose
    share right is `right_rate`, whatever the model says."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        logprob = rng.random()
        rows.append(
            HeldOutAnswer(
                item_id=f"q{i}",
                run="run-a",
                correct=rng.random() < right_rate * (0.5 + logprob),
                support=rng.uniform(0.1, 0.6),
                lift=rng.uniform(-0.1, 0.3),
                logprob=logprob,
                alignment=rng.random(),
            )
        )
    return rows


def test_the_shift_matches_the_share_right_and_changes_no_decision() -> None:
    t = _thresholds()
    held = _held(300, 0.3)
    before = held_out_scores(t, held)
    share = sum(h.correct for h in held) / len(held)
    assert sum(before) / len(before) > share + 0.1  # over-confident, as the test needs

    moved, report = recalibrate(t, held)
    after = held_out_scores(moved, held)
    assert report["shift"] < 0
    assert sum(after) / len(after) == pytest.approx(share, abs=1e-6)
    assert report["mean_confidence_after"] == pytest.approx(share, abs=1e-6)
    assert moved.own_model is not None and t.own_model is not None
    assert moved.own_model.bias == pytest.approx(t.own_model.bias + report["shift"])
    # Only the intercept moves: every weight stays as fitted.
    assert replace(moved.own_model, bias=0.0) == replace(t.own_model, bias=0.0)
    assert moved.answer_min < t.answer_min
    assert [a >= moved.answer_min for a in after] == [b >= t.answer_min for b in before]
    # A shift cannot reorder: the ranking, and so the AUROC, is the fit's.
    assert sorted(range(len(held)), key=after.__getitem__) == sorted(
        range(len(held)), key=before.__getitem__
    )
    assert report["in_sample_ece_after"] < report["in_sample_ece_before"]
    assert moved.report["recalibration"] == report
    # The given-answer side and the claim model are not touched.
    assert moved.given_model == t.given_model and moved.claim_model == t.claim_model


def test_an_under_confident_fit_is_moved_up() -> None:
    moved, report = recalibrate(_thresholds(), _held(300, 1.2, seed=1))
    assert report["shift"] > 0 and moved.answer_min > 0.8


@pytest.mark.parametrize(
    ("held", "message"),
    [
        (_held(10, 0.5), "at least 20"),
        ([replace(h, correct=True) for h in _held(50, 0.5)], "some right and some wrong"),
    ],
)
def test_too_few_or_one_class_held_out_answers_are_refused(
    held: list[HeldOutAnswer], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        recalibrate(_thresholds(), held)


def test_a_calibration_without_an_own_model_cannot_be_recalibrated() -> None:
    with pytest.raises(ValueError, match="no own-answer model"):
        recalibrate(Thresholds(), _held(50, 0.5))


def test_held_out_rows_are_excluded_and_adding_a_run_twice_changes_nothing() -> None:
    data = CalibrationData([], [], 0, "gen; 10 questions", excluded={"squad": ["old"]})
    rows = _held(30, 0.5)
    once = with_held_out(data, rows)
    twice = with_held_out(once, [replace(r, run="run-b") for r in rows])
    assert once.excluded["squad"] == sorted({"old", *(r.item_id for r in rows)})
    assert twice.held_out == once.held_out and twice.excluded == once.excluded
    assert once.described == "gen; 10 questions; held out: 30 own answers of run-a"
    assert twice.described == once.described


def _record(answerable: bool, contains: bool, decision: str, support: float | None) -> AnswerRecord:
    return stored_answer(
        answerable=answerable,
        contains=contains,
        decision=decision,
        text="an answer [1]",
        logprob_confidence=0.7,
        signals={
            "support": support,
            "lift": 0.1,
            "logprob": 0.7,
            "check": None,
            "alignment": 0.6,
            "anchor": 0.4,
        },
    )


def _write_run(root: Path, records: dict[str, AnswerRecord], suite: str = "abstention") -> Path:
    return write_eval_run(root, records, suite, GENERATOR)


def test_an_eval_runs_own_answers_are_read_and_labelled_as_the_suite_labels_them(
    tmp_path: Path,
) -> None:
    t = _thresholds()
    assert t.claim_model is not None
    run = _write_run(
        tmp_path / "run-s7",
        {
            "right": _record(True, True, "answer", 0.9),
            "wrong": _record(True, False, "review", 0.3),
            "unanswered-wrong": _record(False, False, "review", None),
            "abstained": _record(True, False, "abstain", 0.5),
            "no-paragraph-but-gold": _record(False, True, "review", 0.5),  # unlabellable
        },
    )
    rows = {r.item_id: r for r in held_out_answers(run, GENERATOR, t)}
    assert set(rows) == {"right", "wrong", "unanswered-wrong"}
    assert [rows[k].correct for k in ("right", "wrong", "unanswered-wrong")] == [1, 0, 0]
    assert rows["right"].run == "run-s7" and rows["unanswered-wrong"].support is None
    # The stored (calibrated) claim score is read back to its raw value.
    raw = rows["right"].support
    assert raw is not None and t.claim_model.probability(raw) == pytest.approx(0.9)
    assert rows["right"].alignment == 0.6 and rows["right"].logprob == 0.7


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "not a verirag eval run"),
        ("retrieval", "held-out answers come from abstention or qa runs"),
        ("other-generator", "answered by 'qwen2.5-0.5b'"),
        ("abstained-only", "no own answers to hold out"),
    ],
)
def test_a_run_that_cannot_be_held_out_is_refused_precisely(
    tmp_path: Path, setup: str, message: str
) -> None:
    run = tmp_path / "run"
    if setup == "retrieval":
        _write_run(run, {"a": _record(True, True, "answer", 0.9)}, suite="retrieval")
    elif setup == "other-generator":
        _write_run(run, {"a": _record(True, True, "answer", 0.9)})
        (run / "config.json").write_text(
            json.dumps({"suite": "abstention", "generator": "qwen2.5-0.5b"})
        )
    elif setup == "abstained-only":
        _write_run(run, {"a": _record(True, False, "abstain", 0.5)})
    with pytest.raises(ValueError, match=message):
        held_out_answers(run, GENERATOR, _thresholds())


def test_calibrate_recalibrates_on_a_run_excludes_it_and_a_refit_reproduces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    rng = random.Random(3)
    records = {}
    for i in range(60):
        answerable = i % 3 != 0
        # Over-confident on purpose: high logprobs, right barely half the time.
        records[f"held{i}"] = replace(
            _record(answerable, answerable and rng.random() < 0.55, "review", 0.95),
            signals=over_confident_signals(rng),
        )
    run = _write_run(tmp_path / "eval-s9", records)
    signals = SHIPPED / "signals" / f"{GENERATOR}.json"
    out, saved = tmp_path / "cal.json", tmp_path / "signals.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--from-signals", str(signals)),
            *("--recalibrate-with", str(run), "--output", str(out), "--save-signals", str(saved)),
        ],
    )
    assert result.exit_code == 0, result.output
    earlier = CalibrationData.load(signals).held_out  # what the shipped fit held out
    shipped_t = Thresholds.load(SHIPPED / f"{GENERATOR}.json")
    # Earlier rows that lack a signal the shipped model weighs stay saved but do not shift.
    held = 60 + sum(measures_weighed(shipped_t, h) for h in earlier)
    fitted = json.loads(out.read_text())
    shipped = json.loads((SHIPPED / f"{GENERATOR}.json").read_text())
    recal = fitted["report"]["recalibration"]
    assert f"recalibrated on {held} held-out own answers" in result.output
    assert recal["answers"] == held and "eval-s9" in recal["runs"] and recal["shift"] < 0
    shift_before = shipped["report"].get("recalibration", {}).get("shift", 0.0)
    assert fitted["own_model"]["bias"] < shipped["own_model"]["bias"] - shift_before
    excluded = json.loads((tmp_path / "cal.exclude.json").read_text())["squad"]
    assert set(records) <= set(excluded)
    assert len(CalibrationData.load(saved).held_out) == 60 + len(earlier)

    # The saved signals hold the held-out rows: a refit from them, with no run, is the same fit.
    again = tmp_path / "again.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--from-signals", str(saved)),
            *("--output", str(again)),
        ],
    )
    assert result.exit_code == 0, result.output
    refit = json.loads(again.read_text())
    assert refit["own_model"] == fitted["own_model"]
    assert refit["answer_min"] == fitted["answer_min"]
    assert refit["report"]["recalibration"] == recal


def test_calibrate_refuses_a_directory_that_is_no_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR),
            *("--from-signals", str(SHIPPED / "signals" / f"{GENERATOR}.json")),
            *("--recalibrate-with", str(tmp_path / "nowhere"), "--output", str(out)),
        ],
    )
    assert result.exit_code != 0
    assert "not a verirag eval run" in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize("fresh", [True, False], ids=["measure_signals", "measure_more"])
def test_held_out_questions_are_never_sampled_by_a_measurement_in_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: bool
) -> None:
    """A run held out and new own answers measured in one command: the sampler is told the
    held-out ids, so no question is both fitted on and held out."""
    from verirag.pipeline.evaluation import calibration_run

    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    data = tmp_path / "public"
    for path in calibration_run.public_data_files(data):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    records = {f"held{i}": _record(i % 2 == 0, i % 4 == 0, "review", 0.6) for i in range(24)}
    run = _write_run(tmp_path / "eval-s9", records)
    signals = SHIPPED / "signals" / f"{GENERATOR}.json"
    seen: list[calibration_run.RunOptions] = []

    def measured(*_: object, run: calibration_run.RunOptions, **__: object) -> CalibrationData:
        seen.append(run)
        raise RuntimeError("stopped after sampling was set up")  # no model in a unit test

    name = "measure_signals" if fresh else "measure_more"
    monkeypatch.setattr(calibration_run, name, measured)
    how = (
        ["--questions", "10"] if fresh else ["--from-signals", str(signals), "--own-questions", "2"]
    )
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--data", str(data), *how),
            *("--recalibrate-with", str(run), "--output", str(tmp_path / "cal.json")),
        ],
    )
    assert result.exit_code != 0 and len(seen) == 1
    assert seen[0].held_out == frozenset(records)
    avoid = tmp_path / "test-set.json"
    avoid.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {
                                "context": "c",
                                "qas": [
                                    {
                                        "id": "mine",
                                        "question": "q?",
                                        "answers": [{"text": "c", "answer_start": 0}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        )
    )
    both = calibration_run._avoided(replace(seen[0], avoid=(avoid,)))
    assert both["squad"] == frozenset({"mine", *records})
