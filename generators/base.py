"""The generator interface: one typed result for every backend, logprobs included."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from verirag.core.compute import model_call
from verirag.core.records import Message
from verirag.core.registry import ModelError
from verirag.generators.params import GenerationParams


class InferenceServerError(ModelError):
    """An inference server is unreachable, answered with an error, or stalled."""


class SignalUnavailable(InferenceServerError):  # noqa: N818 - names a capability, not a fault
    """The backend does not give this signal (e.g. a server without prompt logprobs)."""


@dataclass(frozen=True)
class TokenLogprob:
    """One generated (or teacher-forced) token with its log-probability and alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # up to 5 alternatives, best first


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: tuple[TokenLogprob, ...]
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int
    seconds_to_first_token: float
    seconds_total: float

    @property
    def decode_tokens_per_second(self) -> float:
        decode = self.seconds_total - self.seconds_to_first_token
        return (
            (self.completion_tokens - 1) / decode
            if decode > 0 and self.completion_tokens > 1
            else 0.0
        )


@dataclass(frozen=True)
class StreamEvent:
    """A streamed token; the last event has `final` set to the whole generation."""

    text: str
    final: Generation | None = None

    @classmethod
    def last(
        cls,
        text: str,
        tokens: Sequence[TokenLogprob],
        finish_reason: str,
        prompt_tokens: int,
        started: float,
        first: float | None,
    ) -> StreamEvent:
        """The closing event of a stream that began at `started` (perf_counter) and produced
        its first token `first` seconds later (None: no token, so first = total)."""
        total = time.perf_counter() - started
        generation = Generation(
            text=text,
            tokens=tuple(tokens),
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens),
            seconds_to_first_token=first if first is not None else total,
            seconds_total=total,
        )
        return cls("", generation)


class StopScanner:
    """Streamed text with stop strings: cuts at the first one and releases only characters
    that no stop string can still claim (it may be split across tokens)."""

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = tuple(stop)
        self.hold = max((len(s) for s in self.stop), default=0)
        self.text = ""
        self.emitted = 0

    def push(self, piece: str) -> tuple[str, bool]:
        """Add decoded text; returns what may be streamed now and whether a stop was hit."""
        self.text += piece
        cut = min((p for s in self.stop if (p := self.text.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.text = self.text[:cut]
            return "", True
        safe = len(self.text) - self.hold
        if safe <= self.emitted:
            return "", False
        out, self.emitted = self.text[self.emitted : safe], safe
        return out, False

    def rest(self) -> str:
        """Whatever was held back, at the end of the generation."""
        out, self.emitted = self.text[self.emitted :], len(self.text)
        return out


class Generator(ABC):
    """Cheap constructor; `warm_up()` loads the model once; all methods are thread-safe."""

    name: str

    @abstractmethod
    def warm_up(self) -> None: ...

    @abstractmethod
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt string for a chat, ending where the assistant starts to answer."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def stream(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]: ...

    @model_call  # the whole token loop on the compute thread, no hand-over per token
    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        final: Generation | None = None
        for event in self.stream(prompt, params):
            final = event.final or final
        if final is None:  # pragma: no cover - backends always end with a final event
            raise RuntimeError(f"{self.name}: stream ended without a result")
        return final

    @abstractmethod
    def score(self, prompt: str, continuation: str) -> list[TokenLogprob]:
        """Teacher-forced log-probabilities of `continuation`'s tokens after `prompt`."""

    @abstractmethod
    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        """The k most likely next tokens after `prompt` with their log-probabilities."""
