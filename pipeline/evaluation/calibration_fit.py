"""The calibration fit (version 3): calibrated probabilities, a cut for a target precision,
and only out-of-fold figures.

- Logprob confidence weights: logistic regression on the generator's own labelled answers.
- Claim cut: a logistic model of P(right) on HaluEval's weakest-claim scores; a claim is
  "supported" where that probability reaches 0.5 (the score at which it does is the cut).
- Answer probability: logistic models of P(right) over (weakest claim, source lift, logprob
  confidence) for own answers, and over (weakest claim, source lift) for given answers.
  `Answer.confidence` is that probability.
- Answer cut: the lowest out-of-fold probability at which the delivered answers (no claim
  flagged) reach the target precision, so as many right answers as possible are delivered.

Every figure it reports is out of fold (k-fold, stratified; HaluEval pairs stay together);
the shipped models are then refitted on all items. The signals are kept in a file, so the fit
can be reproduced without models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from verirag.evaluators.confidence import ConfidenceWeights, LogprobConfidence
from verirag.evaluators.decision import AnswerModel, ClaimModel, Thresholds
from verirag.evaluators.grounding import lift_score
from verirag.pipeline.evaluation.calibrate import (
    CalibrationData,
    HaluRow,
    OwnAnswer,
    _feature_row,
    fit_logistic,
)
from verirag.pipeline.evaluation.metrics import auroc, expected_calibration_error

FORMAT_VERSION = "3"
MIN_CLASS = 3  # fewer right (or wrong) items than this: keep what was there


CLAIM_CUT = 0.5  # a claim is "supported" when its calibrated P(supported) reaches this


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


def _own_rows(
    own: Sequence[OwnAnswer],
    weights: ConfidenceWeights,
    claim: Callable[[float], float],
    scale: float,
) -> np.ndarray:
    conf = LogprobConfidence(weights)
    return np.asarray(
        [
            [claim(min(o.claim_scores)), lift_score(o.lift, scale), conf.score(o.features)]
            for o in own
        ],
        dtype=np.float64,
    )


def _given_rows(
    halu: Sequence[HaluRow], claim: Callable[[float], float], scale: float
) -> np.ndarray:
    return np.asarray(
        [[claim(h.support), lift_score(h.lift, scale)] for h in halu], dtype=np.float64
    )


def _claim_model(halu: Sequence[HaluRow]) -> ClaimModel | None:
    """P(right) of a given answer from its weakest claim's raw score, which is what a claim's
    calibrated P(supported) is read from; None when the score does not rise with it."""
    right = [h.right for h in halu]
    if not _both_classes(right):
        return None
    support = np.asarray([[h.support] for h in halu], dtype=np.float64)
    bias, (slope,) = fit_logistic(support, np.asarray(right, dtype=float))
    return ClaimModel(bias, float(slope)) if slope > 1e-9 else None


def fit_parts(own: Sequence[OwnAnswer], halu: Sequence[HaluRow], base: Thresholds) -> FittedParts:
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
        bias, (ws, wl, wc) = fit_logistic(
            _own_rows(own, weights, parts.claim, scale), np.asarray(right, dtype=float)
        )
        own_model = AnswerModel(bias, float(ws), float(wl), float(wc))
    given_model = None
    h_right = [h.right for h in halu]
    if _both_classes(h_right):
        bias, (ws, wl) = fit_logistic(
            _given_rows(halu, parts.claim, scale), np.asarray(h_right, dtype=float)
        )
        given_model = AnswerModel(bias, float(ws), float(wl))
    return FittedParts(weights, claim_model, own_model, given_model)


def _own_probability(parts: FittedParts, own: Sequence[OwnAnswer], scale: float) -> list[float]:
    model = parts.own_model
    if model is None:
        return [0.5] * len(own)
    return [model.probability(*row) for row in _own_rows(own, parts.weights, parts.claim, scale)]


def _given_probability(parts: FittedParts, halu: Sequence[HaluRow], scale: float) -> list[float]:
    model = parts.given_model
    if model is None:
        return [0.5] * len(halu)
    return [model.probability(s, lift, 0.0) for s, lift in _given_rows(halu, parts.claim, scale)]


def out_of_fold(
    data: CalibrationData, base: Thresholds, folds: int, seed: int
) -> tuple[list[float], list[float], list[bool]]:
    """Out-of-fold P(right) of every own and HaluEval answer, and whether each own answer had
    a claim flagged (under its fold's claim model): each fold is predicted by a fit on the
    others."""
    own, halu = data.own, data.halueval
    scale = base.grounding_scale
    own_p = [0.5] * len(own)
    own_flag = [False] * len(own)
    halu_p = [0.5] * len(halu)
    right = np.asarray([o.correct for o in own])
    h_right = np.asarray([h.right for h in halu])
    # Both halves of a HaluEval pair fall in the same fold (they share a question).
    groups = np.asarray([h.item_id or str(i // 2) for i, h in enumerate(halu)])
    own_splits = _splits(StratifiedKFold(folds, shuffle=True, random_state=seed), right, None)
    halu_splits = _splits(
        StratifiedGroupKFold(folds, shuffle=True, random_state=seed), h_right, groups
    )
    for (own_train, own_test), (halu_train, halu_test) in zip(own_splits, halu_splits, strict=True):
        parts = fit_parts([own[i] for i in own_train], [halu[i] for i in halu_train], base)
        for i, p in zip(
            own_test, _own_probability(parts, [own[i] for i in own_test], scale), strict=True
        ):
            own_p[i] = p
            own_flag[i] = parts.claim(min(own[i].claim_scores)) < parts.claim_cut
        for i, p in zip(
            halu_test, _given_probability(parts, [halu[i] for i in halu_test], scale), strict=True
        ):
            halu_p[i] = p
    return own_p, halu_p, own_flag


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
    whose delivered answers (probability >= cut) are at least `target` precise; the most
    precise cut when none is."""
    order = sorted(set(probability), reverse=True)
    best: tuple[float, float, float] | None = None
    top: tuple[float, float, float] = (1.0 + 1e-9, 0.0, 0.0)
    n_right = max(1, n_right or sum(right))
    for cut in order:
        delivered = [y for p, y in zip(probability, right, strict=True) if p >= cut]
        precision = sum(delivered) / len(delivered)
        found = (cut, precision, sum(delivered) / n_right)
        if precision >= target:
            best = found
        if precision > top[1]:
            top = found
    return best if best is not None else top


def fit(
    data: CalibrationData,
    base: Thresholds,
    model: str,
    *,
    target_precision: float = 0.9,
    folds: int = 5,
    seed: int = 0,
    judge: str = "same",
    backend: str = "llama.cpp",
    log: Callable[[str], None] = print,
) -> Thresholds:
    own, halu = data.own, data.halueval
    right = [o.correct for o in own]
    h_right = [h.right for h in halu]
    if not _both_classes(h_right):
        raise ValueError("HaluEval answers must hold at least 3 right and 3 hallucinated ones")
    folds = max(2, min(folds, sum(right), len(right) - sum(right), len(halu) // 2))
    log(
        f"own answers: {len(own)} labelled ({sum(right)} right), "
        f"{data.abstained_without_source} abstentions without the source; "
        f"HaluEval: {len(halu)} answers; {folds}-fold, seed {seed}"
    )
    own_p, halu_p, own_flag = out_of_fold(data, base, folds, seed)
    # Delivered: no claim flagged by the claim model of the fold that judged it.
    pool = [i for i, flagged in enumerate(own_flag) if not flagged]
    cut, precision, coverage = (
        precision_cut(
            [own_p[i] for i in pool], [right[i] for i in pool], target_precision, sum(right)
        )
        if pool
        else (1.0, 0.0, 0.0)
    )

    def oof_auroc(values: Sequence[float], labels: Sequence[bool]) -> float | None:
        return auroc(values, labels) if 0 < sum(labels) < len(labels) else None

    oof: dict[str, float | None] = {
        "own_auroc": oof_auroc(own_p, right),
        "own_ece": expected_calibration_error(own_p, right, bins=5) if own else None,
        "halueval_auroc": oof_auroc(halu_p, h_right),
        "halueval_ece": expected_calibration_error(halu_p, h_right, bins=5),
        "delivered_precision": precision,
        "right_answers_delivered": coverage,
    }
    report: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "folds": folds,
        "seed": seed,
        "target_precision": target_precision,
        "samples": {"own": len(own), "own_right": sum(right), "halueval": len(halu)},
        "out_of_fold": oof,
    }
    log(
        "out of fold: "
        + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} n/a" for k, v in oof.items())
    )
    if precision < target_precision:
        log(f"target precision {target_precision} not reached out of fold (best {precision:.3f})")
    parts = fit_parts(own, halu, base)
    version = str(int(base.version) + 1) if base.version.isdigit() else "1"
    return replace(
        base,
        version=version,
        model=model,
        judge=judge,
        backend=backend,
        weights=parts.weights,
        claim_support=parts.claim_cut,
        claim_model=parts.claim_model,
        own_model=parts.own_model,
        given_model=parts.given_model,
        answer_min=float(cut),
        fitted_on=data.described,
        report=report,
    )


def exclusion_path(calibration: Path) -> Path:
    return calibration.with_name(calibration.stem + ".exclude.json")


def write_calibration(fitted: Thresholds, data: CalibrationData, target: Path) -> Path:
    """The calibration file and, beside it, the ids of every item it sampled."""
    excluded = exclusion_path(target)
    fitted = replace(fitted, report={**fitted.report, "excluded": excluded.name})
    target.write_text(fitted.dump())
    excluded.write_text(json.dumps(data.excluded, indent=1, sort_keys=True) + "\n")
    return excluded
