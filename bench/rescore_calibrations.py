"""Calibrations compared on answers already measured, paired, without a model.

`verirag eval abstention` stores each answer's signals (items.jsonl). Every calibration
turns the same signals into a confidence, so candidates are compared on the same answers:
the own-answer AUROC and ECE of each (labelled as `suites.abstention.own_answers` labels
them), and each candidate's AUROC minus the baseline's with a paired bootstrap interval.
The runs' questions must be out of sample for every calibration compared (excluded by id:
`verirag eval` leaves out the ids of every shipped calibration when it draws them).

    python bench/rescore_calibrations.py --run eval-runs/s45 --run eval-runs/s47=v11.json \
        --candidate v11.json [--baseline evaluators/calibration/qwen2.5-1.5b.json]

A question two runs drew counts once, with the first run's answer. A question that one of
the calibrations compared now excludes (its exclusion file lists every id it sampled or held
out, e.g. a run it was recalibrated on) is left out, and the count printed.
`--run DIR[=CALIBRATION]`: the calibration the run was answered under (default: the
baseline), needed to read its stored claim support back to the raw score. An answer whose
run did not record a signal that a calibration weighs (the answer check is computed only
when the shipped one weighs it) is scored with that signal unknown, as the pipeline would
score it; the count of such answers is printed, and the runs where every weighed signal was
recorded are also compared alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.evaluators.decision import Thresholds
from verirag.pipeline.evaluation.calibrate import HeldOutAnswer
from verirag.pipeline.evaluation.calibration_fit import (
    exclusion_path,
    held_out_scores,
    measures_weighed,
)
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path
from verirag.pipeline.evaluation.held_out import own_answer_rows
from verirag.pipeline.evaluation.metrics import (
    auroc,
    calibration_consistency,
    expected_calibration_error,
)
from verirag.pipeline.evaluation.suites.shared import answer_log, bootstrap_intervals


def excluded_ids(calibration: Path) -> set[str]:
    """The SQuAD ids the calibration at `calibration` sampled or held out."""
    listed = exclusion_path(calibration)
    return set(json.loads(listed.read_text()).get("squad", ())) if listed.is_file() else set()


def unrecorded(item: HeldOutAnswer, t: Thresholds) -> bool:
    """The answer lacks a signal that `t`'s own-answer model weighs."""
    return not measures_weighed(t, item)


def runs_answers(
    specs: list[str], default: Thresholds, excluded: set[str], keep_excluded: bool = False
) -> tuple[dict[str, list[HeldOutAnswer]], int]:
    """Each run's own answers by run name, and how many were left out as `excluded`.

    `specs` are `RUN[=CALIBRATION]`, the calibration the run was answered under (default
    `default`). A question two runs drew counts once, with the first run's answer, as when
    pooling; a question in `excluded` is left out (and counted) unless `keep_excluded`."""
    by_run: dict[str, list[HeldOutAnswer]] = {}
    seen: set[str] = set()
    dropped = 0
    for spec in specs:
        run, _, answered = spec.partition("=")
        under = Thresholds.load(Path(answered)) if answered else default
        done = answer_log(Path(run)).done
        items = own_answer_rows(done, Path(run).name, under)
        dropped += sum(i.item_id in excluded for i in items)
        left_out = seen if keep_excluded else seen | excluded
        by_run[Path(run).name] = [i for i in items if i.item_id not in left_out]
        # Every question the run drew, answered or abstained, as `pool_eval_runs` counts it.
        seen.update(done)
    return by_run, 0 if keep_excluded else dropped


def compare(title: str, items: list[HeldOutAnswer], calibrations: dict[str, Thresholds]) -> None:
    names = list(calibrations)
    base = names[0]
    scores = {n: held_out_scores(t, items) for n, t in calibrations.items()}
    right = [i.correct for i in items]
    print(f"\n## {title}: {len(items)} own answers, {sum(right)} right")
    if all(right) or not any(right):
        print("one class only: nothing to compare")
        return

    def brier(n: str, rows: list[int]) -> float:
        return sum((scores[n][r] - right[r]) ** 2 for r in rows) / len(rows)

    def stats(rows: list[int]) -> dict[str, float]:
        y = [right[r] for r in rows]
        out = {}
        for n in names:
            out[n] = auroc([scores[n][r] for r in rows], y)
            # Mean confidence minus share right: over-confidence, one number, no bins.
            out[f"{n} gap"] = sum(scores[n][r] - right[r] for r in rows) / len(rows)
            if n != base:
                out[f"{n}-{base}"] = out[n] - out[base]
                out[f"{n}-{base} brier"] = brier(n, rows) - brier(base, rows)
        return out

    ci = bootstrap_intervals(len(items), stats)
    print(
        "| calibration | AUROC [95% CI] | ECE (calibrated on as many: mean, p) "
        "| mean confidence | at or above the answer cut | answers missing a weighed signal |"
    )
    print("|---|---|---|---|---|---|")
    for n, t in calibrations.items():
        value, iv = auroc(scores[n], right), ci.get(n)
        shown = f"{value:.3f} [{iv.low:.3f}, {iv.high:.3f}]" if iv else f"{value:.3f}"
        ece = expected_calibration_error(scores[n], right, 10)
        ref = calibration_consistency(scores[n], right, 10, draws=2000)
        mean = sum(scores[n]) / len(items)
        above = sum(v >= t.answer_min for v in scores[n])
        missing = sum(unrecorded(i, t) for i in items)
        print(
            f"| {n} | {shown} | {ece:.3f} ({ref.expected:.3f}, p {ref.p_value:.2f}) "
            f"| {mean:.3f} | {above} | {missing} |"
        )
    print(f"share right: {sum(right) / len(right):.3f}")
    every = list(range(len(items)))
    for n in names:
        iv, gap = ci[f"{n} gap"], stats(every)[f"{n} gap"]
        print(
            f"{n}: mean confidence - share right {gap:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}]; "
            f"Brier {brier(n, every):.4f}"
        )
    for n in names[1:]:
        key = f"{n}-{base}"
        iv = ci.get(key)
        diff = auroc(scores[n], right) - auroc(scores[base], right)
        band = f" [{iv.low:+.3f}, {iv.high:+.3f}]" if iv else ""
        print(f"AUROC {n} - {base}: {diff:+.3f}{band} (paired bootstrap)")
        iv = ci[f"{n}-{base} brier"]
        print(
            f"Brier {n} - {base}: {brier(n, every) - brier(base, every):+.4f} "
            f"[{iv.low:+.4f}, {iv.high:+.4f}] (paired bootstrap; lower is better)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, help="DIR[=CALIBRATION]")
    parser.add_argument("--candidate", action="append", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, help="default: the packaged calibration")
    parser.add_argument("--generator", default="qwen2.5-1.5b")
    args = parser.parse_args()

    baseline = (
        Thresholds.load(args.baseline) if args.baseline else Thresholds.load(model=args.generator)
    )
    calibrations = {f"baseline (version {baseline.version})": baseline}
    excluded = excluded_ids(args.baseline or packaged_calibration_path(args.generator))
    for path in args.candidate:
        t = Thresholds.load(path)
        calibrations[f"{path.stem} (version {t.version})"] = t
        excluded |= excluded_ids(path)
    by_run, dropped = runs_answers(args.run, baseline, excluded)
    if dropped:
        print(f"{dropped} own answers left out: a compared calibration excludes their questions")
    everything = [i for items in by_run.values() for i in items]
    compare("all runs pooled", everything, calibrations)
    complete = [
        name
        for name, items in by_run.items()
        if not any(unrecorded(i, t) for i in items for t in calibrations.values())
    ]
    if complete and len(complete) < len(by_run):
        compare(
            "runs that recorded every weighed signal (" + ", ".join(complete) + ")",
            [i for name in complete for i in by_run[name]],
            calibrations,
        )


if __name__ == "__main__":
    main()
