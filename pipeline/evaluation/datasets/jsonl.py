"""Plain JSONL: the reader of hand-made question files, and `write_jsonl`, which writes
passages as a JSONL corpus to index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.datasets.reading import (
    identifier_field,
    jsonl_records,
    string_field,
)
from verirag.pipeline.evaluation.datasets.records import DatasetError, EvalItem, Passage

PLAIN_KEYS = frozenset({"id", "question", "answers", "contexts", "answerable"})


def context_id(text: str) -> str:
    """Stable id of a plain-JSONL context: the same text under several questions is one passage."""
    return "ctx-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _string_list(record: dict[str, Any], key: str, path: Path, line: int) -> list[str]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(path, f'"{key}" must be a list of strings', line)
    return value


def read_plain(path: Path) -> tuple[list[Passage], list[EvalItem]]:
    passages: dict[str, Passage] = {}
    items: list[EvalItem] = []
    id_lines: dict[str, int] = {}
    for line, record in jsonl_records(path):
        unknown = sorted(set(record) - PLAIN_KEYS)
        if unknown:
            names = ", ".join(f'"{k}"' for k in unknown)
            raise DatasetError(
                path, f"unknown key(s) {names}; allowed: {', '.join(sorted(PLAIN_KEYS))}", line
            )
        question = string_field(record, "question", path, line, empty=False)
        item_id = identifier_field(record, "id", path, line) if "id" in record else f"q{line}"
        if item_id in id_lines:
            raise DatasetError(
                path, f'duplicate id "{item_id}" (first on line {id_lines[item_id]})', line
            )
        id_lines[item_id] = line
        answers = _string_list(record, "answers", path, line)
        contexts = _string_list(record, "contexts", path, line)
        if any(not c.strip() for c in contexts):
            raise DatasetError(path, '"contexts" must not contain empty strings', line)
        answerable = record.get("answerable", True)
        if not isinstance(answerable, bool):
            raise DatasetError(path, '"answerable" must be true or false', line)
        if not answerable and answers:
            raise DatasetError(
                path, 'an unanswerable question ("answerable": false) must have no answers', line
            )
        ids = []
        for text in contexts:
            pid = context_id(text)
            passages.setdefault(pid, Passage(pid, "", text))
            ids.append(pid)
        # An unanswerable question's contexts go into the index as distractors, but by
        # definition none of them answers it, so none is relevant.
        relevant = frozenset(ids) if answerable else frozenset()
        items.append(EvalItem(item_id, question, tuple(answers), relevant, answerable))
    return list(passages.values()), items


def write_jsonl(passages: list[Passage], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for p in passages:
            handle.write(json.dumps({"id": p.pid, "title": p.title, "text": p.text}) + "\n")
    return path
