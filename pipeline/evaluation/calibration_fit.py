"""The calibration fit (version 3): calibrated probabilities, a cut for a target precision,
and only out-of-fold figures.

- Logprob confidence weights: logistic regression on the generator's own labelled answers.
- Claim cut: a logistic model of P(right) on HaluEval's weakest-claim scores; a claim is
  "supported" where that probability reaches 0.5 (the score at which it does is the cut).
- Answer probability: logistic models of P(right) over (weakest claim, source lift, logprob
  confidence) for own answers, and over (weakest claim, source lift) for given answers, plus
  each newer signal (the answer check, question alignment) that raises the out-of-fold AUROC
  by at least 0.01. `Answer.confidence` is that probability. With a second set of given
  answers (HaluEval summarization, never fitted on), the given-answer model's signals are
  instead the subset, of all of them, whose worst AUROC over three sets is highest (within
  0.01, the fewest signals): HaluEval QA (out of fold), the summaries and the generator's own
  answers read as given text (both never fitted on). A blend that holds only where it was
  fitted loses to one that holds on all three. A signal one of the other two sets cannot
  measure (the anchor of a summary: its words never stand in one sentence) is read there as
  unknown, so the set it is measured on decides.
- Answer cut: the lowest out-of-fold probability at which the delivered answers (no claim
  flagged) reach the target precision, so as many right answers as possible are delivered.
- Held-out recalibration (optional): own answers of `verirag eval` runs of today's pipeline,
  on questions never fitted on, move the own-answer model's intercept (one parameter, so that
  its mean probability matches their share right) and the answer cut with it: every
  confidence moves the same way on the logit scale, so the ranking and every decision stay
  as fitted, and the probabilities describe the answers the pipeline gives now.

Every figure it reports is out of fold (k-fold, stratified; HaluEval pairs stay together),
the delivered figures with each fold's cut chosen on the other folds, with 95% bootstrap
intervals; the shipped models are then refitted on all items. (Choosing signals on the same
out-of-fold AUROC is a small selection step: four candidate sets at most.) The signals are
kept in a file, so the fit can be reproduced without models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import brentq
from sklearn.model_selection import StratifiedKFold

from verirag.evaluators.confidence import logit, sigmoid
from verirag.evaluators.decision import UNKNOWN, AnswerModel, Thresholds, answer_score
from verirag.evaluators.grounding import lift_score
from verirag.pipeline.calibrations import write_atomically
from verirag.pipeline.evaluation.calibrate import (
    CalibrationData,
    HaluRow,
    HeldOutAnswer,
    OwnAnswer,
)
from verirag.pipeline.evaluation.calibration_figures import confirm_figures, oof_figures
from verirag.pipeline.evaluation.calibration_models import (
    CLAIM_CUT,
    FORMAT_VERSION,
    GIVEN_POOL,
    MIN_GAIN,
    OWN_CANDIDATES,
    Signals,
    _answer_model,
    _both_classes,
    _fold_limit,
    _probabilities,
    answer_cut,
    fit_parts,
    given_probabilities,
    out_of_fold,
    precision_cut,
)
from verirag.pipeline.evaluation.metrics import auroc, expected_calibration_error
from verirag.pipeline.evaluation.runs import CI_RESAMPLES

__all__ = [
    "choose_signals",
    "exclusion_path",
    "fit",
    "out_of_fold",
    "precision_cut",
    "single_signal_auroc",
    "write_calibration",
]


def choose_signals(
    data: CalibrationData, base: Thresholds, folds: int, seed: int
) -> tuple[Signals, dict[str, dict[str, float | None]]]:
    """The base signals, plus each candidate that raises the out-of-fold AUROC of its model
    by MIN_GAIN, tried in a fixed order; and the AUROC of every set tried. With a second set
    of given answers, the given side is chosen on both sets instead (`_given_on_both`)."""
    right = [o.correct for o in data.own]
    h_right = [h.right for h in data.halueval]
    confirming = _both_classes([h.right for h in data.confirm])

    def scores(signals: Signals) -> tuple[float | None, float | None]:
        oof = out_of_fold(data, base, folds, seed, signals)
        return _oof_auroc(oof.own_p, right), _oof_auroc(oof.halu_p, h_right)

    chosen = Signals()
    best = dict(zip(("own", "given"), scores(chosen), strict=True))
    tried: dict[str, dict[str, float | None]] = {
        "own": {"+".join(chosen.own): best["own"]},
        "given": {"+".join(chosen.given): best["given"]},
    }
    rows: dict[str, Sequence[OwnAnswer | HaluRow]] = {"own": data.own, "given": data.halueval}
    sides = (("own", 0),) if confirming else (("own", 0), ("given", 1))
    for name in OWN_CANDIDATES:
        for side, index in sides:
            before = best[side]
            if before is None or all(getattr(r, name) is None for r in rows[side]):
                continue
            trial = replace(chosen, **{side: (*getattr(chosen, side), name)})
            got = scores(trial)[index]
            tried[side]["+".join(getattr(trial, side))] = got
            if got is not None and got >= before + MIN_GAIN:
                chosen, best[side] = trial, got
    if confirming:
        given, on_both = _given_on_both(data, base, folds, seed, chosen)
        chosen = replace(chosen, given=given)
        tried.update(on_both)
    return chosen, tried


def _given_on_both(
    data: CalibrationData, base: Thresholds, folds: int, seed: int, chosen: Signals
) -> tuple[tuple[str, ...], dict[str, dict[str, float | None]]]:
    """The given-answer signals whose model, fitted on HaluEval QA, has the highest worst
    AUROC of QA (out of fold), the second set and the own answers (a model fitted on all of
    QA), the fewest signals within MIN_GAIN of it; with every subset's figures. A signal is
    tried where QA and at least one of the other sets measure it."""
    h_right = [h.right for h in data.halueval]
    c_right = [h.right for h in data.confirm]
    own = [_as_given(o) for o in data.own]
    o_right = [o.correct for o in data.own]

    def measured(rows: Sequence[HaluRow], name: str) -> bool:
        return any(getattr(r, name) is not None for r in rows)

    pool = [
        n
        for n in GIVEN_POOL
        if measured(data.halueval, n) and (measured(data.confirm, n) or measured(own, n))
    ]
    worse: dict[str, float | None] = {}
    on_qa: dict[str, float | None] = {}
    on_second: dict[str, float | None] = {}
    on_own: dict[str, float | None] = {}
    for size in range(1, len(pool) + 1):
        for names in combinations(pool, size):
            trial = replace(chosen, given=names)
            key = "+".join(names)
            oof = out_of_fold(data, base, folds, seed, trial)
            on_qa[key] = _oof_auroc(oof.halu_p, h_right)
            parts = fit_parts(data.own, data.halueval, base, trial)
            on_second[key] = _oof_auroc(given_probabilities(parts, data.confirm, base), c_right)
            on_own[key] = _oof_auroc(given_probabilities(parts, own, base), o_right)
            figures = (on_qa[key], on_second[key], on_own[key])
            worse[key] = None if None in figures else min(f for f in figures if f is not None)
    known = {k: v for k, v in worse.items() if v is not None}
    if not known:
        return chosen.given, {"given": worse}
    top = max(known.values())
    pick = min(
        (k for k, v in known.items() if v >= top - MIN_GAIN),
        key=lambda k: (k.count("+"), -known[k]),
    )
    return tuple(pick.split("+")), {
        "given": worse,
        "given_halueval": on_qa,
        "given_summaries": on_second,
        "given_own": on_own,
    }


def _as_given(o: OwnAnswer) -> HaluRow:
    """An own answer's text signals as a given answer's (its logprobs are not used there)."""
    return HaluRow(
        o.features,
        min(o.claim_scores),
        o.lift,
        None,
        1.0,
        o.correct,
        o.item_id,
        o.check,
        o.alignment,
        o.anchor,
    )


def single_signal_auroc(data: CalibrationData) -> dict[str, dict[str, float | None]]:
    """Each signal's AUROC on its own, as measured (nothing fitted, so nothing in sample):
    how well it alone ranks right answers above wrong ones. None where it was not measured."""

    def measured(values: Sequence[float | None], labels: Sequence[bool]) -> float | None:
        kept = [(v, y) for v, y in zip(values, labels, strict=True) if v is not None]
        return _oof_auroc([v for v, _ in kept], [y for _, y in kept]) if kept else None

    right = [o.correct for o in data.own]

    def given(rows: Sequence[HaluRow]) -> dict[str, float | None]:
        labels = [h.right for h in rows]
        return {
            "support": measured([h.support for h in rows], labels),
            "lift": measured([h.lift for h in rows], labels),
            "check": measured([h.check for h in rows], labels),
            "alignment": measured([h.alignment for h in rows], labels),
            "anchor": measured([h.anchor for h in rows], labels),
        }

    second = _both_classes([h.right for h in data.confirm])
    return {
        **({"summaries": given(data.confirm)} if second else {}),
        "own": {
            "support": measured([min(o.claim_scores) for o in data.own], right),
            "lift": measured([o.lift for o in data.own], right),
            "mean_logprob": measured([o.features.mean_logprob for o in data.own], right),
            "check": measured([o.check for o in data.own], right),
            "alignment": measured([o.alignment for o in data.own], right),
            "anchor": measured([o.anchor for o in data.own], right),
            "retrieval": measured([o.retrieval for o in data.own], right),
            "rests": measured([o.rests for o in data.own], right),
            # Not a model input (its scale belongs to the embedder, which a calibration does
            # not fix): the best dense cosine among the cited sources, for comparison.
            "cited_dense_cosine": measured([_cited_dense(o) for o in data.own], right),
        },
        "halueval": given(data.halueval),
    }


def _cited_dense(o: OwnAnswer) -> float | None:
    found = [d for d in o.sources.dense if d is not None]
    return max(found) if found else None


def _oof_auroc(values: Sequence[float], labels: Sequence[bool]) -> float | None:
    return auroc(values, labels) if 0 < sum(labels) < len(labels) else None


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
    resamples: int = CI_RESAMPLES,
) -> Thresholds:
    own, halu = data.own, data.halueval
    right = [o.correct for o in own]
    h_right = [h.right for h in halu]
    if not _both_classes(h_right):
        raise ValueError("HaluEval answers must hold at least 3 right and 3 hallucinated ones")
    folds = max(2, min(folds, _fold_limit(data)))
    log(
        f"own answers: {len(own)} labelled ({sum(right)} right), "
        f"{data.abstained_without_source} abstentions without the source; "
        f"HaluEval: {len(halu)} answers; {folds}-fold, seed {seed}"
    )
    log(
        "each signal alone (AUROC, nothing fitted): "
        + "; ".join(
            f"{who} {name} {v:.3f}"
            for who, by in single_signal_auroc(data).items()
            for name, v in by.items()
            if v is not None
        )
    )
    signals, tried = choose_signals(data, base, folds, seed)
    log(
        "signals (out-of-fold AUROC of each set tried): "
        + "; ".join(
            f"{who} {name} {v:.3f}" if v is not None else f"{who} {name} n/a"
            for who, sets in tried.items()
            for name, v in sets.items()
        )
    )
    oof = out_of_fold(data, base, folds, seed, signals, target_precision=target_precision)
    figures, intervals = oof_figures(
        data, oof.own_p, oof.halu_p, oof.halu_flagged, oof.own_delivered, resamples
    )
    # The shipped cut: chosen on every item's out-of-fold probability. The delivered figures
    # above come from cuts each chosen without the fold they were measured on.
    cut, _, _ = answer_cut(oof, data, target_precision)
    report: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "single_signal_auroc": single_signal_auroc(data),
        "folds": folds,
        "seed": seed,
        "target_precision": target_precision,
        "samples": {
            "own": len(own),
            "own_right": sum(right),
            "halueval": len(halu),
            "summaries": len(data.confirm),
            "asked": len(data.asked),
        },
        "signals": {"own": list(signals.own), "given": list(signals.given), "tried": tried},
        "out_of_fold": figures,
        "intervals_95": intervals,
    }
    log(
        "out of fold: "
        + ", ".join(
            f"{k} {v:.3f}" + (" [{:.3f}, {:.3f}]".format(*intervals[k]) if k in intervals else "")
            if isinstance(v, float)
            else f"{k} n/a"
            for k, v in figures.items()
        )
    )
    precision = figures.get("delivered_precision")
    if precision is None or precision < target_precision:
        log(f"target precision {target_precision} not reached out of sample ({precision})")
    parts = fit_parts(own, halu, base, signals)
    if _both_classes([h.right for h in data.confirm]):
        second, second_ci = confirm_figures(
            data.confirm, given_probabilities(parts, data.confirm, base), resamples
        )
        report["summaries"] = {
            "figures": second,
            "intervals_95": second_ci,
            "note": "HaluEval summarization, never fitted on, but it chose the given-answer "
            "signals: a selection figure; an evaluation on pairs this file excludes is fresh",
        }
        auc, ci = second.get("summaries_auroc"), second_ci.get("summaries_auroc")
        log(
            f"given answers on the second set ({len(data.confirm)} summaries): AUROC "
            + (f"{auc:.3f}" if auc is not None else "n/a")
            + (" [{:.3f}, {:.3f}]".format(*ci) if ci else "")
        )
    version = str(int(base.version) + 1) if base.version.isdigit() else "1"
    fitted = replace(
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
        stale="",  # fitted now, on the signals just measured
    )
    if data.refit:
        refitted, got = refit_own(fitted, data.refit, target_precision=target_precision)
        log(
            f"own-answer model fitted again on {got['answers']} own answers of "
            f"{', '.join(got['runs'])} ({got['right']} right, {got['folds']}-fold): signals "
            + "; ".join(f"{k} {v:.3f}" for k, v in got["tried"].items())
            + f"; chosen {'+'.join(got['signals'])}, out-of-fold AUROC "
            f"{got['out_of_fold']['auroc']:.3f} (the fit before, never fitted on them: "
            f"{got['before']['auroc']:.3f}), ECE {got['out_of_fold']['ece']:.3f} "
            f"({got['before']['ece']:.3f}); answer cut {refitted.answer_min:.3f}"
        )
        fitted = refitted
    # An answer that lacks a signal the model weighs (a run from before the signal existed)
    # would be scored with it unknown: it says nothing exact about the model's level.
    held = [h for h in data.held_out if measures_weighed(fitted, h)]
    if len(held) < len(data.held_out):
        log(
            f"{len(data.held_out) - len(held)} held-out answers lack a signal the own-answer "
            "model weighs: left out of the recalibration"
        )
    if not held:
        return fitted
    recalibrated, shift = recalibrate(fitted, held)
    log(
        f"recalibrated on {shift['answers']} held-out own answers of {', '.join(shift['runs'])} "
        f"({shift['right']} right): intercept {shift['shift']:+.3f}, mean confidence "
        f"{shift['mean_confidence_before']:.3f} -> {shift['mean_confidence_after']:.3f} "
        f"(share right {shift['share_right']:.3f}); answer cut {fitted.answer_min:.3f} -> "
        f"{recalibrated.answer_min:.3f}, so every decision stays as fitted"
    )
    return recalibrated


# The signals a stored answer may lack (not measured by its run): every own candidate.
WEIGHED_IF_MEASURED = OWN_CANDIDATES


def measures_weighed(t: Thresholds, h: HeldOutAnswer) -> bool:
    """Whether the stored answer `h` recorded every signal `t`'s own-answer model weighs."""
    model = t.own_model
    return model is None or all(
        getattr(h, name) is not None or getattr(model, name) == 0.0 for name in WEIGHED_IF_MEASURED
    )


def held_out_score(t: Thresholds, h: HeldOutAnswer) -> float:
    """A held-out answer's confidence under `t`, as the pipeline would score it."""
    claim = t.claim_model
    return answer_score(
        t,
        claim.probability(h.support) if claim and h.support is not None else h.support,
        h.lift,
        h.logprob,
        check=h.check,
        alignment=h.alignment,
        anchor=h.anchor,
        retrieval=h.retrieval,
        rests=h.rests,
    )


def held_out_scores(t: Thresholds, held: Sequence[HeldOutAnswer]) -> list[float]:
    return [held_out_score(t, h) for h in held]


def recalibrate(t: Thresholds, held: Sequence[HeldOutAnswer]) -> tuple[Thresholds, dict[str, Any]]:
    """`t` with its own-answer model's intercept moved so that the held-out answers' mean
    confidence is their share right (the maximum-likelihood intercept with every weight
    kept), and the answer cut moved by as much on the logit scale. One parameter: a few
    hundred answers fit it well, and a shift cannot reorder answers or change a decision.
    The figures it reports on the held-out answers are in-sample for the shift."""
    if t.own_model is None:
        raise ValueError("no own-answer model to recalibrate (fit one first)")
    right = [h.correct for h in held]
    if len(held) < 20 or not _both_classes(right):
        raise ValueError(
            f"{len(held)} held-out answers, {sum(right)} right: recalibrating needs at least "
            "20, some right and some wrong"
        )
    before = held_out_scores(t, held)
    z = [logit(p) for p in before]
    share = sum(right) / len(right)
    shift = float(brentq(lambda b: sum(sigmoid(v + b) for v in z) / len(z) - share, -20, 20))
    moved = replace(
        t,
        own_model=replace(t.own_model, bias=t.own_model.bias + shift),
        answer_min=sigmoid(logit(t.answer_min) + shift),
    )
    after = held_out_scores(moved, held)
    report = {
        "answers": len(held),
        "right": sum(right),
        "runs": sorted({h.run for h in held}),
        "shift": shift,
        "share_right": share,
        "mean_confidence_before": sum(before) / len(before),
        "mean_confidence_after": sum(after) / len(after),
        "in_sample_ece_before": expected_calibration_error(before, right, 10),
        "in_sample_ece_after": expected_calibration_error(after, right, 10),
        "held_out_auroc": auroc(after, right),  # never fitted on: the weights' fresh figure
    }
    return replace(moved, report={**t.report, "recalibration": report}), report


MIN_REFIT = 200  # own answers: the floor for fitting an own-answer model


def held_columns(t: Thresholds, rows: Sequence[HeldOutAnswer]) -> dict[str, np.ndarray]:
    """The own-answer model's inputs for stored answers, as `held_out_score` reads them."""
    claim = t.claim_model

    def support(h: HeldOutAnswer) -> float:
        if h.support is None:
            return UNKNOWN
        return claim.probability(h.support) if claim else h.support

    def known(values: Sequence[float | None]) -> np.ndarray:
        return np.asarray([UNKNOWN if v is None else v for v in values], dtype=np.float64)

    return {
        "support": np.asarray([support(h) for h in rows], dtype=np.float64),
        "lift": np.asarray([lift_score(h.lift, t.grounding_scale) for h in rows]),
        "logprob": np.asarray([h.logprob for h in rows], dtype=np.float64),
        **{name: known([getattr(h, name) for h in rows]) for name in OWN_CANDIDATES},
    }


def _rows(columns: dict[str, np.ndarray], rows: Sequence[int]) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in columns.items()}


def _refit_oof(
    columns: dict[str, np.ndarray], names: Sequence[str], right: np.ndarray, folds: int, seed: int
) -> list[float]:
    p = [0.5] * len(right)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(right)), right):
        model = _answer_model(_rows(columns, train), names, right[train].astype(bool).tolist())
        for i, got in zip(test.tolist(), _probabilities(model, _rows(columns, test)), strict=True):
            p[i] = got
    return p


def unmeasured_signals(rows: Sequence[HeldOutAnswer]) -> set[str]:
    """The signals some run among `rows` did not measure (a run from before the signal
    existed, or one that did not ask for it): none of its answers has it. A model weighing one
    would read it as unknown on every answer of that run, so a refit neither keeps nor tries
    it. A run that measured it may still lack it on some answers (undecided): that is data."""
    runs: dict[str, list[HeldOutAnswer]] = {}
    for h in rows:
        runs.setdefault(h.run, []).append(h)
    return {
        name
        for name in WEIGHED_IF_MEASURED
        for answers in runs.values()
        if all(getattr(h, name) is None for h in answers)
    }


def refit_own(
    t: Thresholds,
    rows: Sequence[HeldOutAnswer],
    *,
    target_precision: float,
    folds: int = 5,
    seed: int = 0,
) -> tuple[Thresholds, dict[str, Any]]:
    """`t` with its own-answer model fitted again, every weight, on own answers of evaluation
    runs of today's pipeline (`rows`), and the answer cut chosen again on their out-of-fold
    probabilities: what a calibration's own questions cannot give, answers with a signal
    added since they were asked (the reranker's P(relevant), measured in every run since).

    Signals: `t`'s own ones, plus each other candidate measured on these answers that raises
    the out-of-fold AUROC by MIN_GAIN. Every figure reported is out of fold; the shipped
    model is then fitted on all rows. The input calibration's own AUROC on the rows is
    reported beside it (never fitted on them: a fresh figure for the weights it had)."""
    right = np.asarray([h.correct for h in rows], dtype=float)
    if len(rows) < MIN_REFIT or not _both_classes(right.astype(bool).tolist()):
        raise ValueError(
            f"{len(rows)} own answers, {int(right.sum())} right: refitting the own-answer "
            f"model needs at least {MIN_REFIT}, some right and some wrong"
        )
    if t.own_model is None:
        raise ValueError("no own-answer model to refit (fit one first)")
    folds = max(2, min(folds, int(right.sum()), int(len(right) - right.sum())))
    columns = held_columns(t, rows)
    listed = t.report.get("signals", {}).get("own")
    unmeasured = unmeasured_signals(rows)
    base = tuple(
        n
        for n in (listed or (n for n in AnswerModel.SIGNALS if getattr(t.own_model, n) != 0.0))
        if n not in unmeasured
    )
    labels = right.astype(bool).tolist()
    chosen = base
    best = auroc(_refit_oof(columns, chosen, right, folds, seed), labels)
    tried: dict[str, float] = {"+".join(chosen): best}
    for name in OWN_CANDIDATES:
        if name in chosen or name in unmeasured:
            continue
        trial = (*chosen, name)
        got = auroc(_refit_oof(columns, trial, right, folds, seed), labels)
        tried["+".join(trial)] = got
        if got >= best + MIN_GAIN:
            chosen, best = trial, got
    oof = _refit_oof(columns, chosen, right, folds, seed)
    flagged = columns["support"] < CLAIM_CUT
    pool = [i for i in range(len(rows)) if not flagged[i]]
    cut, precision, coverage = precision_cut(
        [oof[i] for i in pool], [labels[i] for i in pool], target_precision, sum(labels)
    )
    model = _answer_model(columns, chosen, labels)
    before = held_out_scores(t, rows)
    report = {
        "answers": len(rows),
        "right": int(right.sum()),
        "runs": sorted({h.run for h in rows}),
        "folds": folds,
        "seed": seed,
        "signals": list(chosen),
        "tried": tried,
        "out_of_fold": {
            "auroc": best,
            "ece": expected_calibration_error(oof, labels, 10),
            "delivered_precision": precision,
            "right_delivered": coverage,
        },
        "before": {  # the input calibration, never fitted on these answers
            "auroc": auroc(before, labels),
            "ece": expected_calibration_error(before, labels, 10),
        },
        "target_precision": target_precision,
    }
    refitted = replace(
        t,
        own_model=model,
        answer_min=float(cut),
        report={**t.report, "refit": report},
    )
    return refitted, report


def exclusion_path(calibration: Path) -> Path:
    return calibration.with_name(calibration.stem + ".exclude.json")


def write_calibration(
    fitted: Thresholds, data: CalibrationData, target: Path, shipped: Path | None = None
) -> Path:
    """The calibration file and, beside it, the ids of every item it sampled. Ids an earlier
    calibration sampled stay listed: an item once fitted on is never reported on. Earlier
    calibrations are read beside `target` and beside `shipped` (the generator's packaged
    calibration), so that a refit written elsewhere and installed by copying drops none."""
    excluded = exclusion_path(target)
    ids: dict[str, set[str]] = {k: set(v) for k, v in data.excluded.items()}
    earlier_lists = {excluded} if shipped is None else {excluded, exclusion_path(shipped)}
    for earlier in earlier_lists:
        if earlier.is_file():
            for kind, listed in json.loads(earlier.read_text()).items():
                ids.setdefault(kind, set()).update(listed)
    fitted = replace(fitted, report={**fitted.report, "excluded": excluded.name})
    # The exclusion list first: a calibration is never on disk without its list of fitted ids.
    merged = {kind: sorted(v) for kind, v in ids.items()}
    write_atomically(excluded, json.dumps(merged, indent=1, sort_keys=True) + "\n")
    write_atomically(target, fitted.dump())
    return excluded
