"""`RagPipeline.ask` and `verirag ask` end to end: SmolLM2 for plumbing (fast, and it
hallucinates freely), Qwen2.5-0.5B for quality on seeded SQuAD and HaluEval samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import pytest

from evaluators.datasets import write_jsonl
from evaluators.decision import Thresholds
from evaluators.hallucination import SignalScorer, load_halueval, score_pairs
from evaluators.metrics import auroc
from evaluators.qa import ask_all, qa_report, squad_qa_sample
from generators import make_generator
from generators.base import GenerationError, GenerationParams
from generators.prompts import load_prompts
from pipeline.indexing import IndexingPipeline
from pipeline.rag import QueryError, RagPipeline
from pipeline.settings import Settings
from retrievers.encoders import SentenceTransformerEncoder
from retrievers.store import CollectionError
from tests.conftest import MODEL_CACHE

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
            [sys.executable, "-m", "pipeline.cli", *args],
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


# -- quality with Qwen2.5-0.5B --------------------------------------------------------------

N_QA, N_DISTRACTORS, SEED = 12, 60, 5


def test_squad_answers_and_abstains_without_gold(
    tmp_path: Path,
    shared_data: Path,
    real_settings: Settings,
    minilm: SentenceTransformerEncoder,
) -> None:
    sample = squad_qa_sample(
        shared_data / "squad_v1.1_dev" / "dev-v1.1.json", N_QA, N_DISTRACTORS, SEED
    )
    settings = real_settings.with_overrides(generator="qwen2.5-0.5b", context_tokens=900)
    pipe = IndexingPipeline(settings, encoder=minilm)
    pipe.run([write_jsonl(sample.corpus, tmp_path / "with.jsonl")], "with-gold")
    pipe.run([write_jsonl(sample.distractors, tmp_path / "without.jsonl")], "without-gold")
    rag = RagPipeline(settings, encoder=minilm)
    params = GenerationParams(max_tokens=64)
    answers = {
        c: ask_all(partial(rag.ask, collection=c, k=4, params=params), sample.questions)
        for c in ("with-gold", "without-gold")
    }
    with_gold = qa_report(answers["with-gold"], sample.questions)
    without_gold = qa_report(answers["without-gold"], sample.questions)
    print(
        f"\nSQuAD {N_QA} questions (seed {SEED}), 0.5B: {with_gold.line()}; gold left out: "
        f"{without_gold.line()}, {without_gold.not_answered:.0%} abstain or review"
    )
    assert with_gold.f1 > without_gold.f1  # the answers come from the sources
    assert with_gold.contains > without_gold.contains
    assert without_gold.not_answered > 0.5  # without the gold paragraph, most are held back


def test_halueval_signals_auroc(shared_data: Path, real_settings: Settings) -> None:
    settings = real_settings.with_overrides(generator="qwen2.5-0.5b")
    scorer = SignalScorer(
        make_generator("qwen2.5-0.5b", settings),
        load_prompts(),
        Thresholds.load(model="qwen2.5-0.5b"),
        settings.idk_sentence,
    )
    pairs = load_halueval(shared_data / "halueval_qa" / "qa.jsonl", 40, 11)
    rows = score_pairs(scorer, pairs)
    labels = [right for _, right in rows]
    scores = {
        name: auroc([v if (v := getattr(r, name)) is not None else 0.5 for r, _ in rows], labels)
        for name in ("logprob", "judge", "lexical", "combined")
    }
    print(
        "\nHaluEval 40 pairs (seed 11), 0.5B AUROC: "
        + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    )
    assert scores["combined"] >= 0.75
    assert scores["combined"] > scores["logprob"]
