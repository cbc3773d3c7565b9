"""What the suites share: the run's settings and index, the answer record the answering suites
keep per question, the plots and tables they all draw, and confidence intervals.

Intervals are percentile bootstraps over the run's items with a fixed seed, so a summary rebuilt
from the same `items.jsonl` (a resumed run) has the same intervals.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from verirag.core.settings import Settings
from verirag.evaluators.decision import claim_floor
from verirag.pipeline.evaluation.datasets import EvalItem, write_jsonl
from verirag.pipeline.evaluation.engine import EvalConfig, EvalPlan, ItemLog, failed_list, run_items
from verirag.pipeline.evaluation.metrics import answer_contains, exact_match, token_f1
from verirag.pipeline.evaluation.runs import (
    CI_LEVEL,
    CI_RESAMPLES,
    Cell,
    FailedItem,
    Interval,
    Plot,
    Series,
    Table,
)

COLLECTION = "eval"
DECISIONS = ("answer", "review", "abstain")
_SEED = 0
# An interval from the few resamples a statistic is defined on would be biased towards them.
_MIN_DEFINED = 0.9
_BLOCK = 100  # resamples drawn at once: bounds memory on large runs


# --------------------------------------------------------------------------- set-up


def run_settings(config: EvalConfig, base: Settings) -> Settings:
    """The run's own data directory (index, review queue) under `out`; models from `base`."""
    return base.with_overrides(
        data_dir=config.out / "state",
        model_cache=base.models_dir,
        generator=config.generator,
        embedder=config.embedder,
        top_k=config.k,
        agreement_samples=config.agreement_samples,
    )


def stored_run_settings(run: Path, base: Settings | None = None) -> Settings:
    """The settings a stored run (`RUN/config.json`) was answered with, as `run_settings`
    made them: its own index under `RUN/state`, its generator, embedder and k; models from
    `base` (default: the environment's)."""
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    base = base or Settings()
    return base.with_overrides(
        data_dir=run / "state",
        model_cache=base.models_dir,
        generator=config["generator"],
        embedder=config["embedder"],
        top_k=config["k"],
    )


def build_index(plan: EvalPlan, settings: Settings) -> None:
    """Index the plan's corpus (incremental: a resumed run re-reads nothing unchanged)."""
    from verirag.pipeline.indexing import IndexingPipeline

    source = write_jsonl(plan.corpus, plan.config.out / "corpus" / "passages.jsonl")
    report = IndexingPipeline(settings).run([source], COLLECTION, prune=True)
    if report.failures:
        raise RuntimeError(f"indexing the evaluation corpus failed: {report.failures[0]}")


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class AnswerRecord:
    question: str
    answerable: bool
    gold: list[str]
    text: str
    decision: str
    confidence: float
    logprob_confidence: float
    exact_match: float
    f1: float
    contains: bool  # the answer contains a gold answer
    seconds: float
    claims: int
    flagged: int
    contexts: list[str] = field(default_factory=list)  # the sources the model was given
    short_answer: str = ""  # what EM and F1 score ("" in item logs written before it existed)
    short_extracted: bool = False  # taken from the answer's words: the model named none
    # What the model itself named (`Answer.named_short_answer`), so that a run answered under
    # one display rule can be shown under another, paired; None in logs written before it.
    short_named: str | None = None
    # The answer's signals, each alone (`answer_signals`); empty in logs written before them.
    signals: dict[str, float | None] = field(default_factory=dict)


def answer_record(item: EvalItem, answer: Any, seconds: float) -> AnswerRecord:
    # SQuAD EM and F1 score the short answer (as SQuAD scores a span); contains-gold reads
    # the whole cited answer. No claim is picked in hindsight by its F1.
    short: str = answer.short_answer
    return AnswerRecord(
        question=item.question,
        answerable=item.answerable,
        gold=list(item.answers),
        text=answer.text,
        decision=answer.decision,
        confidence=answer.confidence,
        logprob_confidence=answer.logprob_confidence,
        exact_match=exact_match(short, item.answers) if item.answers else 0.0,
        f1=token_f1(short, item.answers) if item.answers else 0.0,
        contains=answer_contains(answer.text, item.answers) if item.answers else False,
        seconds=seconds,
        claims=len(answer.claims),
        flagged=len(answer.flagged),
        contexts=[c.snippet for c in answer.citations],
        short_answer=short,
        short_extracted=answer.short_answer_extracted,
        short_named=answer.named_short_answer,
        signals=answer_signals(answer),
    )


def answer_signals(answer: Any) -> dict[str, float | None]:
    """What the decision's score is made of, each alone, so that a report can show how well
    each separates right from wrong answers with nothing fitted: the weakest claim's score,
    source lift, the logprob confidence, the answer check, question alignment, the short
    answer's anchor, the reranker's P(relevant) of the best source, the rests judge and sampling
    agreement
    (None: not measured)."""
    scores = [
        c.score if c.score is not None else claim_floor(bool(c.missing_terms))
        for c in answer.claims
    ]
    return {
        "support": min(scores) if scores else None,
        "lift": answer.source_lift,
        "logprob": answer.logprob_confidence if answer.claims else None,
        "check": answer.answer_check,
        "alignment": answer.question_alignment,
        "anchor": answer.answer_anchor,
        "retrieval": answer.retrieval_confidence,
        "rests": answer.rests_support,
        "agreement": answer.sample_agreement,
    }


def ask_items(
    plan: EvalPlan, settings: Settings, progress: bool, stage: str
) -> tuple[list[AnswerRecord], list[FailedItem]]:
    """Every planned question asked through `RagPipeline.ask`, resuming from `items.jsonl`."""
    from verirag.generators.params import generation_params
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    rag = RagPipeline(settings, measure_all=plan.config.all_signals)
    rag.warm_up()  # model loading is not part of any item's latency
    params = generation_params(settings, max_tokens=plan.config.max_tokens)

    def work(item: EvalItem) -> AnswerRecord:
        started = time.perf_counter()
        answer = rag.ask(item.question, COLLECTION, plan.config.k, params=params)
        return answer_record(item, answer, time.perf_counter() - started)

    log = answer_log(plan.config.out)
    for _ in run_items(plan.items, lambda i: i.item_id, work, log, stage=stage, progress=progress):
        pass
    rag.close()
    ids = [i.item_id for i in plan.items]
    return [log.done[i] for i in ids if i in log.done], failed_list(log, ids)


def answer_log(run: Path) -> ItemLog[AnswerRecord]:
    """The item log of the answers of the run in directory `run`, loaded (what it holds is
    what a resumed run does not ask again, and what a report over runs reads)."""
    log: ItemLog[AnswerRecord] = ItemLog(run / "items.jsonl", lambda raw: AnswerRecord(**raw))
    log.load()
    return log


def examples(records: Sequence[AnswerRecord], n: int = 15) -> Table:
    """The worst-looking items first: delivered but missing the gold answer."""
    ordered = sorted(records, key=lambda r: (not (r.decision == "answer" and not r.contains), r.f1))
    return Table(
        "Items to inspect (delivered without the gold answer first)",
        ["question", "answerable", "decision", "confidence", "gold", "answer"],
        [
            [
                r.question,
                "yes" if r.answerable else "no",
                r.decision,
                r.confidence,
                " | ".join(r.gold[:3]),
                r.text[:300],
            ]
            for r in ordered[:n]
        ],
    )


# --------------------------------------------------------------------------- plots


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency_plot(series: dict[str, list[float]]) -> Plot:
    return Plot(
        "hist",
        "Latency per question",
        "seconds",
        "questions",
        [Series(name, values) for name, values in series.items() if values],
    )


def decision_plot(mixes: dict[str, Counter[str]]) -> Plot:
    kinds = list(DECISIONS)
    return Plot(
        "bar",
        "Decision mix",
        "decision",
        "questions",
        [Series(name, kinds, [float(mix.get(d, 0)) for d in kinds]) for name, mix in mixes.items()],
    )


# --------------------------------------------------------------------------- intervals


def _resamples(n: int, count: int) -> Iterator[npt.NDArray[np.int64]]:
    """Blocks of bootstrap index rows (n draws with replacement each), the same for every call
    with the same n."""
    rng = np.random.default_rng(_SEED)
    for start in range(0, count, _BLOCK):
        yield rng.integers(0, n, size=(min(_BLOCK, count - start), n))


def _interval(replicates: Sequence[float] | npt.NDArray[np.float64]) -> Interval:
    tail = (1.0 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(np.asarray(replicates, dtype=float), [tail, 100 - tail])
    return Interval(float(low), float(high))


def mean_intervals(samples: Mapping[str, Sequence[float]]) -> dict[str, Interval]:
    """The interval of each sample's mean; a sample of fewer than two values gets none."""
    out: dict[str, Interval] = {}
    for key, values in samples.items():
        if len(values) < 2:
            continue
        data = np.asarray(values, dtype=float)
        blocks = _resamples(len(data), CI_RESAMPLES)
        means = np.concatenate([data[rows].mean(axis=1) for rows in blocks])
        out[key] = _interval(means)
    return out


def bootstrap_intervals(
    n: int,
    statistics: Callable[[list[int]], Mapping[str, float]],
    resamples: int = CI_RESAMPLES,
) -> dict[str, Interval]:
    """Intervals of statistics over n units: `statistics` maps a resample (unit indices) to
    metric values. A resample it is undefined on (ValueError, e.g. one class only) is skipped,
    and a metric defined on too few resamples gets no interval.

    Each resample calls `statistics` once: the cost is the metrics' cost times `resamples`
    (hence the counted threshold metrics in `metrics.py`); tests pass fewer resamples."""
    if n < 2:
        return {}
    replicates: dict[str, list[float]] = {}
    for block in _resamples(n, resamples):
        for rows in block.tolist():
            try:
                values = statistics(rows)
            except ValueError:
                continue
            for key, value in values.items():
                replicates.setdefault(key, []).append(value)
    return {
        key: _interval(values)
        for key, values in replicates.items()
        if len(values) >= _MIN_DEFINED * resamples
    }


def latency_intervals(prefix: str, seconds: Sequence[float]) -> dict[str, Interval]:
    """Intervals of the p50 and p95 latency, keyed as the suites name them."""
    return bootstrap_intervals(
        len(seconds),
        lambda rows: {
            f"{prefix}latency_p50": percentile([seconds[i] for i in rows], 0.5),
            f"{prefix}latency_p95": percentile([seconds[i] for i in rows], 0.95),
        },
    )


# --------------------------------------------------------------------------- calibration


def reliability_table(title: str, probs: Sequence[float], right: Sequence[bool]) -> Table:
    """The reliability diagram as numbers: each confidence bin's count, mean confidence and
    share right, so a reader sees how many answers each point rests on; ECE in the title."""
    from verirag.pipeline.evaluation.metrics import calibration_consistency, reliability_bins

    bins = reliability_bins(probs, right, 10)
    if probs:
        c = calibration_consistency(probs, right, 10)
        # Beside the ECE, what a perfectly calibrated confidence shows on as few answers.
        ece = (
            f"ECE {c.observed:.3f}; perfectly calibrated: {c.expected:.3f}, 95th percentile "
            f"{c.upper:.3f}, p = {c.p_value:.2f}"
        )
    else:
        ece = "ECE n/a"
    rows: list[list[Cell]] = [
        [f"{i / 10:.1f}-{(i + 1) / 10:.1f}", b.count, b.mean_confidence, b.accuracy]
        for i, b in enumerate(bins)
        if b.count
    ]
    return Table(
        f"{title} ({ece}; {len(probs)} answers, 10 equal-width bins)",
        ["confidence bin", "answers", "mean confidence", "share right"],
        rows,
    )
