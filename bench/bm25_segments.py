"""verirag's segmented BM25 against bm25s's whole index, in the same run, on real passages.

Both score Lucene BM25 (k1 0.9, b 0.4) over bm25s's tokenizer. The corpus is the real
passages of SQuAD v1.1 dev, SQuADShifts Amazon and HaluEval QA knowledge (about 24,000),
repeated to `--chunks` with marker words so that copies are distinct chunks; the
queries are real SQuAD dev questions. Printed as ratios (verirag / bm25s):
- build from nothing;
- query p50 / p95 at k = 10, and the share of queries whose top-10 ids are the same;
- what a small add costs: verirag tokenizes the new chunks as a segment; bm25s has no
  incremental update, so it indexes everything again.

    python bench/bm25_segments.py [--chunks 200000] [--queries 200] [--add 1000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import pct, real_texts
from verirag.core.device import offline_env
from verirag.pipeline.evaluation.datasets import SharedDataMissingError, shared_data_file
from verirag.pipeline.evaluation.datasets.squad import load_squad
from verirag.retrievers.bm25 import K1, B, Bm25Index, Segment, tokenize


def corpus(n: int) -> list[str]:
    real = real_texts(10**9)
    # Copy j of a passage gains j + 1 marker words: a distinct chunk of a distinct length,
    # so that copies do not tie.
    return [f"{real[i % len(real)]}{' copy' * (i // len(real) + 1)}" for i in range(n)]


def bm25s_index(texts: list[str]) -> object:
    import bm25s

    retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
    retriever.index(tokenize(texts), show_progress=False)
    return retriever


def bm25s_search(retriever: object, query: str, k: int) -> list[tuple[int, float]]:
    vocab = retriever.vocab_dict  # type: ignore[attr-defined]
    terms = [t for t in tokenize([query])[0] if t in vocab]
    if not terms:
        return []
    docs, scores = retriever.retrieve(  # type: ignore[attr-defined]
        [terms], k=k, show_progress=False, n_threads=1
    )
    return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--add", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    offline_env()
    try:
        texts = corpus(args.chunks + args.add)
        _, questions = load_squad(shared_data_file("squad_v1.1_dev/dev-v1.1.json"))
    except SharedDataMissingError as exc:
        sys.exit(f"{Path(__file__).name}: {exc}")
    asked = [q.question for q in random.Random(args.seed).sample(questions, args.queries)]
    base, extra = texts[: args.chunks], texts[args.chunks :]
    ids = np.arange(len(base), dtype=np.int64)

    started = time.perf_counter()
    ours = Bm25Index([Segment.from_texts(ids, base)], [np.ones(len(base), dtype=bool)])
    ours_build = time.perf_counter() - started
    started = time.perf_counter()
    theirs = bm25s_index(base)
    theirs_build = time.perf_counter() - started

    ours_ms, theirs_ms, same_ids, same_scores = [], [], 0, 0
    for q in asked:
        t0 = time.perf_counter()
        mine = ours.search(q, 10)
        ours_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        ref = bm25s_search(theirs, q, 10)
        theirs_ms.append((time.perf_counter() - t0) * 1000)
        same_ids += [i for i, _ in mine] == [i for i, _ in ref]
        same_scores += len(mine) == len(ref) and np.allclose(
            [s for _, s in mine], [s for _, s in ref], rtol=1e-4
        )

    new_ids = np.arange(len(base), len(texts), dtype=np.int64)
    started = time.perf_counter()
    grown = Bm25Index(
        [*ours.segments, Segment.from_texts(new_ids, extra)],
        [*ours.alive, np.ones(len(extra), dtype=bool)],
    )
    grown.search(asked[0], 10)
    ours_add = time.perf_counter() - started
    started = time.perf_counter()
    bm25s_search(bm25s_index(texts), asked[0], 10)
    theirs_add = time.perf_counter() - started

    print(f"{len(base):,} chunks, {len(asked)} queries, add {len(extra):,} (seed {args.seed})")
    print(f"build: verirag {ours_build:.1f} s, bm25s {theirs_build:.1f} s, ratio "
          f"{ours_build / theirs_build:.2f}")  # fmt: skip
    for name, level in (("p50", 50), ("p95", 95)):
        a, b = pct(ours_ms, level), pct(theirs_ms, level)
        print(f"query {name}: verirag {a:.2f} ms, bm25s {b:.2f} ms, ratio {a / b:.2f}")
    n = len(asked)
    print(f"top-10 scores equal (rtol 1e-4): {same_scores} of {n} queries; the same ids in the "
          f"same order: {same_ids} (equal scores may come in either order)")  # fmt: skip
    ratio = ours_add / theirs_add
    print(f"add {len(extra):,} + first search: verirag {ours_add:.2f} s (one new segment), "
          f"bm25s {theirs_add:.1f} s (everything again), ratio {ratio:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
