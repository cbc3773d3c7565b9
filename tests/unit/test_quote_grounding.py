"""bench/quote_grounding.py: a model's quote found in the sources (exactly, then fuzzily), the
window the judge then reads, and the calibration's own answers split into folds whose
logprob composite was fitted without them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.quote_grounding import (
    PROMPT,
    answer_key,
    cleaned,
    find_quote,
    fold_rows,
    rests_window,
    share_in,
    signals_path,
)
from verirag.evaluators.confidence import LogprobConfidence
from verirag.evaluators.decision import Thresholds
from verirag.generators.prompts import load_prompts
from verirag.pipeline.evaluation.calibrate import CalibrationData
from verirag.pipeline.evaluation.calibration_models import fit_parts
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path

SOURCES = (
    "The Grainger Market replaced an earlier market built in 1808 called the Butcher Market. "
    "It was opened in 1835. The opening was celebrated with a grand dinner.",
    "Newcastle's Grainger Town was built between 1835 and 1842.",
)


@pytest.mark.parametrize(
    ("reply", "quote"),
    [
        ('"It was opened in 1835."', "It was opened in 1835."),
        ("Sentence: It was opened in 1835 [1].", "It was opened in 1835."),
        ("“It was opened in 1835.”\nThe sources say so.", "It was opened in 1835."),
        ("  ", ""),
    ],
)
def test_a_reply_is_cut_to_its_quote(reply: str, quote: str) -> None:
    assert cleaned(reply) == quote


def test_a_verbatim_quote_is_found_whole_in_its_sentence() -> None:
    found = find_quote("it was opened in  1835", SOURCES)
    assert found is not None
    assert (found.source, found.share) == (0, 1.0)
    # The shortest window that holds it: its own sentence, not the pair around it.
    assert SOURCES[0][found.start : found.end] == "It was opened in 1835."


def test_a_quote_across_two_sentences_is_found_in_the_pair() -> None:
    found = find_quote("called the Butcher Market. It was opened in 1835.", SOURCES)
    assert found is not None and found.share == 1.0
    window = SOURCES[0][found.start : found.end]
    assert window.startswith("The Grainger Market") and window.endswith("in 1835.")


def test_a_reworded_quote_scores_the_share_it_keeps() -> None:
    found = find_quote("Grainger Town was constructed between 1835 and 1842.", SOURCES)
    assert found is not None and found.source == 1
    assert 0.6 < found.share < 1.0


def test_an_invented_quote_scores_low_and_nothing_is_found_for_nothing() -> None:
    made_up = find_quote("Zygmunt Bauman argued for liquid modernity.", SOURCES)
    verbatim = find_quote("It was opened in 1835.", SOURCES)
    assert made_up is None or made_up.share < 0.5
    assert verbatim is not None and made_up is not None and made_up.share < verbatim.share
    assert find_quote("", SOURCES) is None
    assert share_in("", "anything") == 0.0


def test_chance_runs_of_one_or_two_characters_are_not_counted() -> None:
    assert share_in("xq zv", "a quiz vex") == 0.0


def test_the_quote_prompt_is_a_template_of_the_question_and_claim() -> None:
    from string import Template

    task = Template(PROMPT.read_text(encoding="utf-8").strip()).substitute(
        question="When did it open?", claim="It opened in 1835."
    )
    messages = load_prompts().after_sources("<<SOURCES>>", task)
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[1].content.startswith("<<SOURCES>>")
    assert messages[1].content.endswith("Claim: It opened in 1835.")


def test_folds_score_each_answer_with_weights_fitted_without_it() -> None:
    generator = "qwen2.5-1.5b"
    data = CalibrationData.load(signals_path(generator))
    t = Thresholds.load(packaged_calibration_path(generator))
    rows = fold_rows(data, t, folds=5, seed=0)
    assert len(rows) == len(data.own)
    assert len({h.run for h in rows}) == 5
    assert len({h.item_id for h in rows}) == len(rows), "a left-out question keeps its own key"
    assert sum(h.correct for h in rows) == sum(o.correct for o in data.own)
    # One answer's logprob, scored again by a fit on the other folds: the same value; a fit
    # on every answer (its own included) gives another.
    by_key = {answer_key(o): o for o in data.own}
    first = rows[0]
    others = [by_key[h.item_id] for h in rows if h.run != first.run]
    held = LogprobConfidence(fit_parts(others, data.halueval, t).weights)
    assert held.score(by_key[first.item_id].features) == pytest.approx(first.logprob)
    everyone = LogprobConfidence(fit_parts(data.own, data.halueval, t).weights)
    assert not np.isclose(everyone.score(by_key[first.item_id].features), first.logprob)


def test_the_control_reads_the_sentence_sharing_most_words_with_the_claim() -> None:
    found = rests_window("The Grainger Market opened in 1835.", SOURCES)
    assert found is not None
    # Three sentences share two of the claim's four content stems ("Grainger Market", "opened
    # 1835", "Grainger ... 1835"): the earliest is read.
    assert SOURCES[found.source][found.start : found.end].startswith("The Grainger Market")
    assert 0 < found.share <= 1
    assert rests_window("Zygmunt Bauman", SOURCES) is None


@pytest.mark.parametrize(
    ("name", "generator"),
    [
        ("quote-qwen2.5-1.5b", "qwen2.5-1.5b"),
        ("rests-qwen2.5-1.5b", "qwen2.5-1.5b"),
        ("rests-qwen2.5-0.5b", "qwen2.5-0.5b"),
    ],
)
def test_the_kept_measurements_cover_the_calibration_answers(name: str, generator: str) -> None:
    """RESULTS' figures are re-run from bench/measured: each file must still key every own
    answer of the signal file it was measured on, and only those."""
    path = Path(__file__).resolve().parents[2] / "bench" / "measured" / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.open() if line.strip()]
    data = CalibrationData.load(signals_path(generator))
    assert {r["key"] for r in rows} == {answer_key(o) for o in data.own}
    assert len(rows) == len(data.own)
    window = name.split("-")[0]
    assert all(r["generator"] == generator and f"{window}_judge" in r for r in rows)
