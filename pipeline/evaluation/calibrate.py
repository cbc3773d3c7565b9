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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_curve
from sklearn.preprocessing import StandardScaler

from verirag.core.records import Answer
from verirag.evaluators.confidence import ConfidenceFeatures, ConfidenceWeights, LogprobConfidence
from verirag.evaluators.decision import Thresholds, answer_score, claim_floor
from verirag.pipeline.evaluation.datasets import Passage
from verirag.pipeline.evaluation.hallucination import SignalScorer, load_halueval, score_pairs
from verirag.pipeline.evaluation.metrics import answer_contains, auroc
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


def own_answer(answer: Answer, gold: Sequence[str], gold_indexed: bool) -> OwnAnswer | None:
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
    )


def _youden_or(
    scores: Sequence[float], positive: Sequence[bool], fallback: float, least: int = 3
) -> float:
    pos = sum(positive)
    if pos < least or len(positive) - pos < least:
        return fallback
    return youden_threshold(scores, positive)


@dataclass(frozen=True)
class HaluRow:
    """One HaluEval answer's signals, as stored for refitting."""

    features: ConfidenceFeatures
    support: float
    lift: float | None
    judge: float | None
    lexical: float
    right: bool


@dataclass(frozen=True)
class CalibrationData:
    """Everything the fit needs; collected once with the models, refit without them."""

    own: list[OwnAnswer]
    halueval: list[HaluRow]
    abstained_without_source: int
    described: str  # the generator, samples and seed

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> CalibrationData:
        raw = json.loads(path.read_text())

        def feats(d: dict[str, float]) -> ConfidenceFeatures:
            return ConfidenceFeatures.from_dict(d)

        return cls(
            own=[
                OwnAnswer(feats(o["features"]), o["lift"], tuple(o["claim_scores"]), o["correct"])
                for o in raw["own"]
            ],
            halueval=[HaluRow(**{**h, "features": feats(h["features"])}) for h in raw["halueval"]],
            abstained_without_source=raw["abstained_without_source"],
            described=raw["described"],
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
        if (row := own_answer(answer, q.answers, indexed)) is not None
    ]
    halueval = [
        HaluRow(s.features, s.support, s.lift, s.judge, s.lexical, right)
        for s, right in score_pairs(scorer, load_halueval(halueval_path, pairs, seed))
    ]
    return CalibrationData(
        own,
        halueval,
        sum(a.decision == "abstain" for a in without_gold),
        f"{generator_name}; SQuAD v1.1 dev {questions} questions with and without their "
        f"paragraph among {distractors} others, HaluEval QA {pairs} pairs; seed {seed}",
    )


def fit(
    data: CalibrationData, base: Thresholds, model: str, log: Callable[[str], None] = print
) -> Thresholds:
    own, halu = data.own, data.halueval
    right = [o.correct for o in own]
    log(
        f"own answers: {len(own)} labelled ({sum(right)} right), "
        f"{data.abstained_without_source} abstentions without the source"
    )
    # 1. Logprob confidence weights: logistic regression on the own answers.
    weights = base.weights
    if sum(right) >= 3 and len(right) - sum(right) >= 3:
        bias, w = fit_logistic(
            np.asarray([_feature_row(o.features) for o in own]), np.asarray(right, dtype=float)
        )
        weights = ConfidenceWeights(bias, *map(float, w))
    else:
        log("confidence: too few right or wrong answers; weights left as they were")
    fitted = replace(base, weights=weights)
    confidence = LogprobConfidence(weights)
    own_conf = [confidence.score(o.features) for o in own]
    h_conf = [confidence.score(h.features) for h in halu]

    # 2. Claim threshold on HaluEval's right vs hallucinated answers (others' text).
    h_right = [h.right for h in halu]
    claim_cut = youden_threshold([h.support for h in halu], h_right)

    # 3. Blend weights: the best mean AUROC over both kinds of answers. Others' answers
    # are blended without the logprob term (see `answer_score`).
    own_support = [min(o.claim_scores) for o in own]
    own_lift = [o.lift for o in own]
    both_own = 0 < sum(right) < len(right)
    best, best_auc = (base.support_weight, base.grounding_weight), -1.0
    grid = [
        (ws, wg)
        for ws in (0.0, 0.25, 0.5, 0.75, 1.0)
        for wg in (0.0, 0.25, 0.5, 0.75, 1.0)
        if 0 < ws + wg <= 1.0
    ]
    for ws, wg in grid:
        trial = replace(fitted, support_weight=ws, grounding_weight=wg)
        aucs = [auroc([answer_score(trial, h.support, h.lift, None) for h in halu], h_right)]
        if both_own:
            mixed = [
                answer_score(trial, *row)
                for row in zip(own_support, own_lift, own_conf, strict=True)
            ]
            aucs.append(auroc(mixed, right))
        auc = sum(aucs) / len(aucs)
        if auc > best_auc + 1e-9:
            best, best_auc = (ws, wg), auc
    fitted = replace(
        fitted, claim_support=claim_cut, support_weight=best[0], grounding_weight=best[1]
    )

    # 4. The answer cut, on own answers that no claim flag already sends to review.
    own_score = [
        answer_score(fitted, *r) for r in zip(own_support, own_lift, own_conf, strict=True)
    ]
    unflagged = [i for i, o in enumerate(own) if min(o.claim_scores) >= claim_cut]
    pool = unflagged if len({right[i] for i in unflagged}) == 2 else list(range(len(own)))
    answer_min = _youden_or([own_score[i] for i in pool], [right[i] for i in pool], base.answer_min)

    def report(name: str, values: Sequence[float | None], labels: Sequence[bool]) -> str:
        known = [(v, y) for v, y in zip(values, labels, strict=True) if v is not None]
        if len({y for _, y in known}) < 2:
            return f"{name} n/a"
        return f"{name} {auroc([v for v, _ in known], [y for _, y in known]):.3f}"

    h_combined = [answer_score(fitted, h.support, h.lift, None) for h in halu]
    log(
        f"HaluEval AUROC ({len(halu)} answers): "
        + ", ".join(
            (
                report("logprob", h_conf, h_right),
                report("judge", [h.judge for h in halu], h_right),
                report("lexical", [h.lexical for h in halu], h_right),
                report("support", [h.support for h in halu], h_right),
                report("lift", [h.lift for h in halu], h_right),
                report("combined", h_combined, h_right),
            )
        )
    )
    log(
        f"own answers AUROC ({len(own)}): "
        + ", ".join(
            (
                report("logprob", own_conf, right),
                report("support", own_support, right),
                report("lift", own_lift, right),
                report("combined", own_score, right),
            )
        )
    )
    log(
        f"claim threshold {claim_cut:.3f}; blend support {best[0]} lift {best[1]}; "
        f"answer threshold {answer_min:.3f}"
    )
    version = str(int(base.version) + 1) if base.version.isdigit() else "1"
    return replace(
        fitted, version=version, model=model, answer_min=answer_min, fitted_on=data.described
    )
