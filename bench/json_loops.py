"""Looping judge replies: what the JSON decoder's loop stop would cut, and what it saves.

Scores SQuAD samples (built as `bench/ragas_judge.py` builds them) with the 4 RAGAS metrics,
decoding every judge reply *without* the loop stop, then replays each reply's tokens against
`json_grammar.looping` for several window lengths and repeat counts: how many replies each
rule stops, how many of those would have parsed (a reply the stop turns into a failure), and
the share of judge tokens saved, against decoding to the end (the baseline).

    python bench/json_loops.py [--samples 16] [--model qwen2.5-0.5b] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ragas_judge import squad_samples
from verirag.core.settings import Settings
from verirag.generators import json_grammar
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.pipeline.evaluation.ragas_adapter import RagasScorer
from verirag.retrievers.encoders import SentenceTransformerEncoder


class Reply:
    def __init__(self, tokens: list[int], parsed: bool, cap: int) -> None:
        self.tokens, self.parsed, self.cap = tokens, parsed, cap


class UnstoppedGenerator(LlamaCppGenerator):
    """Decodes every JSON reply to its end or the cap, and keeps its tokens."""

    replies: list[Reply]

    def generate_json(self, prompt: str, schema: dict[str, Any], max_tokens: int = 512) -> str:
        saved = json_grammar.looping
        json_grammar.looping = lambda *_a, **_k: False  # the decoder reads the module's name
        try:
            text = super().generate_json(prompt, schema, max_tokens)
        finally:
            json_grammar.looping = saved
        try:
            json.loads(text)
            parsed = True
        except json.JSONDecodeError:
            parsed = False
        self.replies.append(Reply(self._tokens(text), parsed, max_tokens))
        return text


def first_stop(tokens: list[int], span: int, seen: int) -> int | None:
    packed = b""
    for n, token in enumerate(tokens, 1):
        packed += token.to_bytes(4, "little", signed=True)
        if json_grammar.looping(packed, span, seen):
            return n
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--data", type=Path, default=None, help="SQuAD JSON (default: the shared SQuAD v1.1 dev)"
    )
    args = parser.parse_args()
    samples = squad_samples(args.data, args.samples, args.seed, Path(__file__).name)
    settings = Settings()
    generator = UnstoppedGenerator(args.model, settings=settings)
    generator.replies = []
    scorer = RagasScorer(generator, SentenceTransformerEncoder("minilm", settings=settings))
    for sample in samples:
        scorer.score(sample)
    replies = generator.replies
    total = sum(len(r.tokens) for r in replies)
    capped = [r for r in replies if len(r.tokens) >= r.cap]
    print(
        f"RAGAS judge replies, {args.model}, {args.samples} SQuAD samples (seed {args.seed}): "
        f"{len(replies)} replies, {sum(r.parsed for r in replies)} parse, {len(capped)} ran "
        f"to the cap; {total} tokens decoded to the end (the baseline)"
    )
    for span in (32, json_grammar.LOOP_SPAN):
        for seen in (3, 4, 5, 6, 8):
            stops = [(r, first_stop(r.tokens, span, seen)) for r in replies]
            stopped = [(r, n) for r, n in stops if n is not None]
            saved = sum(len(r.tokens) - n for r, n in stopped)
            shipped = (
                " (shipped)"
                if (span, seen)
                == (
                    json_grammar.LOOP_SPAN,
                    json_grammar.LOOP_SEEN,
                )
                else ""
            )
            print(
                f"window {span}, seen {seen}{shipped}: stops {len(stopped)} "
                f"({sum(len(r.tokens) >= r.cap for r, _ in stopped)} of them at the cap, "
                f"{sum(r.parsed for r, _ in stopped)} that would have parsed); judge tokens "
                f"{(total - saved) / total:.3f} of the baseline"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
