"""Hallucination detection on HaluEval QA: AUROC of each signal and of the combination.

For each seeded pair, the right and the hallucinated answer are checked against the pair's
knowledge with the same checks `RagPipeline.ask` runs: the generator's teacher-forced
logprob confidence, the LLM judge, lexical evidence, and the combined claim score.

    python bench/hallucination_auroc.py [--pairs 200] [--seed 7] [--model qwen2.5-0.5b]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.datasets import shared_data_dir
from evaluators.decision import Thresholds
from evaluators.hallucination import SignalScorer, load_halueval, score_pairs
from evaluators.metrics import auroc
from generators import make_generator
from generators.prompts import load_prompts
from pipeline.settings import Settings, default_data_dir


def evaluate(model: str, pairs: int, seed: int) -> dict[str, float]:
    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    settings = Settings(model_cache=cache, generator=model)
    scorer = SignalScorer(
        make_generator(model, settings),
        load_prompts(settings.prompt_version),
        Thresholds.load(model=model),
        settings.idk_sentence,
    )
    data = load_halueval(shared_data_dir() / "halueval_qa" / "qa.jsonl", pairs, seed)
    started = time.perf_counter()
    rows = score_pairs(scorer, data)
    seconds = time.perf_counter() - started
    labels = [right for _, right in rows]
    result = {"seconds": seconds, "undecided_judge": float(sum(r.judge is None for r, _ in rows))}
    for name in ("logprob", "judge", "lexical", "support", "lift", "combined"):
        # An undecided judge is scored as a coin flip, never as "supported".
        values = [v if (v := getattr(r, name)) is not None else 0.5 for r, _ in rows]
        result[name] = auroc(values, labels)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    args = parser.parse_args()
    r = evaluate(args.model, args.pairs, args.seed)
    print(
        f"HaluEval QA, {args.pairs} pairs ({2 * args.pairs} answers), seed {args.seed}, "
        f"judge and generator {args.model}, {r['seconds']:.0f}s"
    )
    for name in ("logprob", "judge", "lexical", "support", "lift", "combined"):
        print(f"  AUROC {name:9} {r[name]:.4f}")
    print(
        f"  combined / logprob-only = {r['combined'] / r['logprob']:.3f}; "
        f"judge undecided on {r['undecided_judge']:.0f} answers"
    )


if __name__ == "__main__":
    main()
