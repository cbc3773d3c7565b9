"""The store's vector backends on one workload, in one run: FAISS files (the default) against
Milvus (a Milvus Lite server this script starts on 127.0.0.1, through verirag's own store),
and Qdrant's local mode (the candidate not chosen, through its client directly).

Every figure is a ratio against FAISS in the same run. Vectors are seeded random unit vectors
(latency and behaviour are compared here, not recall); ten chunks per document. Two metadata
filters, both applied before top-k: a narrow one (one document in 25, searched exactly over
the stored vectors on either backend) and a wide one (4 in 5, more than `EXACT_WITHIN`
chunks at the default size, so the backend's own filtered search runs).

    make bench-vectordb    # installs qdrant-client (pinned) beside the milvus extra, runs this
    python bench/vector_backends.py --chunks 50000 --queries 100
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from verirag.core.records import Chunk, Document
from verirag.retrievers.filters import parse_filters
from verirag.retrievers.milvus_vectors import milvus_lite_server
from verirag.retrievers.store import BatchWrite, CollectionConfig, FaissStore

DIM = 384
PER_DOC = 10
BATCH = 2_000

Vectors = npt.NDArray[np.float32]


def p50_ms(fn: Callable[[Vectors], Any], queries: Vectors) -> float:
    times = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def store_side(
    config: CollectionConfig, vectors: Vectors, queries: Vectors, folder: Path
) -> dict[str, float]:
    """verirag's store, whatever its backend: the path every search and write takes."""
    path = folder / config.backend
    n = len(vectors)

    def fill(store: FaissStore) -> None:
        for start in range(0, n, BATCH):
            docs = []
            for first in range(start, min(start + BATCH, n), PER_DOC):
                doc = Document(
                    f"d{first // PER_DOC}",
                    f"/x/{first // PER_DOC}.txt",
                    "t",
                    "",
                    "h",
                    metadata={"bucket": (first // PER_DOC) % 25},
                )
                chunks = [Chunk(doc.doc_id, i, 0, 1, "x", 1) for i in range(PER_DOC)]
                docs.append((doc, doc.source, "fp", chunks))
            store.write_batch(BatchWrite(docs, vectors[start : start + BATCH], []))
        store.save()

    with FaissStore(path, create=config, writable=True) as store:
        add_s = timed(lambda: fill(store))
        search = p50_ms(lambda q: store.search(q, 10), queries)
        narrow = store.chunk_ids_where(parse_filters(["bucket=3"]))  # type: ignore[arg-type]
        filtered = p50_ms(lambda q: store.search(q, 10, narrow), queries)
        wide = store.chunk_ids_where(parse_filters(["bucket<20"]))  # type: ignore[arg-type]
        wide_ms = p50_ms(lambda q: store.search(q, 10, wide), queries)
        delete_s = timed(lambda: store.delete_documents(["d7"]))
        delete_s += timed(lambda: store.search(queries[0], 10))
        count = store.vector_count()
        store.save()  # as `verirag index` ends: a reader then loads, never rebuilds

    def reopen() -> None:
        with FaissStore(path) as reader:
            reader.search(queries[0], 10)

    return {
        "add_s": add_s,
        "search_p50_ms": search,
        "filtered_p50_ms": filtered,
        "wide_p50_ms": wide_ms,
        "delete_doc_s": delete_s,
        "reopen_s": timed(reopen),
        "rows_after_delete": float(count),
    }


def qdrant_side(vectors: Vectors, queries: Vectors, folder: Path) -> dict[str, float]:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(folder / "qdrant"))
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
    )

    def add() -> None:
        for start in range(0, len(vectors), BATCH):
            part = range(start, min(start + BATCH, len(vectors)))
            client.upsert(
                "c",
                points=models.Batch(
                    ids=list(part),
                    vectors=vectors[start : part.stop].tolist(),
                    payloads=[
                        {"doc_id": f"d{i // PER_DOC}", "bucket": (i // PER_DOC) % 25} for i in part
                    ],
                ),
            )

    add_s = timed(add)
    search = p50_ms(lambda q: client.query_points("c", query=q.tolist(), limit=10), queries)
    only = models.Filter(
        must=[models.FieldCondition(key="bucket", match=models.MatchValue(value=3))]
    )
    filtered = p50_ms(
        lambda q: client.query_points("c", query=q.tolist(), limit=10, query_filter=only), queries
    )
    most = models.Filter(must=[models.FieldCondition(key="bucket", range=models.Range(lt=20))])
    wide_ms = p50_ms(
        lambda q: client.query_points("c", query=q.tolist(), limit=10, query_filter=most), queries
    )
    doc = models.Filter(
        must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value="d7"))]
    )
    delete_s = timed(lambda: client.delete("c", points_selector=models.FilterSelector(filter=doc)))
    client.close()
    started = time.perf_counter()
    client = QdrantClient(path=str(folder / "qdrant"))
    client.query_points("c", query=queries[0].tolist(), limit=10)
    reopen_s = time.perf_counter() - started
    count = client.count("c").count
    client.close()
    return {
        "add_s": add_s,
        "search_p50_ms": search,
        "filtered_p50_ms": filtered,
        "wide_p50_ms": wide_ms,
        "delete_doc_s": delete_s,
        "reopen_s": reopen_s,
        "rows_after_delete": float(count),
    }


def show(name: str, got: dict[str, float], base: dict[str, float]) -> None:
    def ratio(key: str) -> str:
        return f"{got[key] / base[key]:.3g}x" if base[key] > 0 else "-"

    print(
        f"{name:13s} add {ratio('add_s'):>7s}  search p50 {ratio('search_p50_ms'):>6s} "
        f"({got['search_p50_ms']:.2f} ms)  narrow filter p50 {ratio('filtered_p50_ms'):>6s}  "
        f"wide filter p50 {ratio('wide_p50_ms'):>6s} ({got['wide_p50_ms']:.1f} ms)  "
        f"delete a document {ratio('delete_doc_s'):>6s}  reopen + search {ratio('reopen_s'):>6s}"
        f"  rows after the delete {got['rows_after_delete']:.0f}"
    )


def compare(
    args: argparse.Namespace,
    n: int,
    vectors: npt.NDArray[np.float32],
    queries: npt.NDArray[np.float32],
    folder: Path,
    uri: str,
) -> None:
    print(
        f"{n:,} vectors of {DIM} dims, {PER_DOC} chunks a document, {args.queries} queries, "
        f"k 10, index {args.index_type}, seed {args.seed}; ratios against FAISS, same run"
    )
    base = store_side(CollectionConfig("hash", DIM, args.index_type), vectors, queries, folder)
    print(
        f"{'faiss':13s} add {base['add_s']:.2f} s, search p50 {base['search_p50_ms']:.2f} ms, "
        f"narrow filter p50 {base['filtered_p50_ms']:.2f} ms, wide filter p50 "
        f"{base['wide_p50_ms']:.2f} ms, delete a document "
        f"{base['delete_doc_s']:.3f} s, reopen + search {base['reopen_s']:.2f} s"
    )
    milvus = CollectionConfig("hash", DIM, args.index_type, backend="milvus", backend_uri=uri)
    show("milvus (lite)", store_side(milvus, vectors, queries, folder), base)
    try:
        show("qdrant local", qdrant_side(vectors, queries, folder), base)
    except ImportError:
        print("qdrant local  not installed (make bench-vectordb installs qdrant-client)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--index-type", default="hnsw", choices=["flat", "hnsw", "ivfpq"])
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.chunks - args.chunks % PER_DOC
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.choice(n, args.queries, replace=False)]
    queries = queries + 0.05 * rng.standard_normal(queries.shape).astype(np.float32)
    folder = Path(tempfile.mkdtemp(prefix="verirag-vdb-"))
    try:
        with milvus_lite_server(folder / "milvus") as uri:
            compare(args, n, vectors, queries, folder, uri)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
