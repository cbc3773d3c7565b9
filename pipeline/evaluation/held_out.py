"""Own answers of `verirag eval` runs, read back as held-out rows for `verirag calibrate`.

A calibration's own answers were given by the pipeline as it was when they were collected;
its out-of-fold probabilities hold for those. An evaluation run of today's pipeline on
questions the calibration never sampled stores every answer's signals (items.jsonl), so its
answers can recalibrate the answer model's intercept without a model
(`calibration_fit.recalibrate`), and are excluded by id from every later sample.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from verirag.evaluators.decision import Thresholds, calibration_name
from verirag.pipeline.evaluation.calibrate import HeldOutAnswer
from verirag.pipeline.evaluation.suites.abstention import own_records
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, answer_log

SUITES = ("abstention", "qa")  # the suites whose answers are the generator's own, labelled


def held_out_answers(run: Path, generator: str, answered_with: Thresholds) -> list[HeldOutAnswer]:
    """The own answers of the evaluation run in directory `run` (labelled as
    `suites.abstention.own_records` labels them), with each weakest claim's score read back
    to its raw value through the claim model of `answered_with`, the calibration the run was
    answered under. Raises ValueError for a directory that is not such a run of `generator`."""
    config_path = run / "config.json"
    if not config_path.is_file() or not (run / "items.jsonl").is_file():
        raise ValueError(f"{run}: not a verirag eval run (no config.json and items.jsonl)")
    config = json.loads(config_path.read_text())
    if config.get("suite") not in SUITES:
        raise ValueError(
            f"{run}: a '{config.get('suite')}' run; held-out answers come from "
            + " or ".join(SUITES)
            + " runs"
        )
    if calibration_name(str(config.get("generator", ""))) != calibration_name(generator):
        raise ValueError(
            f"{run}: answered by '{config.get('generator')}', not by '{generator}': another "
            "generator's answers say nothing of this one's probabilities"
        )
    rows = own_answer_rows(answer_log(run).done, run.name, answered_with)
    if not rows:
        raise ValueError(f"{run}: no own answers to hold out (every question abstained?)")
    return rows


def own_answer_rows(
    done: Mapping[str, AnswerRecord], run: str, answered_with: Thresholds
) -> list[HeldOutAnswer]:
    """The own answers among a run's answers `done` (item id -> record; labelled as
    `suites.abstention.own_records` labels them), each weakest claim's stored score read back
    to its raw value through the claim model of `answered_with`, the calibration the run was
    answered under, so that any calibration can score them again (`held_out_score`)."""
    claim = answered_with.claim_model
    rows = []
    for item_id, record in done.items():
        if not own_records([record]):  # abstained, or cannot be labelled
            continue
        s = record.signals
        support, logprob = s.get("support"), s.get("logprob")
        if logprob is None:  # a backend without logprobs: not scored by the own-answer model
            continue
        rows.append(
            HeldOutAnswer(
                item_id=item_id,
                run=run,
                correct=record.answerable and record.contains,
                support=claim.raw(support) if support is not None and claim else support,
                lift=s.get("lift"),
                logprob=logprob,
                check=s.get("check"),
                alignment=s.get("alignment"),
                anchor=s.get("anchor"),
                retrieval=s.get("retrieval"),
                rests=s.get("rests"),
            )
        )
    return rows
