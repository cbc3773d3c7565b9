"""Generation parameters: their one definition of defaults and bounds, and their one builder.

The CLI, the HTTP API and the evaluation all build `GenerationParams` through
`generation_params`, so a default or a bound lives here only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from verirag.core.settings import MAX_TOKENS_LIMIT, Settings

__all__ = ["BOUNDS", "GenerationError", "GenerationParams", "check_fits", "generation_params"]

# (low, high) inclusive, except top_p's low end (exclusive) and seed's high end (exclusive).
BOUNDS: dict[str, tuple[float, float]] = {
    "max_tokens": (1, MAX_TOKENS_LIMIT),
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 1000),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
    "seed": (0, 2**31),
}
MAX_STOPS, MAX_STOP_CHARS = 8, 64


class GenerationError(ValueError):
    """Invalid generation parameters, or a prompt the model cannot take."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters. QA defaults are greedy (temperature 0)."""

    max_tokens: int = Settings.model_fields["max_tokens"].default
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k filtering
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_tokens", "temperature", "top_k", "frequency_penalty", "presence_penalty"):
            low, high = BOUNDS[name]
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                problems.append(f"{name} must be in [{low:g}, {high:g}], got {value}")
        low, high = BOUNDS["top_p"]
        if not (math.isfinite(self.top_p) and low < self.top_p <= high):
            problems.append(f"top_p must be in ({low:g}, {high:g}], got {self.top_p}")
        low, high = BOUNDS["seed"]
        if not low <= self.seed < high:
            problems.append(f"seed must be in [0, 2^31), got {self.seed}")
        if len(self.stop) > MAX_STOPS or any(not s or len(s) > MAX_STOP_CHARS for s in self.stop):
            problems.append(
                f"stop takes at most {MAX_STOPS} non-empty strings of up to "
                f"{MAX_STOP_CHARS} characters"
            )
        if problems:
            raise GenerationError("; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def generation_params(
    settings: Settings, *, max_tokens_cap: int | None = None, **given: Any
) -> GenerationParams:
    """Validated parameters: what the caller gave (None = not given), else the defaults.

    `max_tokens` defaults to `settings.max_tokens`; `max_tokens_cap` (the API's
    `api_max_tokens`) bounds both the default and a given value. Raises `GenerationError`
    naming every bad parameter.
    """
    known = {f.name for f in fields(GenerationParams)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise GenerationError(f"unknown generation parameter(s): {', '.join(unknown)}")
    values = {k: v for k, v in given.items() if v is not None}
    if "stop" in values:
        values["stop"] = tuple(values["stop"])
    default_max = settings.max_tokens
    if max_tokens_cap is not None:
        default_max = min(default_max, max_tokens_cap)
        if values.get("max_tokens", 0) > max_tokens_cap:
            raise GenerationError(
                f"max_tokens must be at most {max_tokens_cap}, got {values['max_tokens']}"
            )
    values.setdefault("max_tokens", default_max)
    return GenerationParams(**values)


def check_fits(n_prompt: int, max_tokens: int, n_ctx: int) -> None:
    """Raise `GenerationError` when the prompt and the answer cannot both fit in `n_ctx`."""
    if n_prompt + max_tokens > n_ctx:
        raise GenerationError(
            f"prompt of {n_prompt} tokens plus max_tokens {max_tokens} exceeds the "
            f"context window of {n_ctx} (n_ctx)"
        )
