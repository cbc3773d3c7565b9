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
    dense: Scored[K],
    sparse: Scored[K],
    d: dict[K, float],
    b: dict[K, float],
    alpha: float,
    floor: float | None = None,
) -> list[tuple[K, float]]:
    """alpha * d + (1 - alpha) * b over the union of both lists; an item missing from one
    list gets `floor` there, or by default that list's lowest normalised score (it scored
    under the list's last candidate). Ties keep the order of first appearance (dense first)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    order: dict[K, int] = {}
    for item, _ in [*dense, *sparse]:
        order.setdefault(item, len(order))
    d_low = floor if floor is not None else min(d.values(), default=0.0)
    b_low = floor if floor is not None else min(b.values(), default=0.0)
    fused = {item: alpha * d.get(item, d_low) + (1 - alpha) * b.get(item, b_low) for item in order}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def convex_fusion(dense: Scored[K], sparse: Scored[K], alpha: float) -> list[tuple[K, float]]:
    """alpha * dense + (1 - alpha) * BM25, each min-max normalised over its own candidates;
    an item missing from one list gets 0 there (it scored under that list's last candidate).
    Ties keep the order of first appearance (dense first)."""
    return _combine(dense, sparse, _min_max(dense), _min_max(sparse), alpha, floor=0.0)


def zscore_fusion(dense: Scored[K], sparse: Scored[K], alpha: float) -> list[tuple[K, float]]:
    """alpha * dense + (1 - alpha) * BM25, each standardised over its own candidates (as
    distribution-based score fusion does). Min-max hangs each side's scale on its two extreme
    candidates, of which the last is an accident of the list's depth; the mean and standard
    deviation of the whole list are steadier, so a side's confidence in its top hits is kept
    in proportion to how far they stand out from the rest."""
    return _combine(dense, sparse, _z_scores(dense), _z_scores(sparse), alpha)


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


def adaptive_fusion(
    dense: Scored[K], sparse: Scored[K], k: int = 60, floor: float = 0.1
) -> list[tuple[K, float]]:
    """Weighted RRF with per-query weights from each side's peakedness: the side that is
    surer of its first hit on this query counts more. Each weight is at least `floor` of the
    total, so neither side is ever ignored."""
    pd, ps = max(peakedness(dense), 0.0), max(peakedness(sparse), 0.0)
    total = pd + ps
    wd = 0.5 if total == 0 else pd / total
    wd = min(max(wd, floor), 1 - floor)
    return reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in sparse]], [wd, 1 - wd], k)


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
    if method == "rrf":
        return reciprocal_rank_fusion(
            [[i for i, _ in dense], [i for i, _ in sparse]], [dense_weight, bm25_weight], rrf_k
        )
    if method == "convex":
        return convex_fusion(dense, sparse, alpha)
    if method == "zscore":
        return zscore_fusion(dense, sparse, alpha)
    if method == "adaptive":
        return adaptive_fusion(dense, sparse, rrf_k)
    raise ValueError(f"unknown fusion method {method!r}; choose rrf, convex, zscore or adaptive")


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
