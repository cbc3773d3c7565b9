from __future__ import annotations

from pathlib import Path

import pytest

from verirag.core.records import Answer, ClaimResult, Timings
from verirag.pipeline.review import ReviewQueue


def _answer(collection: str) -> Answer:
    claim = ClaimResult("It is 1925.", 0, 11, (1,), "unsupported", 0.1, "not in any source: 1925")
    return Answer(
        question="When?",
        collection=collection,
        text="It is 1925.",
        decision="review",
        decision_reason="1 of 1 claims unsupported",
        confidence=0.4,
        claims=(claim,),
        citations=(),
        retrieved=(),
        generator="g",
        prompt_version="v1",
        params={},
        timings=Timings(),
    )


def test_add_list_show_resolve(tmp_path: Path) -> None:
    queue = ReviewQueue(tmp_path / "review.sqlite")
    a = queue.add(_answer("a"))
    b = queue.add(_answer("b"))
    assert [i.id for i in queue.list()] == [b, a]
    assert [i.id for i in queue.list(collections=["a"])] == [a]
    item = queue.get(a)
    assert item.flagged_claims == 1
    assert item.answer["claims"][0]["reason"] == "not in any source: 1925"
    resolved = queue.resolve(a, "incorrect", "the year is wrong")
    assert (resolved.status, resolved.resolution, resolved.note) == (
        "resolved",
        "incorrect",
        "the year is wrong",
    )
    assert [i.id for i in queue.list()] == [b]
    with pytest.raises(KeyError):
        queue.get(999)
    with pytest.raises(ValueError, match="resolution"):
        queue.resolve(b, "maybe")
