"""A generator without a model: scripted replies and judge probabilities, for testing the
orchestration and the verify sequence exactly."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import HashEncoder
from verirag.core.records import Message
from verirag.core.settings import Settings
from verirag.generators.base import Generator, StreamEvent, TokenLogprob
from verirag.generators.params import GenerationParams
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline


class ScriptedGenerator(Generator):
    """A generator whose judge answers come from a table: no model, deterministic."""

    name = "scripted"

    def __init__(
        self,
        p_yes: dict[str, float | None],
        reply: str = "",
        reply_p: float = 0.9,
        short: str = "",
        check: dict[str, float] | None = None,
        rewrite: str = "",
        direct: Sequence[str] = (),
    ) -> None:
        self.p_yes = p_yes
        self.reply = reply  # what `stream` generates for the answer prompt
        self.short = short  # ... and for the short-answer prompt that follows it
        self.reply_p = reply_p
        # The answer check's P(yes) by the answer it asks about; one not listed: undecided.
        self.check = check or {}
        self.rewrite = rewrite  # what `stream` generates for the follow-up rewrite prompt
        # What `stream` samples for the direct-answer prompt, by the sample's seed.
        self.direct = tuple(direct)
        self.calls: list[str] = []

    def warm_up(self) -> None:
        return None

    def render(self, messages: Sequence[Message]) -> str:
        return "\n".join(f"<{m.role}>{m.content}" for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        task = prompt.rsplit("<user>", 1)[-1]
        if "standalone question" in task:
            self.calls.append("rewrite")
            text = self.rewrite
        elif "as few words as possible" in task:
            self.calls.append("sample")
            text = self.direct[params.seed % len(self.direct)] if self.direct else ""
        else:
            text = self.short if "shortest words" in task else self.reply
            self.calls.append("generate")
        pieces = [p for p in re.split(r"(\s+)", text) if p]
        tokens = [TokenLogprob(p, math.log(self.reply_p)) for p in pieces]
        for piece in pieces:
            yield StreamEvent(piece)
        yield StreamEvent.last(text, tokens, "stop", len(prompt.split()), started, 0.0)

    def score(self, prompt: str, continuation: str) -> list[TokenLogprob]:
        self.calls.append("score-closed" if "SOURCES" not in prompt else "score-sources")
        p = 0.9 if "SOURCES" in prompt else 0.3  # the sources make the answer likelier
        return [TokenLogprob(w, math.log(p)) for w in continuation.split()]

    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        task = prompt.rsplit("SOURCES", 1)[-1]
        if "Proposed answer:" in task:
            self.calls.append("check")
            asked = task.split("Proposed answer:", 1)[1].split("\n", 1)[0].strip()
            if asked not in self.check:
                return {"maybe": math.log(0.9)}
            return {"yes": math.log(self.check[asked]), "no": math.log(1 - self.check[asked])}
        self.calls.append("judge")
        claim = next(c for c in self.p_yes if c in prompt.rsplit("SOURCES", 1)[-1])
        p = self.p_yes[claim]
        if p is None:
            return {"maybe": math.log(0.9)}
        return {"yes": math.log(p), "no": math.log(1 - p)}


def scripted_pipeline(
    root: Path,
    gen: ScriptedGenerator | None,
    files: Mapping[str, str],
    collection: str = "c",
    **overrides: Any,
) -> RagPipeline:
    """A `RagPipeline` over `files` (name -> text) indexed with the hashing encoder into
    `collection`, answering with `gen`; every retrieved source counts (no relevance floor)."""
    settings = Settings(
        **{
            "data_dir": root / "data",
            "embedder": "hash-test",
            "relevance_floor": -1.0,
            "top_k": 2,
            **overrides,
        }
    )
    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (docs / name).write_text(text + "\n")
    encoder = HashEncoder()
    IndexingPipeline(settings, encoder=encoder).run([docs], collection)  # type: ignore[arg-type]
    return RagPipeline(settings, encoder=encoder, generator=gen)  # type: ignore[arg-type]
