"""The records the evaluation readers return, the formats they accept, and `DatasetError`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args


@dataclass(frozen=True)
class Passage:
    pid: str
    title: str
    text: str


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    answers: tuple[str, ...]
    relevant: frozenset[str]  # passage ids


DatasetFormat = Literal["squad", "beir", "halueval", "jsonl"]
FORMATS: tuple[DatasetFormat, ...] = get_args(DatasetFormat)
SUPPORTED = (
    "supported formats: squad (a .json file with a 'data' list), beir (a directory with "
    "corpus.jsonl, queries.jsonl and qrels), halueval (.jsonl records with 'knowledge' and "
    "'right_answer'), jsonl (.jsonl records with 'question')"
)


class DatasetError(ValueError):
    """A data file that cannot be read as the expected format."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class EvalItem:
    item_id: str
    question: str
    answers: tuple[str, ...]  # gold answers, may be empty
    relevant: frozenset[str]  # ids of the passages that answer it (may be empty)
    answerable: bool = True


@dataclass(frozen=True)
class HaluItem:
    item_id: str  # "<record>-right" / "<record>-hallucinated"
    pair_id: str
    knowledge: str
    question: str
    answer: str
    hallucinated: bool


@dataclass(frozen=True)
class EvalDataset:
    path: Path
    format: DatasetFormat
    passages: list[Passage]
    items: list[EvalItem]
    halu: list[HaluItem]
