"""HaluEval QA JSONL: a knowledge text, a question, a right and a hallucinated answer."""

from __future__ import annotations

from pathlib import Path

from verirag.pipeline.evaluation.datasets.reading import jsonl_records, string_field
from verirag.pipeline.evaluation.datasets.records import HaluItem


def read_halueval(path: Path) -> list[HaluItem]:
    """Each record becomes a right and a hallucinated item sharing `pair_id`, so a sample can
    keep the two answers to one question together (the benchmark is balanced by pairs)."""
    items: list[HaluItem] = []
    for n, (line, record) in enumerate(jsonl_records(path)):
        knowledge = string_field(record, "knowledge", path, line)
        question = string_field(record, "question", path, line, empty=False)
        right = string_field(record, "right_answer", path, line)
        wrong = string_field(record, "hallucinated_answer", path, line)
        pair = str(n)
        items.append(HaluItem(f"{pair}-right", pair, knowledge, question, right, False))
        items.append(HaluItem(f"{pair}-hallucinated", pair, knowledge, question, wrong, True))
    return items
