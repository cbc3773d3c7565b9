"""transformers backend: any causal LM transformers can load (HF directory, cached hub id,
or a GGUF file, dequantised), on CPU or CUDA. Logprobs come from the logits.

On CPU the bundled GGUFs run several times faster through llama.cpp; this backend is for
GPUs and for models that only exist as Hugging Face checkpoints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from verirag.core.compute import checkpoint, model_call, model_stream
from verirag.core.device import torch_runtime
from verirag.core.records import Message
from verirag.core.settings import Settings
from verirag.generators.base import Generator, StopScanner, StreamEvent, TokenLogprob
from verirag.generators.params import GenerationError, GenerationParams

TOP_ALTERNATIVES = 5


class TransformersGenerator(Generator):
    def __init__(self, model: str, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.model_spec = model
        self.name = f"transformers:{Path(model).name if Path(model).exists() else model}"
        self._model: Any = None
        self._tok: Any = None
        self._device = "cpu"
        self._lock = threading.RLock()

    def warm_up(self) -> None:
        if self._model is None:
            self._load()

    @model_call  # loads where it will run; callers of a loaded model never wait here
    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            self._device = torch_runtime(self.settings.threads, self.settings.device)
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            dtype = torch.float16 if self._device == "cuda" else torch.float32
            kwargs: dict[str, Any] = {"local_files_only": True}
            source = self.model_spec
            if source.endswith(".gguf"):
                kwargs["gguf_file"] = Path(source).name
                source = str(Path(source).parent)
            try:
                self._tok = AutoTokenizer.from_pretrained(source, **kwargs)
                model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
            except OSError as exc:
                raise GenerationError(
                    f"cannot load '{self.model_spec}' with transformers offline: {exc}"
                ) from exc
            model.to(self._device)
            self._model = model.eval()

    def render(self, messages: Sequence[Message]) -> str:
        self.warm_up()
        prompt: str = self._tok.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            tokenize=False,
            add_generation_prompt=True,
        )
        return prompt

    def _ids(self, text: str) -> list[int]:
        self.warm_up()
        ids: list[int] = self._tok(text, add_special_tokens=False)["input_ids"]
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def _piece(self, token: int) -> str:
        piece: str = self._tok.decode([token])
        return piece

    def _top(self, logp: Any) -> tuple[tuple[str, float], ...]:
        values, indices = logp.topk(TOP_ALTERNATIVES)
        return tuple((self._piece(int(i)), float(v)) for v, i in zip(values, indices, strict=True))

    def _end_ids(self) -> set[int]:
        ends = {self._tok.eos_token_id}
        config = getattr(self._model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None)
        ends.update(eos if isinstance(eos, list) else [eos])
        return {e for e in ends if e is not None}

    @model_stream
    def stream(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]:
        import torch

        with self._lock, torch.inference_mode():
            ids = self._ids(prompt)
            limit = getattr(self._model.config, "max_position_embeddings", None)
            if limit and len(ids) + params.max_tokens > limit:
                raise GenerationError(
                    f"prompt of {len(ids)} tokens plus max_tokens {params.max_tokens} exceeds "
                    f"the model's {limit} positions"
                )
            generator = torch.Generator(device=self._device).manual_seed(params.seed)
            ends = self._end_ids()
            started = time.perf_counter()
            first: float | None = None
            past: Any = None
            step_input = torch.tensor([ids], device=self._device)
            counts: dict[int, int] = {}
            generated: list[int] = []
            out: list[TokenLogprob] = []
            scanner = StopScanner(params.stop)
            decoded, finish = "", "length"
            for _ in range(params.max_tokens):
                checkpoint()
                result = self._model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = result.past_key_values
                logits = result.logits[0, -1].float()
                logp = torch.log_softmax(logits, dim=-1)
                token = self._choose(logits, params, counts, generator)
                if first is None:
                    first = time.perf_counter() - started
                if token in ends:
                    finish = "stop"
                    break
                counts[token] = counts.get(token, 0) + 1
                generated.append(token)
                # Decoding the whole sequence keeps multi-token characters intact.
                new_text = self._tok.decode(generated)
                piece, decoded = new_text[len(decoded) :], new_text
                out.append(TokenLogprob(piece, float(logp[token]), self._top(logp)))
                step_input = torch.tensor([[token]], device=self._device)
                ready, stopped = scanner.push(piece)
                if stopped:
                    finish = "stop"
                    break
                if ready:
                    yield StreamEvent(ready)
            if rest := scanner.rest():
                yield StreamEvent(rest)
            yield StreamEvent.last(scanner.text, out, finish, len(ids), started, first)

    @staticmethod
    def _choose(
        logits: Any, params: GenerationParams, counts: dict[int, int], generator: Any
    ) -> int:
        import torch

        adjusted = logits.clone()
        if counts and (params.frequency_penalty or params.presence_penalty):
            idx = torch.tensor(list(counts), device=logits.device)
            freq = torch.tensor(list(counts.values()), device=logits.device, dtype=logits.dtype)
            adjusted[idx] -= params.frequency_penalty * freq + params.presence_penalty
        if params.greedy:
            return int(adjusted.argmax())
        adjusted = adjusted / params.temperature
        if params.top_k:
            kth = torch.topk(adjusted, params.top_k).values[-1]
            adjusted[adjusted < kth] = -float("inf")
        probs = torch.softmax(adjusted, dim=-1)
        if params.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(0) - sorted_p < params.top_p
            mask = torch.zeros_like(probs, dtype=torch.bool)
            mask[order[keep]] = True
            probs = torch.where(mask, probs, torch.zeros_like(probs))
            probs = probs / probs.sum()
        return int(torch.multinomial(probs, 1, generator=generator))

    @model_call
    def score(self, prompt: str, continuation: str) -> list[TokenLogprob]:
        import torch

        with self._lock, torch.inference_mode():
            head, tail = self._ids(prompt), self._ids(continuation)
            if not tail:
                return []
            logits = self._model(input_ids=torch.tensor([head + tail], device=self._device)).logits
            logp = torch.log_softmax(logits[0].float(), dim=-1)
            return [
                TokenLogprob(
                    self._piece(tok),
                    float(logp[len(head) + j - 1, tok]),
                    self._top(logp[len(head) + j - 1]),
                )
                for j, tok in enumerate(tail)
            ]

    @model_call
    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        import torch

        with self._lock, torch.inference_mode():
            ids = self._ids(prompt)
            logits = self._model(input_ids=torch.tensor([ids], device=self._device)).logits
            logp = torch.log_softmax(logits[0, -1].float(), dim=-1)
            values, indices = logp.topk(k)
            out: dict[str, float] = {}
            for v, i in zip(values, indices, strict=True):
                piece = self._piece(int(i))
                out[piece] = max(float(v), out.get(piece, -float("inf")))
            return out
