"""RAGAS metrics computed with verirag's own local models: the one place ragas is imported.

ragas (0.4) calls an "instructor-style" LLM: a prompt plus the pydantic model the answer must
fit. Small local models do not reliably write valid JSON when merely asked to, so the
generator decodes under a grammar compiled from that model's JSON schema (llama.cpp
GBNF): the output parses unless it is cut off at the token limit. Whatever still fails (a
cut-off, a schema the grammar cannot express, a metric that returns NaN because it found no
statements) is reported as a failure of that metric on that sample, never as a number.

Nothing leaves the machine: no OpenAI client is created, and ragas' usage tracking is off
(`RAGAS_DO_NOT_TRACK`) before ragas is imported.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from verirag.core.records import Message
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.retrievers.encoders import SentenceTransformerEncoder

METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")

M = TypeVar("M", bound=BaseModel)


class RagasUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class RagasSample:
    question: str
    response: str
    contexts: tuple[str, ...]
    reference: str  # a gold answer; context precision and recall need one


@dataclass(frozen=True)
class RagasScores:
    values: dict[str, float]  # metric -> score in [0, 1], only metrics that succeeded
    errors: dict[str, str]  # metric -> why it failed on this sample
    seconds: dict[str, float]  # metric -> wall time on this sample, failed or not


def _quiet_ragas() -> None:
    os.environ["RAGAS_DO_NOT_TRACK"] = "true"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _bases() -> tuple[type[Any], type[Any]]:
    _quiet_ragas()
    try:
        from ragas.embeddings.base import BaseRagasEmbedding
        from ragas.llms.base import InstructorBaseRagasLLM
    except ImportError as exc:  # pragma: no cover - ragas is a declared dependency
        raise RagasUnavailableError(f"ragas is not installed ({exc}); run `make setup`") from exc
    return InstructorBaseRagasLLM, BaseRagasEmbedding


def make_llm(generator: LlamaCppGenerator, max_tokens: int = 768) -> Any:
    """A ragas LLM that answers every prompt with grammar-constrained JSON."""
    llm_base, _ = _bases()

    # Decoding is greedy, so the same prompt under the same schema always yields the same
    # text: answer relevancy asks its question-generation prompt `strictness` (3) times in
    # a row, and the repeats are answered from here instead of decoded again.
    last: dict[str, str] = {}

    class LocalJsonLLM(llm_base):  # type: ignore[misc, valid-type]
        def generate(self, prompt: str, response_model: type[M]) -> M:
            schema = response_model.model_json_schema()
            key = json.dumps([prompt, schema, max_tokens], sort_keys=True)
            text = last.get(key)
            if text is None:
                rendered = generator.render([Message("user", prompt)])
                text = generator.generate_json(rendered, schema, max_tokens=max_tokens)
                last.clear()
                last[key] = text
            try:
                return response_model.model_validate_json(text)
            except ValidationError as exc:
                raise ValueError(
                    f"{response_model.__name__} output did not parse "
                    f"({len(text)} chars: cut off at {max_tokens} tokens, or where it began "
                    f"to repeat itself?): "
                    f"{exc.errors()[0]['msg']}"
                ) from exc

        async def agenerate(self, prompt: str, response_model: type[M]) -> M:
            # One model, one caller at a time: concurrency would only queue on its lock.
            return self.generate(prompt, response_model)

    return LocalJsonLLM()


def make_embeddings(encoder: SentenceTransformerEncoder) -> Any:
    _, embedding_base = _bases()

    class LocalEmbeddings(embedding_base):  # type: ignore[misc, valid-type]
        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            vector: list[float] = encoder.encode([text])[0].tolist()
            return vector

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            vectors: list[list[float]] = encoder.encode(list(texts)).tolist()
            return vectors

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return self.embed_texts(texts)

    return LocalEmbeddings()


class RagasScorer:
    """The four RAGAS metrics over one sample at a time, with local models only."""

    def __init__(
        self,
        generator: LlamaCppGenerator,
        encoder: SentenceTransformerEncoder,
        metrics: Sequence[str] = METRICS,
        max_tokens: int = 768,
    ) -> None:
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown RAGAS metric(s) {unknown}; choose from {list(METRICS)}")
        self.metric_names = tuple(metrics)
        self.generator = generator
        self.encoder = encoder
        self.max_tokens = max_tokens
        self._metrics: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._metrics is None:
            _quiet_ragas()
            from ragas.metrics.collections import (
                AnswerRelevancy,
                ContextPrecision,
                ContextRecall,
                Faithfulness,
            )

            # Each metric's prompt opens with the same long instructions and examples; with
            # saved prompt states a sample pays only for its own text after the first one.
            if self.generator.prompt_states is None:
                self.generator.keep_prompt_states()
            llm = make_llm(self.generator, self.max_tokens)
            metrics: dict[str, Any] = {}
            for name in self.metric_names:
                if name == "faithfulness":
                    metrics[name] = Faithfulness(llm=llm)
                elif name == "answer_relevancy":
                    metrics[name] = AnswerRelevancy(
                        llm=llm, embeddings=make_embeddings(self.encoder)
                    )
                elif name == "context_precision":
                    metrics[name] = ContextPrecision(llm=llm)
                else:
                    metrics[name] = ContextRecall(llm=llm)
            self._metrics = metrics
        return self._metrics

    def score(self, sample: RagasSample) -> RagasScores:
        values: dict[str, float] = {}
        errors: dict[str, str] = {}
        seconds: dict[str, float] = {}
        for name, metric in self._load().items():
            started = time.perf_counter()
            try:
                value = asyncio.run(self._one(name, metric, sample))
            except Exception as exc:  # a failed metric is reported, the run goes on
                errors[name] = f"{type(exc).__name__}: {exc}"[:500]
                continue
            finally:
                seconds[name] = time.perf_counter() - started
            if value is None or not math.isfinite(value):
                errors[name] = "metric returned no score (NaN: nothing to judge)"
            else:
                values[name] = float(value)
        return RagasScores(values, errors, seconds)

    @staticmethod
    async def _one(name: str, metric: Any, s: RagasSample) -> float | None:
        contexts = list(s.contexts)
        if name == "faithfulness":
            result = await metric.ascore(
                user_input=s.question, response=s.response, retrieved_contexts=contexts
            )
        elif name == "answer_relevancy":
            result = await metric.ascore(user_input=s.question, response=s.response)
        elif name == "context_precision":
            result = await metric.ascore(
                user_input=s.question, reference=s.reference, retrieved_contexts=contexts
            )
        else:
            result = await metric.ascore(
                user_input=s.question, retrieved_contexts=contexts, reference=s.reference
            )
        value = result.value
        return None if value is None else float(value)
