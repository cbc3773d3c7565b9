"""bench/answer_errors.py: every answerable question is lost in exactly one place."""

from __future__ import annotations

import pytest

from bench.answer_errors import PLACES, by_rank, table, where_lost
from verirag.pipeline.evaluation.metrics import answer_contains
from verirag.pipeline.evaluation.suites.shared import AnswerRecord

SOURCES = [
    "The Edict of Nantes ended the Wars of Religion in 1598.",
    "The Treaty of Aix-la-Chapelle was signed in 1748.",
]


def _record(
    text: str,
    short: str,
    *,
    contexts: list[str] = SOURCES,
    decision: str = "review",
    answerable: bool = True,
) -> AnswerRecord:
    gold = ["the Edict of Nantes", "Edict of Nantes"]
    return AnswerRecord(
        question="What ended the Wars of Religion?",
        answerable=answerable,
        gold=gold,
        text=text,
        decision=decision,
        confidence=0.5,
        logprob_confidence=0.5,
        exact_match=0.0,
        f1=0.0,
        contains=answer_contains(text, gold),
        seconds=1.0,
        claims=1,
        flagged=0,
        contexts=contexts,
        short_answer=short,
    )


CASES = {
    "right": _record("The Edict of Nantes ended them [1].", "Edict of Nantes"),
    "not retrieved": _record("A treaty [1].", "treaty", contexts=SOURCES[1:]),
    "declined": _record("I don't know.", "", decision="abstain"),
    # 1598 stands in the source that holds the gold answer: the right passage, the wrong span.
    "misread its source": _record("They ended in 1598 [1].", "1598"),
    "read another source": _record(
        "The Treaty of Aix-la-Chapelle ended them [2].", "Treaty of Aix-la-Chapelle"
    ),
    "in no source": _record("The Peace of Westphalia ended them.", "Peace of Westphalia"),
}


@pytest.mark.parametrize("place", PLACES)
def test_each_place(place: str) -> None:
    assert where_lost(CASES[place]) == place


def test_an_empty_short_answer_to_a_given_answer_stands_in_no_source() -> None:
    assert where_lost(_record("It was a document [1].", "")) == "in no source"


def test_sources_are_read_as_contains_reads_the_answer() -> None:
    # Case and punctuation do not matter; a word inside a longer word is not a match.
    caps = _record("THE EDICT, of Nantes? [1]", "EDICT, of Nantes?")
    assert where_lost(caps) == "right"
    inside = _record("It ended in 598.", "598")
    assert where_lost(inside) == "in no source"


def test_unanswerable_questions_are_refused() -> None:
    with pytest.raises(ValueError, match="answerable"):
        where_lost(_record("x", "x", answerable=False))


def test_the_table_counts_every_question_once() -> None:
    records = [*CASES.values(), CASES["right"], _record("x", "x", answerable=False)]
    rows = table(records)
    assert [r[0] for r in rows] == list(PLACES)
    assert sum(r[1] for r in rows) == 7
    assert {r[0]: r[1] for r in rows}["right"] == 2
    assert sum(r[2] for r in rows) == pytest.approx(1.0)
    for _, _, share, low, high in rows:
        assert low <= share <= high
    assert by_rank(records) == {0: (6, 2), None: (1, 0)}
