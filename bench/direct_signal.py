"""Does the model's own certainty, asked again in a few words, add to the own-answer confidence?

Each own answer of a stored `verirag eval abstention` run is asked again, greedy, with the
prompt the short answer falls back on (`direct_answer.txt`: the same sources, "answer in a few
words"), and three candidate signals are read from that one reply:

- `direct`: the probability of the reply's first token, 0 where the reply declines: how sure
  the model is of *an* answer when nothing but the question is asked.
- `agrees`: 1 where the reply says what the answer's short answer says
  (`consistency.agrees`, as sampling consistency counts it; one greedy sample).
- `short_first`: the probability of the short answer's own first token in that place
  (teacher-forced): how much of the model's belief is on the answer it gave.

`measure` asks them (the run's own index and generator; resumable; about 8 s an answer with
the 1.5B on 2 cores, most of it the prefill of the sources, which the pipeline would have in
its KV cache). `compare` needs no model: leaving one run out at a time, the own-answer model
is fitted again (`fit_logistic`) on the other runs' answers over the signals the calibration
weighs, with and without each candidate, and the left-out predictions are pooled. It prints
the pooled AUROC of each and the gain, with a paired 95% bootstrap interval. A candidate is
worth asking for only where the gain clears the calibration's own MIN_GAIN, the rule by which
`verirag calibrate` lets a new signal into a generator's own-answer model.

    python bench/direct_signal.py measure eval-runs/v12-15b-s75 ... --out direct.jsonl
    python bench/direct_signal.py compare eval-runs/v12-15b-s75 ... --features direct.jsonl \
        [--calibration evaluators/calibration/qwen2.5-1.5b.json]

Runs are read as `bench/rescore_calibrations.py` reads them: a question two runs drew counts
once, and ids the calibration excludes are left out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rescore_calibrations import excluded_ids, runs_answers
from verirag.evaluators.decision import AnswerModel, Thresholds
from verirag.pipeline.evaluation.calibrate import HeldOutAnswer, fit_logistic
from verirag.pipeline.evaluation.calibration_fit import held_columns, held_out_scores
from verirag.pipeline.evaluation.calibration_models import MIN_GAIN
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path
from verirag.pipeline.evaluation.metrics import auroc
from verirag.pipeline.evaluation.suites.shared import bootstrap_intervals

if TYPE_CHECKING:
    from verirag.pipeline.evaluation.suites.shared import AnswerRecord
    from verirag.pipeline.rag import PreparedPrompt, RagPipeline

CANDIDATES = ("direct", "agrees", "short_first")
DIRECT_TOKENS = 24  # as the short answer's own calls


def own_answers_again(
    runs: Sequence[Path], out: Path
) -> Iterator[tuple[str, RagPipeline, str, AnswerRecord, PreparedPrompt]]:
    """Each run's own answers not yet in `out` (a resumed measure skips them): the run's name
    and own pipeline (its settings, index and generator), the item id, the stored answer, and
    its sources retrieved again. Exits where the index no longer gives the sources the answer
    was written from."""
    # The pipeline is imported only where a model is asked: `compare` runs without one.
    from verirag.pipeline.evaluation.suites.abstention import own_records
    from verirag.pipeline.evaluation.suites.shared import (
        COLLECTION,
        answer_log,
        stored_run_settings,
    )
    from verirag.pipeline.rag import RagPipeline

    done = {(r["run"], r["item_id"]) for r in read_jsonl(out)} if out.is_file() else set()
    for run in runs:
        settings = stored_run_settings(run)
        rag = RagPipeline(settings)
        for item_id, r in answer_log(run).done.items():
            if (run.name, item_id) in done or not own_records([r]):
                continue
            prepared = rag.prepare(r.question, COLLECTION, settings.top_k)
            if [c.snippet for c in prepared.citations] != r.contexts:
                raise SystemExit(f"{run.name} {item_id}: the index no longer gives its sources")
            yield run.name, rag, item_id, r, prepared
        print(f"{run.name}: measured", flush=True)


def measure(runs: Sequence[Path], out: Path) -> None:
    """Append each run's own answers' candidate signals to `out` (JSONL), skipping those there."""
    from verirag.evaluators.consistency import agrees
    from verirag.evaluators.decision import is_abstention
    from verirag.generators.params import GenerationParams
    from verirag.generators.short_answer import clean_short_answer

    params = GenerationParams(max_tokens=DIRECT_TOKENS, stop=("\n",))
    with out.open("a") as sink:
        for name, rag, item_id, r, prepared in own_answers_again(runs, out):
            gen = rag.generator()
            idk = rag.settings.idk_sentence
            prompt = gen.render(
                rag.prompts.direct_answer_messages(prepared.context_block, r.question, idk)
            )
            reply = gen.generate(prompt, params)
            declined = is_abstention(reply.text.strip(), idk)
            said = "" if declined else clean_short_answer(reply.text, r.question)
            short = r.short_named if r.short_named is not None else r.short_answer
            scored = gen.score(prompt, short) if short else []
            row = {
                "run": name,
                "item_id": item_id,
                "reply": reply.text,
                "direct": math.exp(reply.tokens[0].logprob) if said and reply.tokens else 0.0,
                "agrees": float(bool(short) and agrees(said, short, r.text)),
                "short_first": math.exp(scored[0].logprob) if scored else None,
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file (a measure's output), blank lines skipped."""
    return [json.loads(line) for line in path.open() if line.strip()]


def weighed(t: Thresholds) -> list[str]:
    """The signals `t`'s own-answer model weighs (a nonzero weight)."""
    model = t.own_model
    assert model is not None, "the calibration has no own-answer model"
    return [name for name in AnswerModel.SIGNALS if getattr(model, name) != 0.0]


def left_out_predictions(
    columns: Mapping[str, np.ndarray], names: Sequence[str], right: np.ndarray, runs: np.ndarray
) -> np.ndarray:
    """Each run's P(right) from a logistic model over `names` fitted on the other runs."""
    x = np.column_stack([columns[n] for n in names])
    out = np.zeros(len(right))
    for run in np.unique(runs):
        held = runs == run
        bias, w = fit_logistic(x[~held], right[~held])
        out[held] = 1 / (1 + np.exp(-(bias + x[held] @ w)))
    return out


def compare(
    t: Thresholds,
    rows: Sequence[HeldOutAnswer],
    features: Mapping[tuple[str, str], Mapping[str, float | None]],
    resamples: int = 2000,
    candidates: Sequence[str] = CANDIDATES,
    replacing: Mapping[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Pooled left-out AUROC of the refit without and with each candidate, and the gains;
    with `replacing` ({candidate: weighed signal}), also of the refit with the candidate in
    that signal's place (`for <candidate>`, gain against the refit).

    A candidate a row did not record (`short_first` where there was no short answer) reads
    as 0.5, as the calibration reads a signal it did not measure."""
    kept = [h for h in rows if (h.run, h.item_id) in features]
    if len({h.run for h in kept}) < 2:
        raise ValueError("candidates measured on fewer than two runs: nothing to leave out")
    right = np.asarray([h.correct for h in kept], dtype=float)
    runs = np.asarray([h.run for h in kept])
    columns = dict(held_columns(t, kept))
    for name in candidates:
        values = [features[(h.run, h.item_id)].get(name) for h in kept]
        columns[name] = np.asarray([0.5 if v is None else v for v in values], dtype=np.float64)
    base = weighed(t)
    predictions = {"refit": left_out_predictions(columns, base, right, runs)}
    for name in candidates:
        predictions[name] = left_out_predictions(columns, [*base, name], right, runs)
    swaps = dict(replacing or {})
    for name, signal in swaps.items():
        if signal not in base:
            raise ValueError(f"{name} cannot replace {signal}: the calibration does not weigh it")
        instead = [name if n == signal else n for n in base]
        predictions[f"for {name}"] = left_out_predictions(columns, instead, right, runs)
    labels = right.astype(bool).tolist()
    shipped = held_out_scores(t, kept)

    def statistics(picked: list[int]) -> dict[str, float]:
        y = [labels[i] for i in picked]
        refit = auroc([float(predictions["refit"][i]) for i in picked], y)
        out = {"shipped": auroc([shipped[i] for i in picked], y), "refit": refit}
        for name in candidates:
            with_it = auroc([float(predictions[name][i]) for i in picked], y)
            out[f"+{name}"] = with_it
            out[f"gain {name}"] = with_it - refit
            out[f"alone {name}"] = auroc([float(columns[name][i]) for i in picked], y)
        for name, signal in swaps.items():
            instead = auroc([float(predictions[f"for {name}"][i]) for i in picked], y)
            out[f"{name} for {signal}"] = instead
            out[f"gain {name} for {signal}"] = instead - refit
            out[f"alone {signal}"] = auroc([float(columns[signal][i]) for i in picked], y)
        return out

    everything = list(range(len(kept)))
    point = statistics(everything)
    intervals = bootstrap_intervals(len(kept), statistics, resamples)
    return {
        key: {
            "value": value,
            "low": intervals[key].low if key in intervals else math.nan,
            "high": intervals[key].high if key in intervals else math.nan,
            "answers": len(kept),
            "right": int(right.sum()),
            "runs": len(np.unique(runs)),
        }
        for key, value in point.items()
    }


def run_cli(
    doc: str,
    measure_fn: Callable[[Sequence[Path], Path], None],
    candidates: Sequence[str] = CANDIDATES,
    replacing: Mapping[str, str] | None = None,
) -> list[dict[str, Any]] | None:
    """A candidate bench's command line, shared with `bench/cited_judge.py`: `measure RUN ...
    --out F` runs `measure_fn` (the model), `compare RUN ... --features F` prints `compare`'s
    figures (no model) and returns the feature rows it read; None after `measure`."""
    prog = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure the candidates on each own answer (the model)")
    m.add_argument("runs", nargs="+", type=Path)
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare", help="leave-one-run-out refits with and without each candidate")
    c.add_argument("runs", nargs="+")
    c.add_argument("--features", type=Path, required=True, action="append")
    c.add_argument("--calibration", type=Path, default=None)
    c.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    for run in map(Path, args.runs):
        for name in ("config.json", "items.jsonl"):
            if not (run / name).is_file():
                raise SystemExit(f"{prog}: {run} is not a `verirag eval` run: no {name}")
    if args.command == "measure":
        measure_fn(args.runs, args.out)
        return None
    path = args.calibration
    if path is None:
        generator = json.loads((Path(args.runs[0]) / "config.json").read_text())["generator"]
        path = packaged_calibration_path(generator)
    t = Thresholds.load(path)
    by_run, dropped = runs_answers(args.runs, t, excluded_ids(path))
    read = [r for f in args.features for r in read_jsonl(f)]
    features = {(str(r["run"]), str(r["item_id"])): r for r in read}
    rows = [h for items in by_run.values() for h in items]
    try:
        result = compare(t, rows, features, args.resamples, candidates, replacing)
    except ValueError as exc:
        raise SystemExit(f"{prog}: {exc}") from exc
    first = next(iter(result.values()))
    print(
        f"{first['answers']} own answers ({first['right']} right) of {first['runs']} runs, "
        f"{len(rows) - first['answers']} without measured candidates, {dropped} excluded by "
        f"{path.name}; refit over {', '.join(weighed(t))}, one run left out at a time"
    )
    print_figures(result)
    print(f"a candidate earns its place at a gain of at least {MIN_GAIN} (MIN_GAIN)")
    return read


def print_figures(result: Mapping[str, Mapping[str, float]]) -> None:
    """`compare`'s figures, one a line with its 95% interval."""
    width = max(map(len, result))
    for key, v in result.items():
        print(f"  {key:{width}s} {v['value']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]")


def main() -> None:
    run_cli(__doc__ or "", measure)


if __name__ == "__main__":
    main()
