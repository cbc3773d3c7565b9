"""The Markdown summary printed at the end of a run, and the comparison of two runs
(`verirag eval compare`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from verirag.pipeline.evaluation.report.formatting import (
    CI_HEADER,
    dataset_line,
    format_cell,
    format_duration,
    format_interval,
)
from verirag.pipeline.evaluation.runs import Cell, DatasetInfo, FailedItem, RunSummary, Table

MARKDOWN_TABLE_ROWS = 30
MARKDOWN_FAILED_ITEMS = 5
_MARKDOWN_ERROR_CHARS = 200

# Dataset fields that make two runs' numbers incomparable when they differ.
_COMPARED_DATASET_FIELDS = ("path", "format", "seed", "limit", "items")


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
        f"Dataset: {_md_text(dataset_line(summary.dataset))}",
    ]
    if result.metrics:
        rows: list[list[Cell]] = [[k, v] for k, v in result.metrics.items()]
        columns = ["metric", "value"]
        if result.intervals:
            columns.append(CI_HEADER)
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
        dataset_line(run.dataset)
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
