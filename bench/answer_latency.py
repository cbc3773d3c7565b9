"""Answer latency on the demo corpus (Python's help topics).

1. Decode speed: one question through `RagPipeline.ask` (per-token logprobs, top-5
   alternatives, streaming) vs a raw llama-cpp-python completion of the same prompt without
   logprobs, both from an empty KV cache, alternated over rounds; median of paired ratios.
2. Verification time as a share of generation time, per question.
3. p50 / p95 end-to-end `RagPipeline.ask` latency over a fixed question list.

    python bench/answer_latency.py [--model qwen2.5-1.5b] [--rounds 3]
        [--agreement-samples 4]

With `--agreement-samples N`, every question is also asked with sampling consistency on (the
same model and index), and the verification share and latency are printed for both, with
the ratio of their p50s.
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

from bench.demo_questions import QUESTIONS, percentile
from verirag.core.settings import Settings, default_data_dir
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.generators.params import GenerationParams
from verirag.pipeline.cli.demo import write_pydoc_corpus
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument(
        "--questions", type=int, default=len(QUESTIONS), help="0 = decode comparison only"
    )
    parser.add_argument(
        "--agreement-samples",
        type=int,
        default=0,
        help="also ask with sampling consistency on, this many samples (0 = not)",
    )
    args = parser.parse_args()

    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    work = Path(tempfile.mkdtemp(prefix="verirag-latency-"))
    settings = Settings(data_dir=work, model_cache=cache, generator=args.model)
    IndexingPipeline(settings).run([write_pydoc_corpus(work / "demo")], "demo")
    rag = RagPipeline(settings)
    gen = rag.generator()
    assert isinstance(gen, LlamaCppGenerator)
    params = GenerationParams(max_tokens=args.max_tokens)

    # 1. decode tokens/s: `ask` (logprobs, top-5 alternatives, streaming, checks) vs a raw
    # llama-cpp-python completion of the same prompt; both from an empty KV cache.
    question = QUESTIONS[1]
    prompt = rag.prepare(question, "demo").prompt
    ours: list[float] = []
    raw: list[float] = []
    for _ in range(args.rounds):
        gen.llm.reset()
        ours.append(rag.ask(question, "demo", params=params).timings.decode_tokens_per_second)
        gen.llm.reset()
        first = None
        text = ""
        for chunk in gen.llm.create_completion(
            prompt, max_tokens=args.max_tokens, temperature=0.0, stream=True
        ):
            text += chunk["choices"][0]["text"]
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        assert first is not None
        n = gen.count_tokens(text)  # the same count as `ask`'s completion tokens
        raw.append((n - 1) / (end - first) if n > 1 else 0.0)
    ratio = statistics.median(a / b for a, b in zip(ours, raw, strict=True))

    # 2 + 3. full asks; with --agreement-samples, each question also with sampling
    # consistency on, right after the same question without it (same KV cache state).
    sampling = RagPipeline(
        settings.with_overrides(agreement_samples=args.agreement_samples or None),
        generator=gen,
    )
    latencies: list[float] = []
    shares: list[float] = []
    sampled_latencies: list[float] = []
    sampled_shares: list[float] = []
    decisions: dict[str, int] = {}
    for question in QUESTIONS[: args.questions]:
        answer = rag.ask(question, "demo", params=params)
        latencies.append(answer.timings.total)
        decisions[answer.decision] = decisions.get(answer.decision, 0) + 1
        if answer.timings.generate > 0 and answer.claims:
            shares.append(answer.timings.verify / answer.timings.generate)
        if args.agreement_samples:
            gen.llm.reset()  # both asks start from an empty cache
            other = sampling.ask(question, "demo", params=params)
            sampled_latencies.append(other.timings.total)
            if other.timings.generate > 0 and other.claims:
                sampled_shares.append(other.timings.verify / other.timings.generate)
            gen.llm.reset()

    print(f"\nanswer latency, {gen.name}, demo corpus (pydoc topics), n_threads default")
    print(
        f"decode tok/s: verirag ask {statistics.median(ours):.1f}, raw llama-cpp "
        f"{statistics.median(raw):.1f}; ratio {ratio:.3f} (target >= 0.95), "
        f"{args.rounds} rounds, {args.max_tokens} max tokens"
    )
    pairs = ", ".join(f"{a / b:.3f}" for a, b in zip(ours, raw, strict=True))
    print(f"paired ratios per round: {pairs}")
    if not latencies:
        return
    if shares:
        print(
            f"verification / generation time: median {statistics.median(shares):.1%}, max "
            f"{max(shares):.1%} over {len(shares)} answers with claims (target <= 40%)"
        )
    print(
        f"ask latency over {len(latencies)} questions: p50 {percentile(latencies, 0.5):.1f}s, "
        f"p95 {percentile(latencies, 0.95):.1f}s; decisions {decisions}"
    )
    if sampled_latencies:
        n = args.agreement_samples
        print(
            f"with sampling consistency ({n} samples): verification / generation median "
            f"{statistics.median(sampled_shares):.1%} (without: {statistics.median(shares):.1%});"
            f" ask p50 {percentile(sampled_latencies, 0.5):.1f}s, ratio to without "
            f"{percentile(sampled_latencies, 0.5) / percentile(latencies, 0.5):.2f}x"
        )


if __name__ == "__main__":
    main()
