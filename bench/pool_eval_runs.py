"""Several `verirag eval abstention` runs pooled and summarised by the suites' own summaries.

A figure on 200 fresh questions moves by several hundredths between seeds; runs answered
under the same calibration pool into one sample (a question two runs drew counts once, the
first run's answer kept), with the abstention and, on the answerable questions, the QA
suite's figures and 95% bootstrap intervals.

    python bench/pool_eval_runs.py eval-runs/s45 eval-runs/s46 eval-runs/s48
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.pipeline.evaluation.engine import calibration_exclusions
from verirag.pipeline.evaluation.report import format_cell
from verirag.pipeline.evaluation.runs import SuiteResult
from verirag.pipeline.evaluation.suites import summarise_abstention
from verirag.pipeline.evaluation.suites.qa import summarise_qa
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, answer_log


def pooled_by_id(runs: list[Path]) -> dict[str, AnswerRecord]:
    """The runs' answers by question id, read as the suite reads its item log; a question two
    runs drew counts once, with the first run's answer."""
    records: dict[str, AnswerRecord] = {}
    for run in runs:
        for item_id, record in answer_log(run).done.items():
            records.setdefault(item_id, record)
    return records


def pooled(runs: list[Path], excluded: frozenset[str] = frozenset()) -> list[AnswerRecord]:
    """`pooled_by_id`'s answers without the questions in `excluded`: a calibration fitted or
    recalibrated on them since the run drew them (`verirag eval` leaves out the shipped
    calibrations' ids when it samples; a pooled figure does the same)."""
    return [r for item_id, r in pooled_by_id(runs).items() if item_id not in excluded]


def shipped_exclusions() -> frozenset[str]:
    """The question ids every shipped calibration sampled or held out."""
    return calibration_exclusions().squad


def show(result: SuiteResult, prefixes: tuple[str, ...]) -> None:
    for key, value in result.metrics.items():
        if key.startswith(prefixes):
            iv = result.intervals.get(key)
            band = f" [{iv.low:.3f}, {iv.high:.3f}]" if iv else ""
            print(f"{key:34s} {value:.3f}{band}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (items.jsonl)")
    args = parser.parse_args()
    drawn, excluded = pooled_by_id(args.runs), shipped_exclusions()
    records = [r for item_id, r in drawn.items() if item_id not in excluded]
    left_out = len(drawn) - len(records)
    answerable = [r for r in records if r.answerable]
    print(
        f"{len(records)} questions, {len(answerable)} answerable"
        + (f"; {left_out} left out: a shipped calibration excludes them" if left_out else "")
    )
    abstention = summarise_abstention(records, [])
    show(
        abstention,
        (
            "own/",
            "withheld/",
            "abstain/",
            "delivered/",
            "bound/",
            "answerable/",
            "unanswerable/",
            "lost/",
        ),
    )
    print(abstention.counts)
    qa = summarise_qa(answerable, [])
    show(qa, ("exact_match", "f1", "contains_gold", "delivered_accuracy", "share_"))
    delivered = [r for r in answerable if r.decision == "answer"]
    print(
        f"delivered on answerable: {len(delivered)} of {len(answerable)} "
        f"(coverage {len(delivered) / max(1, len(answerable)):.3f}), "
        f"{sum(r.contains for r in delivered)} contain a gold answer"
    )
    for table in abstention.tables:
        if table.title.startswith(("Reliability", "Where answerable", "The first source")):
            print(table.title)
            print("  " + " | ".join(table.columns))
            for row in table.rows:
                print("  " + " | ".join(format_cell(c) for c in row))


if __name__ == "__main__":
    main()
