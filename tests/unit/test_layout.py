"""The package's shape: one import name, a lazy facade, one builder of generation parameters,
one verify sequence for generated and given answers, a clear error without llama.cpp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripted import ScriptedGenerator
from verirag.core.registry import ModelError
from verirag.core.settings import Settings
from verirag.evaluators.decision import AnswerModel, Thresholds
from verirag.evaluators.judge import LlmJudgeVerifier
from verirag.evaluators.verifier import Verifier
from verirag.generators.params import (
    GenerationError,
    GenerationParams,
    generation_params,
)
from verirag.generators.prompts import load_prompts

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_facade_loads_no_model_stack() -> None:
    code = (
        "import sys, verirag; "
        "assert 'torch' not in sys.modules and 'llama_cpp' not in sys.modules; "
        "from verirag import RagPipeline, IndexingPipeline, Settings; "
        "assert 'torch' not in sys.modules, 'the pipelines must load models lazily'; "
        "print(RagPipeline.__module__, IndexingPipeline.__module__, Settings.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert out == ["verirag.pipeline.rag", "verirag.pipeline.indexing", "verirag.core.settings"]


def test_the_facade_names_unknown_attributes() -> None:
    import verirag

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = verirag.Nope  # type: ignore[attr-defined]
    assert "RagPipeline" in dir(verirag)


def test_generation_params_defaults_come_from_one_place(settings: Settings) -> None:
    assert GenerationParams().max_tokens == Settings.model_fields["max_tokens"].default
    custom = settings.with_overrides(max_tokens=77)
    assert generation_params(custom) == GenerationParams(max_tokens=77)
    given = generation_params(custom, temperature=0.5, stop=["\n"], seed=None)
    assert (given.max_tokens, given.temperature, given.stop, given.seed) == (77, 0.5, ("\n",), 0)
    # The API's cap bounds the default and refuses a larger given value.
    assert generation_params(custom, max_tokens_cap=50).max_tokens == 50
    with pytest.raises(GenerationError, match="max_tokens must be at most 50, got 60"):
        generation_params(custom, max_tokens_cap=50, max_tokens=60)
    with pytest.raises(GenerationError, match="unknown generation parameter"):
        generation_params(custom, temprature=0.5)
    with pytest.raises(GenerationError) as bad:
        generation_params(custom, temperature=3.0, top_p=0.0, top_k=-1)
    for name in ("temperature", "top_p", "top_k"):
        assert name in str(bad.value)


def _verifier(gen: ScriptedGenerator, thresholds: Thresholds | None = None) -> Verifier:
    prompts = load_prompts("v2")
    return Verifier(
        gen, LlmJudgeVerifier(gen, prompts), prompts, thresholds or Thresholds(), measure_all=True
    )


def test_verifier_checks_each_claim_then_scores_closed_book_last() -> None:
    gen = ScriptedGenerator(
        {"Paris is the capital": 0.95, "It has 99 bridges": 0.9}, check={"Paris": 0.8}
    )
    verifier = _verifier(gen)
    evidence = verifier.evidence("What is the capital?", ["Paris is the capital of France."], "")
    answer = "Paris is the capital [1]. It has 99 bridges [1]."
    v = verifier.verify(evidence, answer, short="Paris")
    assert [c.text for c in v.claims] == ["Paris is the capital.", "It has 99 bridges."]
    for claim in v.claims:  # spans index the text the caller passed
        assert answer[claim.start : claim.end].startswith(claim.text[:-1])
    assert v.claims[0].verdict == "supported"
    # 99 is in no source: the lexical evidence lowers the judge's 0.9 below the cut.
    assert v.claims[1].missing_terms == ("99",)
    assert v.claims[1].verdict == "unsupported"
    assert v.support == pytest.approx(0.9 * Thresholds().missing_penalty)
    assert v.judge == pytest.approx(0.9)
    assert not v.lexical_clean
    assert v.lift is not None and v.lift > 0
    # The answer check asks about the short answer; alignment reads the claims' sentence.
    assert v.answer_check == pytest.approx(0.8)
    assert v.alignment == pytest.approx(1.0)  # "capital" stands in the cited sentence
    assert v.anchor == pytest.approx(1.0)  # "Paris" stands in that sentence too
    # The rests judge reads the one sentence "Paris is the capital." rests on (P 0.95); the
    # words of "It has 99 bridges." stand in no sentence, so it is undecided (0.5).
    assert v.rests == pytest.approx(0.5)
    # It reads no sources block, so it runs after every call that does, before closed book.
    assert gen.calls == ["score-sources", "judge", "judge", "check", "judge", "score-closed"]


def test_verifier_on_given_answers_never_calls_undecided_supported() -> None:
    gen = ScriptedGenerator({"Rome": None, "Paris": 0.8}, check={"Paris": 0.9})
    verifier = _verifier(gen)
    evidence = verifier.evidence("Capital?", ["Paris is the capital of France."], "")
    undecided, right = verifier.verify_many(evidence, ["Rome", "Paris"], given=True)
    # A given answer without a sentence of its own is still checked, as one claim.
    assert [c.text for c in undecided.claims] == ["Rome"]
    assert undecided.claims[0].verdict != "supported"
    assert undecided.judge is None and undecided.support == 0.0  # "Rome" is in no source
    assert right.claims[0].verdict == "supported" and right.judge == pytest.approx(0.8)
    assert gen.calls == ["score-sources", "judge", "check"] * 2 + ["score-closed"] * 2
    # Given answers are checked as they are; an undecided check is None, never a yes.
    assert undecided.answer_check is None and right.answer_check == pytest.approx(0.9)
    # Someone else's text: the blend leaves the logprob term out.
    assert verifier.score(right, None) != verifier.score(right, 0.0)


def test_the_answer_check_runs_only_where_the_score_weighs_it() -> None:
    """The check is a judge call of its own: an answer pays for it only where the fitted
    model gives it weight, or where every signal is measured (calibration, evaluation)."""
    prompts = load_prompts("v2")
    weighs = Thresholds(
        own_model=AnswerModel(bias=0.0, support=1.0, lift=1.0, check=0.0),
        given_model=AnswerModel(bias=0.0, support=1.0, lift=1.0, check=2.0),
    )
    for thresholds, given, expect_check in [
        (Thresholds(), False, False),  # the fixed blend reads no check
        (weighs, False, False),  # the own-answer model gave it no weight
        (weighs, True, True),  # the given-answer model weighs it
    ]:
        gen = ScriptedGenerator({"Paris": 0.9}, check={"Paris": 0.8})
        verifier = Verifier(gen, LlmJudgeVerifier(gen, prompts), prompts, thresholds)
        evidence = verifier.evidence("Capital?", ["Paris is the capital of France."], "")
        v = verifier.verify(evidence, "Paris is the capital [1].", given=given, short="Paris")
        assert ("check" in gen.calls) is expect_check, (thresholds, given)
        assert (v.answer_check is not None) is expect_check
        assert v.alignment is not None  # pure and cheap: always measured
        assert v.anchor is not None
    assert Thresholds().weighs_check(True) is False and weighs.weighs_check(True) is True


def test_a_missing_llama_cpp_is_a_model_error_naming_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verirag.generators.llamacpp import LlamaCppGenerator

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp -> ImportError
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    gen = LlamaCppGenerator(str(model), settings=Settings(data_dir=tmp_path))
    with pytest.raises(ModelError, match=r"pip install 'verirag\[llm\]'"):
        gen.warm_up()


def test_the_wheel_installs_one_import_name() -> None:
    """Setuptools finds the packages under verirag/ only, through its links to the folders."""
    code = (
        "from setuptools import find_packages; import json; "
        "print(json.dumps(sorted(find_packages(include=['verirag*']))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    import json

    packages = json.loads(out)
    assert {p.split(".")[0] for p in packages} == {"verirag"}
    for expected in (
        "verirag.core",
        "verirag.pipeline.cli",
        "verirag.pipeline.api.routers",
        "verirag.pipeline.evaluation",
        "verirag.retrievers",
        "verirag.generators.prompts",
        "verirag.evaluators",
    ):
        assert expected in packages


def test_a_question_is_validated_once_on_its_way_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import HashEncoder
    from verirag.pipeline import rag as rag_module
    from verirag.pipeline.indexing import IndexingPipeline

    settings = Settings(
        data_dir=tmp_path / "data", embedder="hash-test", splade_model="", relevance_floor=1.0
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Parrots talk and dogs bark.\n")
    encoder = HashEncoder()
    IndexingPipeline(settings, encoder=encoder).run([docs], "c")  # type: ignore[arg-type]
    rag = rag_module.RagPipeline(settings, encoder=encoder)  # type: ignore[arg-type]

    checked: list[str] = []
    original = rag_module.validate_query

    def counting(query: str | rag_module.Question, limit: int) -> str:
        if not isinstance(query, rag_module.Question):
            checked.append(query)
        return original(query, limit)

    monkeypatch.setattr(rag_module, "validate_query", counting)
    # The CLI's way: a string, checked once by the pipeline (nothing passes the floor of 1.0,
    # so no generator is needed to reach the end of retrieval).
    prepared = rag.prepare("  do parrots talk? ", "c")
    assert checked == ["  do parrots talk? "] and prepared.question == "do parrots talk?"
    # The API's way: checked before work is queued, then passed down as validated.
    checked.clear()
    question = rag.question("do parrots talk?")
    rag.prepare(question, "c")
    rag.search(question, "c")
    assert checked == ["do parrots talk?"]
    with pytest.raises(rag_module.QueryError, match="empty"):
        rag.question("   ")
    rag.close()
