"""Hallucination: HaluEval's right and hallucinated answer to each question, scored by the
shared `Verifier` (through `SignalScorer`); how well each signal tells them apart, and how it
does at the cut the shipped decision rule uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets import HaluItem
from verirag.pipeline.evaluation.engine import EvalPlan, ItemLog, failed_list, run_items
from verirag.pipeline.evaluation.metrics import (
    aurc,
    auroc,
    average_precision,
    balanced_accuracy,
    best_f1,
    binary_prf,
    expected_calibration_error,
    pr_curve,
    reliability_bins,
    risk_coverage,
    roc_curve,
)
from verirag.pipeline.evaluation.runs import (
    CI_RESAMPLES,
    FailedItem,
    Interval,
    Plot,
    Series,
    SuiteResult,
    Table,
)
from verirag.pipeline.evaluation.suites.shared import bootstrap_intervals, reliability_table

# Support (the judge with the lexical penalties) and source lift are the given-answer model's
# inputs: reported on their own so that a second data set shows which of them carries over.
SIGNALS = ("logprob", "judge", "lexical", "support", "lift", "combined")
CALIBRATED = ("judge", "combined")  # the signals read as P(supported): calibration is theirs


@dataclass(frozen=True)
class HaluRecord:
    pair_id: str
    hallucinated: bool
    logprob: float
    judge: float | None  # None: the judge could not decide ("unverified")
    lexical: float
    support: float
    lift: float | None
    combined: float


@dataclass(frozen=True)
class _HaluPairRecord:
    records: list[HaluRecord]


def hallucination_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.generators import make_generator
    from verirag.pipeline.evaluation.hallucination import SignalScorer
    from verirag.pipeline.rag import RagPipeline

    rag = RagPipeline(settings)
    scorer = SignalScorer(
        make_generator(settings.generator, settings),
        rag.prompts,
        rag.thresholds,
        settings.idk_sentence,
    )
    pairs: dict[str, list[HaluItem]] = {}
    for item in plan.halu:
        pairs.setdefault(item.pair_id, []).append(item)

    def work(pair: list[HaluItem]) -> _HaluPairRecord:
        first = pair[0]
        signals = scorer.signals_many([first.knowledge], first.question, [i.answer for i in pair])
        return _HaluPairRecord(
            [
                HaluRecord(
                    i.pair_id,
                    i.hallucinated,
                    s.logprob,
                    s.judge,
                    s.lexical,
                    s.support,
                    s.lift,
                    s.combined,
                )
                for i, s in zip(pair, signals, strict=True)
            ]
        )

    raw_log: ItemLog[_HaluPairRecord] = ItemLog(
        plan.config.out / "items.jsonl",
        lambda raw: _HaluPairRecord([HaluRecord(**r) for r in raw["records"]]),
    )
    raw_log.load()
    groups = list(pairs.values())
    for _ in run_items(
        groups, lambda g: g[0].pair_id, work, raw_log, stage="hallucination", progress=progress
    ):
        pass
    records = [
        r
        for g in groups
        if g[0].pair_id in raw_log.done
        for r in raw_log.done[g[0].pair_id].records
    ]
    return summarise_hallucination(
        records, failed_list(raw_log, [g[0].pair_id for g in groups]), rag.thresholds
    )


def _signal(r: HaluRecord, name: str) -> float:
    value = getattr(r, name)
    # An undecided judge counts as a coin flip, never as "supported".
    return 0.5 if value is None else float(value)


def _signal_metrics(
    records: Sequence[HaluRecord], name: str, cut: float | None
) -> dict[str, float]:
    """One signal's metrics, keyed "signal/metric"; `cut`: its cut in the shipped rule."""
    labels = [r.hallucinated for r in records]  # positive = hallucinated
    right = [not y for y in labels]
    support = [_signal(r, name) for r in records]
    danger = [1.0 - s for s in support]  # higher = more likely hallucinated
    metrics = {
        "auroc": auroc(danger, labels),
        "average_precision": average_precision(danger, labels),
        "best_f1": best_f1(danger, labels)[0].f1,
    }
    if cut is not None:
        # flagged when the support score is under the shipped cut
        flagged = [s < cut for s in support]
        at = binary_prf(flagged, labels)
        metrics.update(
            precision_at_shipped=at.precision,
            recall_at_shipped=at.recall,
            f1_at_shipped=at.f1,
            balanced_accuracy_at_shipped=balanced_accuracy(flagged, labels),
        )
    metrics["aurc"] = aurc(support, right)
    if name in CALIBRATED:
        metrics["ece"] = expected_calibration_error(support, right)
    return {f"{name}/{k}": v for k, v in metrics.items()}


def _intervals(
    records: list[HaluRecord], shipped: dict[str, float | None], resamples: int
) -> dict[str, Interval]:
    """Resampled by pair: a question's right and hallucinated answer share their sources, so
    they are not independent items."""
    by_pair: dict[str, list[HaluRecord]] = {}
    for r in records:
        by_pair.setdefault(r.pair_id, []).append(r)
    pairs = list(by_pair.values())

    def statistics(rows: list[int]) -> dict[str, float]:
        picked = [r for i in rows for r in pairs[i]]
        out: dict[str, float] = {}
        for name in SIGNALS:
            out.update(_signal_metrics(picked, name, shipped[name]))
        return out

    return bootstrap_intervals(len(pairs), statistics, resamples)


def summarise_hallucination(
    records: list[HaluRecord],
    failed: list[FailedItem],
    thresholds: Any,
    *,
    resamples: int = CI_RESAMPLES,
) -> SuiteResult:
    labels = [r.hallucinated for r in records]  # positive = hallucinated
    metrics: dict[str, float] = {}
    rows: list[list[Any]] = []
    roc_series, pr_series, rc_series, rel_series = [], [], [], []
    # The cut each signal is held to in the shipped decision rule (None: no cut of its own).
    shipped: dict[str, float | None] = {
        "logprob": None,
        "judge": thresholds.claim_support,
        "lexical": 0.5,
        "support": None,
        "lift": None,
        # `given_flagged`: the cut of a given answer, not the own answers' delivery cut.
        "combined": thresholds.given_min,
    }
    if not records or all(labels) or not any(labels):
        return SuiteResult(
            "hallucination",
            {},
            failed=failed,
            counts={"answers": len(records)},
            notes=["needs both right and hallucinated answers"],
        )
    right = [not y for y in labels]
    for name in SIGNALS:
        support = [_signal(r, name) for r in records]
        danger = [1.0 - s for s in support]
        found = _signal_metrics(records, name, shipped[name])
        metrics.update(found)
        roc, ap = found[f"{name}/auroc"], found[f"{name}/average_precision"]
        _, cut = best_f1(danger, labels)
        rows.append(
            [
                name,
                roc,
                ap,
                found[f"{name}/best_f1"],
                1.0 - cut,
                shipped[name],
                *(
                    found.get(f"{name}/{m}_at_shipped")
                    for m in ("precision", "recall", "f1", "balanced_accuracy")
                ),
            ]
        )
        fpr, tpr, _ = roc_curve(danger, labels)
        roc_series.append(Series(f"{name} (AUROC {roc:.3f})", fpr, tpr))
        precision, recall, _ = pr_curve(danger, labels)
        pr_series.append(Series(f"{name} (AP {ap:.3f})", recall, precision))
        coverage, risk = risk_coverage(support, right)
        rc_series.append(Series(name, coverage, risk))
        if name in CALIBRATED:
            bins = [b for b in reliability_bins(support, right) if b.count]
            rel_series.append(
                Series(name, [b.mean_confidence for b in bins], [b.accuracy for b in bins])
            )
    undecided = sum(r.judge is None for r in records)
    return SuiteResult(
        "hallucination",
        metrics,
        tables=[
            Table(
                "Hallucination detection per signal (positive = hallucinated answer)",
                [
                    "signal",
                    "AUROC",
                    "avg precision",
                    "best F1",
                    "best cut (support <)",
                    "shipped cut",
                    "precision @ shipped",
                    "recall @ shipped",
                    "F1 @ shipped",
                    "balanced acc @ shipped",
                ],
                rows,
                note="Scores are support scores (high = supported); an answer is flagged when "
                "its score is under the cut. The logprob, support and lift signals have no cut "
                "of their own in the decision rule (source lift is a likelihood ratio, not a "
                "probability). An undecided judge counts as 0.5.",
            ),
            reliability_table(
                "Reliability of the combined score as P(right)",
                [r.combined for r in records],
                [not r.hallucinated for r in records],
            ),
        ],
        plots=[
            Plot(
                "line",
                "ROC: detecting hallucinated answers",
                "false positive rate",
                "true positive rate",
                roc_series,
                diagonal=True,
            ),
            Plot(
                "line",
                "Precision-recall: detecting hallucinated answers",
                "recall",
                "precision",
                pr_series,
            ),
            Plot(
                "line",
                "Reliability: support score as P(right)",
                "mean predicted",
                "observed share right",
                rel_series,
                diagonal=True,
            ),
            Plot(
                "line",
                "Selective answering: risk vs coverage",
                "coverage (share delivered)",
                "risk (share of delivered that are hallucinated)",
                rc_series,
            ),
        ],
        failed=failed,
        counts={
            "answers": len(records),
            "pairs": len(records) // 2,
            "judge_undecided": undecided,
            "failed_pairs": len(failed),
        },
        intervals=_intervals(records, shipped, resamples),
    )
