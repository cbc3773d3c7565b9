"""Fuzz the loaders for longer than CI does: mutated files of every supported type
(truncated, bit-flipped, NUL runs, spliced, repeated), random bytes, and hostile shapes
(deep nesting, huge lines, mixed encodings), for a fixed time.

Every file must load or fail with a reason; any other exception escapes a loader and would
abort an indexing run. Prints files tried per type, loaded / failed, escapes (target 0) and the
slowest file, against the median load time of the valid seed files (the baseline, same run).

    python bench/fuzz_loaders.py [--seconds 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loader_fuzzing import MUTATIONS, load_or_reason, mutate, seeds


def _hostile(rng: random.Random) -> tuple[bytes, str]:
    shape = rng.randrange(4)
    if shape == 0:
        depth = rng.randint(1_000, 60_000)
        return b"<div>" * depth + b"deep" + b"</div>" * depth, ".html"
    if shape == 1:
        return b"x" * rng.randint(100_000, 1_900_000), rng.choice([".txt", ".md", ".rst"])
    if shape == 2:
        parts = [
            rng.choice(["café ", "naïve ", "日本 "]).encode(rng.choice(["utf-8", "utf-16"]))
            for _ in range(rng.randint(1, 500))
        ]
        return b"".join(parts) + rng.randbytes(rng.randint(0, 64)), rng.choice([".txt", ".md"])
    lines = [
        b'{"text": "ok"}' if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 80))
        for _ in range(rng.randint(1, 400))
    ]
    return b"\n".join(lines), ".jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    valid = seeds(Path(tempfile.mkdtemp(prefix="verirag-fuzz-bench-")))
    baseline = []
    for suffix, content in valid.items():
        started = time.perf_counter()
        assert load_or_reason(content, suffix) == "loaded", suffix
        baseline.append(time.perf_counter() - started)
    tried: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    escapes: list[str] = []
    slowest = (0.0, "")
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.7:
            suffix = rng.choice(sorted(valid))
            kind = rng.choice(MUTATIONS)
            content, what = mutate(valid[suffix], kind, rng), f"{kind} {suffix}"
        elif roll < 0.9:
            suffix = rng.choice(sorted(valid))
            content, what = rng.randbytes(rng.randint(0, 8000)), f"random {suffix}"
        else:
            content, suffix = _hostile(rng)
            what = f"hostile {suffix}"
        tried[suffix] += 1
        started = time.perf_counter()
        try:
            outcome = load_or_reason(content, suffix)
        except Exception:
            escapes.append(f"{what}: {traceback.format_exc(limit=3)}")
            outcome = "escaped"
        took = time.perf_counter() - started
        if took > slowest[0]:
            slowest = (took, f"{what}, {len(content):,} bytes")
        outcomes[outcome.split(":")[0]] += 1
    total = sum(tried.values())
    base = statistics.median(baseline)
    print(f"loader fuzzing, {args.seconds:g}s, seed {args.seed}: {total:,} files")
    print("per type: " + ", ".join(f"{s} {n}" for s, n in sorted(tried.items())))
    print(
        f"loaded {outcomes['loaded']:,}, failed with a reason {outcomes['failed']:,}, "
        f"escaped {len(escapes)} (target 0)"
    )
    print(
        f"slowest file {slowest[0]:.2f}s ({slowest[1]}), {slowest[0] / base:,.0f}x the median "
        f"load time of a valid seed file ({base * 1000:.1f} ms)"
    )
    for escape in escapes[:5]:
        print(escape)
    print("RESULT:", "FAIL" if escapes else "ok")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
