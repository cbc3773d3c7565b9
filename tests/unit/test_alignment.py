"""Question alignment: whether the source sentence an answer rests on is about the question."""

from __future__ import annotations

import pytest

from verirag.evaluators.alignment import (
    _sentences,
    anchor_alignment,
    content_stems,
    question_alignment,
)

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


def test_the_anchor_finds_the_short_answer_where_the_question_is_asked() -> None:
    # Both sources hold a year; only the tower's sentence about 1889 is where it is asked.
    assert anchor_alignment(QUESTION, "1889", [BRIDGE, TOWER]) == pytest.approx(1.0)
    # The sibling's year stands among the bridge's words: only "completed" is asked there.
    assert anchor_alignment(QUESTION, "1890", [BRIDGE, TOWER]) == pytest.approx(1 / 3)


def test_the_anchor_needs_all_of_the_short_answer_in_one_sentence() -> None:
    # "Paris" and "1889" stand in the tower source, but in different sentences far apart.
    far = "The Eiffel Tower is in Paris. " + " ".join(f"Filler {i}." for i in range(5))
    far += " It was completed in 1889."
    assert anchor_alignment(QUESTION, "Paris 1889", [far]) == 0.0
    # The window is the sentence holding it and its neighbours, as for claims.
    assert anchor_alignment(QUESTION, "1889", [far]) == pytest.approx(1 / 3)
    # Function words of the short answer are not required ("the", "in").
    assert anchor_alignment(QUESTION, "in the 1889", [TOWER]) == pytest.approx(1.0)


def test_an_unnamed_or_unfound_short_answer_anchors_nothing() -> None:
    assert anchor_alignment(QUESTION, "", [TOWER]) == 0.0
    assert anchor_alignment(QUESTION, "the", [TOWER]) == 0.0  # no content word
    assert anchor_alignment(QUESTION, "1901", [TOWER, BRIDGE]) == 0.0
    # Nothing to measure: no content word asked, or no source.
    assert anchor_alignment("What is it?", "1889", [TOWER]) is None
    assert anchor_alignment(QUESTION, "1889", []) is None


def test_initials_do_not_end_a_sentence() -> None:
    # Split after "C." and "J.", the name's words stood in three sentences and anchored nothing.
    source = (
        "The Broncos' leading rusher was C. J. Anderson with 720 yards. "
        "Ronnie Hillman added 863 yards. U.S. viewers saw the game on CBS."
    )
    question = "Who was the Broncos' leading rusher?"
    assert anchor_alignment(question, "C. J. Anderson", [source]) == pytest.approx(1.0)
    # A sentence that ends with a word still ends, and an initial at the very start is one.
    assert _sentences(source) == [
        "The Broncos' leading rusher was C. J. Anderson with 720 yards.",
        "Ronnie Hillman added 863 yards.",
        "U.S. viewers saw the game on CBS.",
    ]
    assert _sentences("J. Smith wrote it. It sold.") == ["J. Smith wrote it.", "It sold."]
