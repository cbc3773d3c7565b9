"""llama.cpp backend (GGUF): the CPU default. Logprobs come from llama.cpp itself.

llama-cpp-python keeps the KV cache of the previous prompt and reuses its longest common
prefix, so prompts that share the system message and sources (answer, then each judge
question) pay for the sources once. Saved states of other prompts (`prompt_states`), JSON
decoding under a grammar (`json_grammar`) and the logprob math (`logprobs`) live beside it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from verirag.core.compute import checkpoint, model_call, model_stream
from verirag.core.device import cpu_threads, offline_env
from verirag.core.records import Message
from verirag.core.registry import ModelError, resolve_model
from verirag.core.settings import Settings
from verirag.generators.base import Generator, StopScanner, StreamEvent, TokenLogprob
from verirag.generators.json_grammar import JsonDecoder, LoopWatch
from verirag.generators.logprobs import batch_logprobs
from verirag.generators.params import GenerationError, GenerationParams, check_fits
from verirag.generators.prompt_states import PromptStates


def chat_formatter(llm: Any, path: str) -> Any:
    """The GGUF's own chat template (a weights-free `vocab_only` load is enough)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise GenerationError(f"{path} carries no chat template")
    eos = llm._model.token_get_text(llm.token_eos())
    bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
    return Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)


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
        self._json = JsonDecoder()
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
            self._formatter = chat_formatter(llm, path)
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
        check_fits(n_prompt, max_tokens, self.settings.n_ctx)

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
            common = self.prompt_states.restore(llm, tokens, common, self._kept)
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
        if self.prompt_states is not None:
            self.prompt_states.save(llm, tokens)

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
            # The last prompt position's row gives the first token's logprob: keep it. With
            # the whole prompt cached, `llm.generate` samples without evaluating it again.
            self._prefill(tokens, keep_from=len(tokens) - 1)
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
            # Rows: the prompt's last position (`_prefill`) and every sampled token.
            self._kept[len(tokens) - 1 : llm.n_tokens] = True
            out = [
                TokenLogprob(piece, logprob, tuple((self._piece(i, []), v) for i, v in top))
                for piece, (logprob, top) in zip(
                    pieces, batch_logprobs(llm.scores, rows, generated), strict=True
                )
            ]
            yield StreamEvent.last(scanner.text, out, finish, len(tokens), started, first)

    @model_call
    def generate_json(self, prompt: str, schema: dict[str, Any], max_tokens: int = 512) -> str:
        """Greedy completion constrained by a JSON-schema grammar: the text always parses as
        JSON of that shape unless it is cut off at `max_tokens` or where it began to loop
        (`json_grammar.looping`); then it does not parse, and the caller must count that as a
        failure, not guess. The grammar checks the argmax before the whole vocabulary (see
        `json_grammar`): the tokens of llama.cpp's own sampler chain
        (`generate_json_reference`), at a fraction of the cost."""
        with self._lock:
            llm = self.llm
            grammar = self._json.grammar(schema)
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), max_tokens)
            self._prefill(tokens, keep_from=len(tokens) - 1)
            generated = self._json.decode(llm, grammar, max_tokens, self._is_end, self._kept)
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
            grammar = self._json.grammar(schema)
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), max_tokens)
            self._prefill(tokens, keep_from=len(tokens) - 1)
            generated: list[int] = []
            watch = LoopWatch()
            for token in llm.generate(
                tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, grammar=grammar
            ):
                if self._is_end(token) or len(generated) >= max_tokens:
                    break
                generated.append(token)
                if watch.add(token):
                    break
            self._kept[len(tokens) - 1 : llm.n_tokens] = True
            text: bytes = llm.detokenize(generated)
            return text.decode("utf-8", errors="replace")

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
                    tail, batch_logprobs(self.llm.scores, rows, tail), strict=True
                )
            ]

    @model_call
    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        with self._lock:
            tokens = self._tokens(prompt)
            self._check_fits(len(tokens), 1)
            self._prefill(tokens, keep_from=len(tokens) - 1)
            ((_, top),) = batch_logprobs(self.llm.scores, [len(tokens) - 1], [None], k)
            out: dict[str, float] = {}
            for token, logprob in top:
                piece = self._piece(token, [])
                out[piece] = max(logprob, out.get(piece, -math.inf))
            return out
