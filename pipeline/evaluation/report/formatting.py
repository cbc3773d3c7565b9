"""How values read in every report: numbers, intervals, durations, the dataset line and the
settings a suite depends on."""

from __future__ import annotations

import math
from pathlib import PurePath

from verirag.pipeline.evaluation.engine import SUITE_SETTINGS
from verirag.pipeline.evaluation.runs import CI_LEVEL, Cell, DatasetInfo, Interval, RunSummary

DASH = "—"
CI_HEADER = f"{CI_LEVEL:.0%} CI"


def format_cell(value: Cell) -> str:
    """Floats to 3 decimals; a nonzero value that would read "0.000" keeps its magnitude."""
    if value is None:
        return DASH
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


def dataset_line(dataset: DatasetInfo) -> str:
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
    return [(k, DASH if summary.config[k] in (None, "") else str(summary.config[k])) for k in keys]
