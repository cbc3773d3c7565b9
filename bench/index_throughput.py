"""Indexing throughput: `verirag index` vs raw SentenceTransformer.encode vs LangChain FAISS.

The default collection keeps two encodings of each chunk, MiniLM's vector and SPLADE-tiny's
term weights, so its baseline is the raw encode of both; like for like with the raw MiniLM
encode and LangChain (dense only) is verirag with `splade_model=""`.

Everything runs in one process on the same chunk texts (the ones verirag's chunker makes
from a seeded SQuAD sample), alternating methods over several rounds because these machines
are noisy; ratios compare medians. Also reports peak RSS growth per method (VmHWM after a
reset) and dense recall@10 for the default and the int8 fast path.

    python bench/index_throughput.py [--passages 300] [--seed 13] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.core.device import offline_env
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings, default_data_dir
from verirag.pipeline.evaluation.datasets import (
    SharedDataMissingError,
    shared_data_file,
    squad_sample,
    write_jsonl,
)
from verirag.pipeline.evaluation.metrics import dedupe, mean, recall_at_k
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.learned_sparse import SpladeEncoder
from verirag.retrievers.loaders import load_file

SQUAD = "squad_v1.1_dev/dev-v1.1.json"


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak RSS growth in MB) of one call."""
    _reset_peak()
    base = _rss_mb("VmRSS")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return seconds, _rss_mb("VmHWM") - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        squad = shared_data_file(SQUAD)
    except SharedDataMissingError as exc:
        sys.exit(f"{Path(__file__).name}: {exc}")
    offline_env()

    work = Path(tempfile.mkdtemp(prefix="verirag-bench-"))
    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    base = Settings(data_dir=work / "data", model_cache=cache)
    passages, questions = squad_sample(squad, args.passages, args.seed)
    corpus = write_jsonl(passages, work / "squad.jsonl")

    default = SentenceTransformerEncoder("minilm", settings=base)
    fast = SentenceTransformerEncoder("minilm", settings=base, backend="int8")
    default.warm_up()
    fast.warm_up()
    splade = SpladeEncoder(base.splade_model, settings=base)
    splade.warm_up()
    dense_only = base.with_overrides(splade_model="")
    pipe = IndexingPipeline(base, encoder=default, splade=splade)
    dense_pipe = IndexingPipeline(dense_only, encoder=default)
    fast_pipe = IndexingPipeline(dense_only.with_overrides(embed_backend="int8"), encoder=fast)
    fast_splade_pipe = IndexingPipeline(
        base.with_overrides(embed_backend="int8"), encoder=fast, splade=splade
    )

    docs, _ = load_file(corpus, base.max_file_bytes)
    chunker = pipe.chunker()
    texts = [c.embed_text(d.title) for d in docs for c in chunker.split(d)]
    n = len(texts)

    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LcDocument
    from langchain_huggingface import HuggingFaceEmbeddings

    lc_embeddings = HuggingFaceEmbeddings(
        model_name=resolve_model("minilm", cache),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": base.embed_batch_size},
    )
    lc_docs = [LcDocument(page_content=t) for t in texts]
    default.encode(texts[:16])  # warm every code path once before timing
    splade.encode(texts[:16])
    fast.encode(texts[:16])
    lc_embeddings.embed_documents(texts[:16])

    runs = 0

    def index_with(p: IndexingPipeline) -> Callable[[], object]:
        def run() -> object:
            nonlocal runs
            runs += 1
            report = p.run([corpus], f"bench{runs}")
            assert report.chunks_added == n, (report.chunks_added, n)
            return report

        return run

    def both() -> object:
        return default.encode(texts), splade.encode(texts)

    methods: dict[str, Callable[[], object]] = {
        "raw SentenceTransformer.encode": lambda: default.encode(texts),
        "verirag index, no SPLADE": index_with(dense_pipe),
        "LangChain FAISS.from_documents": lambda: FAISS.from_documents(lc_docs, lc_embeddings),
        "verirag index, int8, no SPLADE": index_with(fast_pipe),
        "raw encode, MiniLM + SPLADE": both,
        "verirag index (default)": index_with(pipe),
        "verirag index, int8": index_with(fast_splade_pipe),
    }
    times: dict[str, list[float]] = {k: [] for k in methods}
    peaks: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            seconds, peak = _timed(fn)
            times[name].append(seconds)
            peaks[name].append(peak)

    rate = {k: n / statistics.median(v) for k, v in times.items()}

    def paired(a: str, b: str) -> float:
        """Median over rounds of rate(a)/rate(b): each pair ran back to back, so a noisy
        stretch of the machine hits both sides of a ratio alike."""
        return statistics.median(tb / ta for ta, tb in zip(times[a], times[b], strict=True))

    def recall(settings: Settings, encoder: SentenceTransformerEncoder, coll: str) -> float:
        rag = RagPipeline(settings, encoder=encoder)
        return mean(
            [
                recall_at_k(
                    dedupe([h.doc_id for h in rag.search(q.question, coll, 20)]), q.relevant, 10
                )
                for q in questions
            ]
        )

    # The last round's collections made without SPLADE: the default embedder, then int8.
    r_default = recall(dense_only, default, f"bench{runs - 3}")
    r_fast = recall(dense_only, fast, f"bench{runs - 2}")

    print(
        f"\nindex throughput: {args.passages} SQuAD passages (seed {args.seed}), {n} chunks, "
        f"{args.rounds} rounds, torch threads {os.environ.get('OMP_NUM_THREADS', 'auto')}"
    )
    print(f"{'method':34} {'chunks/s':>9} {'peak MB':>8}")
    for name in methods:
        print(f"{name:34} {rate[name]:9.1f} {max(peaks[name]):8.0f}")
    raw, lc = "raw SentenceTransformer.encode", "LangChain FAISS.from_documents"
    default_name, dense_name = "verirag index (default)", "verirag index, no SPLADE"
    fast_name = "verirag index, int8, no SPLADE"
    both_name, fast_both = "raw encode, MiniLM + SPLADE", "verirag index, int8"
    ratio_default = paired(default_name, both_name)
    ratio_dense = paired(dense_name, raw)
    ratio_fast = paired(fast_name, lc)
    print("\nratios: median over rounds of paired throughput ratios")
    print(f"verirag default / raw encode of both models   = {ratio_default:.3f}  (target >= 0.95)")
    print(f"verirag no SPLADE / raw MiniLM encode         = {ratio_dense:.3f}  (target >= 0.95)")
    print(f"verirag int8, no SPLADE / LangChain           = {ratio_fast:.3f}  (target >= 1.5)")
    print(f"verirag int8 / verirag default                = {paired(fast_both, default_name):.3f}")
    print(f"verirag default / verirag no SPLADE           = {paired(default_name, dense_name):.3f}")
    print(f"verirag default / LangChain (dense only)      = {paired(default_name, lc):.3f}")
    print(
        f"recall@10 default {r_default:.4f}, int8 {r_fast:.4f}, "
        f"delta {r_fast - r_default:+.4f}  (target within 0.01) over {len(questions)} "
        "questions"
    )
    ok = (
        min(ratio_default, ratio_dense) >= 0.95
        and ratio_fast >= 1.5
        and abs(r_fast - r_default) <= 0.01
    )
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
