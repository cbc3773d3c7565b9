"""Reports of an evaluation run: a self-contained HTML page, a Markdown summary for the
terminal, and the comparison of two runs (`verirag eval compare`).

The page is rendered from the Jinja2 templates in `templates/` with autoescaping on: every
value from the data (questions, item ids, errors, labels) reaches the page as text. Python
lays the numbers out (formatting, the side-by-side table, the settings a suite depends on);
the templates only place them.

Plots are drawn on `matplotlib.figure.Figure` objects, never through pyplot: pyplot keeps
every figure in a global registry (a leak over many reports, and not thread-safe), while a
bare Figure is freed like any object. Each plot is embedded as an SVG `data:` URI in an
`<img>`: vector-sharp, and an image document can neither run scripts nor load anything, so
a label from the data cannot escape into the page.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import jinja2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from verirag.pipeline.evaluation.engine import SUITE_SETTINGS
from verirag.pipeline.evaluation.runs import (
    CI_LEVEL,
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

MARKDOWN_TABLE_ROWS = 30
MARKDOWN_FAILED_ITEMS = 5
_MARKDOWN_ERROR_CHARS = 200
_HIST_BINS = 20
_DASH = "—"
_CI = f"{CI_LEVEL:.0%} CI"
# Metric groups sharing at least this share of their metric names (Jaccard) are configurations
# of one comparison: the retrievers, the hallucination signals, verirag and LangChain.
_SAME_METRICS = 0.5

# Dataset fields that make two runs' numbers incomparable when they differ.
_COMPARED_DATASET_FIELDS = ("path", "format", "seed", "limit", "items")


# ---------------------------------------------------------------- formatting


def format_cell(value: Cell) -> str:
    """Floats to 3 decimals; a nonzero value that would read "0.000" keeps its magnitude."""
    if value is None:
        return _DASH
    if isinstance(value, float):
        if value != 0 and math.isfinite(value) and abs(value) < 5e-4:
            return f"{value:.2e}"
        return f"{value:.3f}"
    return str(value)


def format_interval(interval: Interval | None) -> str:
    if interval is None:
        return ""
    return f"[{format_cell(interval.low)}, {format_cell(interval.high)}]"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _dataset_line(dataset: DatasetInfo) -> str:
    # The file name only: a report is shared, and where the file lay on one machine is noise
    # (and personal); two runs on different copies are still told apart by `compare`.
    name = PurePath(dataset.path).name or dataset.path
    limit = "none" if dataset.limit is None else str(dataset.limit)
    return (
        f"{name} ({dataset.format}, {dataset.items} items, {dataset.passages} "
        f"passages, seed {dataset.seed}, limit {limit})"
    )


def suite_settings(summary: RunSummary) -> list[tuple[str, str]]:
    """The run's settings its suite depends on (all of them for a suite not known here),
    shown as given: rounding a threshold to 3 decimals would misreport it."""
    wanted = SUITE_SETTINGS.get(summary.suite)
    keys = [k for k in wanted if k in summary.config] if wanted else list(summary.config)
    return [(k, _DASH if summary.config[k] in (None, "") else str(summary.config[k])) for k in keys]


# ---------------------------------------------------------------- metric layout


@dataclass(frozen=True)
class MetricBlock:
    """Metrics as one table. A list: `rows` are one group's metric names (keys "title/name",
    or the bare names for the ungrouped). Side by side: `rows` are configurations and
    `columns` their metrics (keys "row/column")."""

    title: str
    rows: list[str]
    columns: list[str] = field(default_factory=list)

    @property
    def side_by_side(self) -> bool:
        return bool(self.columns)


def _metric_groups(metrics: dict[str, float]) -> dict[str, list[str]]:
    """Metric names by their prefix before the first "/" ("" for none), in the suite's order
    (the order a suite emits is the order worth reading)."""
    groups: dict[str, list[str]] = {}
    for key in metrics:
        group, sep, name = key.partition("/")
        if not sep:
            group, name = "", key
        groups.setdefault(group, []).append(name)
    return groups


def _similar(a: list[str], b: list[str]) -> bool:
    both, either = set(a) & set(b), set(a) | set(b)
    return len(both) >= _SAME_METRICS * len(either)


def _clusters(groups: dict[str, list[str]]) -> list[list[str]]:
    """Groups linked (transitively) by reporting mostly the same metrics, each cluster in the
    suite's order and placed where its first group was."""
    names = list(groups)
    root = {n: n for n in names}

    def find(n: str) -> str:
        while root[n] != n:
            n = root[n]
        return n

    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if _similar(groups[a], groups[b]):
                root[find(b)] = find(a)
    clusters: dict[str, list[str]] = {}
    for n in names:
        clusters.setdefault(find(n), []).append(n)
    return list(clusters.values())


def metric_blocks(metrics: dict[str, float]) -> list[MetricBlock]:
    """Ungrouped metrics first; then each set of configurations as ONE side-by-side table
    (rows = configurations, columns = metrics), and any other group as its own list."""
    groups = _metric_groups(metrics)
    blocks = [MetricBlock("", groups.pop(""))] if "" in groups else []
    for cluster in _clusters(groups):
        if len(cluster) == 1:
            blocks.append(MetricBlock(cluster[0], groups[cluster[0]]))
            continue
        columns = list(dict.fromkeys(name for g in cluster for name in groups[g]))
        blocks.append(MetricBlock("Side by side: " + ", ".join(cluster), cluster, columns))
    return blocks


# ---------------------------------------------------------------- plots


def _mpl_text(text: str) -> str:
    """Matplotlib reads text between "$" as mathtext (and raises on bad TeX): data text is
    literal, so every "$" is escaped."""
    return text.replace("$", r"\$")


def _legend_if_labelled(ax: Axes, series: Sequence[Series]) -> None:
    if any(s.label for s in series):
        ax.legend(fontsize="small")


def _diagonal_span(plot: Plot) -> tuple[float, float]:
    """The data's range; [0, 1] when the data lies within it (ROC, calibration)."""
    values = [float(v) for s in plot.series for v in (*s.x, *s.y)]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    return (0.0, 1.0) if lo >= 0 and hi <= 1 else (lo, hi)


def _draw_line(ax: Axes, plot: Plot) -> None:
    for s in plot.series:
        marker = "o" if len(s.x) <= 20 else None
        ax.plot(s.x, s.y, marker=marker, markersize=4, label=_mpl_text(s.label))
    if plot.diagonal:
        lo, hi = _diagonal_span(plot)
        ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", linewidth=1)
    _legend_if_labelled(ax, plot.series)


def _bar_heights(series: Series, categories: list[str]) -> list[float]:
    """Heights aligned to the categories by label, so a series listing them in another
    order (or missing one) is not misdrawn; by position when it has no labels."""
    if not series.x:
        padded = [*series.y, *[math.nan] * len(categories)]
        return padded[: len(categories)]
    by_label = dict(zip((str(x) for x in series.x), series.y, strict=False))
    return [by_label.get(category, math.nan) for category in categories]


def _positions(series: Sequence[Series]) -> list[str]:
    """1..n, for bars given by value only: still drawn, just without names."""
    return [str(i + 1) for i in range(max(len(s.y) for s in series))]


def _draw_bar(ax: Axes, plot: Plot) -> None:
    categories = [str(x) for x in plot.series[0].x] or _positions(plot.series)
    positions = np.arange(len(categories))
    width = 0.8 / len(plot.series)
    for i, s in enumerate(plot.series):
        offset = (i - (len(plot.series) - 1) / 2) * width
        ax.bar(positions + offset, _bar_heights(s, categories), width, label=_mpl_text(s.label))
    crowded = len(categories) > 6 or any(len(c) > 12 for c in categories)
    ax.set_xticks(
        positions,
        [_mpl_text(c) for c in categories],
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
    )
    _legend_if_labelled(ax, plot.series)


def _draw_hist(ax: Axes, plot: Plot) -> None:
    values = [[float(v) for v in s.x] for s in plot.series]
    # Shared bins: overlapping histograms are only comparable bar for bar.
    bins = np.histogram_bin_edges([v for vs in values for v in vs], bins=_HIST_BINS).tolist()
    for s, vs in zip(plot.series, values, strict=True):
        ax.hist(vs, bins=bins, alpha=0.5, label=_mpl_text(s.label))
    _legend_if_labelled(ax, plot.series)


_DRAWERS: dict[str, Callable[[Axes, Plot], None]] = {
    "line": _draw_line,
    "bar": _draw_bar,
    "hist": _draw_hist,
}


def _has_data(plot: Plot) -> bool:
    return any(s.x or s.y for s in plot.series)


def _draw(ax: Axes, plot: Plot) -> None:
    drawer = _DRAWERS.get(plot.kind)
    if drawer is None:
        raise ValueError(f"unknown plot kind {plot.kind!r}")
    if _has_data(plot):
        drawer(ax, plot)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(_mpl_text(plot.title))
    ax.set_xlabel(_mpl_text(plot.xlabel))
    ax.set_ylabel(_mpl_text(plot.ylabel))
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)  # grid lines behind bars, not across them


def plot_svg(plot: Plot) -> bytes:
    """The plot as a standalone SVG document."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    try:
        _draw(fig.add_subplot(), plot)
        buffer = io.BytesIO()
        # No date stamp: it only makes two reports of the same run differ more.
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        return buffer.getvalue()
    finally:
        # Breaks the figure <-> artist cycles so the memory comes back at once, not at the
        # next cyclic garbage collection.
        fig.clear()


# ---------------------------------------------------------------- HTML


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
        if table.columns and [str(row[0]) for row in table.rows if row] == configurations:
            return table.columns[0]
    return "configuration"


def _metric_views(result: SuiteResult) -> list[_TableView]:
    metrics, intervals = result.metrics, result.intervals
    views = []
    for block in metric_blocks(metrics):
        if block.side_by_side:
            rows = [
                [
                    _cell(row),
                    *(_metric_cell(metrics, intervals, f"{row}/{c}") for c in block.columns),
                ]
                for row in block.rows
            ]
            header = _row_header(block.rows, result.tables)
            views.append(_TableView(block.title, [header, *block.columns], rows))
            continue
        keys = [f"{block.title}/{n}" if block.title else n for n in block.rows]
        columns = ["metric", "value"]
        listed = [[_cell(n), _cell(metrics[k])] for n, k in zip(block.rows, keys, strict=True)]
        if intervals:  # a column of dashes only where the run has intervals at all
            columns.append(_CI)
            for row, key in zip(listed, keys, strict=True):
                row.append(_CellView(format_interval(intervals.get(key)) or _DASH, "num"))
        views.append(_TableView(block.title, columns, listed))
    return views


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
    template = _templates().get_template("report.html.j2")
    return template.render(
        suite=summary.suite,
        dataset=_dataset_line(summary.dataset),
        created=summary.created,
        wall_time=format_duration(summary.wall_seconds),
        version=summary.version,
        settings=_TableView("", ["setting", "value"], settings),
        metrics=_metric_views(result),
        ci_note=ci_note if result.intervals else "",
        counts=_TableView("", ["count", "value"], counts),
        tables=[_table_view(t) for t in result.tables],
        plots=[_plot_view(p) for p in result.plots],
        notes=result.notes,
        failed=_failed_view(result.failed),
    )


# ---------------------------------------------------------------- Markdown


def _md_text(value: object) -> str:
    """One table cell or list line: newlines would end it, a bare "|" would split it."""
    return " ".join(str(value).split()).replace("|", r"\|")


def _md_code(value: object) -> str:
    """A code span: an item id shows as written (`<script>` stays text in a Markdown viewer);
    the fence is longer than any backtick run inside."""
    text = _md_text(value)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _md_table(
    columns: Sequence[str], rows: Sequence[Sequence[Cell]], limit: int | None = None
) -> str:
    shown = rows if limit is None else rows[:limit]
    lines = [
        "| " + " | ".join(_md_text(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(_md_text(format_cell(v)) for v in row) + " |" for row in shown),
    ]
    if len(rows) > len(shown):
        # The blank line ends the table; otherwise GFM reads the line as one more row.
        lines += ["", f"_… {len(rows) - len(shown)} more rows_"]
    return "\n".join(lines)


def _md_failed(failed: Sequence[FailedItem]) -> str:
    if not failed:
        return "Failed items: none"
    lines = [f"Failed items: {len(failed)}"]
    for f in failed[:MARKDOWN_FAILED_ITEMS]:
        error = _md_text(f.error)
        if len(error) > _MARKDOWN_ERROR_CHARS:
            error = error[: _MARKDOWN_ERROR_CHARS - 1] + "…"
        lines.append(f"- {_md_code(f.item_id)} ({_md_text(f.stage)}): {error}")
    if len(failed) > MARKDOWN_FAILED_ITEMS:
        lines.append(f"- … {len(failed) - MARKDOWN_FAILED_ITEMS} more in report.html")
    return "\n".join(lines)


def render_markdown(summary: RunSummary) -> str:
    """A compact summary for the terminal; report.html holds everything."""
    result = summary.result
    blocks = [
        f"# verirag eval: {_md_text(summary.suite)} ({_md_text(summary.created)}, "
        f"{format_duration(summary.wall_seconds)})",
        f"Dataset: {_md_text(_dataset_line(summary.dataset))}",
    ]
    if result.metrics:
        rows: list[list[Cell]] = [[k, v] for k, v in result.metrics.items()]
        columns = ["metric", "value"]
        if result.intervals:
            columns.append(_CI)
            for row in rows:
                row.append(format_interval(result.intervals.get(str(row[0]))) or None)
        blocks.append(_md_table(columns, rows))
    if result.counts:
        blocks.append("Counts: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    for table in result.tables:
        block = f"**{_md_text(table.title)}**\n\n" + _md_table(
            table.columns, table.rows, MARKDOWN_TABLE_ROWS
        )
        blocks.append(block + (f"\n\n_{_md_text(table.note)}_" if table.note else ""))
    blocks.append(_md_failed(result.failed))
    if result.notes:
        blocks.append("Notes:\n" + "\n".join(f"- {_md_text(n)}" for n in result.notes))
    return "\n\n".join(blocks) + "\n"


# ---------------------------------------------------------------- comparison


def _metric_row(key: str, a: float | None, b: float | None) -> list[Cell]:
    delta = b - a if a is not None and b is not None else None
    return [key, a, b, delta]


def _dataset_differences(a: DatasetInfo, b: DatasetInfo) -> list[str]:
    return [
        f"{name} {getattr(a, name)!r} vs {getattr(b, name)!r}"
        for name in _COMPARED_DATASET_FIELDS
        if getattr(a, name) != getattr(b, name)
    ]


def _comparison_warning(a: RunSummary, b: RunSummary) -> str:
    warnings = []
    if a.suite != b.suite:
        warnings.append(f"suites differ ({a.suite!r} vs {b.suite!r})")
    differences = _dataset_differences(a.dataset, b.dataset)
    if differences:
        warnings.append("datasets differ: " + ", ".join(differences))
    if not warnings:
        return ""
    return "Not comparable as is: " + "; ".join(warnings) + "."


def compare_runs(a: RunSummary, b: RunSummary) -> Table:
    """Every metric of either run, A's order first; delta is B - A where both have it."""
    keys = [*a.result.metrics, *(k for k in b.result.metrics if k not in a.result.metrics)]
    rows = [_metric_row(k, a.result.metrics.get(k), b.result.metrics.get(k)) for k in keys]
    return Table(
        title=f"{a.suite} ({a.created}) vs {b.suite} ({b.created})",
        columns=["metric", "A", "B", "delta"],
        rows=rows,
        note=_comparison_warning(a, b),
    )


def _signed_delta(row: list[Cell]) -> list[Cell]:
    """The delta with its sign, so a drop reads as one at a glance."""
    *rest, delta = row
    return [*rest, f"{delta:+.3f}" if isinstance(delta, float) else delta]


def _run_line(name: str, run: RunSummary) -> str:
    return f"- {name}: {_md_text(run.suite)}, {_md_text(run.created)}, " + _md_text(
        _dataset_line(run.dataset)
    )


def render_compare_markdown(a: RunSummary, b: RunSummary) -> str:
    table = compare_runs(a, b)
    rows = [_signed_delta(row) for row in table.rows]
    blocks = [
        "# verirag eval compare",
        _run_line("A", a) + "\n" + _run_line("B", b),
        _md_table(table.columns, rows) if rows else "No metrics in either run.",
    ]
    if table.note:
        blocks.append(f"> **Warning:** {_md_text(table.note)}")
    return "\n\n".join(blocks) + "\n"


# ---------------------------------------------------------------- files


def _write_atomic(path: Path, text: str) -> None:
    """A reader (or a crash) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(run_dir: Path, summary: RunSummary) -> tuple[Path, Path, Path]:
    """summary.json, report.html and summary.md in the run directory; summary.json first,
    so the numbers are kept even if drawing the report fails."""
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / "summary.json"
    html_path = run_dir / "report.html"
    md_path = run_dir / "summary.md"
    summary.save(json_path)
    _write_atomic(html_path, render_html(summary))
    _write_atomic(md_path, render_markdown(summary))
    return json_path, html_path, md_path
