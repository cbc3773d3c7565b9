"""Short answers: cleaning, grounding in the cited answer, and answers that answer nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.rescore_short_answers import shown
from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.core.settings import Settings
from verirag.generators.prompts import load_prompts
from verirag.generators.short_answer import (
    answers_question,
    clean_short_answer,
    closed,
    extracted_short_answer,
    grounded_in,
    listed_short_answer,
    short_answer,
    shown_extracted,
    shown_short_answer,
    whole_name,
    whole_words,
    without_attribution,
)
from verirag.pipeline.evaluation.datasets import EvalItem
from verirag.pipeline.evaluation.suites.shared import answer_record
from verirag.pipeline.rag import RagPipeline


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Paris", "Paris"),
        (" Short answer: Paris [1].\nParis is the capital.", "Paris"),
        ('"1889"', "1889"),
        ("none", ""),
        ("N/A.", ""),
        ("", ""),
        ("the capital city of the French Republic since the year 508 when Clovis made it so", ""),
    ],
)
def test_clean_short_answer(raw: str, clean: str) -> None:
    assert clean_short_answer(raw) == clean


def test_grounded_in_the_answer() -> None:
    answer = "The Eiffel Tower was finished in 1889 in Paris [1]."
    assert grounded_in("1889", answer)
    assert grounded_in("Élysée 1889", "elysee 1889")  # accents fold
    assert not grounded_in("1887", answer)
    assert not grounded_in("in London", answer)


def test_the_question_s_own_words_are_trimmed_from_a_sentence_reply() -> None:
    assert clean_short_answer("The Louvre opened in 1793.", "When did the Louvre open?") == "1793"
    got = clean_short_answer("The tower is 330 metres tall [1].", "How tall is the tower?")
    assert got == "330 metres"
    # Nothing but the question's words: kept whole, for `answers_question` to reject.
    assert clean_short_answer("Eiffel Tower", "When was the Eiffel Tower built?") == "Eiffel Tower"


def test_a_phrase_reply_keeps_the_words_it_shares_with_the_question() -> None:
    # Up to three words are a name or a phrase: "Market" is part of the answer, not the
    # question restated (trimmed, SQuAD F1 against "the Butcher Market" fell from 1 to 0.67).
    question = "What earlier market did the Grainger Market replace?"
    assert clean_short_answer("Butcher Market", question) == "Butcher Market"
    assert clean_short_answer("circuit switching", "Packet switching contrasts with what?") == (
        "circuit switching"
    )
    # A sentence still loses the question it restates.
    assert clean_short_answer("The market was the Butcher Market", question) == "Butcher"


def test_an_answer_must_say_more_than_the_question_and_the_titles() -> None:
    question = "What does the pass statement do?"
    assert answers_question("nothing", question)
    assert not answers_question("the pass statement", question)
    assert answers_question("yes", "Is the pass statement a no-op?")
    # Titles and citation marks only: no answer, whatever the short answer.
    titles = ("Simple statements > pass",)
    assert not answers_question("", question, "[1] Simple statements > pass [2]", titles)
    assert answers_question("", question, "It does nothing [1].", titles)
    # A model that names no short answer decides nothing by itself.
    assert answers_question("", question, "It is a null operation [1].")


def test_naming_one_of_the_alternatives_a_question_offers_answers_it() -> None:
    question = "Who was born first, Ernest Hemingway or F. Scott Fitzgerald?"
    assert answers_question("Ernest Hemingway", question)
    assert answers_question("Fitzgerald", question, "F. Scott Fitzgerald was born first [1].")
    # Restating the choice, or naming nothing, still answers nothing.
    assert not answers_question("Hemingway or Fitzgerald", question)
    assert not answers_question("the", question)
    # Without alternatives, the question's own words answer nothing, as before.
    assert not answers_question("Ernest Hemingway", "When was Ernest Hemingway born?")


def test_short_answer_continues_the_answer_conversation() -> None:
    gen = ScriptedGenerator({}, short="Short answer: Paris [1].")
    prompts = load_prompts("v2")
    block = prompts.context_block([(1, "", "Paris is the capital of France.")])
    got = short_answer(gen, prompts, block, "Capital?", "IDK", "Paris is the capital [1].")
    assert got == "Paris"
    gen.short = "Lyon"  # not in the answer: not a summary of it
    assert short_answer(gen, prompts, block, "Capital?", "IDK", "Paris is the capital [1].") == ""


def test_a_short_answer_that_only_repeats_the_question_is_asked_again_from_the_sources() -> None:
    prompts = load_prompts("v2")
    block = prompts.context_block([(1, "", "Lady Gaga sang the national anthem.")])
    question, cited = "What did Lady Gaga sing?", "Lady Gaga sang the national anthem [1]."
    gen = ScriptedGenerator({}, short="Lady Gaga", direct=["The national anthem."])
    assert short_answer(gen, prompts, block, question, "IDK", cited) == "national anthem"
    assert gen.calls == ["generate", "sample"]
    # The second reply must stand in the cited answer too; else the first is kept (and
    # `answers_question` then withholds the answer).
    gen = ScriptedGenerator({}, short="Lady Gaga", direct=["A folk song"])
    assert short_answer(gen, prompts, block, question, "IDK", cited) == "Lady Gaga"
    # A first reply that answers is not asked again.
    gen = ScriptedGenerator({}, short="the national anthem", direct=["A folk song"])
    assert short_answer(gen, prompts, block, question, "IDK", cited) == "national anthem"
    assert gen.calls == ["generate"]


@pytest.mark.parametrize(
    ("answer", "question", "extracted"),
    [
        (
            "The historic heart of Newcastle is the Grainger Town area. It was built [1].",
            "What is the historic heart of Newcastle?",
            "Grainger Town area",
        ),
        # "enable" is the question's "enables": a final e does not hide a question word.
        (
            "Several procedures enable the Scottish Parliament to scrutinize the Government [1].",
            "What enables the Scottish Parliament to scrutinize the government?",
            "Several procedures",
        ),
        # An irregular form is the question's verb: "sang" is "sing", "became" "become".
        ("Lady Gaga sang the national anthem [1].", "What did Lady Gaga sing?", "national anthem"),
        (
            "Some of the groups later became seen as dangerous enemies.",
            "What did some of the groups later become to be seen as?",
            "dangerous enemies",
        ),
        # Citation marks and the words that open a clause say nothing.
        ("[2] There were five lines [3].", "How many lines were there?", "five"),
        # The first clause that adds something, not the whole answer.
        (
            "The pass statement does nothing; it is a placeholder.",
            "What does the pass statement do?",
            "nothing",
        ),
        # An opening that only says where the answer was read is not what it says.
        (
            "Based on the information provided in the sources, Super Bowl 50 determined the "
            "NFL champion for the 2015 season.",
            "Super Bowl 50 determined the NFL champion for what season?",
            "2015",
        ),
        (
            "According to sources [1] and [2], the pass statement does nothing.",
            "What does the pass statement do?",
            "nothing",
        ),
        ("The sources state that the tower opened in 1889.", "When did the tower open?", "1889"),
        # Nothing but the question's words: nothing to extract.
        ("The pass statement [1].", "What does the pass statement do?", ""),
        ("", "What does the pass statement do?", ""),
    ],
)
def test_extracted_short_answer_is_what_the_answer_adds_to_the_question(
    answer: str, question: str, extracted: str
) -> None:
    assert extracted_short_answer(answer, question) == extracted


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        ("[1] According to source [2]: the tower opened in 1889.", "the tower opened in 1889."),
        ("From the context, the answer is 12.", "the answer is 12."),
        # A clause about something else, or a source that is not the reader's, stays.
        ('In the context of "forces", forces were measured.', None),
        ("According to legend, the city was founded by twins.", None),
        ("Information technology, as the sources call it, grew.", None),
        ("In 1889 the tower opened.", None),
    ],
)
def test_only_an_opening_that_points_at_the_sources_is_cut(answer: str, kept: str | None) -> None:
    assert without_attribution(answer) == (answer if kept is None else kept)


def test_extracted_short_answer_is_short() -> None:
    answer = "It was " + " ".join(f"w{i}" for i in range(40)) + "."
    assert len(extracted_short_answer(answer, "What was it?").split()) == 15


def _rag(tmp_path: Path, gen: ScriptedGenerator) -> RagPipeline:
    # One source, so top_k does not matter; the settings' default is kept as before.
    files = {"pass.txt": "The pass statement is a null operation: nothing happens."}
    return scripted_pipeline(tmp_path, gen, files, top_k=Settings.model_fields["top_k"].default)


def test_an_answer_that_answers_nothing_is_not_delivered(tmp_path: Path) -> None:
    # Every claim is supported (the sources do have a pass statement), but it answers nothing.
    gen = ScriptedGenerator({"The pass statement": 0.99}, reply="The pass statement [1].")
    gen.short = "the pass statement"
    answer = _rag(tmp_path, gen).ask("What does the pass statement do?", "c")
    assert [c.verdict for c in answer.claims] == ["supported"]
    assert answer.decision == "review"
    assert answer.decision_reason == "the answer does not answer the question"
    assert answer.short_answer == "pass statement"  # articles go, as in SQuAD scoring


def test_the_short_answer_is_carried_by_a_delivered_answer(tmp_path: Path) -> None:
    gen = ScriptedGenerator(
        {"It is a null": 0.99},
        reply="It is a null operation: nothing happens [1].",
        reply_p=0.99,
        short="a null operation",
    )
    answer = _rag(tmp_path, gen).ask("What does the pass statement do?", "c")
    assert answer.short_answer == "null operation"  # articles go, as in SQuAD scoring
    assert answer.decision_reason != "the answer does not answer the question"


def test_a_short_answer_the_model_could_not_name_is_extracted_from_its_answer(
    tmp_path: Path,
) -> None:
    # The model names only the question's subject, and the direct question names nothing.
    gen = ScriptedGenerator(
        {"The pass statement is a null": 0.99},
        reply="The pass statement is a null operation [1].",
        reply_p=0.99,
        short="the pass statement",
        check={"pass statement": 0.2, "null operation": 0.95},
    )
    rag = _rag(tmp_path, gen)
    rag.measure_all = True  # the answer check is measured though no shipped model weighs it
    answer = rag.ask("What does the pass statement do?", "c")
    assert answer.short_answer == "null operation"
    assert answer.short_answer_extracted and answer.named_short_answer == "pass statement"
    # The checks read what the model named, as they were calibrated: the answer check asked
    # about "pass statement", and an answer whose model named only the question's words is
    # still withheld.
    assert answer.answer_check == pytest.approx(0.2)
    assert answer.decision_reason == "the answer does not answer the question"
    # A short answer the model named itself is not marked.
    gen.short = "a null operation"
    named = _rag(tmp_path / "again", gen).ask("What does the pass statement do?", "c")
    assert named.short_answer == "null operation" and not named.short_answer_extracted
    assert named.named_short_answer == "null operation"


@pytest.mark.parametrize(
    ("short", "answer", "shown"),
    [
        (
            "Trout",
            "The Trout River, a tributary of the St. Johns River, is in the city.",
            "Trout River",
        ),
        ("Butcher", "It replaced a market called the Butcher Market [1].", "Butcher Market"),
        (
            "Rutherford Grammar",
            "Both attended Rutherford Grammar School. [2][3]",
            "Rutherford Grammar School",
        ),
        ("han", "Shi Tianze was a Han Chinese.", "Han Chinese"),  # the answer's own spelling
        # Never the verb, a function word or the next clause after a name.
        ("Denver Broncos", "The Denver Broncos won Super Bowl 50 [1].", "Denver Broncos"),
        ("Mike Tolbert", "So Mike Tolbert The end", "Mike Tolbert"),
        ("Sanders", "The top receiver was Sanders, with six receptions.", "Sanders"),
        ("Brest", "It lay offshore of Brest, France and rivers ran.", "Brest"),
        # A capital that opens a sentence says nothing of a name.
        ("Six", "[1] Six Pro Bowl selections.", "Six"),
        ("Yes", "It is. Yes Virginia, there is.", "Yes"),
        ("Mongol", "The Yuan dynasty succeeded the Mongol Empire.", "Mongol Empire"),
        # Not a name, or not in the answer: as named.
        ("water", "Feed water Allowed it.", "water"),
        ("1808", "It was built in 1808 Called", "1808"),
        ("Paris", "The capital is Lyon.", "Paris"),
        ("", "Anything", ""),
        # Only a whole word of the answer is run on.
        ("Trout", "Troutbeck River", "Trout"),
    ],
)
def test_a_name_the_model_cut_short_is_shown_whole(short: str, answer: str, shown: str) -> None:
    assert whole_name(short, answer) == shown


def test_a_name_runs_on_to_at_most_four_more_words() -> None:
    answer = "It was X B C D E F G."
    assert whole_name("X", answer) == "X B C D E"


def test_only_a_short_answer_the_model_named_is_run_on() -> None:
    question = "What river is completely contained inside Jacksonville?"
    answer = "The Trout River is located entirely within Jacksonville [3]."
    assert shown_short_answer("Trout", answer, question) == "Trout River"
    # Named nothing new: the answer's words the question does not say, a name run on too.
    assert shown_short_answer("Jacksonville", answer, question) == "Trout River"


def test_a_name_run_on_is_shown_but_the_checks_read_what_the_model_named(
    tmp_path: Path,
) -> None:
    gen = ScriptedGenerator(
        {"The Trout River": 0.99},
        reply="The Trout River lies within the city [1].",
        reply_p=0.99,
        short="Trout",
        check={"Trout": 0.9, "Trout River": 0.1},
    )
    rag = _rag(tmp_path, gen)
    rag.measure_all = True
    answer = rag.ask("Which river lies within the city?", "c")
    assert answer.short_answer == "Trout River"
    assert answer.named_short_answer == "Trout" and not answer.short_answer_extracted
    assert answer.answer_check == pytest.approx(0.9)
    # A list the model named, cut to what was asked, is still its own.
    gen.reply = "The Trout River, dammed in 1902, lies within the city [1]."
    gen.short = "Trout River, 1902"
    listed = _rag(tmp_path / "listed", gen).ask("Which river lies within the city?", "c")
    assert listed.short_answer == "Trout River" and not listed.short_answer_extracted
    assert listed.named_short_answer == "Trout River, 1902"
    # An eval run stores what the model named beside what was shown, so that a run answered
    # under one display rule is shown again under another from what the model said.
    item = EvalItem("i1", "Which river lies within the city?", ("Trout River",), frozenset())
    record = answer_record(item, answer, 1.0)
    assert (record.short_answer, record.short_named) == ("Trout River", "Trout")
    assert shown(replace(record, short_answer="Trout")) == "Trout River"


@pytest.mark.parametrize(
    ("named", "answer", "question", "shown"),
    [
        # The type asked for: a place, not the date beside it; a date, not the person.
        ("Eisleben, 15 February 1546", "His last sermon was at Eisleben on 15 February 1546.",
         "Where was Luther's last sermon preached?", "Eisleben"),
        ("Röntgen, December 1895", "X-rays were discovered by Röntgen in December 1895.",
         "When were x-rays discovered?", "December 1895"),
        # What the question says already, and what the answer does not hold, go.
        ("Energiprojekt AB, 27-30%", "The Energiprojekt AB engine achieves some 27-30%.",
         "What percentage has the Energiprojekt AB engine achieved?", "27-30%"),
        ("Chagatai, 1985, invasion", "Chagatai disputed it before the invasion of Khwarezm.",
         "Before which campaign did Chagatai dispute it?", "invasion"),
        # Items the answer lists together are shown in its words.
        ("Neil Shubin, Paul Sereno", "Neil Shubin and Paul Sereno are on the faculty [1].",
         "What paleontologists are on the faculty?", "Neil Shubin and Paul Sereno"),
        ("Amazonia, Amazon Jungle", "It is also known as Amazonia or the Amazon Jungle.",
         "Which name is also used?", "Amazonia or the Amazon Jungle"),
        # Several things keep their numbers, which may be items of the list.
        ("flour, sugar, 2 eggs", "Mix flour, sugar and 2 eggs [1].", "What goes in the cake?",
         "flour, sugar and 2 eggs"),
        # ... and as the model listed them where the answer does not.
        ("Sanders, Thomas", "Sanders caught 6 passes; Thomas caught 4.",
         "Who were the receivers?", "Sanders, Thomas"),
        # No list: a number's thousands, one item, a name holding a number (no quantity).
        ("1,600 miles", "It crosses 1,600 miles of ocean.", "Who crossed?", "1,600 miles"),
        ("Paris", "The tower is in Paris.", "Where is the tower?", "Paris"),
        ("Levi's Stadium, Super Bowl 50", "Super Bowl 50 was at Levi's Stadium.",
         "How many fans came?", "Levi's Stadium, Super Bowl 50"),
        # Nothing of the type asked for: the items that are left, all of them.
        ("1891, 1895", "Dewar made it in 1891 and 1895.", "Who made liquid oxygen?",
         "1891 and 1895"),
    ],
)  # fmt: skip
def test_a_listed_short_answer_keeps_what_was_asked(
    named: str, answer: str, question: str, shown: str
) -> None:
    assert listed_short_answer(named, answer, question) == shown


def test_a_list_is_cut_before_a_name_is_run_on() -> None:
    answer = "The Trout River and its dam were built in 1902 [1]."
    shown = shown_short_answer("Trout, 1902", answer, "Which river was dammed?")
    assert shown == "Trout River"


@pytest.mark.parametrize(
    ("short", "answer", "shown"),
    [
        ("lens", "Chloroplasts are usually lens-shaped [1].", "lens-shaped"),
        ("43", "About 43 million tons fall on the Caribbean.", "43 million"),
        # Held whole already: as named.
        ("lens", "A lens, lens-shaped or not.", "lens"),
        ("43", "43 ships; 43 million tons.", "43"),
        # A number before a hyphen is the number asked for, the rest its unit.
        ("24", "Carolina began at its own 24-yard line.", "24"),
        ("", "Anything.", ""),
        # A phrase stopped inside its last number: another number.
        ("it rises by 1.1", "It rises by 1.18 cm a year.", "it rises by 1.18"),
        ("were weighed at 90", "They were weighed at 90,790 tonnes.", "were weighed at 90,790"),
        ("were weighed at 90", "Were weighed at 90, then at 90,790.", "were weighed at 90"),
        # A short reply that only begins a number is what the model named.
        ("1", "About 1.4 times normal.", "1"),
        # A phrase the caps stopped inside its last word gets that word whole ...
        (
            "stores its starch in granules in the host's cytopl",
            "It stores its starch in granules in the host's cytoplasm instead.",
            "stores its starch in granules in the host's cytoplasm",
        ),
        # ... a short name that only begins a longer word does not.
        ("Trout", "The Troutbeck River.", "Trout"),
        ("Steam engine", "Steam engines are external combustion engines.", "Steam engine"),
    ],
)
def test_a_short_answer_never_stops_inside_a_word_or_a_number(
    short: str, answer: str, shown: str
) -> None:
    assert whole_words(short, answer) == shown


@pytest.mark.parametrize(
    ("short", "answer", "shown"),
    [
        # Closed as the answer closes it, a few words on.
        (
            "less than 9 °C (48 °F",
            "It is less than 9 °C (48 °F) in winter [1].",
            "less than 9 °C (48 °F)",
        ),
        ("complex (", "It is a complex (MHC) [2].", "complex (MHC)"),
        # Closed too far on, or not at all: cut before the bracket.
        (
            "Dutch PTT Telecom (now known as KPN",
            "Run by the Dutch PTT Telecom (now known as KPN, a firm that grew out of it).",
            "Dutch PTT Telecom",
        ),
        ("(48 °F", "Cold (48 °F. Colder still.", "48 °F"),
        # Balanced, or no bracket: as given.
        ("9 °C (48 °F)", "9 °C (48 °F) [1].", "9 °C (48 °F)"),
        ("Sky plc", "Sky plc (BSkyB).", "Sky plc"),
    ],
)
def test_a_bracket_left_open_is_closed_or_cut(short: str, answer: str, shown: str) -> None:
    assert closed(short, answer) == shown


def test_a_cut_short_answer_is_shown_whole_and_closed() -> None:
    question = "What is the temperature in the highest part of the range in winter?"
    answer = "The temperature there in winter is less than 9 °C (48 °F). This is in [1]."
    assert shown_short_answer("less than 9 °C (48 °F", answer, question) == "less than 9 °C (48 °F)"
    answer = "The sea level is rising at about 1–3 cm (0.39–1.18 in) per century [1]."
    assert shown_short_answer("about 1–3 cm (0.39–1.1", answer, "How fast?") == (
        "about 1–3 cm (0.39–1.18 in)"
    )


@pytest.mark.parametrize(
    ("named", "shown", "extracted"),
    [
        ("", "Grainger Town area", True),
        ("Newcastle", "Grainger Town area", True),  # only the question's words
        ("Jack", "Jackson Hole", True),  # only the question's, though the letters begin it
        ("Trout", "Trout River", False),  # named, and run on
        ("Eisleben, 15 February 1546", "Eisleben", False),  # named, and cut to what was asked
        ("Grainger Town", "Grainger Town", False),
        ("", "", False),  # nothing named, nothing to extract
    ],
)
def test_an_extracted_short_answer_is_one_the_model_did_not_name(
    named: str, shown: str, extracted: bool
) -> None:
    question = "Where did Jack go in Newcastle?"
    assert shown_extracted(named, shown, question) is extracted
