"""The learned sparse (SPLADE) side: weights from the max logit, a segmented index that adds,
deletes and survives like BM25's, three-way fusion wired as configured, and collections made
without it (or with another model) handled precisely. A hashed stand-in replaces the model
here; tests/integration/test_learned_sparse.py runs the bundled one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import HashEncoder, HashSplade, _hash_settings
from verirag.core.settings import Settings
from verirag.pipeline.api.errors import classify
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.collection_dir import CollectionError
from verirag.retrievers.fusion import fuse, fuse_sides
from verirag.retrievers.hybrid import FusionConfig
from verirag.retrievers.learned_sparse import max_pool_weights, sparse_index_for
from verirag.retrievers.store import FaissStore


def test_weights_are_log1p_of_each_terms_largest_positive_logit() -> None:
    v = max_pool_weights(np.array([-1.0, 0.0, 2.0, 0.5], dtype=np.float32))
    assert v.terms.tolist() == [2, 3]
    assert v.weights.tolist() == pytest.approx([math.log1p(2.0), math.log1p(0.5)])


def test_three_sides_fuse_as_a_weighted_sum_of_z_scores() -> None:
    dense = [("a", 3.0), ("b", 1.0)]  # z: a +1, b -1
    bm25 = [("b", 9.0), ("c", 1.0)]  # z: b +1, c -1
    splade = [("c", 5.0), ("a", 3.0), ("d", 1.0)]  # mean 3, sd 1.633: c +1.22, a 0, d -1.22
    fused = dict(fuse_sides("zscore", [dense, bm25, splade], [1 / 3, 1 / 3, 1 / 3]))
    z = 2 / math.sqrt(8 / 3)
    # An item missing from a list gets that list's lowest z-score.
    assert fused["a"] == pytest.approx((1 + -1 + 0) / 3)
    assert fused["b"] == pytest.approx((-1 + 1 - z) / 3)
    assert fused["c"] == pytest.approx((-1 - 1 + z) / 3)
    assert fused["d"] == pytest.approx((-1 - 1 - z) / 3)
    # Two sides through `fuse` are the same as `fuse_sides` with (alpha, 1 - alpha).
    assert fuse("zscore", dense, bm25, alpha=0.3) == fuse_sides("zscore", [dense, bm25], [0.3, 0.7])
    with pytest.raises(ValueError, match="2 weights for 3 sides"):
        fuse_sides("zscore", [dense, bm25, splade], [0.5, 0.5])


def test_fusion_weights_split_what_splade_leaves_by_alpha() -> None:
    f = FusionConfig()  # the defaults: equal thirds, and the old halves without SPLADE
    assert f.weights(3) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert f.weights(2) == pytest.approx([0.5, 0.5])
    g = FusionConfig(alpha=0.25, splade_share=0.2)
    assert g.weights(3) == pytest.approx([0.2, 0.6, 0.2])
    h = FusionConfig(method="rrf", dense_weight=1.0, bm25_weight=2.0, splade_weight=3.0)
    assert h.weights(3) == [1.0, 2.0, 3.0] and h.weights(2) == [1.0, 2.0]


WORDS = ["harbour", "lantern", "granite", "orchard", "compass", "meadow", "furnace", "violin"]


def _write(folder: Path, names: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in names:
        words = " ".join(WORDS[(i * j + j) % len(WORDS)] for j in range(1, i % 5 + 3))
        (folder / f"d{i}.txt").write_text(f"Note {i} is about subject{i}: {words}.")


@pytest.fixture
def splade_settings(tmp_path: Path) -> Settings:
    return _hash_settings(tmp_path, splade_model="hash-splade")


def _index(settings: Settings, folder: Path, splade: HashSplade, **kw: Any) -> None:
    pipe = IndexingPipeline(settings, encoder=HashEncoder(), splade=splade)  # type: ignore[arg-type]
    pipe.run([folder], "c", **kw)


def _rag(settings: Settings, splade: HashSplade | None = None) -> RagPipeline:
    return RagPipeline(settings, encoder=HashEncoder(), splade=splade)  # type: ignore[arg-type]


def test_the_writer_encodes_new_chunks_once_and_deletes_leave_nothing(
    tmp_path: Path, splade_settings: Settings
) -> None:
    folder = tmp_path / "docs"
    splade = HashSplade()
    _write(folder, range(12))
    _index(splade_settings, folder, splade)
    root = splade_settings.collections_dir / "c"
    assert splade.encoded == 12  # one chunk per note, encoded by the writer at index time
    names = json.loads((root / "splade" / "manifest.json").read_text())["segments"]
    assert len(names) == 1

    _write(folder, range(12, 14))
    _index(splade_settings, folder, splade)
    assert splade.encoded == 14  # only the two new chunks

    rag = _rag(splade_settings, splade)
    hits = rag.search("subject13", "c", 3, mode="splade")
    assert hits and hits[0].source.endswith("d13.txt")
    before = splade.encoded
    rag.close()

    (folder / "d13.txt").unlink()
    _index(splade_settings, folder, splade, prune=True)
    assert splade.encoded == before  # a delete encodes nothing
    with FaissStore(root) as store:
        index = sparse_index_for(store, splade)  # type: ignore[arg-type]
        live = set(store.chunk_ids().tolist())
        held = {int(i) for s in index.segments for i in s.ids}
        assert held == live  # the deleted chunk is in no segment, on disk or in memory
    rag = _rag(splade_settings, splade)
    assert not any(h.source.endswith("d13.txt") for h in rag.search("subject13", "c", 5))
    rag.close()


def test_hybrid_fuses_the_three_sides_with_the_configured_weights(
    tmp_path: Path, splade_settings: Settings
) -> None:
    folder = tmp_path / "docs"
    splade = HashSplade()
    _write(folder, range(20))
    _index(splade_settings, folder, splade)
    rag = _rag(splade_settings, splade)
    retriever = rag.retriever("c")
    query = "orchard compass subject7"
    found = retriever.candidates(query, 30)
    assert found.dense and found.bm25 and found.splade
    f = retriever.fusion
    want = fuse_sides(f.method, [found.dense, found.bm25, found.splade], f.weights(3))[:5]
    got = rag.search(query, "c", 5, rerank=False)  # the fusion alone, before reranking
    assert [h.chunk_id for h in got] == [c for c, _ in want]
    assert [h.score for h in got] == pytest.approx([s for _, s in want])
    rag.close()


def test_a_collection_without_splade_fuses_two_sides_and_refuses_splade_mode(
    tmp_path: Path,
) -> None:
    settings = _hash_settings(tmp_path)  # splade_model "": a collection as made before it
    folder = tmp_path / "docs"
    _write(folder, range(6))
    _index(settings, folder, HashSplade())
    assert not (settings.collections_dir / "c" / "splade").exists()
    rag = _rag(settings)
    assert rag.retriever("c").splade is None
    assert rag.search("subject3", "c", 2)  # hybrid: dense and BM25
    with pytest.raises(CollectionError, match="no learned sparse") as refused:
        rag.search("subject3", "c", 2, mode="splade")
    assert classify(refused.value).status == 422  # what the API answers with it
    rag.close()


def test_the_splade_model_is_added_to_a_collection_without_embedding_again(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    _write(folder, range(6))
    old = _hash_settings(tmp_path)
    encoder = HashEncoder()
    IndexingPipeline(old, encoder=encoder).run([folder], "c")  # type: ignore[arg-type]
    embedded = encoder.encoded
    splade = HashSplade()
    new = old.with_overrides(splade_model="hash-splade")
    pipe = IndexingPipeline(new, encoder=encoder, splade=splade)  # type: ignore[arg-type]
    pipe.run([folder], "c", change_index=True)
    assert encoder.encoded == embedded  # the vectors are kept, FAISS is not rebuilt
    assert splade.encoded == 6
    rag = _rag(new, splade)
    assert rag.retriever("c").splade is splade  # type: ignore[comparison-overlap]
    assert rag.search("subject4", "c", 1, mode="splade")[0].source.endswith("d4.txt")
    rag.close()
    # Removing it again drops its segments.
    IndexingPipeline(old, encoder=encoder).run([folder], "c", change_index=True)  # type: ignore[arg-type]
    assert not (old.collections_dir / "c" / "splade").exists()
