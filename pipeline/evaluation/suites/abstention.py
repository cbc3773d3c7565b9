"""Abstention: some questions have their gold passage left out of the index; does verirag
withhold those (abstain, or send to review) and still answer the rest?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import floor

from verirag.core.settings import Settings
from verirag.evaluators.decision import AnswerModel
from verirag.pipeline.evaluation.engine import EvalPlan
from verirag.pipeline.evaluation.metrics import (
    auroc,
    binary_prf,
    expected_calibration_error,
    mean,
)
from verirag.pipeline.evaluation.runs import (
    CI_RESAMPLES,
    Cell,
    FailedItem,
    Interval,
    SuiteResult,
    Table,
)
from verirag.pipeline.evaluation.suites.losses import losses
from verirag.pipeline.evaluation.suites.shared import (
    AnswerRecord,
    ask_items,
    bootstrap_intervals,
    decision_plot,
    examples,
    latency_plot,
    mean_intervals,
    reliability_table,
)

# The answer's signals (`answer_signals`), in the order the report lists them.
SIGNALS = (*AnswerModel.SIGNALS, "agreement")

# (row label, metric group, the decisions that count as withholding)
RULES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("withheld (abstain or review)", "withheld", frozenset({"abstain", "review"})),
    ("abstain only", "abstain", frozenset({"abstain"})),
)
# Issue 14's target precision of delivered answers, at which `answer_bound` is read.
BOUND_PRECISION = 0.95


@dataclass(frozen=True)
class AnswerBound:
    """What the best possible confidence could reach on these answers: the generator's
    answers are fixed, and a confidence only chooses which of them to deliver. It delivers
    every right answer (answerable, given, containing a gold answer) and, while delivered
    precision on answerable questions stays at least `precision`, as many wrong answers to
    answerable questions as it allows (each one is an answerable question not withheld);
    it delivers nothing on an unanswerable question (withheld recall 1). No cut on any
    signal does better on both figures, so a target above them is the generator's limit,
    not the verifier's."""

    coverage: float  # delivered answerable questions / answerable questions
    withheld_precision: float  # unanswerable / withheld


def answer_bound(records: list[AnswerRecord], precision: float = BOUND_PRECISION) -> AnswerBound:
    answerable = [r for r in records if r.answerable]
    right = sum(r.decision != "abstain" and r.contains for r in answerable)
    wrong_given = sum(r.decision != "abstain" and not r.contains for r in answerable)
    # right / (right + wrong) >= precision, so at most right * (1 - p) / p wrong ones.
    wrong = min(wrong_given, floor(right * (1 - precision) / precision + 1e-9))
    unanswerable = len(records) - len(answerable)
    withheld = unanswerable + len(answerable) - right - wrong
    return AnswerBound(
        coverage=(right + wrong) / len(answerable) if answerable else 0.0,
        withheld_precision=unanswerable / withheld if withheld else 0.0,
    )


def abstention_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    records, failed = ask_items(plan, settings, progress, "abstention")
    return summarise_abstention(records, failed)


def own_records(records: list[AnswerRecord]) -> list[AnswerRecord]:
    """The answers given (not abstained) that can be labelled as `verirag calibrate` labels
    them, so that its out-of-fold figure and a fresh one measure the same thing: right = the
    gold paragraph was indexed and the answer contains a gold answer (`answerable and
    contains`); wrong = it misses every gold answer, or was given although its paragraph was
    left out. An answer without its paragraph that still contains a gold answer (from memory
    or a sibling passage) is left out: which it is cannot be told here."""
    return [r for r in records if r.decision != "abstain" and not (not r.answerable and r.contains)]


def own_answers(records: list[AnswerRecord]) -> tuple[list[float], list[bool]]:
    """The confidence and label of each of `own_records`."""
    kept = own_records(records)
    return [r.confidence for r in kept], [r.answerable and r.contains for r in kept]


def own_signals(records: list[AnswerRecord]) -> dict[str, tuple[list[float], list[bool]]]:
    """Each signal of the own answers (`own_answers`' labels) over the answers it was
    measured on."""
    kept = own_records(records)
    out: dict[str, tuple[list[float], list[bool]]] = {}
    for name in SIGNALS:
        pairs = [
            (r.signals[name], r.answerable and r.contains)
            for r in kept
            if r.signals.get(name) is not None
        ]
        if pairs:
            out[name] = ([float(v) for v, _ in pairs if v is not None], [y for _, y in pairs])
    return out


def _own_metrics(records: list[AnswerRecord]) -> dict[str, float]:
    scores, right = own_answers(records)
    metrics: dict[str, float] = {}
    if any(right) and not all(right):
        metrics["own/confidence_auroc"] = auroc(scores, right)
    for name, (values, labels) in own_signals(records).items():
        if any(labels) and not all(labels):
            metrics[f"own/signal_auroc/{name}"] = auroc(values, labels)
    if scores:
        metrics["own/ece"] = expected_calibration_error(scores, right, 10)
    return metrics


def _selective_metrics(records: list[AnswerRecord]) -> dict[str, float]:
    """Delivered answers on answerable questions (issue 14's selective answering) beside
    `answer_bound`'s ceiling on the same answers."""
    answerable = [r for r in records if r.answerable]
    if not answerable:
        return {}
    delivered = [r for r in answerable if r.decision == "answer"]
    bound = answer_bound(records)
    metrics = {
        "delivered/coverage": len(delivered) / len(answerable),
        "bound/coverage": bound.coverage,
        "bound/withheld_precision": bound.withheld_precision,
    }
    if delivered:
        metrics["delivered/precision"] = mean([float(r.contains) for r in delivered])
    return metrics


def _rule_metrics(records: list[AnswerRecord]) -> dict[str, float]:
    labels = [not r.answerable for r in records]
    metrics: dict[str, float] = {}
    for _, key, withheld in RULES:
        prf = binary_prf([r.decision in withheld for r in records], labels)
        metrics.update(
            {f"{key}/precision": prf.precision, f"{key}/recall": prf.recall, f"{key}/f1": prf.f1}
        )
    if any(labels) and not all(labels):
        metrics["confidence_auroc"] = auroc(
            [r.confidence for r in records], [not y for y in labels]
        )
    return {**metrics, **_own_metrics(records), **_selective_metrics(records)}


def _intervals(
    records: list[AnswerRecord], samples: dict[str, list[float]], resamples: int
) -> dict[str, Interval]:
    def statistics(rows: list[int]) -> dict[str, float]:
        return _rule_metrics([records[i] for i in rows])

    return {**bootstrap_intervals(len(records), statistics, resamples), **mean_intervals(samples)}


def summarise_abstention(
    records: list[AnswerRecord], failed: list[FailedItem], *, resamples: int = CI_RESAMPLES
) -> SuiteResult:
    labels = [not r.answerable for r in records]  # positive = should not be answered
    metrics: dict[str, float] = {}
    rows: list[list[Cell]] = []
    for name, key, withheld in RULES:
        prf = binary_prf([r.decision in withheld for r in records], labels)
        metrics[f"{key}/precision"] = prf.precision
        metrics[f"{key}/recall"] = prf.recall
        metrics[f"{key}/f1"] = prf.f1
        rows.append([name, prf.precision, prf.recall, prf.f1, prf.tp, prf.fp, prf.fn, prf.tn])
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    lost, lost_tables = losses(answerable)
    samples: dict[str, list[float]] = {}
    if answerable:
        samples["answerable/contains_gold"] = [float(r.contains) for r in answerable]
        samples["answerable/f1"] = [r.f1 for r in answerable]
        samples["answerable/short_extracted"] = [float(r.short_extracted) for r in answerable]
        samples.update(lost)
    if unanswerable:
        samples["unanswerable/delivered"] = [float(r.decision == "answer") for r in unanswerable]
        # What the model "knows" without its sources (a high value means memorised data).
        samples["unanswerable/contains_gold"] = [float(r.contains) for r in unanswerable]
        samples["unanswerable/f1"] = [r.f1 for r in unanswerable]
    metrics.update({key: mean(values) for key, values in samples.items()})
    if any(labels) and not all(labels):
        # Does low confidence mark the unanswerable ones, beyond the decision itself?
        metrics["confidence_auroc"] = auroc(
            [r.confidence for r in records], [not y for y in labels]
        )
    metrics.update(_own_metrics(records))
    metrics.update(_selective_metrics(records))
    own_scores, own_right = own_answers(records)
    mixes = {
        "answerable": Counter(r.decision for r in answerable),
        "unanswerable": Counter(r.decision for r in unanswerable),
    }
    return SuiteResult(
        "abstention",
        metrics,
        tables=[
            Table(
                "Abstaining on unanswerable questions (positive = gold passage not indexed)",
                ["withholding rule", "precision", "recall", "F1", "TP", "FP", "FN", "TN"],
                rows,
            ),
            _bound_table(metrics),
            *lost_tables,
            examples(records),
            _signal_table(records),
            reliability_table(
                "Reliability of the confidence (answers given, labelled as `verirag "
                "calibrate` labels them: right = the gold paragraph was indexed and the answer "
                "contains a gold answer)",
                own_scores,
                own_right,
            ),
        ],
        plots=[decision_plot(mixes), latency_plot({"verirag": [r.seconds for r in records]})],
        failed=failed,
        counts={
            "questions": len(records),
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "own answers labelled": len(own_scores),
            "failed": len(failed),
        },
        intervals=_intervals(records, samples, resamples) if records else {},
    )


def _bound_table(metrics: dict[str, float]) -> Table:
    withheld = metrics.get("withheld/precision")
    rows: list[list[Cell]] = [
        [
            "coverage of answerable questions",
            metrics.get("delivered/coverage"),
            metrics.get("bound/coverage"),
        ],
        ["delivered answers holding a gold answer", metrics.get("delivered/precision"), None],
        [
            "precision of withholding (unanswerable / withheld)",
            withheld,
            metrics.get("bound/withheld_precision"),
        ],
    ]
    return Table(
        "Selective answering, and the most any confidence could reach on these answers (it "
        f"delivers every right answer, delivered precision at least {BOUND_PRECISION}, "
        "withheld recall 1; a target above the bound is the generator's limit)",
        ["figure", "measured", "bound"],
        rows,
    )


def _signal_table(records: list[AnswerRecord]) -> Table:
    rows: list[list[Cell]] = []
    for name, (values, labels) in own_signals(records).items():
        defined = any(labels) and not all(labels)
        rows.append([name, auroc(values, labels) if defined else None, len(values), sum(labels)])
    return Table(
        "Each signal alone on the answers given (AUROC right vs wrong, nothing fitted; "
        "intervals under own/signal_auroc/ in the metrics)",
        ["signal", "AUROC", "answers", "right"],
        rows,
    )
