"""Seeded SQuAD questions with their paragraphs and distractors, for calibration (`verirag
calibrate` asks each question with its paragraph indexed and again with it left out).
Evaluation reports use `verirag eval qa|abstention` (pipeline/evaluation/suites/)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from verirag.pipeline.evaluation.datasets import Passage, Question, load_squad


@dataclass(frozen=True)
class QaSample:
    gold: list[Passage]  # the chosen questions' paragraphs
    distractors: list[Passage]
    questions: list[Question]

    @property
    def corpus(self) -> list[Passage]:
        return self.gold + self.distractors


def squad_qa_sample(
    path: Path, questions: int, distractors: int, seed: int, avoid: frozenset[str] = frozenset()
) -> QaSample:
    """Seeded questions (none of the ids in `avoid`), their paragraphs, and other paragraphs
    as distractors."""
    passages, qs = load_squad(path)
    if avoid:
        qs = [q for q in qs if q.qid not in avoid]
    rng = random.Random(seed)
    chosen = rng.sample(qs, questions)
    gold_ids = {next(iter(q.relevant)) for q in chosen}
    by_id = {p.pid: p for p in passages}
    noise = rng.sample([p for p in passages if p.pid not in gold_ids], distractors)
    return QaSample([by_id[g] for g in sorted(gold_ids)], noise, chosen)
