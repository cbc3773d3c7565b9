"""`verirag eval` end to end: every suite on about 20 items of the committed public-data
samples (tests/fixtures/public_sample) with the real bundled models, through the CLI, and its
report renders. Small generators keep CI time down; the figures worth quoting come from
`make eval` on the full data and the closing notes' larger runs. The bounds were measured on
the samples (see each test)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import HALUEVAL_SAMPLE as HALUEVAL
from tests.conftest import MODEL_CACHE, PUBLIC_SAMPLE
from tests.conftest import SQUAD_SAMPLE as SQUAD
from verirag.pipeline.cli import app
from verirag.pipeline.evaluation.runs import RunSummary

pytestmark = pytest.mark.integration

SMALL = "smollm2-135m"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VERIRAG_MODEL_CACHE", str(MODEL_CACHE))


def run_eval(suite: str, out: Path, *args: str) -> RunSummary:
    result = CliRunner().invoke(
        app, ["eval", suite, "--out", str(out), "--no-progress", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "report:" in result.output
    summary = RunSummary.load(out)
    _check_report(out, summary)
    return summary


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images += 1


def _check_report(out: Path, summary: RunSummary) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(html)
    assert parser.images == len(summary.result.plots)
    assert "https://" not in html and "<script" not in html
    assert (out / "summary.md").read_text().startswith("#")
    lines = (out / "items.jsonl").read_text().splitlines()
    assert all(json.loads(x)["id"] for x in lines)


def test_retrieval_suite(tmp_path: Path) -> None:
    s = run_eval(
        "retrieval", tmp_path / "r", "--data", str(SQUAD), "--limit", "20", "--seed", "21",
        "--distractors", "60",
    )  # fmt: skip
    m = s.result.metrics
    print(
        "\nSQuAD sample retrieval, 20 questions (seed 21), 60 distractors: "
        + ", ".join(
            f"{k} nDCG@10 {m[k + '/ndcg@10']:.3f}"
            for k in ("dense", "bm25", "splade", "hybrid", "hybrid+rerank")
        )
    )
    assert s.dataset.items == 20 and s.result.counts["questions"] == 20
    for mode in ("dense", "bm25", "splade", "hybrid", "hybrid+rerank"):
        # Measured 0.935 to 1.000 on the sample (dense 0.982, BM25 0.935, hybrid 1.000): room
        # for a question or two more lost at the top, not for a broken retriever.
        assert 0.85 < m[f"{mode}/ndcg@10"] <= 1.0
        assert m[f"{mode}/recall@1"] <= m[f"{mode}/recall@5"] <= m[f"{mode}/recall@10"]


def test_hallucination_suite(tmp_path: Path) -> None:
    """14 HaluEval pairs (seed 11) with Qwen2.5-0.5B: the combined signal must detect
    hallucinated answers well, and better than the generator's logprobs alone."""
    s = run_eval(
        "hallucination", tmp_path / "h", "--data", str(HALUEVAL), "--limit", "14",
        "--seed", "11", "--generator", "qwen2.5-0.5b",
    )  # fmt: skip
    m = s.result.metrics
    print(
        "\nHaluEval 14 pairs (seed 11), 0.5B AUROC: "
        + ", ".join(
            f"{k} {m[k + '/auroc']:.3f}" for k in ("logprob", "judge", "lexical", "combined")
        )
    )
    assert s.result.counts["answers"] == 28 and not s.result.failed
    # Measured on the sample (2026-12-03): combined 0.770, logprob 0.401 (judge 0.852,
    # lexical 0.786). Combined is the given-answer model, which reads source lift alone since
    # the 0.5B refit chose its signals on QA and summaries together (support + lift gave 0.908
    # here, and 0.48 on summaries). On 28 answers one AUROC has a standard error near 0.06.
    assert m["combined/auroc"] >= 0.70
    assert m["combined/auroc"] > m["logprob/auroc"]
    assert "judge/precision_at_shipped" in m and 0.0 <= m["combined/ece"] <= 1.0


def test_hallucination_suite_on_news_summaries(tmp_path: Path) -> None:
    """HaluEval summarization, the set the given-answer model was not fitted on (it was fitted
    on HaluEval QA): right and hallucinated summaries of news documents, 3 pairs (seed 11)
    with Qwen2.5-0.5B. The suite runs on it unchanged and reports every signal, the given-
    answer model's inputs (support, lift) included. No bound on the AUROC: on 100 pairs of
    the full file the QA-fitted blend is at chance there and only source lift holds (0.74,
    bench/RESULTS.md), and 6 answers could not show that anyway."""
    data = PUBLIC_SAMPLE / "halueval_summarization" / "summarization.jsonl"
    s = run_eval(
        "hallucination", tmp_path / "s", "--data", str(data), "--limit", "3",
        "--seed", "11", "--generator", "qwen2.5-0.5b",
    )  # fmt: skip
    m = s.result.metrics
    print(
        "\nHaluEval summarization 3 pairs (seed 11), 0.5B AUROC: "
        + ", ".join(
            f"{k} {m[k + '/auroc']:.3f}" for k in ("logprob", "judge", "lexical", "combined")
        )
    )
    assert s.result.counts["answers"] == 6 and not s.result.failed
    for signal in ("logprob", "judge", "lexical", "support", "lift", "combined"):
        assert 0.0 <= m[f"{signal}/auroc"] <= 1.0, signal
    assert "combined/precision_at_shipped" in m and 0.0 <= m["combined/ece"] <= 1.0


def test_qa_resume_and_compare(tmp_path: Path) -> None:
    args = ["--data", str(SQUAD), "--limit", "6", "--seed", "22", "--distractors", "30"]
    first = run_eval("qa", tmp_path / "a", *args, "--generator", SMALL, "--max-tokens", "48")
    assert first.result.counts["questions"] == 6
    mix = sum(first.result.metrics[f"share_{d}"] for d in ("answer", "review", "abstain"))
    assert mix == pytest.approx(1.0)
    before = (tmp_path / "a" / "items.jsonl").read_text()
    # Same --out and options: resumes; nothing is asked again.
    again = run_eval("qa", tmp_path / "a", *args, "--generator", SMALL, "--max-tokens", "48")
    assert (tmp_path / "a" / "items.jsonl").read_text() == before
    assert again.result.metrics == first.result.metrics
    # Other options into the same directory are refused.
    refused = CliRunner().invoke(
        app, ["eval", "qa", "--out", str(tmp_path / "a"), *args, "--generator", "qwen2.5-0.5b"]
    )
    assert refused.exit_code == 2 and "generator" in refused.output
    compared = CliRunner().invoke(
        app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "a")]
    )
    assert compared.exit_code == 0 and "f1" in compared.output


def test_abstention_suite(tmp_path: Path) -> None:
    """12 SQuAD questions (seed 5) with Qwen2.5-0.5B, half with their paragraph left out of
    the index: answers come from the sources, and most unanswerable ones are held back.

    Asked with the answer length, context size and k the shipped calibration was fitted and
    measured with (defaults, k 4): an answer is labelled right when its cited text holds a
    gold answer, and a 48-token cut (this test's setting until 2026-12-06) ended cited
    answers before their gold, labelling a right answer wrong (its short answer, "2.8%",
    was the gold). The sample moves whenever a shipped calibration excludes ids that are in
    the fixture (`verirag eval` never samples them). Measured on the sample drawn after the
    0.5B's version 8 (2026-12-06): answerable F1 0.351, contains 0.667; unanswerable F1
    0.000, contains 0.000; withheld recall 1.000; delivered 0, withheld 12 (4 right); mean
    confidence of right answers 0.284, of wrong ones 0.265 (11 answers: a margin this small
    is what 11 answers allow; the ranking is measured on 185 fresh answers in RESULTS).
    88 s here."""
    s = run_eval(
        "abstention", tmp_path / "ab", "--data", str(SQUAD), "--limit", "12", "--seed", "5",
        "--distractors", "60", "--generator", "qwen2.5-0.5b", "-k", "4",
    )  # fmt: skip
    m, c = s.result.metrics, s.result.counts
    print(
        f"\nSQuAD abstention 12 questions (seed 5), 0.5B: answerable F1 {m['answerable/f1']:.3f} "
        f"contains {m['answerable/contains_gold']:.3f}; unanswerable F1 "
        f"{m['unanswerable/f1']:.3f} contains {m['unanswerable/contains_gold']:.3f}; "
        f"withheld P {m['withheld/precision']:.3f} R {m['withheld/recall']:.3f} "
        f"F1 {m['withheld/f1']:.3f}"
    )
    assert c["answerable"] == 6 and c["unanswerable"] == 6
    assert m["answerable/f1"] > m["unanswerable/f1"]  # the answers come from the sources
    assert m["answerable/contains_gold"] > m["unanswerable/contains_gold"]
    assert m["withheld/recall"] > 0.5  # without the gold paragraph, most are held back
    # Every answerable question is lost in one place, or right (read from the real answers).
    lost = {k: v for k, v in m.items() if k.startswith("lost/")}
    assert len(lost) == 6 and sum(lost.values()) == pytest.approx(1.0)
    assert lost["lost/right"] == pytest.approx(m["answerable/contains_gold"])
    # The decision means something: delivered answers are right more often than withheld ones.
    rows = [json.loads(line)["record"] for line in (tmp_path / "ab" / "items.jsonl").open()]
    right = {
        delivered: [
            r["answerable"] and r["contains"]
            for r in rows
            if (r["decision"] == "answer") == delivered
        ]
        for delivered in (True, False)
    }
    assert right[False], right
    if right[True]:  # 12 questions may deliver none (this sample delivered 1 or 0 by run)
        assert sum(right[True]) / len(right[True]) > sum(right[False]) / len(right[False]), right
    # Always decidable: the confidence ranks right answers above wrong ones.
    conf = {
        ok: [
            r["confidence"]
            for r in rows
            if r["decision"] != "abstain" and (r["answerable"] and r["contains"]) == ok
        ]
        for ok in (True, False)
    }
    assert conf[True] and conf[False], conf
    assert sum(conf[True]) / len(conf[True]) > sum(conf[False]) / len(conf[False]), conf


def test_ragas_suite_counts_failures(tmp_path: Path) -> None:
    s = run_eval(
        "ragas", tmp_path / "rg", "--data", str(SQUAD), "--limit", "1", "--seed", "24",
        "--distractors", "20", "--generator", SMALL, "-k", "2", "--max-tokens", "48",
    )  # fmt: skip
    table = s.result.tables[0]
    assert [row[0] for row in table.rows] == [
        "faithfulness", "answer_relevancy", "context_precision", "context_recall",
    ]  # fmt: skip
    for _name, mean, scored, failed, seconds in table.rows:
        assert isinstance(scored, int) and isinstance(failed, int)
        assert scored + failed == 1  # every sample is either scored or listed as failed
        assert (mean is None) == (scored == 0)
        if mean is not None:
            assert 0.0 <= float(mean) <= 1.0
        assert seconds is not None and float(seconds) > 0  # timed, failed or not


def test_baseline_suite(tmp_path: Path) -> None:
    s = run_eval(
        "baseline", tmp_path / "b", "--data", str(SQUAD), "--limit", "4", "--seed", "25",
        "--distractors", "30", "--generator", SMALL, "--max-tokens", "48", "-k", "2",
    )  # fmt: skip
    m = s.result.metrics
    for system in ("verirag", "langchain"):
        assert 0.0 <= m[f"{system}/unsupported_delivered"] <= 1.0
        assert m[f"{system}/latency_p50"] > 0
