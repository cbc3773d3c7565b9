"""Per-token log-probabilities and top alternatives from rows of raw logits."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TOP_ALTERNATIVES = 5
NEAR_MAX = 12.0  # nats under a row's maximum searched first for the top k

# One row's result: the chosen token's logprob (NaN when none was chosen) and the top k
# (token id, logprob), best first.
RowLogprobs = tuple[float, list[tuple[int, float]]]


def batch_logprobs(
    scores: np.ndarray,
    rows: list[int],
    tokens: Sequence[int | None],
    k: int = TOP_ALTERNATIVES,
    block: int = 64,
) -> list[RowLogprobs]:
    """Log-softmax of many rows of `scores` at once (float32, vectorised); `tokens[i]` is
    the token whose logprob row `rows[i]` gives.

    llama-cpp-python's own logprobs sort the whole vocabulary in Python for every token
    (150k entries for Qwen), which cut decoding speed several times here; a full
    argpartition per row still cost 2 ms, so the top k are picked among the few entries
    near the row's maximum (exact whenever at least k are there).
    """
    out: list[RowLogprobs] = []
    for i in range(0, len(rows), block):
        idx = rows[i : i + block]
        contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
        # A slice is a view; fancy indexing would copy 600 KB per row.
        logits = scores[idx[0] : idx[0] + len(idx)] if contiguous else scores[idx]
        peak = logits.max(axis=1)
        lse = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1, dtype=np.float64))
        for r in range(len(idx)):
            row = logits[r]
            near = np.flatnonzero(row >= peak[r] - NEAR_MAX)
            if near.size < k:
                near = np.argpartition(row, -k)[-k:]
            elif near.size > k:
                near = near[np.argpartition(row[near], -k)[-k:]]
            best = near[np.argsort(-row[near], kind="stable")]
            token = tokens[i + r]
            chosen = float(row[token] - lse[r]) if token is not None else math.nan
            out.append((chosen, [(int(t), float(row[t] - lse[r])) for t in best]))
    return out
