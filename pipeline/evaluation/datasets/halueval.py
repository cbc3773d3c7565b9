"""HaluEval QA JSONL: a knowledge text, a question, a right and a hallucinated answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from verirag.pipeline.evaluation.datasets.reading import jsonl_records, string_field
from verirag.pipeline.evaluation.datasets.records import HaluItem


def read_halueval(path: Path) -> list[HaluItem]:
    """Each record becomes a right and a hallucinated item sharing `pair_id`, so a sample can
    keep the two answers to one question together (the benchmark is balanced by pairs). A
    record repeated in the file keeps one id, and its second copy is dropped."""
    items: list[HaluItem] = []
    seen: set[str] = set()
    for line, record in jsonl_records(path):
        knowledge = string_field(record, "knowledge", path, line)
        question = string_field(record, "question", path, line, empty=False)
        right = string_field(record, "right_answer", path, line)
        wrong = string_field(record, "hallucinated_answer", path, line)
        pair = pair_id(question, knowledge)
        if pair in seen:
            continue
        seen.add(pair)
        items.append(HaluItem(f"{pair}-right", pair, knowledge, question, right, False))
        items.append(HaluItem(f"{pair}-hallucinated", pair, knowledge, question, wrong, True))
    return items


def pair_id(question: str, knowledge: str) -> str:
    """A record's id from its content, not its line: the same record keeps its id in the full
    file and in any sample of it, so an id excluded from evaluation (a calibration's) is the
    same record everywhere."""
    digest = hashlib.sha1(f"{question}\n{knowledge}".encode()).hexdigest()
    return "h" + digest[:12]
