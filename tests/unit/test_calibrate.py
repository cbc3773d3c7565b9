"""Calibration helpers: thresholds, the logistic fit, and how own answers are labelled."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from verirag.core.records import Answer, ClaimResult, Timings
from verirag.pipeline.evaluation.calibrate import (
    CalibrationData,
    HaluRow,
    OwnAnswer,
    fit_logistic,
    own_answer,
)
from verirag.pipeline.evaluation.metrics import auroc

FEATURES = {
    "n_tokens": 5.0,
    "mean_logprob": -0.4,
    "min_logprob": -2.0,
    "mean_entropy": 0.8,
    "low_share": 0.2,
}


def _answer(text: str, decision: str = "answer", score: float | None = 0.9) -> Answer:
    claim = ClaimResult(text, 0, len(text), (1,), "supported", score, "", missing_terms=())
    return Answer(
        question="When?",
        collection="c",
        text=text,
        decision=decision,
        decision_reason="",
        confidence=0.5,
        claims=(claim,),
        citations=(),
        retrieved=(),
        generator="g",
        prompt_version="v2",
        params={},
        timings=Timings(),
        source_lift=0.7,
        confidence_features=FEATURES,
    )


def _case(seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    # Features on very different scales, as logprobs, entropies and shares are.
    x = rng.normal(size=(300, 3)) * np.array([1.0, 10.0, 0.01]) + np.array([-2.0, 5.0, 0.3])
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    y = (z @ np.array([2.0, -1.0, 0.0]) + rng.normal(scale=0.5, size=300) > 0).astype(float)
    return x, y


@pytest.mark.parametrize("l2", [0.1, 1.0, 30.0])
def test_fit_logistic_solves_the_penalised_objective(l2: float) -> None:
    """At the optimum of sum log loss + l2/2 |w|^2 (w on standardised features, bias free) the
    gradient vanishes: the residuals sum to 0 and z.T @ residual = -l2 * w."""
    x, y = _case(0)
    bias, w = fit_logistic(x, y, l2=l2)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    p = 1 / (1 + np.exp(-(x @ w + bias)))
    residual = p - y
    assert abs(residual.sum()) < 1e-2
    np.testing.assert_allclose(((x - mu) / sd).T @ residual, -l2 * w * sd, atol=1e-2)
    assert w[0] > 0 > w[1]  # the signs of the true weights


def test_fit_logistic_shrinks_with_l2_and_ignores_a_constant_feature() -> None:
    x, y = _case(1)
    x[:, 2] = 0.7
    _, loose = fit_logistic(x, y, l2=0.1)
    _, tight = fit_logistic(x, y, l2=100.0)
    assert loose[2] == pytest.approx(0.0, abs=1e-9) and tight[2] == pytest.approx(0.0, abs=1e-9)
    sd = x.std(axis=0)[:2]
    assert np.all(np.abs(tight[:2] * sd) < np.abs(loose[:2] * sd))
    bias, w = fit_logistic(x, y)
    assert auroc(list(x @ w + bias), [bool(v) for v in y]) > 0.9


def test_own_answers_are_labelled_by_source_and_gold() -> None:
    gold = ("1889",)
    right = own_answer(_answer("It was completed in 1889 [1]."), gold, gold_indexed=True)
    assert right is not None and right.correct and right.lift == 0.7
    assert right.features.mean_logprob == -0.4 and right.claim_scores == (0.9,)
    wrong = own_answer(_answer("It was completed in 1901 [1]."), gold, gold_indexed=True)
    assert wrong is not None and not wrong.correct
    # Without its source: a delivered answer is wrong, unless it still contains the gold
    # answer (memory or a sibling passage), which cannot be decided here.
    unsourced = own_answer(_answer("It was completed in 1901."), gold, gold_indexed=False)
    assert unsourced is not None and not unsourced.correct
    assert own_answer(_answer("It was completed in 1889."), gold, gold_indexed=False) is None
    assert own_answer(_answer("I don't know.", "abstain"), gold, gold_indexed=True) is None
    undecided = replace(_answer("In 1889."), claims=(replace(right_claim(), score=None),))
    row = own_answer(undecided, gold, gold_indexed=True)
    assert row is not None and row.claim_scores == (0.5,)  # an undecided claim: unknown


def right_claim() -> ClaimResult:
    return _answer("In 1889.").claims[0]


def _synthetic(n: int = 60, seed: int = 1, extra: bool = False) -> CalibrationData:
    """Own answers and HaluEval pairs whose signals separate right from wrong, with noise.
    `extra`: own answers also carry an informative answer check and a pure-noise alignment,
    and every question's outcome is recorded (half of them asked without their paragraph)."""
    from verirag.evaluators.confidence import ConfidenceFeatures
    from verirag.pipeline.evaluation.calibrate import Asked

    rng = np.random.default_rng(seed)
    own, halu, asked = [], [], []
    for i in range(n):
        good = bool(rng.random() < 0.6)
        lp = -0.2 if good else -1.0
        noise = rng.normal(0, 0.5, 3)
        feats = ConfidenceFeatures(10, lp + noise[0], lp * 4 + noise[1], 1 - lp + noise[2], 0.1)
        claim = float(np.clip((0.8 if good else 0.35) + rng.normal(0, 0.2), 0, 1))
        lift = (1.0 if good else 0.0) + float(rng.normal(0, 0.6))
        if not extra:
            own.append(OwnAnswer(feats, lift, (claim,), good, f"q{i}"))
            continue
        # Here the base signals say little (the answer rests on a source about something
        # else), and the check says more.
        claim, lift = float(rng.random()), float(rng.normal(0, 1))
        a, b, c = (float(x) for x in rng.normal(-1, 0.5, 3))
        feats = ConfidenceFeatures(10, a, b, c, 0.1)
        check = float(np.clip((0.75 if good else 0.35) + rng.normal(0, 0.2), 0, 1))
        indexed = good or bool(rng.random() < 0.3)
        own.append(
            OwnAnswer(feats, lift, (claim,), good, f"q{i}", check, float(rng.random()), indexed)
        )
        asked.append(Asked(f"q{i}", indexed, "answer", good))
        # The same question asked the other way round, withheld.
        asked.append(Asked(f"q{i}", not indexed, "abstain", False))
    for i in range(n):
        for right in (True, False):
            support = float(np.clip((0.7 if right else 0.3) + rng.normal(0, 0.25), 0, 1))
            lift = (1.2 if right else -0.2) + float(rng.normal(0, 0.6))
            halu.append(HaluRow(own[0].features, support, lift, support, 1.0, right, f"p{i}"))
    return CalibrationData(
        own, halu, 3, "synthetic", {"squad": ["q1"], "halueval": ["p1"]}, asked=asked
    )


def test_calibration_data_round_trips(tmp_path: Path) -> None:
    from verirag.pipeline.evaluation.calibrate import Sources

    for data in (_synthetic(), _synthetic(extra=True)):
        first = data.own[0]
        with_text = replace(
            first, sources=Sources("When?", "In 1889 [1].", "1889", ("It opened in 1889.",))
        )
        data = replace(data, own=[with_text, *data.own[1:]])
        path = tmp_path / "signals.json"
        data.dump(path)
        assert CalibrationData.load(path) == data


def test_files_from_before_the_anchor_measure_it_from_their_texts(tmp_path: Path) -> None:
    """The anchor is pure text: an own answer stored without it (signals files written before
    it existed) gets it from the question, short answer and sources it kept, so a refit
    `--from-signals` can weigh it; one stored with it keeps the stored value."""
    from verirag.pipeline.evaluation.calibrate import Sources, own_from_dict

    first = _synthetic().own[0]
    sources = Sources(
        "When did the tower open?",
        "It opened in 1889 [1].",
        "1889",
        ("A bridge opened in 1890.", "The tower opened in 1889."),
    )
    stored = json.loads(json.dumps(asdict(replace(first, sources=sources))))
    del stored["anchor"]
    assert own_from_dict(stored).anchor == pytest.approx(1.0)  # tower, open: both there
    sibling = {**stored, "sources": {**stored["sources"], "short": "1890"}}
    assert own_from_dict(sibling).anchor == pytest.approx(0.5)  # "opened" without the tower
    assert own_from_dict({**stored, "anchor": 0.25}).anchor == 0.25
    no_text = {**stored, "sources": {}}
    assert own_from_dict(no_text).anchor is None


def test_a_new_signal_joins_the_model_only_when_it_helps_out_of_fold() -> None:
    """The answer check separates right from wrong in this data; alignment is noise. The fit
    keeps the first, leaves the second out, and reports every set it tried."""
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import fit

    data = _synthetic(160, seed=4, extra=True)
    logged: list[str] = []
    t = fit(data, Thresholds(), "m", log=logged.append, resamples=50)
    signals = t.report["signals"]
    assert signals["own"] == ["support", "lift", "logprob", "check"]
    tried = signals["tried"]["own"]
    assert tried["support+lift+logprob+check"] >= tried["support+lift+logprob"] + 0.01
    assert "support+lift+logprob+check+alignment" in tried
    assert t.own_model is not None and t.own_model.check > 0 and t.own_model.alignment == 0
    # Given answers carry neither signal here: their model stays on the base signals.
    assert signals["given"] == ["support", "lift"]
    assert any(line.startswith("signals") for line in logged)


def test_fit_reports_selective_and_unanswerable_figures_with_intervals() -> None:
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import fit

    data = _synthetic(160, seed=4, extra=True)
    t = fit(data, Thresholds(), "m", log=lambda _: None, resamples=100)
    oof, ci = t.report["out_of_fold"], t.report["intervals_95"]
    for key in (
        "own_auroc",
        "delivered_precision",
        "answerable_coverage",
        "answerable_precision",
        "unanswerable_withheld_precision",
        "unanswerable_withheld_recall",
        "halueval_auroc",
        "halueval_balanced_accuracy",
    ):
        low, high = ci[key]
        assert 0.0 <= low <= oof[key] <= high <= 1.0, key
    # Every withheld question is either answerable (a false alarm) or not: the unanswerable
    # ones were all asked with "abstain", so recall counts them all.
    assert oof["unanswerable_withheld_recall"] == pytest.approx(1.0, abs=0.2)
    assert t.report["samples"]["asked"] == len(data.asked)


def test_fit_reports_out_of_fold_figures_and_calibrated_cuts(tmp_path: Path) -> None:
    from verirag.evaluators.decision import Thresholds, answer_score
    from verirag.pipeline.evaluation.calibration_fit import fit, write_calibration

    data = _synthetic(120)
    logged: list[str] = []
    # Refitted from a file marked stale (signals measured with a bug since fixed): the new
    # fit, on new signals, is not stale.
    base = Thresholds(version="4", stale="fitted before a fix")
    t = fit(data, base, "m", target_precision=0.9, log=logged.append, resamples=50)
    assert t.version == "5" and t.model == "m" and t.fitted_on == "synthetic"
    assert not t.stale
    report = t.report
    assert report["folds"] == 5 and report["samples"] == {
        "own": 120,
        "own_right": sum(o.correct for o in data.own),
        "halueval": 240,
        "summaries": 0,
        "asked": 0,
    }
    oof = report["out_of_fold"]
    assert 0.75 < oof["own_auroc"] <= 1.0 and 0.75 < oof["halueval_auroc"] <= 1.0
    assert oof["delivered_precision"] >= 0.9 and oof["right_answers_delivered"] > 0.3
    assert any(line.startswith("out of fold:") for line in logged)
    # A claim is supported where its calibrated P(supported) reaches 0.5.
    assert t.claim_support == 0.5 and t.claim_model is not None and t.claim_model.slope > 0
    raw_cut = -t.claim_model.bias / t.claim_model.slope
    assert t.claim_model.probability(raw_cut) == pytest.approx(0.5)
    # The answer score is a probability, from the own-answer or the given-answer model.
    assert t.own_model is not None and t.given_model is not None
    sure, unsure = answer_score(t, 1.0, 2.0, 0.9), answer_score(t, 0.0, -1.0, 0.1)
    assert 0 < unsure < 0.5 < sure < 1
    assert answer_score(t, 1.0, 2.0, None) == t.given_model.probability(1.0, 0.98201379, 0.0) or (
        answer_score(t, 1.0, 2.0, None)
        == pytest.approx(t.given_model.probability(1.0, 0.982, 0.0), abs=1e-3)
    )
    # The file round-trips and names the ids it must never be evaluated on.
    target = tmp_path / "m.json"
    excluded = write_calibration(t, data, target)
    assert Thresholds.load(target) == replace_report(t, excluded.name)
    assert json.loads(excluded.read_text()) == {"halueval": ["p1"], "squad": ["q1"]}


def replace_report(t: Any, name: str) -> Any:
    from dataclasses import replace

    return replace(t, report={**t.report, "excluded": name})


def test_fit_never_reports_in_sample_figures() -> None:
    """Labels shuffled: nothing to learn. In-sample AUROC of a fit is optimistic; out of fold
    it stays near chance."""
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import fit

    data = _synthetic(80, seed=3)
    rng = random.Random(0)
    labels = [o.correct for o in data.own]
    rng.shuffle(labels)
    own = [replace(o, correct=y) for o, y in zip(data.own, labels, strict=True)]
    shuffled = CalibrationData(own, data.halueval, 0, "shuffled", {})
    t = fit(shuffled, Thresholds(), "m", log=lambda _: None, resamples=20)
    assert 0.3 < t.report["out_of_fold"]["own_auroc"] < 0.7


def test_precision_cut_picks_the_lowest_cut_that_meets_the_target() -> None:
    from verirag.pipeline.evaluation.calibration_fit import precision_cut

    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    right = [True, True, True, False, True, False]
    # >= 0.7: 3/3; >= 0.5: 4/5 = 0.8; >= 0.4: 4/6.
    assert precision_cut(p, right, 0.8) == (0.5, 0.8, 1.0)
    assert precision_cut(p, right, 0.9) == (0.7, 1.0, 0.75)
    cut, precision, _ = precision_cut([0.5, 0.4], [False, True], 0.9)  # never reached
    assert (cut, precision) == (0.4, 0.5)


def test_halueval_pairs_stay_in_one_fold() -> None:
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import out_of_fold

    data = _synthetic(40)
    # Both answers of a pair get their probability from the same fold's model: if a pair were
    # split, its right answer would be predicted by a model that saw its hallucinated twin.
    import sklearn.model_selection as ms

    seen: list[set[str]] = []
    real = ms.StratifiedGroupKFold.split

    def spy(self: Any, x: Any, y: Any, groups: Any = None) -> Any:
        for train, test in real(self, x, y, groups):
            seen.append({str(groups[i]) for i in test})
            assert not seen[-1] & {str(groups[i]) for i in train}
            yield train, test

    ms.StratifiedGroupKFold.split = spy  # type: ignore[method-assign]
    try:
        out_of_fold(data, Thresholds(), 5, 0)
    finally:
        ms.StratifiedGroupKFold.split = real  # type: ignore[method-assign]
    assert len(seen) == 5 and set().union(*seen) == {f"p{i}" for i in range(40)}


def test_a_given_answer_is_flagged_by_its_probability_not_its_claims() -> None:
    """The HaluEval flag (and so the balanced accuracy reported) is the shipped given-answer
    rule, `given_flagged`: its out-of-fold P(right) under `given_min`, whatever its claims."""
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_figures import oof_figures
    from verirag.pipeline.evaluation.calibration_fit import out_of_fold

    data = _synthetic(60)
    for given_min in (0.5, 0.7):
        oof = out_of_fold(data, Thresholds(given_min=given_min), 5, 0)
        assert oof.halu_flagged == [p < given_min for p in oof.halu_p]
    figures, _ = oof_figures(data, oof.own_p, oof.halu_p, oof.halu_flagged, None, resamples=20)
    right = [h.right for h in data.halueval]
    caught = sum(f for f, y in zip(oof.halu_flagged, right, strict=True) if not y)
    passed = sum(not f for f, y in zip(oof.halu_flagged, right, strict=True) if y)
    expected = (caught / (len(right) - sum(right)) + passed / sum(right)) / 2
    assert figures["halueval_balanced_accuracy"] == pytest.approx(expected)


def _second_set(data: CalibrationData, n: int = 60, seed: int = 9) -> CalibrationData:
    """`data` with a second set of given answers on which source lift still separates right
    from hallucinated answers but claim support runs the other way (as the judge does on
    HaluEval summaries)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for right in (True, False):
            support = float(np.clip((0.35 if right else 0.65) + rng.normal(0, 0.2), 0, 1))
            lift = (1.0 if right else 0.0) + float(rng.normal(0, 0.6))
            rows.append(HaluRow(data.own[0].features, support, lift, support, 1.0, right, f"s{i}"))
    return replace(data, confirm=rows)


def test_given_signals_are_chosen_on_the_worse_of_two_sets() -> None:
    """Support and lift both separate HaluEval QA; on the second set support is inverted. A
    model fitted on QA alone keeps both; with the second set, the given-answer model keeps
    only the signal that holds on both, and reports each subset's figures on each set."""
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import fit

    plain = fit(_synthetic(120, seed=5), Thresholds(), "m", log=lambda _: None, resamples=50)
    assert plain.report["signals"]["given"] == ["support", "lift"]
    assert (
        "summaries" not in plain.report and "summaries" not in plain.report["single_signal_auroc"]
    )
    data = _second_set(_synthetic(120, seed=5))
    logged: list[str] = []
    t = fit(data, Thresholds(), "m", log=logged.append, resamples=50)
    signals = t.report["signals"]
    assert signals["given"] == ["lift"]
    tried = signals["tried"]
    qa, second = tried["given_halueval"], tried["given_summaries"]
    assert qa["support+lift"] > qa["lift"] and second["support+lift"] < second["lift"]
    mine = tried["given_own"]  # the generator's own answers, read as given text
    assert tried["given"]["lift"] == min(qa["lift"], second["lift"], mine["lift"])
    assert t.given_model is not None and t.given_model.support == 0 and t.given_model.lift > 0
    single = t.report["single_signal_auroc"]["summaries"]
    assert single["support"] < 0.5 < single["lift"]
    figures = t.report["summaries"]
    low, high = figures["intervals_95"]["summaries_auroc"]
    assert low <= figures["figures"]["summaries_auroc"] <= high
    assert figures["figures"]["summaries_auroc"] > 0.7
    assert t.report["samples"]["summaries"] == 120
    assert any("second set" in line for line in logged)


def _anchored(data: CalibrationData, own_sign: float, seed: int = 3) -> CalibrationData:
    """`data` whose HaluEval QA answers carry an anchor that separates them, the summaries
    none (a summary is not a short answer), and the own answers one that separates them the
    same way (`own_sign` 1) or the other way (-1). As measured on real answers, the own
    answers' source lift says little, so they are the set a lift-only model holds worst on."""
    rng = np.random.default_rng(seed)

    def anchor(right: bool, sign: float = 1.0) -> float:
        centre = 0.5 + sign * (0.3 if right else -0.3)
        return float(np.clip(centre + rng.normal(0, 0.15), 0, 1))

    return replace(
        data,
        halueval=[replace(h, anchor=anchor(h.right)) for h in data.halueval],
        own=[
            replace(o, lift=float(rng.normal(0, 1)), anchor=anchor(o.correct, own_sign))
            for o in data.own
        ],
    )


@pytest.mark.parametrize("own_sign", [1.0, -1.0])
def test_a_given_signal_the_summaries_cannot_measure_is_judged_on_own_answers(
    own_sign: float,
) -> None:
    """The anchor separates HaluEval QA; summaries cannot measure it. It joins the given
    model when it also holds on the generator's own answers, and not when it runs the other
    way there: a signal that wins only where it was fitted is left out."""
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import fit

    data = _anchored(_second_set(_synthetic(120, seed=5)), own_sign)
    t = fit(data, Thresholds(), "m", log=lambda _: None, resamples=50)
    tried = t.report["signals"]["tried"]
    assert tried["given_halueval"]["lift+anchor"] > tried["given_halueval"]["lift"] + 0.02
    # Read as unknown on the summaries: the blend ranks them as lift alone does.
    assert tried["given_summaries"]["lift+anchor"] == pytest.approx(
        tried["given_summaries"]["lift"]
    )
    assert t.given_model is not None
    if own_sign > 0:
        assert t.report["signals"]["given"] == ["lift", "anchor"] and t.given_model.anchor > 0
    else:
        assert "anchor" not in t.report["signals"]["given"] and t.given_model.anchor == 0
