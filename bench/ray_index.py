"""Indexing on Ray Data (`--engine ray`) against in-process indexing of the same files.

A seeded SQuAD sample is written as one Markdown file per passage; each round indexes it
into a fresh collection with each engine, alternating because these machines are noisy, and
each run pays what a real `verirag index` pays (the in-process encoder loads, the Ray actors
start and load theirs). The Ray instance itself is started once, before the rounds, and its
start-up is reported apart. Prints medians, the throughput ratio (Ray / in-process; the
engine's overhead on one machine), each round's ratio and their spread, and the chunks per
second of one embedding actor.

    python bench/ray_index.py [--passages 600] [--seed 13] [--rounds 3] [--actors 1]
        [--ray-address ADDR --gpus-per-actor G]   # on a cluster: the per-actor figure there
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.core.device import cpu_threads, offline_env
from verirag.core.settings import Settings, default_data_dir
from verirag.pipeline.evaluation.datasets import (
    SharedDataMissingError,
    shared_data_file,
    squad_sample,
)
from verirag.pipeline.indexing import IndexingPipeline

SQUAD = "squad_v1.1_dev/dev-v1.1.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=600)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--ray-address", help="an existing cluster (default: a local instance)")
    parser.add_argument(
        "--gpus-per-actor", type=float, help="default: 1 where the cluster has GPUs"
    )
    args = parser.parse_args()
    try:
        squad = shared_data_file(SQUAD)
    except SharedDataMissingError as exc:
        sys.exit(f"{Path(__file__).name}: {exc}")
    offline_env()
    import ray

    work = Path(tempfile.mkdtemp(prefix="verirag-bench-ray-"))
    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    local = Settings(data_dir=work / "data", model_cache=cache)
    on_ray = local.with_overrides(
        index_engine="ray",
        ray_embed_actors=args.actors,
        ray_gpus_per_actor=args.gpus_per_actor,
        ray_address=args.ray_address,
    )
    passages, _ = squad_sample(squad, args.passages, args.seed)
    docs = work / "docs"
    docs.mkdir()
    for i, p in enumerate(passages):
        (docs / f"p{i:05d}.md").write_text(f"# {p.title}\n\n{p.text}\n")

    started = time.perf_counter()
    if args.ray_address:
        ray.init(address=args.ray_address, log_to_driver=False)
    else:
        ray.init(num_cpus=cpu_threads(), include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - started

    times: dict[str, list[float]] = {"in-process": [], "ray": []}
    chunks: dict[str, int] = {}
    for r in range(args.rounds):
        for name, settings in (("in-process", local), ("ray", on_ray)):
            report = IndexingPipeline(settings).run([docs], f"{name.replace('-', '')}{r}")
            times[name].append(report.seconds)
            chunks[name] = report.chunks_added
            print(f"round {r + 1} {name:10s} {report.seconds:6.1f} s  {report.chunks_added} chunks")
    ray.shutdown()
    if chunks["ray"] != chunks["in-process"]:
        sys.exit(f"engines disagree: {chunks}")
    n = chunks["ray"]
    near, far = statistics.median(times["in-process"]), statistics.median(times["ray"])
    print(
        f"\n{len(passages)} files, {n} chunks, {args.rounds} rounds, {cpu_threads()} CPUs, "
        f"{args.actors} embedding actor(s); Ray start-up {ray_start:.1f} s (once, not counted)"
    )
    print(f"in-process median {near:.1f} s ({n / near:.1f} chunks/s)")
    print(f"ray        median {far:.1f} s ({n / far:.1f} chunks/s)")
    print(f"throughput ratio ray / in-process: {near / far:.2f}x (target >= 0.8x)")
    # Each round's pair ran back to back, so its ratio is the least disturbed by the
    # machine's drift over the run; the spread shows how far one figure can be trusted.
    pairs = [a / b for a, b in zip(times["in-process"], times["ray"], strict=True)]
    print(
        "per-round ratios: "
        + " ".join(f"{x:.2f}" for x in pairs)
        + f" (median {statistics.median(pairs):.2f}, range {min(pairs):.2f}-{max(pairs):.2f})"
    )
    print(f"per embedding actor: {n / far / args.actors:.1f} chunks/s")


if __name__ == "__main__":
    main()
