"""Readers beside a writer: every read sees one committed state, readers never write or
delete index files, and a reader catches its index up instead of rebuilding it."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from tests.conftest import HashEncoder
from verirag.core.records import Chunk, Document
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.retrievers import vector_index
from verirag.retrievers.bm25 import bm25_for
from verirag.retrievers.collection_dir import list_collections
from verirag.retrievers.store import (
    BatchWrite,
    CollectionBusyError,
    CollectionConfig,
    FaissStore,
    drop_collection,
)


def _write(folder: Path, n: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": f"d{i}", "text": f"Document {i} talks about topic{i} and more."})
        for i in range(start, start + n)
    ]
    path = folder / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _index(settings: Settings, encoder: HashEncoder, folder: Path) -> None:
    IndexingPipeline(settings, encoder=encoder).run([folder], "c")  # type: ignore[arg-type]


def _reader(settings: Settings) -> FaissStore:
    return FaissStore(settings.data_dir / "collections" / "c")


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the size of every FAISS index built from scratch."""
    builds: list[int] = []
    real_build = vector_index.VectorIndex.build

    def counting(self: vector_index.VectorIndex, ids: np.ndarray, vecs: np.ndarray) -> object:
        builds.append(len(ids))
        return real_build(self, ids, vecs)

    monkeypatch.setattr(vector_index.VectorIndex, "build", counting)
    return builds


@pytest.fixture
def indexed(tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder) -> Path:
    folder = tmp_path / "docs"
    _write(folder, 6)
    _index(hash_settings, hash_encoder, folder)
    return folder


def test_a_reader_cached_across_a_drop_reads_the_new_collection(
    indexed: Path, tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    """`verirag drop` while a server holds a reader: the pipeline reopens instead of serving
    (or writing beside) the removed collection."""
    from verirag.pipeline.rag import RagPipeline

    rag = RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    old = rag.store("c")
    assert old.is_current() and old.count("documents") == 6
    IndexingPipeline(hash_settings, encoder=hash_encoder).drop("c")  # type: ignore[arg-type]
    assert not old.is_current()
    with pytest.raises(Exception, match="unknown collection 'c'"):
        rag.store("c")
    _index(hash_settings, hash_encoder, _write(tmp_path / "new", 2).parent)
    assert rag.store("c").count("documents") == 2
    rag.close()


def test_a_snapshot_does_not_see_a_commit_made_during_it(
    indexed: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    reader = _reader(hash_settings)
    with reader.snapshot():
        before = (reader.generation, reader.count("chunks"))
        _write(indexed, 3, start=6)  # the writer replaces the 6 documents by 3, and commits
        _index(hash_settings, hash_encoder, indexed)
        # Generation, count and rows all still from the moment the snapshot began.
        assert (reader.generation, reader.count("chunks")) == before
        ids, vecs = reader.stored_vectors()
        assert len(ids) == before[1] == len(vecs)
    assert reader.generation > before[0] and reader.count("chunks") == 3


def test_a_reader_catches_its_index_up_in_place_without_rebuilding(
    indexed: Path,
    hash_settings: Settings,
    hash_encoder: HashEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = _reader(hash_settings)
    first = reader.index()
    assert first.ntotal == 6
    builds = _count_builds(monkeypatch)
    # The writer replaces the file's documents: d0..d5 become d3..d8 (3 gone, 3 new).
    _write(indexed, 6, start=3)
    _index(hash_settings, hash_encoder, indexed)
    for name in list((reader.path).glob("faiss-g*")):
        name.unlink()  # nothing on disk to load: only a catch-up or a rebuild can serve
    caught = reader.index()
    assert caught is first and builds == []  # the same index, moved on in place
    stored = {int(r[0]) for r in reader.db.execute("SELECT chunk_id FROM chunks")}
    import faiss

    assert set(faiss.vector_to_array(caught.id_map).tolist()) == stored
    hits = reader.hits(reader.search(hash_encoder.encode_query("topic8")[0], 3))
    assert hits and hits[0].doc_id.endswith("d8")


def test_readers_never_write_or_delete_bm25_files(
    indexed: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    reader = _reader(hash_settings)

    def on_disk() -> list[str]:
        return sorted(str(p.relative_to(reader.path)) for p in (reader.path / "bm25").rglob("*"))

    saved = on_disk()
    assert "bm25/manifest.json" in saved  # the writer saved its segment at the end of the run
    bm25_for(reader).search("topic1", 3)
    _write(indexed, 2, start=6)
    writer_store = FaissStore(reader.path, writable=True)
    try:
        # A commit with no BM25 saved for it (the writer is still running).
        writer_store.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
    finally:
        writer_store.close()
    found = bm25_for(reader).search("topic1", 3)
    assert found  # served, from memory
    assert on_disk() == saved


def test_a_writer_save_removes_temporary_files_of_a_save_that_died(
    indexed: Path, hash_settings: Settings
) -> None:
    path = hash_settings.data_dir / "collections" / "c"
    (path / "faiss-g1.tmp").write_bytes(b"half a file")
    with FaissStore(path, writable=True) as store:
        store.save()
    assert not list(path.glob("faiss-g*.tmp"))
    assert len(list(path.glob("faiss-g*.index"))) == 1


def test_dropping_holds_the_lock_until_the_collection_is_gone(
    indexed: Path, hash_settings: Settings
) -> None:
    root = hash_settings.data_dir / "collections"
    with FaissStore(root / "c", writable=True), pytest.raises(CollectionBusyError):
        drop_collection(root, "c")  # a writer is active: nothing is removed
    assert list_collections(root) == ["c"]
    drop_collection(root, "c")
    assert list_collections(root) == [] and not any(root.iterdir())


def _vector_batch(rng: np.random.Generator, first: int, n: int, dim: int) -> BatchWrite:
    """`n` one-chunk documents with random unit vectors: a store written without a model."""
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = []
    for i in range(first, first + n):
        text = f"synthetic chunk {i}"
        doc = Document(f"d{i}", f"/x/{i}.txt", f"t{i}", text, f"h{i}")
        docs.append((doc, f"/x/{i}.txt", "fp", [Chunk(doc.doc_id, 0, 0, len(text), text, 3)]))
    return BatchWrite(docs, vectors, [])


def test_a_trained_ivfpq_index_takes_adds_and_deletes_without_retraining(tmp_path: Path) -> None:
    """At a million chunks a retrain per batch would take minutes: a trained IVF index
    follows every committed batch in place (bench/scale.py measures it at scale)."""
    rng = np.random.default_rng(5)
    config = CollectionConfig("hash", 32, "ivfpq", ivf_nlist=8, pq_m=8)
    with FaissStore(tmp_path / "c", create=config, writable=True) as store:
        store.write_batch(_vector_batch(rng, 0, 1100, 32))
        trained = store.index()
        assert isinstance(trained, faiss.IndexIVFPQ) and trained.ntotal == 1100
        batch = _vector_batch(rng, 1100, 20, 32)
        added = store.write_batch(batch).added_chunk_ids
        assert store.index() is trained and trained.ntotal == 1120
        top = store.search(batch.vectors[3], 5)
        assert added[3] in [cid for cid, _ in top]
        assert store.delete_documents(["d1103", "d5"]) == 2
        assert store.index() is trained and trained.ntotal == 1118
        assert added[3] not in [cid for cid, _ in store.search(batch.vectors[3], 5)]


def test_a_small_ivfpq_collection_is_searched_exactly_until_it_can_be_trained(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(6)
    config = CollectionConfig("hash", 32, "ivfpq", ivf_nlist=8, pq_m=8)
    with FaissStore(tmp_path / "c", create=config, writable=True) as store:
        store.write_batch(_vector_batch(rng, 0, 500, 32))
        exact = store.index()
        assert not isinstance(exact, faiss.IndexIVF)
        store.write_batch(_vector_batch(rng, 500, 100, 32))
        assert store.index() is exact  # still too small: followed in place
        store.write_batch(_vector_batch(rng, 600, 500, 32))
        assert isinstance(store.index(), faiss.IndexIVFPQ)  # trained once large enough
        assert store.index().ntotal == 1100


def test_ivfpq_results_are_reranked_over_the_stored_vectors(tmp_path: Path) -> None:
    """PQ codes rank approximately; the store re-ranks RERANK_FACTOR x k of them with the
    float32 vectors SQLite keeps, so scores are exact and recall rises."""
    rng = np.random.default_rng(8)
    config = CollectionConfig("hash", 32, "ivfpq", ivf_nlist=8, pq_m=4, ivf_nprobe=8)
    with FaissStore(tmp_path / "c", create=config, writable=True) as store:
        batch = _vector_batch(rng, 0, 2000, 32)
        store.write_batch(batch)
        index = store.index()
        assert isinstance(index, faiss.IndexIVFPQ)
        queries = batch.vectors[:50] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
        exact_top = np.argsort(-(queries @ batch.vectors.T), axis=1)[:, :10] + 1  # ids from 1
        plain = reranked = 0.0
        for q, truth in zip(queries, exact_top, strict=True):
            found = store.search(q, 10)
            ids = [cid for cid, _ in found]
            reranked += len(set(ids) & set(truth.tolist())) / 10
            coarse = [cid for cid, _ in vector_index.search_index(index, q, 10)]
            plain += len(set(coarse) & set(truth.tolist())) / 10
            for cid, score in found:
                assert score == pytest.approx(float(batch.vectors[cid - 1] @ q), abs=1e-5)
        assert reranked / 50 >= 0.8 > plain / 50  # 0.84 against 0.42 here


def test_an_hnsw_delete_leaves_tombstones_instead_of_rebuilding_the_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuilding the graph on every delete took 140 s at a million chunks: removed rows stay
    in the graph, skipped by every search, saved beside the index, until they are
    TOMBSTONE_SHARE of it."""
    rng = np.random.default_rng(9)
    config = CollectionConfig("hash", 32, "hnsw")
    path = tmp_path / "c"
    with FaissStore(path, create=config, writable=True) as store:
        batch = _vector_batch(rng, 0, 200, 32)
        ids = store.write_batch(batch).added_chunk_ids
        graph = store.index()
        builds = _count_builds(monkeypatch)
        assert store.delete_documents(["d3", "d7"]) == 2
        assert store.index() is graph and graph.ntotal == 200 and builds == []
        for row in (3, 7):  # the nearest of a deleted chunk's own vector is another chunk
            found = [cid for cid, _ in store.search(batch.vectors[row], 5)]
            assert ids[row] not in found and len(found) == 5
        assert store.stats().vectors == 198
        store.save()
        assert len(list(path.glob("faiss-g*.dead.npy"))) == 1
    # A reader loads the graph and its tombstones from disk: nothing rebuilt, none served.
    with FaissStore(path) as reader:
        found = [cid for cid, _ in reader.search(batch.vectors[3], 5)]
        assert ids[3] not in found and builds == []
        assert reader.search(batch.vectors[11], 1)[0][0] == ids[11]
    # Past the share, the graph is rebuilt without them.
    with FaissStore(path, writable=True) as store:
        share = int(vector_index.TOMBSTONE_SHARE * 200)
        store.delete_documents([f"d{i}" for i in range(20, 20 + share)])
        store.search(batch.vectors[0], 1)
        assert builds == [200 - 2 - share] and len(store.vectors.files.dead) == 0  # type: ignore[attr-defined]
        store.save()
        assert not list(path.glob("faiss-g*.dead.npy"))
