"""Why every model call runs on one thread (`verirag/core/compute.py`), measured.

One process, one generator, greedy decoding of the same prompt from an empty KV cache:

1. `generate` called from the main thread, and from two worker threads in turn: every call
   runs on the compute thread, so the caller's thread should not matter (ratio ~1.00).
2. Then one call bypasses the compute thread (the undecorated `stream`, run on a worker
   thread, as every call ran before): libgomp now holds two thread teams, more OpenMP
   threads than cores, and spins only briefly at ggml's barriers. The same `generate`
   calls as in 1 are timed again; the ratio to 1 is what a server's second worker thread
   used to cost every later call. This cannot be undone within the process, so it runs last.

    python bench/compute_thread.py [--model qwen2.5-0.5b] [--reps 5] [--tokens 96]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.core.device import cpu_threads
from verirag.core.records import Message
from verirag.core.settings import Settings
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.generators.params import GenerationParams

PROMPT = "Write a long story about a lighthouse keeper who learns to build boats."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()

    gen = LlamaCppGenerator(args.model, settings=Settings(generator=args.model))
    gen.warm_up()
    prompt = gen.render([Message("user", PROMPT)])
    params = GenerationParams(max_tokens=args.tokens)

    def timed() -> float:
        gen.llm.reset()  # no prefix reuse: each call prefills and decodes the same work
        started = time.perf_counter()
        gen.generate(prompt, params)
        return time.perf_counter() - started

    timed()  # first-call allocations
    workers = ThreadPoolExecutor(2)
    main_s: list[float] = []
    worker_s: list[float] = []
    for _ in range(args.reps):
        main_s.append(timed())
        worker_s.append(workers.submit(timed).result())
        worker_s.append(workers.submit(timed).result())

    def bypass() -> None:
        gen.llm.reset()
        for _ in type(gen).stream.__wrapped__(gen, prompt, params):  # type: ignore[attr-defined]
            pass

    workers.submit(bypass).result()
    after_s = [timed() for _ in range(args.reps)]
    workers.shutdown()

    med = statistics.median
    print(f"{args.model}, {args.tokens} tokens greedy, {cpu_threads()} threads, {args.reps} reps")
    print(f"  generate from the main thread:       median {med(main_s):.3f}s")
    print(
        f"  generate from two worker threads:    median {med(worker_s):.3f}s  "
        f"ratio {med(worker_s) / med(main_s):.3f} (one thread team: ~1.00)"
    )
    print(
        f"  after one call off the compute thread: median {med(after_s):.3f}s  "
        f"ratio {med(after_s) / med(main_s):.3f} (two teams, what the fix avoids)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
