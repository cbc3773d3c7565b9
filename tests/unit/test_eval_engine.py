"""The eval run loop and the suites' summaries and confidence intervals, without models."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from typer.testing import CliRunner

from tests.records import stored_answer
from verirag.core.settings import Settings
from verirag.generators.params import generation_params
from verirag.pipeline.cli import app
from verirag.pipeline.evaluation import suites
from verirag.pipeline.evaluation.baseline import says_dont_know
from verirag.pipeline.evaluation.datasets import DatasetError
from verirag.pipeline.evaluation.engine import (
    SUITE_SETTINGS,
    SUITES,
    EvalConfig,
    EvalConfigError,
    ItemLog,
    plan,
    prepare_run_dir,
    run_items,
)
from verirag.pipeline.evaluation.runs import Interval, RunSummary
from verirag.pipeline.evaluation.suites import hallucination as halu_suite
from verirag.pipeline.evaluation.suites import run_suite, shared
from verirag.pipeline.evaluation.suites.abstention import answer_bound, summarise_abstention
from verirag.pipeline.evaluation.suites.baseline import BaselineRecord, summarise_baseline
from verirag.pipeline.evaluation.suites.hallucination import HaluRecord, summarise_hallucination
from verirag.pipeline.evaluation.suites.qa import summarise_qa
from verirag.pipeline.evaluation.suites.ragas import RagasRecord, summarise_ragas
from verirag.pipeline.evaluation.suites.retrieval import RetrievalRecord, summarise_retrieval
from verirag.pipeline.evaluation.suites.shared import AnswerRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
SQUAD = FIXTURES / "squad_tiny.json"
HALU = FIXTURES / "halueval_tiny.jsonl"
# Resamples where a test checks metrics, not intervals: threshold metrics cost milliseconds a
# call, a thousand resamples seconds.
FEW = 50


def config(tmp_path: Path, suite: str, data: Path = SQUAD, **kw: object) -> EvalConfig:
    return EvalConfig(suite=suite, data=data, out=tmp_path / "run", **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- planning


def test_plan_checks_suite_against_data(tmp_path: Path) -> None:
    with pytest.raises(EvalConfigError, match="labelled answers"):
        plan(config(tmp_path, "hallucination", SQUAD))
    with pytest.raises(EvalConfigError, match="needs questions"):
        plan(config(tmp_path, "qa", HALU))
    with pytest.raises(EvalConfigError, match="gold answers"):
        plan(config(tmp_path, "qa", FIXTURES / "beir_tiny"))
    with pytest.raises(EvalConfigError, match="unknown suite"):
        plan(config(tmp_path, "speed"))


def test_plan_builds_unanswerable_questions(tmp_path: Path) -> None:
    p = plan(config(tmp_path, "abstention", unanswerable=0.5, seed=1))
    kept = {x.pid for x in p.corpus}
    unanswerable = [i for i in p.items if not i.answerable]
    assert unanswerable and any(i.answerable for i in p.items)
    for item in p.items:
        # unanswerable exactly when none of its gold passages is indexed
        assert item.answerable == bool(item.relevant & kept)


def test_plan_samples_reproducibly(tmp_path: Path) -> None:
    a = plan(config(tmp_path, "qa", limit=3, seed=4))
    b = plan(config(tmp_path, "qa", limit=3, seed=4))
    assert [i.item_id for i in a.items] == [i.item_id for i in b.items]
    assert len(a.items) == 3
    halu = plan(config(tmp_path, "hallucination", HALU, limit=2, seed=1))
    assert len(halu.halu) == 4 and len({h.pair_id for h in halu.halu}) == 2


def test_malformed_dataset_fails_before_models(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a?", "answers": ["x"]}\n{"question": \n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        plan(config(tmp_path, "qa", bad))
    result = CliRunner().invoke(
        app, ["eval", "qa", "--data", str(bad), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "bad.jsonl:2" in result.output
    assert not (tmp_path / "r").exists()  # nothing started


def test_cli_rejects_unknown_format_and_missing_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "qa", "--data", str(SQUAD), "--format", "csv"])
    assert result.exit_code == 2 and "unknown --format" in result.output
    result = runner.invoke(app, ["eval", "retrieval", "--data", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "nope.json" in result.output


def test_run_dir_refuses_other_settings(tmp_path: Path) -> None:
    first = config(tmp_path, "qa", seed=1)
    assert prepare_run_dir(first) is False
    assert prepare_run_dir(first) is True  # same options: resume
    with pytest.raises(EvalConfigError, match="seed"):
        prepare_run_dir(config(tmp_path, "qa", seed=2))


# --------------------------------------------------------------------------- the item loop


def test_run_items_resumes_and_keeps_going(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    calls: list[int] = []

    def work(n: int) -> RetrievalRecord:
        calls.append(n)
        if n == 3:
            raise RuntimeError("boom")
        return RetrievalRecord({"dense": [str(n)]}, [str(n)])

    log: ItemLog[RetrievalRecord] = ItemLog(path, lambda r: RetrievalRecord(**r))
    done = list(run_items(range(5), str, work, log, stage="t", progress=False))
    assert [i for i, _ in done] == ["0", "1", "2", "4"]
    assert list(log.failed) == ["3"] and "RuntimeError: boom" in log.failed["3"].error

    # a torn last line (a crash mid-write) is ignored
    with path.open("a") as handle:
        handle.write('{"id": "9", "ok": tr')
    again: ItemLog[RetrievalRecord] = ItemLog(path, lambda r: RetrievalRecord(**r))
    again.load()
    assert sorted(again.done) == ["0", "1", "2", "4"] and list(again.failed) == ["3"]
    calls.clear()
    list(run_items(range(5), str, work, again, stage="t", progress=False))
    assert calls == [3]  # only the failed item is tried again


def test_interrupt_keeps_finished_items(tmp_path: Path) -> None:
    log: ItemLog[RetrievalRecord] = ItemLog(tmp_path / "i.jsonl", lambda r: RetrievalRecord(**r))

    def work(n: int) -> RetrievalRecord:
        if n == 2:
            raise KeyboardInterrupt
        return RetrievalRecord({}, [])

    with pytest.raises(KeyboardInterrupt):
        list(run_items(range(4), str, work, log, stage="t", progress=False))
    lines = (tmp_path / "i.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["0", "1"]


# --------------------------------------------------------------------------- summaries


def _answer(answerable: bool, decision: str, contains: bool, conf: float = 0.5) -> AnswerRecord:
    return stored_answer(
        answerable=answerable, decision=decision, contains=contains, confidence=conf,
        logprob_confidence=conf, exact_match=float(contains), f1=float(contains),
    )  # fmt: skip


def test_retrieval_summary_hand_computed() -> None:
    records = [
        RetrievalRecord({"dense": ["a", "b"], "bm25": ["b", "a"], "hybrid": ["a"]}, ["a"]),
        RetrievalRecord({"dense": ["c", "d"], "bm25": ["d"], "hybrid": []}, ["d"]),
    ]
    m = summarise_retrieval(records, []).metrics
    assert m["dense/recall@1"] == 0.5 and m["dense/mrr@10"] == pytest.approx(0.75)
    assert m["bm25/recall@1"] == 0.5 and m["bm25/mrr@10"] == pytest.approx(0.75)
    assert m["hybrid/recall@10"] == 0.5 and m["hybrid/ndcg@10"] == 0.5


def test_abstention_summary_hand_computed() -> None:
    records = [
        _answer(False, "abstain", False),  # TP (both rules)
        _answer(False, "review", False),  # TP withheld, FN abstain-only
        _answer(False, "answer", False),  # FN
        _answer(True, "answer", True),  # TN
        _answer(True, "review", True),  # FP withheld
    ]
    result = summarise_abstention(records, [], resamples=FEW)
    m = result.metrics
    assert m["withheld/precision"] == pytest.approx(2 / 3)
    assert m["withheld/recall"] == pytest.approx(2 / 3)
    assert m["abstain/precision"] == 1.0 and m["abstain/recall"] == pytest.approx(1 / 3)
    assert m["unanswerable/delivered"] == pytest.approx(1 / 3)
    assert result.counts["unanswerable"] == 3


def test_answer_bound_hand_computed() -> None:
    # 40 answerable: 20 right (3 sent to review), 12 wrong given, 8 abstained; 30 unanswerable.
    records = (
        [_answer(True, "answer", True)] * 17
        + [_answer(True, "review", True)] * 3
        + [_answer(True, "answer", False)] * 2
        + [_answer(True, "review", False)] * 10
        + [_answer(True, "abstain", False)] * 8
        + [_answer(False, "review", False)] * 29
        + [_answer(False, "answer", True)]  # from memory: the bound delivers it no more
    )
    # At precision 0.95, 20 right answers allow floor(20 / 19) = 1 wrong one delivered: 19
    # answerable withheld (20 not right, less 1) beside all 30 unanswerable.
    bound = answer_bound(records, 0.95)
    assert bound.coverage == pytest.approx(21 / 40)
    assert bound.withheld_precision == pytest.approx(30 / 49)
    # At precision 0.8, 20 right allow 5 wrong; the abstentions can never be delivered.
    assert answer_bound(records, 0.8).withheld_precision == pytest.approx(30 / 45)
    assert answer_bound(records, 0.5).coverage == pytest.approx(32 / 40)
    m = summarise_abstention(records, [], resamples=FEW).metrics
    assert m["bound/coverage"] == pytest.approx(21 / 40)
    assert m["delivered/coverage"] == pytest.approx(19 / 40)
    assert m["delivered/precision"] == pytest.approx(17 / 19)
    # The measured withholding (50 withheld, 29 of them unanswerable) stays under its bound.
    assert m["withheld/precision"] == pytest.approx(29 / 50)
    assert m["withheld/precision"] < m["bound/withheld_precision"]


def test_abstention_own_answer_auroc_labels_as_calibrate_does() -> None:
    records = [
        _answer(True, "answer", True, 0.9),  # right
        _answer(True, "review", False, 0.6),  # wrong: misses the gold answer
        _answer(False, "answer", False, 0.7),  # wrong: given without its paragraph
        _answer(False, "answer", True, 0.95),  # left out: gold from memory, undecidable
        _answer(True, "abstain", False, 0.1),  # left out: no answer given
    ]
    result = summarise_abstention(records, [], resamples=FEW)
    # Ranked 0.9 > 0.7 > 0.6: the one right answer above both wrong ones.
    assert result.metrics["own/confidence_auroc"] == 1.0
    assert result.counts["own answers labelled"] == 3
    # ECE: three single-answer bins, |0.9-1| + |0.7-0| + |0.6-0| over 3.
    assert result.metrics["own/ece"] == pytest.approx((0.1 + 0.7 + 0.6) / 3)


def test_qa_summary_and_decision_mix() -> None:
    records = [_answer(True, "answer", True, 0.9), _answer(True, "review", False, 0.2)]
    result = summarise_qa(records, [], resamples=FEW)
    assert result.metrics["contains_gold"] == 0.5
    assert result.metrics["delivered_accuracy"] == 1.0
    assert result.metrics["share_review"] == 0.5
    assert result.metrics["selective/confidence_auroc"] == 1.0


THRESHOLDS = SimpleNamespace(claim_support=0.5, answer_min=0.8, given_min=0.4)


def _halu_records(answers: int) -> list[HaluRecord]:
    """Pairs of a right then a hallucinated answer; the judge mostly tells them apart."""
    rng = random.Random(0)
    records = []
    for i in range(answers):
        hallucinated = i % 2 == 1
        base = 0.3 if hallucinated else 0.7
        judge = None if i % 13 == 0 else min(1.0, max(0.0, base + rng.uniform(-0.4, 0.4)))
        records.append(
            HaluRecord(str(i // 2), hallucinated, rng.random(), judge, float(i % 3 != 0),
                       judge or 0.5, None, (judge or 0.5) * 0.9)
        )  # fmt: skip
    return records


def test_hallucination_summary_matches_sklearn() -> None:
    records = _halu_records(60)
    thresholds = THRESHOLDS
    result = summarise_hallucination(records, [], thresholds, resamples=FEW)
    labels = [r.hallucinated for r in records]
    danger = [1 - (0.5 if r.judge is None else r.judge) for r in records]
    assert result.metrics["judge/auroc"] == pytest.approx(roc_auc_score(labels, danger))
    assert result.counts["judge_undecided"] == sum(r.judge is None for r in records)
    assert "logprob/precision_at_shipped" not in result.metrics  # no cut of its own
    flagged = [(0.5 if r.judge is None else r.judge) < 0.5 for r in records]
    tp = sum(f and y for f, y in zip(flagged, labels, strict=True))
    assert result.metrics["judge/precision_at_shipped"] == pytest.approx(tp / sum(flagged))
    assert 0.0 <= result.metrics["combined/ece"] <= 1.0
    # The combined score is held to the given-answer cut, not the own answers' delivery cut.
    combined_flag = [r.combined < 0.4 for r in records]
    assert result.metrics["combined/balanced_accuracy_at_shipped"] == pytest.approx(
        balanced_accuracy_score(labels, combined_flag)
    )
    assert {p.title.split(":")[0] for p in result.plots} >= {"ROC", "Reliability"}


def test_ragas_failures_are_listed_not_averaged() -> None:
    a = _answer(True, "answer", True)
    records = [
        RagasRecord(a, {"faithfulness": 1.0, "context_recall": 0.5}, {}, {"faithfulness": 2.0}),
        RagasRecord(
            a,
            {"context_recall": 1.0},
            {"faithfulness": "ValueError: did not parse"},
            {"faithfulness": 4.0, "context_recall": 1.0},
        ),
    ]
    result = summarise_ragas(records, [], ["faithfulness", "context_recall"], 1.0)
    assert result.metrics["faithfulness"] == 1.0  # the failed sample is not a 0
    assert result.metrics["faithfulness/failed"] == 1.0
    assert result.metrics["context_recall"] == 0.75
    # A failed metric still took its time; a record without timings (older runs) is skipped.
    assert result.metrics["faithfulness/seconds_per_sample"] == 3.0
    assert result.metrics["context_recall/seconds_per_sample"] == 1.0
    assert result.tables[0].rows[0][-1] == 3.0
    assert [f.stage for f in result.failed] == ["faithfulness"]


def test_baseline_summary_side_by_side() -> None:
    records = [
        BaselineRecord(_answer(True, "answer", True), "It is x.", False, True, 2.0),
        BaselineRecord(_answer(False, "abstain", False), "It is y.", False, False, 2.0),
        BaselineRecord(_answer(False, "answer", False), "I don't know.", True, False, 2.0),
    ]
    m = summarise_baseline(records, []).metrics
    assert m["verirag/accuracy"] == 1.0 and m["langchain/accuracy"] == 1.0
    assert m["verirag/unsupported_delivered"] == 0.5  # 2 delivered, 1 unanswerable
    assert m["langchain/unsupported_delivered"] == 0.5
    assert m["verirag/abstention_unanswerable"] == 0.5
    assert m["langchain/abstention_unanswerable"] == 0.5


def test_baseline_chart_plots_what_its_series_are_named() -> None:
    # verirag answers every unanswerable question, LangChain declines both; of verirag's three
    # delivered answers, two are wrong (the unanswerable ones).
    records = [
        BaselineRecord(_answer(True, "answer", True), "It is x.", False, True, 2.0),
        BaselineRecord(_answer(False, "answer", False), "I don't know.", True, False, 2.0),
        BaselineRecord(_answer(False, "answer", False), "I don't know.", True, False, 2.0),
    ]
    (chart,) = [p for p in summarise_baseline(records, []).plots if p.kind == "bar"]
    series = {s.label: dict(zip(s.x, s.y, strict=True)) for s in chart.series}
    on_unanswerable = series["delivered on unanswerable questions"]
    assert on_unanswerable == {"verirag": 1.0, "langchain": 0.0}
    unsupported = series["unsupported among delivered answers"]
    assert unsupported["verirag"] == 2 / 3 and unsupported["langchain"] == 0.0


# --------------------------------------------------------------------------- intervals


def _brackets(result: Any, keys: Any) -> None:
    for key in keys:
        interval = result.intervals[key]
        # The tolerance: numpy's and Python's sums of the same values may differ in the last bit.
        assert interval.low - 1e-12 <= result.metrics[key] <= interval.high + 1e-12, key


def test_retrieval_intervals_bracket_each_metric_and_repeat() -> None:
    records = [
        RetrievalRecord(
            {"dense": ["a"] if i % 2 else ["b"], "bm25": ["a"], "hybrid": ["b", "a"]}, ["a"]
        )
        for i in range(40)
    ]
    result = summarise_retrieval(records, [])
    assert set(result.intervals) == set(result.metrics)
    _brackets(result, result.metrics)
    # Half the questions found at rank 1, of 40: about 0.5 +- 0.16 (normal approximation).
    dense = result.intervals["dense/recall@1"]
    assert 0.3 < dense.low < 0.4 and 0.6 < dense.high < 0.7
    # Every question alike: nothing to be unsure about.
    assert result.intervals["bm25/recall@1"] == Interval(1.0, 1.0)
    assert result.intervals["hybrid/mrr@10"] == Interval(0.5, 0.5)
    # A fixed seed: a resumed run's summary has the same intervals.
    assert summarise_retrieval(records, []).intervals == result.intervals
    assert summarise_retrieval(records[:1], []).intervals == {}  # one question: none


def test_hallucination_intervals_resample_whole_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _halu_records(40)
    seen: list[list[HaluRecord]] = []
    real = halu_suite._signal_metrics

    def spy(picked: list[HaluRecord], name: str, cut: float | None) -> dict[str, float]:
        if name == "logprob":
            seen.append(list(picked))
        return real(picked, name, cut)

    monkeypatch.setattr(halu_suite, "_signal_metrics", spy)
    result = summarise_hallucination(records, [], THRESHOLDS, resamples=100)
    full, *resampled = seen
    assert full == records and len(resampled) == 100
    for picked in resampled:
        # Whole pairs drawn: each question's right and hallucinated answer together.
        assert len(picked) == len(records)
        assert sum(r.hallucinated for r in picked) == len(picked) // 2
        assert all(n % 2 == 0 for n in Counter(r.pair_id for r in picked).values())
    assert len({tuple(r.pair_id for r in picked) for picked in resampled}) > 90
    assert set(result.intervals) == set(result.metrics)
    _brackets(result, [f"{s}/auroc" for s in halu_suite.SIGNALS])


def test_qa_intervals() -> None:
    records = [_answer(True, "answer", i % 3 != 0, conf=i / 30) for i in range(30)]
    records += [_answer(True, "abstain", False, conf=0.1)] * 5
    result = summarise_qa(records, [], resamples=200)
    assert set(result.intervals) == set(result.metrics)
    _brackets(result, ["contains_gold", "f1", "delivered_accuracy", "share_answer"])
    assert result.intervals["share_review"] == Interval(0.0, 0.0)
    assert result.intervals["latency_p95"] == Interval(1.0, 1.0)


def test_abstention_intervals() -> None:
    records = [
        _answer(False, "abstain", False, 0.2),
        _answer(False, "review", False, 0.4),
        _answer(False, "answer", False, 0.6),
        _answer(True, "answer", True, 0.9),
        _answer(True, "review", True, 0.5),
    ] * 6
    result = summarise_abstention(records, [], resamples=200)
    assert set(result.intervals) == set(result.metrics)
    _brackets(result, ["unanswerable/delivered", "answerable/f1", "withheld/recall"])
    assert result.intervals["answerable/contains_gold"] == Interval(1.0, 1.0)


def test_baseline_intervals_per_system() -> None:
    records = [
        BaselineRecord(_answer(True, "answer", True), "It is x.", False, True, 2.0),
        BaselineRecord(_answer(True, "answer", False), "It is z.", False, False, 3.0),
        BaselineRecord(_answer(False, "abstain", False), "It is y.", False, False, 1.0),
        BaselineRecord(_answer(False, "answer", False), "I don't know.", True, False, 2.5),
    ] * 5
    result = summarise_baseline(records, [])
    assert set(result.intervals) == set(result.metrics)
    for system in ("verirag", "langchain"):
        _brackets(result, [f"{system}/accuracy", f"{system}/unsupported_delivered"])
    assert result.intervals["verirag/latency_p50"] == Interval(1.0, 1.0)  # _answer's seconds
    latency = result.intervals["langchain/latency_p50"]
    assert 1.0 <= latency.low <= result.metrics["langchain/latency_p50"] <= latency.high <= 3.0


def test_ragas_intervals_only_over_scored_samples() -> None:
    a = _answer(True, "answer", True)
    records = [
        RagasRecord(a, {"faithfulness": 1.0, "context_recall": 0.5}, {}, {"faithfulness": 2.0}),
        RagasRecord(a, {"context_recall": 1.0}, {"faithfulness": "E"}, {"faithfulness": 4.0}),
    ]
    intervals = summarise_ragas(records, [], ["faithfulness", "context_recall"], 1.0).intervals
    assert set(intervals) == {"context_recall", "faithfulness/seconds_per_sample"}
    assert intervals["context_recall"].low >= 0.5 and intervals["context_recall"].high <= 1.0


# --------------------------------------------------------------------------- wiring


def test_a_run_measures_every_signal_when_asked_and_says_so(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--all-signals`: the pipeline measures the signals no calibration weighs too."""
    measured: list[bool] = []

    class StopError(Exception):
        pass

    class StandIn:
        def __init__(self, run_settings: Settings, measure_all: bool = False) -> None:
            measured.append(measure_all)
            raise StopError

    monkeypatch.setattr("verirag.pipeline.rag.RagPipeline", StandIn)
    monkeypatch.setattr(shared, "build_index", lambda plan_, settings_: None)
    for all_signals in (True, False):
        the_plan = plan(config(tmp_path, "qa", limit=1, all_signals=all_signals))
        with pytest.raises(StopError):
            shared.ask_items(the_plan, settings, False, "qa")
    assert measured == [True, False]
    # A run that measures them says so in its config; one that does not resumes as before.
    assert config(tmp_path, "qa", all_signals=True).identity()["all_signals"] is True
    assert "all_signals" not in config(tmp_path, "qa").identity()


def test_every_suite_has_a_runner_and_its_settings() -> None:
    assert set(suites.SUITE_RUNNERS) == set(SUITES) == set(SUITE_SETTINGS)


def test_qa_suite_asks_through_rag_with_the_runs_params(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without models: a stand-in `RagPipeline` answers each question with its gold answer."""
    from verirag.pipeline.evaluation.engine import summarise

    the_plan = plan(config(tmp_path, "qa", limit=3, seed=4, max_tokens=48, k=2))
    gold = {i.question: i.answers[0] for i in the_plan.items}
    asked: list[tuple[str, str, int, Any]] = []

    class StandIn:
        def __init__(self, run_settings: Settings, **_: object) -> None:
            assert run_settings.data_dir == tmp_path / "run" / "state"

        def warm_up(self) -> None:
            pass

        def close(self) -> None:
            pass

        def ask(self, question: str, collection: str, k: int, params: Any) -> Any:
            asked.append((question, collection, k, params))
            text = gold[question]
            return SimpleNamespace(
                text=f"It is {text} [1].", short_answer=text, short_answer_extracted=False,
                named_short_answer=text,
                decision="answer", confidence=0.9, logprob_confidence=0.8,
                claims=[SimpleNamespace(text=text, score=0.9, missing_terms=())], flagged=[],
                citations=[SimpleNamespace(snippet="source")], source_lift=0.5,
                answer_check=None, question_alignment=None, answer_anchor=None,
                retrieval_confidence=None, rests_support=None, sample_agreement=None,
            )  # fmt: skip

    monkeypatch.setattr("verirag.pipeline.rag.RagPipeline", StandIn)
    monkeypatch.setattr(shared, "build_index", lambda plan_, settings_: None)
    prepare_run_dir(the_plan.config)
    result = run_suite(the_plan, settings, progress=False)
    assert result.counts["questions"] == 3 and result.metrics["contains_gold"] == 1.0
    # EM and F1 score the short answer, not the sentence around it.
    assert result.metrics["exact_match"] == 1.0 and result.metrics["f1"] == 1.0
    assert [a[:3] for a in asked] == [(q, "eval", 2) for q in gold]
    # One builder for generation parameters, with the run's token limit.
    run = shared.run_settings(the_plan.config, settings)
    assert all(a[3] == generation_params(run, max_tokens=48) for a in asked)
    assert asked[0][3].max_tokens == 48 != settings.max_tokens
    # Resumed: nothing is asked again and the same summary is rebuilt from items.jsonl.
    asked.clear()
    again = run_suite(the_plan, settings, progress=False)
    assert asked == [] and again == result
    summary = summarise(the_plan.config, the_plan, again, 1.0)
    summary.save(tmp_path / "summary.json")
    assert RunSummary.load(tmp_path / "summary.json").result == result


@pytest.mark.parametrize(
    ("text", "declines"),
    [
        ("I don't know.", True),
        ("The context does not mention the capital.", True),
        ("There is no information about that.", True),
        ("", True),
        ("The lamp lasts 30 hours.", False),
        ("Knowledge of the battery shows it lasts 6 hours.", False),
    ],
)
def test_baseline_decline_detection(text: str, declines: bool) -> None:
    assert says_dont_know(text) is declines


def test_fusions_see_the_live_depth_of_candidates() -> None:
    """The fusion table fuses the first `depth` recorded candidates, as the live retriever
    fuses its `retrieval_k`: a relevant chunk only BM25 found at rank 3 is out of reach at
    depth 2, and min-max normalisation changes with the list's length."""
    dense = [[i, f"d{i}", 1.0 - i / 10] for i in range(1, 6)]
    bm25 = [[10, "x", 9.0], [11, "y", 8.0], [12, "rel", 7.0]]
    record = RetrievalRecord(
        {m: ["d1"] for m in ("dense", "bm25", "hybrid")},
        ["rel"],
        candidates={"dense": dense, "bm25": bm25},
    )
    deep = summarise_retrieval([record, record], [], depth=3).metrics
    shallow = summarise_retrieval([record, record], [], depth=2).metrics
    assert deep["fusion/rrf 1:1/ndcg@10"] > 0.0
    assert shallow["fusion/rrf 1:1/ndcg@10"] == 0.0
