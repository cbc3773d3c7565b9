"""Segmented BM25: the same ranking as bm25s over the live chunks, a small add tokenizes only
what is new, a delete tokenizes nothing, merges keep the ranking, and a writer that died
half-way leaves nothing a reader trusts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HashEncoder
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.retrievers import bm25 as bm25_module
from verirag.retrievers.bm25 import K1, B, Bm25Index, Segment, bm25_for, merge
from verirag.retrievers.store import FaissStore

SQUAD = Path(__file__).parents[1] / "fixtures/public_sample/squad_v1.1_dev/dev-v1.1.json"


def _squad() -> tuple[list[str], list[str]]:
    data = json.loads(SQUAD.read_text())["data"]
    passages = [p["context"] for a in data for p in a["paragraphs"]]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    return passages, questions[::25]


def _reference(texts: list[str], ids: np.ndarray, query: str, k: int) -> list[tuple[int, float]]:
    import bm25s

    retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
    retriever.index(bm25_module.tokenize(texts), show_progress=False)
    terms = [t for t in bm25_module.tokenize([query])[0] if t in retriever.vocab_dict]
    if not terms:
        return []
    docs, scores = retriever.retrieve([terms], k=k, show_progress=False, n_threads=1)
    return [(int(ids[d]), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def _same_ranking(got: list[tuple[int, float]], deeper: list[tuple[int, float]]) -> int:
    """`got` is the top-k of a ranking that `deeper` (the reference, k + 5 deep) extends."""
    want = deeper[: len(got)]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-4)
    # Ids agree except where scores tie, also with a chunk just below the cut (either order
    # is a right answer).
    distinct = [
        i
        for i, (_, s) in enumerate(want)
        if all(abs(s - t) > 1e-5 * s for j, (_, t) in enumerate(deeper) if j != i)
    ]
    assert [got[i][0] for i in distinct] == [want[i][0] for i in distinct]
    return len(distinct)


def _equal(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)


def test_segments_with_deletes_rank_as_bm25s_over_the_live_chunks() -> None:
    passages, questions = _squad()
    ids = np.arange(100, 100 + len(passages), dtype=np.int64)
    thirds = np.array_split(np.arange(len(passages)), 3)
    segments = [Segment.from_texts(ids[t], [passages[i] for i in t]) for t in thirds]
    rng = np.random.default_rng(5)
    dead = set(rng.choice(len(passages), size=90, replace=False).tolist())
    alive = [np.asarray([i not in dead for i in t]) for t in thirds]
    index = Bm25Index(segments, alive)
    live = [i for i in range(len(passages)) if i not in dead]
    assert len(index) == len(live)
    checked = 0
    for q in questions:
        want = _reference([passages[i] for i in live], ids[live], q, 15)
        checked += _same_ranking(index.search(q, 10), want)
    assert checked >= 8 * len(questions)  # most ranks are compared by id, not excused as ties
    # One merged segment holds only the live chunks, and ranks the same.
    merged = merge(segments, alive)
    assert merged.ids.tolist() == ids[live].tolist()
    one = Bm25Index([merged], [np.ones(len(merged.ids), dtype=bool)])
    for q in questions:
        _equal(one.search(q, 10), index.search(q, 10))


def test_a_filter_masks_before_ranking() -> None:
    passages, questions = _squad()
    ids = np.arange(len(passages), dtype=np.int64)
    index = Bm25Index([Segment.from_texts(ids, passages)], [np.ones(len(ids), dtype=bool)])
    within = ids[::50]
    hits = index.search(questions[0] + " the of in", 5, within)
    assert len(hits) == 5 and {i for i, _ in hits} <= set(within.tolist())


WORDS = ("harbour", "lamp", "keeper", "storm", "coast", "beacon", "tower", "rock", "lighthouses")


def _write(folder: Path, names: range, tag: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in names:
        # Lengths and term counts vary by document, so that scores rarely tie.
        words = " ".join(WORDS[(i * j + j * j) % len(WORDS)] for j in range(1, i % 7 + 3))
        (folder / f"d{i}.txt").write_text(f"Document {i}{tag} talks about topic{i}: {words}.")


def _run(settings: Settings, encoder: HashEncoder, folder: Path, prune: bool = False) -> None:
    IndexingPipeline(settings, encoder=encoder).run([folder], "c", prune=prune)  # type: ignore[arg-type]


def _fresh(path: Path, query: str) -> list[tuple[int, float]]:
    """What a rebuild from nothing gives: a reader with no segments on disk or in memory."""
    with FaissStore(path) as store:
        with store.snapshot():
            index = bm25_module.assemble(store, [], bm25_module.BM25)
        live = store.chunk_ids()
        assert len(index) == len(live)
        texts = store.lexical_texts(live)
    ref = _reference(texts, live, query, 15)
    _same_ranking(index.search(query, 10), ref)
    return index.search(query, 10)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    tokenized: list[int] = []
    real = bm25_module.tokenize

    def counting(texts: list[str]) -> list[list[str]]:
        if len(texts) > 1 or (texts and "talks" in texts[0]):
            tokenized.append(len(texts))  # chunk texts, not a query
        return real(texts)

    monkeypatch.setattr(bm25_module, "tokenize", counting)
    return tokenized


def test_a_small_add_tokenizes_only_new_chunks_and_a_delete_none(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder, counted: list[int]
) -> None:
    folder = tmp_path / "docs"
    _write(folder, range(40))
    _run(hash_settings, hash_encoder, folder)
    path = hash_settings.data_dir / "collections" / "c"
    first = sorted(p.name for p in (path / "bm25").glob("seg-*"))
    assert counted == [40] and len(first) == 1
    counted.clear()

    _write(folder, range(40, 43))
    _run(hash_settings, hash_encoder, folder)
    assert counted == [3]  # the three new chunks, not the 43
    segs = sorted(p.name for p in (path / "bm25").glob("seg-*"))
    assert set(first) < set(segs) and len(segs) == 2

    counted.clear()
    for i in range(5):
        (folder / f"d{i}.txt").unlink()
    _run(hash_settings, hash_encoder, folder, prune=True)
    assert counted == []  # deletes are never re-tokenized
    # ... and no word of a deleted document stays in a BM25 file (d3's own word: "topic3").
    files = [p for p in (path / "bm25").rglob("*") if p.is_file()]
    assert files and not any(b'"topic3"' in p.read_bytes() for p in files)
    assert any(b'"topic41"' in p.read_bytes() for p in files)
    with FaissStore(path) as store:
        got = bm25_for(store).search("topic3 lighthouses keeper topic41", 10)
        texts = store.lexical_texts(sorted(i for i, _ in got))
    _equal(got, _fresh(path, "topic3 lighthouses keeper topic41"))
    assert any("topic41:" in t for t in texts) and not any("topic3:" in t for t in texts)


def test_merges_bound_the_segments_and_keep_the_ranking(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    folder = tmp_path / "docs"
    _write(folder, range(10))
    _run(hash_settings, hash_encoder, folder)
    adds = 12
    for step in range(1, adds + 1):
        _write(folder, range(10 + step, 11 + step))
        _run(hash_settings, hash_encoder, folder)
    # Replacing most of the first batch leaves its segment mostly dead: it is compacted.
    _write(folder, range(8), tag=" (revised)")
    _run(hash_settings, hash_encoder, folder)
    path = hash_settings.data_dir / "collections" / "c"
    names = json.loads((path / "bm25" / "manifest.json").read_text())["segments"]
    # Without merging there would be 1 + 12 + 1 segments; tiered merges leave a few.
    assert len(names) < bm25_module.MERGE_FACTOR * 2
    assert sorted(p.name for p in (path / "bm25").iterdir()) == sorted([*names, "manifest.json"])
    with FaissStore(path) as store:
        index = bm25_for(store)
        assert all(a.all() for a in index.alive)  # the writer left no deleted chunk behind
        got = index.search("revised topic2 storm topic15", 10)
    _equal(got, _fresh(path, "revised topic2 storm topic15"))


def test_a_segment_saved_by_a_writer_that_died_is_never_read(
    tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder
) -> None:
    folder = tmp_path / "docs"
    _write(folder, range(6))
    _run(hash_settings, hash_encoder, folder)
    root = hash_settings.data_dir / "collections" / "c" / "bm25"
    # A writer died after saving a segment, before naming it in the manifest; another died
    # half-way through writing one.
    stray = Segment.from_texts(np.asarray([1], dtype=np.int64), ["wrong words entirely"])
    stray.save(root / "seg-99-0-deadbeef")
    (root / ".seg.half").mkdir()
    with FaissStore(root.parent) as store:
        assert bm25_for(store).search("wrong entirely", 3) == []
    _write(folder, range(6, 7))
    _run(hash_settings, hash_encoder, folder)
    assert not (root / "seg-99-0-deadbeef").exists() and not (root / ".seg.half").exists()
    # A damaged segment named by the manifest: the reader indexes its chunks again.
    names = json.loads((root / "manifest.json").read_text())["segments"]
    (root / names[0] / "terms.json").unlink()
    with FaissStore(root.parent) as store:
        assert len(bm25_for(store)) == 7
        top = bm25_for(store).search("topic2", 1)[0][0]
        assert "topic2:" in store.lexical_texts([top])[0]
