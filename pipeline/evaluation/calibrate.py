"""`verirag calibrate`: fit the decision thresholds on public data and write them to the
versioned calibration file shipped with the package.

- Logprob confidence weights: L2-regularised logistic regression on the generator's own
  answers to SQuAD questions, asked once with the question's paragraph indexed and once
  without it (right = the source was there and the answer contains a gold answer).
- Claim support threshold: HaluEval QA right vs hallucinated answers (Youden's J).
- Blend weights of the answer score: the best mean AUROC over HaluEval and own answers.
- Answer threshold: Youden's J of the answer score on own answers.
Seeds here are disjoint from the ones the tests and benchmarks report on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_curve
from sklearn.preprocessing import StandardScaler

from verirag.core.records import Answer
from verirag.evaluators.confidence import ConfidenceFeatures
from verirag.evaluators.decision import claim_floor
from verirag.pipeline.evaluation.datasets import Passage, Question
from verirag.pipeline.evaluation.hallucination import (
    HaluPair,
    SignalScorer,
    load_halueval,
    score_pairs,
)
from verirag.pipeline.evaluation.metrics import answer_contains
from verirag.pipeline.evaluation.qa import squad_qa_sample


def youden_threshold(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The cut maximising TPR - FPR (Youden's J) when `score >= cut` predicts positive; on a
    tie the lowest cut wins."""
    if all(positive) or not any(positive):
        raise ValueError("need both classes to pick a threshold")
    fpr, tpr, cuts = roc_curve(
        np.asarray(positive, dtype=bool),
        np.asarray(scores, dtype=np.float64),
        drop_intermediate=False,
    )
    j = tpr - fpr
    # Cuts descend (the first is +inf, J 0, never last among the maxima: the lowest score also
    # has J 0), so the last maximum is the lowest cut.
    return float(cuts[len(j) - 1 - int(np.argmax(j[::-1]))])


def fit_logistic(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], l2: float = 1.0
) -> tuple[float, npt.NDArray[np.float64]]:
    """(bias, weights) of an L2-regularised logistic regression, fitted on standardised
    features (so the penalty does not depend on each feature's unit) and returned in raw
    units."""
    scaler = StandardScaler().fit(x)
    # L2 with C = 1 / l2: summed log loss + l2/2 * |w|^2, intercept unpenalised. The default
    # l2 = 1 shrinks only mildly, but keeps the weights finite when a feature separates the few
    # hundred labelled answers. A tight tol: the fit is tiny, and refits should land on the
    # optimum itself rather than wherever lbfgs' default tolerance stops.
    model = LogisticRegression(C=1.0 / l2, tol=1e-10, max_iter=1000)
    model.fit(scaler.transform(x), y)
    raw_w = np.asarray(model.coef_[0] / scaler.scale_, dtype=np.float64)
    return float(model.intercept_[0] - raw_w @ scaler.mean_), raw_w


def _feature_row(f: ConfidenceFeatures) -> list[float]:
    return [f.mean_logprob, f.min_logprob, f.mean_entropy, f.low_share]


@dataclass(frozen=True)
class OwnAnswer:
    """One of the generator's own answers, reduced to what the decision sees."""

    features: ConfidenceFeatures
    lift: float | None
    claim_scores: tuple[float, ...]  # undecided claims at their floor
    correct: bool
    item_id: str = ""  # the SQuAD question id


def own_answer(
    answer: Answer, gold: Sequence[str], gold_indexed: bool, item_id: str = ""
) -> OwnAnswer | None:
    """Label an answer: right = its source was indexed and it contains a gold answer; wrong =
    it misses every gold answer, or was given although its source was left out. None for
    abstentions, and for answers without their source that still contain a gold answer
    (from the model's memory or a sibling passage: not decidable here)."""
    if answer.decision == "abstain" or not answer.claims:
        return None
    hit = answer_contains(answer.text, gold)
    if not gold_indexed and hit:
        return None
    return OwnAnswer(
        ConfidenceFeatures.from_dict(answer.confidence_features),
        answer.source_lift,
        tuple(
            c.score if c.score is not None else claim_floor(bool(c.missing_terms))
            for c in answer.claims
        ),
        gold_indexed and hit,
        item_id,
    )


@dataclass(frozen=True)
class HaluRow:
    """One HaluEval answer's signals, as stored for refitting."""

    features: ConfidenceFeatures
    support: float
    lift: float | None
    judge: float | None
    lexical: float
    right: bool
    item_id: str = ""  # the HaluEval pair id (both answers of a pair share it)


@dataclass(frozen=True)
class CalibrationData:
    """Everything the fit needs; collected once with the models, refit without them."""

    own: list[OwnAnswer]
    halueval: list[HaluRow]
    abstained_without_source: int
    described: str  # the generator, samples and seed
    # Every item sampled, whether or not it was labelled: evaluations leave these ids out.
    excluded: dict[str, list[str]] = field(default_factory=dict)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> CalibrationData:
        raw = json.loads(path.read_text())

        def feats(d: dict[str, float]) -> ConfidenceFeatures:
            return ConfidenceFeatures.from_dict(d)

        return cls(
            own=[
                OwnAnswer(
                    feats(o["features"]),
                    o["lift"],
                    tuple(o["claim_scores"]),
                    o["correct"],
                    o.get("item_id", ""),
                )
                for o in raw["own"]
            ],
            halueval=[HaluRow(**{**h, "features": feats(h["features"])}) for h in raw["halueval"]],
            abstained_without_source=raw["abstained_without_source"],
            described=raw["described"],
            excluded=raw.get("excluded", {}),
        )


def collect(
    *,
    scorer: SignalScorer,
    ask: Callable[[str, list[Passage], list[str]], list[Answer]],
    squad_path: Path,
    halueval_path: Path,
    pairs: int,
    questions: int,
    distractors: int,
    seed: int,
    generator_name: str,
) -> CalibrationData:
    """`ask(collection, corpus, questions)` indexes `corpus` and asks each question."""
    sample = squad_qa_sample(squad_path, questions, distractors, seed)
    texts = [q.question for q in sample.questions]
    with_gold = ask("with-gold", sample.corpus, texts)
    without_gold = ask("without-gold", sample.distractors, texts)
    own = [
        row
        for answers, indexed in ((with_gold, True), (without_gold, False))
        for answer, q in zip(answers, sample.questions, strict=True)
        if (row := own_answer(answer, q.answers, indexed, q.qid)) is not None
    ]
    halu_pairs = load_halueval(halueval_path, pairs, seed)
    scored = score_pairs(scorer, halu_pairs)
    halueval = [
        HaluRow(s.features, s.support, s.lift, s.judge, s.lexical, right, pair.pair_id)
        for (s, right), pair in zip(scored, (p for p in halu_pairs for _ in (0, 1)), strict=True)
    ]
    return CalibrationData(
        own,
        halueval,
        sum(a.decision == "abstain" for a in without_gold),
        f"{generator_name}; SQuAD v1.1 dev {questions} questions with and without their "
        f"paragraph among {distractors} others, HaluEval QA {pairs} pairs; seed {seed}",
        excluded=excluded_ids(sample.questions, halu_pairs),
    )


def excluded_ids(questions: Sequence[Question], pairs: Sequence[HaluPair]) -> dict[str, list[str]]:
    """The ids a calibration sampled, shipped beside it so that no evaluation reuses them."""
    return {
        "squad": sorted(q.qid for q in questions),
        "halueval": sorted(p.pair_id for p in pairs),
    }
