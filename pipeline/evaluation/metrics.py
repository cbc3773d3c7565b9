"""Evaluation metrics: retrieval over ranked id lists, answer matching, and threshold, calibration
and selective-prediction metrics over scores. No model needed; the curves are scikit-learn's,
the rest is written here where no library computes the same thing, or not fast enough."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import balanced_accuracy_score, precision_recall_curve
from sklearn.metrics import roc_curve as sk_roc_curve

# Retrieval metrics stay here: scikit-learn's ndcg_score and top-k scores take score matrices
# over a fixed label set, not ranked id lists where one document repeats.


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


# SQuAD EM and token F1 come from the SQuAD evaluation script, which no offline library ships.


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
# come from scikit-learn. AUROC, AP, P/R/F1 and the best F1 are counted here from the same
# cumulative counts scikit-learn uses, because its input validation costs 1-5 ms a call and
# the 1,000-resample bootstrap makes ~10^4 calls per report (a minute of a 100 s suite);
# tests/unit/test_metrics.py holds them equal to scikit-learn's on random input with ties.
# The checks before each call keep this module's errors for empty, one-class and NaN input,
# where scikit-learn would only warn and return NaN, or differ between functions.


def _check_pairs(scores: Sequence[float], labels: Sequence[bool], what: str) -> None:
    if len(scores) != len(labels):
        raise ValueError(f"{what}: {len(scores)} scores but {len(labels)} labels")
    if not scores:
        raise ValueError(f"{what}: no scores given")
    # NaN breaks sorting silently (every comparison is False), so it must fail loudly instead.
    if any(math.isnan(s) for s in scores):
        raise ValueError(f"{what}: scores contain NaN")


def _arrays(
    scores: Sequence[float], labels: Sequence[bool]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    # float scores keep thresholds floats for integer input; bool labels keep truthiness.
    return np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (equals Mann-Whitney U with ties counting half); labels: True =
    positive."""
    if len(scores) != len(labels):
        raise ValueError(f"AUROC: {len(scores)} scores but {len(labels)} labels")
    if all(labels) or not any(labels):
        raise ValueError("AUROC needs both positive and negative examples")
    _check_pairs(scores, labels, "AUROC")
    _, tp, fp = _ranked_counts(*_arrays(scores, labels))
    tpr = np.concatenate(([0.0], tp / tp[-1]))
    fpr = np.concatenate(([0.0], fp / fp[-1]))
    return float(np.trapezoid(tpr, fpr))


def _ranked_counts(
    y_score: npt.NDArray[np.float64], y_true: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(threshold, true positives, false positives) at each distinct score, highest first:
    every item scoring >= the threshold is predicted positive (scikit-learn's
    `_binary_clf_curve`, without its per-call validation)."""
    order = np.argsort(-y_score, kind="mergesort")
    ranked, hits = y_score[order], y_true[order]
    last = np.concatenate((np.flatnonzero(np.diff(ranked)), [len(ranked) - 1]))
    tp = np.cumsum(hits, dtype=np.int64)[last]
    return ranked[last], tp, last + 1 - tp


def roc_curve(
    scores: Sequence[float], labels: Sequence[bool]
) -> tuple[list[float], list[float], list[float]]:
    """(fpr, tpr, thresholds) at every distinct score, descending thresholds, starting at
    (0, 0) with threshold +inf."""
    _check_pairs(scores, labels, "ROC curve")
    if all(labels) or not any(labels):
        raise ValueError("ROC curve needs both positive and negative examples")
    y_score, y_true = _arrays(scores, labels)
    # Every distinct score is a point, so plots and threshold tables line up with the input.
    fpr, tpr, thresholds = sk_roc_curve(y_true, y_score, drop_intermediate=False)
    return fpr.tolist(), tpr.tolist(), thresholds.tolist()


def pr_curve(
    scores: Sequence[float], labels: Sequence[bool]
) -> tuple[list[float], list[float], list[float]]:
    """(precision, recall, thresholds), thresholds ascending, and a final point (precision 1,
    recall 0) with no threshold."""
    _check_pairs(scores, labels, "precision-recall curve")
    if not any(labels):
        # scikit-learn only warns and sets recall to 1; a curve without positives means nothing.
        raise ValueError("precision-recall curve needs at least one positive example")
    y_score, y_true = _arrays(scores, labels)
    precision, recall, thresholds = precision_recall_curve(
        y_true, y_score, pos_label=True, drop_intermediate=False
    )
    return precision.tolist(), recall.tolist(), thresholds.tolist()


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Sum of precision times the recall gained at each threshold, no interpolation."""
    _check_pairs(scores, labels, "average precision")
    if not any(labels):
        raise ValueError("average precision needs at least one positive example")
    _, tp, fp = _ranked_counts(*_arrays(scores, labels))
    recall_gained = np.diff(tp, prepend=0) / tp[-1]
    return float(np.sum(recall_gained * tp / (tp + fp)))


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int


def binary_prf(predicted: Sequence[bool], labels: Sequence[bool]) -> PRF:
    """Precision, recall and F1 of the positive class, with the confusion counts."""
    if len(predicted) != len(labels):
        raise ValueError(f"P/R/F1: {len(predicted)} predictions but {len(labels)} labels")
    if not predicted:
        raise ValueError("P/R/F1: no predictions given")
    y_pred, y_true = np.asarray(predicted, dtype=bool), np.asarray(labels, dtype=bool)
    tp = int(np.sum(y_pred & y_true))
    fp = int(np.sum(y_pred & ~y_true))
    fn = int(np.sum(~y_pred & y_true))
    return _prf(tp, fp, fn, len(y_true) - tp - fp - fn)


def balanced_accuracy(predicted: Sequence[bool], labels: Sequence[bool]) -> float:
    """The mean of the recalls of both classes; ValueError unless both are present (where
    scikit-learn's would warn and score the one class)."""
    if len(predicted) != len(labels):
        raise ValueError(f"balanced accuracy: {len(predicted)} predictions, {len(labels)} labels")
    if not 0 < sum(labels) < len(labels):
        raise ValueError("balanced accuracy: needs both classes")
    return float(balanced_accuracy_score(labels, predicted))


def _prf(tp: int, fp: int, fn: int, tn: int) -> PRF:
    # As scikit-learn's zero_division=0: nothing predicted (or no positives) scores 0, not NaN.
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return PRF(precision, recall, f1, tp, fp, fn, tn)


def prf_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> PRF:
    """P/R/F1 when every item scoring >= threshold is predicted positive."""
    _check_pairs(scores, labels, "P/R/F1")
    return binary_prf([s >= threshold for s in scores], labels)


def best_f1(scores: Sequence[float], labels: Sequence[bool]) -> tuple[PRF, float]:
    """The best F1 over every threshold (each distinct score) and that threshold; on a tie the
    highest threshold wins, the most conservative choice. `prf_at(scores, labels, t)` gives
    back the same PRF."""
    _check_pairs(scores, labels, "best F1")
    if not any(labels):
        raise ValueError("best F1 needs at least one positive example")
    thresholds, tp, fp = _ranked_counts(*_arrays(scores, labels))
    positives, negatives = int(tp[-1]), int(fp[-1])
    f1 = 2 * tp / (tp + fp + positives)  # 2tp / (2tp + fp + fn)
    # Thresholds descend, so the first maximum is the highest threshold among equal F1s.
    i = int(np.argmax(f1))
    hit, false = int(tp[i]), int(fp[i])
    return _prf(hit, false, positives - hit, negatives - false), float(thresholds[i])


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


def _bin_ids(y_prob: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.intp]:
    """Each probability's equal-width bin; an inner edge belongs to the lower bin."""
    return np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], y_prob)


def reliability_bins(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins on [0, 1], empty ones included. A probability on an inner edge falls
    in the lower bin (the first bin is [0, e1], the others (lower, upper]), exactly as
    `sklearn.calibration.calibration_curve(strategy="uniform")` assigns them."""
    _check_probs(probs, labels, bins)
    # calibration_curve's own binning, done here because it returns neither the counts (which
    # ECE weighs by) nor the empty bins (which the table shows).
    y_prob, y_true = _arrays(probs, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = _bin_ids(y_prob, bins)
    counts = np.bincount(ids, minlength=bins)
    conf = np.bincount(ids, weights=y_prob, minlength=bins)
    hits = np.bincount(ids, weights=y_true, minlength=bins)
    return [
        ReliabilityBin(
            float(edges[b]),
            float(edges[b + 1]),
            int(counts[b]),
            float(conf[b] / counts[b]) if counts[b] else 0.0,
            float(hits[b] / counts[b]) if counts[b] else 0.0,
        )
        for b in range(bins)
    ]


# scikit-learn has no ECE, only the bins (see reliability_bins).
def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> float:
    """Sum over bins of count/n * |accuracy - mean confidence| (equal-width bins)."""
    table = reliability_bins(probs, labels, bins)
    n = len(probs)
    return sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in table)


@dataclass(frozen=True)
class CalibrationConsistency:
    """What a perfectly calibrated confidence would show on the same probabilities.

    Binned ECE is biased upwards on a small sample: with 150 answers in 10 bins, labels drawn
    from the probabilities themselves (a confidence right by construction) give an ECE near
    0.08. An observed ECE is evidence of miscalibration only where it stands above that
    reference (Bröcker & Smith 2007, "consistency resampling").
    """

    observed: float  # the ECE of the labels given
    expected: float  # mean ECE of a perfectly calibrated confidence on these probabilities
    upper: float  # its 95th percentile
    p_value: float  # share of perfectly calibrated draws with an ECE at least the observed
    draws: int


# No library draws this reference (netcal, scikit-learn give the binned ECE alone).
def calibration_consistency(
    probs: Sequence[float],
    labels: Sequence[bool],
    bins: int = 10,
    draws: int = 1000,
    seed: int = 0,
) -> CalibrationConsistency:
    """The observed ECE beside its reference under perfect calibration: each draw replaces
    every label by a coin that comes up right with the item's own probability."""
    _check_probs(probs, labels, bins)
    if draws < 1:
        raise ValueError(f"calibration: draws must be at least 1, got {draws}")
    y_prob, _ = _arrays(probs, labels)
    observed = expected_calibration_error(probs, labels, bins)
    member = np.eye(bins)[_bin_ids(y_prob, bins)]  # items x bins, one 1 per row
    conf = y_prob @ member
    coins = np.random.default_rng(seed).random((draws, len(y_prob))) < y_prob
    # count/n * |hits/count - conf/count| = |hits - conf| / n: per draw, the bins' gaps summed.
    null = np.abs(coins @ member - conf).sum(axis=1) / len(y_prob)
    return CalibrationConsistency(
        observed=observed,
        expected=float(null.mean()),
        upper=float(np.percentile(null, 95)),
        p_value=float((null >= observed - 1e-12).mean()),
        draws=draws,
    )


# Selective prediction: no offline library computes risk-coverage or AURC, let alone with the
# expected risk inside tie groups that keeps them independent of input order.


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
