"""Where answerable questions are lost: each in exactly one place, and the QA and abstention
suites report the places with intervals and tables."""

from __future__ import annotations

import pytest

from tests.records import stored_answer
from verirag.pipeline.evaluation.metrics import answer_contains
from verirag.pipeline.evaluation.suites import summarise_abstention
from verirag.pipeline.evaluation.suites.losses import PLACES, gold_rank, losses, where_lost
from verirag.pipeline.evaluation.suites.qa import summarise_qa
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
    return stored_answer(
        answerable=answerable,
        contains=answer_contains(text, gold),
        decision=decision,
        question="What ended the Wars of Religion?",
        gold=gold,
        text=text,
        contexts=contexts,
        short_answer=short,
    )


CASES = {
    "right": _record("The Edict of Nantes ended them [1].", "Edict of Nantes"),
    "not_retrieved": _record("A treaty [1].", "treaty", contexts=SOURCES[1:]),
    "declined": _record("I don't know.", "", decision="abstain"),
    # 1598 stands in the source that holds the gold answer: the right passage, the wrong span.
    "misread_source": _record("They ended in 1598 [1].", "1598"),
    "other_source": _record(
        "The Treaty of Aix-la-Chapelle ended them [2].", "Treaty of Aix-la-Chapelle"
    ),
    "no_source": _record("The Peace of Westphalia ended them.", "Peace of Westphalia"),
}


@pytest.mark.parametrize("place", PLACES)
def test_each_place(place: str) -> None:
    assert where_lost(CASES[place]) == place


def test_an_empty_short_answer_to_a_given_answer_stands_in_no_source() -> None:
    assert where_lost(_record("It was a document [1].", "")) == "no_source"


def test_a_span_of_any_source_holding_gold_is_a_misreading() -> None:
    second = "Henry IV signed the Edict of Nantes at Nantes."
    misread = _record("Henry IV ended them [2].", "Henry IV", contexts=[*SOURCES, second])
    assert where_lost(misread) == "misread_source"


def test_sources_are_read_as_contains_reads_the_answer() -> None:
    # Case and punctuation do not matter; a word inside a longer word is not a match.
    caps = _record("THE EDICT, of Nantes? [1]", "EDICT, of Nantes?")
    assert where_lost(caps) == "right"
    inside = _record("It ended in 598.", "598")
    assert where_lost(inside) == "no_source"


def test_unanswerable_questions_are_refused() -> None:
    with pytest.raises(ValueError, match="answerable"):
        where_lost(_record("x", "x", answerable=False))


def test_the_suites_report_every_question_once() -> None:
    records = [*CASES.values(), CASES["right"], _record("x", "x", answerable=False)]
    answerable = [r for r in records if r.answerable]
    for result in (
        summarise_abstention(records, [], resamples=200),
        summarise_qa(records, [], resamples=200),
    ):
        shares = {p: result.metrics[f"lost/{p}"] for p in PLACES}
        assert shares["right"] == pytest.approx(2 / 7)
        assert shares["declined"] == pytest.approx(1 / 7)
        assert sum(shares.values()) == pytest.approx(1.0)
        for place, share in shares.items():
            iv = result.intervals[f"lost/{place}"]
            assert iv.low <= share <= iv.high
        where = next(t for t in result.tables if t.title.startswith("Where answerable"))
        assert [row[1] for row in where.rows] == [2, 1, 1, 1, 1, 1]
        # delivered + review + withheld: every question once; the decline was withheld.
        assert all(row[1] == sum(row[3:]) for row in where.rows)  # type: ignore[arg-type]
        assert where.rows[2][3:] == [0, 0, 1]
    ranks = losses(answerable)[1][1]
    assert ranks.rows == [["[1]", 6, 2 / 6], ["none", 1, 0.0]]
    assert gold_rank(CASES["not_retrieved"]) is None


def test_no_answerable_question_no_loss_table() -> None:
    result = summarise_abstention([_record("x", "x", answerable=False)] * 3, [], resamples=50)
    assert not any(k.startswith("lost/") for k in result.metrics)
    assert not any(
        t.title.startswith(("Where answerable", "The first source")) for t in result.tables
    )
