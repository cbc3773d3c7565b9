"""A collection's own calibration: `verirag calibrate --collection NAME --recalibrate-with RUN`
writes it into the collection, and the answers from that collection, and only those, are
decided by it and say so."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import HashEncoder
from tests.records import over_confident_signals, stored_answer
from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.evaluators.decision import Thresholds
from verirag.pipeline.api.errors import classify
from verirag.pipeline.api.schemas import AnswerOut
from verirag.pipeline.calibrations import collection_calibration_path, write_atomically
from verirag.pipeline.cli import app
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.collection_dir import CollectionError

GENERATOR = "qwen2.5-1.5b"
PARIS = {"paris.txt": "Paris is the capital of France. It lies on the Seine."}
REPLY = "Paris is the capital of France [1]."


def _shipped() -> Thresholds:
    return Thresholds.load(packaged_calibration_path(GENERATOR))


def _two_collections(tmp_path: Path) -> RagPipeline:
    """Collections "c" and "d" holding the same document, answered by a scripted model."""
    gen = ScriptedGenerator({"Paris is": 0.9}, reply=REPLY, short="Paris")
    rag = scripted_pipeline(tmp_path, gen, PARIS, "c")
    IndexingPipeline(rag.settings, encoder=HashEncoder()).run(  # type: ignore[arg-type]
        [tmp_path / "docs"], "d"
    )
    return rag


def _install(rag: RagPipeline, collection: str, t: Thresholds) -> Path:
    path = collection_calibration_path(rag.settings.collections_dir, collection)
    write_atomically(path, t.dump())
    return path


def _less_sure(version: str, model: str = GENERATOR) -> Thresholds:
    """The shipped calibration with its own-answer intercept moved down 2 (a domain where
    the shipped confidence overstates)."""
    t = _shipped()
    assert t.own_model is not None
    return replace(
        t, version=version, model=model, own_model=replace(t.own_model, bias=t.own_model.bias - 2)
    )


def test_a_collections_own_calibration_decides_its_answers_and_only_theirs(
    tmp_path: Path,
) -> None:
    rag = _two_collections(tmp_path)
    question = "What is the capital of France?"
    before = rag.ask(question, "c")
    assert before.calibration == f"shipped: {GENERATOR} version {_shipped().version}"
    assert before.calibrated

    _install(rag, "c", _less_sure("11.1"))
    own, other = rag.ask(question, "c"), rag.ask(question, "d")
    assert own.calibration == f"collection 'c': {GENERATOR} version 11.1"
    assert own.calibrated
    assert own.confidence < before.confidence - 0.05
    assert AnswerOut.of(own).model_dump()["calibration"] == own.calibration  # what the API sends
    assert other.calibration == before.calibration
    assert other.confidence == pytest.approx(before.confidence)
    # Asked together with a collection of another calibration: the pipeline's decides.
    assert rag.ask(question, ["c", "d"]).calibration == before.calibration
    # Both carrying the same one: it decides.
    _install(rag, "d", _less_sure("11.1"))
    both = rag.ask(question, ["c", "d"])
    assert both.calibration == f"collections: {GENERATOR} version 11.1"
    assert both.confidence == pytest.approx(own.confidence)

    # Written again (a new recalibration): read again, no restart.
    _install(rag, "c", _less_sure("11.22"))
    assert rag.ask(question, "c").calibration.endswith("version 11.22")


def test_a_collection_calibration_of_another_model_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rag = _two_collections(tmp_path)
    _install(rag, "c", _less_sure("3", model="qwen2.5-0.5b"))
    with caplog.at_level(logging.WARNING, logger="verirag.pipeline.calibrations"):
        answer = rag.ask("What is the capital of France?", "c")
        rag.ask("What is the capital of France?", "c")
    assert answer.calibration.startswith("shipped: ")
    assert answer.calibrated
    # Said once for the file, not on every question.
    told = [r for r in caplog.records if "not for the model answering" in r.getMessage()]
    assert len(told) == 1 and "qwen2.5-0.5b" in told[0].getMessage()


def test_handed_in_thresholds_decide_every_collection(tmp_path: Path) -> None:
    rag = _two_collections(tmp_path)
    _install(rag, "c", _less_sure("11.1"))
    given = RagPipeline(
        rag.settings,
        encoder=HashEncoder(),  # type: ignore[arg-type]
        generator=rag.generator(),
        thresholds=_shipped(),
    )
    assert given.ask("What is the capital of France?", "c").calibration.startswith("given: ")


def test_an_unreadable_collection_calibration_is_refused_with_its_path(tmp_path: Path) -> None:
    rag = _two_collections(tmp_path)
    path = collection_calibration_path(rag.settings.collections_dir, "c")
    path.write_text("{not json")
    with pytest.raises(
        CollectionError, match=r"calibration .*calibration\.json cannot be read"
    ) as e:
        rag.ask("What is the capital of France?", "c")
    # The API says whose calibration, not where it lies on the server: the server's fault.
    problem = classify(e.value)
    assert problem.status == 500 and "collection 'c'" in problem.detail
    assert str(path) not in problem.detail and "calibration.json" not in problem.detail
    # The other collection answers as before.
    assert rag.ask("What is the capital of France?", "d").calibration.startswith("shipped")


def test_write_atomically_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("old")

    with pytest.raises(TypeError):  # fails mid-write
        write_atomically(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]  # no temporary left


def _over_confident_run(root: Path) -> Path:
    """An eval run of 60 own answers, confident and right barely half the time."""
    rng = random.Random(5)
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"suite": "abstention", "generator": GENERATOR}))
    with (root / "items.jsonl").open("w") as f:
        for i in range(60):
            answerable = i % 3 != 0
            record = stored_answer(
                answerable=answerable,
                contains=answerable and rng.random() < 0.5,
                text="an answer [1]",
                confidence=0.9,
                signals=over_confident_signals(rng),
            )
            f.write(json.dumps({"id": f"r{i}", "ok": True, "record": asdict(record)}) + "\n")
    return root


def test_calibrate_writes_a_collections_calibration_shows_and_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rag = scripted_pipeline(tmp_path, None, PARIS, "reviews")
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(rag.settings.data_dir))
    signals = str(packaged_calibration_path(GENERATOR).parent / "signals" / f"{GENERATOR}.json")
    run = str(_over_confident_run(tmp_path / "eval-reviews-s1"))
    fit = ("calibrate", "--generator", GENERATOR, "--from-signals", signals)
    cli = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = cli.invoke(app, list(args))
        return result.exit_code, " ".join(result.output.split())

    code, output = invoke(*fit, "--recalibrate-with", run, "--collection", "reviews")
    assert code == 0, output
    assert "warning: 60 labelled own answers fix a domain's level loosely" in output
    path = collection_calibration_path(rag.settings.collections_dir, "reviews")
    own = Thresholds.load(path)
    shipped = _shipped()
    assert own.own_model is not None and shipped.own_model is not None
    # Recalibrated on the run alone: the shipped fit's held-out answers (SQuAD) are not its domain.
    assert own.report["recalibration"]["runs"] == ["eval-reviews-s1"]
    assert own.report["recalibration"]["answers"] == 60
    assert own.own_model.bias < shipped.own_model.bias  # moved down: the run was over-confident
    excluded = json.loads(path.with_name("calibration.exclude.json").read_text())["squad"]
    assert {f"r{i}" for i in range(60)} <= set(excluded)
    # The shipped file is untouched.
    assert Thresholds.load(packaged_calibration_path(GENERATOR)) == shipped

    code, output = invoke("stats", "-c", "reviews", "--json")
    assert code == 0, output
    assert json.loads(output)["calibration"] == f"its own: {GENERATOR} version {own.version}"

    for args, message in [
        (("--collection", "reviews"), "pass --recalibrate-with"),
        (("--recalibrate-with", run, "--collection", "nope"), "unknown collection 'nope'"),
        (("--recalibrate-with", run, "--collection", "../x"), "invalid collection name"),
        (
            ("--recalibrate-with", run, "--collection", "reviews", "--output", "x.json"),
            "pass one",
        ),
        (("--remove",), "--remove needs --collection"),
    ]:
        code, output = invoke(*fit, *args)
        assert code != 0 and message in output, (args, output)
    assert Thresholds.load(path) == own  # nothing refused touched it

    code, output = invoke("calibrate", "--collection", "reviews", "--remove")
    assert code == 0 and "removed the calibration of collection 'reviews'" in output
    assert not path.exists() and not path.with_name("calibration.exclude.json").exists()
    code, output = invoke("stats", "-c", "reviews", "--json")
    assert json.loads(output)["calibration"] == "none of its own (the shipped one)"
    code, output = invoke("calibrate", "--collection", "reviews", "--remove")
    assert code != 0 and "has no calibration of its own" in output
