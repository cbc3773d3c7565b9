"""The generator interface: one typed result for every backend, logprobs included."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pipeline.compute import model_call
from pipeline.records import Message


class GenerationError(ValueError):
    """Invalid generation parameters, or a prompt the model cannot take."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters. QA defaults are greedy (temperature 0)."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k filtering
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.max_tokens <= 8192:
            problems.append(f"max_tokens must be in [1, 8192], got {self.max_tokens}")
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= 2.0):
            problems.append(f"temperature must be in [0, 2], got {self.temperature}")
        if not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.top_k <= 1000:
            problems.append(f"top_k must be in [0, 1000], got {self.top_k}")
        for name in ("frequency_penalty", "presence_penalty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and -2.0 <= value <= 2.0):
                problems.append(f"{name} must be in [-2, 2], got {value}")
        if len(self.stop) > 8 or any(not s or len(s) > 64 for s in self.stop):
            problems.append("stop takes at most 8 non-empty strings of up to 64 characters")
        if not 0 <= self.seed < 2**31:
            problems.append(f"seed must be in [0, 2^31), got {self.seed}")
        if problems:
            raise GenerationError("; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


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
