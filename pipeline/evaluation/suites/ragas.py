"""RAGAS: each question asked through `RagPipeline.ask`, then scored by the ragas metrics with
the local generator as judge (`ragas_adapter`). A metric that fails on a sample is listed as a
failure, never averaged in."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets import EvalItem
from verirag.pipeline.evaluation.engine import EvalPlan, ItemLog, failed_list, run_items
from verirag.pipeline.evaluation.metrics import mean
from verirag.pipeline.evaluation.runs import FailedItem, Plot, Series, SuiteResult, Table
from verirag.pipeline.evaluation.suites.shared import (
    COLLECTION,
    AnswerRecord,
    answer_record,
    build_index,
    mean_intervals,
)


@dataclass(frozen=True)
class RagasRecord:
    answer: AnswerRecord
    values: dict[str, float]
    errors: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)  # per metric; absent in old runs


def _decode(raw: dict[str, Any]) -> RagasRecord:
    return RagasRecord(
        AnswerRecord(**raw["answer"]), raw["values"], raw["errors"], raw.get("seconds", {})
    )


def ragas_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.generators import make_generator
    from verirag.generators.llamacpp import LlamaCppGenerator
    from verirag.generators.params import generation_params
    from verirag.pipeline.evaluation.ragas_adapter import METRICS, RagasSample, RagasScorer
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    gen = make_generator(settings.generator, settings)
    if not isinstance(gen, LlamaCppGenerator):
        raise RuntimeError("the ragas suite needs a llama.cpp (GGUF) generator for JSON grammars")
    rag = RagPipeline(settings, generator=gen)
    rag.warm_up()
    scorer = RagasScorer(gen, rag.encoder_for(settings.embedder), plan.config.metrics or METRICS)
    params = generation_params(settings, max_tokens=plan.config.max_tokens)

    def work(item: EvalItem) -> RagasRecord:
        started = time.perf_counter()
        answer = rag.ask(item.question, COLLECTION, plan.config.k, params=params)
        record = answer_record(item, answer, time.perf_counter() - started)
        contexts = record.contexts or [h.text for h in answer.retrieved[: plan.config.k]]
        scores = scorer.score(
            RagasSample(item.question, answer.text, tuple(contexts), item.answers[0])
        )
        return RagasRecord(record, scores.values, scores.errors, scores.seconds)

    log: ItemLog[RagasRecord] = ItemLog(plan.config.out / "items.jsonl", _decode)
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
    records: list[RagasRecord],
    failed: list[FailedItem],
    metric_names: Sequence[str],
    seconds: float,
) -> SuiteResult:
    metrics: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    rows = []
    metric_failures: list[FailedItem] = []
    for name in metric_names:
        values = [r.values[name] for r in records if name in r.values]
        errors = [r for r in records if name in r.errors]
        timed = [r.seconds[name] for r in records if name in r.seconds]
        if values:
            metrics[name] = mean(values)
            samples[name] = values
        metrics[f"{name}/failed"] = float(len(errors))
        if timed:
            metrics[f"{name}/seconds_per_sample"] = mean(timed)
            samples[f"{name}/seconds_per_sample"] = timed
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
        # Over the samples each metric scored: a failed score is not part of its mean either.
        intervals=mean_intervals(samples),
    )
