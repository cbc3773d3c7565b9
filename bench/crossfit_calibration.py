"""Is a recalibration worth shipping? The held-out shift or refit, cross-fitted run by run.

`verirag calibrate --recalibrate-with RUN ...` moves the own-answer model's intercept so that
the runs' answers' mean confidence is their share right; `--refit-with RUN ...` fits every
weight again on them. Measured on the answers they were fitted on, both are in-sample. This
script measures the procedure out of sample without a model, leaving one run out at a time
(each run has its own index of distractors and the pipeline of its day, and the share right
moves between runs more than between random folds, so a run is the unit to hold out): each run is
scored by the calibration that the procedure makes from the *other* runs, and the pooled
left-out confidences are reported (AUROC, ECE beside its reference under perfect
calibration, mean confidence minus share right, Brier, answers at or above the cut and the
share right among them; 95% bootstrap intervals). On the runs the input calibration never
fitted on, they are compared with it, paired. A procedure whose left-out figures are no
better than the input's is not worth shipping.

    python bench/crossfit_calibration.py --procedure shift \
        eval-runs/v12-15b-s64 eval-runs/v12-15b-s65 eval-runs/v12-15b-s66
    python bench/crossfit_calibration.py --procedure refit eval-runs/v11-15b-s58=v11.json \
        ... eval-runs/v12-15b-s64 ...

`RUN[=CALIBRATION]`: the calibration the run was answered under (default `--calibration`),
whose claim model reads the stored claim scores back. A question two runs drew counts once
(the first run's answer). Answers lacking a signal the input calibration weighs are left out
(counted). With `shift`, questions the input excludes by id are left out; with `refit` they
are kept (a refit's own answers are the excluded ones) and the comparison with the input
uses only the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rescore_calibrations import excluded_ids, runs_answers
from verirag.core.settings import Settings
from verirag.evaluators.decision import Thresholds
from verirag.pipeline.evaluation.calibrate import HeldOutAnswer
from verirag.pipeline.evaluation.calibration_fit import (
    held_out_scores,
    measures_weighed,
    recalibrate,
    refit_own,
)
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path
from verirag.pipeline.evaluation.metrics import (
    auroc,
    calibration_consistency,
    expected_calibration_error,
)
from verirag.pipeline.evaluation.suites.shared import bootstrap_intervals


def runs_rows(
    specs: list[str], t: Thresholds, excluded: set[str], keep_excluded: bool
) -> dict[str, list[HeldOutAnswer]]:
    """Each run's own answers that record every signal `t` weighs, deduplicated by question."""
    read, left_out = runs_answers(specs, t, excluded, keep_excluded)
    by_run = {name: [r for r in rows if measures_weighed(t, r)] for name, rows in read.items()}
    unrecorded = sum(len(rows) - len(by_run[name]) for name, rows in read.items())
    if left_out:
        print(f"{left_out} own answers left out: the calibration excludes their questions")
    if unrecorded:
        print(f"{unrecorded} own answers left out: they lack a signal the calibration weighs")
    return by_run


def cross_fitted(
    by_run: dict[str, list[HeldOutAnswer]], t: Thresholds, procedure: str
) -> tuple[list[HeldOutAnswer], list[float], list[bool]]:
    """The pooled answers, each run's confidences under the calibration the procedure made
    from the other runs, and whether each reached that calibration's answer cut."""
    items: list[HeldOutAnswer] = []
    scores: list[float] = []
    above: list[bool] = []
    # The cut for the precision `verirag calibrate` aims at (setting `target_precision`).
    target = Settings().target_precision
    for name, rows in by_run.items():
        others = [r for other, rs in by_run.items() if other != name for r in rs]
        if procedure == "shift":
            made, report = recalibrate(t, others)
            how = f"shift {report['shift']:+.3f}"
        else:
            made, report = refit_own(t, others, target_precision=target)
            how = f"signals {'+'.join(report['signals'])}, cut {made.answer_min:.3f}"
        print(
            f"left out {name} ({len(rows)} answers, {sum(r.correct for r in rows)} right): "
            f"{how}, from {report['answers']} answers of {', '.join(report['runs'])}"
        )
        got = held_out_scores(made, rows)
        items += rows
        scores += got
        above += [s >= made.answer_min for s in got]
    return items, scores, above


def summary(
    title: str, scores: dict[str, list[float]], above: dict[str, list[bool]], right: list[bool]
) -> None:
    """The figures of each calibration's confidences `scores` on the same answers; the first
    is the baseline of the paired differences."""
    names = list(scores)

    def figures(rows: list[int]) -> dict[str, float]:
        y = [right[r] for r in rows]
        out: dict[str, float] = {}
        for n in names:
            s = [scores[n][r] for r in rows]
            out[f"{n} auroc"] = auroc(s, y)
            out[f"{n} ece"] = expected_calibration_error(s, y, 10)
            out[f"{n} gap"] = sum(s) / len(s) - sum(y) / len(y)
            out[f"{n} brier"] = sum((p - c) ** 2 for p, c in zip(s, y, strict=True)) / len(s)
            picked = [right[r] for r in rows if above[n][r]]
            out[f"{n} precision"] = sum(picked) / len(picked) if picked else float("nan")
        for n in names[1:]:
            for key in ("auroc", "brier"):
                out[f"{n} - {names[0]} {key}"] = out[f"{n} {key}"] - out[f"{names[0]} {key}"]
        return out

    every = list(range(len(right)))
    point, ci = figures(every), bootstrap_intervals(len(right), figures)

    def shown(key: str, sign: str = "") -> str:
        iv = ci.get(key)
        band = f" [{iv.low:{sign}.3f}, {iv.high:{sign}.3f}]" if iv else ""
        return f"{point[key]:{sign}.3f}{band}"

    print(f"\n## {title}: {len(right)} own answers, {sum(right)} right")
    print(
        "| confidence | AUROC | ECE (calibrated on as many: mean, p) | mean - share right "
        "| Brier | at or above the cut: answers, right |"
    )
    print("|---|---|---|---|---|---|")
    for n in names:
        ref = calibration_consistency(scores[n], right, 10, draws=2000)
        picked = [right[r] for r in every if above[n][r]]
        print(
            f"| {n} | {shown(f'{n} auroc')} | {shown(f'{n} ece')} ({ref.expected:.3f}, "
            f"p {ref.p_value:.2f}) | {shown(f'{n} gap', '+')} | {point[f'{n} brier']:.4f} "
            f"| {len(picked)}, {sum(picked)} ({shown(f'{n} precision')}) |"
        )
    for n in names[1:]:
        print(
            f"{n} - {names[0]}: AUROC {shown(f'{n} - {names[0]} auroc', '+')}, "
            f"Brier {shown(f'{n} - {names[0]} brier', '+')} (paired; Brier lower is better)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="RUN[=CALIBRATION], 2 or more")
    parser.add_argument("--procedure", choices=("shift", "refit"), default="shift")
    parser.add_argument("--calibration", type=Path, help="the input; default: the packaged one")
    parser.add_argument("--generator", default="qwen2.5-1.5b")
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("cross-fitting needs at least two runs")
    path = args.calibration or packaged_calibration_path(args.generator)
    t = Thresholds.load(path)
    excluded = excluded_ids(path)
    by_run = runs_rows(args.runs, t, excluded, keep_excluded=args.procedure == "refit")
    items, made, made_above = cross_fitted(by_run, t, args.procedure)
    right = [i.correct for i in items]
    shipped = held_out_scores(t, items)
    label = f"{args.procedure}, cross-fitted"
    base = f"version {t.version}"
    summary(f"{label}, every run left out in turn", {label: made}, {label: made_above}, right)
    fresh = [k for k, i in enumerate(items) if i.item_id not in excluded]
    if fresh:
        summary(
            f"beside {base} on the answers it never fitted on",
            {base: [shipped[k] for k in fresh], label: [made[k] for k in fresh]},
            {
                base: [shipped[k] >= t.answer_min for k in fresh],
                label: [made_above[k] for k in fresh],
            },
            [right[k] for k in fresh],
        )


if __name__ == "__main__":
    main()
