"""Greedy decoding constrained by a JSON-schema grammar, on a loaded llama-cpp-python model.

llama.cpp's sampler chain runs the grammar over the whole vocabulary for every token (150k
candidates for Qwen: 10-50 ms, as long as the model's own step on two cores). Greedy
decoding only needs to know whether the argmax is allowed, so the grammar checks that one
token first and the full vocabulary only when it is rejected: the same tokens as the chain,
at a fraction of the cost.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from verirag.core.compute import checkpoint
from verirag.generators.params import GenerationError

# JSON whitespace: nothing, a space, or a line break and indentation (llama.cpp's rule).
SPACE_RULE = r'space ::= | " " | "\n"{1,2} [ \t]{0,20}'

# A greedy reply whose last LOOP_SPAN tokens already stand LOOP_SEEN - 1 times earlier in it is
# looping: small judges repeat one item or clause until the token cap (the 0.5B's context-
# recall replies ran to 768 tokens, bench/RESULTS.md), and a reply cut off there does not
# parse anyway. 64 tokens is longer than the JSON between two list items (about 20), so a
# window holds the items' text, never the layout alone. Six: replies that repeat an item
# three or four times and then close do occur and parse (5 of 112 0.5B replies); on the
# replies measured, six stopped only replies that ran to the cap, and one that repeated a
# clause dozens of times before it closed (bench/RESULTS.md, "Looping judge replies").
LOOP_SPAN = 64
LOOP_SEEN = 6


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """The GBNF grammar of JSON text of the shape `schema` describes."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    # Not sort_keys: the grammar writes properties in the schema's order, the order the
    # prompt's examples show. Alphabetical order made a small model commit to a verdict
    # before its reason (or answer an empty list rather than start with "reason").
    gbnf = json_schema_to_gbnf(json.dumps(schema))
    # llama-cpp-python's converter allows one optional space between tokens, so the
    # model must write compact JSON, while prompts (RAGAS's examples among them)
    # show indented JSON; a small model forced off its examples' layout answered
    # `{"statements": []}` where it wrote the full list unconstrained. llama.cpp's
    # own converter allows a newline and indentation, bounded, as here.
    gbnf, n = re.subn(r'(?m)^space ::= " "\?$', lambda _: SPACE_RULE, gbnf)
    if n != 1:
        raise GenerationError("unexpected JSON grammar layout (no `space` rule)")
    return gbnf


def looping(tokens: bytes | bytearray, span: int = LOOP_SPAN, seen: int = LOOP_SEEN) -> bool:
    """Whether the last `span` of `tokens` (token ids packed as int32) occur `seen` times in
    it, overlapping occurrences counted, so a loop shorter than `span` is found as soon as a
    window of it has come round `seen` times. Hand-written: a loop check on token ids is not
    what a library offers; `bytes.find` keeps it in C."""
    width = 4 * span
    if len(tokens) < width + (seen - 1) * 4:
        return False
    window = tokens[-width:]
    count, start = 0, 0
    while (found := tokens.find(window, start)) >= 0:
        if found % 4 == 0:  # a match across token boundaries is no match
            count += 1
            if count >= seen:
                return True
        start = found + 1
    return False


class LoopWatch:
    """One reply's tokens so far, packed for `looping`: `add` each token as it is decoded."""

    def __init__(self, span: int = LOOP_SPAN, seen: int = LOOP_SEEN) -> None:
        self.span, self.seen = span, seen
        self._packed = bytearray()

    def add(self, token: int) -> bool:
        """Whether the reply, `token` included, is looping."""
        self._packed += token.to_bytes(4, "little", signed=True)
        return looping(self._packed, self.span, self.seen)


class JsonDecoder:
    """Compiled grammars and the whole-vocabulary candidate buffer of one model, kept
    between calls because building either costs more than a decoding step."""

    def __init__(self) -> None:
        self._grammars: dict[str, Any] = {}  # compiled once per JSON schema
        # The whole vocabulary as llama.cpp candidates (buffer, its numpy view, token ids).
        self._candidates: tuple[Any, np.ndarray, np.ndarray] | None = None

    def grammar(self, schema: dict[str, Any]) -> Any:
        """The compiled `LlamaGrammar` for `schema`."""
        key = json.dumps(schema)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import LlamaGrammar

            grammar = LlamaGrammar.from_string(schema_to_gbnf(schema), verbose=False)
            self._grammars[key] = grammar
        return grammar

    def decode(
        self,
        llm: Any,
        grammar: Any,
        max_tokens: int,
        is_end: Callable[[int], bool],
        kept: np.ndarray,
    ) -> list[int]:
        """Greedy tokens after the prompt `llm` has just evaluated (its last logits row
        kept), up to an end token, `max_tokens` or a loop (`looping`). Marks each evaluated
        position in `kept` (positions whose logits rows in `llm.scores` are current)."""
        import ctypes

        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not sampler:
            raise GenerationError("llama.cpp could not compile the JSON-schema grammar")
        one = (llama_cpp.llama_token_data * 1)()
        one_array = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        generated: list[int] = []
        watch = LoopWatch()
        try:
            while len(generated) < max_tokens:
                checkpoint()
                row = llm.scores[llm.n_tokens - 1]
                token = int(row.argmax())
                one[0] = llama_cpp.llama_token_data(token, float(row[token]), 0.0)
                one_array.size, one_array.selected = 1, -1
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(one_array))
                if not math.isfinite(one[0].logit):
                    token = self._allowed_argmax(sampler, row)
                llama_cpp.llama_sampler_accept(sampler, token)
                if is_end(token):
                    break
                generated.append(token)
                if watch.add(token):
                    break
                llm.eval([token])
                kept[llm.n_tokens - 1] = True
        finally:
            llama_cpp.llama_sampler_free(sampler)
        return generated

    def _allowed_argmax(self, sampler: Any, row: np.ndarray) -> int:
        """The best token the grammar allows, the grammar run over the whole vocabulary."""
        import ctypes

        import llama_cpp

        if self._candidates is None:
            n = len(row)
            buffer = (llama_cpp.llama_token_data * n)()
            fields = [("id", np.intc), ("logit", np.single), ("p", np.single)]
            view = np.frombuffer(memoryview(buffer), dtype=np.dtype(fields))
            self._candidates = (buffer, view, np.arange(n, dtype=np.intc))
        buffer, view, ids = self._candidates
        # The grammar sampler may shrink or reorder the array, so each call starts afresh.
        view["id"] = ids
        view["logit"] = row
        view["p"] = 0.0
        array = llama_cpp.llama_token_data_array(
            data=buffer, size=len(view), selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        kept = view[: array.size]
        best = int(np.argmax(kept["logit"]))
        if not math.isfinite(float(kept["logit"][best])):
            raise GenerationError("the JSON-schema grammar allows no token here")
        return int(kept["id"][best])
