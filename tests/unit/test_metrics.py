from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from verirag.pipeline.evaluation.metrics import (
    PRF,
    ReliabilityBin,
    answer_contains,
    aurc,
    auroc,
    average_precision,
    balanced_accuracy,
    best_f1,
    binary_prf,
    calibration_consistency,
    exact_match,
    expected_calibration_error,
    ndcg_at_k,
    pr_curve,
    prf_at,
    recall_at_k,
    reliability_bins,
    risk_coverage,
    roc_curve,
    selective_risk_at,
    token_f1,
)

# Reference values computed the slow, obvious way, independently of scikit-learn's code path.


def _mann_whitney(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Share of (positive, negative) pairs ranked right, ties counting half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _counts(scores: Sequence[float], labels: Sequence[bool], cut: float) -> tuple[int, ...]:
    """(tp, fp, fn, tn) when `score >= cut` predicts positive."""
    pairs = list(zip(scores, labels, strict=True))
    tp = sum(s >= cut and y for s, y in pairs)
    fp = sum(s >= cut and not y for s, y in pairs)
    fn = sum(s < cut and y for s, y in pairs)
    return tp, fp, fn, len(pairs) - tp - fp - fn


def test_auroc_is_mann_whitney_with_ties() -> None:
    rng = random.Random(0)
    for _ in range(20):
        labels = [rng.random() < 0.5 for _ in range(50)]
        labels[0], labels[1] = True, False
        scores = [round(rng.random(), 1) for _ in range(50)]  # many ties
        assert auroc(scores, labels) == pytest.approx(_mann_whitney(scores, labels))
    # Pairs (0.5, 0.5) half, (0.5, 0.2) (0.8, 0.5) (0.8, 0.2) whole: 3.5 of 4.
    assert auroc([0.5, 0.5, 0.2, 0.8], [True, False, False, True]) == pytest.approx(0.875)
    assert auroc([0.3] * 4, [True, False, True, False]) == pytest.approx(0.5)
    assert auroc([1, 2], [False, True]) == 1.0
    assert auroc([0.9, 0.1], [False, True]) == 0.0


def test_auroc_degenerate_input() -> None:
    for scores, labels in [([0.1], [True]), ([0.1, 0.2], [False, False]), ([], [])]:
        with pytest.raises(ValueError, match="both positive and negative"):
            auroc(scores, labels)
    with pytest.raises(ValueError, match="2 scores but 1 labels"):
        auroc([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="NaN"):
        auroc([math.nan, 0.2], [True, False])


def test_squad_answer_metrics_hand_computed() -> None:
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert token_f1("in Paris France", ["Paris"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("Lyon", ["Paris"]) == 0.0


def test_retrieval_metrics_hand_computed() -> None:
    assert recall_at_k(["a", "b", "c"], {"c"}, 2) == 0.0
    assert recall_at_k(["a", "b", "c"], {"c"}, 3) == 1.0
    assert ndcg_at_k(["a", "b"], {"b"}, 10) == pytest.approx(1 / 1.5849625007211562)


def test_answer_contains_whole_words_after_normalisation() -> None:
    assert answer_contains("It was completed in 1889 [1].", ["1889"])
    assert answer_contains("Designed by the company of Gustave Eiffel.", ["Gustave Eiffel"])
    assert not answer_contains("It opened in 18890.", ["1889"])  # not a whole word
    assert not answer_contains("Paris", ["the"])  # an answer that normalises to nothing
    assert not answer_contains("Paris", [])


# --- threshold curves, F1, calibration and selective prediction ---------------------------------


def _random_case(
    seed: int, n: int = 300, decimals: int | None = 1
) -> tuple[list[float], list[bool]]:
    """Scores loosely correlated with labels; rounding to one decimal gives many ties."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.4
    raw = np.clip(rng.normal(0.4 + 0.25 * labels, 0.25), 0.0, 1.0)
    scores = np.round(raw, decimals) if decimals is not None else raw
    return [float(s) for s in scores], [bool(y) for y in labels]


CASES = [(seed, decimals) for seed in range(4) for decimals in (1, None)]


def test_roc_curve_hand_computed() -> None:
    fpr, tpr, thresholds = roc_curve([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    assert fpr == pytest.approx([0.0, 0.0, 0.5, 0.5, 1.0])
    assert tpr == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0])
    assert thresholds == [math.inf, 0.8, 0.4, 0.35, 0.1]
    # Tied scores make a single point (a diagonal step).
    fpr, tpr, thresholds = roc_curve([0.5, 0.5, 0.2], [True, False, False])
    assert (fpr, tpr, thresholds) == ([0.0, 0.5, 1.0], [0.0, 1.0, 1.0], [math.inf, 0.5, 0.2])


def test_pr_curve_and_average_precision_hand_computed() -> None:
    precision, recall, thresholds = pr_curve([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    assert precision == pytest.approx([0.5, 2 / 3, 0.5, 1.0, 1.0])
    assert recall == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])
    assert thresholds == [0.1, 0.35, 0.4, 0.8]
    # Recall gains 0.5 at precision 1 (t=0.8) and 0.5 at precision 2/3 (t=0.35).
    ap = average_precision([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert average_precision([0.3, 0.2], [True, True]) == 1.0  # no negatives is fine for AP


def test_binary_prf_hand_computed() -> None:
    prf = binary_prf([True, True, False, False, True], [True, False, True, False, True])
    assert (prf.tp, prf.fp, prf.fn, prf.tn) == (2, 1, 1, 1)
    assert (prf.precision, prf.recall, prf.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    nothing = binary_prf([False, False], [True, False])
    assert nothing == PRF(0.0, 0.0, 0.0, tp=0, fp=0, fn=1, tn=1)
    assert prf_at([0.2, 0.5, 0.9], [False, True, True], 0.5) == PRF(1.0, 1.0, 1.0, 2, 0, 0, 1)


def test_best_f1_hand_computed() -> None:
    scores, labels = [0.9, 0.8, 0.7, 0.6], [True, False, True, False]
    # Thresholds 0.9, 0.8, 0.7, 0.6 give F1 2/3, 1/2, 4/5, 2/3.
    prf, threshold = best_f1(scores, labels)
    assert threshold == 0.7
    assert prf.f1 == pytest.approx(0.8)
    assert prf == prf_at(scores, labels, threshold)
    # F1 2/3 at both 0.9 and 0.5: the higher, more conservative threshold wins.
    assert best_f1([0.9, 0.5, 0.5, 0.5], [True, True, False, False])[1] == 0.9


def test_reliability_bins_and_ece_hand_computed() -> None:
    probs = [0.1, 0.2, 0.25, 0.6, 0.9, 1.0]
    labels = [False, False, True, True, True, False]
    table = reliability_bins(probs, labels, bins=4)
    assert [(b.lower, b.upper, b.count) for b in table] == [
        (0.0, 0.25, 3),  # 0.25 sits on an edge: it goes to the lower bin
        (0.25, 0.5, 0),
        (0.5, 0.75, 1),
        (0.75, 1.0, 2),  # 1.0 is in the last bin
    ]
    assert table[0].mean_confidence == pytest.approx(0.55 / 3)
    assert table[0].accuracy == pytest.approx(1 / 3)
    assert (table[1].mean_confidence, table[1].accuracy) == (0.0, 0.0)
    assert (table[3].mean_confidence, table[3].accuracy) == pytest.approx((0.95, 0.5))
    ece = expected_calibration_error(probs, labels, bins=4)
    assert ece == pytest.approx(3 / 6 * (0.55 / 3 - 1 / 3) * -1 + 1 / 6 * 0.4 + 2 / 6 * 0.45)
    assert expected_calibration_error([0.0, 1.0], [False, True]) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins([0.5, 1.2], [True, False])


def test_calibration_consistency_reference_under_perfect_calibration() -> None:
    rng = np.random.default_rng(7)
    probs = rng.uniform(0.0, 1.0, 150)
    # Labels drawn from the probabilities: calibrated by construction, and still an ECE far
    # from 0 on 150 answers, which is what the reference is for.
    honest = list(rng.random(150) < probs)
    c = calibration_consistency(list(probs), honest, draws=2000, seed=1)
    assert c.observed == pytest.approx(expected_calibration_error(list(probs), honest))
    assert 0.05 < c.expected < 0.12 and c.expected < c.upper
    assert c.p_value > 0.05
    # Overconfident: said 0.9, right half the time. Far above the reference.
    sure = [0.9] * 150
    half = [i % 2 == 0 for i in range(150)]
    bad = calibration_consistency(sure, half, draws=2000)
    assert bad.observed == pytest.approx(0.4)
    assert bad.observed > bad.upper and bad.p_value == 0.0
    # The reference shrinks as the sample grows (about 1/sqrt(n)).
    big = rng.uniform(0.0, 1.0, 2400)
    c_big = calibration_consistency(list(big), list(rng.random(2400) < big), draws=500)
    assert c_big.expected < c.expected / 3
    # The reference equals a slow, obvious draw-by-draw ECE for the same coins.
    coins = np.random.default_rng(3).random((50, 150)) < probs
    slow = [expected_calibration_error(list(probs), list(row)) for row in coins]
    fast = calibration_consistency(list(probs), honest, draws=50, seed=3)
    assert fast.expected == pytest.approx(float(np.mean(slow)))
    with pytest.raises(ValueError, match="draws"):
        calibration_consistency([0.5], [True], draws=0)


def test_risk_coverage_hand_computed_and_order_independent() -> None:
    scores, correct = [0.9, 0.8, 0.8, 0.1], [True, False, True, False]
    coverage, risk = risk_coverage(scores, correct)
    assert coverage == [0.25, 0.75, 1.0]
    assert risk == pytest.approx([0.0, 1 / 3, 0.5])
    assert risk_coverage(scores[::-1], correct[::-1]) == (coverage, risk)
    # Per-item risks 0, (0 + 1/2)/2 (expected over the tie's two orders), 1/3, 2/4.
    assert aurc(scores, correct) == pytest.approx((0 + 0.25 + 1 / 3 + 0.5) / 4)
    assert aurc(scores[::-1], correct[::-1]) == aurc(scores, correct)
    assert aurc([4, 3, 2, 1], [True, False, True, True]) == pytest.approx(
        (0 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    )
    assert selective_risk_at(scores, correct, 0.25) == 0.0
    assert selective_risk_at(scores, correct, 0.5) == pytest.approx(0.25)
    assert selective_risk_at(scores, correct, 1.0) == pytest.approx(0.5)
    # 0.3 * 10 is 3.0000000000000004 in floating point: still the top 3 items.
    ten = [float(10 - i) for i in range(10)]
    assert selective_risk_at(ten, [True, True, True] + [False] * 7, 0.3) == 0.0
    with pytest.raises(ValueError, match="coverage"):
        selective_risk_at(scores, correct, 0.0)


def test_aurc_with_ties_is_the_mean_over_every_tie_order() -> None:
    scores = [0.5, 0.5, 0.5, 0.2, 0.2, 0.9]
    correct = [True, False, False, True, False, True]

    def plain_aurc(order: tuple[int, ...]) -> float:
        # Without the tie rule: a stable sort keeps this order inside tie groups.
        ranked = sorted(order, key=lambda i: -scores[i])
        errors = [not correct[i] for i in ranked]
        return sum(sum(errors[:k]) / k for k in range(1, len(ranked) + 1)) / len(ranked)

    orders = list(itertools.permutations(range(len(scores))))
    expected = sum(plain_aurc(o) for o in orders) / len(orders)
    assert aurc(scores, correct) == pytest.approx(expected)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, y: roc_curve(s, y),
        lambda s, y: pr_curve(s, y),
        lambda s, y: average_precision(s, y),
        lambda s, y: prf_at(s, y, 0.5),
        lambda s, y: best_f1(s, y),
        lambda s, y: reliability_bins(s, y),
        lambda s, y: expected_calibration_error(s, y),
        lambda s, y: risk_coverage(s, y),
        lambda s, y: aurc(s, y),
        lambda s, y: selective_risk_at(s, y, 0.5),
    ],
)
def test_new_metrics_reject_empty_and_mismatched_input(call: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="no scores"):
        call([], [])
    with pytest.raises(ValueError, match="2 scores but 1 labels"):
        call([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="NaN"):
        call([math.nan, 0.2], [True, False])


def test_single_class_errors() -> None:
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_curve([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="positive"):
        pr_curve([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="positive"):
        average_precision([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="positive"):
        best_f1([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="2 predictions but 1 labels"):
        binary_prf([True, False], [True])
    with pytest.raises(ValueError):
        binary_prf([], [])


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_curves_match_counting_at_every_threshold(seed: int, decimals: int | None) -> None:
    scores, labels = _random_case(seed, decimals=decimals)
    pos, neg = sum(labels), len(labels) - sum(labels)
    cuts = sorted(set(scores), reverse=True)
    counts = [_counts(scores, labels, c) for c in cuts]
    assert auroc(scores, labels) == pytest.approx(_mann_whitney(scores, labels))

    fpr, tpr, thresholds = roc_curve(scores, labels)
    assert thresholds == [math.inf, *cuts]
    assert fpr == pytest.approx([0.0] + [fp / neg for _, fp, _, _ in counts])
    assert tpr == pytest.approx([0.0] + [tp / pos for tp, _, _, _ in counts])

    precision, recall, pr_thresholds = pr_curve(scores, labels)
    assert pr_thresholds == cuts[::-1]
    assert precision == pytest.approx([tp / (tp + fp) for tp, fp, _, _ in counts[::-1]] + [1.0])
    assert recall == pytest.approx([tp / pos for tp, _, _, _ in counts[::-1]] + [0.0])

    # Step-wise AP: each threshold's precision times the recall it adds.
    ap, last_recall = 0.0, 0.0
    for tp, fp, _, _ in counts:
        ap += (tp / pos - last_recall) * tp / (tp + fp)
        last_recall = tp / pos
    assert average_precision(scores, labels) == pytest.approx(ap)


def test_curves_with_ties_and_degenerate_input() -> None:
    # All scores tied: one point past the start, AUROC a coin flip, AP the positive share.
    assert roc_curve([0.5] * 4, [True, False, False, False]) == (
        [0.0, 1.0],
        [0.0, 1.0],
        [math.inf, 0.5],
    )
    assert pr_curve([0.5] * 4, [True, False, False, False]) == ([0.25, 1.0], [1.0, 0.0], [0.5])
    assert average_precision([0.5] * 4, [True, False, False, False]) == pytest.approx(0.25)
    # One item, one positive.
    assert pr_curve([0.4], [True]) == ([1.0, 1.0], [1.0, 0.0], [0.4])
    assert best_f1([0.4], [True]) == (PRF(1.0, 1.0, 1.0, 1, 0, 0, 0), 0.4)
    # Only positives: every item must be kept for full recall.
    assert best_f1([0.3, 0.2], [True, True]) == (PRF(1.0, 1.0, 1.0, 2, 0, 0, 0), 0.2)
    # Integer scores still give float thresholds.
    _, _, thresholds = roc_curve([3, 1, 2], [True, False, True])
    assert thresholds == [math.inf, 3.0, 2.0, 1.0]
    assert all(type(t) is float for t in thresholds + pr_curve([3, 1], [True, False])[2])
    # Infinite scores cannot be placed on the curve (scikit-learn rejects them).
    with pytest.raises(ValueError, match="infinity"):
        roc_curve([math.inf, 0.2], [True, False])


def test_binary_prf_degenerate_input() -> None:
    assert binary_prf([False] * 3, [False] * 3) == PRF(0.0, 0.0, 0.0, 0, 0, 0, 3)
    assert binary_prf([True] * 2, [False] * 2) == PRF(0.0, 0.0, 0.0, 0, 2, 0, 0)
    assert binary_prf([True] * 2, [True] * 2) == PRF(1.0, 1.0, 1.0, 2, 0, 0, 0)
    assert binary_prf([True], [False]) == PRF(0.0, 0.0, 0.0, 0, 1, 0, 0)
    prf = binary_prf([True, False], [True, True])
    assert prf == PRF(1.0, 0.5, pytest.approx(2 / 3), 1, 0, 1, 0)  # type: ignore[arg-type]
    assert all(type(v) is float for v in (prf.precision, prf.recall, prf.f1))
    assert all(type(v) is int for v in (prf.tp, prf.fp, prf.fn, prf.tn))


@pytest.mark.parametrize("seed", range(3))
def test_prf_and_best_f1_match_counting(seed: int) -> None:
    scores, labels = _random_case(seed)
    best = Fraction(0)
    exact_f1: dict[float, Fraction] = {}
    for threshold in sorted(set(scores)):
        predicted = [s >= threshold for s in scores]
        prf = prf_at(scores, labels, threshold)
        assert prf == binary_prf(predicted, labels)
        tp, fp, fn, tn = _counts(scores, labels, threshold)
        assert (prf.tp, prf.fp, prf.fn, prf.tn) == (tp, fp, fn, tn)
        assert prf.precision == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
        assert prf.recall == pytest.approx(tp / (tp + fn))
        exact_f1[threshold] = Fraction(2 * tp, 2 * tp + fp + fn)
        assert prf.f1 == pytest.approx(float(exact_f1[threshold]))
        best = max(best, exact_f1[threshold])
    prf, threshold = best_f1(scores, labels)
    assert prf.f1 == pytest.approx(float(best))
    assert exact_f1[threshold] == best
    assert prf == prf_at(scores, labels, threshold)


@pytest.mark.parametrize("seed", range(6))
def test_counted_metrics_equal_scikit_learn(seed: int) -> None:
    """AUROC, AP and P/R/F1 are counted here for speed; they must stay scikit-learn's."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    rng = random.Random(seed)
    for n in (2, 3, 7, 40):
        labels = [rng.random() < 0.3 + 0.1 * seed for _ in range(n)]
        labels[0], labels[-1] = True, False
        scores = [round(rng.random(), rng.choice([1, 2, 6])) for _ in range(n)]  # ties
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert average_precision(scores, labels) == pytest.approx(
            average_precision_score(labels, scores), abs=1e-12
        )
        predicted = [s >= 0.5 for s in scores]
        p, r, f, _ = precision_recall_fscore_support(
            labels, predicted, average="binary", zero_division=0
        )
        prf = binary_prf(predicted, labels)
        assert (prf.precision, prf.recall, prf.f1) == pytest.approx((p, r, f), abs=1e-12)


@pytest.mark.parametrize(("seed", "decimals", "bins"), [(0, 1, 10), (1, 2, 10), (2, None, 7)])
def test_reliability_bins_match_scikit_learn_calibration_curve(
    seed: int, decimals: int | None, bins: int
) -> None:
    probs, labels = _random_case(seed, decimals=decimals)
    probs[:4] = [0.0, 1.0, 0.5, 0.1]  # both ends and inner edges
    table = reliability_bins(probs, labels, bins=bins)
    assert len(table) == bins
    assert sum(b.count for b in table) == len(probs)
    filled = [b for b in table if b.count]
    prob_true, prob_pred = calibration_curve(labels, probs, n_bins=bins, strategy="uniform")
    np.testing.assert_allclose([b.accuracy for b in filled], prob_true)
    np.testing.assert_allclose([b.mean_confidence for b in filled], prob_pred)
    # calibration_curve's edges; each probability goes to the first bin whose upper edge holds it.
    edges = np.linspace(0.0, 1.0, bins + 1).tolist()
    assert [(b.lower, b.upper) for b in table] == list(itertools.pairwise(edges))
    counts = np.zeros(bins, dtype=int)
    for prob in probs:
        counts[next(b for b in range(bins) if prob <= edges[b + 1])] += 1
    assert [b.count for b in table] == counts.tolist()
    ece = sum(
        c / len(probs) * abs(t - p)
        for c, t, p in zip(counts[counts > 0], prob_true, prob_pred, strict=True)
    )
    assert expected_calibration_error(probs, labels, bins=bins) == pytest.approx(ece)


def test_reliability_bins_single_class_and_single_bin() -> None:
    table = reliability_bins([0.2, 0.9, 0.4], [True, True, True], bins=2)
    assert table == [
        ReliabilityBin(0.0, 0.5, 2, pytest.approx(0.3), 1.0),  # type: ignore[arg-type]
        ReliabilityBin(0.5, 1.0, 1, 0.9, 1.0),
    ]
    assert reliability_bins([0.2, 0.6], [True, False], bins=1) == [
        ReliabilityBin(0.0, 1.0, 2, pytest.approx(0.4), 0.5)  # type: ignore[arg-type]
    ]
    assert expected_calibration_error([0.2, 0.6], [True, False], bins=1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="at least 1"):
        reliability_bins([0.2], [True], bins=0)


@pytest.mark.parametrize("seed", range(3))
def test_risk_coverage_on_random_data(seed: int) -> None:
    scores, correct = _random_case(seed)
    coverage, risk = risk_coverage(scores, correct)
    assert coverage[-1] == 1.0
    assert risk[-1] == pytest.approx(correct.count(False) / len(correct))
    assert len(coverage) == len(set(scores))
    shuffled = list(range(len(scores)))
    random.Random(seed).shuffle(shuffled)
    s2, c2 = [scores[i] for i in shuffled], [correct[i] for i in shuffled]
    assert risk_coverage(s2, c2) == (coverage, risk)
    assert aurc(s2, c2) == pytest.approx(aurc(scores, correct))
    # At a tie-group boundary the selective risk is the curve's point.
    for cov, r in zip(coverage, risk, strict=True):
        assert selective_risk_at(scores, correct, cov) == pytest.approx(r)


def test_balanced_accuracy_is_the_mean_of_both_recalls() -> None:
    predicted = [True, True, False, False, True]
    labels = [True, False, False, False, True]
    # positives: 2 of 2 found; negatives: 2 of 3 passed.
    assert balanced_accuracy(predicted, labels) == pytest.approx((1.0 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="both classes"):
        balanced_accuracy([True, False], [True, True])
    with pytest.raises(ValueError, match="predictions"):
        balanced_accuracy([True], [True, False])
