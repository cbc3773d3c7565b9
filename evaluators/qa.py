"""Question answering on SQuAD-format data through `RagPipeline.ask`: with each question's
paragraph indexed among distractors, and with it left out (the question is then
unanswerable from the collection and should be abstained on or sent to review)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluators.datasets import Passage, Question, load_squad
from evaluators.metrics import answer_contains, exact_match, mean, token_f1
from pipeline.records import Answer


@dataclass(frozen=True)
class QaSample:
    gold: list[Passage]  # the chosen questions' paragraphs
    distractors: list[Passage]
    questions: list[Question]

    @property
    def corpus(self) -> list[Passage]:
        return self.gold + self.distractors


def squad_qa_sample(path: Path, questions: int, distractors: int, seed: int) -> QaSample:
    """Seeded questions, their paragraphs, and other paragraphs as distractors."""
    passages, qs = load_squad(path)
    rng = random.Random(seed)
    chosen = rng.sample(qs, questions)
    gold_ids = {next(iter(q.relevant)) for q in chosen}
    by_id = {p.pid: p for p in passages}
    noise = rng.sample([p for p in passages if p.pid not in gold_ids], distractors)
    return QaSample([by_id[g] for g in sorted(gold_ids)], noise, chosen)


@dataclass(frozen=True)
class QaReport:
    n: int
    exact_match: float
    f1: float  # the best of the whole answer and its single claims, per question
    contains: float  # share of answers that contain a gold answer
    decisions: dict[str, int]
    hits: tuple[bool, ...]  # per answer: contains a gold answer

    @property
    def not_answered(self) -> float:
        """Share abstained on or sent to review."""
        return 1 - self.decisions.get("answer", 0) / self.n if self.n else 0.0

    def line(self) -> str:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items()))
        return (
            f"EM {self.exact_match:.3f} F1 {self.f1:.3f} contains-gold {self.contains:.3f} "
            f"({self.n} questions; {mix})"
        )


def qa_report(answers: Sequence[Answer], questions: Sequence[Question]) -> QaReport:
    em, f1, hit = [], [], []
    for answer, q in zip(answers, questions, strict=True):
        em.append(exact_match(answer.text, q.answers))
        best_claim = max((token_f1(c.text, q.answers) for c in answer.claims), default=0.0)
        f1.append(max(best_claim, token_f1(answer.text, q.answers)))
        hit.append(float(answer_contains(answer.text, q.answers)))
    decisions = dict(Counter(a.decision for a in answers))
    return QaReport(
        len(answers), mean(em), mean(f1), mean(hit), decisions, tuple(h == 1.0 for h in hit)
    )


def ask_all(
    ask: Callable[[str], Answer], questions: Sequence[Question], progress: bool = False
) -> list[Answer]:
    out = []
    for i, q in enumerate(questions, start=1):
        out.append(ask(q.question))
        if progress:
            print(f"  asked {i}/{len(questions)}", end="\r", flush=True)
    return out
