"""Incremental bookkeeping and store consistency, with a deterministic hashing encoder."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import faiss
import pytest

from tests.conftest import HashEncoder
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import QueryError, RagPipeline
from verirag.retrievers.store import CollectionBusyError, CollectionError, FaissStore
from verirag.retrievers.vector_backend import FaissBackend, MilvusBackend


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cats.md").write_text("# Cats\nCats purr and sleep all day.\n\n## Food\nFish.\n")
    (root / "dogs.txt").write_text("Dogs bark at the mailman every morning.\n")
    (root / "birds.html").write_text(
        "<html><title>Birds</title><body><h1>Birds</h1><p>Parrots talk.</p></body></html>"
    )
    (root / "facts.jsonl").write_text(
        json.dumps({"id": "f1", "text": "Volcanoes erupt lava.", "title": "Volcano"})
        + "\n"
        + json.dumps({"id": "f2", "text": "Glaciers carve valleys.", "title": "Glacier"})
        + "\n"
    )
    return root


@pytest.fixture
def hash_settings(backend_settings: Settings) -> Settings:
    """Every test here runs on both vector backends: FAISS files and a Milvus server."""
    return backend_settings


def _consistent(store: FaissStore) -> None:
    n_chunks = store.count("chunks")
    assert store.vector_count() == n_chunks
    ids = [r[0] for r in store.db.execute("SELECT chunk_id FROM chunks")]
    assert len(ids) == len(set(ids))
    if isinstance(store.vectors, MilvusBackend):  # Milvus holds exactly SQLite's chunks
        assert sorted(store.vectors.milvus.ids().tolist()) == sorted(ids)
    else:
        index = store.index()
        if hasattr(index, "id_map"):  # the index serves exactly SQLite's chunks
            served = set(faiss.vector_to_array(index.id_map).tolist())
            assert isinstance(store.vectors, FaissBackend)
            assert served - set(store.vectors.files.dead.tolist()) == set(ids)
    dup = store.db.execute(
        "SELECT doc_id, ordinal, COUNT(*) FROM chunks GROUP BY doc_id, ordinal HAVING COUNT(*)>1"
    ).fetchall()
    assert dup == []
    orphans = store.db.execute(
        "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)"
    ).fetchone()[0]
    assert orphans == 0


def _pipe(settings: Settings, encoder: HashEncoder) -> IndexingPipeline:
    return IndexingPipeline(settings, encoder=encoder)  # type: ignore[arg-type]


def test_index_then_rerun_embeds_nothing(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    first = pipe.run([corpus], "c")
    assert (first.added, first.updated, first.unchanged, first.failed) == (5, 0, 0, 0)
    assert first.chunks_added >= 5
    embedded = hash_encoder.encoded
    second = pipe.run([corpus], "c")
    assert (second.added, second.updated, second.unchanged) == (0, 0, 5)
    assert hash_encoder.encoded == embedded
    with FaissStore(hash_settings.collections_dir / "c") as store:
        _consistent(store)
        assert store.count("documents") == 5


def test_changed_document_replaces_its_chunks(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    (corpus / "dogs.txt").write_text("Dogs now chase squirrels in the park.\n")
    report = pipe.run([corpus], "c")
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)
    assert report.chunks_removed == 1
    rag = RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    texts = [h.text for h in rag.search("dogs squirrels park", "c", 10)]
    assert any("squirrels" in t for t in texts)
    assert not any("mailman" in t for t in texts)
    with FaissStore(hash_settings.collections_dir / "c") as store:
        _consistent(store)


def test_touched_but_identical_file_is_unchanged(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    path = corpus / "dogs.txt"
    path.write_text(path.read_text())  # new mtime, same content
    report = pipe.run([corpus], "c")
    assert (report.updated, report.unchanged) == (0, 5)


def test_jsonl_record_removed_from_file_is_dropped(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    (corpus / "facts.jsonl").write_text(
        json.dumps({"id": "f1", "text": "Volcanoes erupt lava.", "title": "Volcano"}) + "\n"
    )
    report = pipe.run([corpus], "c")
    assert report.pruned == 1
    with FaissStore(hash_settings.collections_dir / "c") as store:
        assert store.doc_state("f2") is None
        _consistent(store)


def test_prune_removes_vanished_sources_only_when_asked(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    (corpus / "cats.md").unlink()
    assert pipe.run([corpus], "c").pruned == 0
    report = pipe.run([corpus], "c", prune=True)
    assert report.pruned == 1
    with FaissStore(hash_settings.collections_dir / "c") as store:
        assert not any("cats" in d.source for d in store.documents())
        _consistent(store)


def test_bad_new_version_keeps_the_old_good_one(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    (corpus / "dogs.txt").write_bytes(b"\x00\x01binary now")
    (corpus / "new.txt").write_bytes(b"")
    report = pipe.run([corpus], "c")
    assert report.failed == 2
    assert {Path(f.source).name for f in report.failures} == {"dogs.txt", "new.txt"}
    rag = RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    assert "mailman" in rag.search("dogs bark mailman", "c", 1)[0].text


def test_delete_by_id_and_by_path_and_unknown(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    deleted = pipe.delete("c", ["f1", str(corpus / "dogs.txt")])
    assert {d for d, _ in deleted} >= {"f1"}
    assert len(deleted) == 2
    with pytest.raises(KeyError, match="nope"):
        pipe.delete("c", ["nope"])
    with FaissStore(hash_settings.collections_dir / "c") as store:
        assert store.count("documents") == 3
        _consistent(store)
    # Re-indexing a source that is still there brings the deleted documents back.
    report = pipe.run([corpus], "c")
    assert report.added == 2


@pytest.mark.parametrize("index_type", ["hnsw", "ivfpq"])
def test_other_index_types_stay_consistent(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder, index_type: str
) -> None:
    corpus = _corpus(tmp_path / "docs")
    settings = hash_settings.with_overrides(index_type=index_type)
    pipe = _pipe(settings, hash_encoder)
    pipe.run([corpus], "c")
    (corpus / "dogs.txt").write_text("Dogs dig holes in gardens.\n")
    pipe.run([corpus], "c")
    rag = RagPipeline(settings, encoder=hash_encoder)  # type: ignore[arg-type]
    assert "holes" in rag.search("dogs dig holes gardens", "c", 1)[0].text
    with FaissStore(settings.collections_dir / "c") as store:
        assert store.config.index_type == index_type
        _consistent(store)


def test_stale_or_missing_faiss_file_is_rebuilt_from_sqlite(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    if hash_settings.vector_backend == "milvus":
        pytest.skip("FAISS files only: test_a_writer_killed_before_milvus_caught_up covers Milvus")
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    coll = hash_settings.collections_dir / "c"
    [faiss_file] = list(coll.glob("faiss-g*.index"))
    # Simulate a kill after a commit but before the FAISS write: SQLite moves on.
    db = sqlite3.connect(coll / "meta.sqlite")
    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
    db.commit()
    db.close()
    rag = RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    assert "mailman" in rag.search("dogs bark mailman", "c", 1)[0].text
    faiss_file.unlink()
    with FaissStore(coll) as store:
        _consistent(store)


def test_one_writer_at_a_time(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    pipe = _pipe(hash_settings, hash_encoder)
    pipe.run([corpus], "c")
    holder = FaissStore(hash_settings.collections_dir / "c", writable=True)
    try:
        with pytest.raises(CollectionBusyError, match="another process"):
            pipe.run([corpus], "c")
    finally:
        holder.close()


def test_errors_for_unknown_collection_bad_name_empty_query(
    hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    rag = RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    with pytest.raises(CollectionError, match="unknown collection 'ghost'"):
        rag.search("x", "ghost")
    with pytest.raises(CollectionError, match="invalid collection name"):
        rag.search("x", "../etc")
    with pytest.raises(QueryError, match="empty"):
        rag.search("   ", "ghost")


def test_embedder_mismatch_is_refused(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    _pipe(hash_settings, hash_encoder).run([corpus], "c")
    other = hash_settings.with_overrides(embedder="mpnet")
    with pytest.raises(ValueError, match="built with embedder 'hash-test'"):
        _pipe(other, hash_encoder).run([corpus], "c")


def test_progress_reports_files_docs_and_chunks(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    seen: list[tuple[int, int, int]] = []
    report = _pipe(hash_settings, hash_encoder).run(
        [corpus], "c", progress=lambda p: seen.append((p.files_done, p.docs, p.chunks))
    )
    assert seen[-1] == (4, 5, report.chunks_added)
    for before, after in itertools.pairwise(seen):
        assert all(x <= y for x, y in zip(before, after, strict=True))


def test_interrupted_creation_is_recoverable(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    # A kill between creating meta.sqlite and committing its schema leaves an empty file.
    coll = hash_settings.collections_dir / "c"
    coll.mkdir(parents=True)
    sqlite3.connect(coll / "meta.sqlite").close()
    with pytest.raises(CollectionError, match="not initialised"):
        RagPipeline(hash_settings, encoder=hash_encoder).search("x", "c")  # type: ignore[arg-type]
    report = _pipe(hash_settings, hash_encoder).run([_corpus(tmp_path / "docs")], "c")
    assert report.added == 5


def test_index_type_changes_only_when_asked(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    corpus = _corpus(tmp_path / "docs")
    _pipe(hash_settings.with_overrides(index_type="hnsw"), hash_encoder).run([corpus], "c")
    flat = _pipe(hash_settings, hash_encoder)  # default settings say "flat"
    flat.run([corpus], "c")
    with FaissStore(hash_settings.collections_dir / "c") as store:
        assert store.config.index_type == "hnsw"
    embedded = hash_encoder.encoded
    flat.run([corpus], "c", change_index=True)
    assert hash_encoder.encoded == embedded  # vectors are reused, nothing re-embedded
    with FaissStore(hash_settings.collections_dir / "c") as store:
        assert store.config.index_type == "flat"
        _consistent(store)


def test_drop_removes_the_collection_its_uploads_and_its_review_items(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    """`verirag drop` and the API's DELETE share `IndexingPipeline.drop`: deleted means
    deleted, and other collections keep everything."""
    from typer.testing import CliRunner

    from tests.unit.test_review import _answer
    from verirag.pipeline.cli import app
    from verirag.pipeline.review import ReviewQueue

    indexer = IndexingPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]
    corpus = _corpus(tmp_path / "docs")
    indexer.run([corpus], "gone")
    indexer.run([corpus], "kept")
    uploads = hash_settings.uploads_dir / "gone"
    uploads.mkdir(parents=True)
    (uploads / "note.txt").write_text("uploaded")
    queue = ReviewQueue(hash_settings.data_dir / "review.sqlite")
    for collection in ("gone", "gone", "kept"):
        queue.add(_answer(collection))
    queue.close()
    runner = CliRunner()
    args = ["drop", "gone", "--yes", "--data-dir", str(hash_settings.data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "dropped 'gone' and 2 review item(s)" in result.output
    assert indexer.collections() == ["kept"] and not uploads.exists()
    queue = ReviewQueue(hash_settings.data_dir / "review.sqlite")
    assert [i.collection for i in queue.list(status=None)] == ["kept"]
    queue.close()
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "unknown collection 'gone'" in again.output
    assert indexer.create("gone") and not indexer.create("gone")
    assert indexer.collections() == ["gone", "kept"]
