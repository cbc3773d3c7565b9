"""The report as one self-contained HTML page.

The page is rendered from the Jinja2 templates in `verirag.pipeline.evaluation`'s
`templates/` with autoescaping on: every value from the data (questions, item ids, errors,
labels) reaches the page as text. Python lays the numbers out (formatting, the side-by-side
table, the settings a suite depends on); the templates only place them.

Each plot is embedded as an SVG `data:` URI in an `<img>`: vector-sharp, and an image
document can neither run scripts nor load anything, so a label from the data cannot escape
into the page.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from verirag.pipeline.evaluation.report.formatting import (
    CI_HEADER,
    DASH,
    dataset_line,
    format_cell,
    format_duration,
    format_interval,
    suite_settings,
)
from verirag.pipeline.evaluation.report.layout import metric_blocks, names_rows, repeats
from verirag.pipeline.evaluation.report.plots import plot_svg
from verirag.pipeline.evaluation.runs import (
    CI_LEVEL,
    Cell,
    FailedItem,
    Interval,
    Plot,
    RunSummary,
    SuiteResult,
    Table,
)


@dataclass(frozen=True)
class _CellView:
    text: str
    css: str = ""
    ci: str = ""  # the value's interval, shown under it


@dataclass(frozen=True)
class _TableView:
    title: str
    columns: list[str]
    rows: list[list[_CellView]]
    note: str = ""


@dataclass(frozen=True)
class _PlotView:
    title: str
    note: str
    uri: str = ""  # empty when it could not be drawn
    error: str = ""


def _cell(value: Cell, css: str = "", interval: Interval | None = None) -> _CellView:
    classes = " ".join(c for c in (css, "num" if isinstance(value, int | float) else "") if c)
    return _CellView(format_cell(value), classes, format_interval(interval))


def _table_view(table: Table) -> _TableView:
    return _TableView(
        table.title, table.columns, [[_cell(v) for v in row] for row in table.rows], table.note
    )


def _metric_cell(metrics: dict[str, float], intervals: dict[str, Interval], key: str) -> _CellView:
    return _cell(metrics.get(key), interval=intervals.get(key))


def _row_header(configurations: list[str], tables: Sequence[Table]) -> str:
    """What the configurations are ("retriever", "signal", "system"): the first column's name
    in the suite's own table of the same rows, if it has one."""
    for table in tables:
        if names_rows(table, configurations):
            return table.columns[0]
    return "configuration"


def _views(result: SuiteResult) -> tuple[list[_TableView], list[_TableView]]:
    """The metric tables, and the suite's own tables for the details: less those whose every
    number a side-by-side table already shows (the same numbers twice, once without their
    intervals; summary.json keeps them). A dropped table's note moves to the side-by-side
    table, where the numbers it explains now are."""
    metrics, intervals = result.metrics, result.intervals
    views = []
    details = list(result.tables)
    for block in metric_blocks(metrics):
        if block.side_by_side:
            repeated = [t for t in details if repeats(t, block, metrics)]
            details = [t for t in details if not any(t is r for r in repeated)]
            rows = [
                [
                    _cell(row),
                    *(_metric_cell(metrics, intervals, f"{row}/{c}") for c in block.columns),
                ]
                for row in block.rows
            ]
            header = _row_header(block.rows, result.tables)
            note = " ".join(t.note for t in repeated if t.note)
            views.append(_TableView(block.title, [header, *block.columns], rows, note))
            continue
        keys = [f"{block.title}/{n}" if block.title else n for n in block.rows]
        columns = ["metric", "value"]
        listed = [[_cell(n), _cell(metrics[k])] for n, k in zip(block.rows, keys, strict=True)]
        if intervals:  # a column of dashes only where the run has intervals at all
            columns.append(CI_HEADER)
            for row, key in zip(listed, keys, strict=True):
                row.append(_CellView(format_interval(intervals.get(key)) or DASH, "num"))
        views.append(_TableView(block.title, columns, listed))
    return views, [_table_view(t) for t in details]


def _plot_view(plot: Plot) -> _PlotView:
    try:
        svg = plot_svg(plot)
    except (ValueError, TypeError) as exc:
        # One malformed plot must not cost the rest of the report at the end of a long run.
        return _PlotView(plot.title, plot.note, error=str(exc))
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return _PlotView(plot.title, plot.note, uri=uri)


def _failed_view(failed: Sequence[FailedItem]) -> _TableView:
    rows = [[_cell(f.item_id), _cell(f.stage), _cell(f.error, "pre")] for f in failed]
    return _TableView("", ["item", "stage", "error"], rows)


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("verirag.pipeline.evaluation", "templates"),
        autoescape=True,  # every value is text, whatever it holds
        undefined=jinja2.StrictUndefined,  # a misspelt name fails here, not as a blank
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(summary: RunSummary) -> str:
    """The whole report as one HTML file: inline CSS, plots as `data:` URIs, no script."""
    result = summary.result
    settings = [[_cell(k), _CellView(v)] for k, v in suite_settings(summary)]
    counts = [[_cell(k), _cell(v)] for k, v in result.counts.items()]
    ci_note = (
        f"In brackets: the {CI_LEVEL:.0%} confidence interval, a percentile bootstrap over the "
        "run's items; none where it cannot be estimated."
    )
    metrics, tables = _views(result)
    template = _templates().get_template("report.html.j2")
    return template.render(
        suite=summary.suite,
        dataset=dataset_line(summary.dataset),
        created=summary.created,
        wall_time=format_duration(summary.wall_seconds),
        version=summary.version,
        settings=_TableView("", ["setting", "value"], settings),
        metrics=metrics,
        ci_note=ci_note if result.intervals else "",
        counts=_TableView("", ["count", "value"], counts),
        tables=tables,
        plots=[_plot_view(p) for p in result.plots],
        notes=result.notes,
        failed=_failed_view(result.failed),
    )
