"""Source lift: how much the retrieved sources raise the likelihood of the answer.

The generator scores the same answer twice, with the sources and without them (closed
book). An answer drawn from the sources gains likelihood from them; one from the model's
memory, or made up, gains little. Unlike raw logprobs, which reward any fluent text (and
ran backwards on HaluEval here: AUROC 0.38), the difference cancels out fluency.
Pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from verirag.evaluators.confidence import is_content
from verirag.generators.base import TokenLogprob


def source_lift(
    with_sources: Sequence[TokenLogprob], closed_book: Sequence[TokenLogprob]
) -> float | None:
    """Mean per-token log-likelihood gain (nats) over content tokens; None if no tokens."""
    a = [t.logprob for t in with_sources if is_content(t)]
    b = [t.logprob for t in closed_book if is_content(t)]
    if not a or not b:
        return None
    return sum(a) / len(a) - sum(b) / len(b)


def lift_score(lift: float | None, scale: float) -> float:
    """The lift mapped to [0, 1] (0.5 at no lift); 0.5 when unknown."""
    if lift is None:
        return 0.5
    z = scale * lift
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
