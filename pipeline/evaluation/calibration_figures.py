"""The out-of-sample figures a calibration reports, with 95% bootstrap intervals.

Every probability and decision here comes from a fit that did not see the item
(`calibration_fit.out_of_fold`); the answer cut of each fold was chosen on the other folds.
Units are resampled as they were sampled: own answers, HaluEval pairs, asked questions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from verirag.pipeline.evaluation.calibrate import CalibrationData, HaluRow
from verirag.pipeline.evaluation.metrics import (
    auroc,
    balanced_accuracy,
    expected_calibration_error,
)
from verirag.pipeline.evaluation.runs import CI_RESAMPLES
from verirag.pipeline.evaluation.suites.shared import bootstrap_intervals

Figures = dict[str, float | None]
Computed = dict[str, float]  # a statistic that cannot be computed raises ValueError instead
ECE_BINS = 10


def _auroc(values: Sequence[float], labels: Sequence[bool]) -> float:
    if not 0 < sum(labels) < len(labels):
        raise ValueError("one class only")
    return auroc(values, labels)


def _ratio(num: int, den: int) -> float:
    if den == 0:
        raise ValueError("empty")
    return num / den


def _own(p: Sequence[float], right: Sequence[bool], delivered: Sequence[bool] | None) -> Computed:
    out: Computed = {
        "own_auroc": _auroc(p, right),
        "own_ece": expected_calibration_error(p, right, bins=ECE_BINS),
    }
    if delivered is not None:
        got = [y for y, d in zip(right, delivered, strict=True) if d]
        out["delivered_precision"] = _ratio(sum(got), len(got))
        out["right_answers_delivered"] = _ratio(sum(got), sum(right))
    return out


def _halu(p: Sequence[float], right: Sequence[bool], flagged: Sequence[bool]) -> Computed:
    return {
        "halueval_auroc": _auroc(p, right),
        "halueval_ece": expected_calibration_error(p, right, bins=ECE_BINS),
        # Flagged (`given_flagged`) as the detector of hallucinated answers.
        "halueval_balanced_accuracy": balanced_accuracy(flagged, [not y for y in right]),
    }


def _asked(units: Sequence[tuple[bool, bool, bool]]) -> Computed:
    """(answerable, delivered, right) per asked question."""
    answerable = [(d, y) for a, d, y in units if a]
    delivered = [y for d, y in answerable if d]
    withheld = [a for a, d, _ in units if not d]
    unanswerable = sum(not a for a, _, _ in units)
    return {
        "answerable_coverage": _ratio(len(delivered), len(answerable)),
        "answerable_precision": _ratio(sum(delivered), len(delivered)),
        "unanswerable_withheld_precision": _ratio(sum(not a for a in withheld), len(withheld)),
        "unanswerable_withheld_recall": _ratio(sum(not a for a in withheld), unanswerable),
    }


def _safe(compute: Callable[[], Computed], keys: Sequence[str]) -> Figures:
    try:
        return dict(compute())
    except ValueError:
        return dict.fromkeys(keys)


def asked_units(data: CalibrationData, delivered: Sequence[bool]) -> list[tuple[bool, bool, bool]]:
    """Each asked question as (answerable, delivered, right). A labelled answer is delivered
    as its out-of-fold decision says; an unlabelled one (withheld, or answered from memory
    without its paragraph) as it was decided when asked."""
    labelled = {
        (o.item_id, o.indexed): (d, o.correct) for o, d in zip(data.own, delivered, strict=True)
    }
    units = []
    for a in data.asked:
        d, y = labelled.get((a.item_id, a.indexed), (a.decision == "answer", False))
        units.append((a.indexed, d, y and a.indexed))
    return units


def oof_figures(
    data: CalibrationData,
    own_p: Sequence[float],
    halu_p: Sequence[float],
    halu_flagged: Sequence[bool],
    delivered: Sequence[bool] | None,
    resamples: int = CI_RESAMPLES,
) -> tuple[Figures, dict[str, list[float]]]:
    """(figures, their 95% intervals as [low, high])."""
    right = [o.correct for o in data.own]
    h_right = [h.right for h in data.halueval]
    own_keys = ["own_auroc", "own_ece", "delivered_precision", "right_answers_delivered"]
    halu_keys = ["halueval_auroc", "halueval_ece", "halueval_balanced_accuracy"]
    figures: Figures = {
        **_safe(lambda: _own(own_p, right, delivered), own_keys),
        **_safe(lambda: _halu(halu_p, h_right, halu_flagged), halu_keys),
    }
    units = asked_units(data, delivered) if delivered is not None and data.asked else []
    if units:
        figures.update(_safe(lambda: _asked(units), list(_ASKED_KEYS)))
    intervals: dict[str, list[float]] = {}

    def collect(found: Mapping[str, object]) -> None:
        for key, interval in found.items():
            intervals[key] = [interval.low, interval.high]  # type: ignore[attr-defined]

    collect(
        bootstrap_intervals(
            len(right),
            lambda rows: _own(
                [own_p[i] for i in rows],
                [right[i] for i in rows],
                [delivered[i] for i in rows] if delivered is not None else None,
            ),
            resamples,
        )
    )
    pairs = _pair_rows(data)
    collect(
        bootstrap_intervals(
            len(pairs),
            lambda rows: _halu(
                [halu_p[j] for i in rows for j in pairs[i]],
                [h_right[j] for i in rows for j in pairs[i]],
                [halu_flagged[j] for i in rows for j in pairs[i]],
            ),
            resamples,
        )
    )
    if units:
        collect(
            bootstrap_intervals(
                len(units), lambda rows: _asked([units[i] for i in rows]), resamples
            )
        )
    return figures, intervals


_ASKED_KEYS = (
    "answerable_coverage",
    "answerable_precision",
    "unanswerable_withheld_precision",
    "unanswerable_withheld_recall",
)


def confirm_figures(
    rows: Sequence[HaluRow], p: Sequence[float], resamples: int = CI_RESAMPLES
) -> tuple[Figures, dict[str, list[float]]]:
    """AUROC of the given-answer model on the second set (never fitted on), with its 95%
    interval over pairs. The set chose the model's signals, so this is a selection figure,
    not a fresh one: a summarization sample the calibration excluded gives that."""
    right = [h.right for h in rows]
    figures = _safe(lambda: {"summaries_auroc": _auroc(p, right)}, ["summaries_auroc"])
    pairs = _groups(rows)
    found = bootstrap_intervals(
        len(pairs),
        lambda picked: {
            "summaries_auroc": _auroc(
                [p[j] for i in picked for j in pairs[i]],
                [right[j] for i in picked for j in pairs[i]],
            )
        },
        resamples,
    )
    return figures, {k: [v.low, v.high] for k, v in found.items()}


def _pair_rows(data: CalibrationData) -> list[list[int]]:
    return _groups(data.halueval)


def _groups(rows: Sequence[HaluRow]) -> list[list[int]]:
    """HaluEval row indices grouped by pair, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(rows):
        groups.setdefault(h.item_id or str(i // 2), []).append(i)
    return list(groups.values())
