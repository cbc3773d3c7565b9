"""SQuAD JSON (v1.1 and v2.0): each paragraph a passage, each question an item."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.datasets.reading import read_json
from verirag.pipeline.evaluation.datasets.records import DatasetError, EvalItem, Passage, Question


def read_squad(path: Path, raw: Any = None) -> tuple[list[Passage], list[tuple[str, EvalItem]]]:
    """Passages and (paragraph id, item) pairs; SQuAD v2.0 `is_impossible` questions are
    unanswerable, with no answers and no relevant passage (the paragraph does not answer them).
    `raw` is the already parsed file, when format detection has read it."""
    if raw is None:
        raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise DatasetError(path, 'expected SQuAD JSON: an object with a "data" list')

    def fail(where: str, what: str) -> DatasetError:
        return DatasetError(path, f"{where}: expected {what}")

    passages: list[Passage] = []
    pairs: list[tuple[str, EvalItem]] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(raw["data"]):
        at = f"data[{a}]"
        if not isinstance(article, dict):
            raise fail(at, "an object")
        if not isinstance(article.get("paragraphs", []), list):
            raise fail(at, '"paragraphs" (a list)')
        title = str(article.get("title", "")).replace("_", " ")
        for p, para in enumerate(article.get("paragraphs", [])):
            at = f"data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict):
                raise fail(at, "an object")
            if not isinstance(para.get("context"), str):
                raise fail(at, '"context" (a string)')
            if not isinstance(para.get("qas", []), list):
                raise fail(at, '"qas" (a list)')
            pid = f"squad-{a}-{p}"
            passages.append(Passage(pid, title, para["context"]))
            for q, qa in enumerate(para.get("qas", [])):
                at = f"data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict):
                    raise fail(at, "an object")
                qid = qa.get("id")
                if isinstance(qid, bool) or not isinstance(qid, str | int):
                    raise fail(at, '"id" (a string)')
                if not isinstance(qa.get("question"), str):
                    raise fail(at, '"question" (a string)')
                if not isinstance(qa.get("answers"), list):
                    raise fail(at, '"answers" (a list)')
                texts: list[str] = []
                for n, answer in enumerate(qa["answers"]):
                    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
                        raise fail(f"{at}.answers[{n}]", 'an object with "text" (a string)')
                    texts.append(answer["text"])
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise fail(at, '"is_impossible" to be true or false')
                item_id = str(qid)
                if item_id in seen:
                    raise DatasetError(
                        path, f'{at}: duplicate id "{item_id}" (first at {seen[item_id]})'
                    )
                seen[item_id] = at
                item = EvalItem(
                    item_id,
                    qa["question"],
                    () if impossible else tuple(dict.fromkeys(texts)),
                    frozenset() if impossible else frozenset({pid}),
                    answerable=not impossible,
                )
                pairs.append((pid, item))
    return passages, pairs


def load_squad(path: Path) -> tuple[list[Passage], list[Question]]:
    """SQuAD JSON: each paragraph a passage, each question relevant to its paragraph (also a
    v2.0 impossible one, which has no answers). Raises `DatasetError` on a malformed file."""
    passages, pairs = read_squad(path)
    questions = [
        Question(item.item_id, item.question, item.answers, frozenset({pid})) for pid, item in pairs
    ]
    return passages, questions


def squad_sample(path: Path, n_passages: int, seed: int) -> tuple[list[Passage], list[Question]]:
    """A seeded sample of passages and all their questions."""
    passages, questions = load_squad(path)
    rng = random.Random(seed)
    chosen = rng.sample(passages, min(n_passages, len(passages)))
    ids = {p.pid for p in chosen}
    return chosen, [q for q in questions if q.relevant <= ids]
