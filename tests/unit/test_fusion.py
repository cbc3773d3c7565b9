from __future__ import annotations

import pytest

from verirag.retrievers.fusion import reciprocal_rank_fusion


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
