"""Public evaluation data readers (the files live in ../shared/data, never in the repo)."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path


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


def shared_data_dir() -> Path:
    """`VERIRAG_SHARED_DATA`, else `../shared/data` beside the repository."""
    env = os.environ.get("VERIRAG_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def load_squad(path: Path) -> tuple[list[Passage], list[Question]]:
    """SQuAD v1.1 JSON: each paragraph a passage, each question relevant to its paragraph."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise ValueError(f"{path}: expected SQuAD format, an object with a 'data' list")
    passages: list[Passage] = []
    questions: list[Question] = []
    for a, article in enumerate(raw["data"]):
        title = str(article.get("title", "")).replace("_", " ")
        for p, para in enumerate(article.get("paragraphs", [])):
            pid = f"squad-{a}-{p}"
            passages.append(Passage(pid, title, para["context"]))
            for qa in para.get("qas", []):
                answers = tuple(dict.fromkeys(x["text"] for x in qa.get("answers", [])))
                questions.append(Question(str(qa["id"]), qa["question"], answers, frozenset({pid})))
    return passages, questions


def squad_sample(path: Path, n_passages: int, seed: int) -> tuple[list[Passage], list[Question]]:
    """A seeded sample of passages and all their questions."""
    passages, questions = load_squad(path)
    rng = random.Random(seed)
    chosen = rng.sample(passages, min(n_passages, len(passages)))
    ids = {p.pid for p in chosen}
    return chosen, [q for q in questions if q.relevant <= ids]


def write_jsonl(passages: list[Passage], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for p in passages:
            handle.write(json.dumps({"id": p.pid, "title": p.title, "text": p.text}) + "\n")
    return path
