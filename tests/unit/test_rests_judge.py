"""The rests judge: the judge reads only the source sentence a claim rests on. No models."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from tests.records import stored_answer, uninformative_signals, write_eval_run
from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.evaluators.alignment import rests_on_sources
from verirag.evaluators.decision import AnswerModel, ClaimModel, Thresholds, answer_score
from verirag.evaluators.judge import LlmJudgeVerifier
from verirag.evaluators.verifier import Evidence, Verifier
from verirag.generators.prompts import load_prompts
from verirag.pipeline.api.schemas import AnswerOut
from verirag.pipeline.evaluation.calibrate import (
    CalibrationData,
    HeldOutAnswer,
    own_from_dict,
    with_refit,
)
from verirag.pipeline.evaluation.calibration_fit import refit_own, unmeasured_signals

SOURCES = (
    "The Grainger Market opened in 1835. It replaced the Butcher Market.",
    "Newcastle has a market in Grainger Town. The Grainger Market opened in 1835 to crowds.",
)


class Recording(ScriptedGenerator):
    """Keeps each judge prompt, so a test can see what the judge was given to read."""

    def __init__(self, p_yes: dict[str, float | None], **kwargs: object) -> None:
        super().__init__(p_yes, **kwargs)  # type: ignore[arg-type]
        self.judged: list[str] = []

    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        self.judged.append(prompt)
        return super().next_token_logprobs(prompt, k)


def _verifier(gen: ScriptedGenerator, t: Thresholds | None = None, **kw: bool) -> Verifier:
    prompts = load_prompts("v2")
    return Verifier(gen, LlmJudgeVerifier(gen, prompts), prompts, t or Thresholds(), **kw)


def _evidence(verifier: Verifier, question: str, sources: Sequence[str]) -> Evidence:
    return replace(verifier.evidence(question, list(sources), ""), titles=("Grainger", "Newcastle"))


def test_a_claim_rests_on_the_sentence_sharing_most_words_across_sources() -> None:
    # Both sources hold the whole claim in one sentence: a tie goes to the earlier source.
    assert rests_on_sources("The Grainger Market opened in 1835.", SOURCES) == (0, 0, 35)
    # Two sentences share words with it; the one sharing the most is chosen.
    assert rests_on_sources("It opened to crowds in Grainger Town.", SOURCES) == (1, 41, 86)
    assert rests_on_sources("Zygmunt Bauman wrote it.", SOURCES) is None
    assert rests_on_sources("anything", ()) is None


def test_the_judge_reads_only_the_sentence_a_claim_rests_on() -> None:
    gen = Recording({"crowds": 0.3, "Butcher": 0.9})
    verifier = _verifier(gen)
    evidence = _evidence(verifier, "What is the market's history?", SOURCES)
    got = verifier.rests_judge(
        evidence, ["It replaced the Butcher Market.", "It opened to crowds."]
    )
    assert got == pytest.approx(0.3)  # the weakest claim's
    first, second = gen.judged
    # One sentence each, under its own source's number and title, nothing of the others.
    assert "It replaced the Butcher Market." in first and "1835" not in first
    assert "[1]" in first and "Grainger" in first
    assert "opened in 1835 to crowds" in second and "Grainger Town" not in second
    assert "[2]" in second and "Newcastle" in second


def test_an_undecided_claim_counts_as_a_coin_flip_and_none_decided_is_none() -> None:
    gen = Recording({"Butcher": 0.9, "crowds": None})
    verifier = _verifier(gen)
    evidence = _evidence(verifier, "What opened in 1835?", SOURCES)
    claims = ["It replaced the Butcher Market.", "It opened to crowds."]
    assert verifier.rests_judge(evidence, claims) == pytest.approx(0.5)
    # A claim whose words stand in no sentence is not judged at all: undecided.
    assert verifier.rests_judge(evidence, ["Zygmunt Bauman wrote it."]) is None
    assert len(gen.judged) == 2
    assert verifier.rests_judge(evidence, []) is None


def test_it_is_measured_only_where_the_calibration_weighs_it_and_never_for_given_text() -> None:
    answer = "The Grainger Market replaced the Butcher Market [1]."
    table: dict[str, float | None] = {"Butcher": 0.8}
    plain = ScriptedGenerator(table)
    unweighed = _verifier(plain)
    v = unweighed.verify(_evidence(unweighed, "What did it replace?", SOURCES), answer)
    assert v.rests is None and plain.calls.count("judge") == 1  # the whole-context judge only
    model = AnswerModel(bias=-1.0, support=1.0, lift=0.0, logprob=1.0, rests=2.0)
    weighed = Thresholds(own_model=model)
    assert weighed.weighs_rests and not Thresholds().weighs_rests
    gen = ScriptedGenerator(table)
    verifier = _verifier(gen, weighed)
    v = verifier.verify(_evidence(verifier, "What did it replace?", SOURCES), answer)
    assert v.rests == pytest.approx(0.8) and gen.calls.count("judge") == 2
    # The score reads it: a lower rests judge gives a lower confidence.
    assert verifier.score(v, 0.7) > verifier.score(replace(v, rests=0.1), 0.7)
    given = ScriptedGenerator(table)
    checker = _verifier(given, weighed, measure_all=True)
    v = checker.verify(_evidence(checker, "What did it replace?", SOURCES), answer, given=True)
    assert v.rests is None and given.calls.count("judge") == 1


def test_the_own_model_weighs_it_and_files_before_it_read_it_as_unweighed() -> None:
    t = Thresholds(own_model=AnswerModel(bias=-1.0, support=1.0, lift=0.0, logprob=1.0, rests=3.0))
    low = answer_score(t, 0.8, None, 0.7, rests=0.1)
    high = answer_score(t, 0.8, None, 0.7, rests=0.9)
    assert low < answer_score(t, 0.8, None, 0.7) < high
    older = Thresholds.parse(
        '{"own_model": {"bias": -1.0, "support": 1.0, "lift": 0.0, "logprob": 1.0}}', "older"
    )
    assert older.own_model is not None and older.own_model.rests == 0.0
    assert answer_score(older, 0.8, None, 0.7, rests=0.1) == answer_score(
        older, 0.8, None, 0.7, rests=0.9
    )


def test_an_answer_carries_it_through_the_pipeline_and_the_api(tmp_path: Path) -> None:
    gen = ScriptedGenerator({"Paris is": 0.9}, reply="Paris is the capital of France [1].")
    files = {"paris.txt": "Paris is the capital of France. It has many bridges."}
    rag = scripted_pipeline(tmp_path, gen, files, "c")
    rag.measure_all = True  # the shipped calibrations do not weigh it
    answer = rag.ask("What is the capital of France?", "c")
    assert answer.rests_support == pytest.approx(0.9)
    assert AnswerOut.of(answer).rests_support == answer.rests_support


def test_own_answers_keep_it_in_the_signals_file() -> None:
    raw = {
        "features": {
            "n_tokens": 5,
            "mean_logprob": -0.1,
            "min_logprob": -0.5,
            "mean_entropy": 0.2,
            "low_share": 0.0,
        },
        "lift": 0.3,
        "claim_scores": [0.8],
        "correct": True,
        "rests": 0.7,
    }
    assert own_from_dict(raw).rests == 0.7
    assert own_from_dict({k: v for k, v in raw.items() if k != "rests"}).rests is None


def _rows(n: int, run: str, seed: int, *, measured: bool) -> list[HeldOutAnswer]:
    """Answers the logprob ranks weakly and the rests judge ranks well."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        right = rng.random() < 0.5
        rows.append(
            HeldOutAnswer(
                item_id=f"{run}-{i}",
                run=run,
                correct=right,
                support=rng.uniform(0.3, 0.7),
                lift=rng.uniform(-0.1, 0.3),
                logprob=min(1.0, max(0.0, rng.gauss(0.6 if right else 0.5, 0.2))),
                alignment=rng.random(),
                # Undecided now and then even in a run that measured it.
                rests=(
                    None
                    if not measured or rng.random() < 0.05
                    else min(1.0, max(0.0, rng.gauss(0.8 if right else 0.3, 0.2)))
                ),
            )
        )
    return rows


def _thresholds() -> Thresholds:
    return Thresholds(
        version="12",
        model="qwen2.5-1.5b",
        answer_min=0.8,
        own_model=AnswerModel(bias=-4.0, support=2.0, lift=0.5, logprob=4.0, alignment=1.0),
        claim_model=ClaimModel(bias=-1.5, slope=7.0),
        report={"signals": {"own": ["support", "lift", "logprob", "alignment"]}},
    )


def test_a_refit_tries_it_only_where_every_run_measured_it() -> None:
    new = _rows(150, "eval-s90", 0, measured=True) + _rows(150, "eval-s91", 1, measured=True)
    old = _rows(300, "eval-s58", 2, measured=False)
    assert unmeasured_signals(new) == {"check", "anchor", "retrieval"}
    assert "rests" in unmeasured_signals(new + old)
    fitted, report = refit_own(_thresholds(), new, target_precision=0.9)
    assert report["signals"][-1] == "rests"
    assert fitted.own_model is not None and fitted.own_model.rests > 0
    # With runs from before it, it would be read as unknown on half the answers: not tried.
    mixed, report = refit_own(_thresholds(), new + old, target_precision=0.9)
    assert not any("rests" in name for name in report["tried"])
    assert mixed.own_model is not None and mixed.own_model.rests == 0.0


def test_a_refit_anew_fits_on_the_new_runs_and_keeps_the_old_ones_excluded() -> None:
    old = _rows(5, "eval-s58", 2, measured=False)
    data = with_refit(CalibrationData([], [], 0, "measured", {"squad": ["a"]}), old)
    new = _rows(4, "eval-s90", 0, measured=True)
    merged, anew = with_refit(data, new), with_refit(data, new, anew=True)
    assert len(merged.refit) == 9 and anew.refit == new
    everything = {"a", *(r.item_id for r in old + new)}
    assert set(merged.excluded["squad"]) == set(anew.excluded["squad"]) == everything
    assert anew.described == "measured; refit on: 4 own answers of eval-s90"


def _write_run(root: Path, n: int, seed: int, *, measured: bool) -> Path:
    rng = random.Random(seed)
    records = {}
    for i in range(n):
        right = rng.random() < 0.5
        records[f"{root.name}-{i}"] = stored_answer(
            answerable=True,
            contains=right,
            text="an answer [1]",
            signals={
                **uninformative_signals(rng),
                "retrieval": rng.uniform(0.3, 0.9),
                "rests": rng.gauss(0.8 if right else 0.3, 0.15) if measured else None,
            },
        )
    return write_eval_run(root, records)


def test_the_bench_compares_it_on_runs_that_measured_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import rests_gain

    runs = [str(_write_run(tmp_path / f"s{k}", 120, k, measured=True)) for k in (1, 2)]
    monkeypatch.setattr("sys.argv", ["rests_gain.py", *runs, "--resamples", "200"])
    rests_gain.main()
    out = capsys.readouterr().out
    assert "240 own answers" in out and "2 runs" in out
    gain = next(line for line in out.splitlines() if line.strip().startswith("gain rests "))
    assert float(gain.split()[2]) > 0.1  # an informative judge gains, one run left out
    older = str(_write_run(tmp_path / "s0", 120, 0, measured=False))
    monkeypatch.setattr("sys.argv", ["rests_gain.py", *runs, older])
    with pytest.raises(SystemExit, match="did not measure the rests judge"):
        rests_gain.main()
