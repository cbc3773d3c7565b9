"""One question asked of several collections: the sources come from all of them, merged by
rank, every collection is checked against the caller's access first, and the answer (and any
review item made of it) names them all, so only a key that covers every one can see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_support import CANARY, Bed, api_bed
from tests.conftest import HashEncoder
from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.core.records import SearchHit, joined_collections, split_collections
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import CollectionAccessError, QueryError, RagPipeline
from verirag.retrievers.fusion import merge_collections
from verirag.retrievers.store import CollectionError


def _hit(name: str, rank: int, cosine: float) -> SearchHit:
    return SearchHit(
        rank, 0.0, rank, f"{name}{rank}", "s", "t", "x", 0, 1, (), None, cosine, None, name
    )


def test_merging_goes_by_rank_then_by_closeness_to_the_question() -> None:
    a = [_hit("a", 1, 0.9), _hit("a", 2, 0.8), _hit("a", 3, 0.7)]
    b = [_hit("b", 1, 0.95), _hit("b", 2, 0.1)]
    merged = merge_collections([a, b], 4, 60)
    assert [h.doc_id for h in merged] == ["b1", "a1", "a2", "b2"]
    assert [h.rank for h in merged] == [1, 2, 3, 4]
    assert merged[0].score == merged[1].score == 1 / 61
    assert merge_collections([a, []], 2, 60) == [
        h.__class__(**{**h.__dict__, "rank": i + 1, "score": 1 / (61 + i)})
        for i, h in enumerate(a[:2])
    ]


def test_joined_names_split_back() -> None:
    assert split_collections(joined_collections(["a", "b.c"])) == ("a", "b.c")
    assert split_collections("a") == ("a",)


def _two_collections(tmp_path: Path) -> tuple[RagPipeline, ScriptedGenerator]:
    gen = ScriptedGenerator(
        {"Paris": 0.9, "Berlin": 0.9}, reply="Paris is in France [1]. Berlin is in Germany [2]."
    )
    rag = scripted_pipeline(
        tmp_path, gen, {"paris.txt": "Paris is the capital of France."}, "fr", top_k=2
    )
    other = tmp_path / "de-docs"
    other.mkdir()
    (other / "berlin.txt").write_text("Berlin is the capital of Germany.\n")
    IndexingPipeline(rag.settings, encoder=HashEncoder()).run([other], "de")  # type: ignore[arg-type]
    (tmp_path / "empty").mkdir()
    return rag, gen


def test_an_answer_draws_on_every_collection_asked(tmp_path: Path) -> None:
    rag, _ = _two_collections(tmp_path)
    answer = rag.ask("Which capitals are Paris and Berlin?", ["fr", "de"])
    assert answer.collection == "fr,de"
    assert {c.collection for c in answer.citations} == {"fr", "de"}
    assert {h.collection for h in answer.retrieved} == {"fr", "de"}
    assert [c.number for c in answer.citations] == [1, 2]
    one = rag.search("capital of Germany", "de")
    assert one and all(h.collection == "de" for h in one)


def test_every_collection_is_checked_before_any_is_read(tmp_path: Path) -> None:
    rag, gen = _two_collections(tmp_path)
    with pytest.raises(CollectionAccessError, match="'de'"):
        rag.ask("Paris?", ["fr", "de"], allowed=lambda name: name == "fr")
    assert gen.calls == []
    with pytest.raises(QueryError, match="at most 8"):
        rag.ask("Paris?", [f"c{i}" for i in range(9)])
    with pytest.raises(QueryError, match="at least one"):
        rag.ask("Paris?", [])


def test_an_empty_collection_adds_nothing_and_all_empty_is_an_error(tmp_path: Path) -> None:
    rag, _ = _two_collections(tmp_path)
    IndexingPipeline(rag.settings, encoder=HashEncoder()).create("void")  # type: ignore[arg-type]
    hits = rag.search("capital of France", ["fr", "void"])
    assert hits and {h.collection for h in hits} == {"fr"}
    with pytest.raises(CollectionError, match="empty"):
        rag.ask("Paris?", ["void"])


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    with api_bed(tmp_path) as running:
        yield running


def test_the_api_asks_several_collections_within_the_key(bed: Bed) -> None:
    body = {"question": "do cats purr?", "collections": ["a", "b"]}
    done = bed.client.post("/v1/ask", json=body, headers=bed.headers("admin"))
    assert done.status_code == 200, done.text
    assert done.json()["collection"] == "a,b"
    assert bed.rag.asked == ["a", "b"]
    bed.rag.asked.clear()
    # A key for `a` asking `a` and `b`: refused before anything is read, b never named back.
    refused = bed.client.post("/v1/ask", json=body, headers=bed.headers("a_write"))
    assert refused.status_code == 403 and CANARY not in refused.text
    assert bed.rag.asked == []
    unknown = {"question": "do cats purr?", "collections": ["a", "nope"]}
    assert (
        bed.client.post("/v1/ask", json=unknown, headers=bed.headers("a_write")).status_code == 403
    )
    assert bed.client.post("/v1/ask", json=unknown, headers=bed.headers("admin")).status_code == 404
    both = {"question": "x", "collection": "a", "collections": ["a"]}
    assert bed.client.post("/v1/ask", json=both, headers=bed.headers("admin")).status_code == 422
    many = {"question": "x", "collections": [f"c{i}" for i in range(9)]}
    assert bed.client.post("/v1/ask", json=many, headers=bed.headers("admin")).status_code == 422
    stream = bed.client.post("/v1/ask/stream", json=body, headers=bed.headers("admin"))
    assert stream.status_code == 200 and '"collection": "a,b"' in stream.text


def test_a_review_item_of_several_collections_needs_a_key_for_each(bed: Bed) -> None:
    asked = bed.client.post(
        "/v1/ask",
        json={"question": f"review: cats purr {CANARY}", "collections": ["a", "b"]},
        headers=bed.headers("admin"),
    ).json()
    item = asked["review_id"]
    assert item is not None
    a = bed.headers("a_write")
    assert bed.client.get(f"/v1/review/{item}", headers=a).status_code == 404
    assert (
        bed.client.post(f"/v1/review/{item}", json={"resolution": "correct"}, headers=a).status_code
        == 404
    )
    assert item not in [i["id"] for i in bed.client.get("/v1/review", headers=a).json()]
    assert CANARY not in bed.client.get("/v1/review/reasons", headers=a).text
    everything = bed.headers("all_read")
    assert item in [i["id"] for i in bed.client.get("/v1/review", headers=everything).json()]
    # Dropping one of its collections removes the item: it quotes that collection's text.
    assert bed.client.delete("/v1/collections/b", headers=bed.headers("admin")).status_code == 200
    assert bed.client.get(f"/v1/review/{item}", headers=everything).status_code == 404
