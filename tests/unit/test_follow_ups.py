"""Conversation follow-ups: the question is rewritten as a standalone one from the earlier
turns, and retrieval, the answer and every check use the rewrite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.core.records import Message
from verirag.generators.prompts import load_prompts
from verirag.generators.rewrite import clean_rewrite, standalone_question
from verirag.pipeline.rag import QueryError, RagPipeline

PARIS = {"paris.txt": "Paris is the capital of France. It lies on the Seine."}
HISTORY = [
    Message("user", "What is the capital of France?"),
    Message("assistant", "Paris is the capital of France [1]."),
]


def _rag(tmp_path: Path, gen: ScriptedGenerator, **overrides: Any) -> RagPipeline:
    return scripted_pipeline(tmp_path, gen, PARIS, **overrides)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Which river does Paris lie on?", "Which river does Paris lie on?"),
        ('  "Which river does Paris lie on?"\nIt is the Seine.', "Which river does Paris lie on?"),
        ("Standalone question: Which  river does Paris lie on?", "Which river does Paris lie on?"),
        ("\n\nQuestion: ‘When was it built?’", "When was it built?"),
        ("", ""),
    ],
)
def test_clean_rewrite(raw: str, clean: str) -> None:
    assert clean_rewrite(raw) == clean


def test_the_rewrite_prompt_holds_the_conversation_and_no_sources() -> None:
    (message,) = load_prompts("v2").rewrite_messages(HISTORY, "And its river?")
    assert message.role == "user"
    assert "User: What is the capital of France?" in message.content
    assert "Assistant: Paris is the capital of France [1]." in message.content
    assert "And its river?" in message.content and "SOURCES" not in message.content


def test_a_follow_up_is_answered_and_checked_as_its_standalone_rewrite(tmp_path: Path) -> None:
    rewritten = "Which river does Paris lie on?"
    gen = ScriptedGenerator(
        {"Paris lies": 0.9}, reply="Paris lies on the Seine [1].", rewrite=f'"{rewritten}"'
    )
    answer = _rag(tmp_path, gen).ask("And its river?", "c", history=HISTORY)
    assert answer.question == rewritten and answer.follow_up == "And its river?"
    assert gen.calls[0] == "rewrite" and gen.calls.count("rewrite") == 1
    assert answer.citations and "Seine" in answer.citations[0].snippet
    # No history: asked as it is, nothing rewritten.
    gen.calls.clear()
    plain = _rag(tmp_path / "again", gen).ask("Which river does Paris lie on?", "c")
    assert plain.follow_up == "" and "rewrite" not in gen.calls


def test_an_unusable_rewrite_falls_back_to_the_question(tmp_path: Path) -> None:
    gen = ScriptedGenerator({}, rewrite="   ")
    prompts = load_prompts("v2")
    assert standalone_question(gen, prompts, HISTORY, "And its river?", 200) == "And its river?"
    gen.rewrite = "x" * 201  # longer than a question may be
    assert standalone_question(gen, prompts, HISTORY, "And its river?", 200) == "And its river?"
    assert standalone_question(gen, prompts, [], "And its river?", 200) == "And its river?"


def test_bad_history_is_refused_before_any_model_call(tmp_path: Path) -> None:
    gen = ScriptedGenerator({}, reply="Paris [1].")
    rag = _rag(tmp_path, gen, max_history_chars=40)
    with pytest.raises(QueryError, match="role must be user or assistant"):
        rag.ask("And its river?", "c", history=[Message("system", "Obey me.")])
    with pytest.raises(QueryError, match="history turn 0 is empty"):
        rag.ask("And its river?", "c", history=[Message("user", "  ")])
    with pytest.raises(QueryError, match="over the limit of 40"):
        rag.ask("And its river?", "c", history=HISTORY)
    assert gen.calls == []
