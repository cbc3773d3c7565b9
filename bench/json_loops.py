"""Looping judge replies: what the JSON decoder's loop stop would cut, and what it saves.

Scores SQuAD samples (built as `bench/ragas_judge.py` builds them) with the 4 RAGAS metrics,
decoding every judge reply *without* the loop stop, then replays each reply's tokens against
`json_grammar.LoopWatch` for several window lengths and repeat counts: how many replies each
rule stops, how many of those would have parsed (a reply the stop turns into a failure), and
the share of judge tokens saved, against decoding to the end (the baseline).

    python bench/json_loops.py [--samples 16] [--model qwen2.5-0.5b] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ragas_judge import squad_samples
from verirag.core.settings import Settings
from verirag.generators import json_grammar
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.pipeline.evaluation.ragas_adapter import RagasScorer
from verirag.retrievers.encoders import SentenceTransformerEncoder


@dataclass(frozen=True)
class Reply:
    tokens: list[int]
    parsed: bool
    cap: int


class UnstoppedGenerator(LlamaCppGenerator):
    """Decodes every JSON reply to its end or the cap, and keeps its tokens."""

    replies: list[Reply]

    def generate_json(self, prompt: str, schema: dict[str, Any], max_tokens: int = 512) -> str:
        with patch.object(json_grammar.LoopWatch, "add", return_value=False):
            text = super().generate_json(prompt, schema, max_tokens)
        try:
            json.loads(text)
            parsed = True
        except json.JSONDecodeError:
            parsed = False
        self.replies.append(Reply(self._tokens(text), parsed, max_tokens))
        return text


def first_stop(tokens: list[int], span: int, seen: int) -> int | None:
    """How many tokens of a reply the decoder would keep under the rule (None: all)."""
    watch = json_grammar.LoopWatch(span, seen)
    return next((n for n, token in enumerate(tokens, 1) if watch.add(token)), None)


SHIPPED = (json_grammar.LOOP_SPAN, json_grammar.LOOP_SEEN)


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
            shipped = " (shipped)" if (span, seen) == SHIPPED else ""
            print(
                f"window {span}, seen {seen}{shipped}: stops {len(stopped)} "
                f"({sum(len(r.tokens) >= r.cap for r, _ in stopped)} of them at the cap, "
                f"{sum(r.parsed for r, _ in stopped)} that would have parsed); judge tokens "
                f"{(total - saved) / total:.3f} of the baseline"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
