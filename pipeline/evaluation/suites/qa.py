"""QA: every question asked through `RagPipeline.ask`; answer quality by decision, the decision
mix, latency, and whether a higher confidence means a right answer (risk-coverage)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.engine import EvalPlan
from verirag.pipeline.evaluation.metrics import aurc, auroc, mean, risk_coverage
from verirag.pipeline.evaluation.runs import (
    CI_RESAMPLES,
    Cell,
    FailedItem,
    Interval,
    Plot,
    Series,
    SuiteResult,
    Table,
)
from verirag.pipeline.evaluation.suites.losses import losses
from verirag.pipeline.evaluation.suites.shared import (
    DECISIONS,
    AnswerRecord,
    ask_items,
    bootstrap_intervals,
    decision_plot,
    examples,
    latency_intervals,
    latency_plot,
    mean_intervals,
    percentile,
    reliability_table,
)


def qa_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    records, failed = ask_items(plan, settings, progress, "qa")
    return summarise_qa(records, failed)


def _selective_metrics(scores: Sequence[float], correct: Sequence[bool]) -> dict[str, float]:
    metrics = {"aurc": aurc(scores, correct)}
    if any(correct) and not all(correct):
        metrics["confidence_auroc"] = auroc(scores, correct)
    return metrics


def _selective(records: Sequence[AnswerRecord]) -> tuple[dict[str, float], Plot | None]:
    """Risk-coverage of answering by confidence: does a higher confidence mean right?"""
    if len(records) < 2:
        return {}, None
    scores = [r.confidence for r in records]
    correct = [r.contains for r in records]
    coverage, risk = risk_coverage(scores, correct)
    plot = Plot(
        "line",
        "Risk-coverage by answer confidence",
        "coverage (share answered)",
        "risk (share of answered that miss the gold answer)",
        [Series("confidence", coverage, risk)],
    )
    return _selective_metrics(scores, correct), plot


def _selective_intervals(records: Sequence[AnswerRecord], resamples: int) -> dict[str, Interval]:
    def statistics(rows: list[int]) -> dict[str, float]:
        picked = [records[i] for i in rows]
        # A resample with one outcome only has an AURC but no AUROC: it counts for the first.
        metrics = _selective_metrics([r.confidence for r in picked], [r.contains for r in picked])
        return {f"selective/{k}": v for k, v in metrics.items()}

    return bootstrap_intervals(len(records), statistics, resamples)


def summarise_qa(
    records: list[AnswerRecord], failed: list[FailedItem], *, resamples: int = CI_RESAMPLES
) -> SuiteResult:
    answerable = [r for r in records if r.answerable]
    mix = Counter(r.decision for r in records)
    metrics: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    lost, lost_tables = losses(answerable)
    if answerable:
        metrics.update(
            exact_match=mean([r.exact_match for r in answerable]),
            f1=mean([r.f1 for r in answerable]),
            contains_gold=mean([float(r.contains) for r in answerable]),
        )
        samples.update(
            exact_match=[r.exact_match for r in answerable],
            f1=[r.f1 for r in answerable],
            contains_gold=[float(r.contains) for r in answerable],
            short_extracted=[float(r.short_extracted) for r in answerable],
        )
        metrics["short_extracted"] = mean(samples["short_extracted"])
        samples.update(lost)
        metrics.update({key: mean(values) for key, values in lost.items()})
        delivered = [r for r in answerable if r.decision == "answer"]
        if delivered:
            metrics["delivered_accuracy"] = mean([float(r.contains) for r in delivered])
            samples["delivered_accuracy"] = [float(r.contains) for r in delivered]
    for decision in DECISIONS:
        metrics[f"share_{decision}"] = mix.get(decision, 0) / len(records) if records else 0.0
        samples[f"share_{decision}"] = [float(r.decision == decision) for r in records]
    if records:
        metrics["latency_p50"] = percentile([r.seconds for r in records], 0.5)
        metrics["latency_p95"] = percentile([r.seconds for r in records], 0.95)
    selective, rc_plot = _selective(answerable)
    metrics.update({f"selective/{k}": v for k, v in selective.items()})
    intervals = {
        **mean_intervals(samples),
        **latency_intervals("", [r.seconds for r in records]),
        **(_selective_intervals(answerable, resamples) if selective else {}),
    }
    by_decision: list[list[Cell]] = [
        [
            d,
            sum(r.decision == d for r in answerable),
            mean([float(r.contains) for r in answerable if r.decision == d])
            if any(r.decision == d for r in answerable)
            else None,
            mean([r.f1 for r in answerable if r.decision == d])
            if any(r.decision == d for r in answerable)
            else None,
        ]
        for d in DECISIONS
    ]
    plots = [
        decision_plot({"verirag": mix}),
        latency_plot({"verirag": [r.seconds for r in records]}),
    ]
    if rc_plot:
        plots.append(rc_plot)
    delivered = [r for r in answerable if r.decision != "abstain"]
    reliability = reliability_table(
        "Reliability of the confidence (answers given, right = contains gold)",
        [r.confidence for r in delivered],
        [r.contains for r in delivered],
    )
    return SuiteResult(
        "qa",
        metrics,
        tables=[
            reliability,
            Table(
                "Answer quality by decision",
                ["decision", "questions", "contains gold", "token F1"],
                by_decision,
                note="EM is strict: the model answers in cited sentences, not SQuAD spans.",
            ),
            *lost_tables,
            examples(records),
        ],
        plots=plots,
        failed=failed,
        counts={"questions": len(records), "failed": len(failed), **dict(mix.items())},
        intervals=intervals,
    )
