"""llama.cpp backend (GGUF): the CPU default. Logprobs come from llama.cpp itself.

llama-cpp-python keeps the KV cache of the previous prompt and reuses its longest common
prefix, so prompts that share the system message and sources (answer, then each judge
question) pay for the sources once.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from verirag.core.compute import checkpoint, model_call, model_stream
from verirag.core.device import cpu_threads, offline_env
from verirag.core.records import Message
from verirag.core.registry import ModelError, resolve_model
from verirag.core.settings import Settings
from verirag.generators.base import Generator, StopScanner, StreamEvent, TokenLogprob
from verirag.generators.params import GenerationError, GenerationParams

TOP_ALTERNATIVES = 5
NEAR_MAX = 12.0  # nats under a row's maximum searched first for the top k


# JSON whitespace: nothing, a space, or a line break and indentation (llama.cpp's rule).
SPACE_RULE = r'space ::= | " " | "\n"{1,2} [ \t]{0,20}'
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


class LlamaCppGenerator(Generator):
    def __init__(self, model: str = "qwen2.5-1.5b", *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.model_spec = model
        self.name = f"llama.cpp:{model}"
        self._llm: Any = None
        self._formatter: Any = None
        self._lock = threading.RLock()
        self._kept = np.zeros(0, dtype=bool)
        self._pieces: dict[int, str] = {}  # token id -> text, for top alternatives
        self._grammars: dict[str, Any] = {}  # compiled once per JSON schema
        # The whole vocabulary as llama.cpp candidates (buffer, its numpy view, token ids).
        self._candidates: tuple[Any, np.ndarray, np.ndarray] | None = None
        self.prompt_states: PromptStates | None = None  # off unless `keep_prompt_states`

    def warm_up(self) -> None:
        if self._llm is None:
            self._load()

    @model_call  # loads where it will run; callers of a loaded model never wait here
    def _load(self) -> None:
        with self._lock:
            if self._llm is not None:
                return
            offline_env()
            try:
                from llama_cpp import Llama
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter
            except ImportError as exc:
                raise ModelError(
                    "the llama.cpp runtime is not installed (GGUF generators need it): "
                    "pip install 'verirag[llm]' (compiles llama-cpp-python once; needs a C/C++ "
                    "compiler and CMake), or set VERIRAG_GENERATOR_BACKEND=transformers"
                ) from exc
            path = resolve_model(self.model_spec, self.settings.models_dir, kind="generator")
            if not path.endswith(".gguf"):
                raise GenerationError(
                    f"llama.cpp needs a .gguf file; '{self.model_spec}' resolved to {path}. "
                    "Use generator_backend='transformers' for Hugging Face models."
                )
            llm = Llama(
                model_path=path,
                n_ctx=self.settings.n_ctx,
                n_threads=cpu_threads(self.settings.threads),
                n_gpu_layers=-1 if self.settings.device in ("auto", "cuda") else 0,
                logits_all=True,  # per-token logprobs of prompts (teacher forcing) need it
                seed=0,
                verbose=False,
            )
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise GenerationError(f"{path} carries no chat template")
            eos = llm._model.token_get_text(llm.token_eos())
            bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
            self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
            # Which positions' logits rows in llm.scores are current (see `_prefill`).
            self._kept = np.zeros(self.settings.n_ctx, dtype=bool)
            self._llm = llm

    def keep_prompt_states(self, max_mib: float = 512) -> PromptStates:
        """Keep the KV caches of recent long prompts (up to `max_mib`) and start each prompt
        from the one sharing the longest prefix. Worth it for workloads that cycle through
        a few long templates (LLM-as-judge evaluations); off by default because the
        answering pipeline's prompts share little beyond what the live cache holds."""
        self.warm_up()  # loads on the compute thread, which needs this lock
        with self._lock:
            llm = self.llm
            if llm._is_recurrent or llm._is_hybrid:
                raise GenerationError("saved prompt states need a transformer KV cache")
            self.prompt_states = PromptStates(int(max_mib * 2**20))
            return self.prompt_states

    @property
    def llm(self) -> Any:
        self.warm_up()
        return self._llm

    def render(self, messages: Sequence[Message]) -> str:
        self.warm_up()
        result = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        prompt: str = result.prompt
        return prompt

    def _tokens(self, text: str) -> list[int]:
        tokens: list[int] = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return tokens

    def count_tokens(self, text: str) -> int:
        return len(self._tokens(text))

    def _check_fits(self, n_prompt: int, max_tokens: int) -> None:
        if n_prompt + max_tokens > self.settings.n_ctx:
            raise GenerationError(
                f"prompt of {n_prompt} tokens plus max_tokens {max_tokens} exceeds the "
                f"context window of {self.settings.n_ctx} (n_ctx)"
            )

    def _batch_logprobs(
        self,
        rows: list[int],
        tokens: Sequence[int | None],
        k: int = TOP_ALTERNATIVES,
        block: int = 64,
    ) -> list[tuple[float, list[tuple[int, float]]]]:
        """Log-softmax of many logits rows at once (float32, vectorised).

        llama-cpp-python's own logprobs sort the whole vocabulary in Python for every token
        (150k entries for Qwen), which cut decoding speed several times here; a full
        argpartition per row still cost 2 ms, so the top k are picked among the few entries
        near the row's maximum (exact whenever at least k are there).
        """
        out: list[tuple[float, list[tuple[int, float]]]] = []
        scores = self.llm.scores
        for i in range(0, len(rows), block):
            idx = rows[i : i + block]
            contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
            # A slice is a view; fancy indexing would copy 600 KB per row.
            logits = scores[idx[0] : idx[0] + len(idx)] if contiguous else scores[idx]
            peak = logits.max(axis=1)
            lse = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1, dtype=np.float64))
            for r in range(len(idx)):
                row = logits[r]
                near = np.flatnonzero(row >= peak[r] - NEAR_MAX)
                if near.size < k:
                    near = np.argpartition(row, -k)[-k:]
                elif near.size > k:
                    near = near[np.argpartition(row[near], -k)[-k:]]
                best = near[np.argsort(-row[near], kind="stable")]
                token = tokens[i + r]
                chosen = float(row[token] - lse[r]) if token is not None else math.nan
                out.append((chosen, [(int(t), float(row[t] - lse[r])) for t in best]))
        return out

    def _piece(self, token: int, previous: list[int]) -> str:
        if not previous and (cached := self._pieces.get(token)) is not None:
            return cached
        piece: bytes = self.llm.detokenize([token], prev_tokens=previous)
        text = piece.decode("utf-8", errors="ignore")
        if not previous:
            self._pieces[token] = text
        return text

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    def _prefill(self, tokens: list[int], keep_from: int | None = None) -> None:
        """Evaluate `tokens`, reusing the longest prefix already in the KV cache.

        Logits rows (in `llm.scores`) are kept only for positions from `keep_from` on
        (default: none): computing and copying a 150k-entry row for every prompt token
        is a large share of prefill, and only scored continuations need them.
        """
        llm = self.llm
        keep_from = len(tokens) if keep_from is None else keep_from
        common = 0
        limit = min(llm.n_tokens, len(tokens) - 1)  # always evaluate at least one token
        cached = llm._input_ids
        while common < limit and cached[common] == tokens[common]:
            common += 1
        if self.prompt_states is not None:
            common = self._restore_prompt(tokens, common)
        if common > keep_from:
            # Cached positions whose rows were skipped must be evaluated again.
            stale = np.flatnonzero(~self._kept[keep_from:common])
            if stale.size:
                common = keep_from + int(stale[0])
        llm.n_tokens = common
        split = max(common, min(keep_from, len(tokens)))
        try:
            if split > common:
                llm._logits_all = False
                llm.eval(tokens[common:split])
                self._kept[common:split] = False
        finally:
            llm._logits_all = True
        if split < len(tokens):
            llm.eval(tokens[split:])
            self._kept[split : len(tokens)] = True
        if self.prompt_states is not None and len(tokens) >= MIN_SAVED_PROMPT:
            self._save_prompt(tokens)

    def _restore_prompt(self, tokens: list[int], common: int) -> int:
        """Load the saved state sharing the longest prefix with `tokens` when it beats the
        live cache's `common` prefix; returns the prefix now in the cache."""
        import llama_cpp

        assert self.prompt_states is not None
        llm = self.llm
        entry, shared = self.prompt_states.best(np.asarray(tokens, dtype=np.intc))
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
        self._kept[:shared] = False  # a state carries no logits rows
        self.prompt_states.hits += 1
        self.prompt_states.tokens_reused += shared - common
        return shared

    def _save_prompt(self, tokens: list[int]) -> None:
        import ctypes

        import llama_cpp

        assert self.prompt_states is not None
        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        if size > self.prompt_states.max_bytes:
            return
        data = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx, data, size, 0) == size:
            self.prompt_states.add(np.asarray(tokens, dtype=np.intc), data)

    @model_stream
    def stream(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]:
        with self._lock:
            llm = self.llm
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), params.max_tokens)
            started = time.perf_counter()
            first: float | None = None
            generated: list[int] = []
            scanner = StopScanner(params.stop)
            rows: list[int] = []
            pieces: list[str] = []
            finish = "length"
            llm.set_seed(params.seed)
            self._prefill(tokens)
            sampler = llm.generate(
                tokens,
                top_k=params.top_k,
                top_p=params.top_p,
                min_p=0.0,
                temp=params.temperature,
                repeat_penalty=1.0,
                frequency_penalty=params.frequency_penalty,
                presence_penalty=params.presence_penalty,
            )
            for token in sampler:
                checkpoint()
                if first is None:
                    first = time.perf_counter() - started
                if self._is_end(token):
                    finish = "stop"
                    break
                # The logits row stays in llm.scores (logits_all): logprobs are computed in
                # one batch after decoding, so they cost the token stream nothing.
                rows.append(llm.n_tokens - 1)
                piece = self._piece(token, [])
                generated.append(token)
                pieces.append(piece)
                ready, stopped = scanner.push(piece)
                if stopped:
                    finish = "stop"
                    break
                if ready:
                    yield StreamEvent(ready)
                if len(generated) >= params.max_tokens:
                    break
            if rest := scanner.rest():
                yield StreamEvent(rest)
            # llm.generate evaluated the prompt's last token and every sampled one with rows.
            self._kept[len(tokens) - 1 : llm.n_tokens] = True
            out = [
                TokenLogprob(piece, logprob, tuple((self._piece(i, []), v) for i, v in top))
                for piece, (logprob, top) in zip(
                    pieces, self._batch_logprobs(rows, generated), strict=True
                )
            ]
            yield StreamEvent.last(scanner.text, out, finish, len(tokens), started, first)

    @model_call
    def generate_json(self, prompt: str, schema: dict[str, Any], max_tokens: int = 512) -> str:
        """Greedy completion constrained by a JSON-schema grammar: the text always parses as
        JSON of that shape unless it is cut off at `max_tokens` (then it does not parse, and
        the caller must count that as a failure, not guess).

        llama.cpp's sampler chain runs the grammar over the whole vocabulary for every
        token (150k candidates for Qwen: 10-50 ms, as long as the model's own step on two
        cores). Greedy decoding only needs to know whether the argmax is allowed, so the
        grammar checks that one token first and the full vocabulary only when it is
        rejected: the same tokens as the chain, at a fraction of the cost.
        """
        import ctypes

        import llama_cpp

        with self._lock:
            llm = self.llm
            grammar = self._grammar(schema)
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), max_tokens)
            self._prefill(tokens, keep_from=len(tokens) - 1)
            sampler = llama_cpp.llama_sampler_init_grammar(
                llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
            )
            if not sampler:
                raise GenerationError("llama.cpp could not compile the JSON-schema grammar")
            one = (llama_cpp.llama_token_data * 1)()
            one_array = llama_cpp.llama_token_data_array(
                data=one, size=1, selected=-1, sorted=False
            )
            generated: list[int] = []
            try:
                while len(generated) < max_tokens:
                    checkpoint()
                    row = llm.scores[llm.n_tokens - 1]
                    token = int(row.argmax())
                    one[0] = llama_cpp.llama_token_data(token, float(row[token]), 0.0)
                    one_array.size, one_array.selected = 1, -1
                    llama_cpp.llama_sampler_apply(sampler, ctypes.byref(one_array))
                    if not math.isfinite(one[0].logit):
                        token = self._grammar_argmax(sampler, row)
                    llama_cpp.llama_sampler_accept(sampler, token)
                    if self._is_end(token):
                        break
                    generated.append(token)
                    llm.eval([token])
                    self._kept[llm.n_tokens - 1] = True
            finally:
                llama_cpp.llama_sampler_free(sampler)
            text: bytes = llm.detokenize(generated)
            return text.decode("utf-8", errors="replace")

    @model_call
    def generate_json_reference(
        self, prompt: str, schema: dict[str, Any], max_tokens: int = 512
    ) -> str:
        """`generate_json` through llama.cpp's own sampler chain (the grammar run over the
        whole vocabulary at every token): what the fast path is tested and timed against."""
        with self._lock:
            llm = self.llm
            grammar = self._grammar(schema)
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), max_tokens)
            self._prefill(tokens)
            generated: list[int] = []
            for token in llm.generate(
                tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, grammar=grammar
            ):
                if self._is_end(token) or len(generated) >= max_tokens:
                    break
                generated.append(token)
            self._kept[len(tokens) - 1 : llm.n_tokens] = True
            text: bytes = llm.detokenize(generated)
            return text.decode("utf-8", errors="replace")

    def _grammar(self, schema: dict[str, Any]) -> Any:
        # Not sort_keys: the grammar writes properties in the schema's order, the order the
        # prompt's examples show. Alphabetical order made a small model commit to a verdict
        # before its reason (or answer an empty list rather than start with "reason").
        key = json.dumps(schema)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

            gbnf = json_schema_to_gbnf(key)
            # llama-cpp-python's converter allows one optional space between tokens, so the
            # model must write compact JSON, while prompts (RAGAS's examples among them)
            # show indented JSON; a small model forced off its examples' layout answered
            # `{"statements": []}` where it wrote the full list unconstrained. llama.cpp's
            # own converter allows a newline and indentation, bounded, as here.
            gbnf, n = re.subn(r'(?m)^space ::= " "\?$', lambda _: SPACE_RULE, gbnf)
            if n != 1:
                raise GenerationError("unexpected JSON grammar layout (no `space` rule)")
            grammar = LlamaGrammar.from_string(gbnf, verbose=False)
            self._grammars[key] = grammar
        return grammar

    def _grammar_argmax(self, sampler: Any, row: np.ndarray) -> int:
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

    @model_call
    def score(self, prompt: str, continuation: str) -> list[TokenLogprob]:
        with self._lock:
            head = self._tokens(prompt)
            tail = self._tokens(continuation)
            if not tail:
                return []
            self._check_fits(len(head) + len(tail), 1)
            self._prefill(head + tail, keep_from=max(0, len(head) - 1))
            rows = [len(head) + j - 1 for j in range(len(tail))]  # logits predicting tail[j]
            return [
                TokenLogprob(
                    self._piece(token, []),
                    logprob,
                    tuple((self._piece(t, []), v) for t, v in top),
                )
                for token, (logprob, top) in zip(
                    tail, self._batch_logprobs(rows, tail), strict=True
                )
            ]

    @model_call
    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        with self._lock:
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), 1)
            self._prefill(tokens, keep_from=len(tokens) - 1)
            ((_, top),) = self._batch_logprobs([len(tokens) - 1], [None], k)
            out: dict[str, float] = {}
            for token, logprob in top:
                piece = self._piece(token, [])
                out[piece] = max(logprob, out.get(piece, -math.inf))
            return out
