"""`verirag calibrate`: fit the decision thresholds on public data and write them to the
versioned calibration file shipped with the package.

- Claim support threshold and the weight of the claim score in the combined signal: from
  HaluEval QA right vs hallucinated answers (Youden's J; AUROC over a small grid).
- Logprob confidence weights and threshold: from the generator's own answers to SQuAD
  questions (correct = token F1 >= 0.5), by L2-regularised logistic regression.
Seeds here are disjoint from the ones the tests and benchmarks report on.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from evaluators.confidence import ConfidenceFeatures, ConfidenceWeights
from evaluators.datasets import Passage, load_squad
from evaluators.decision import Thresholds
from evaluators.hallucination import Signals, SignalScorer, blend, load_halueval
from evaluators.metrics import auroc, token_f1


def youden_threshold(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The cut maximising TPR - FPR when `score >= cut` predicts positive."""
    pos = sum(positive)
    neg = len(positive) - pos
    if not pos or not neg:
        raise ValueError("need both classes to pick a threshold")
    best, best_j = 0.5, -1.0
    for cut in sorted(set(scores)):
        tp = sum(s >= cut and y for s, y in zip(scores, positive, strict=True))
        fp = sum(s >= cut and not y for s, y in zip(scores, positive, strict=True))
        j = tp / pos - fp / neg
        if j > best_j:
            best, best_j = cut, j
    return best


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000, lr: float = 0.1
) -> tuple[float, np.ndarray]:
    """(bias, weights) by gradient descent on standardised features; returned in raw units."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mu) / sd
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + l2 * w / len(y)
        grad_b = float(np.mean(p - y))
        w -= lr * grad_w
        b -= lr * grad_b
    raw_w = w / sd
    return float(b - raw_w @ mu), raw_w


def _feature_row(f: ConfidenceFeatures) -> list[float]:
    return [f.mean_logprob, f.min_logprob, f.mean_entropy, f.low_share]


def calibrate(
    *,
    scorer_for: Callable[[Thresholds], SignalScorer],
    ask_features: Callable[[list[Passage], list[str]], list[tuple[str, ConfidenceFeatures]]],
    squad_path: Path,
    halueval_path: Path,
    pairs: int,
    questions: int,
    seed: int,
    base: Thresholds,
    generator_name: str,
    log: Callable[[str], None] = print,
) -> Thresholds:
    # 1. Confidence weights on the generator's own answers.
    passages, qs = load_squad(squad_path)
    rng = random.Random(seed)
    chosen = rng.sample(qs, questions)
    gold = {next(iter(q.relevant)) for q in chosen}
    corpus = [p for p in passages if p.pid in gold]
    answered = ask_features(corpus, [q.question for q in chosen])
    rows, labels = [], []
    for (text, f), q in zip(answered, chosen, strict=True):
        if f.n_tokens:
            rows.append(_feature_row(f))
            labels.append(1.0 if token_f1(text, q.answers) >= 0.5 else 0.0)
    weights = base.weights
    conf_threshold = base.confidence
    if 0 < sum(labels) < len(labels):
        bias, w = fit_logistic(np.asarray(rows), np.asarray(labels))
        weights = ConfidenceWeights(bias, *map(float, w))
        probs = [1 / (1 + math.exp(-(bias + float(np.dot(w, r))))) for r in rows]
        conf_threshold = youden_threshold(probs, [y == 1.0 for y in labels])
        log(
            f"confidence: {len(rows)} own answers, {int(sum(labels))} correct, AUROC "
            f"{auroc(probs, [y == 1.0 for y in labels]):.3f}, threshold {conf_threshold:.3f}"
        )
    else:
        log("confidence: answers all right or all wrong; weights left as they were")
    fitted = replace(base, weights=weights, confidence=conf_threshold)

    # 2. Claim support threshold and blend weight on HaluEval.
    scorer = scorer_for(fitted)
    data = load_halueval(halueval_path, pairs, seed)
    signals: list[tuple[Signals, bool]] = []
    for pair in data:
        for answer, is_right in ((pair.right, True), (pair.hallucinated, False)):
            signals.append((scorer.signals([pair.knowledge], pair.question, answer), is_right))
    right = [r for _, r in signals]
    support = [s.support for s, _ in signals]
    lifts = [s.lift for s, _ in signals]
    known = [(lf, r) for lf, r in zip(lifts, right, strict=True) if lf is not None]
    grounding_min = youden_threshold([lf for lf, _ in known], [r for _, r in known])
    best = (base.support_weight, base.grounding_weight)
    best_auc = -1.0
    grid = [
        (ws, wg)
        for ws in (0.0, 0.25, 0.5, 0.75, 1.0)
        for wg in (0.0, 0.25, 0.5, 0.75, 1.0)
        if ws + wg <= 1.0 and ws + wg > 0
    ]
    for ws, wg in grid:
        trial = replace(fitted, support_weight=ws, grounding_weight=wg)
        mixed = [blend(trial, s.support, s.lift, s.logprob) for s, _ in signals]
        auc = auroc(mixed, right)
        if auc > best_auc + 1e-9:
            best, best_auc = (ws, wg), auc
    claim_cut = youden_threshold(support, right)
    log(
        f"claims: {len(signals)} HaluEval answers; AUROC support {auroc(support, right):.3f}, "
        f"lift {auroc([lf for lf, _ in known], [r for _, r in known]):.3f}, logprob "
        f"{auroc([s.logprob for s, _ in signals], right):.3f}; claim threshold {claim_cut:.3f}, "
        f"lift threshold {grounding_min:.3f}; blend support {best[0]} lift {best[1]} "
        f"(combined AUROC {best_auc:.3f})"
    )
    version = str(int(base.version) + 1) if base.version.isdigit() else "1"
    return replace(
        fitted,
        version=version,
        claim_support=claim_cut,
        support_weight=best[0],
        grounding_weight=best[1],
        grounding_min=grounding_min,
        fitted_on=(
            f"{generator_name}; SQuAD v1.1 dev {questions} questions and HaluEval QA "
            f"{pairs} pairs, seed {seed}"
        ),
    )
