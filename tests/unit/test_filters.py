"""Metadata filters: parsed once, applied before top-k on every index type and on BM25, and a
selective filter still returns k results when k exist."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HashEncoder
from verirag.core.records import Chunk, Document
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.filters import FilterError, parse_filters
from verirag.retrievers.store import BatchWrite, CollectionConfig, FaissStore
from verirag.retrievers.vector_index import EXACT_WITHIN


def test_expressions_parse_and_bad_ones_say_why() -> None:
    where = parse_filters(["source=docs/*.md", "title=Leave policy", "year>=2020", "team!=hr"])
    assert where is not None
    assert [(c.key, c.op, c.value) for c in where.conditions] == [
        ("source", "=", "docs/*.md"),
        ("title", "=", "Leave policy"),
        ("year", ">=", 2020.0),
        ("team", "!=", "hr"),
    ]
    assert parse_filters([]) is None and parse_filters(None) is None
    for bad, why in [
        ("year", "KEY OP VALUE"),
        ("=2020", "KEY OP VALUE"),
        ("year>=", "KEY OP VALUE"),
        ("source>a", "takes = or !="),
        ("title<=b", "takes = or !="),
    ]:
        with pytest.raises(FilterError, match=why):
            parse_filters([bad])
    with pytest.raises(FilterError, match="at most 20"):
        parse_filters([f"k{i}=1" for i in range(21)])


def test_the_sql_never_carries_a_value() -> None:
    where = parse_filters(["team=x' OR 1=1 --", "source=*'; DROP TABLE chunks; --"])
    assert where is not None
    clause, params = where.sql()
    assert "DROP" not in clause and "OR 1=1" not in clause
    assert "x' OR 1=1 --" in params


def _jsonl(path: Path) -> Path:
    records = []
    for i in range(40):
        records.append(
            {
                "id": f"r{i}",
                "title": "Leave policy" if i == 7 else f"Report {i}",
                "text": f"Quarterly report number {i} about river otters and their dens.",
                "metadata": {"year": 2000 + i, "team": "hr" if i % 10 == 0 else "ops"},
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


@pytest.fixture
def rag(tmp_path: Path, hash_settings: Settings, hash_encoder: HashEncoder) -> RagPipeline:
    _jsonl(tmp_path / "docs" / "reports" / "all.jsonl")
    (tmp_path / "docs" / "notes.md").write_text("# Otters\n\nRiver otters build dens in banks.\n")
    IndexingPipeline(hash_settings, encoder=hash_encoder).run([tmp_path / "docs"], "c")  # type: ignore[arg-type]
    return RagPipeline(hash_settings, encoder=hash_encoder)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_draws_only_on_matching_documents(rag: RagPipeline, mode: str) -> None:
    query = "river otters dens report"
    hits = rag.search(query, "c", 5, mode, where=parse_filters(["year>=2030", "year<2035"]))  # type: ignore[arg-type]
    assert sorted(h.title for h in hits) == [f"Report {i}" for i in range(30, 35)]
    hits = rag.search(query, "c", 10, mode, where=parse_filters(["team=hr"]))  # type: ignore[arg-type]
    assert sorted(h.title for h in hits) == ["Report 0", "Report 10", "Report 20", "Report 30"]
    hits = rag.search(query, "c", 3, mode, where=parse_filters(["source=*.md"]))  # type: ignore[arg-type]
    assert [h.title for h in hits] == ["Otters"]
    hits = rag.search(query, "c", 3, mode, where=parse_filters(["title=leave POLICY"]))  # type: ignore[arg-type]
    assert [h.title for h in hits] == ["Leave policy"]
    assert rag.search(query, "c", 3, mode, where=parse_filters(["team=nobody"])) == []  # type: ignore[arg-type]


def test_ask_abstains_when_no_document_matches(rag: RagPipeline) -> None:
    prepared = rag.prepare("Where do otters live?", "c", where=parse_filters(["year>3000"]))
    assert prepared.hits == [] and prepared.prompt == ""


def _vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivfpq"])
def test_a_selective_filter_on_a_large_index_still_returns_k(
    tmp_path: Path, index_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ANN path (an ID selector inside FAISS) and its exact fallback: of 3,000 chunks,
    a filter keeps every 100th; an HNSW walk or an IVF probe may find fewer than k of them,
    and must not return fewer when k exist."""
    monkeypatch.setattr("verirag.retrievers.vector_index.EXACT_WITHIN", 10)
    assert EXACT_WITHIN > 10  # the default searches small filters exactly
    dim, n = 32, 3000
    vectors = _vectors(n, dim, 1)
    config = CollectionConfig("hash", dim, index_type, hnsw_ef_search=16, ivf_nlist=16, pq_m=8)
    with FaissStore(tmp_path / "c", create=config, writable=True) as store:
        docs = []
        for i in range(n):
            doc = Document(f"d{i}", f"/x/{i}.txt", f"t{i}", "", "h", metadata={"n": i})
            docs.append((doc, doc.source, "fp", [Chunk(doc.doc_id, 0, 0, 1, "x", 1)]))
        store.write_batch(BatchWrite(docs, vectors, []))
        where = parse_filters(["bucket=0"])
        assert where is not None
        # Every 100th document is in bucket 0: 30 chunks, more than EXACT_WITHIN here.
        store.db.execute(
            "UPDATE documents SET metadata = json_set(metadata, '$.bucket', "
            "CASE WHEN CAST(substr(doc_id, 2) AS INTEGER) % 100 = 0 THEN 0 ELSE 1 END)"
        )
        within = store.chunk_ids_where(where)
        assert len(within) == 30
        query = vectors[1234]  # a chunk outside the filter
        found = store.search(query, 20, within)
        assert len(found) == 20
        assert {cid for cid, _ in found} <= set(within.tolist())
        exact = sorted(within.tolist(), key=lambda c: -float(vectors[c - 1] @ query))[:20]
        if index_type == "flat":
            assert [cid for cid, _ in found] == exact
        small = store.chunk_ids_where(parse_filters(["n>=100", "n<115"]))  # type: ignore[arg-type]
        assert len(store.search(query, 50, small)) == 15


@pytest.mark.parametrize("command", ["search", "ask"])
def test_the_cli_refuses_a_bad_filter_before_loading_anything(
    command: str, hash_settings: Settings
) -> None:
    from typer.testing import CliRunner

    from verirag.pipeline.cli import app

    args = [command, "otters", "--filter", "year=>2020", "--data-dir", str(hash_settings.data_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "cannot read filter" in result.output and "KEY OP VALUE" in result.output
