"""Question alignment: whether the source sentence an answer rests on is about the question."""

from __future__ import annotations

import pytest

from verirag.evaluators.alignment import content_stems, question_alignment

TOWER = (
    "The Eiffel Tower is a wrought-iron lattice tower in Paris. "
    "It was completed in 1889 for the World's Fair. "
    "It is 330 metres tall."
)
# A sibling document: same kind of text, another subject.
BRIDGE = (
    "The Forth Bridge is a railway bridge in Scotland. "
    "It was completed in 1890 after seven years of work. "
    "It is 2.5 kilometres long."
)
QUESTION = "When was the Eiffel Tower completed?"


def test_the_source_about_the_question_aligns_better_than_a_sibling() -> None:
    right = question_alignment(QUESTION, [("It was completed in 1889 [1].", (1,))], [TOWER])
    sibling = question_alignment(QUESTION, [("It was completed in 1890 [1].", (1,))], [BRIDGE])
    assert right == pytest.approx(1.0)  # eiffel, tower, complet: all near the sentence
    assert sibling == pytest.approx(1 / 3)  # only "completed"


def test_the_window_is_the_sentence_the_claim_rests_on_and_its_neighbours() -> None:
    far = "Eiffel Tower facts. " + " ".join(f"Filler sentence {i}." for i in range(6))
    far += " It was completed in 1889."
    score = question_alignment(QUESTION, [("It was completed in 1889 [1].", (1,))], [far])
    assert score == pytest.approx(1 / 3)  # the tower is named far from the claim's sentence


def test_the_weakest_claim_and_its_cited_source_decide() -> None:
    claims = [("It was completed in 1889 [1].", (1,)), ("It was completed in 1890 [2].", (2,))]
    assert question_alignment(QUESTION, claims, [TOWER, BRIDGE]) == pytest.approx(1 / 3)
    # No valid citation: every source is read, and the best one counts.
    uncited = [("It was completed in 1889.", ())]
    assert question_alignment(QUESTION, uncited, [BRIDGE, TOWER]) == pytest.approx(1.0)
    bad = [("It was completed in 1889 [9].", (9,))]
    assert question_alignment(QUESTION, bad, [BRIDGE, TOWER]) == pytest.approx(1.0)


def test_nothing_to_measure_is_none() -> None:
    assert question_alignment("What is it?", [("It is a tower.", (1,))], [TOWER]) is None
    assert question_alignment(QUESTION, [], [TOWER]) is None
    assert question_alignment(QUESTION, [("x", (1,))], []) is None


def test_content_stems_leave_out_the_words_that_ask() -> None:
    # "how many" asks; "towers" and "tower" meet on one stem.
    assert content_stems("How many towers were named after Eiffel?") == {
        "tower",
        "named",
        "after",
        "eiffel",
    }
