"""What an evaluation run produces: typed results, and the run directory that holds them.

A run directory (`verirag eval SUITE --out DIR`) contains:

- `config.json`   the suite, dataset and settings the run was started with (a resumed run
                  must match it);
- `items.jsonl`   one line per evaluated item, appended (and flushed) as each finishes, so
                  an interrupted run resumes where it stopped;
- `summary.json`  the `RunSummary` below (what `verirag eval compare` reads);
- `report.html`   a self-contained report (tables and plots, no external files);
- `summary.md`    the Markdown summary printed at the end.

The summary is plain data: numbers in `metrics` (flat, comparable across runs), their
confidence intervals, tables and plot series the report draws. No model or torch import here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SUMMARY_VERSION = 1
# Confidence intervals: percentile bootstrap over the run's items (hallucination: pairs).
CI_LEVEL = 0.95
CI_RESAMPLES = 1000

Cell = str | int | float | None
PlotKind = Literal["line", "bar", "hist"]


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass(frozen=True)
class Series:
    """One line, bar group or histogram. For "hist", `x` holds the raw values and `y` is empty;
    for "bar", `x` holds the category labels."""

    label: str
    x: list[float] | list[str]
    y: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Plot:
    kind: PlotKind
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    diagonal: bool = False  # draw y = x (ROC chance line, perfect calibration)
    note: str = ""


@dataclass(frozen=True)
class FailedItem:
    """An item the suite could not evaluate (an exception, or a metric that did not parse):
    listed, never averaged in."""

    item_id: str
    stage: str  # e.g. "ask", "faithfulness"
    error: str


@dataclass(frozen=True)
class Interval:
    """A metric's `CI_LEVEL` confidence interval."""

    low: float
    high: float


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    metrics: dict[str, float]  # flat "name": value, e.g. "hybrid/ndcg@10": 0.91
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    failed: list[FailedItem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # e.g. items, answerable, errors
    notes: list[str] = field(default_factory=list)
    # metric key -> its interval, where one can be estimated; absent from older summaries
    intervals: dict[str, Interval] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    path: str
    format: str
    items: int
    passages: int
    seed: int
    limit: int | None


@dataclass(frozen=True)
class RunSummary:
    suite: str
    created: str  # ISO 8601, UTC
    wall_seconds: float
    dataset: DatasetInfo
    config: dict[str, Cell]
    result: SuiteResult
    version: int = SUMMARY_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunSummary:
        result = raw["result"]
        return cls(
            suite=raw["suite"],
            created=raw["created"],
            wall_seconds=float(raw["wall_seconds"]),
            dataset=DatasetInfo(**raw["dataset"]),
            config=dict(raw["config"]),
            version=int(raw.get("version", SUMMARY_VERSION)),
            result=SuiteResult(
                suite=result["suite"],
                metrics={k: float(v) for k, v in result["metrics"].items()},
                tables=[Table(**t) for t in result.get("tables", [])],
                plots=[
                    Plot(**{**p, "series": [Series(**s) for s in p["series"]]})
                    for p in result.get("plots", [])
                ],
                failed=[FailedItem(**f) for f in result.get("failed", [])],
                counts={k: int(v) for k, v in result.get("counts", {}).items()},
                notes=list(result.get("notes", [])),
                intervals={
                    k: Interval(float(v["low"]), float(v["high"]))
                    for k, v in result.get("intervals", {}).items()
                },
            ),
        )

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        # UTF-8 explicitly: `load` reads UTF-8, and ensure_ascii=False writes item ids as is.
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunSummary:
        """A run directory or its summary.json."""
        file = path / "summary.json" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"{path}: no summary.json (is it an eval run directory?)")
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
            return cls.from_dict(raw)
        # AttributeError: a field of the wrong shape, e.g. a list where metrics are a mapping.
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{file}: not a verirag eval summary ({exc})") from exc
