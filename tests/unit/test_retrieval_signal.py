"""The reranker's P(relevant) of the best source as an own-answer signal, and the own-answer
model fitted again on evaluation runs that measured it (`verirag calibrate --refit-with`)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import HashEncoder
from tests.records import stored_answer, uninformative_signals, write_eval_run
from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.core.records import Citation, SearchHit
from verirag.evaluators.decision import AnswerModel, ClaimModel, Thresholds, answer_score
from verirag.pipeline.api.schemas import AnswerOut
from verirag.pipeline.cli import app
from verirag.pipeline.evaluation.calibrate import CalibrationData, HeldOutAnswer, with_refit
from verirag.pipeline.evaluation.calibration_fit import MIN_REFIT, held_out_scores, refit_own
from verirag.pipeline.evaluation.calibration_models import FALLBACK_SHARE, precision_cut
from verirag.pipeline.evaluation.held_out import held_out_answers
from verirag.pipeline.evaluation.metrics import auroc
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import retrieval_confidence

SHIPPED = Path(__file__).resolve().parents[2] / "evaluators" / "calibration"
GENERATOR = "qwen2.5-1.5b"


def _hit(chunk_id: int, score: float | None, collection: str = "c") -> SearchHit:
    # `score` is what ranks the hit (replaced when collections are merged by rank): the
    # reranker's own score is read, never that one.
    return SearchHit(
        0, 0.016, chunk_id, "d", "s", "", "t", 0, 4, collection=collection, rerank_score=score
    )


def _cited(chunk_id: int, collection: str = "c") -> Citation:
    return Citation(1, chunk_id, "d", "s", "", 0, 4, "text", collection=collection)


def test_the_signal_is_the_best_packed_sources_reranker_probability() -> None:
    hits = [_hit(1, 2.0), _hit(2, -1.0), _hit(3, 3.0, "other")]
    # Chunk 1 was retrieved but not packed: only what the model read counts.
    assert retrieval_confidence(hits, [_cited(2)]) == pytest.approx(1 / (1 + math.exp(1.0)))
    assert retrieval_confidence(hits, [_cited(2), _cited(1)]) == pytest.approx(
        1 / (1 + math.exp(-2.0))
    )
    # Chunk ids repeat across collections: the collection is part of the key.
    assert retrieval_confidence(hits, [_cited(3)]) is None
    assert retrieval_confidence(hits, [_cited(3, "other")]) == pytest.approx(
        1 / (1 + math.exp(-3.0))
    )
    assert retrieval_confidence([], []) is None
    assert retrieval_confidence([_hit(4, None)], [_cited(4)]) is None  # not reranked


def test_the_own_model_weighs_it_and_older_files_read_it_as_unweighed(tmp_path: Path) -> None:
    model = AnswerModel(bias=-1.0, support=1.0, lift=0.0, logprob=1.0, retrieval=3.0)
    t = Thresholds(own_model=model)
    low = answer_score(t, 0.8, None, 0.7, retrieval=0.1)
    high = answer_score(t, 0.8, None, 0.7, retrieval=0.9)
    unknown = answer_score(t, 0.8, None, 0.7)
    assert low < unknown < high
    # A calibration written before the signal existed has no "retrieval" weight: it loads
    # with none, and scores every answer as it did.
    raw = json.loads((SHIPPED / "qwen2.5-0.5b.json").read_text())
    for key in ("own_model", "given_model"):
        del raw[key]["retrieval"]
    (tmp_path / "older.json").write_text(json.dumps(raw))
    older = Thresholds.load(tmp_path / "older.json")
    assert older.own_model is not None and older.own_model.retrieval == 0.0
    assert answer_score(older, 0.8, 0.1, 0.7, retrieval=0.05) == answer_score(
        older, 0.8, 0.1, 0.7, retrieval=0.95
    )


def _thresholds() -> Thresholds:
    return Thresholds(
        version="4",
        model=GENERATOR,
        answer_min=0.8,
        own_model=AnswerModel(bias=-4.0, support=2.0, lift=0.5, logprob=4.0, alignment=1.0),
        claim_model=ClaimModel(bias=-1.5, slope=7.0),
        report={"signals": {"own": ["support", "lift", "logprob", "alignment"]}},
    )


def _rows(n: int, seed: int = 0, *, measured: bool = True) -> list[HeldOutAnswer]:
    """Answers that the logprob ranks weakly and retrieval ranks well (a wrong document
    found: low P(relevant), a fluent answer all the same)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        relevant = rng.random() < 0.5
        right = relevant and rng.random() < 0.85
        rows.append(
            HeldOutAnswer(
                item_id=f"r{i}",
                run="eval-s1" if i % 2 else "eval-s2",
                correct=right,
                support=rng.uniform(0.3, 0.7),
                lift=rng.uniform(-0.1, 0.3),
                logprob=min(1.0, max(0.0, rng.gauss(0.6 if right else 0.5, 0.2))),
                alignment=rng.random(),
                retrieval=(
                    min(1.0, max(0.0, rng.gauss(0.8 if relevant else 0.3, 0.15)))
                    if measured
                    else None
                ),
            )
        )
    return rows


def test_refit_adds_a_signal_that_earns_its_place_and_reports_out_of_fold() -> None:
    t = _thresholds()
    rows = _rows(400)
    fitted, report = refit_own(t, rows, target_precision=0.9)
    assert report["signals"] == ["support", "lift", "logprob", "alignment", "retrieval"]
    tried = report["tried"]
    assert tried["support+lift+logprob+alignment+retrieval"] >= (
        tried["support+lift+logprob+alignment"] + 0.01
    )
    assert fitted.own_model is not None and fitted.own_model.retrieval > 0
    assert report["answers"] == 400 and report["runs"] == ["eval-s1", "eval-s2"]
    assert report["out_of_fold"]["auroc"] > report["before"]["auroc"]
    # Fresh answers drawn the same way: the refit ranks them better than the input did.
    fresh = _rows(400, seed=1)
    right = [h.correct for h in fresh]
    assert auroc(held_out_scores(fitted, fresh), right) > auroc(held_out_scores(t, fresh), right)
    # Every weight was fitted again, and the cut chosen on these answers.
    assert fitted.own_model.bias != t.own_model.bias if t.own_model else True
    assert fitted.answer_min != t.answer_min
    assert fitted.report["refit"] == report


def test_refit_leaves_out_a_signal_the_runs_did_not_measure() -> None:
    fitted, report = refit_own(_thresholds(), _rows(300, measured=False), target_precision=0.9)
    assert "retrieval" not in report["signals"]
    assert not any("retrieval" in name for name in report["tried"])
    assert fitted.own_model is not None and fitted.own_model.retrieval == 0.0


@pytest.mark.parametrize(("n", "message"), [(MIN_REFIT - 1, "at least 200"), (250, "some right")])
def test_refit_refuses_too_few_answers_or_one_class(n: int, message: str) -> None:
    rows = _rows(n)
    if message == "some right":
        rows = [replace(r, correct=False) for r in rows]
    with pytest.raises(ValueError, match=message):
        refit_own(_thresholds(), rows, target_precision=0.9)


def test_a_cut_is_never_chosen_on_a_handful_of_answers() -> None:
    # The single most confident answer is right, then precision levels off at 0.8: a cut
    # that delivers only it "reaches" 0.9, and would deliver 1 right answer in 80.
    probability = [0.99] + [0.9 - i * 0.004 for i in range(99)]
    right = [True] + [i % 5 != 0 for i in range(99)]
    cut, precision, _ = precision_cut(probability, right, 0.9)
    enough = math.ceil(FALLBACK_SHARE * len(probability))
    assert cut < 0.9 and sum(p >= cut for p in probability) >= enough > 1
    assert precision == pytest.approx(
        max(sum(right[: j + 1]) / (j + 1) for j in range(enough - 1, 100))
    )
    # Where the target is reached on enough answers, the lowest such cut still wins.
    right = [True] * 30 + [i % 2 == 0 for i in range(70)]
    cut, precision, _ = precision_cut(probability, right, 0.9)
    lowest = max(j for j in range(100) if sum(right[: j + 1]) >= 0.9 * (j + 1))
    assert lowest > 30 and precision >= 0.9 and cut == probability[lowest]


def test_refit_rows_are_excluded_and_kept_in_the_signals() -> None:
    data = CalibrationData([], [], 0, "measured", {"squad": ["a"]})
    rows = _rows(5)
    once = with_refit(data, rows)
    assert set(once.excluded["squad"]) == {"a", *(r.item_id for r in rows)}
    assert with_refit(once, rows).refit == once.refit
    assert once.described == "measured; refit on: 5 own answers of eval-s1, eval-s2"
    assert with_refit(data, []) is data


def _write_run(root: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    records = {}
    for i in range(n):
        relevant = rng.random() < 0.5
        right = relevant and rng.random() < 0.85
        records[f"{root.name}-{i}"] = stored_answer(
            answerable=True,
            contains=right,
            text="an answer [1]",
            signals={
                **uninformative_signals(rng),
                "retrieval": rng.gauss(0.8 if relevant else 0.3, 0.15),
            },
        )
    return write_eval_run(root, records, generator=GENERATOR)


def test_calibrate_refits_on_runs_excludes_them_and_a_refit_reproduces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    runs = [_write_run(tmp_path / f"eval-s{s}", 130, s) for s in (1, 2)]
    signals = SHIPPED / "signals" / f"{GENERATOR}.json"
    out, saved = tmp_path / "cal.json", tmp_path / "signals.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--from-signals", str(signals)),
            *("--refit-with", str(runs[0]), "--refit-with", str(runs[1])),
            *("--output", str(out), "--save-signals", str(saved)),
        ],
    )
    assert result.exit_code == 0, result.output
    fitted = json.loads(out.read_text())
    refit = fitted["report"]["refit"]
    # Rows the shipped signals were refitted on stay in: runs add to them.
    n = 260 + len(CalibrationData.load(signals).refit)
    assert refit["answers"] == n and {"eval-s1", "eval-s2"} <= set(refit["runs"])
    assert "retrieval" in refit["signals"] and fitted["own_model"]["retrieval"] > 0
    assert f"own-answer model fitted again on {n} own answers" in result.output
    assert f"refit on: {n} own answers" in fitted["fitted_on"]
    excluded = set(json.loads((tmp_path / "cal.exclude.json").read_text())["squad"])
    assert {"eval-s1-0", "eval-s2-129"} <= excluded
    assert len(CalibrationData.load(saved).refit) == n
    rows = held_out_answers(runs[0], GENERATOR, Thresholds.load(model=GENERATOR))
    assert all(r.retrieval is not None for r in rows)

    again = tmp_path / "again.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--from-signals", str(saved)),
            *("--output", str(again)),
        ],
    )
    assert result.exit_code == 0, result.output
    reproduced = json.loads(again.read_text())
    assert reproduced["own_model"] == fitted["own_model"]
    assert reproduced["answer_min"] == fitted["answer_min"]


def _collection_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data directory holding collection "c" (as `collection_exists` tells one)."""
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "collections" / "c").mkdir(parents=True)
    (tmp_path / "data" / "collections" / "c" / "meta.sqlite").touch()


def test_calibrate_refuses_a_refit_into_a_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _collection_c(tmp_path, monkeypatch)
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--from-signals", "x.json"),
            *("--refit-with", "run", "--collection", "c"),
        ],
    )
    assert result.exit_code != 0
    assert "moves its level only" in result.output


PARIS = {
    "paris.txt": "Paris is the capital of France. It lies on the Seine.",
    "rome.txt": "Rome is the capital of Italy. It lies on the Tiber.",
}


def test_an_answer_carries_the_reranker_probability_and_is_scored_with_it(
    tmp_path: Path,
) -> None:
    gen = ScriptedGenerator({"Paris is": 0.9}, reply="Paris is the capital of France [1].")
    rag = scripted_pipeline(tmp_path, gen, PARIS, "c")
    assert rag.thresholds.weighs_retrieval  # the shipped default weighs it
    answer = rag.ask("What is the capital of France?", "c")
    hits = rag.search("What is the capital of France?", "c")
    assert answer.retrieval_confidence is not None
    assert all(h.rerank_score == h.score for h in hits)
    assert answer.retrieval_confidence == pytest.approx(
        1 / (1 + math.exp(-max(h.score for h in hits)))
    )
    assert answer.calibrated
    assert AnswerOut.of(answer).retrieval_confidence == answer.retrieval_confidence


def test_collections_asked_together_read_each_ones_reranker_not_the_merged_rank(
    tmp_path: Path,
) -> None:
    gen = ScriptedGenerator({"Paris is": 0.9}, reply="Paris is the capital of France [1].")
    rag = scripted_pipeline(tmp_path, gen, PARIS, "c")
    IndexingPipeline(rag.settings, encoder=HashEncoder()).run(  # type: ignore[arg-type]
        [tmp_path / "docs"], "d"
    )
    question = "What is the capital of France?"
    alone = rag.ask(question, "c")
    together = rag.ask(question, ["c", "d"])
    merged = rag.search(question, ["c", "d"])
    assert {h.collection for h in merged} == {"c", "d"}
    assert all(h.score != h.rerank_score for h in merged)  # merged by rank
    # The same best source in each collection, scored by each one's reranker alike.
    assert together.retrieval_confidence == pytest.approx(alone.retrieval_confidence)


def test_with_the_reranker_off_the_answer_says_it_is_not_calibrated(tmp_path: Path) -> None:
    gen = ScriptedGenerator({"Paris is": 0.9}, reply="Paris is the capital of France [1].")
    rag = scripted_pipeline(tmp_path, gen, PARIS, "c", rerank=False)
    answer = rag.ask("What is the capital of France?", "c")
    assert answer.retrieval_confidence is None
    assert not answer.calibrated and not rag.calibrated


def test_a_collection_is_not_recalibrated_on_runs_that_lack_a_weighed_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _collection_c(tmp_path, monkeypatch)
    run = _write_run(tmp_path / "eval-old", 40, 5)
    lines = (run / "items.jsonl").read_text().splitlines()
    older = []
    for line in lines:  # as a run from before the signal existed stored it
        entry = json.loads(line)
        del entry["record"]["signals"]["retrieval"]
        older.append(json.dumps(entry))
    (run / "items.jsonl").write_text("\n".join(older) + "\n")
    signals = SHIPPED / "signals" / f"{GENERATOR}.json"
    result = CliRunner().invoke(
        app,
        [
            *("calibrate", "--generator", GENERATOR, "--from-signals", str(signals)),
            *("--recalibrate-with", str(run), "--collection", "c"),
        ],
    )
    assert result.exit_code != 0
    assert "none of the runs' 40 own answers recorded every signal" in result.output
    assert "bench/remeasure_retrieval.py" in result.output
    assert not (tmp_path / "data" / "collections" / "c" / "calibration.json").exists()
