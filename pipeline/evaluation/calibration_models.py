"""The calibration's models and their out-of-fold predictions: the logprob weights, the claim
model, the own-answer and given-answer models over the chosen signals, k-fold predictions
(HaluEval pairs kept together) and the answer cut for a target precision. `calibration_fit`
chooses the signals, reports and writes the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from verirag.evaluators.confidence import ConfidenceWeights, LogprobConfidence
from verirag.evaluators.decision import AnswerModel, ClaimModel, Thresholds, given_flagged
from verirag.evaluators.grounding import lift_score
from verirag.pipeline.evaluation.calibrate import (
    CalibrationData,
    HaluRow,
    OwnAnswer,
    _feature_row,
    fit_logistic,
)

FORMAT_VERSION = "3"
MIN_CLASS = 3  # fewer right (or wrong) items than this: keep what was there


CLAIM_CUT = 0.5  # a claim is "supported" when its calibrated P(supported) reaches this


# The answer models' inputs. The base signals are always in; a newer one joins only when it
# raises the out-of-fold AUROC by MIN_GAIN (own answers for the own model, HaluEval for the
# given one), so a signal that does not earn its place adds no weight to overfit with.
OWN_BASE = ("support", "lift", "logprob")
GIVEN_BASE = ("support", "lift")
CANDIDATES = ("check", "alignment", "anchor")
GIVEN_POOL = (*GIVEN_BASE, *CANDIDATES)  # with a second set, any subset of these may win
# Retrieval is the own answers' alone: a given answer's sources were handed in, not found.
# So is the rests judge: given answers (a word, a summary) rest on no sentence of their own.
OWN_CANDIDATES = (*CANDIDATES, "retrieval", "rests")
MIN_GAIN = 0.01
FALLBACK_SHARE = 0.05  # the least share of answers a cut is chosen on
UNKNOWN = 0.5  # a signal that was not measured (files from before it existed, no claim)


@dataclass(frozen=True)
class FittedParts:
    weights: ConfidenceWeights
    claim_model: ClaimModel | None
    own_model: AnswerModel | None
    given_model: AnswerModel | None

    def claim(self, raw: float) -> float:
        return self.claim_model.probability(raw) if self.claim_model else raw

    @property
    def claim_cut(self) -> float:
        return CLAIM_CUT if self.claim_model else 0.5


def _both_classes(labels: Sequence[bool]) -> bool:
    return sum(labels) >= MIN_CLASS and len(labels) - sum(labels) >= MIN_CLASS


def _known(value: float | None) -> float:
    return UNKNOWN if value is None else value


def _own_columns(
    own: Sequence[OwnAnswer],
    weights: ConfidenceWeights,
    claim: Callable[[float], float],
    scale: float,
) -> dict[str, np.ndarray]:
    conf = LogprobConfidence(weights)
    return {
        "support": np.asarray([claim(min(o.claim_scores)) for o in own], dtype=np.float64),
        "lift": np.asarray([lift_score(o.lift, scale) for o in own], dtype=np.float64),
        "logprob": np.asarray([conf.score(o.features) for o in own], dtype=np.float64),
        "check": np.asarray([_known(o.check) for o in own], dtype=np.float64),
        "alignment": np.asarray([_known(o.alignment) for o in own], dtype=np.float64),
        "anchor": np.asarray([_known(o.anchor) for o in own], dtype=np.float64),
        "retrieval": np.asarray([_known(o.retrieval) for o in own], dtype=np.float64),
        "rests": np.asarray([_known(o.rests) for o in own], dtype=np.float64),
    }


def _given_columns(
    halu: Sequence[HaluRow], claim: Callable[[float], float], scale: float
) -> dict[str, np.ndarray]:
    return {
        "support": np.asarray([claim(h.support) for h in halu], dtype=np.float64),
        "lift": np.asarray([lift_score(h.lift, scale) for h in halu], dtype=np.float64),
        "logprob": np.zeros(len(halu)),  # not the generator's text: no doubt to read
        "check": np.asarray([_known(h.check) for h in halu], dtype=np.float64),
        "alignment": np.asarray([_known(h.alignment) for h in halu], dtype=np.float64),
        "anchor": np.asarray([_known(h.anchor) for h in halu], dtype=np.float64),
        "retrieval": np.full(len(halu), UNKNOWN),
        "rests": np.full(len(halu), UNKNOWN),
    }


def _answer_model(
    columns: dict[str, np.ndarray], names: Sequence[str], right: Sequence[bool]
) -> AnswerModel:
    bias, w = fit_logistic(
        np.column_stack([columns[n] for n in names]), np.asarray(right, dtype=float)
    )
    weights = {"support": 0.0, "lift": 0.0, **{n: float(v) for n, v in zip(names, w, strict=True)}}
    return AnswerModel(bias=bias, **weights)


def _probabilities(model: AnswerModel | None, columns: dict[str, np.ndarray]) -> list[float]:
    n = len(columns["support"])
    if model is None:
        return [0.5] * n
    return [
        model.probability(*(float(columns[c][i]) for c in AnswerModel.SIGNALS)) for i in range(n)
    ]


def _claim_model(halu: Sequence[HaluRow]) -> ClaimModel | None:
    """P(right) of a given answer from its weakest claim's raw score, which is what a claim's
    calibrated P(supported) is read from; None when the score does not rise with it."""
    right = [h.right for h in halu]
    if not _both_classes(right):
        return None
    support = np.asarray([[h.support] for h in halu], dtype=np.float64)
    bias, (slope,) = fit_logistic(support, np.asarray(right, dtype=float))
    return ClaimModel(bias, float(slope)) if slope > 1e-9 else None


@dataclass(frozen=True)
class Signals:
    """Which signals each answer model reads."""

    own: tuple[str, ...] = OWN_BASE
    given: tuple[str, ...] = GIVEN_BASE


def fit_parts(
    own: Sequence[OwnAnswer],
    halu: Sequence[HaluRow],
    base: Thresholds,
    signals: Signals = Signals(),
) -> FittedParts:
    right = [o.correct for o in own]
    weights = base.weights
    if _both_classes(right):
        bias, w = fit_logistic(
            np.asarray([_feature_row(o.features) for o in own]), np.asarray(right, dtype=float)
        )
        weights = ConfidenceWeights(bias, *map(float, w))
    claim_model = _claim_model(halu)
    parts = FittedParts(weights, claim_model, None, None)
    scale = base.grounding_scale
    own_model = None
    if _both_classes(right):
        own_model = _answer_model(
            _own_columns(own, weights, parts.claim, scale), signals.own, right
        )
    given_model = None
    h_right = [h.right for h in halu]
    if _both_classes(h_right):
        given_model = _answer_model(
            _given_columns(halu, parts.claim, scale), signals.given, h_right
        )
    return FittedParts(weights, claim_model, own_model, given_model)


def given_probabilities(
    parts: FittedParts, rows: Sequence[HaluRow], base: Thresholds
) -> list[float]:
    """P(right) of given answers (e.g. a second set's) under fitted parts."""
    return _probabilities(
        parts.given_model, _given_columns(rows, parts.claim, base.grounding_scale)
    )


@dataclass(frozen=True)
class OutOfFold:
    own_p: list[float]  # P(right) of each own answer, from a fit that did not see it
    halu_p: list[float]
    own_flagged: list[bool]  # a claim under its fold's claim cut
    halu_flagged: list[bool]  # `given_flagged` by its fold's given model
    # Delivered under its fold's model and answer cut, the cut chosen by an inner
    # cross-validation of the training folds alone (None: not computed).
    own_delivered: list[bool] | None = None


def out_of_fold(
    data: CalibrationData,
    base: Thresholds,
    folds: int,
    seed: int,
    signals: Signals = Signals(),
    *,
    target_precision: float | None = None,
) -> OutOfFold:
    """Out-of-fold P(right) of every own and HaluEval answer: each fold is predicted by a fit
    on the others. With `target_precision`, each fold's answer cut is chosen the way the
    shipped one is, on the other folds only, so the delivered figures are out of sample too."""
    own, halu = data.own, data.halueval
    scale = base.grounding_scale
    own_p, halu_p = [0.5] * len(own), [0.5] * len(halu)
    own_flag, halu_flag = [False] * len(own), [False] * len(halu)
    delivered: list[bool] | None = [False] * len(own) if target_precision is not None else None
    right = np.asarray([o.correct for o in own])
    h_right = np.asarray([h.right for h in halu])
    # Both halves of a HaluEval pair fall in the same fold (they share a question).
    groups = np.asarray([h.item_id or str(i // 2) for i, h in enumerate(halu)])
    own_splits = _splits(StratifiedKFold(folds, shuffle=True, random_state=seed), right, None)
    halu_splits = _splits(
        StratifiedGroupKFold(folds, shuffle=True, random_state=seed), h_right, groups
    )
    for (own_train, own_test), (halu_train, halu_test) in zip(own_splits, halu_splits, strict=True):
        train_own, train_halu = [own[i] for i in own_train], [halu[i] for i in halu_train]
        parts = fit_parts(train_own, train_halu, base, signals)
        test_own = [own[i] for i in own_test]
        own_cols = _own_columns(test_own, parts.weights, parts.claim, scale)
        for i, p, support in zip(
            own_test, _probabilities(parts.own_model, own_cols), own_cols["support"], strict=True
        ):
            own_p[i] = p
            own_flag[i] = bool(support < parts.claim_cut)
        test_halu = [halu[i] for i in halu_test]
        halu_cols = _given_columns(test_halu, parts.claim, scale)
        for i, p in zip(halu_test, _probabilities(parts.given_model, halu_cols), strict=True):
            halu_p[i] = p
            halu_flag[i] = given_flagged(p, base)
        if delivered is not None and target_precision is not None:
            inner = CalibrationData(train_own, train_halu, 0, "", {})
            inner_folds = max(2, min(folds, _fold_limit(inner)))
            cut = answer_cut(
                out_of_fold(inner, base, inner_folds, seed, signals), inner, target_precision
            )[0]
            for i in own_test:
                delivered[i] = not own_flag[i] and own_p[i] >= cut
    return OutOfFold(own_p, halu_p, own_flag, halu_flag, delivered)


def _fold_limit(data: CalibrationData) -> int:
    right = sum(o.correct for o in data.own)
    return min(right, len(data.own) - right, len(data.halueval) // 2)


def answer_cut(oof: OutOfFold, data: CalibrationData, target: float) -> tuple[float, float, float]:
    """(cut, precision, share of right answers delivered) for the answers no claim flags."""
    right = [o.correct for o in data.own]
    pool = [i for i, flagged in enumerate(oof.own_flagged) if not flagged]
    if not pool:
        return 1.0, 0.0, 0.0
    return precision_cut([oof.own_p[i] for i in pool], [right[i] for i in pool], target, sum(right))


def _splits(
    splitter: StratifiedKFold | StratifiedGroupKFold,
    labels: npt.NDArray[np.bool_],
    groups: npt.NDArray[np.str_] | None,
) -> list[tuple[list[int], list[int]]]:
    index = np.zeros(len(labels))
    return [
        (train.tolist(), test.tolist()) for train, test in splitter.split(index, labels, groups)
    ]


def precision_cut(
    probability: Sequence[float], right: Sequence[bool], target: float, n_right: int = 0
) -> tuple[float, float, float]:
    """(cut, precision, share of the `n_right` right answers delivered) for the lowest cut
    whose delivered answers (probability >= cut) are at least `target` precise; when none
    is, the most precise cut. Only cuts that deliver at least FALLBACK_SHARE of the answers
    count: a precision read off a handful of answers is noise (on 450 own answers whose
    precision levels off at 0.87, the single most confident answer, right, chose a cut
    that delivered 1 right answer in 200)."""
    order = sorted(set(probability), reverse=True)
    best: tuple[float, float, float] | None = None
    top: tuple[float, float, float] = (1.0 + 1e-9, 0.0, 0.0)
    n_right = max(1, n_right or sum(right))
    enough = max(1, math.ceil(FALLBACK_SHARE * len(probability)))
    for cut in order:
        delivered = [y for p, y in zip(probability, right, strict=True) if p >= cut]
        precision = sum(delivered) / len(delivered)
        found = (cut, precision, sum(delivered) / n_right)
        if len(delivered) < enough:
            continue
        if precision >= target:
            best = found
        if precision > top[1]:
            top = found
    return best if best is not None else top
