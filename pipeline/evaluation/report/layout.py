"""Which metrics share a table: configurations of one comparison (the retrievers, the
hallucination signals, verirag and LangChain) side by side, any other group as a list; and
which of the suite's own tables only repeat a side-by-side table."""

from __future__ import annotations

from dataclasses import dataclass, field

from verirag.pipeline.evaluation.runs import Cell, Table

# Metric groups sharing at least this share of their metric names (Jaccard) are configurations
# of one comparison.
_SAME_METRICS = 0.5


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


def names_rows(table: Table, configurations: list[str]) -> bool:
    """Whether the table's rows are these configurations, in this order, named in its first
    column."""
    return bool(table.columns) and [str(row[0]) for row in table.rows if row] == configurations


def repeats(table: Table, block: MetricBlock, metrics: dict[str, float]) -> bool:
    """Whether the side-by-side block already shows every number in the table: its rows are
    the block's configurations and each further column equals one of the block's columns,
    row for row (a missing value where the block has none). Matched by value, not by name:
    a suite titles its columns for reading ("nDCG@10"), its metric keys for comparing."""
    if not block.side_by_side or not names_rows(table, block.rows):
        return False
    shown: list[list[Cell]] = [
        [metrics.get(f"{row}/{column}") for row in block.rows] for column in block.columns
    ]
    for j in range(1, len(table.columns)):
        values = [row[j] if j < len(row) else None for row in table.rows if row]
        if values not in shown:
            return False
    return True
