"""Metadata filters for search and ask: which documents a query may draw on, applied before
top-k (the vector index and BM25 only rank the chunks of matching documents).

One syntax for the CLI (`--filter`, repeatable) and the API (`filter`, a list), conditions
joined by AND:

    source=handbook/*.md     the source path, a glob matched at the end of the indexed path
    title=Leave policy       the title, case-insensitive; a glob when it has * ? or [
    year>=2020  year<2030    any metadata key: = != > >= < <=; numbers compare as numbers,
    team=hr                  anything else as text (ISO dates order correctly as text)

Pure logic: a filter becomes a SQL condition over the `documents` table (`d`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Op = Literal["=", "!=", ">", ">=", "<", "<="]
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$", re.DOTALL)
_GLOB = re.compile(r"[*?\[]")
MAX_CONDITIONS = 20


class FilterError(ValueError):
    """A filter expression that cannot be read; the message names it and the syntax."""


@dataclass(frozen=True)
class Condition:
    key: str  # "source", "title" or a metadata key
    op: Op
    value: str | float


@dataclass(frozen=True)
class MetadataFilter:
    conditions: tuple[Condition, ...]

    def sql(self) -> tuple[str, list[str | float]]:
        """A condition on `documents d`, with its parameters (never formatted into the SQL;
        the operator comes from the fixed set `Op`)."""
        parts: list[str] = []
        params: list[str | float] = []
        for c in self.conditions:
            if c.key in ("source", "title"):
                if c.op not in ("=", "!="):
                    raise FilterError(f"'{c.key}' takes = or != (a glob), not {c.op}")
                text = str(c.value)
                if c.key == "source":
                    # Relative: matched at the end of the indexed (absolute) path.
                    clause = "d.source GLOB ?"
                    params.append(text if text.startswith(("/", "*")) else "*/" + text)
                elif _GLOB.search(text):
                    clause = "lower(d.title) GLOB lower(?)"
                    params.append(text)
                else:
                    clause = "d.title = ? COLLATE NOCASE"
                    params.append(text)
                parts.append(f"NOT ({clause})" if c.op == "!=" else clause)
                continue
            path = '$."' + c.key + '"'
            field = "json_extract(d.metadata, ?)"
            if isinstance(c.value, float):
                parts.append(f"({field} IS NOT NULL AND CAST({field} AS REAL) {c.op} ?)")
                params.extend([path, path, c.value])
            else:
                parts.append(f"{field} {c.op} ?")
                params.extend([path, c.value])
        return " AND ".join(parts) or "1", params


def parse_filters(expressions: Sequence[str] | None) -> MetadataFilter | None:
    """`KEY OP VALUE` expressions to one filter (None for none); `FilterError` on bad input."""
    if not expressions:
        return None
    if len(expressions) > MAX_CONDITIONS:
        raise FilterError(f"at most {MAX_CONDITIONS} filter conditions, got {len(expressions)}")
    conditions = []
    for expression in expressions:
        match = _EXPR.match(expression)
        if match is None or not match.group(3):
            raise FilterError(
                f"cannot read filter {expression[:80]!r}: write KEY OP VALUE, with OP one of "
                "= != > >= < <= (e.g. source=docs/*.md, title=Leave policy, year>=2020)"
            )
        key, op, raw = match.group(1), match.group(2), match.group(3)
        if raw[0] in "<>=!":
            raise FilterError(
                f"cannot read filter {expression[:80]!r}: the operator is one of = != > >= < <= "
                "(KEY OP VALUE)"
            )
        if key in ("source", "title") and op not in ("=", "!="):
            raise FilterError(f"'{key}' takes = or != (a glob), not {op}: {expression[:80]!r}")
        value: str | float = raw
        if key not in ("source", "title"):
            try:
                value = float(raw)
            except ValueError:
                value = raw
        conditions.append(Condition(key, op, value))  # type: ignore[arg-type]
    return MetadataFilter(tuple(conditions))
