"""HaluEval JSONL: QA records (a knowledge text, a question, a right and a hallucinated
answer) and summarization records (a news document, a right and a hallucinated summary). A
summary is read as the answer to a fixed request over its document, so the same verifier and
the same suite score both: the second set confirms what was fitted on the first."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.datasets.reading import jsonl_records, string_field
from verirag.pipeline.evaluation.datasets.records import HaluItem

# What a summary answers; its words are nowhere in the document, so question alignment says
# nothing here (no fitted answer model for given answers uses it).
SUMMARY_REQUEST = "Summarize the document."


def read_halueval(path: Path) -> list[HaluItem]:
    """Each record becomes a right and a hallucinated item sharing `pair_id`, so a sample can
    keep the two answers to one question together (the benchmark is balanced by pairs). A
    record repeated in the file keeps one id, and its second copy is dropped. QA and
    summarization records are told apart by their fields."""
    items: list[HaluItem] = []
    seen: set[str] = set()
    for line, record in jsonl_records(path):
        if is_summarization(record):
            knowledge = string_field(record, "document", path, line, empty=False)
            question = SUMMARY_REQUEST
            right = string_field(record, "right_summary", path, line, empty=False)
            wrong = string_field(record, "hallucinated_summary", path, line, empty=False)
        else:
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


def is_halueval(record: dict[str, Any]) -> bool:
    return {"knowledge", "right_answer"} <= record.keys() or is_summarization(record)


def is_summarization(record: dict[str, Any]) -> bool:
    return {"document", "right_summary"} <= record.keys()


def pair_id(question: str, knowledge: str) -> str:
    """A record's id from its content, not its line: the same record keeps its id in the full
    file and in any sample of it, so an id excluded from evaluation (a calibration's) is the
    same record everywhere."""
    digest = hashlib.sha1(f"{question}\n{knowledge}".encode()).hexdigest()
    return "h" + digest[:12]
