"""Collecting calibration signals: every item is saved as it is measured, and a stopped run
resumes without asking anything twice. No model: answers and HaluEval signals are scripted."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HALUEVAL_SAMPLE, SQUAD_SAMPLE
from verirag.core.records import Answer, Citation, ClaimResult, Timings
from verirag.evaluators.confidence import ConfidenceFeatures
from verirag.pipeline.evaluation.calibrate import (
    CONFIRM_PART,
    HALUEVAL_PART,
    CalibrationData,
    collect,
    own_answer,
)
from verirag.pipeline.evaluation.datasets import Passage
from verirag.pipeline.evaluation.hallucination import Signals, SignalScorer

FEATURES = ConfidenceFeatures(5, -0.4, -2.0, 0.8, 0.2)


class _Scorer(SignalScorer):
    """HaluEval signals without a model: the right answer checks out, the other does not."""

    def __init__(self) -> None:
        self.scored = 0

    def signals_many(self, sources: list[str], question: str, answers: list[str]) -> list[Signals]:
        self.scored += 1
        return [
            Signals(0.5, FEATURES, p, 1.0, p, 0.3, p, check=p, alignment=0.8)
            for p in (0.9, 0.2)[: len(answers)]
        ]


class _Asker:
    """Answers a question with its first word; stops (raises) after `stop_after` questions."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.asked: list[str] = []
        self.stop_after = stop_after

    def __call__(self, collection: str, corpus: list[Passage]) -> Callable[[str], Answer]:
        def ask(text: str) -> Answer:
            if self.stop_after is not None and len(self.asked) >= self.stop_after:
                raise KeyboardInterrupt
            self.asked.append(f"{collection}:{text}")
            body = f"The answer is {text.split()[0]} [1]."
            claim = ClaimResult(body, 0, len(body), (1,), "supported", 0.8, "", judge_p=0.8)
            cite = Citation(1, 7, "d", "s", "Title", 0, 10, corpus[0].text)
            return Answer(
                question=text,
                collection=collection,
                text=body,
                decision="answer",
                decision_reason="",
                confidence=0.6,
                claims=(claim,),
                citations=(cite,),
                retrieved=(),
                generator="g",
                prompt_version="v2",
                params={},
                timings=Timings(),
                source_lift=0.4,
                confidence_features=asdict(FEATURES),
                short_answer=text.split()[0],
                answer_check=0.7,
                question_alignment=0.6,
                answer_anchor=0.4,
            )

        return ask


def _collect(
    asker: _Asker,
    scorer: _Scorer,
    checkpoint: Path | None = None,
    pairs: int = 4,
    **options: Any,
) -> CalibrationData:
    return collect(
        scorer=scorer,
        ask=asker,
        squad_path=SQUAD_SAMPLE,
        halueval_path=HALUEVAL_SAMPLE,
        pairs=pairs,
        questions=5,
        distractors=10,
        seed=3,
        generator_name="g",
        checkpoint=checkpoint,
        **options,
    )


def test_a_stopped_calibration_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    checkpoint = tmp_path / "signals.jsonl"
    # 4 HaluEval pairs first, then each question with and without its paragraph: stopped
    # after 3 questions and the 4th one's first half.
    stopped = _Asker(stop_after=7)
    with pytest.raises(KeyboardInterrupt):
        _collect(stopped, _Scorer(), checkpoint)
    assert len(checkpoint.read_text().splitlines()) == 4 + 7
    resumed, scorer = _Asker(), _Scorer()
    data = _collect(resumed, scorer, checkpoint)
    # Only the 3 answers not yet given are asked; no HaluEval pair is scored twice.
    assert [a.split(":")[0] for a in resumed.asked] == ["without-gold", "with-gold", "without-gold"]
    assert scorer.scored == 0
    assert len(data.asked) == 10 and len(data.halueval) == 8
    # A finished run measures nothing again and gives the same data.
    again, scorer_again = _Asker(), _Scorer()
    assert _collect(again, scorer_again, checkpoint) == data
    assert again.asked == [] and scorer_again.scored == 0


def test_a_deadline_keeps_whole_questions_and_excludes_only_what_was_measured(
    tmp_path: Path,
) -> None:
    import time

    # A deadline already past: nothing new starts.
    data = _collect(_Asker(), _Scorer(), deadline=time.monotonic() - 1)
    assert (
        data.asked == []
        and data.halueval == []
        and data.excluded
        == {
            "squad": [],
            "halueval": [],
        }
    )
    assert "0 questions" in data.described and "0 pairs" in data.described


def test_collected_answers_keep_their_signals_and_texts(tmp_path: Path) -> None:
    data = _collect(_Asker(), _Scorer(), tmp_path / "c.jsonl")
    labelled = {(o.item_id, o.indexed) for o in data.own}
    assert {(a.item_id, a.indexed) for a in data.asked} >= labelled
    first = data.own[0]
    assert first.check == 0.7 and first.alignment == 0.6 and first.anchor == 0.4
    assert first.sources.answer.startswith("The answer is") and first.sources.texts
    assert first.sources.short == first.sources.question.split()[0]
    assert [h.right for h in data.halueval[:2]] == [True, False]
    assert data.halueval[0].check == 0.9 and data.halueval[1].check == 0.2
    # Round trip through the shipped signals file.
    path = tmp_path / "signals.json"
    data.dump(path)
    assert CalibrationData.load(path) == data
    # The exclusion list names every HaluEval pair measured.
    assert data.excluded["halueval"] == sorted({h.item_id for h in data.halueval})


def test_the_anchor_is_saved_with_what_the_model_named_not_what_was_extracted() -> None:
    answer = _Asker()("c", [Passage("p", "Title", "The answer is Paris.")])("Paris is what?")
    extracted = replace(
        answer, short_answer="Paris", short_answer_named="", short_answer_extracted=True
    )
    own = own_answer(extracted, ["Paris"], gold_indexed=True)
    assert own is not None and own.sources.short == ""  # an anchor read again reads ""
    own = own_answer(answer, ["Paris"], gold_indexed=True)
    assert own is not None and own.sources.short == "Paris"


def test_avoided_items_are_never_sampled_and_exclusions_accumulate(tmp_path: Path) -> None:
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibration_fit import exclusion_path, write_calibration
    from verirag.pipeline.evaluation.calibration_run import avoided_ids

    first = _collect(_Asker(), _Scorer(), tmp_path / "a.jsonl")
    avoid = {k: frozenset(v) for k, v in first.excluded.items()}
    # The same seed as the first: without `avoid`, the same items.
    second = _collect(_Asker(), _Scorer(), avoid=avoid)
    for kind in ("squad", "halueval"):
        assert second.excluded[kind] and not set(second.excluded[kind]) & avoid[kind]
    # A data file's ids, by its detected format.
    from_files = avoided_ids([SQUAD_SAMPLE, HALUEVAL_SAMPLE])
    assert set(first.excluded["squad"]) <= from_files["squad"]
    assert set(first.excluded["halueval"]) <= from_files["halueval"]
    with pytest.raises(FileNotFoundError, match="to avoid"):
        avoided_ids([tmp_path / "missing.json"])
    # Writing a second calibration keeps the first one's ids excluded.
    target = tmp_path / "m.json"
    write_calibration(Thresholds(model="m"), first, target)
    write_calibration(Thresholds(model="m"), second, target)
    listed = json.loads(exclusion_path(target).read_text())
    for kind in ("squad", "halueval"):
        assert set(listed[kind]) == set(first.excluded[kind]) | set(second.excluded[kind])
    # A refit written elsewhere (to be installed by copying) keeps the shipped list's ids too:
    # the signals it was fitted from need not name every item an earlier calibration sampled.
    elsewhere = tmp_path / "refit" / "m.json"
    elsewhere.parent.mkdir()
    write_calibration(Thresholds(model="m"), second, elsewhere, shipped=target)
    refit = json.loads(exclusion_path(elsewhere).read_text())
    assert refit == listed
    assert json.loads(exclusion_path(target).read_text()) == listed  # the shipped one untouched


def test_summaries_are_scored_as_a_second_set_and_excluded(tmp_path: Path) -> None:
    """With summarization pairs asked for, they are scored after HaluEval QA into their own
    rows (never fitted on), listed among the excluded pair ids, and resumed like the rest."""
    from tests.conftest import SUMMARIES_SAMPLE

    checkpoint = tmp_path / "c.jsonl"
    options: dict[str, Any] = {"confirm_path": SUMMARIES_SAMPLE, "confirm_pairs": 3}
    scorer = _Scorer()
    data = _collect(_Asker(), scorer, checkpoint, **options)
    assert len(data.confirm) == 6 and scorer.scored == 4 + 3
    assert [h.right for h in data.confirm[:2]] == [True, False]
    summaries = {h.item_id for h in data.confirm}
    assert summaries.isdisjoint(h.item_id for h in data.halueval)
    assert summaries <= set(data.excluded["halueval"])
    assert "HaluEval summarization 3 pairs" in data.described
    path = tmp_path / "signals.json"
    data.dump(path)
    assert CalibrationData.load(path) == data
    again = _Scorer()
    assert _collect(_Asker(), again, checkpoint, **options) == data and again.scored == 0
    # Without the option, no second set.
    assert _collect(_Asker(), _Scorer()).confirm == []


def test_own_answers_asked_again_replace_the_saved_ones_and_every_id_stays_excluded(
    tmp_path: Path,
) -> None:
    from verirag.pipeline.evaluation.calibrate import with_own_answers

    saved = _collect(_Asker(), _Scorer())
    avoid = {"squad": frozenset(saved.excluded["squad"])}
    fresh = _collect(_Asker(), _Scorer(), avoid=avoid, pairs=0)
    assert fresh.halueval == [] and fresh.excluded["halueval"] == []
    merged = with_own_answers(saved, fresh, "5 new SQuAD questions (seed 3)")
    assert merged.own == fresh.own and merged.asked == fresh.asked
    assert merged.abstained_without_source == fresh.abstained_without_source
    assert merged.halueval == saved.halueval and merged.confirm == saved.confirm
    assert set(merged.excluded["squad"]) == set(saved.excluded["squad"]) | set(
        fresh.excluded["squad"]
    )
    assert merged.excluded["halueval"] == saved.excluded["halueval"]
    assert merged.described.endswith("own answers replaced by 5 new SQuAD questions (seed 3)")


def test_anchors_are_read_again_as_the_verifier_reads_them_now() -> None:
    from dataclasses import replace

    from verirag.evaluators.alignment import anchor_alignment, given_anchor
    from verirag.pipeline.evaluation.calibration_run import with_text_anchors
    from verirag.pipeline.evaluation.datasets.halueval import read_halueval

    data = _collect(_Asker(), _Scorer())
    # Stored as an earlier definition measured them (or not at all).
    stale = replace(
        data,
        own=[replace(o, anchor=0.123) for o in data.own],
        halueval=[replace(h, anchor=None) for h in data.halueval],
    )
    read = with_text_anchors(stale, HALUEVAL_SAMPLE.parent.parent)
    for o in read.own:
        s = o.sources
        assert o.anchor == anchor_alignment(s.question, s.short, s.read) != 0.123
        assert s.read == tuple(f"{t} \n{x}" for t, x in zip(s.titles, s.texts, strict=True))
    public = {(h.pair_id, not h.hallucinated): h for h in read_halueval(HALUEVAL_SAMPLE)}
    for row in read.halueval:
        item = public[(row.item_id, row.right)]
        assert row.anchor == given_anchor(item.question, item.answer, [item.knowledge])
    # Without the public files, or the stored texts, what was stored is kept.
    kept = with_text_anchors(
        replace(stale, own=[replace(o, sources=replace(o.sources, texts=())) for o in stale.own]),
        Path("/nonexistent"),
    )
    assert [o.anchor for o in kept.own] == [0.123] * len(stale.own)
    assert all(h.anchor is None for h in kept.halueval)


def test_a_file_from_before_the_anchor_measures_it_from_the_sources_as_read() -> None:
    """The title is part of what the verifier read: "Eiffel Tower" anchors the short answer
    "1889" to the question only through the source's title."""
    from verirag.evaluators.alignment import anchor_alignment
    from verirag.pipeline.evaluation.calibrate import Sources, own_from_dict

    sources = Sources(
        question="When was the Eiffel Tower built?",
        answer="It was completed in 1889 [1].",
        short="1889",
        texts=("It was completed in 1889.",),
        titles=("Eiffel Tower",),
    )
    stored = {
        "features": asdict(ConfidenceFeatures(5, -0.4, -1.3, 0.2, 0.1)),
        "lift": 0.1,
        "claim_scores": [0.7],
        "correct": True,
        "sources": asdict(sources),
    }  # no "anchor": written before it existed
    anchor = own_from_dict(stored).anchor
    assert anchor == anchor_alignment(sources.question, sources.short, sources.read)
    bodies_only = anchor_alignment(sources.question, sources.short, sources.texts)
    assert anchor is not None and bodies_only is not None and anchor > bodies_only


def test_own_answers_are_not_replaced_by_none_when_the_budget_ran_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pairs first under one budget, the own questions can get no time at all: the saved
    own answers must not then be replaced by an empty list and fitted on."""
    import time
    from types import SimpleNamespace

    from tests.conftest import PUBLIC_SAMPLE
    from verirag.core.settings import Settings
    from verirag.pipeline.evaluation import calibration_run

    saved = _collect(_Asker(), _Scorer())
    asked: list[int] = []

    def out_of_time(rig: object, data_root: Path, **kw: Any) -> CalibrationData:
        asked.append(kw["questions"])
        return _collect(_Asker(), _Scorer(), pairs=0, deadline=time.monotonic() - 1)

    monkeypatch.setattr(calibration_run._Rig, "load", lambda *a: SimpleNamespace())
    monkeypatch.setattr(calibration_run, "_collect", out_of_time)
    with pytest.raises(ValueError, match="budget ran out before any new own answer"):
        calibration_run.measure_more(
            Settings(data_dir=tmp_path), PUBLIC_SAMPLE, saved, pairs={}, questions=5
        )
    assert asked == [5]


@pytest.mark.parametrize(
    ("part", "grows"),
    [(HALUEVAL_PART, "halueval"), (CONFIRM_PART, "confirm")],
    ids=["qa", "summaries"],
)
def test_adding_one_kind_of_pairs_leaves_the_other_as_saved(
    part: str, grows: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--more-pairs` adds QA pairs to fit on and leaves the second set as it was;
    `--summary-pairs` sets the second set and leaves the QA pairs as they were. Both join the
    exclusion list. (The integration test asks for both in one run, to keep CI time down.)"""
    from types import SimpleNamespace

    from tests.conftest import PUBLIC_SAMPLE
    from verirag.core.settings import Settings
    from verirag.pipeline.evaluation import calibration_run
    from verirag.pipeline.evaluation.calibrate import HaluRow

    saved = _collect(_Asker(), _Scorer())
    new = [HaluRow(FEATURES, 0.5, 0.1, 0.9, 0.3, ok, item_id="new-pair") for ok in (True, False)]
    scored: list[str] = []

    def score(
        scorer: object, path: Path, n: int, seed: int, checkpoint: object, kind: str, **kw: Any
    ) -> Any:
        scored.append(kind)
        return new, ["new-pair"]

    rig = SimpleNamespace(scorer=None, work=tmp_path, stem="g", in_time=lambda: True)
    monkeypatch.setattr(calibration_run._Rig, "load", lambda *a: rig)
    monkeypatch.setattr(calibration_run, "score_halueval", score)
    more = calibration_run.measure_more(
        Settings(data_dir=tmp_path), PUBLIC_SAMPLE, saved, pairs={part: 1}
    )
    assert scored == [part]
    other = "confirm" if grows == "halueval" else "halueval"
    assert getattr(more, other) == getattr(saved, other)
    assert getattr(more, grows)[-2:] == new and more.own == saved.own
    assert "new-pair" in more.excluded["halueval"]
