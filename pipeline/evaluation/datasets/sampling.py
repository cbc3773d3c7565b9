"""Seeded samples of a data set, and leaving gold passages out to test abstention."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from verirag.pipeline.evaluation.datasets.records import EvalItem, HaluItem, Passage


def _check_limit(limit: int | None, what: str) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"{what} must be >= 0, got {limit}")


def sample_items(items: Sequence[EvalItem], limit: int | None, seed: int) -> list[EvalItem]:
    """A seeded sample of `limit` items, kept in data set order (all of them when `limit` is
    None or covers the data set)."""
    _check_limit(limit, "limit")
    if limit is None or limit >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def sample_halu(items: Sequence[HaluItem], pairs: int | None, seed: int) -> list[HaluItem]:
    """A seeded sample of whole pairs (the right and the hallucinated answer together, so the
    sample stays balanced), in data set order."""
    _check_limit(pairs, "pairs")
    pair_ids = list(dict.fromkeys(item.pair_id for item in items))
    if pairs is None or pairs >= len(pair_ids):
        return list(items)
    chosen = set(random.Random(seed).sample(pair_ids, pairs))
    return [item for item in items if item.pair_id in chosen]


def leave_out_gold(
    passages: Sequence[Passage], items: Sequence[EvalItem], share: float, seed: int
) -> tuple[list[Passage], list[EvalItem]]:
    """Remove the gold passages of a seeded `round(share * len(items))` of the items that have
    any, to test abstention: returns the kept passages and every item, where each item whose
    relevant passages are all gone is now `answerable=False` (answers and relevant kept, for
    reporting). Not only the chosen items lose their gold: SQuAD asks several questions per
    paragraph, and a question whose paragraph left with another one cannot be answered either.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must lie in [0, 1], got {share}")
    eligible = [i for i, item in enumerate(items) if item.relevant]
    count = min(round(share * len(items)), len(eligible))
    chosen = random.Random(seed).sample(eligible, count)
    removed = frozenset().union(*(items[i].relevant for i in chosen))
    kept = [p for p in passages if p.pid not in removed]
    updated = [
        replace(item, answerable=False) if item.relevant and item.relevant <= removed else item
        for item in items
    ]
    return kept, updated
