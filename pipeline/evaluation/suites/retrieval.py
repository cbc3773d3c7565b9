"""Retrieval: each question searched with every retriever, and with the default fusion
reranked; recall, MRR and nDCG of the
documents found against the question's relevant passages, query latency, and the fusion
candidates compared on the same scored candidate lists (recorded per question, so a new
fusion can be measured again without the models)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

# Each side alone, then the default fusion of every side the collection has; "splade" only
# where the collection keeps a learned sparse index.
MODES: tuple[SearchMode, ...] = ("dense", "bm25", "splade", "hybrid")
RERANKED = "hybrid+rerank"  # the default fusion's top candidates ordered by the reranker
ROWS = (*MODES, RERANKED)
SIDES = ("dense", "bm25", "splade")
DEPTH = 100  # scored candidates recorded per retriever
_THIRD = 1 / 3
# Fusions compared on the recorded candidates: (name, method, weights of dense, BM25 and
# SPLADE: shares for convex and zscore, RRF weights for rrf; 0 = the side is left out).
FUSIONS: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    ("rrf 1:1", "rrf", (1.0, 1.0, 0.0)),
    ("rrf 1:2", "rrf", (1.0, 2.0, 0.0)),
    ("rrf 1:3", "rrf", (1.0, 3.0, 0.0)),
    ("convex 0.3", "convex", (0.3, 0.7, 0.0)),
    ("convex 0.5", "convex", (0.5, 0.5, 0.0)),
    ("convex 0.7", "convex", (0.7, 0.3, 0.0)),
    ("zscore 0.3", "zscore", (0.3, 0.7, 0.0)),
    ("zscore 0.5", "zscore", (0.5, 0.5, 0.0)),
    ("zscore 0.7", "zscore", (0.7, 0.3, 0.0)),
    ("adaptive", "adaptive", (1.0, 1.0, 0.0)),
    ("zscore BM25 + SPLADE", "zscore", (0.0, 0.5, 0.5)),
    ("zscore dense + SPLADE", "zscore", (0.5, 0.0, 0.5)),
    ("rrf 1:1:1 (three sides)", "rrf", (1.0, 1.0, 1.0)),
    ("convex thirds (three sides)", "convex", (_THIRD, _THIRD, _THIRD)),
    ("zscore thirds (three sides)", "zscore", (_THIRD, _THIRD, _THIRD)),
)


@dataclass(frozen=True)
class RetrievalRecord:
    ranked: dict[str, list[str]]  # mode -> document ids, best first, deduplicated
    relevant: list[str]
    # Scored candidates [chunk id, doc id, score], best first, per retriever ("dense", "bm25",
    # and "splade" where the collection has it).
    candidates: dict[str, list[list[Any]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # mode -> query latency


def retrieval_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    rag = RagPipeline(settings)
    items = [i for i in plan.items if i.relevant]
    doc_of = {
        int(c): str(d)
        for c, d in rag.store(COLLECTION).db.execute("SELECT chunk_id, doc_id FROM chunks")
    }
    rag.search("warm up", COLLECTION, 1)  # the encoders load outside the timings
    retriever = rag.retriever(COLLECTION)
    modes = [m for m in MODES if m != "splade" or retriever.splade is not None]

    def work(item: EvalItem) -> RetrievalRecord:
        ranked: dict[str, list[str]] = {}
        seconds: dict[str, float] = {}
        for mode in modes:
            started = time.perf_counter()
            hits = rag.search(item.question, COLLECTION, 30, mode=mode, rerank=False)
            seconds[mode] = time.perf_counter() - started
            ranked[mode] = dedupe([h.doc_id for h in hits])[:10]
        started = time.perf_counter()
        hits = rag.search(item.question, COLLECTION, 30, mode="hybrid", rerank=True)
        seconds[RERANKED] = time.perf_counter() - started
        ranked[RERANKED] = dedupe([h.doc_id for h in hits])[:10]
        found = retriever.candidates(item.question, DEPTH)
        candidates = {
            side: [[cid, doc_of.get(cid, ""), score] for cid, score in getattr(found, side)]
            for side in SIDES
            if side != "splade" or retriever.splade is not None
        }
        return RetrievalRecord(ranked, sorted(item.relevant), candidates, seconds)

    log: ItemLog[RetrievalRecord] = ItemLog(
        plan.config.out / "items.jsonl", lambda raw: RetrievalRecord(**raw)
    )
    log.load()
    for _ in run_items(items, lambda i: i.item_id, work, log, stage="retrieval", progress=progress):
        pass
    rag.close()
    records = [log.done[i.item_id] for i in items if i.item_id in log.done]
    return summarise_retrieval(
        records, failed_list(log, [i.item_id for i in items]), settings.retrieval_k
    )


def summarise_retrieval(
    records: list[RetrievalRecord], failed: list[FailedItem], depth: int = DEPTH
) -> SuiteResult:
    """`depth`: the candidates per retriever that the fusions see, as the live retriever's
    `retrieval_k` (min-max normalisation depends on how deep the list goes)."""
    metrics: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    rows: list[list[Cell]] = []
    modes = [m for m in ROWS if records and all(m in r.ranked for r in records)]
    for mode in modes:
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
        seconds = [r.seconds[mode] for r in records if mode in r.seconds]
        if seconds:
            metrics[f"{mode}/latency_p50_ms"] = float(np.percentile(seconds, 50) * 1000)
            metrics[f"{mode}/latency_p95_ms"] = float(np.percentile(seconds, 95) * 1000)
        rows.append(
            [
                mode,
                *(metrics.get(f"{mode}/{n}") for n in values),
                metrics.get(f"{mode}/latency_p50_ms"),
                metrics.get(f"{mode}/latency_p95_ms"),
            ]
        )
    # The default against BM25 alone, question by question (its interval says whether the
    # default is ever below BM25).
    for better, worse in (("hybrid", "bm25"), (RERANKED, "bm25"), (RERANKED, "hybrid")):
        diffs = [
            ndcg_at_k(r.ranked[better], r.relevant, 10) - ndcg_at_k(r.ranked[worse], r.relevant, 10)
            for r in records
            if better in r.ranked and worse in r.ranked
        ]
        if diffs:
            key = f"{'rerank' if better == RERANKED else better}_minus_{worse}/ndcg@10"
            metrics[key] = mean(diffs)
            samples[key] = diffs
    fusion_rows = _fusion_rows(records, metrics, samples, depth)
    columns = [
        "retriever", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10",
        "p50 ms", "p95 ms",
    ]  # fmt: skip
    plot = Plot(
        "bar",
        "Retrieval quality by retriever",
        "metric",
        "score",
        [
            Series(mode, columns[1:6], [float(v or 0.0) for v in row[1:6]])
            for mode, row in zip(modes, rows, strict=True)
        ],
    )
    tables = [Table("Retrieval", columns, rows)]
    if fusion_rows:
        tables.append(
            Table(
                "Fusion candidates on the same scored candidate lists (nDCG@10 and recall@5; "
                "minus BM25: the mean per-question difference)",
                ["fusion", "nDCG@10", "recall@5", "nDCG@10 minus BM25"],
                fusion_rows,
            )
        )
    return SuiteResult(
        "retrieval",
        metrics,
        tables=tables,
        plots=[plot],
        failed=failed,
        counts={"questions": len(records), "failed": len(failed)},
        intervals=mean_intervals(samples),
    )


def _fusion_rows(
    records: list[RetrievalRecord],
    metrics: dict[str, float],
    samples: dict[str, list[float]],
    depth: int,
) -> list[list[Cell]]:
    """Each fusion of `FUSIONS` applied to the top `depth` recorded candidates of every
    question, as the live retriever fuses them."""
    from verirag.retrievers.fusion import fuse_sides

    scored = [r for r in records if r.candidates.get("dense") or r.candidates.get("bm25")]
    if not scored:
        return []
    has_splade = all("splade" in r.candidates for r in scored)
    rows: list[list[Cell]] = []
    bm25 = [ndcg_at_k(r.ranked["bm25"], r.relevant, 10) for r in scored]
    for name, method, weights in FUSIONS:
        used = [i for i, w in enumerate(weights) if w > 0 or (method == "adaptive" and i < 2)]
        if 2 in used and not has_splade:
            continue
        ndcg, r5 = [], []
        for r in scored:
            doc = {int(c): str(d) for side in SIDES for c, d, _ in r.candidates.get(side, [])}
            sides = [
                [(int(c), float(s)) for c, _, s in r.candidates[SIDES[i]][:depth]] for i in used
            ]
            fused = fuse_sides(method, sides, [weights[i] for i in used], 60)
            ranked = dedupe([doc[c] for c, _ in fused])[:10]
            ndcg.append(ndcg_at_k(ranked, r.relevant, 10))
            r5.append(recall_at_k(ranked, r.relevant, 5))
        key = f"fusion/{name}"
        metrics[f"{key}/ndcg@10"] = mean(ndcg)
        metrics[f"{key}/recall@5"] = mean(r5)
        diff = [a - b for a, b in zip(ndcg, bm25, strict=True)]
        metrics[f"{key}/minus_bm25"] = mean(diff)
        samples[f"{key}/ndcg@10"] = ndcg
        samples[f"{key}/minus_bm25"] = diff
        rows.append([name, mean(ndcg), mean(r5), mean(diff)])
    return rows
