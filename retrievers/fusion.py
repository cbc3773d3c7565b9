"""Rank fusion. Pure Python: unit-tested without models."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import replace
from statistics import fmean, pstdev
from typing import TypeVar

from verirag.core.records import SearchHit

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[K, float]]:
    """Weighted RRF (Cormack et al., 2009): score(d) = sum_i w_i / (k + rank_i(d)).

    Ranks start at 1; ties in the fused score keep the order of first appearance, so the
    result is deterministic.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if k < 1:
        raise ValueError("k must be at least 1")
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


Scored = Sequence[tuple[K, float]]


def _min_max(scored: Scored[K]) -> dict[K, float]:
    """Scores mapped to [0, 1] within the list (all equal: all 1)."""
    if not scored:
        return {}
    values = [s for _, s in scored]
    low, high = min(values), max(values)
    span = high - low
    return {item: (s - low) / span if span > 0 else 1.0 for item, s in scored}


def _z_scores(scored: Scored[K]) -> dict[K, float]:
    """Scores standardised within the list: (s - mean) / standard deviation (no spread: 0)."""
    if not scored:
        return {}
    values = [s for _, s in scored]
    mean, sd = fmean(values), pstdev(values)
    return {item: (s - mean) / sd if sd > 0 else 0.0 for item, s in scored}


def _combine(
    sides: Sequence[Scored[K]],
    normalised: Sequence[dict[K, float]],
    weights: Sequence[float],
    floor: float | None = None,
) -> list[tuple[K, float]]:
    """sum_i weights[i] * normalised[i] over the union of the lists; an item missing from a
    list gets `floor` there, or by default that list's lowest normalised score (it scored
    under the list's last candidate). Ties keep the order of first appearance (in side order)."""
    if len(weights) != len(sides) or any(w < 0 for w in weights):
        raise ValueError("one non-negative weight per side")
    order: dict[K, int] = {}
    for side in sides:
        for item, _ in side:
            order.setdefault(item, len(order))
    lows = [floor if floor is not None else min(n.values(), default=0.0) for n in normalised]
    fused = {
        item: sum(w * n.get(item, low) for w, n, low in zip(weights, normalised, lows, strict=True))
        for item in order
    }
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def _shares(alpha: float) -> list[float]:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    return [alpha, 1 - alpha]


def convex_fusion(dense: Scored[K], sparse: Scored[K], alpha: float) -> list[tuple[K, float]]:
    """alpha * dense + (1 - alpha) * BM25, each min-max normalised over its own candidates;
    an item missing from one list gets 0 there (it scored under that list's last candidate).
    Ties keep the order of first appearance (dense first)."""
    sides = [dense, sparse]
    return _combine(sides, [_min_max(s) for s in sides], _shares(alpha), floor=0.0)


def zscore_fusion(dense: Scored[K], sparse: Scored[K], alpha: float) -> list[tuple[K, float]]:
    """alpha * dense + (1 - alpha) * BM25, each standardised over its own candidates (as
    distribution-based score fusion does). Min-max hangs each side's scale on its two extreme
    candidates, of which the last is an accident of the list's depth; the mean and standard
    deviation of the whole list are steadier, so a side's confidence in its top hits is kept
    in proportion to how far they stand out from the rest."""
    sides = [dense, sparse]
    return _combine(sides, [_z_scores(s) for s in sides], _shares(alpha))


def peakedness(scored: Scored[K], top: int = 10) -> float:
    """How far the best score stands above the rest of the top `top`, in their standard
    deviations (0 for fewer than 3 candidates or no spread): a retriever that is sure of its
    first hit puts it well above the others, one that is guessing does not."""
    values = [s for _, s in scored[:top]]
    if len(values) < 3:
        return 0.0
    rest = values[1:]
    sd = pstdev(rest)
    return 0.0 if sd <= 0 else (values[0] - fmean(rest)) / sd


def _peaked_weights(sides: Sequence[Scored[K]], floor: float) -> list[float]:
    """Each side's share of the summed peakedness (equal shares when none is peaked); with
    two sides each share is clamped to [floor, 1 - floor], with more each is raised to
    `floor` and the shares are normalised again."""
    peaks = [max(peakedness(s), 0.0) for s in sides]
    total = sum(peaks)
    shares = [1 / len(sides)] * len(sides) if total == 0 else [p / total for p in peaks]
    if len(sides) == 2:
        first = min(max(shares[0], floor), 1 - floor)
        return [first, 1 - first]
    raised = [max(s, floor) for s in shares]
    return [s / sum(raised) for s in raised]


def adaptive_fusion(
    dense: Scored[K], sparse: Scored[K], k: int = 60, floor: float = 0.1
) -> list[tuple[K, float]]:
    """Weighted RRF with per-query weights from each side's peakedness: the side that is
    surer of its first hit on this query counts more. Each weight is at least `floor` of the
    total, so neither side is ever ignored."""
    return fuse_sides("adaptive", [dense, sparse], [1.0, 1.0], k, floor)


def fuse_sides(
    method: str,
    sides: Sequence[Scored[K]],
    weights: Sequence[float],
    rrf_k: int = 60,
    floor: float = 0.1,
) -> list[tuple[K, float]]:
    """One fused ranking of any number of scored candidate lists (dense, BM25, learned
    sparse) by `method`: `weights` are the sides' shares for convex and zscore (they need
    not sum to 1), their RRF weights for rrf; adaptive ignores them (per-query weights,
    each side at least `floor`)."""
    if len(weights) != len(sides):
        raise ValueError(f"{len(weights)} weights for {len(sides)} sides")
    if method == "rrf":
        return reciprocal_rank_fusion([[i for i, _ in s] for s in sides], weights, rrf_k)
    if method == "convex":
        return _combine(sides, [_min_max(s) for s in sides], weights, floor=0.0)
    if method == "zscore":
        return _combine(sides, [_z_scores(s) for s in sides], weights)
    if method == "adaptive":
        return reciprocal_rank_fusion(
            [[i for i, _ in s] for s in sides], _peaked_weights(sides, floor), rrf_k
        )
    raise ValueError(f"unknown fusion method {method!r}; choose rrf, convex, zscore or adaptive")


def fuse(
    method: str,
    dense: Scored[K],
    sparse: Scored[K],
    rrf_k: int = 60,
    dense_weight: float = 1.0,
    bm25_weight: float = 1.0,
    alpha: float = 0.5,
) -> list[tuple[K, float]]:
    """One fused ranking of the two candidate lists by `method` (rrf | convex | zscore |
    adaptive)."""
    weights = [dense_weight, bm25_weight] if method == "rrf" else _shares(alpha)
    return fuse_sides(method, [dense, sparse], weights, rrf_k)


def merge_collections(ranked: Sequence[Sequence[SearchHit]], k: int, rrf_k: int) -> list[SearchHit]:
    """The top `k` of several collections' ranked hits, for one question asked of them all.

    Their scores are not comparable (each collection normalises its own BM25 and fusion), so
    the lists are merged by rank, as reciprocal rank fusion merges any ranked lists: each hit
    scores 1/(rrf_k + its rank in its own collection). At equal rank the hit closer to the
    question (dense cosine) goes first; the relevance floor later drops what none supports.
    """
    pooled = [
        (1.0 / (rrf_k + rank), hit.dense_score if hit.dense_score is not None else -1.0, i, hit)
        for i, hits in enumerate(ranked)
        for rank, hit in enumerate(hits, start=1)
    ]
    pooled.sort(key=lambda row: (-row[0], -row[1], row[2]))
    return [
        replace(hit, rank=rank, score=score)
        for rank, (score, _, _, hit) in enumerate(pooled[:k], start=1)
    ]
