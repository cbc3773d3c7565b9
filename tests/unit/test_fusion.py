from __future__ import annotations

import pytest

from verirag.core.settings import Settings
from verirag.retrievers.fusion import (
    adaptive_fusion,
    convex_fusion,
    fuse,
    peakedness,
    reciprocal_rank_fusion,
    zscore_fusion,
)
from verirag.retrievers.hybrid import FusionConfig


def test_rrf_hand_computed() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=1))
    assert fused["a"] == pytest.approx(1 / 2)
    assert fused["b"] == pytest.approx(1 / 3 + 1 / 2)
    assert fused["c"] == pytest.approx(1 / 4)
    assert fused["d"] == pytest.approx(1 / 3)
    order = [item for item, _ in reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=1)]
    assert order == ["b", "a", "d", "c"]


def test_rrf_weights_and_ties() -> None:
    order = reciprocal_rank_fusion([["x"], ["y"]], weights=[1.0, 2.0], k=60)
    assert [i for i, _ in order] == ["y", "x"]
    tie = reciprocal_rank_fusion([["x"], ["y"]], k=60)
    assert [i for i, _ in tie] == ["x", "y"]  # first appearance wins a tie
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([["x"]], weights=[1.0, 1.0])


def test_convex_fusion_hand_computed() -> None:
    # Dense 0.9/0.5/0.1 -> 1, 0.5, 0; BM25 10/5 -> 1, 0. alpha 0.5:
    # a = .5*1 + .5*0 = .5 (not in BM25), b = .5*.5 + .5*1 = .75, c = 0 + 0 = 0, d = .5*0 + 0.
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    sparse = [("b", 10.0), ("d", 5.0)]
    fused = convex_fusion(dense, sparse, 0.5)
    assert [i for i, _ in fused] == ["b", "a", "c", "d"]  # c before d: first appearance
    assert dict(fused) == pytest.approx({"a": 0.5, "b": 0.75, "c": 0.0, "d": 0.0})
    assert [i for i, _ in convex_fusion(dense, sparse, 1.0)][:3] == ["a", "b", "c"]
    # BM25 alone: b leads; d, BM25's last candidate, is at 0 as unfound items are.
    assert [i for i, _ in convex_fusion(dense, sparse, 0.0)][:2] == ["b", "a"]
    # A one-candidate list (no spread) counts as fully confident in it.
    assert dict(convex_fusion([("x", 0.3)], [], 0.5)) == {"x": 0.5}
    with pytest.raises(ValueError, match="alpha"):
        convex_fusion(dense, sparse, 1.5)


def test_peakedness_and_adaptive_weights() -> None:
    flat = [(i, 1.0) for i in range(10)]
    peaked = [(0, 10.0)] + [(i, 1.0 + 0.01 * (i % 2)) for i in range(1, 10)]
    assert peakedness(flat) == 0.0 and peakedness(flat[:2]) == 0.0
    assert peakedness(peaked) > 100
    # The peaked side leads; the other keeps at least the floor of the weight.
    dense = [("d", 10.0)] + [(f"x{i}", 1.0 + 0.01 * (i % 2)) for i in range(9)]
    sparse = [(f"y{i}", 1.0) for i in range(10)]
    fused = adaptive_fusion(dense, sparse, k=60, floor=0.1)
    assert fused[0][0] == "d"
    assert fused[0][1] == pytest.approx(0.9 / 61)
    assert dict(fused)["y0"] == pytest.approx(0.1 / 61)


def test_fuse_dispatches_and_defaults_come_from_settings() -> None:
    dense, sparse = [("a", 0.9), ("b", 0.1)], [("b", 3.0), ("a", 1.0)]
    assert fuse("convex", dense, sparse, alpha=0.5) == convex_fusion(dense, sparse, 0.5)
    assert fuse("rrf", dense, sparse, 60, 1.0, 2.0) == reciprocal_rank_fusion(
        [["a", "b"], ["b", "a"]], [1.0, 2.0], 60
    )
    assert fuse("adaptive", dense, sparse) == adaptive_fusion(dense, sparse)
    with pytest.raises(ValueError, match="unknown fusion method"):
        fuse("max", dense, sparse)
    # The stage's defaults are the settings' (one definition a user sees).
    s, f = Settings.model_fields, FusionConfig()
    assert (f.method, f.alpha, f.rrf_k, f.depth) == (
        s["fusion_method"].default,
        s["fusion_alpha"].default,
        s["rrf_k"].default,
        s["retrieval_k"].default,
    )


def test_zscore_fusion_hand_computed() -> None:
    # Dense 3/2/1: mean 2, sd sqrt(2/3) -> z = +1.2247, 0, -1.2247.
    # BM25 10/4: mean 7, sd 3 -> z = +1, -1. alpha 0.5; items missing from a list get its
    # lowest z (they scored under its last candidate).
    dense = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    sparse = [("b", 10.0), ("d", 4.0)]
    z = (2 / 3) ** -0.5
    fused = zscore_fusion(dense, sparse, 0.5)
    assert dict(fused) == pytest.approx(
        {"a": 0.5 * z - 0.5, "b": 0.5, "c": -0.5 * z - 0.5, "d": -0.5 * z - 0.5}
    )
    assert [i for i, _ in fused] == ["b", "a", "c", "d"]  # c before d: first appearance
    # Scale-free: multiplying one side's scores by a constant changes nothing.
    scaled = zscore_fusion(dense, [(i, 100 * s) for i, s in sparse], 0.5)
    assert [i for i, _ in scaled] == [i for i, _ in fused]
    assert dict(scaled) == pytest.approx(dict(fused))
    # Not min-max under another name: a side whose leader stands far above a tight pack
    # gets it a larger lead than min-max (which puts every leader at 1) would.
    dense = [("p", 0.9)] + [(f"x{i}", 0.5 - 0.001 * i) for i in range(9)]
    assert dict(zscore_fusion(dense, [], 1.0))["p"] == pytest.approx(3.0, abs=0.01)
    assert dict(convex_fusion(dense, [], 1.0))["p"] == 1.0
    # No spread: every candidate at 0.
    assert dict(zscore_fusion([("x", 0.3)], [], 0.5)) == {"x": 0.0}
    with pytest.raises(ValueError, match="alpha"):
        zscore_fusion(dense, [], -0.1)
    assert fuse("zscore", dense, sparse, alpha=0.3) == zscore_fusion(dense, sparse, 0.3)
