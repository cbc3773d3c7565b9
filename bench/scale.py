"""One machine at a million chunks: search latency and recall, memory and disk per chunk, cold
open and a small incremental add, per FAISS index type (flat, HNSW, IVF-PQ), plus BM25.

The collection is filled through the store's own batch writer (`FaissStore.write_batch`, the
path every indexing engine ends in) with vectors given, so no 11 CPU-hours of embedding:
- `--real` passages (SQuAD v1.1 dev, SQuADShifts Amazon, HaluEval QA knowledge, in that
  order) are embedded with MiniLM for real (cached in the work directory);
- the rest are perturbed mixtures of them: three real vectors with Dirichlet(1, 1, 1) weights
  plus Gaussian noise, renormalised; each keeps its heaviest parent's text. Mixtures spread
  over the space that real passages span; copies with small noise would stack ~170
  near-ties on each real point, which measures ties, not an index.
Queries are real SQuAD dev questions, embedded with the same model. Recall@10 is against
exact (flat) search over the same million vectors.

    python bench/scale.py [--chunks 1000000] [--real 6000] [--queries 200] [--bm25]

"Vector memory" is FAISS's serialised size per chunk: FAISS holds in memory what it writes.
Prints a table; `--out` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.core.device import offline_env
from verirag.core.records import Chunk, Document
from verirag.core.settings import Settings, default_data_dir
from verirag.pipeline.evaluation.datasets import SharedDataMissingError, shared_data_file
from verirag.pipeline.evaluation.datasets.squad import load_squad
from verirag.retrievers.store import BatchWrite, CollectionConfig, FaissStore

Vectors = npt.NDArray[np.float32]
CHUNKS_PER_DOC = 10


def real_texts(limit: int) -> list[str]:
    texts: list[str] = []
    for rel in ("squad_v1.1_dev/dev-v1.1.json", "squadshifts_amazon/amazon_reviews_v1.0.json"):
        passages, _ = load_squad(shared_data_file(rel))
        texts.extend(f"{p.title}\n{p.text}" for p in passages)
    with shared_data_file("halueval_qa/qa.jsonl").open() as f:
        for line in f:
            if len(texts) >= limit:
                break
            texts.append(json.loads(line)["knowledge"])
    return texts[:limit]


def embed(texts: list[str], cache: Path, settings: Settings) -> Vectors:
    if cache.is_file():
        vectors: Vectors = np.load(cache)
        if len(vectors) == len(texts):
            return vectors
    from verirag.retrievers.encoders import SentenceTransformerEncoder

    started = time.perf_counter()
    vectors = SentenceTransformerEncoder("minilm", settings=settings).encode(texts)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.0f} s", flush=True)
    np.save(cache, vectors)
    return vectors


def mixtures(real: Vectors, n: int, rng: np.random.Generator) -> tuple[Vectors, np.ndarray]:
    """`n` unit vectors, each a Dirichlet(1, 1, 1) mixture of three real ones plus noise of
    norm ~0.1; the parent with the largest weight gives its text."""
    parents = rng.integers(len(real), size=(n, 3))
    weights = rng.dirichlet((1.0, 1.0, 1.0), size=n).astype(np.float32)
    v = np.einsum("nk,nkd->nd", weights, real[parents])
    v += rng.standard_normal(v.shape).astype(np.float32) * (0.1 / np.sqrt(real.shape[1]))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    main = parents[np.arange(n), weights.argmax(axis=1)]
    return v.astype(np.float32), main


def batch(first_doc: int, vectors: Vectors, parents: np.ndarray, texts: list[str]) -> BatchWrite:
    docs = []
    for d in range(len(vectors) // CHUNKS_PER_DOC):
        doc_no = first_doc + d
        doc = Document(f"s{doc_no:07d}", f"/bench/s{doc_no:07d}.txt", f"doc {doc_no}", "", "h")
        chunks = []
        for c in range(CHUNKS_PER_DOC):
            text = texts[int(parents[d * CHUNKS_PER_DOC + c])]
            chunks.append(Chunk(doc.doc_id, c, 0, len(text), text, len(text) // 5))
        docs.append((doc, doc.source, "bench", chunks))
    return BatchWrite(docs, vectors, [])


def dir_bytes(path: Path, pattern: str) -> int:
    total = 0
    for p in path.glob(pattern):
        total += (
            sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            if p.is_dir()
            else p.stat().st_size
        )
    return total


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=6000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--types", default="flat,hnsw,ivfpq", help='"none": BM25 only')
    parser.add_argument("--bm25", action="store_true", help="also build and time BM25")
    parser.add_argument("--work", type=Path, help="default: a new temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the collection afterwards")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    offline_env()
    work = args.work or Path(tempfile.mkdtemp(prefix="verirag-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    settings = Settings(data_dir=work / "data", model_cache=cache)
    try:
        texts = real_texts(args.real)
        _, questions = load_squad(shared_data_file("squad_v1.1_dev/dev-v1.1.json"))
    except SharedDataMissingError as exc:
        sys.exit(f"{Path(__file__).name}: {exc}")
    real = embed(texts, work / f"real-{len(texts)}.npy", settings)
    asked = random.Random(args.seed).sample(questions, args.queries)
    queries = embed(
        [q.question for q in asked], work / f"queries-{args.seed}-{args.queries}.npy", settings
    )
    rng = np.random.default_rng(args.seed)
    figures: dict[str, Any] = {"chunks": args.chunks, "real": len(real), "queries": len(queries)}

    # -- fill, through the store's writer ---------------------------------------------------
    path = work / "collection"
    shutil.rmtree(path, ignore_errors=True)
    config = CollectionConfig("minilm", real.shape[1], "flat")
    store = FaissStore(path, create=config, writable=True)
    store.set_save_interval(1e9)  # one save at the end, as a bulk load would
    step = 20_000
    started = time.perf_counter()
    written = 0
    next_doc = 0
    while written < args.chunks:
        n = min(step, args.chunks - written)
        n -= n % CHUNKS_PER_DOC
        if written == 0:  # the real vectors first, as they are
            take = min(n, len(real))
            vectors, parents = real[:take], np.arange(take)
            if take < n:
                more, more_parents = mixtures(real, n - take, rng)
                vectors, parents = (
                    np.vstack([vectors, more]),
                    np.concatenate([parents, more_parents]),
                )
        else:
            vectors, parents = mixtures(real, n, rng)
        store.write_batch(batch(next_doc, vectors, parents, texts))
        next_doc += n // CHUNKS_PER_DOC
        written += n
        if written % 200_000 == 0 or written == args.chunks:
            rate = written / (time.perf_counter() - started)
            print(f"  written {written:,} chunks ({rate:,.0f} chunks/s)", flush=True)
    fill_s = time.perf_counter() - started
    n_total = store.count("chunks")
    figures["write"] = {"seconds": fill_s, "chunks_per_s": n_total / fill_s}
    figures["sqlite_bytes_per_chunk"] = (path / "meta.sqlite").stat().st_size / n_total
    print(
        f"filled {n_total:,} chunks in {fill_s:.0f} s ({n_total / fill_s:,.0f} chunks/s through "
        f"write_batch); SQLite {figures['sqlite_bytes_per_chunk']:.0f} bytes/chunk",
        flush=True,
    )

    exact_index = store.index()
    _, exact = exact_index.search(queries, 10)
    exact_sets = [set(row.tolist()) for row in exact]

    results: list[dict[str, Any]] = []
    for index_type in [t for t in args.types.split(",") if t not in ("", "none")]:
        row: dict[str, Any] = {"type": index_type}
        started = time.perf_counter()
        store.set_index_config(replace(store.config, index_type=index_type))
        index = store.index()
        row["build_s"] = time.perf_counter() - started
        started = time.perf_counter()
        store.save()
        row["save_s"] = time.perf_counter() - started
        row["faiss_bytes_per_chunk"] = dir_bytes(path, "faiss-g*.index") / n_total
        knobs = _knobs(index)
        sweep: list[tuple[str, Any] | None] = [*knobs] or [None]
        for knob in sweep:
            if knob is not None:
                knob[1]()
            latencies, hits = [], []
            for q, truth in zip(queries, exact_sets, strict=True):
                t0 = time.perf_counter()
                found = store.search(q, 10)
                latencies.append((time.perf_counter() - t0) * 1000)
                hits.append(len(truth & {cid for cid, _ in found}) / 10)
            entry = {
                "setting": knob[0] if knob else "",
                "p50_ms": pct(latencies, 50),
                "p95_ms": pct(latencies, 95),
                "recall_at_10": statistics.fmean(hits),
            }
            row.setdefault("search", []).append(entry)
            print(
                f"  {index_type:6s} {entry['setting']:14s} p50 {entry['p50_ms']:7.2f} ms  p95 "
                f"{entry['p95_ms']:7.2f} ms  recall@10 {entry['recall_at_10']:.3f}",
                flush=True,
            )
        if knobs:
            knobs[0][1]()  # back to the collection's own setting
        # Cold open: a new reader process would open SQLite and load this generation's file.
        started = time.perf_counter()
        reader = FaissStore(path)
        reader.search(queries[0], 10)
        row["cold_open_s"] = time.perf_counter() - started
        reader.close()
        # A small incremental add through the writer, then the next search.
        more, parents = mixtures(real, 1000, rng)
        before = store.index()
        started = time.perf_counter()
        store.write_batch(batch(next_doc, more, parents, texts))
        store.search(queries[0], 10)
        row["add_1000_s"] = time.perf_counter() - started
        row["add_rebuilt_index"] = store.index() is not before
        next_doc += 100
        # A delete: in place for every type (an HNSW graph keeps the row as a tombstone).
        before = store.index()
        started = time.perf_counter()
        store.delete_documents([f"s{next_doc - 1:07d}"])
        store.search(queries[0], 10)
        row["delete_doc_s"] = time.perf_counter() - started
        row["delete_rebuilt_index"] = store.index() is not before
        started = time.perf_counter()
        store.save()
        row["save_after_add_s"] = time.perf_counter() - started
        n_total = store.count("chunks")
        print(
            f"  {index_type:6s} build {row['build_s']:.1f} s, {row['faiss_bytes_per_chunk']:.0f} "
            f"bytes/chunk, cold open + first search {row['cold_open_s']:.2f} s, add 1,000 + "
            f"search {row['add_1000_s']:.2f} s (rebuilt: {row['add_rebuilt_index']}), "
            f"delete a document {row.get('delete_doc_s', float('nan')):.2f} s (rebuilt: "
            f"{row.get('delete_rebuilt_index', True)}), save {row['save_after_add_s']:.1f} s",
            flush=True,
        )
        results.append(row)
    figures["index_types"] = results

    if args.bm25:
        from verirag.retrievers.bm25 import bm25_for

        started = time.perf_counter()
        bm25 = bm25_for(store)
        build = time.perf_counter() - started
        latencies = []
        for q in asked:
            t0 = time.perf_counter()
            bm25.search(q.question, 10)
            latencies.append((time.perf_counter() - t0) * 1000)
        # A small add: the writer tokenizes only the new chunks, as a segment of their own.
        more, parents = mixtures(real, 1000, rng)
        store.write_batch(batch(next_doc, more, parents, texts))
        started = time.perf_counter()
        caught_up = bm25_for(store)
        rebuild = time.perf_counter() - started
        segments = len(caught_up.segments)
        next_doc += 100
        # A delete: masked, nothing tokenized.
        store.delete_documents([f"s{next_doc - 1:07d}"])
        started = time.perf_counter()
        bm25_for(store)
        deleted = time.perf_counter() - started
        # Cold open: a new reader loads the saved segments.
        started = time.perf_counter()
        reader = FaissStore(path)
        bm25_for(reader).search(asked[0].question, 10)
        cold = time.perf_counter() - started
        reader.close()
        figures["bm25"] = {
            "build_s": build,
            "bytes_per_chunk": dir_bytes(path, "bm25") / n_total,
            "p50_ms": pct(latencies, 50),
            "p95_ms": pct(latencies, 95),
            "after_add_1000_s": rebuild,
            "segments_after_add": segments,
            "after_delete_doc_s": deleted,
            "cold_open_s": cold,
        }
        print(
            f"  bm25   build {build:.0f} s, {figures['bm25']['bytes_per_chunk']:.0f} bytes/chunk, "
            f"p50 {figures['bm25']['p50_ms']:.1f} ms, p95 {figures['bm25']['p95_ms']:.1f} ms, "
            f"after adding 1,000 chunks {rebuild:.2f} s ({segments} segments), after deleting "
            f"a document {deleted:.2f} s, cold open + first search {cold:.2f} s"
        )
    store.close()
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    if not args.keep:
        shutil.rmtree(path, ignore_errors=True)
    return 0


def _knobs(index: Any) -> list[tuple[str, Any]]:
    """Search-time settings to sweep without rebuilding, the collection's own first."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexHNSW):
        own = inner.hnsw.efSearch

        def ef(value: int) -> Any:
            return lambda: setattr(inner.hnsw, "efSearch", value)

        return [
            (f"efSearch={v}", ef(v)) for v in dict.fromkeys([own, 32, 64, 256, 512, 1024, 2048])
        ]
    if isinstance(index, faiss.IndexIVF):
        own = index.nprobe

        def probe(value: int) -> Any:
            return lambda: setattr(index, "nprobe", value)

        return [(f"nprobe={v}", probe(v)) for v in dict.fromkeys([own, 8, 64, 256])]
    return []


if __name__ == "__main__":
    sys.exit(main())
