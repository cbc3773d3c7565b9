"""Reports of an evaluation run: a self-contained HTML page, a Markdown summary for the
terminal, and the comparison of two runs (`verirag eval compare`).

Plots are drawn on `matplotlib.figure.Figure` objects, never through pyplot: pyplot keeps
every figure in a global registry (a leak over many reports, and not thread-safe), while a
bare Figure is freed like any object. Each plot is embedded as an SVG `data:` URI in an
`<img>`: vector-sharp, and an image document can neither run scripts nor load anything, so
a label from the data cannot escape into the page.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from verirag.pipeline.evaluation.runs import Cell, DatasetInfo, FailedItem, Plot, RunSummary, Series, Table

MARKDOWN_TABLE_ROWS = 30
MARKDOWN_FAILED_ITEMS = 5
_MARKDOWN_ERROR_CHARS = 200
_HIST_BINS = 20
_DASH = "—"

# Dataset fields that make two runs' numbers incomparable when they differ.
_COMPARED_DATASET_FIELDS = ("path", "format", "seed", "limit", "items")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; margin: 0; color: #1f2328; background: #fff; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem;
  margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
.meta, .note, figcaption { color: #57606a; }
.meta { margin: .15rem 0; }
.note { font-style: italic; }
.error { color: #cf222e; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eaeef2; }
tbody tr:nth-child(even) { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pre { white-space: pre-wrap; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas,
  monospace; font-size: .8rem; }
figure { margin: 1rem 0 1.5rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
"""

# Defence in depth: even if some text escaped unescaped, the page may load nothing from
# outside and run no script.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


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


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _dataset_line(dataset: DatasetInfo) -> str:
    limit = "none" if dataset.limit is None else str(dataset.limit)
    return (
        f"{dataset.path} ({dataset.format}, {dataset.items} items, {dataset.passages} "
        f"passages, seed {dataset.seed}, limit {limit})"
    )


def _metric_groups(metrics: dict[str, float]) -> list[tuple[str, list[tuple[str, float]]]]:
    """Metrics split on their first "/"; ungrouped ones first, then groups in the suite's
    order (the order a suite emits is the order worth reading)."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for key, value in metrics.items():
        group, sep, name = key.partition("/")
        if not sep:
            group, name = "", key
        groups.setdefault(group, []).append((name, value))
    return sorted(groups.items(), key=lambda item: item[0] != "")


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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_cell(value: Cell, css: str = "") -> str:
    classes = " ".join(c for c in (css, "num" if isinstance(value, int | float) else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{_e(format_cell(value))}</td>"


def _html_row(row: Sequence[Cell], cell_css: Sequence[str]) -> str:
    css = [*cell_css, *[""] * (len(row) - len(cell_css))]
    return "<tr>" + "".join(_html_cell(v, c) for v, c in zip(row, css, strict=False)) + "</tr>"


def _html_table(
    columns: Sequence[str], rows: Iterable[Sequence[Cell]], cell_css: Sequence[str] = ()
) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(_html_row(row, cell_css) for row in rows)
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _html_note(note: str) -> str:
    return f'<p class="note">{_e(note)}</p>' if note else ""


def _html_section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _html_header(summary: RunSummary) -> str:
    return (
        f"<h1>verirag eval: {_e(summary.suite)}</h1>"
        f'<p class="meta">Dataset: {_e(_dataset_line(summary.dataset))}</p>'
        f'<p class="meta">Created {_e(summary.created)} · wall time '
        f"{_e(format_duration(summary.wall_seconds))} · summary v{_e(summary.version)}</p>"
    )


def _html_config(config: dict[str, Cell]) -> str:
    if not config:
        return "<p>none</p>"
    # Settings are shown as given: rounding a threshold to 3 decimals would misreport it.
    rows: list[list[Cell]] = [[key, _DASH if v is None else str(v)] for key, v in config.items()]
    return _html_table(["setting", "value"], rows)


def _html_metrics(metrics: dict[str, float]) -> str:
    if not metrics:
        return "<p>none</p>"
    parts = []
    for group, items in _metric_groups(metrics):
        heading = f"<h3>{_e(group)}</h3>" if group else ""
        parts.append(heading + _html_table(["metric", "value"], [[n, v] for n, v in items]))
    return "".join(parts)


def _html_counts(counts: dict[str, int]) -> str:
    if not counts:
        return "<p>none</p>"
    return _html_table(["count", "value"], [[k, v] for k, v in counts.items()])


def _html_tables(tables: Sequence[Table]) -> str:
    return "".join(
        f"<h3>{_e(t.title)}</h3>{_html_table(t.columns, t.rows)}{_html_note(t.note)}"
        for t in tables
    )


def _html_plot(plot: Plot) -> str:
    try:
        svg = plot_svg(plot)
    except (ValueError, TypeError) as exc:
        # One malformed plot must not cost the rest of the report at the end of a long run.
        return f'<p class="error">Plot {_e(plot.title)} could not be drawn: {_e(exc)}</p>'
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    caption = _e(plot.title) + (f" — {_e(plot.note)}" if plot.note else "")
    return (
        f'<figure><img src="{uri}" alt="{_e(plot.title)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _html_notes(notes: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"


def _html_failed(failed: Sequence[FailedItem]) -> str:
    if not failed:
        return "<p>none</p>"
    rows: list[list[Cell]] = [[f.item_id, f.stage, f.error] for f in failed]
    return _html_table(["item", "stage", "error"], rows, cell_css=("", "", "pre"))


def render_html(summary: RunSummary) -> str:
    """The whole report as one HTML file: inline CSS, plots as `data:` URIs, no script."""
    result = summary.result
    sections = [
        _html_header(summary),
        _html_section("Configuration", _html_config(summary.config)),
        _html_section("Metrics", _html_metrics(result.metrics)),
        _html_section("Counts", _html_counts(result.counts)),
    ]
    if result.tables:
        sections.append(_html_section("Tables", _html_tables(result.tables)))
    if result.plots:
        sections.append(_html_section("Plots", "".join(_html_plot(p) for p in result.plots)))
    if result.notes:
        sections.append(_html_section("Notes", _html_notes(result.notes)))
    sections.append(
        _html_section(f"Failed items ({len(result.failed)})", _html_failed(result.failed))
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>verirag eval: {_e(summary.suite)}</title>"
        f"<style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(sections) + "\n</main></body></html>\n"
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
        blocks.append(_md_table(["metric", "value"], rows))
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
