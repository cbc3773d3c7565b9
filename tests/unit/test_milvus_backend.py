"""The Milvus vector backend beyond the contract every backend keeps (tests/unit/test_indexing.py
runs on both): a writer killed between SQLite and Milvus, moving a collection between
backends, filters before top-k, drop, readers that never write, and a server that is down.
Against a Milvus Lite server the session starts on 127.0.0.1 (`milvus_uri`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HashEncoder
from tests.unit.test_indexing import _consistent, _corpus
from verirag.core.records import Chunk, Document
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.filters import parse_filters
from verirag.retrievers.milvus_vectors import MilvusVectors, VectorDatabaseError, grpc_options
from verirag.retrievers.store import BatchWrite, CollectionConfig, FaissStore, drop_collection
from verirag.retrievers.vector_backend import MilvusBackend


@pytest.fixture
def milvus_settings(hash_settings: Settings, milvus_uri: str) -> Settings:
    return hash_settings.with_overrides(vector_backend="milvus", vector_uri=milvus_uri)


def _pipe(settings: Settings, encoder: HashEncoder) -> IndexingPipeline:
    return IndexingPipeline(settings, encoder=encoder)  # type: ignore[arg-type]


def _milvus_of(settings: Settings, name: str) -> MilvusVectors:
    with FaissStore(settings.collections_dir / name) as store:
        assert isinstance(store.vectors, MilvusBackend)
        return store.vectors.milvus


def test_a_writer_killed_before_milvus_caught_up_is_repaired_by_the_next_writer(
    tmp_path: Path,
    milvus_settings: Settings,
    hash_encoder: HashEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(milvus_settings, hash_encoder)
    pipe.run([corpus], "c")
    (corpus / "dogs.txt").write_text("Dogs now chase squirrels in the park.\n")

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt("killed between the SQLite commit and Milvus")

    monkeypatch.setattr(MilvusVectors, "upsert", killed)
    with pytest.raises(KeyboardInterrupt):
        pipe.run([corpus], "c")
    monkeypatch.undo()
    coll = milvus_settings.collections_dir / "c"
    with FaissStore(coll) as reader:
        # SQLite moved on, Milvus did not: a reader never returns a chunk its snapshot lacks,
        # and never writes to Milvus to mend it.
        assert isinstance(reader.vectors, MilvusBackend)
        held = set(reader.vectors.milvus.ids().tolist())
        live = set(reader.chunk_ids().tolist())
        assert held != live
        hits = reader.hits(reader.search(hash_encoder.encode_query("dogs mailman")[0], 10))
        assert {h.chunk_id for h in hits} <= live
        assert set(reader.vectors.milvus.ids().tolist()) == held
    with FaissStore(coll, writable=True) as writer:  # the next writer catches Milvus up
        _consistent(writer)
    rag = RagPipeline(milvus_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    assert "squirrels" in rag.search("dogs squirrels park", "c", 1)[0].text


def test_a_collection_moves_between_backends_without_embedding_again(
    tmp_path: Path, hash_settings: Settings, milvus_uri: str, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    _pipe(hash_settings, hash_encoder).run([corpus], "c")
    rag = RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    # Ties (score 0: no shared word) may come in any order; the matches may not.
    before = {(h.chunk_id, round(h.score, 5)) for h in rag.search("volcanoes lava", "c", 5)}
    before = {hit for hit in before if hit[1] > 0}
    assert before
    embedded = hash_encoder.encoded
    to_milvus = hash_settings.with_overrides(vector_backend="milvus", vector_uri=milvus_uri)
    _pipe(to_milvus, hash_encoder).run([corpus], "c", change_index=True)
    assert hash_encoder.encoded == embedded
    milvus = _milvus_of(hash_settings, "c")
    assert milvus.count() > 0
    rag = RagPipeline(to_milvus, encoder=hash_encoder)  # type: ignore[arg-type]
    after = {(h.chunk_id, round(h.score, 5)) for h in rag.search("volcanoes lava", "c", 5)}
    assert {hit for hit in after if hit[1] > 0} == before
    _pipe(hash_settings, hash_encoder).run([corpus], "c", change_index=True)  # and back
    assert not milvus.exists()  # the Milvus collection left behind is dropped
    with FaissStore(hash_settings.collections_dir / "c") as store:
        assert store.config.backend == "faiss"
        _consistent(store)


def test_a_filter_applies_before_top_k_and_still_returns_k(
    tmp_path: Path, milvus_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths of a filtered search: a large filter goes to Milvus as an id expression
    (monkeypatched threshold), a small one is searched exactly over SQLite's vectors."""
    monkeypatch.setattr("verirag.retrievers.vector_backend.EXACT_WITHIN", 10)
    dim, n = 16, 400
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    config = CollectionConfig("hash", dim, "hnsw", backend="milvus", backend_uri=milvus_uri)
    with FaissStore(tmp_path / "c", create=config, writable=True) as store:
        docs = []
        for i in range(n):
            doc = Document(f"d{i}", f"/x/{i}.txt", f"t{i}", "", "h", metadata={"n": i})
            docs.append((doc, doc.source, "fp", [Chunk(doc.doc_id, 0, 0, 1, "x", 1)]))
        store.write_batch(BatchWrite(docs, vectors, []))
        query = vectors[7]
        wide = store.chunk_ids_where(parse_filters(["n>=200"]))  # type: ignore[arg-type]
        found = store.search(query, 20, wide)
        assert len(found) == 20
        assert {cid for cid, _ in found} <= set(wide.tolist())
        exact = sorted(wide.tolist(), key=lambda c: -float(vectors[c - 1] @ query))[:20]
        assert [cid for cid, _ in found][:10] == exact[:10]
        small = store.chunk_ids_where(parse_filters(["n>=100", "n<108"]))  # type: ignore[arg-type]
        assert sorted(cid for cid, _ in store.search(query, 50, small)) == small.tolist()


def test_drop_removes_the_milvus_collection(
    tmp_path: Path, milvus_settings: Settings, hash_encoder: HashEncoder
) -> None:
    _pipe(milvus_settings, hash_encoder).run([_corpus(tmp_path / "docs")], "c")
    milvus = _milvus_of(milvus_settings, "c")
    assert milvus.exists()
    drop_collection(milvus_settings.collections_dir, "c")
    assert not milvus.exists()
    # Made again under the same name: a new Milvus collection, never the old one's rows.
    _pipe(milvus_settings, hash_encoder).run([_corpus(tmp_path / "docs")], "c")
    assert _milvus_of(milvus_settings, "c").name != milvus.name


def test_a_server_that_is_down_gives_a_precise_error_quickly(
    tmp_path: Path, milvus_settings: Settings, hash_encoder: HashEncoder
) -> None:
    from tests.conftest import free_port

    down = milvus_settings.with_overrides(vector_uri=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(VectorDatabaseError, match="cannot reach the vector database at http"):
        _pipe(down, hash_encoder).run([_corpus(tmp_path / "docs")], "c")
    assert time.monotonic() - started < 30


def test_the_api_says_503_without_the_server_address() -> None:
    from verirag.pipeline.api.errors import classify

    problem = classify(
        VectorDatabaseError("cannot reach the vector database at http://10.0.0.7:19530")
    )
    assert (problem.status, problem.kind) == (503, "vector-database-unavailable")
    assert problem.headers == {"Retry-After": "5"}
    assert "10.0.0.7" not in problem.detail


def test_idle_pings_are_off_only_on_loopback() -> None:
    """Milvus Lite's gRPC server sends `too_many_pings` GOAWAY to pymilvus's 10 s idle pings
    after about 5 idle minutes (seen here); a cluster keeps pymilvus's own keep-alive."""
    off = {"grpc.keepalive_permit_without_calls": False}
    for uri in ("http://127.0.0.1:19530", "http://localhost:1", "127.0.0.1:5", "http://[::1]:5"):
        assert grpc_options(uri) == off, uri
    for uri in ("http://milvus:19530", "https://in01.api.zillizcloud.com", "10.0.0.7:19530"):
        assert grpc_options(uri) == {}, uri
