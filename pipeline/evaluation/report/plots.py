"""The report's figures, as standalone SVG documents.

Plots are drawn on `matplotlib.figure.Figure` objects, never through pyplot: pyplot keeps
every figure in a global registry (a leak over many reports, and not thread-safe), while a
bare Figure is freed like any object.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from verirag.pipeline.evaluation.runs import Plot, Series

_HIST_BINS = 20


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
