"""Baseline: the same questions through verirag and through a plain LangChain RAG chain with
the same embedder and generator; accuracy, unsupported answers, withholding and latency side
by side."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets import EvalItem
from verirag.pipeline.evaluation.engine import EvalPlan, ItemLog, failed_list, run_items
from verirag.pipeline.evaluation.metrics import answer_contains, mean
from verirag.pipeline.evaluation.runs import (
    Cell,
    FailedItem,
    Interval,
    Plot,
    Series,
    SuiteResult,
    Table,
)
from verirag.pipeline.evaluation.suites.shared import (
    COLLECTION,
    AnswerRecord,
    answer_record,
    build_index,
    latency_intervals,
    latency_plot,
    mean_intervals,
    percentile,
)


@dataclass(frozen=True)
class BaselineRecord:
    verirag: AnswerRecord
    langchain_text: str
    langchain_withheld: bool
    langchain_contains: bool
    langchain_seconds: float


def _decode(raw: dict[str, Any]) -> BaselineRecord:
    return BaselineRecord(**{**raw, "verirag": AnswerRecord(**raw["verirag"])})


def baseline_suite(plan: EvalPlan, settings: Settings, progress: bool) -> SuiteResult:
    from verirag.generators.params import generation_params
    from verirag.pipeline.evaluation.baseline import LangChainRag, says_dont_know
    from verirag.pipeline.rag import RagPipeline

    build_index(plan, settings)
    rag = RagPipeline(settings)
    chain = LangChainRag(plan.corpus, settings, k=plan.config.k, max_tokens=plan.config.max_tokens)
    # Both systems load their models (and LangChain builds its FAISS store) before timing.
    rag.warm_up()
    chain.warm_up()
    params = generation_params(settings, max_tokens=plan.config.max_tokens)

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

    log: ItemLog[BaselineRecord] = ItemLog(plan.config.out / "items.jsonl", _decode)
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


def _system_samples(view: _SystemView, answerable: list[bool]) -> dict[str, list[float]]:
    """The per-question outcomes each of a system's shares is the mean of."""
    triples = list(zip(view.delivered, view.correct, answerable, strict=True))
    return {
        # accuracy: answerable questions answered (delivered) with a gold answer in the text
        "accuracy": [float(d and c) for d, c, a in triples if a],
        # unsupported delivered: delivered answers that are wrong (unanswerable: always wrong)
        "unsupported_delivered": [float(not (c and a)) for d, c, a in triples if d],
        "abstention_unanswerable": [float(not d) for d, _, a in triples if not a],
        "withheld_answerable": [float(not d) for d, _, a in triples if a],
    }


def _system_intervals(name: str, view: _SystemView, answerable: list[bool]) -> dict[str, Interval]:
    samples = _system_samples(view, answerable)
    return {
        **mean_intervals({f"{name}/{k}": v for k, v in samples.items()}),
        **latency_intervals(f"{name}/", view.seconds),
    }


def summarise_baseline(records: list[BaselineRecord], failed: list[FailedItem]) -> SuiteResult:
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
    intervals: dict[str, Interval] = {}
    rows: list[list[Cell]] = []
    for name, view in systems.items():
        samples = _system_samples(view, answerable)
        acc, wrong = samples["accuracy"], samples["unsupported_delivered"]
        withheld_unans = samples["abstention_unanswerable"]
        withheld_ans = samples["withheld_answerable"]
        row: dict[str, float | None] = {
            "accuracy": mean(acc) if acc else None,
            "unsupported_delivered": mean(wrong) if wrong else 0.0,
            "abstention_unanswerable": mean(withheld_unans) if withheld_unans else None,
            "withheld_answerable": mean(withheld_ans) if withheld_ans else None,
            "latency_p50": percentile(view.seconds, 0.5) if view.seconds else None,
            "latency_p95": percentile(view.seconds, 0.95) if view.seconds else None,
        }
        metrics.update({f"{name}/{k}": v for k, v in row.items() if v is not None})
        intervals.update(_system_intervals(name, view, answerable))
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
            latency_plot({n: v.seconds for n, v in systems.items()}),
            Plot(
                "bar",
                "Wrong answers delivered (lower is better)",
                "system",
                "share",
                [
                    # Each series is what its name says: the share of unanswerable questions
                    # that got an answer, and the share of delivered answers that are wrong.
                    Series(
                        "delivered on unanswerable questions",
                        list(systems),
                        [
                            1.0 - metrics[f"{n}/abstention_unanswerable"]
                            if f"{n}/abstention_unanswerable" in metrics
                            else 0.0
                            for n in systems
                        ],
                    ),
                    Series(
                        "unsupported among delivered answers",
                        list(systems),
                        [metrics.get(f"{n}/unsupported_delivered", 0.0) for n in systems],
                    ),
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
        intervals=intervals,
    )
