"""Does the rests judge add to the shipped own-answer model on fresh evaluation runs?

`bench/quote_grounding.py` measured the rests judge on the calibration's own answers, which
lack the reranker's P(relevant) that the shipped model weighs most. Here it is read from
evaluation runs made with `--all-signals` (every signal measured, the rests judge included,
none of it changing a decision), so it competes with every signal the pipeline has:

- `shipped`: the shipped calibration's confidence, never fitted on these runs;
- `refit`: the shipped model's signals fitted again with one run left out at a time;
- `+rests`: the same with the rests judge added; `rests for support`: in the whole-context
  judge's place. Paired bootstrap intervals over the pooled left-out predictions
  (`bench/direct_signal.py`'s `compare`).

    python bench/rests_gain.py eval-runs/v12-15b-s90 eval-runs/v12-15b-s91

Needs no model. A run that did not measure it (none of its answers has it) is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.direct_signal import compare, print_figures, weighed
from bench.rescore_calibrations import excluded_ids, runs_answers
from verirag.evaluators.decision import Thresholds
from verirag.pipeline.evaluation.calibration_fit import unmeasured_signals
from verirag.pipeline.evaluation.calibration_models import MIN_GAIN
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("runs", nargs="+", help="RUN[=CALIBRATION it was answered under]")
    parser.add_argument("--generator", default="qwen2.5-1.5b")
    parser.add_argument("--calibration", type=Path, default=None)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    path = args.calibration or packaged_calibration_path(args.generator)
    t = Thresholds.load(path)
    by_run, dropped = runs_answers(args.runs, t, excluded_ids(path))
    rows = [h for items in by_run.values() for h in items]
    if "rests" in unmeasured_signals(rows):
        raise SystemExit("a run did not measure the rests judge: make it with --all-signals")
    features = {(h.run, h.item_id): {"rests": h.rests} for h in rows}
    result = compare(t, rows, features, args.resamples, ("rests",), {"rests": "support"})
    first = next(iter(result.values()))
    undecided = sum(h.rests is None for h in rows)
    print(
        f"{first['answers']} own answers ({first['right']} right) of {first['runs']} runs, "
        f"{dropped} excluded by {path.name}, {undecided} with the rests judge undecided "
        f"(read as 0.5); refit over {', '.join(weighed(t))}, one run left out at a time"
    )
    print_figures(result)
    print(f"a candidate earns its place at a gain of at least {MIN_GAIN} (MIN_GAIN)")


if __name__ == "__main__":
    main()
