"""The six evaluation suites. Each runs items through verirag's own pipelines (the evaluator
never reimplements a stage) and turns the per-item records into a `SuiteResult`.

Per-item records are small dataclasses, stored in the run's `items.jsonl`; every metric is
computed from them, so a summary can be rebuilt from a finished (or resumed) run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from verirag.pipeline.evaluation.datasets import EvalItem, HaluItem, write_jsonl
from verirag.pipeline.evaluation.engine import EvalConfig, EvalPlan, ItemLog, failed_list, run_items
from verirag.pipeline.evaluation.metrics import (
    answer_contains,
    aurc,
    auroc,
    average_precision,
    best_f1,
    binary_prf,
    dedupe,
    exact_match,
    expected_calibration_error,
    mean,
    ndcg_at_k,
    pr_curve,
    recall_at_k,
    reciprocal_rank,
    reliability_bins,
    risk_coverage,
    roc_curve,
    token_f1,
)
from verirag.pipeline.evaluation.runs import Cell, Plot, Series, SuiteResult, Table
from verirag.pipeline.rag import SearchMode
from verirag.core.settings import Settings

COLLECTION = "eval"
MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")


# --------------------------------------------------------------------------- shared set-up


def run_settings(config: EvalConfig, base: Settings) -> Settings:
    """The run's own data directory (index, review queue) under `out`; models from `base`."""
    return base.with_overrides(
        data_dir=config.out / "state",
        model_cache=base.models_dir,
        generator=config.generator,
        embedder=config.embedder,
        top_k=config.k,
    )


def build_index(plan: EvalPlan, settings: Settings) -> None:
    """Index the plan's corpus (incremental: a resumed run re-reads nothing unchanged)."""
    from verirag.pipeline.indexing import IndexingPipeline

    source = write_jsonl(plan.corpus, plan.config.out / "corpus" / "passages.jsonl")
    report = IndexingPipeline(settings).run([source], COLLECTION, prune=True)
    if report.failures:
        raise RuntimeError(f"indexing the evaluation corpus failed: {report.failures[0]}")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _latency_plot(series: dict[str, list[float]]) -> Plot:
    return Plot(
        "hist",
        "Latency per question",
        "seconds",
        "questions",
        [Series(name, values) for name, values in series.items() if values],
    )


def _decision_plot(mixes: dict[str, Counter[str]]) -> Plot:
    kinds = ["answer", "review", "abstain"]
    return Plot(
        "bar",
        "Decision mix",
        "decision",
        "questions",
        [Series(name, kinds, [float(mix.get(d, 0)) for d in kinds]) for name, mix in mixes.items()],
    )


# --------------------------------------------------------------------------- retrieval


@dataclass(frozen=True)
class RetrievalRecord:
    ranked: dict[str, list[str]]  # mode -> document ids, best first, deduplicated
    relevant: list[str]


def retrieval_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    rag = RagPipeline(settings)
    items = [i for i in plan.items if i.relevant]

    def work(item: EvalItem) -> RetrievalRecord:
        ranked: dict[str, list[str]] = {}
        for mode in MODES:
            hits = rag.search(item.question, COLLECTION, 30, mode=mode)
            ranked[mode] = dedupe([h.doc_id for h in hits])[:10]
        return RetrievalRecord(ranked, sorted(item.relevant))

    log: ItemLog[RetrievalRecord] = ItemLog(
        plan.config.out / "items.jsonl", lambda raw: RetrievalRecord(**raw)
    )
    log.load()
    for _ in run_items(items, lambda i: i.item_id, work, log, stage="retrieval", progress=progress):
        pass
    rag.close()
    records = [log.done[i.item_id] for i in items if i.item_id in log.done]
    return summarise_retrieval(records, failed_list(log, [i.item_id for i in items]))


def summarise_retrieval(records: list[RetrievalRecord], failed: list[Any]) -> SuiteResult:
    metrics: dict[str, float] = {}
    rows: list[list[Cell]] = []
    for mode in MODES:
        values = {
            "recall@1": [recall_at_k(r.ranked[mode], r.relevant, 1) for r in records],
            "recall@5": [recall_at_k(r.ranked[mode], r.relevant, 5) for r in records],
            "recall@10": [recall_at_k(r.ranked[mode], r.relevant, 10) for r in records],
            "mrr@10": [reciprocal_rank(r.ranked[mode], r.relevant, 10) for r in records],
            "ndcg@10": [ndcg_at_k(r.ranked[mode], r.relevant, 10) for r in records],
        }
        for name, vals in values.items():
            if vals:
                metrics[f"{mode}/{name}"] = mean(vals)
        rows.append([mode, *(metrics.get(f"{mode}/{n}") for n in values)])
    columns = ["retriever", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10"]
    plot = Plot(
        "bar",
        "Retrieval quality by retriever",
        "metric",
        "score",
        [
            Series(mode, columns[1:], [float(v or 0.0) for v in row[1:]])
            for mode, row in zip(MODES, rows, strict=True)
        ],
    )
    return SuiteResult(
        "retrieval",
        metrics,
        tables=[Table("Retrieval", columns, rows)],
        plots=[plot],
        failed=failed,
        counts={"questions": len(records), "failed": len(failed)},
    )


# --------------------------------------------------------------------------- qa, abstention


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


def answer_record(item: EvalItem, answer: Any, seconds: float) -> AnswerRecord:
    best_claim = max((token_f1(c.text, item.answers) for c in answer.claims), default=0.0)
    return AnswerRecord(
        question=item.question,
        answerable=item.answerable,
        gold=list(item.answers),
        text=answer.text,
        decision=answer.decision,
        confidence=answer.confidence,
        logprob_confidence=answer.logprob_confidence,
        exact_match=exact_match(answer.text, item.answers) if item.answers else 0.0,
        f1=max(best_claim, token_f1(answer.text, item.answers)) if item.answers else 0.0,
        contains=answer_contains(answer.text, item.answers) if item.answers else False,
        seconds=seconds,
        claims=len(answer.claims),
        flagged=len(answer.flagged),
        contexts=[c.snippet for c in answer.citations],
    )


def _answer_log(plan: EvalPlan, name: str = "items.jsonl") -> ItemLog[AnswerRecord]:
    log: ItemLog[AnswerRecord] = ItemLog(plan.config.out / name, lambda r: AnswerRecord(**r))
    log.load()
    return log


def ask_items(
    plan: EvalPlan, settings: Settings, progress: bool, stage: str
) -> tuple[list[AnswerRecord], list[Any]]:
    from verirag.generators.base import GenerationParams
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    rag = RagPipeline(settings)
    rag.warm_up()  # model loading is not part of any item's latency
    params = GenerationParams(max_tokens=plan.config.max_tokens)

    def work(item: EvalItem) -> AnswerRecord:
        started = time.perf_counter()
        answer = rag.ask(item.question, COLLECTION, plan.config.k, params=params)
        return answer_record(item, answer, time.perf_counter() - started)

    log = _answer_log(plan)
    for _ in run_items(plan.items, lambda i: i.item_id, work, log, stage=stage, progress=progress):
        pass
    rag.close()
    ids = [i.item_id for i in plan.items]
    return [log.done[i] for i in ids if i in log.done], failed_list(log, ids)


def qa_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    records, failed = ask_items(plan, settings, progress, "qa")
    return summarise_qa(records, failed)


def _selective(records: Sequence[AnswerRecord]) -> tuple[dict[str, float], Plot | None]:
    """Risk-coverage of answering by confidence: does a higher confidence mean right?"""
    if len(records) < 2:
        return {}, None
    scores = [r.confidence for r in records]
    correct = [r.contains for r in records]
    coverage, risk = risk_coverage(scores, correct)
    metrics = {"aurc": aurc(scores, correct)}
    if any(correct) and not all(correct):
        metrics["confidence_auroc"] = auroc(scores, correct)
    plot = Plot(
        "line",
        "Risk-coverage by answer confidence",
        "coverage (share answered)",
        "risk (share of answered that miss the gold answer)",
        [Series("confidence", coverage, risk)],
    )
    return metrics, plot


def summarise_qa(records: list[AnswerRecord], failed: list[Any]) -> SuiteResult:
    answerable = [r for r in records if r.answerable]
    mix = Counter(r.decision for r in records)
    metrics: dict[str, float] = {}
    if answerable:
        metrics.update(
            exact_match=mean([r.exact_match for r in answerable]),
            f1=mean([r.f1 for r in answerable]),
            contains_gold=mean([float(r.contains) for r in answerable]),
        )
        delivered = [r for r in answerable if r.decision == "answer"]
        if delivered:
            metrics["delivered_accuracy"] = mean([float(r.contains) for r in delivered])
    for decision in ("answer", "review", "abstain"):
        metrics[f"share_{decision}"] = mix.get(decision, 0) / len(records) if records else 0.0
    if records:
        metrics["latency_p50"] = _percentile([r.seconds for r in records], 0.5)
        metrics["latency_p95"] = _percentile([r.seconds for r in records], 0.95)
    selective, rc_plot = _selective(answerable)
    metrics.update({f"selective/{k}": v for k, v in selective.items()})
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
        for d in ("answer", "review", "abstain")
    ]
    plots = [
        _decision_plot({"verirag": mix}),
        _latency_plot({"verirag": [r.seconds for r in records]}),
    ]
    if rc_plot:
        plots.append(rc_plot)
    return SuiteResult(
        "qa",
        metrics,
        tables=[
            Table(
                "Answer quality by decision",
                ["decision", "questions", "contains gold", "token F1"],
                by_decision,
                note="EM is strict: the model answers in cited sentences, not SQuAD spans.",
            ),
            _examples(records),
        ],
        plots=plots,
        failed=failed,
        counts={"questions": len(records), "failed": len(failed), **dict(mix.items())},
    )


def _examples(records: Sequence[AnswerRecord], n: int = 15) -> Table:
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


def abstention_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    records, failed = ask_items(plan, settings, progress, "abstention")
    return summarise_abstention(records, failed)


def summarise_abstention(records: list[AnswerRecord], failed: list[Any]) -> SuiteResult:
    labels = [not r.answerable for r in records]  # positive = should not be answered
    metrics: dict[str, float] = {}
    rows: list[list[Cell]] = []
    rules: list[tuple[str, set[str]]] = [
        ("withheld (abstain or review)", {"abstain", "review"}),
        ("abstain only", {"abstain"}),
    ]
    for name, withheld in rules:
        prf = binary_prf([r.decision in withheld for r in records], labels)
        key = "withheld" if name.startswith("withheld") else "abstain"
        metrics[f"{key}/precision"] = prf.precision
        metrics[f"{key}/recall"] = prf.recall
        metrics[f"{key}/f1"] = prf.f1
        rows.append([name, prf.precision, prf.recall, prf.f1, prf.tp, prf.fp, prf.fn, prf.tn])
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    if answerable:
        metrics["answerable/contains_gold"] = mean([float(r.contains) for r in answerable])
        metrics["answerable/f1"] = mean([r.f1 for r in answerable])
    if unanswerable:
        metrics["unanswerable/delivered"] = mean(
            [float(r.decision == "answer") for r in unanswerable]
        )
        # What the model "knows" without its sources (a high value means memorised data).
        metrics["unanswerable/contains_gold"] = mean([float(r.contains) for r in unanswerable])
        metrics["unanswerable/f1"] = mean([r.f1 for r in unanswerable])
    if any(labels) and not all(labels):
        # Does low confidence mark the unanswerable ones, beyond the decision itself?
        metrics["confidence_auroc"] = auroc(
            [r.confidence for r in records], [not y for y in labels]
        )
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
            _examples(records),
        ],
        plots=[_decision_plot(mixes), _latency_plot({"verirag": [r.seconds for r in records]})],
        failed=failed,
        counts={
            "questions": len(records),
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "failed": len(failed),
        },
    )


# --------------------------------------------------------------------------- hallucination


SIGNALS = ("logprob", "judge", "lexical", "combined")


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


def hallucination_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.pipeline.evaluation.hallucination import SignalScorer
    from verirag.generators import make_generator
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


@dataclass(frozen=True)
class _HaluPairRecord:
    records: list[HaluRecord]


def _signal(r: HaluRecord, name: str) -> float:
    value = getattr(r, name)
    # An undecided judge counts as a coin flip, never as "supported".
    return 0.5 if value is None else float(value)


def summarise_hallucination(
    records: list[HaluRecord], failed: list[Any], thresholds: Any
) -> SuiteResult:
    labels = [r.hallucinated for r in records]  # positive = hallucinated
    metrics: dict[str, float] = {}
    rows: list[list[Any]] = []
    roc_series, pr_series, rc_series, rel_series = [], [], [], []
    # The cut each signal is held to in the shipped decision rule (None: no cut of its own).
    shipped = {
        "logprob": None,
        "judge": thresholds.claim_support,
        "lexical": 0.5,
        "combined": thresholds.answer_min,
    }
    if not records or all(labels) or not any(labels):
        return SuiteResult(
            "hallucination",
            {},
            failed=failed,
            counts={"answers": len(records)},
            notes=["needs both right and hallucinated answers"],
        )
    for name in SIGNALS:
        support = [_signal(r, name) for r in records]
        danger = [1.0 - s for s in support]  # higher = more likely hallucinated
        roc = auroc(danger, labels)
        ap = average_precision(danger, labels)
        best, cut = best_f1(danger, labels)
        metrics[f"{name}/auroc"] = roc
        metrics[f"{name}/average_precision"] = ap
        metrics[f"{name}/best_f1"] = best.f1
        at = None
        if shipped[name] is not None:
            # flagged when the support score is under the shipped cut
            at = binary_prf([s < shipped[name] for s in support], labels)
            metrics[f"{name}/precision_at_shipped"] = at.precision
            metrics[f"{name}/recall_at_shipped"] = at.recall
            metrics[f"{name}/f1_at_shipped"] = at.f1
        rows.append(
            [
                name,
                roc,
                ap,
                best.f1,
                1.0 - cut,
                shipped[name],
                at.precision if at else None,
                at.recall if at else None,
                at.f1 if at else None,
            ]
        )
        fpr, tpr, _ = roc_curve(danger, labels)
        roc_series.append(Series(f"{name} (AUROC {roc:.3f})", fpr, tpr))
        precision, recall, _ = pr_curve(danger, labels)
        pr_series.append(Series(f"{name} (AP {ap:.3f})", recall, precision))
        coverage, risk = risk_coverage(support, [not y for y in labels])
        rc_series.append(Series(name, coverage, risk))
        metrics[f"{name}/aurc"] = aurc(support, [not y for y in labels])
        if name in ("judge", "combined"):
            right = [not y for y in labels]
            metrics[f"{name}/ece"] = expected_calibration_error(support, right)
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
                ],
                rows,
                note="Scores are support scores (high = supported); an answer is flagged when "
                "its score is under the cut. The logprob signal has no cut of its own in the "
                "decision rule. An undecided judge counts as 0.5.",
            )
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
    )


# --------------------------------------------------------------------------- ragas


@dataclass(frozen=True)
class RagasRecord:
    answer: AnswerRecord
    values: dict[str, float]
    errors: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)  # per metric; absent in old runs


def ragas_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.pipeline.evaluation.ragas_adapter import METRICS, RagasSample, RagasScorer
    from verirag.generators import make_generator
    from verirag.generators.base import GenerationParams
    from verirag.generators.llamacpp import LlamaCppGenerator
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    gen = make_generator(settings.generator, settings)
    if not isinstance(gen, LlamaCppGenerator):
        raise RuntimeError("the ragas suite needs a llama.cpp (GGUF) generator for JSON grammars")
    rag = RagPipeline(settings, generator=gen)
    rag.warm_up()
    scorer = RagasScorer(gen, rag.encoder_for(settings.embedder), plan.config.metrics or METRICS)
    params = GenerationParams(max_tokens=plan.config.max_tokens)

    def work(item: EvalItem) -> RagasRecord:
        started = time.perf_counter()
        answer = rag.ask(item.question, COLLECTION, plan.config.k, params=params)
        record = answer_record(item, answer, time.perf_counter() - started)
        contexts = record.contexts or [h.text for h in answer.retrieved[: plan.config.k]]
        scores = scorer.score(
            RagasSample(item.question, answer.text, tuple(contexts), item.answers[0])
        )
        return RagasRecord(record, scores.values, scores.errors, scores.seconds)

    log: ItemLog[RagasRecord] = ItemLog(
        plan.config.out / "items.jsonl",
        lambda raw: RagasRecord(
            AnswerRecord(**raw["answer"]), raw["values"], raw["errors"], raw.get("seconds", {})
        ),
    )
    log.load()
    started = time.perf_counter()
    for _ in run_items(
        plan.items, lambda i: i.item_id, work, log, stage="ragas", progress=progress
    ):
        pass
    rag.close()
    ids = [i.item_id for i in plan.items]
    records = [log.done[i] for i in ids if i in log.done]
    return summarise_ragas(
        records, failed_list(log, ids), scorer.metric_names, time.perf_counter() - started
    )


def summarise_ragas(
    records: list[RagasRecord], failed: list[Any], metric_names: Sequence[str], seconds: float
) -> SuiteResult:
    from verirag.pipeline.evaluation.runs import FailedItem

    metrics: dict[str, float] = {}
    rows = []
    metric_failures: list[FailedItem] = []
    for name in metric_names:
        values = [r.values[name] for r in records if name in r.values]
        errors = [r for r in records if name in r.errors]
        timed = [r.seconds[name] for r in records if name in r.seconds]
        if values:
            metrics[name] = mean(values)
        metrics[f"{name}/failed"] = float(len(errors))
        if timed:
            metrics[f"{name}/seconds_per_sample"] = mean(timed)
        per_sample = mean(timed) if timed else None
        rows.append([name, mean(values) if values else None, len(values), len(errors), per_sample])
    for i, r in enumerate(records):
        for name, error in r.errors.items():
            metric_failures.append(FailedItem(r.answer.question[:80] or str(i), name, error))
    return SuiteResult(
        "ragas",
        metrics,
        tables=[
            Table(
                "RAGAS (local generator as judge, JSON-schema grammar)",
                ["metric", "mean", "scored", "failed", "seconds/sample"],
                rows,
                note="A sample whose metric failed is listed below, never averaged in.",
            )
        ],
        plots=[
            Plot(
                "hist",
                "RAGAS score distribution",
                "score",
                "samples",
                [Series(n, [r.values[n] for r in records if n in r.values]) for n in metric_names],
            ),
        ],
        failed=[*failed, *metric_failures],
        counts={
            "samples": len(records),
            "failed_samples": len(failed),
            "failed_metric_scores": len(metric_failures),
            "scoring_seconds": int(seconds),
        },
    )


# --------------------------------------------------------------------------- baseline


@dataclass(frozen=True)
class BaselineRecord:
    verirag: AnswerRecord
    langchain_text: str
    langchain_withheld: bool
    langchain_contains: bool
    langchain_seconds: float


def baseline_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.pipeline.evaluation.baseline import LangChainRag, says_dont_know
    from verirag.generators.base import GenerationParams
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    rag = RagPipeline(settings)
    chain = LangChainRag(plan.corpus, settings, k=plan.config.k, max_tokens=plan.config.max_tokens)
    # Both systems load their models (and LangChain builds its FAISS store) before timing.
    rag.warm_up()
    chain.warm_up()
    params = GenerationParams(max_tokens=plan.config.max_tokens)

    def work(item: EvalItem) -> BaselineRecord:
        started = time.perf_counter()
        answer = rag.ask(item.question, COLLECTION, plan.config.k, params=params)
        ours = answer_record(item, answer, time.perf_counter() - started)
        started = time.perf_counter()
        text = chain.ask(item.question)
        seconds = time.perf_counter() - started
        return BaselineRecord(
            ours,
            text,
            says_dont_know(text),
            answer_contains(text, item.answers) if item.answers else False,
            seconds,
        )

    log: ItemLog[BaselineRecord] = ItemLog(
        plan.config.out / "items.jsonl",
        lambda raw: BaselineRecord(**{**raw, "verirag": AnswerRecord(**raw["verirag"])}),
    )
    log.load()
    for _ in run_items(
        plan.items, lambda i: i.item_id, work, log, stage="baseline", progress=progress
    ):
        pass
    rag.close()
    ids = [i.item_id for i in plan.items]
    return summarise_baseline([log.done[i] for i in ids if i in log.done], failed_list(log, ids))


@dataclass(frozen=True)
class _SystemView:
    delivered: list[bool]
    correct: list[bool]
    seconds: list[float]


def summarise_baseline(records: list[BaselineRecord], failed: list[Any]) -> SuiteResult:
    systems = {
        "verirag": _SystemView(
            [r.verirag.decision == "answer" for r in records],
            [r.verirag.contains for r in records],
            [r.verirag.seconds for r in records],
        ),
        "langchain": _SystemView(
            [not r.langchain_withheld for r in records],
            [r.langchain_contains for r in records],
            [r.langchain_seconds for r in records],
        ),
    }
    answerable = [r.verirag.answerable for r in records]
    metrics: dict[str, float] = {}
    rows = []
    for name, view in systems.items():
        # accuracy: answerable questions answered (delivered) with a gold answer in the text
        triples = zip(view.delivered, view.correct, answerable, strict=True)
        acc = [d and c for d, c, a in triples if a]
        # unsupported delivered: delivered answers that are wrong (unanswerable: always wrong)
        wrong = [
            not (c and a)
            for d, c, a in zip(view.delivered, view.correct, answerable, strict=True)
            if d
        ]
        withheld_unans = [not d for d, a in zip(view.delivered, answerable, strict=True) if not a]
        withheld_ans = [not d for d, a in zip(view.delivered, answerable, strict=True) if a]
        row: dict[str, float | None] = {
            "accuracy": mean([float(x) for x in acc]) if acc else None,
            "unsupported_delivered": mean([float(x) for x in wrong]) if wrong else 0.0,
            "abstention_unanswerable": mean([float(x) for x in withheld_unans])
            if withheld_unans
            else None,
            "withheld_answerable": mean([float(x) for x in withheld_ans]) if withheld_ans else None,
            "latency_p50": _percentile(view.seconds, 0.5) if view.seconds else None,
            "latency_p95": _percentile(view.seconds, 0.95) if view.seconds else None,
        }
        metrics.update({f"{name}/{k}": v for k, v in row.items() if v is not None})
        rows.append([name, *row.values()])
    return SuiteResult(
        "baseline",
        metrics,
        tables=[
            Table(
                "verirag vs a plain LangChain RAG chain, same questions, embedder and generator",
                [
                    "system",
                    "accuracy",
                    "unsupported delivered",
                    "abstains when unanswerable",
                    "withholds when answerable",
                    "latency p50 (s)",
                    "latency p95 (s)",
                ],
                rows,
                note="accuracy: share of answerable questions answered with a gold answer in "
                "the text. unsupported delivered: share of delivered answers that miss the gold "
                "answer or answer an unanswerable question. verirag withholds by deciding "
                "review/abstain; LangChain's chain withholds when its text says it does not know.",
            ),
            Table(
                "Side by side (first 20)",
                ["question", "answerable", "verirag decision", "verirag", "langchain"],
                [
                    [
                        r.verirag.question,
                        "yes" if r.verirag.answerable else "no",
                        r.verirag.decision,
                        r.verirag.text[:200],
                        r.langchain_text[:200],
                    ]
                    for r in records[:20]
                ],
            ),
        ],
        plots=[
            _latency_plot({n: v.seconds for n, v in systems.items()}),
            Plot(
                "bar",
                "Delivered answers on unanswerable questions (lower is better)",
                "system",
                "share",
                [
                    Series(
                        "unsupported delivered",
                        list(systems),
                        [metrics.get(f"{n}/unsupported_delivered", 0.0) for n in systems],
                    )
                ],
            ),
        ],
        failed=failed,
        counts={
            "questions": len(records),
            "answerable": sum(answerable),
            "unanswerable": len(records) - sum(answerable),
            "failed": len(failed),
        },
    )


SUITE_RUNNERS: dict[str, Callable[[EvalPlan, Settings, bool], SuiteResult]] = {
    "retrieval": retrieval_suite,
    "qa": qa_suite,
    "abstention": abstention_suite,
    "hallucination": hallucination_suite,
    "ragas": ragas_suite,
    "baseline": baseline_suite,
}


def run_suite(plan: EvalPlan, base: Settings, progress: bool = True) -> SuiteResult:
    settings = run_settings(plan.config, base)
    return SUITE_RUNNERS[plan.config.suite](plan, settings, progress)
