"""Evaluation metrics: retrieval over ranked id lists, answer matching, and threshold, calibration
and selective-prediction metrics over scores. Pure Python: no model, no numpy needed."""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top k (1.0 when all are)."""
    if not relevant:
        raise ValueError("recall is undefined without relevant ids")
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    for i, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Binary-relevance nDCG; repeated ids (several chunks of one document) count once."""
    if not relevant:
        raise ValueError("nDCG is undefined without relevant ids")
    seen: set[str] = set()
    dcg = 0.0
    for i, item in enumerate(ranked[:k], start=1):
        if item in relevant and item not in seen:
            dcg += 1.0 / math.log2(i + 1)
        seen.add(item)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def dedupe(ranked: Sequence[str]) -> list[str]:
    """Chunk hits to document ranking: keep each document at its best rank."""
    seen: set[str] = set()
    out: list[str] = []
    for item in ranked:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count half); labels: True = positive."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        raise ValueError("AUROC needs both positive and negative examples")
    ranked = sorted((s, i) for i, s in enumerate(scores))
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def answer_contains(prediction: str, answers: Sequence[str]) -> bool:
    """A normalised gold answer occurs in the prediction as whole words (for long answers,
    where exact match and token F1 punish every extra word)."""
    text = f" {normalize_answer(prediction)} "
    return any(g and f" {g} " in text for a in answers if (g := normalize_answer(a)))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 against the best-matching gold answer."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = sum(min(pred.count(w), gold.count(w)) for w in set(pred) & set(gold))
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    import re
    import string

    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# --- Threshold curves, F1, calibration and selective prediction ---------------------------------
#
# Conventions: labels/correct True = positive class; higher scores = more positive. The curves
# reproduce scikit-learn's points (the tests compare against it), so reports can be checked
# against any standard tool without shipping scikit-learn at runtime.


def _check_pairs(scores: Sequence[float], labels: Sequence[bool], what: str) -> None:
    if len(scores) != len(labels):
        raise ValueError(f"{what}: {len(scores)} scores but {len(labels)} labels")
    if not scores:
        raise ValueError(f"{what}: no scores given")
    # NaN breaks sorting silently (every comparison is False), so it must fail loudly instead.
    if any(math.isnan(s) for s in scores):
        raise ValueError(f"{what}: scores contain NaN")


def _threshold_counts(
    scores: Sequence[float], labels: Sequence[bool]
) -> tuple[list[float], list[int], list[int]]:
    """Distinct scores, descending, with the cumulative true and false positives when every
    item scoring >= that value is predicted positive (scikit-learn's `_binary_clf_curve`)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    thresholds: list[float] = []
    tps: list[int] = []
    fps: list[int] = []
    tp = fp = 0
    for rank, i in enumerate(order):
        if labels[i]:
            tp += 1
        else:
            fp += 1
        # One point per distinct score: tied items cross the threshold together.
        if rank + 1 == len(order) or scores[order[rank + 1]] != scores[i]:
            thresholds.append(float(scores[i]))
            tps.append(tp)
            fps.append(fp)
    return thresholds, tps, fps


def roc_curve(
    scores: Sequence[float], labels: Sequence[bool]
) -> tuple[list[float], list[float], list[float]]:
    """(fpr, tpr, thresholds) at every distinct score, descending thresholds, starting at
    (0, 0) with threshold +inf: `sklearn.metrics.roc_curve(drop_intermediate=False)`."""
    _check_pairs(scores, labels, "ROC curve")
    thresholds, tps, fps = _threshold_counts(scores, labels)
    if tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("ROC curve needs both positive and negative examples")
    fpr = [0.0] + [f / fps[-1] for f in fps]
    tpr = [0.0] + [t / tps[-1] for t in tps]
    return fpr, tpr, [math.inf, *thresholds]


def pr_curve(
    scores: Sequence[float], labels: Sequence[bool]
) -> tuple[list[float], list[float], list[float]]:
    """(precision, recall, thresholds) as `sklearn.metrics.precision_recall_curve`: thresholds
    ascending, and a final point (precision 1, recall 0) with no threshold."""
    _check_pairs(scores, labels, "precision-recall curve")
    thresholds, tps, fps = _threshold_counts(scores, labels)
    if tps[-1] == 0:
        # scikit-learn only warns and sets recall to 1; a curve without positives means nothing.
        raise ValueError("precision-recall curve needs at least one positive example")
    precision = [t / (t + f) for t, f in zip(tps, fps, strict=True)]
    recall = [t / tps[-1] for t in tps]
    return [*precision[::-1], 1.0], [*recall[::-1], 0.0], thresholds[::-1]


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Sum of precision times the recall gained at each threshold, no interpolation
    (`sklearn.metrics.average_precision_score`)."""
    precision, recall, _ = pr_curve(scores, labels)
    return -sum((recall[i + 1] - recall[i]) * precision[i] for i in range(len(recall) - 1))


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int


def _prf(tp: int, fp: int, fn: int, tn: int) -> PRF:
    # zero_division=0, as scikit-learn: nothing predicted (or no positives) scores 0, not NaN.
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1, tp, fp, fn, tn)


def binary_prf(predicted: Sequence[bool], labels: Sequence[bool]) -> PRF:
    """Precision, recall and F1 of the positive class, with the confusion counts."""
    if len(predicted) != len(labels):
        raise ValueError(f"P/R/F1: {len(predicted)} predictions but {len(labels)} labels")
    if not predicted:
        raise ValueError("P/R/F1: no predictions given")
    tp = fp = fn = tn = 0
    for p, y in zip(predicted, labels, strict=True):
        if p and y:
            tp += 1
        elif p:
            fp += 1
        elif y:
            fn += 1
        else:
            tn += 1
    return _prf(tp, fp, fn, tn)


def prf_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> PRF:
    """P/R/F1 when every item scoring >= threshold is predicted positive."""
    _check_pairs(scores, labels, "P/R/F1")
    return binary_prf([s >= threshold for s in scores], labels)


def best_f1(scores: Sequence[float], labels: Sequence[bool]) -> tuple[PRF, float]:
    """The best F1 over every threshold (each distinct score) and that threshold; on a tie the
    highest threshold wins, the most conservative choice. `prf_at(scores, labels, t)` gives
    back the same PRF."""
    _check_pairs(scores, labels, "best F1")
    thresholds, tps, fps = _threshold_counts(scores, labels)
    positives, n = tps[-1], len(scores)
    if positives == 0:
        raise ValueError("best F1 needs at least one positive example")
    best: tuple[PRF, float] | None = None
    for threshold, tp, fp in zip(thresholds, tps, fps, strict=True):
        prf = _prf(tp, fp, positives - tp, n - positives - fp)
        if best is None or prf.f1 > best[0].f1:
            best = (prf, threshold)
    assert best is not None  # scores are non-empty, so there is at least one threshold
    return best


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float  # 0.0 for an empty bin
    accuracy: float  # share of positives; 0.0 for an empty bin


def _check_probs(probs: Sequence[float], labels: Sequence[bool], bins: int) -> None:
    _check_pairs(probs, labels, "calibration")
    if bins < 1:
        raise ValueError(f"calibration: bins must be at least 1, got {bins}")
    bad = next((p for p in probs if not 0.0 <= p <= 1.0), None)
    if bad is not None:
        raise ValueError(f"calibration: probabilities must lie in [0, 1], got {bad}")


def reliability_bins(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins on [0, 1], empty ones included. A probability on an inner edge falls
    in the lower bin (the first bin is [0, e1], the others (lower, upper]), exactly as
    `sklearn.calibration.calibration_curve(strategy="uniform")` assigns them."""
    _check_probs(probs, labels, bins)
    # Edges computed as numpy.linspace does (i * step), so boundary cases land identically.
    step = 1.0 / bins
    edges = [i * step for i in range(bins)] + [1.0]
    inner = edges[1:-1]
    counts = [0] * bins
    conf = [0.0] * bins
    hits = [0] * bins
    for p, y in zip(probs, labels, strict=True):
        b = bisect.bisect_left(inner, p)
        counts[b] += 1
        conf[b] += p
        hits[b] += bool(y)
    return [
        ReliabilityBin(
            edges[b],
            edges[b + 1],
            counts[b],
            conf[b] / counts[b] if counts[b] else 0.0,
            hits[b] / counts[b] if counts[b] else 0.0,
        )
        for b in range(bins)
    ]


def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> float:
    """Sum over bins of count/n * |accuracy - mean confidence| (equal-width bins)."""
    table = reliability_bins(probs, labels, bins)
    n = len(probs)
    return sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in table)


def _tie_groups(scores: Sequence[float], correct: Sequence[bool]) -> list[tuple[int, int]]:
    """(size, errors) of each group of equal scores, highest score first."""
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    groups: list[tuple[int, int]] = []
    start = 0
    for rank, i in enumerate(order):
        if rank + 1 == len(order) or scores[order[rank + 1]] != scores[i]:
            members = order[start : rank + 1]
            groups.append((len(members), sum(not correct[j] for j in members)))
            start = rank + 1
    return groups


def risk_coverage(
    scores: Sequence[float], correct: Sequence[bool]
) -> tuple[list[float], list[float]]:
    """(coverage, risk) when answering only the highest-scoring items; risk = share of the
    answered items that are wrong. Points only where the score changes: tied items are kept
    or dropped together, so the curve does not depend on input order."""
    _check_pairs(scores, correct, "risk-coverage")
    n = len(scores)
    coverage: list[float] = []
    risk: list[float] = []
    kept = errors = 0
    for size, wrong in _tie_groups(scores, correct):
        kept += size
        errors += wrong
        coverage.append(kept / n)
        risk.append(errors / kept)
    return coverage, risk


def _expected_risks(scores: Sequence[float], correct: Sequence[bool]) -> list[float]:
    """Risk after answering the top k items, k = 1..n. Inside a tie group the order is
    arbitrary, so the risk is its expectation over every order of the group: with e errors
    among m tied items, the first j of them hold j*e/m errors on average."""
    risks: list[float] = []
    kept = errors = 0
    for size, wrong in _tie_groups(scores, correct):
        for j in range(1, size + 1):
            risks.append((errors + j * wrong / size) / (kept + j))
        kept += size
        errors += wrong
    return risks


def aurc(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Area under the risk-coverage curve as the mean of the risk after each answered item,
    k = 1..n (Geifman et al.'s AURC, not a trapezoid over the tie-grouped points). Ties take
    the expected risk over every order of the tied items, so the value is order-independent
    and equals the usual definition when no scores tie. Lower is better."""
    _check_pairs(scores, correct, "AURC")
    return mean(_expected_risks(scores, correct))


def selective_risk_at(scores: Sequence[float], correct: Sequence[bool], coverage: float) -> float:
    """Risk when answering the top ceil(coverage * n) items (at least one); ties inside the
    cut take the expected risk, as in `aurc`."""
    _check_pairs(scores, correct, "selective risk")
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"selective risk: coverage must lie in (0, 1], got {coverage}")
    n = len(scores)
    # The tolerance keeps 0.3 * 10 == 3.0000000000000004 from rounding up to 4 items.
    k = max(1, math.ceil(coverage * n - 1e-9))
    return _expected_risks(scores, correct)[k - 1]
