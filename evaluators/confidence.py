"""Confidence from the generator's own token logprobs. Pure Python, no torch.

Logprobs alone are a weak hallucination signal (fluent fabrications score high); they are one
input to the decision, next to the judge and the lexical checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from verirag.generators.base import TokenLogprob

LOW_PROB = math.log(0.1)
_CITATION_TOKEN = re.compile(r"^[\s\[\]\d,.]*$")


@dataclass(frozen=True)
class ConfidenceFeatures:
    n_tokens: int
    mean_logprob: float
    min_logprob: float
    mean_entropy: float  # nats, over the top-k alternatives plus the remaining mass
    low_share: float  # share of tokens with probability under 0.1

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> ConfidenceFeatures:
        """From `Answer.confidence_features`; empty (an abstention without generation) = none."""
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        return cls(
            int(values["n_tokens"]),
            float(values["mean_logprob"]),
            float(values["min_logprob"]),
            float(values["mean_entropy"]),
            float(values["low_share"]),
        )


@dataclass(frozen=True)
class ConfidenceWeights:
    """A logistic model over the features; `verirag calibrate` refits it."""

    bias: float = 1.5
    mean_logprob: float = 3.0
    min_logprob: float = 0.1
    mean_entropy: float = -1.0
    low_share: float = -3.0


def token_entropy(token: TokenLogprob) -> float:
    probs = [math.exp(lp) for _, lp in token.top] or [math.exp(token.logprob)]
    rest = max(0.0, 1.0 - sum(probs))
    return -sum(p * math.log(p) for p in [*probs, rest] if p > 0)


def is_content(token: TokenLogprob) -> bool:
    """Citation markers like "[1]" and non-finite scores are not evidence about content."""
    return not _CITATION_TOKEN.match(token.token) and math.isfinite(token.logprob)


def features(tokens: Sequence[TokenLogprob]) -> ConfidenceFeatures:
    """Features over content tokens: citation markers like "[1]" are left out."""
    content = [t for t in tokens if is_content(t)]
    if not content:
        return ConfidenceFeatures(0, 0.0, 0.0, 0.0, 0.0)
    lps = [t.logprob for t in content]
    return ConfidenceFeatures(
        n_tokens=len(content),
        mean_logprob=sum(lps) / len(lps),
        min_logprob=min(lps),
        mean_entropy=sum(token_entropy(t) for t in content) / len(content),
        low_share=sum(lp < LOW_PROB for lp in lps) / len(lps),
    )


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def logit(p: float) -> float:
    """`sigmoid`'s inverse, with `p` kept off 0 and 1 so that it stays finite."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


class LogprobConfidence:
    def __init__(self, weights: ConfidenceWeights | None = None) -> None:
        self.weights = weights or ConfidenceWeights()

    def score(self, f: ConfidenceFeatures) -> float:
        """One number in [0, 1]; 0 when there is nothing to judge."""
        if f.n_tokens == 0:
            return 0.0
        w = self.weights
        z = (
            w.bias
            + w.mean_logprob * f.mean_logprob
            + w.min_logprob * f.min_logprob
            + w.mean_entropy * f.mean_entropy
            + w.low_share * f.low_share
        )
        return sigmoid(z)

    def __call__(self, tokens: Sequence[TokenLogprob]) -> float:
        return self.score(features(tokens))
