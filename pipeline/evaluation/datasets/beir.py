"""A BEIR directory: corpus.jsonl, queries.jsonl and a qrels TSV."""

from __future__ import annotations

from pathlib import Path

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


def read_beir(root: Path) -> tuple[list[Passage], list[EvalItem]]:
    if not root.is_dir():
        raise DatasetError(root, "expected a BEIR directory (corpus.jsonl, queries.jsonl, qrels)")
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    passages: list[Passage] = []
    corpus_lines: dict[str, int] = {}
    for line, record in jsonl_records(corpus_path):
        pid = identifier_field(record, "_id", corpus_path, line)
        if pid in corpus_lines:
            raise DatasetError(
                corpus_path, f'duplicate "_id" "{pid}" (first on line {corpus_lines[pid]})', line
            )
        corpus_lines[pid] = line
        title = record.get("title", "")
        if not isinstance(title, str):
            raise DatasetError(corpus_path, '"title" must be a string', line)
        passages.append(Passage(pid, title, string_field(record, "text", corpus_path, line)))

    queries: dict[str, str] = {}
    query_lines: dict[str, int] = {}
    for line, record in jsonl_records(queries_path):
        qid = identifier_field(record, "_id", queries_path, line)
        if qid in queries:
            raise DatasetError(
                queries_path, f'duplicate "_id" "{qid}" (first on line {query_lines[qid]})', line
            )
        queries[qid] = string_field(record, "text", queries_path, line, empty=False)
        query_lines[qid] = line

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
