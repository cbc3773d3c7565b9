"""The eval report renderers: self-contained, escaped HTML; Markdown; run comparison."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from verirag.pipeline.evaluation.report import (
    compare_runs,
    render_compare_markdown,
    render_html,
    render_markdown,
    write_report,
)
from verirag.pipeline.evaluation.runs import (
    DatasetInfo,
    FailedItem,
    Plot,
    RunSummary,
    Series,
    SuiteResult,
    Table,
)

XSS = "<script>alert(1)</script>"
_VOID = {"meta", "img", "br", "hr", "input", "link", "col", "area", "base", "source", "wbr"}


class _Checker(HTMLParser):
    """Records what the page references and whether its tags nest properly."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {name: value or "" for name, value in attrs}
        self.refs += [values[a] for a in ("src", "href") if a in values]
        if tag == "img":
            self.images.append(values.get("src", ""))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def _summary() -> RunSummary:
    roc = Series("hybrid", [0.0, 0.1, 0.4, 1.0], [0.0, 0.6, 0.9, 1.0])
    plots = [
        Plot("line", "ROC of answer score", "FPR", "TPR", [roc], diagonal=True, note="AUROC"),
        Plot(
            "bar",
            "ndcg@10 by retriever",
            "retriever",
            "ndcg@10",
            [
                Series("v1", ["bm25", "dense", "hybrid"], [0.7, 0.8, 0.9]),
                Series("v2", ["hybrid", "bm25"], [0.95, 0.72]),
            ],  # other order, one missing
        ),
        Plot(
            "hist",
            "Answer scores: spend $\\notacommand$",  # must not be read as mathtext
            "score",
            "items",
            [Series("right", [0.9, 0.8, 0.85, 0.7]), Series(XSS, [0.2, 0.4, 0.3])],
        ),
    ]
    tables = [
        Table("Per retriever", ["retriever", "ndcg@10", "n"], [["bm25", 0.7, 50], ["x", None, 1]]),
        Table("Items", ["id", "score"], [[f"q{i}", i / 100] for i in range(35)], note="long"),
    ]
    failed = [FailedItem(f"{XSS}-{i}", "ask", f"boom {i}\nTraceback <b>") for i in range(7)]
    result = SuiteResult(
        suite="qa",
        metrics={"em": 0.4123, "hybrid/ndcg@10": 0.912, "bm25/ndcg@10": 0.7, "hybrid/mrr": 0.8},
        tables=tables,
        plots=plots,
        failed=failed,
        counts={"items": 50, "errors": 7},
        notes=[f"note with {XSS}"],
    )
    return RunSummary(
        suite="qa",
        created="2026-01-02T03:04:05Z",
        wall_seconds=125.0,
        dataset=DatasetInfo("data/squad.jsonl", "squad", 50, 120, 7, None),
        config={"retriever": "hybrid", "top_k": 5, "threshold": 0.55, "limit": None},
        result=result,
    )


def _empty_summary() -> RunSummary:
    return replace(_summary(), result=SuiteResult(suite="qa", metrics={}), config={})


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(_summary())


def test_html_is_well_formed_and_self_contained(page: str) -> None:
    checker = _parse(page)
    assert "script" not in checker.tags
    assert "<script" not in page.lower()
    assert "link" not in checker.tags
    assert not [r for r in checker.refs if r.startswith(("http://", "https://", "//"))]
    assert all(r.startswith("data:") for r in checker.refs)


def test_html_has_one_svg_image_per_plot(page: str) -> None:
    images = _parse(page).images
    assert len(images) == len(_summary().result.plots)
    for src in images:
        prefix = "data:image/svg+xml;base64,"
        assert src.startswith(prefix)
        assert b"<svg" in base64.b64decode(src.removeprefix(prefix))


def test_html_escapes_data_and_shows_it_as_text(page: str) -> None:
    text = "".join(_parse(page).text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for i in range(7):  # every failed item, not a sample
        assert f"{XSS}-{i}" in text
    assert "Traceback <b>" in text
    assert f"note with {XSS}" in text


def test_html_contents(page: str) -> None:
    text = "".join(_parse(page).text)
    for expected in ("data/squad.jsonl", "2026-01-02T03:04:05Z", "2m 05s", "seed 7"):
        assert expected in text
    assert "0.912" in text and "0.412" in text  # 3 decimals
    assert "hybrid" in text and "ndcg@10" in text and "mrr" in text
    assert "Per retriever" in text and "q34" in text  # HTML tables are not capped
    assert "0.550" not in text and "0.55" in text  # settings shown as given


def test_plots_leave_no_pyplot_figures(page: str) -> None:
    import matplotlib.pyplot as plt  # only to inspect pyplot's global registry

    render_html(_summary())
    assert plt.get_fignums() == []


def test_markdown_summary() -> None:
    text = render_markdown(_summary())
    assert text.startswith("# verirag eval: qa")
    assert text.count("\n# ") == 0  # one heading
    assert "| hybrid/ndcg@10 | 0.912 |" in text
    assert "| em | 0.412 |" in text
    assert "Counts: items 50, errors 7" in text
    assert "| bm25 | 0.700 | 50 |" in text and "| x | — | 1 |" in text
    assert "| q29 |" in text and "| q30 |" not in text
    assert "_… 5 more rows_" in text
    assert "Failed items: 7" in text
    assert text.count("(ask): boom") == 5
    assert f"- ` {XSS}-0 ` (ask)" in text  # ids as code spans: text in any viewer
    assert "2 more" in text
    assert "\nboom" not in text  # multi-line errors stay on their line


def test_empty_summary_renders() -> None:
    summary = _empty_summary()
    checker = _parse(render_html(summary))
    assert checker.images == []
    assert "none" in "".join(checker.text)
    text = render_markdown(summary)
    assert "Failed items: none" in text


def test_malformed_plot_is_reported_not_fatal() -> None:
    bad = Plot("hist", "bad <plot>", "x", "y", [Series("s", ["not a number"])])
    summary = replace(_summary(), result=SuiteResult(suite="qa", metrics={}, plots=[bad]))
    checker = _parse(render_html(summary))
    assert checker.images == []
    assert "bad <plot> could not be drawn" in "".join(checker.text)


def _with_metrics(summary: RunSummary, metrics: dict[str, float]) -> RunSummary:
    return replace(summary, result=replace(summary.result, metrics=metrics))


def test_compare_runs_deltas_and_missing_metrics() -> None:
    a = _with_metrics(_summary(), {"em": 0.5, "hybrid/ndcg@10": 0.9, "only_a": 0.3})
    b = _with_metrics(_summary(), {"em": 0.75, "hybrid/ndcg@10": 0.85, "only_b": 0.1})
    table = compare_runs(a, b)
    assert table.columns == ["metric", "A", "B", "delta"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert list(rows) == ["em", "hybrid/ndcg@10", "only_a", "only_b"]
    assert rows["em"] == [0.5, 0.75, 0.25]
    assert rows["hybrid/ndcg@10"][:2] == [0.9, 0.85]
    assert rows["hybrid/ndcg@10"][2] == pytest.approx(-0.05)
    assert rows["only_a"] == [0.3, None, None]
    assert rows["only_b"] == [None, 0.1, None]
    assert table.note == ""
    text = render_compare_markdown(a, b)
    assert "| em | 0.500 | 0.750 | +0.250 |" in text
    assert "| hybrid/ndcg@10 | 0.900 | 0.850 | -0.050 |" in text
    assert "| only_a | 0.300 | — | — |" in text
    assert "Warning" not in text


def test_compare_runs_warns_when_runs_differ() -> None:
    a = _summary()
    other_data = replace(a.dataset, seed=8, path="data/other.jsonl")
    note = compare_runs(a, replace(a, dataset=other_data)).note
    assert "datasets differ" in note and "seed 7 vs 8" in note and "other.jsonl" in note
    assert "suites differ" not in note
    assert "suites differ" in compare_runs(a, replace(a, suite="retrieval")).note
    limited = replace(a.dataset, limit=10)
    assert "limit None vs 10" in compare_runs(a, replace(a, dataset=limited)).note
    assert "Warning" in render_compare_markdown(a, replace(a, dataset=other_data))


def test_summary_round_trips(tmp_path: Path) -> None:
    summary = _summary()
    summary.save(tmp_path / "summary.json")
    assert RunSummary.load(tmp_path / "summary.json") == summary
    assert RunSummary.load(tmp_path) == summary


def test_load_without_summary_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        RunSummary.load(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"suite": "qa"}),
        json.dumps({**_summary().to_dict(), "result": {"suite": "qa", "metrics": []}}),
    ],
)
def test_load_malformed_summary_raises_value_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "summary.json").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="not a verirag eval summary"):
        RunSummary.load(tmp_path)


def test_write_report_writes_three_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    summary = _empty_summary()
    paths = write_report(run_dir, summary)
    assert [p.name for p in paths] == ["summary.json", "report.html", "summary.md"]
    assert all(p.parent == run_dir and p.is_file() for p in paths)
    assert RunSummary.load(paths[0]) == summary
    assert paths[1].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert paths[2].read_text(encoding="utf-8") == render_markdown(summary)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in paths)
