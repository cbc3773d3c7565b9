"""A BEIR directory: corpus.jsonl, queries.jsonl and a qrels TSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.datasets.reading import (
    identifier_field,
    jsonl_records,
    read_text,
    string_field,
)
from verirag.pipeline.evaluation.datasets.records import DatasetError, EvalItem, Passage

QRELS_CANDIDATES = ("qrels.tsv", "qrels/test.tsv", "qrels/dev.tsv", "qrels/train.tsv")


def _qrels_file(root: Path) -> Path:
    for name in QRELS_CANDIDATES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(
        root,
        "no qrels: expected " + ", ".join(QRELS_CANDIDATES[:-1]) + " or " + QRELS_CANDIDATES[-1],
    )


def _new_id(record: dict[str, Any], path: Path, line: int, seen: dict[str, int]) -> str:
    """The record's "_id", refused when an earlier line of the file had it."""
    ident = identifier_field(record, "_id", path, line)
    if ident in seen:
        raise DatasetError(path, f'duplicate "_id" "{ident}" (first on line {seen[ident]})', line)
    seen[ident] = line
    return ident


def read_beir(root: Path) -> tuple[list[Passage], list[EvalItem]]:
    if not root.is_dir():
        raise DatasetError(root, "expected a BEIR directory (corpus.jsonl, queries.jsonl, qrels)")
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    passages: list[Passage] = []
    corpus_lines: dict[str, int] = {}
    for line, record in jsonl_records(corpus_path):
        pid = _new_id(record, corpus_path, line, corpus_lines)
        title = record.get("title", "")
        if not isinstance(title, str):
            raise DatasetError(corpus_path, '"title" must be a string', line)
        passages.append(Passage(pid, title, string_field(record, "text", corpus_path, line)))

    queries: dict[str, str] = {}
    query_lines: dict[str, int] = {}
    for line, record in jsonl_records(queries_path):
        qid = _new_id(record, queries_path, line, query_lines)
        queries[qid] = string_field(record, "text", queries_path, line, empty=False)

    qrels_path = _qrels_file(root)
    relevant: dict[str, set[str]] = {}
    for line, text in enumerate(read_text(qrels_path).splitlines(), start=1):
        if not text.strip():
            continue
        cols = [c.strip() for c in text.split("\t")]
        if line == 1 and [c.lower() for c in cols] == ["query-id", "corpus-id", "score"]:
            continue
        if len(cols) != 3:
            raise DatasetError(
                qrels_path,
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}",
                line,
            )
        qid, pid, raw_score = cols
        try:
            score = float(raw_score)
        except ValueError:
            raise DatasetError(qrels_path, f'score "{raw_score}" is not a number', line) from None
        if qid not in queries:
            raise DatasetError(qrels_path, f'unknown query id "{qid}" (not in queries.jsonl)', line)
        if pid not in corpus_lines:
            raise DatasetError(qrels_path, f'unknown corpus id "{pid}" (not in corpus.jsonl)', line)
        judged = relevant.setdefault(qid, set())
        if score > 0:
            judged.add(pid)
    # Only queries with a relevant document: the others have no gold to score retrieval against.
    items = [
        EvalItem(qid, text, (), frozenset(relevant[qid]))
        for qid, text in queries.items()
        if relevant.get(qid)
    ]
    return passages, items
