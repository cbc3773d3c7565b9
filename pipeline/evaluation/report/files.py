"""The report files of a run directory."""

from __future__ import annotations

from pathlib import Path

from verirag.pipeline.evaluation.report.html import render_html
from verirag.pipeline.evaluation.report.markdown import render_markdown
from verirag.pipeline.evaluation.runs import RunSummary


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
