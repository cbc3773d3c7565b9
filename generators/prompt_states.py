"""Saved KV states of recent long prompts, restored by the longest prefix a new prompt shares.

The bookkeeping (`PromptStates.best`, `add`) needs no model; `restore` and `save` move a
state between the bookkeeping and a loaded llama-cpp-python `Llama`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SAVED_PROMPT = 256  # tokens; shorter prompts are cheaper to evaluate than to look up
MIN_RESTORE_GAIN = 64  # tokens a saved state must add over the live cache to be worth loading


@dataclass(eq=False)  # entries are found by identity; comparing arrays would be ambiguous
class _SavedPrompt:
    tokens: np.ndarray  # the prompt whose KV cache `data` holds (sequence 0)
    data: Any  # ctypes byte array from llama_state_seq_get_data


class PromptStates:
    """KV caches of earlier prompts, so a prompt that shares a long prefix with any of them
    (not only with the last one, which llama.cpp keeps anyway) skips evaluating it.

    Evaluation workloads interleave a few long fixed templates (each RAGAS metric's
    instructions and examples run to 700-1,000 tokens before the sample's own text); with
    only the live cache each switch of template re-evaluates its whole prefix. A saved
    sequence state is the prefix's K and V tensors (about 12 KB a token for qwen2.5-0.5b),
    loaded in milliseconds and truncated to the shared prefix.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: list[_SavedPrompt] = []  # least recently used first
        self.hits = 0
        self.tokens_reused = 0

    @property
    def size(self) -> int:
        return sum(len(e.data) for e in self._entries)

    def best(self, tokens: np.ndarray) -> tuple[_SavedPrompt | None, int]:
        """The saved prompt sharing the longest prefix with `tokens`, and that length."""
        best: _SavedPrompt | None = None
        best_len = 0
        for entry in self._entries:
            n = min(len(entry.tokens), len(tokens))
            differ = np.flatnonzero(entry.tokens[:n] != tokens[:n])
            common = int(differ[0]) if differ.size else n
            if common > best_len:
                best, best_len = entry, common
        if best is not None:
            self._entries.remove(best)
            self._entries.append(best)
        return best, best_len

    def add(self, tokens: np.ndarray, data: Any) -> None:
        # A saved prompt that the new one extends is dominated by it.
        self._entries = [
            e
            for e in self._entries
            if not (
                len(e.tokens) <= len(tokens) and np.array_equal(e.tokens, tokens[: len(e.tokens)])
            )
        ]
        self._entries.append(_SavedPrompt(tokens, data))
        while self._entries and self.size > self.max_bytes:
            self._entries.pop(0)

    def restore(self, llm: Any, tokens: list[int], common: int, kept: np.ndarray) -> int:
        """Load into `llm` the saved state sharing the longest prefix with `tokens` when it
        beats the live cache's `common` prefix; returns the prefix now in the cache.

        `kept` marks the positions whose logits rows in `llm.scores` are current.
        """
        import llama_cpp

        entry, shared = self.best(np.asarray(tokens, dtype=np.intc))
        shared = min(shared, len(tokens) - 1)  # the last token is evaluated for its logits
        if entry is None or shared < common + MIN_RESTORE_GAIN:
            return common
        ctx = llm._ctx.ctx
        memory = llama_cpp.llama_get_memory(ctx)
        llama_cpp.llama_memory_seq_rm(memory, 0, -1, -1)
        if not llama_cpp.llama_state_seq_set_data(ctx, entry.data, len(entry.data), 0):
            llm.n_tokens = 0  # nothing usable is left in the cache
            return 0
        llama_cpp.llama_memory_seq_rm(memory, 0, shared, -1)
        llm.input_ids[:shared] = entry.tokens[:shared]
        llm.n_tokens = shared
        kept[:shared] = False  # a state carries no logits rows
        self.hits += 1
        self.tokens_reused += shared - common
        return shared

    def save(self, llm: Any, tokens: list[int]) -> None:
        """Keep the KV cache `llm` holds for `tokens`, if long enough to be worth it."""
        import ctypes

        import llama_cpp

        if len(tokens) < MIN_SAVED_PROMPT:
            return
        ctx = llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        if size > self.max_bytes:
            return
        data = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx, data, size, 0) == size:
            self.add(np.asarray(tokens, dtype=np.intc), data)
