"""Sampling consistency: the agreement rule, the sampling call sequence, and the signal's way
through the pipeline into the answer, the API's schema and the evaluation's records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.records import stored_answer
from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.core.records import Answer
from verirag.evaluators.consistency import SampleAgreement, agrees, sample_agreement
from verirag.generators.prompts import load_prompts
from verirag.pipeline.api.schemas import AnswerOut
from verirag.pipeline.evaluation.suites.abstention import own_signals
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, answer_signals

ANSWER = "The tower was completed in March 1889 [1]."


@pytest.mark.parametrize(
    ("sample", "short", "expected"),
    [
        ("1889", "March 1889", True),  # the shorter one's words are in the longer
        ("March 31, 1889", "1889", True),
        ("Denver Broncos", "the Broncos", True),
        ("Carolina Panthers", "Denver Broncos", False),
        ("5 million", "11 million", False),  # shared words, different numbers
        ("11 million people", "11 million", True),
        ("", "1889", False),  # declined or named nothing
    ],
)
def test_a_sample_agrees_on_content_words_and_numbers(
    sample: str, short: str, expected: bool
) -> None:
    assert agrees(sample, short, ANSWER) is expected


def test_a_sample_agrees_when_it_stands_in_the_cited_answer() -> None:
    assert agrees("March 1889", "", ANSWER)  # no short answer
    assert not agrees("1901", "", ANSWER)
    # Another granularity of the same fact: not the short answer, but in the cited answer.
    cited = "It was played at Levi's Stadium in the San Francisco Bay Area [1]."
    assert agrees("San Francisco", "Levi's Stadium", cited)
    assert not agrees("Sacramento", "Levi's Stadium", cited)


def test_samples_are_seeded_cleaned_and_counted() -> None:
    gen = ScriptedGenerator({}, direct=["Answer: 1889 [1].", "1901", "I don't know.", "1889"])
    prompts = load_prompts("v2")
    block = prompts.context_block([(1, "", "The tower was completed in March 1889.")])

    def draw() -> SampleAgreement:
        return sample_agreement(
            gen,
            prompts,
            block,
            "When was the tower completed?",
            "I don't know.",
            ANSWER,
            "1889",
            samples=4,
        )

    got = draw()
    # Seeds 0..3 pick the scripted replies in order; the refusal counts as disagreeing.
    assert got.samples == ("1889", "1901", "", "1889")
    assert got.score == 0.5
    assert gen.calls == ["sample"] * 4
    again = draw()
    assert again == got  # the same answer gets the same samples
    with pytest.raises(ValueError, match="at least 1"):
        sample_agreement(gen, prompts, block, "q", "idk", ANSWER, "1889", samples=0)


def _ask(tmp_path: Path, **overrides: Any) -> tuple[ScriptedGenerator, Answer]:
    gen = ScriptedGenerator(
        {"It is a null": 0.99},
        reply="It is a null operation: nothing happens [1].",
        reply_p=0.99,
        short="a null operation",
        direct=["a null operation", "a loop", "null operation"],
    )
    files = {"pass.txt": "The pass statement is a null operation: nothing happens."}
    rag = scripted_pipeline(tmp_path, gen, files, **overrides)
    return gen, rag.ask("What does the pass statement do?", "c")


def test_off_by_default_no_sample_is_drawn(tmp_path: Path) -> None:
    gen, answer = _ask(tmp_path)
    assert "sample" not in gen.calls
    assert answer.sample_agreement is None


def test_the_pipeline_samples_and_the_answer_carries_the_agreement(tmp_path: Path) -> None:
    gen, answer = _ask(tmp_path, agreement_samples=3)
    assert gen.calls.count("sample") == 3
    # "a loop" is neither the short answer nor in the cited answer: 2 of 3 agree.
    assert answer.sample_agreement == pytest.approx(2 / 3)
    out = AnswerOut.of(answer)
    assert out.sample_agreement == pytest.approx(2 / 3)
    signals = answer_signals(answer)
    assert signals["agreement"] == pytest.approx(2 / 3)
    assert [c.score for c in answer.claims] == [signals["support"]]  # one claim, decided
    assert signals["logprob"] == answer.logprob_confidence


def _record(answerable: bool, contains: bool, agreement: float | None) -> AnswerRecord:
    return stored_answer(answerable=answerable, contains=contains, signals={"agreement": agreement})


def test_each_signal_is_scored_on_the_answers_it_was_measured_on() -> None:
    records = [
        _record(True, True, 1.0),
        _record(True, False, 0.25),
        _record(False, False, 0.5),  # given without its paragraph: wrong
        _record(False, True, 0.0),  # without its paragraph but right: undecidable, left out
        _record(True, True, None),  # not measured
    ]
    values, labels = own_signals(records)["agreement"]
    assert values == [1.0, 0.25, 0.5]
    assert labels == [True, False, False]


def test_an_evaluation_run_samples_when_asked_and_says_so(tmp_path: Path) -> None:
    from verirag.core.settings import Settings
    from verirag.pipeline.evaluation.engine import EvalConfig
    from verirag.pipeline.evaluation.suites.shared import run_settings

    off = EvalConfig("abstention", tmp_path / "d.json", tmp_path / "run")
    on = EvalConfig("abstention", tmp_path / "d.json", tmp_path / "run", agreement_samples=3)
    base = Settings(data_dir=tmp_path, agreement_samples=5)
    assert run_settings(on, base).agreement_samples == 3
    assert run_settings(off, base).agreement_samples == 0  # the run's config decides
    # A run that samples says so in its config; one that does not resumes as before.
    assert on.identity()["agreement_samples"] == 3
    assert "agreement_samples" not in off.identity()
