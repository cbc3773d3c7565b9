"""bench/rescore_short_answers.py shows a stored answer's short answer as the pipeline would."""

from __future__ import annotations

from dataclasses import replace

from bench.rescore_short_answers import IDK, shown
from tests.records import stored_answer
from verirag.pipeline.evaluation.suites.shared import AnswerRecord

QUESTION = "What is the historic heart of Newcastle?"
TEXT = "The historic heart of Newcastle is the Grainger Town area [1]."


def _record(text: str, short: str, decision: str = "review") -> AnswerRecord:
    return stored_answer(
        question=QUESTION, gold=["Grainger Town area"], text=text, decision=decision,
        contains=True, short_answer=short,
    )  # fmt: skip


def test_a_short_answer_that_only_repeats_the_question_is_extracted_again() -> None:
    assert shown(_record(TEXT, "Newcastle")) == "Grainger Town area"
    assert shown(_record(TEXT, "")) == "Grainger Town area"


def test_a_named_short_answer_and_a_declined_answer_are_kept() -> None:
    assert shown(_record(TEXT, "Grainger Town")) == "Grainger Town"
    assert shown(_record(IDK, "", decision="abstain")) == ""
    # Already extracted (a run answered with the fallback): the same again.
    assert shown(_record(TEXT, "Grainger Town area")) == "Grainger Town area"


def test_what_the_model_named_is_shown_again_where_the_run_stored_it() -> None:
    # Shown under some other rule as the whole phrase; today's rule shows what was named.
    record = replace(_record(TEXT, "the Grainger Town area"), short_named="Grainger Town")
    assert shown(record) == "Grainger Town"
    assert shown(replace(record, short_named=None)) == "the Grainger Town area"
