"""RAGAS judge speed: verirag's grammar decoding against llama.cpp's own sampler chain.

The same samples are scored twice in one process, alternating which goes first:

- baseline: `generate_json_reference` (llama.cpp's sampler chain runs the JSON grammar over
  the whole vocabulary at every token) and only the live KV cache;
- verirag: `generate_json` (the grammar checks the best token first) with saved prompt
  states (each metric's long fixed instructions are evaluated once, not once per sample).

Samples come from SQuAD (question, its gold paragraph plus two others as contexts, the gold
paragraph's answer sentence as the response, the first gold answer as reference), so no RAG
answer has to be generated. Prints the median per-sample time ratio and whether both modes
gave the same scores.

    python bench/ragas_judge.py [--samples 6] [--model qwen2.5-0.5b] [--seed 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.core.device import offline_env
from verirag.core.settings import Settings
from verirag.evaluators.claims import split_claims
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.pipeline.evaluation.datasets import (
    DatasetError,
    SharedDataMissingError,
    load_eval_dataset,
    sample_items,
    shared_data_file,
)
from verirag.pipeline.evaluation.ragas_adapter import RagasSample, RagasScorer
from verirag.retrievers.encoders import SentenceTransformerEncoder


class ReferenceGenerator(LlamaCppGenerator):
    """Decodes JSON through llama.cpp's sampler chain; never saves prompt states."""

    def generate_json(self, prompt: str, schema: dict[str, Any], max_tokens: int = 512) -> str:
        return self.generate_json_reference(prompt, schema, max_tokens)

    def keep_prompt_states(self, max_mib: float = 512) -> Any:
        return None


def answer_sentence(paragraph: str, answer: str) -> str:
    return next((c.text for c in split_claims(paragraph) if answer in c.text), answer)


def squad_samples(path: Path | None, n: int, seed: int, script: str) -> list[RagasSample]:
    """`n` SQuAD samples: question, its gold paragraph plus two others as contexts, the gold
    paragraph's answer sentence as the response, the first gold answer as reference. Exits
    naming `script` and the file when the data is missing; switches the process offline."""
    try:
        data = load_eval_dataset(path or shared_data_file("squad_v1.1_dev/dev-v1.1.json"))
    except (SharedDataMissingError, DatasetError) as exc:
        sys.exit(f"{script}: {exc}")
    offline_env()
    by_id = {p.pid: p for p in data.passages}
    rng = random.Random(seed)
    samples = []
    for item in sample_items(data.items, n, seed):
        gold = by_id[sorted(item.relevant)[0]]
        others = rng.sample([p for p in data.passages if p.pid != gold.pid], 2)
        samples.append(
            RagasSample(
                item.question,
                answer_sentence(gold.text, item.answers[0]),
                (gold.text, *(p.text for p in others)),
                item.answers[0],
            )
        )
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--data", type=Path, default=None, help="SQuAD JSON (default: the shared SQuAD v1.1 dev)"
    )
    args = parser.parse_args()
    samples = squad_samples(args.data, args.samples, args.seed, Path(__file__).name)

    settings = Settings()
    encoder = SentenceTransformerEncoder("minilm", settings=settings)
    scorers = {
        "baseline": RagasScorer(ReferenceGenerator(args.model, settings=settings), encoder),
        "verirag": RagasScorer(LlamaCppGenerator(args.model, settings=settings), encoder),
    }
    for scorer in scorers.values():
        scorer.generator.warm_up()
    seconds: dict[str, list[float]] = {name: [] for name in scorers}
    same = 0
    for i, sample in enumerate(samples):
        order = list(scorers) if i % 2 == 0 else list(reversed(scorers))
        values = {}
        for name in order:
            started = time.perf_counter()
            result = scorers[name].score(sample)
            seconds[name].append(time.perf_counter() - started)
            values[name] = (result.values, sorted(result.errors))
        same += values["baseline"] == values["verirag"]
        print(
            f"sample {i + 1}: baseline {seconds['baseline'][-1]:.1f}s, verirag "
            f"{seconds['verirag'][-1]:.1f}s, same scores {values['baseline'] == values['verirag']}",
            flush=True,
        )
    # The first sample pays for loading and for each template's first evaluation in both
    # modes; the steady state is what a long run sees.
    ratios = [v / b for v, b in zip(seconds["verirag"], seconds["baseline"], strict=True)]
    steady = ratios[1:] or ratios
    states = scorers["verirag"].generator.prompt_states
    print(
        f"\nRAGAS judge, {args.model}, {len(samples)} SQuAD samples (seed {args.seed}), 4 metrics:"
        f"\nmedian seconds per sample: baseline {statistics.median(seconds['baseline']):.1f}, "
        f"verirag {statistics.median(seconds['verirag']):.1f}; median ratio verirag/baseline "
        f"{statistics.median(steady):.3f} (after the first sample; all samples "
        f"{statistics.median(ratios):.3f})"
        f"\nsame scores in both modes: {same}/{len(samples)}"
        + (
            f"\nsaved prompt states: {states.hits} restores, {states.tokens_reused} prompt "
            f"tokens not evaluated again"
            if states is not None
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
