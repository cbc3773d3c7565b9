"""bench/rescore_calibrations.py reads stored answers back to what a calibration scores."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from bench.rescore_calibrations import unrecorded
from tests.records import stored_answer
from verirag.evaluators.decision import Thresholds, answer_score
from verirag.pipeline.evaluation.calibration_fit import held_out_score
from verirag.pipeline.evaluation.held_out import own_answer_rows
from verirag.pipeline.evaluation.suites.shared import answer_log


def _record(
    t: Thresholds, raw: float, answerable: bool, contains: bool, anchor: float
) -> dict[str, Any]:
    """An answer as `verirag eval` stores it, scored by `t` from a weakest claim of `raw`."""
    assert t.claim_model is not None
    support = t.claim_model.probability(raw)
    s: dict[str, float | None] = {
        "support": support,
        "lift": 0.02,
        "logprob": 0.7,
        "check": None,  # not recorded: the shipped model does not weigh it
        "alignment": 0.5,
        "anchor": anchor,
        "retrieval": 0.75,
    }
    confidence = answer_score(
        t, support, 0.02, 0.7, check=None, alignment=0.5, anchor=anchor, retrieval=0.75
    )
    record = stored_answer(
        answerable=answerable,
        contains=contains,
        text="x [1]",
        confidence=confidence,
        logprob_confidence=0.7,
    )
    return {**asdict(record), "signals": s}


def test_stored_answers_score_again_as_the_pipeline_scored_them(tmp_path: Path) -> None:
    shipped = Thresholds.load(model="qwen2.5-1.5b")
    rows = [
        ("a", _record(shipped, 0.8, True, True, 1.0)),
        ("b", _record(shipped, 0.1, True, False, 0.0)),
        ("c", _record(shipped, 0.5, False, True, 0.5)),  # left out: memory or sibling
        ("d", {**_record(shipped, 0.5, False, False, 0.2), "decision": "abstain"}),
    ]
    run = tmp_path / "run"
    run.mkdir()
    (run / "items.jsonl").write_text(
        "".join(json.dumps({"id": i, "ok": True, "record": r}) + "\n" for i, r in rows)
    )
    items = own_answer_rows(answer_log(run).done, run.name, shipped)
    assert [i.item_id for i in items] == ["a", "b"]
    assert [i.correct for i in items] == [True, False]
    for item, (_, record) in zip(items, rows, strict=False):
        assert held_out_score(shipped, item) == pytest.approx(record["confidence"], abs=1e-9)
    # A calibration weighing the answer check sees it missing where it was not recorded.
    assert shipped.own_model is not None
    weighs_check = replace(shipped, own_model=replace(shipped.own_model, check=2.0))
    assert unrecorded(items[0], weighs_check) and not unrecorded(items[0], shipped)


def test_pooled_runs_count_a_question_two_runs_drew_once(tmp_path: Path) -> None:

    from bench.pool_eval_runs import pooled

    def record(question: str, decision: str) -> dict[str, Any]:
        return asdict(
            stored_answer(
                question=question,
                contains=True,
                text="x",
                decision=decision,
                confidence=0.9,
                logprob_confidence=0.9,
                exact_match=1.0,
                f1=1.0,
            )
        )

    for name, rows in (("a", [("q1", "answer"), ("q2", "review")]), ("b", [("q2", "answer")])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "items.jsonl").write_text(
            "".join(
                json.dumps({"id": q, "ok": True, "record": record(q, d)}) + "\n" for q, d in rows
            )
            + json.dumps({"id": "q3", "ok": False, "stage": "generate", "error": "boom"})
            + "\n"
        )
    records = pooled([tmp_path / "a", tmp_path / "b"])
    assert [(r.question, r.decision) for r in records] == [("q1", "answer"), ("q2", "review")]
    # A question a calibration has since excluded (fitted or recalibrated on) is left out.
    kept = pooled([tmp_path / "a", tmp_path / "b"], frozenset({"q1"}))
    assert [(r.question, r.decision) for r in kept] == [("q2", "review")]


def test_questions_a_compared_calibration_excludes_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run a candidate was recalibrated on is in its exclusion file: comparing on it would
    score the candidate on answers it was fitted to."""
    from bench import rescore_calibrations

    shipped = Thresholds.load(model="qwen2.5-1.5b")
    rows = [
        (f"q{i}", _record(shipped, 0.2 + 0.05 * i, True, i % 2 == 0, 0.1 * i)) for i in range(8)
    ]
    run = tmp_path / "run"
    run.mkdir()
    (run / "items.jsonl").write_text(
        "".join(json.dumps({"id": i, "ok": True, "record": r}) + "\n" for i, r in rows)
    )
    candidate = tmp_path / "cand.json"
    candidate.write_text(replace(shipped, report={"excluded": "cand.exclude.json"}).dump())
    (tmp_path / "cand.exclude.json").write_text(json.dumps({"squad": ["q0", "q3"]}))
    monkeypatch.setattr("sys.argv", ["rescore", "--run", str(run), "--candidate", str(candidate)])
    rescore_calibrations.main()
    out = capsys.readouterr().out
    assert "2 own answers left out" in out
    assert "6 own answers, 3 right" in out
    # The candidate is the baseline's copy: the paired Brier difference is exactly nothing.
    v = shipped.version
    assert f"Brier cand (version {v}) - baseline (version {v}): +0.0000" in out
    assert out.count("mean confidence - share right") == 2
