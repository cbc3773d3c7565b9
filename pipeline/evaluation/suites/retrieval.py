"""Retrieval: each question searched with every retriever; recall, MRR and nDCG of the
documents found against the question's relevant passages."""

from __future__ import annotations

from dataclasses import dataclass

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets import EvalItem
from verirag.pipeline.evaluation.engine import EvalPlan, ItemLog, failed_list, run_items
from verirag.pipeline.evaluation.metrics import (
    dedupe,
    mean,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)
from verirag.pipeline.evaluation.runs import Cell, FailedItem, Plot, Series, SuiteResult, Table
from verirag.pipeline.evaluation.suites.shared import COLLECTION, build_index, mean_intervals
from verirag.retrievers.hybrid import SearchMode

MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")


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


def summarise_retrieval(records: list[RetrievalRecord], failed: list[FailedItem]) -> SuiteResult:
    metrics: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
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
                samples[f"{mode}/{name}"] = vals
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
        intervals=mean_intervals(samples),
    )
