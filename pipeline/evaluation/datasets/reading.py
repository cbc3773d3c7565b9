"""Reading helpers shared by the format readers: text, JSON and JSONL files, and the required
fields of a JSONL record, each failing with a `DatasetError` that says where and what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.datasets.records import DatasetError


def read_text(path: Path) -> str:
    if not path.exists():
        raise DatasetError(path, "no such file or directory")
    if not path.is_file():
        raise DatasetError(path, "expected a file, found a directory")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DatasetError(path, f"cannot read: {exc.strerror or exc}") from exc


def read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            path, f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from exc


def jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line."""
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                path, f"not valid JSON: {exc.msg} (column {exc.colno})", lineno
            ) from exc
        if not isinstance(record, dict):
            raise DatasetError(path, f"expected a JSON object, got {type(record).__name__}", lineno)
        yield lineno, record


def string_field(
    record: dict[str, Any], key: str, path: Path, line: int, *, empty: bool = True
) -> str:
    """A required string field of a JSONL record."""
    if key not in record:
        raise DatasetError(path, f'missing key "{key}"', line)
    value = record[key]
    if not isinstance(value, str):
        raise DatasetError(path, f'"{key}" must be a string, got {type(value).__name__}', line)
    if not empty and not value.strip():
        raise DatasetError(path, f'"{key}" must not be empty', line)
    return value


def identifier_field(record: dict[str, Any], key: str, path: Path, line: int) -> str:
    # Ids are strings in BEIR, but hand-made files often write numbers; both name the same thing.
    if key not in record:
        raise DatasetError(path, f'missing key "{key}"', line)
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise DatasetError(path, f'"{key}" must be a non-empty string or integer', line)
    return str(value)
