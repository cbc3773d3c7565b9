"""The eval report renderers: self-contained, escaped HTML from templates; the side-by-side
comparison with confidence intervals; the settings each suite depends on; Markdown; run
comparison."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from verirag.pipeline.evaluation.engine import SUITE_SETTINGS, EvalConfig
from verirag.pipeline.evaluation.report import (
    compare_runs,
    metric_blocks,
    render_compare_markdown,
    render_html,
    render_markdown,
    repeats,
    suite_settings,
    write_report,
)
from verirag.pipeline.evaluation.runs import (
    Cell,
    DatasetInfo,
    FailedItem,
    Interval,
    Plot,
    RunSummary,
    Series,
    SuiteResult,
    Table,
)

XSS = "<script>alert(1)</script>"
# No "/" in it, so it survives as a file name or a metric group; unescaped it would be a live
# <img>.
XSS_NAME = '<img src=x onerror="alert(1)">'
XSS_FILE = f"{XSS_NAME}.jsonl"
DATA_DIR = "/home/alice/private/eval-data"
_VOID = {"meta", "img", "br", "hr", "input", "link", "col", "area", "base", "source", "wbr"}


class _Checker(HTMLParser):
    """Records what the page references, whether its tags nest properly, and its tables
    (each under the heading before it)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.heading = ""
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {name: value or "" for name, value in attrs}
        self.refs += [values[a] for a in ("src", "href") if a in values]
        if tag == "img":
            self.images.append(values.get("src", ""))
        if tag in ("h2", "h3"):
            self.heading, self._in_heading = "", True
        elif tag == "table":
            self.tables.append((self.heading, []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "span" and self._cell is not None:
            self._cell.append(" ")  # the interval under a value
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "h3"):
            self._in_heading = False
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_heading:
            self.heading += data
        if self._cell is not None:
            self._cell.append(data)

    def table(self, heading: str) -> list[list[str]]:
        found = [rows for title, rows in self.tables if title == heading]
        assert len(found) == 1, f"{len(found)} tables under {heading!r}"
        return found[0]


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def _config(suite: str) -> dict[str, str | int | float | None]:
    """A run's `config` as `summarise` records it: every setting, relevant or not."""
    identity = EvalConfig(suite=suite, data=Path("x.json"), out=Path("out")).identity()
    return {k: v for k, v in identity.items() if k not in ("data", "suite")}


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
        intervals={
            "hybrid/ndcg@10": Interval(0.85, 0.95),
            "bm25/ndcg@10": Interval(0.61, 0.78),
            "hybrid/mrr": Interval(0.7, 0.88),
        },
    )
    return RunSummary(
        suite="qa",
        created="2026-01-02T03:04:05Z",
        wall_seconds=125.0,
        dataset=DatasetInfo(f"{DATA_DIR}/squad.jsonl", "squad", 50, 120, 7, None),
        config={**_config("qa"), "max_tokens": 48, "generator": "qwen2.5-0.5b"},
        result=result,
    )


def _retrieval_summary() -> RunSummary:
    """Three retrievers over the same metrics, as the retrieval suite reports them."""
    metrics: dict[str, float] = {}
    intervals: dict[str, Interval] = {}
    for i, mode in enumerate(("dense", "bm25", "hybrid")):
        for j, name in enumerate(("recall@1", "recall@10", "ndcg@10")):
            value = 0.5 + i / 10 + j / 100
            metrics[f"{mode}/{name}"] = value
            intervals[f"{mode}/{name}"] = Interval(value - 0.05, value + 0.05)
    modes: list[list[Cell]] = [["dense", 0.5], ["bm25", 0.6], ["hybrid", 0.7]]
    table = Table("Retrieval", ["retriever", "recall@1"], modes)
    result = SuiteResult(
        "retrieval", metrics, tables=[table], counts={"questions": 200}, intervals=intervals
    )
    config = {**_config("retrieval"), "distractors": 400, "unanswerable": 0.25}
    return replace(_summary(), suite="retrieval", config=config, result=result)


def _empty_summary() -> RunSummary:
    return replace(_summary(), result=SuiteResult(suite="qa", metrics={}), config={})


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(_summary())


def test_html_is_well_formed_and_self_contained(page: str) -> None:
    checker = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in checker.tags
    assert "<script" not in page.lower()
    assert "link" not in checker.tags
    assert not [r for r in checker.refs if r.startswith(("http://", "https://", "//"))]
    assert all(r.startswith("data:") for r in checker.refs)
    assert "style" in checker.tags and "td.num" in page  # the stylesheet is inlined
    assert "default-src 'none'" in page.replace("&#39;", "'")  # the CSP forbids loading


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


def test_html_autoescapes_every_place_data_reaches() -> None:
    """Hostile text in each field the page shows: the title, the dataset's name, settings,
    metric names, table titles, columns and cells, plot titles (alt text and the error), and
    notes; none becomes markup."""
    summary = _summary()
    bad_plot = Plot("hist", f"plot {XSS}", "x", "y", [Series("s", ["not a number"])])
    good_plot = Plot("line", f'"><b>{XSS}', "x", "y", [Series("s", [0.0, 1.0], [0.0, 1.0])])
    result = SuiteResult(
        suite=XSS,
        metrics={f"{XSS_NAME}/m": 0.5, f"{XSS_NAME}/n": 0.25, f"cfg/{XSS}": 0.1, "cfg/m": 0.2},
        tables=[Table(f"title {XSS}", [f"col {XSS}"], [[f"cell {XSS}"]], note=f"note {XSS}")],
        plots=[bad_plot, good_plot],
        notes=[XSS],
    )
    hostile = replace(
        summary,
        suite=XSS,
        dataset=replace(summary.dataset, path=f"{DATA_DIR}/{XSS_FILE}"),
        config={**summary.config, "generator": XSS},
        result=result,
    )
    page = render_html(hostile)
    checker = _parse(page)
    assert "script" not in checker.tags and "b" not in checker.tags
    assert checker.tags.count("img") == 1  # the good plot's, not the file's or the group's
    text = "".join(checker.text)
    for shown in (f"verirag eval: {XSS}", XSS_FILE, f"title {XSS}", f"col {XSS}", f"cell {XSS}"):
        assert shown in text
    assert f"Plot plot {XSS} could not be drawn" in text
    assert f"note {XSS}" in text
    assert checker.table(XSS_NAME) == [["metric", "value"], ["m", "0.500"], ["n", "0.250"]]
    assert [XSS, "0.100"] in checker.table("cfg")


def test_html_contents(page: str) -> None:
    text = "".join(_parse(page).text)
    for expected in ("squad.jsonl", "2026-01-02T03:04:05Z", "2m 05s", "seed 7"):
        assert expected in text
    assert "0.912" in text and "0.412" in text  # 3 decimals
    assert "hybrid" in text and "ndcg@10" in text and "mrr" in text
    assert "Per retriever" in text and "q34" in text  # HTML tables are not capped


def test_html_shows_the_file_name_not_its_path(page: str) -> None:
    assert "squad.jsonl" in page
    assert DATA_DIR not in page and "alice" not in page
    assert "Dataset: squad.jsonl (squad, 50 items, 120 passages, seed 7, limit none)" in "".join(
        _parse(page).text
    )


def _pairs(rows: list[list[str]]) -> dict[str, str]:
    return {row[0]: row[1] for row in rows}


def test_html_lists_only_the_settings_the_suite_depends_on(page: str) -> None:
    rows = _parse(page).table("Settings")
    assert rows[0] == ["setting", "value"]
    settings = _pairs(rows[1:])
    assert list(settings) == ["generator", "embedder", "k", "max_tokens", "distractors"]
    assert settings["generator"] == "qwen2.5-0.5b" and settings["max_tokens"] == "48"
    assert settings["distractors"] == "—"  # None: every passage in the file
    retrieval = _pairs(_parse(render_html(_retrieval_summary())).table("Settings")[1:])
    # No generator, no k, no share of unanswerable questions in a retrieval run.
    assert retrieval == {"embedder": "minilm", "distractors": "400"}


def test_settings_are_shown_as_given() -> None:
    summary = replace(_summary(), suite="abstention", config={**_config("abstention")})
    summary = replace(summary, config={**summary.config, "unanswerable": 0.55})
    assert ("unanswerable", "0.55") in suite_settings(summary)  # not rounded to "0.550"
    # A suite this version does not know: everything it recorded.
    other = replace(summary, suite="speed", config={"threads": 4, "note": None})
    assert suite_settings(other) == [("threads", "4"), ("note", "—")]


def test_every_suite_names_real_settings() -> None:
    fields = set(_config("qa"))
    for suite, names in SUITE_SETTINGS.items():
        assert set(names) <= fields, suite
        assert not {"fmt", "limit", "seed"} & set(names)  # shown with the dataset


def test_retrievers_side_by_side_in_one_table() -> None:
    checker = _parse(render_html(_retrieval_summary()))
    rows = checker.table("Side by side: dense, bm25, hybrid")
    # The configurations are named as the suite's own table names them.
    assert rows[0] == ["retriever", "recall@1", "recall@10", "ndcg@10"]
    assert [r[0] for r in rows[1:]] == ["dense", "bm25", "hybrid"]
    # Each value with its interval under it.
    assert rows[1][1] == "0.500 [0.450, 0.550]"
    assert rows[3][3] == "0.720 [0.670, 0.770]"
    # Not one table per retriever.
    headings = [title for title, _ in checker.tables]
    assert not {"dense", "bm25", "hybrid"} & set(headings)
    assert "95% confidence interval" in "".join(checker.text)


def _with_tables(summary: RunSummary, tables: list[Table]) -> RunSummary:
    return replace(summary, result=replace(summary.result, tables=tables))


def test_a_table_repeating_the_side_by_side_numbers_is_not_shown(tmp_path: Path) -> None:
    summary = _retrieval_summary()
    checker = _parse(render_html(summary))
    headings = [title for title, _ in checker.tables]
    assert "Retrieval" not in headings and "Details" not in "".join(checker.text)
    # Only the page drops it: the summary and the terminal keep the suite's table.
    json_path, _, md_path = write_report(tmp_path, summary)
    assert RunSummary.load(json_path).result.tables == summary.result.tables
    assert "**Retrieval**" in md_path.read_text(encoding="utf-8")


def test_a_table_with_any_number_of_its_own_is_shown() -> None:
    summary = _retrieval_summary()
    modes = summary.result.tables[0].rows
    own_column = Table("Retrieval", ["retriever", "recall@1", "n"], [[*r, 200] for r in modes])
    off_by_one = Table("Retrieval", ["retriever", "recall@1"], [*modes[:2], ["hybrid", 0.71]])
    other_rows = Table("Retrieval", ["retriever", "recall@1"], modes[:2])
    for table in (own_column, off_by_one, other_rows):
        checker = _parse(render_html(_with_tables(summary, [table])))
        assert len(checker.table("Retrieval")) == len(table.rows) + 1


def test_a_dropped_tables_note_moves_to_the_side_by_side_table() -> None:
    summary = _retrieval_summary()
    # Columns titled for reading, not as the metric keys: matched by the numbers.
    rows: list[list[Cell]] = [
        [m, 0.5 + i / 10 + 0.02, 0.5 + i / 10] for i, m in enumerate(("dense", "bm25", "hybrid"))
    ]
    table = Table("Retrieval", ["retriever", "nDCG@10", "R@1"], rows, note="R@1: recall at 1")
    block = metric_blocks(summary.result.metrics)[0]
    assert repeats(table, block, summary.result.metrics)
    page = render_html(_with_tables(summary, [table]))
    checker = _parse(page)
    assert "Retrieval" not in [title for title, _ in checker.tables]
    assert page.index("R@1: recall at 1") > page.index("Side by side: dense, bm25, hybrid")


def test_a_missing_metric_or_interval_reads_as_a_dash(page: str) -> None:
    checker = _parse(page)
    rows = checker.table("Side by side: hybrid, bm25")
    assert rows == [
        ["configuration", "ndcg@10", "mrr"],  # no table of the same rows names them
        ["hybrid", "0.912 [0.850, 0.950]", "0.800 [0.700, 0.880]"],
        ["bm25", "0.700 [0.610, 0.780]", "—"],
    ]
    # Ungrouped metrics list their interval in a column, a dash where there is none.
    overall = [rows for title, rows in checker.tables if rows and rows[0][0] == "metric"]
    assert overall == [[["metric", "value", "95% CI"], ["em", "0.412", "—"]]]


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        # the hallucination signals: logprob has no shipped cut, only two are calibrated
        (
            {
                "logprob": ["auroc", "average_precision", "best_f1", "aurc"],
                "judge": ["auroc", "average_precision", "best_f1", "f1_at_shipped", "aurc", "ece"],
                "lexical": ["auroc", "average_precision", "best_f1", "f1_at_shipped", "aurc"],
                "combined": ["auroc", "average_precision", "best_f1", "aurc", "ece"],
            },
            [["logprob", "judge", "lexical", "combined"]],
        ),
        # abstention: two withholding rules, then answerable vs unanswerable questions
        (
            {
                "withheld": ["precision", "recall", "f1"],
                "abstain": ["precision", "recall", "f1"],
                "answerable": ["contains_gold", "f1"],
                "unanswerable": ["delivered", "contains_gold", "f1"],
            },
            [["withheld", "abstain"], ["answerable", "unanswerable"]],
        ),
        # qa: one group of its own stays a list
        ({"selective": ["aurc", "confidence_auroc"]}, [["selective"]]),
    ],
)
def test_configurations_are_the_groups_reporting_the_same_metrics(
    groups: dict[str, list[str]], expected: list[list[str]]
) -> None:
    metrics = {"overall": 1.0} | {f"{g}/{n}": 0.5 for g, names in groups.items() for n in names}
    blocks = metric_blocks(metrics)
    assert blocks[0].title == "" and blocks[0].rows == ["overall"]
    # A side-by-side table's rows are its configurations; a list's title is its group.
    assert [b.rows if b.side_by_side else [b.title] for b in blocks[1:]] == expected
    assert [b.side_by_side for b in blocks[1:]] == [len(e) > 1 for e in expected]
    if len(expected[0]) == 4:  # every metric any signal has is a column
        assert blocks[1].columns == [
            "auroc", "average_precision", "best_f1", "aurc", "f1_at_shipped", "ece"
        ]  # fmt: skip


def test_plots_leave_no_pyplot_figures(page: str) -> None:
    import matplotlib.pyplot as plt  # only to inspect pyplot's global registry

    render_html(_summary())
    assert plt.get_fignums() == []


def test_markdown_summary() -> None:
    text = render_markdown(_summary())
    assert text.startswith("# verirag eval: qa")
    assert text.count("\n# ") == 0  # one heading
    assert "Dataset: squad.jsonl (squad," in text and DATA_DIR not in text
    assert "| metric | value | 95% CI |" in text
    assert "| hybrid/ndcg@10 | 0.912 | [0.850, 0.950] |" in text
    assert "| em | 0.412 | — |" in text
    assert "Counts: items 50, errors 7" in text
    assert "| bm25 | 0.700 | 50 |" in text and "| x | — | 1 |" in text
    assert "| q29 |" in text and "| q30 |" not in text
    assert "_… 5 more rows_" in text
    assert "Failed items: 7" in text
    assert text.count("(ask): boom") == 5
    assert f"- ` {XSS}-0 ` (ask)" in text  # ids as code spans: text in any viewer
    assert "2 more" in text
    assert "\nboom" not in text  # multi-line errors stay on their line


def test_markdown_without_intervals_has_no_interval_column() -> None:
    summary = _summary()
    older = replace(summary, result=replace(summary.result, intervals={}))
    text = render_markdown(older)
    assert "| metric | value |\n" in text and "95% CI" not in text
    assert "| hybrid/ndcg@10 | 0.912 |\n" in text
    assert "95% CI" not in render_html(older)


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
    assert "- A: qa, 2026-01-02T03:04:05Z, squad.jsonl (squad," in text and DATA_DIR not in text


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
    # Same file name, other copy: the warning names both paths, where it matters.
    moved = replace(a.dataset, path="/elsewhere/squad.jsonl")
    assert "/elsewhere/squad.jsonl" in compare_runs(a, replace(a, dataset=moved)).note


def test_summary_round_trips(tmp_path: Path) -> None:
    summary = _summary()
    summary.save(tmp_path / "summary.json")
    assert RunSummary.load(tmp_path / "summary.json") == summary
    assert RunSummary.load(tmp_path) == summary
    assert RunSummary.load(tmp_path).result.intervals["bm25/ndcg@10"] == Interval(0.61, 0.78)


def test_summary_without_intervals_still_loads(tmp_path: Path) -> None:
    """A summary written before intervals existed."""
    raw = _summary().to_dict()
    del raw["result"]["intervals"]
    (tmp_path / "summary.json").write_text(json.dumps(raw), encoding="utf-8")
    loaded = RunSummary.load(tmp_path)
    assert loaded.result.intervals == {}
    assert loaded.result.metrics == _summary().result.metrics
    render_html(loaded)


def test_load_without_summary_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        RunSummary.load(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"suite": "qa"}),
        json.dumps({**_summary().to_dict(), "result": {"suite": "qa", "metrics": []}}),
        json.dumps(
            {**_summary().to_dict(), "result": {"suite": "qa", "metrics": {}, "intervals": [1]}}
        ),
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
    assert paths[1].read_text(encoding="utf-8") == render_html(summary)
    assert paths[2].read_text(encoding="utf-8") == render_markdown(summary)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in paths)


def test_the_reliability_table_shows_each_bins_count() -> None:
    from verirag.pipeline.evaluation.suites.shared import reliability_table

    probs = [0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95]
    right = [False, False, True, True, True, True, False]
    table = reliability_table("Confidence", probs, right)
    assert [row[1] for row in table.rows] == [1, 2, 4]  # empty bins left out
    assert sum(row[1] for row in table.rows if isinstance(row[1], int)) == len(probs)
    assert table.rows[1][3] == 0.5 and table.rows[2][3] == 0.75
    # ECE = (1*0.05 + 2*|0.5-0.15| + 4*|0.75-0.95|) / 7
    assert "ECE 0.221" in table.title and "7 answers" in table.title
    assert "perfectly calibrated: 0." in table.title and "p = " in table.title
