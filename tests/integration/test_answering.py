"""`RagPipeline.ask` and `verirag ask` end to end with SmolLM2 (fast, and it hallucinates
freely). Quality on seeded SQuAD and HaluEval samples with Qwen2.5-0.5B is asserted through
`verirag eval` in test_eval.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.records import Message
from verirag.core.settings import Settings
from verirag.generators.params import GenerationError, GenerationParams
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import QueryError, RagPipeline
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.store import CollectionError

pytestmark = pytest.mark.integration

DOCS = {
    "tower.md": "# Eiffel Tower\nThe Eiffel Tower in Paris was completed in 1889. It is 330 "
    "metres tall and was designed by the company of Gustave Eiffel.\n",
    "museum.md": "# Louvre\nThe Louvre in Paris is the world's most-visited art museum. It "
    "opened in 1793.\n",
    "bread.md": "# Sourdough\nSourdough bread rises thanks to wild yeast and lactic acid "
    "bacteria.\n",
}


@pytest.fixture
def tiny(tmp_path: Path, real_settings: Settings, minilm: SentenceTransformerEncoder) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    settings = real_settings.with_overrides(generator="smollm2-135m", n_ctx=2048)
    IndexingPipeline(settings, encoder=minilm).run([docs], "tiny")
    return settings


def test_ask_plumbing_with_smollm2(tiny: Settings, minilm: SentenceTransformerEncoder) -> None:
    rag = RagPipeline(tiny, encoder=minilm)
    streamed: list[str] = []
    answer = rag.ask(
        "When was the Eiffel Tower completed?",
        "tiny",
        3,
        GenerationParams(max_tokens=48),
        on_token=streamed.append,
    )
    assert answer.decision in ("answer", "review", "abstain")
    assert "".join(streamed).strip() == answer.text
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.citations and [c.number for c in answer.citations] == list(
        range(1, len(answer.citations) + 1)
    )
    assert any("1889" in c.snippet for c in answer.citations)
    for claim in answer.claims:
        assert claim.verdict in ("supported", "unsupported", "unverified")
        assert answer.text[claim.start : claim.end]
    assert answer.timings.generate > 0 and answer.timings.total >= answer.timings.generate
    assert answer.prompt_tokens > 0 and answer.params["max_tokens"] == 48
    json.dumps(asdict(answer), default=str)  # the whole answer serialises
    if answer.decision == "review":
        assert answer.review_id is not None
        item = rag.review_queue().get(answer.review_id)
        assert item.question == answer.question
    # Nothing relevant: abstain without generating.
    off_topic = rag.ask("zxqv blorft quantum cryptography keys?", "tiny")
    assert off_topic.decision == "abstain" and off_topic.completion_tokens == 0


def test_ask_bad_input(tiny: Settings, minilm: SentenceTransformerEncoder) -> None:
    rag = RagPipeline(tiny, encoder=minilm)
    with pytest.raises(QueryError, match="empty"):
        rag.ask("  ", "tiny")
    with pytest.raises(QueryError, match="over the limit"):
        rag.ask("why? " * 1000, "tiny")
    with pytest.raises(CollectionError, match="unknown collection"):
        rag.ask("why?", "nope")
    with pytest.raises(GenerationError, match="temperature"):
        GenerationParams(temperature=5)
    pipe = IndexingPipeline(tiny, encoder=minilm)
    pipe.delete("tiny", [d.doc_id for d in RagPipeline(tiny).store("tiny").documents()])
    with pytest.raises(CollectionError, match="is empty"):
        RagPipeline(tiny, encoder=minilm).ask("why?", "tiny")


def test_cli_ask_json_and_errors(tiny: Settings) -> None:
    env = {
        **os.environ,
        "VERIRAG_DATA_DIR": str(tiny.data_dir),
        "VERIRAG_MODEL_CACHE": str(MODEL_CACHE),
        "VERIRAG_GENERATOR": "smollm2-135m",
        "VERIRAG_N_CTX": "2048",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "verirag.pipeline.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    ok = cli("ask", "How tall is the Eiffel Tower?", "-c", "tiny", "--json", "--max-tokens", "40")
    assert ok.returncode == 0, ok.stderr
    answer = json.loads(ok.stdout)
    assert answer["decision"] in ("answer", "review", "abstain")
    assert answer["citations"] and "claims" in answer and "timings" in answer
    human = cli(
        "ask", "How tall is the Eiffel Tower?", "-c", "tiny", "--stream", "--max-tokens", "40"
    )
    assert human.returncode == 0 and "sources" in human.stdout
    bad = cli("ask", "x?", "-c", "tiny", "--temperature", "9")
    assert bad.returncode == 2 and "temperature must be in [0, 2]" in bad.stderr
    assert cli("ask", "", "-c", "tiny").returncode == 2
    unknown = cli("ask", "x?", "-c", "ghost")
    assert unknown.returncode == 2 and "unknown collection 'ghost'" in unknown.stderr


def test_concurrent_asks_match_sequential_ones_and_share_one_model_thread(
    tiny: Settings, minilm: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from verirag.generators.llamacpp import LlamaCppGenerator

    callers: set[int] = set()
    decode = LlamaCppGenerator._prefill

    def spy(self: LlamaCppGenerator, *args: object, **kwargs: object) -> None:
        callers.add(threading.get_ident())
        decode(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LlamaCppGenerator, "_prefill", spy)
    rag = RagPipeline(tiny, encoder=minilm)
    params = GenerationParams(max_tokens=32)
    questions = ["When was the Eiffel Tower completed?", "When did the Louvre open?"] * 2

    def summary(question: str) -> tuple[str, str, tuple[str, ...]]:
        answer = rag.ask(question, "tiny", 3, params)
        return answer.text, answer.decision, tuple(c.verdict for c in answer.claims)

    sequential = [summary(q) for q in questions]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(summary, questions))
    # Each answer ran whole (no other request's calls in between), so greedy decoding from
    # the same prompts gives the same answers; and llama.cpp only ever ran on one thread.
    assert concurrent == sequential
    assert len(callers) == 1 and threading.get_ident() not in callers


def test_short_answers_and_follow_ups_with_qwen(
    tiny: Settings, minilm: SentenceTransformerEncoder
) -> None:
    """The short answer names the fact and comes from the cited answer; a refusal has none;
    a follow-up is answered as its standalone rewrite."""
    rag = RagPipeline(tiny.with_overrides(generator="qwen2.5-0.5b"), encoder=minilm)
    for question, fact in (
        ("When was the Eiffel Tower completed?", "1889"),
        ("When did the Louvre open?", "1793"),
    ):
        answer = rag.ask(question, "tiny", 3)
        assert fact in answer.text, answer.text
        assert fact in answer.short_answer and len(answer.short_answer.split()) <= 4, answer
        assert answer.short_answer.lower() in answer.text.lower()
    off_topic = rag.ask("zxqv blorft quantum cryptography keys?", "tiny")
    assert off_topic.short_answer == "" and off_topic.confidence == 0.0
    # A follow-up: "And when did it open?" alone names nothing to retrieve; rewritten from
    # the conversation it finds the Louvre's source and its year.
    history = [
        Message("user", "What is the Louvre?"),
        Message("assistant", "The Louvre is a museum in Paris [1]."),
    ]
    follow_up = rag.ask("And when did it open?", "tiny", 3, history=history)
    assert follow_up.follow_up == "And when did it open?"
    assert "louvre" in follow_up.question.lower(), follow_up.question
    assert "1793" in follow_up.text, follow_up.text
    assert any("Louvre" in c.snippet for c in follow_up.citations)
    # The same pipeline behind the LangChain adapters, with the real encoder and model.
    from verirag.pipeline.adapters.langchain import VerifiedAnswer, VerIRagRetriever

    docs = VerIRagRetriever(pipeline=rag, collection="tiny", k=2).invoke(
        "When did the Louvre open?"
    )
    assert len(docs) == 2 and "Louvre" in docs[0].page_content
    chained = VerifiedAnswer(pipeline=rag, collection="tiny", k=3).invoke(
        {"question": "And when did it open?", "history": [(t.role, t.content) for t in history]}
    )
    assert "1793" in chained.text and chained.follow_up == "And when did it open?"


def test_sampling_consistency_with_qwen(tiny: Settings, minilm: SentenceTransformerEncoder) -> None:
    """Sampled again at temperature 1, a model that reads its answer plainly in the source
    says it again; the same answer gets the same samples (seeded)."""
    rag = RagPipeline(
        tiny.with_overrides(generator="qwen2.5-0.5b", agreement_samples=4), encoder=minilm
    )
    answer = rag.ask("When was the Eiffel Tower completed?", "tiny", 3)
    assert "1889" in answer.short_answer, answer
    assert answer.sample_agreement is not None and answer.sample_agreement >= 0.75, answer
    again = rag.ask("When was the Eiffel Tower completed?", "tiny", 3)
    assert again.sample_agreement == answer.sample_agreement
