"""The six evaluation suites, one module each. Each runs items through verirag's own pipelines
(the evaluator never reimplements a stage) and turns the per-item records into a `SuiteResult`.

Per-item records are small dataclasses, stored in the run's `items.jsonl`; every metric and its
confidence interval is computed from them, so a summary can be rebuilt from a finished (or
resumed) run.
"""

from __future__ import annotations

from collections.abc import Callable

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.engine import EvalPlan
from verirag.pipeline.evaluation.runs import SuiteResult
from verirag.pipeline.evaluation.suites.abstention import abstention_suite, summarise_abstention
from verirag.pipeline.evaluation.suites.baseline import (
    BaselineRecord,
    baseline_suite,
    summarise_baseline,
)
from verirag.pipeline.evaluation.suites.hallucination import (
    HaluRecord,
    hallucination_suite,
    summarise_hallucination,
)
from verirag.pipeline.evaluation.suites.qa import qa_suite, summarise_qa
from verirag.pipeline.evaluation.suites.ragas import RagasRecord, ragas_suite, summarise_ragas
from verirag.pipeline.evaluation.suites.retrieval import (
    RetrievalRecord,
    retrieval_suite,
    summarise_retrieval,
)
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, run_settings

__all__ = [
    "SUITE_RUNNERS",
    "AnswerRecord",
    "BaselineRecord",
    "HaluRecord",
    "RagasRecord",
    "RetrievalRecord",
    "run_suite",
    "summarise_abstention",
    "summarise_baseline",
    "summarise_hallucination",
    "summarise_qa",
    "summarise_ragas",
    "summarise_retrieval",
]

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
