"""Reports of an evaluation run: a self-contained HTML page, a Markdown summary for the
terminal, and the comparison of two runs (`verirag eval compare`).

One job per module: `formatting` (numbers, durations, the dataset line, the settings a suite
depends on), `layout` (which metrics share a table), `plots` (matplotlib SVGs), `html` (the
page, from the Jinja2 templates in `verirag.pipeline.evaluation`'s `templates/`), `markdown`
(the terminal summary and the comparison) and `files` (the run directory's report files).
"""

from verirag.pipeline.evaluation.report.files import write_report
from verirag.pipeline.evaluation.report.formatting import (
    format_cell,
    format_duration,
    format_interval,
    suite_settings,
)
from verirag.pipeline.evaluation.report.html import render_html
from verirag.pipeline.evaluation.report.layout import MetricBlock, metric_blocks, repeats
from verirag.pipeline.evaluation.report.markdown import (
    MARKDOWN_FAILED_ITEMS,
    MARKDOWN_TABLE_ROWS,
    compare_runs,
    render_compare_markdown,
    render_markdown,
)
from verirag.pipeline.evaluation.report.plots import plot_svg

__all__ = [
    "MARKDOWN_FAILED_ITEMS",
    "MARKDOWN_TABLE_ROWS",
    "MetricBlock",
    "compare_runs",
    "format_cell",
    "format_duration",
    "format_interval",
    "metric_blocks",
    "plot_svg",
    "render_compare_markdown",
    "render_html",
    "render_markdown",
    "repeats",
    "suite_settings",
    "write_report",
]
