"""Generation and judging on an OpenAI-compatible completions server (vLLM, llama.cpp's server,
TGI): the same `Generator` contract as the in-process backends, logprobs included.

The prompt is rendered and counted locally, with the chat template and tokenizer of a local
copy of the server's model (`inference_tokenizer`, default the generator), so the server gets
exactly the string llama.cpp would have got in-process and completes it through
`/completions` (raw text in, not chat messages). The three signals map to the API as:

- answer tokens with top alternatives: `logprobs=5` on the streamed completion;
- the judge's next-token yes/no: `max_tokens=1, logprobs=k` (servers cap k: OpenAI at 5,
  vLLM at its `max_logprobs`, 20 by default);
- teacher-forced scores of a continuation: `echo=true` with `logprobs`, where the server
  supports it (llama.cpp's server and vLLM do; OpenAI's own API and TGI do not).

A signal the server does not give raises `SignalUnavailable`: callers report it as unknown
(the verifier's source lift, the judge's "unverified"), never a silent fallback to something
else. A server that is down, errors or stalls raises `InferenceServerError` within
`inference_timeout` seconds; it never hangs.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from verirag.core.compute import checkpoint
from verirag.core.records import Message
from verirag.core.registry import ModelError, resolve_model
from verirag.core.settings import Settings
from verirag.generators.base import (
    Generation,
    Generator,
    InferenceServerError,
    SignalUnavailable,
    StopScanner,
    StreamEvent,
    TokenLogprob,
)
from verirag.generators.params import GenerationError, GenerationParams, check_fits

TOP_ALTERNATIVES = 5


class LocalTemplate:
    """Chat template and tokenizer of a local copy of the server's model: a GGUF file read
    vocabulary-only (no weights), or a Hugging Face tokenizer directory."""

    def __init__(self, spec: str, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self._vocab: Any = None
        self._formatter: Any = None
        self._hf: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._vocab is not None or self._hf is not None:
                return
            path = resolve_model(self.spec, self.settings.models_dir, kind="generator")
            if path.endswith(".gguf"):
                from llama_cpp import Llama

                from verirag.generators.llamacpp import chat_formatter

                vocab = Llama(model_path=path, vocab_only=True, verbose=False)
                self._formatter = chat_formatter(vocab, path)
                self._vocab = vocab
                return
            from transformers import AutoTokenizer

            try:
                self._hf = AutoTokenizer.from_pretrained(path, local_files_only=True)
            except OSError as exc:
                raise ModelError(f"no local tokenizer for '{self.spec}': {exc}") from exc

    def render(self, messages: Sequence[Message]) -> str:
        self._load()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if self._hf is not None:
            text: str = self._hf.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True
            )
            return text
        prompt: str = self._formatter(messages=chat).prompt
        return prompt

    def count(self, text: str) -> int:
        self._load()
        if self._hf is not None:
            return len(self._hf(text, add_special_tokens=False)["input_ids"])
        return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def _alternatives(top: dict[str, float] | None) -> tuple[tuple[str, float], ...]:
    if not top:
        return ()
    ranked = sorted(top.items(), key=lambda kv: kv[1], reverse=True)
    return tuple((t, float(v)) for t, v in ranked[:TOP_ALTERNATIVES])


def token_logprobs(logprobs: dict[str, Any] | None) -> list[TokenLogprob]:
    """The OpenAI completions `logprobs` object as `TokenLogprob`s (entries without a
    logprob, such as an echoed first token, are kept with NaN so positions line up)."""
    if not logprobs:
        return []
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or [None] * len(tokens)
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    return [
        TokenLogprob(str(t), float(v) if v is not None else math.nan, _alternatives(top))
        for t, v, top in zip(tokens, values, tops, strict=True)
    ]


class OpenAICompatibleGenerator(Generator):
    """Cheap constructor; the first call loads only the local tokenizer (vocabulary)."""

    def __init__(self, model: str = "qwen2.5-1.5b", *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        if not self.settings.inference_url:
            raise GenerationError("the openai backend needs inference_url")
        self.model_spec = model
        self.server_model = self.settings.inference_model or model
        self.base_url = self.settings.inference_url.rstrip("/")
        self.name = f"openai:{self.server_model}@{self.base_url}"
        self.template = LocalTemplate(self.settings.inference_tokenizer or model, self.settings)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                key = self.settings.inference_api_key
                headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
                timeout = self.settings.inference_timeout
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=headers,
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                )
            return self._client

    def warm_up(self) -> None:
        self.template.render([Message("user", "")])

    def render(self, messages: Sequence[Message]) -> str:
        return self.template.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.template.count(text)

    def _body(self, prompt: str, **fields: Any) -> dict[str, Any]:
        return {"model": self.server_model, "prompt": prompt, **fields}

    def _fail(self, exc: Exception) -> InferenceServerError:
        if isinstance(exc, httpx.TimeoutException):
            return InferenceServerError(
                f"inference server {self.base_url} gave nothing for "
                f"{self.settings.inference_timeout:g} s ({type(exc).__name__})"
            )
        if isinstance(exc, httpx.HTTPStatusError):
            return InferenceServerError(
                f"inference server {self.base_url} answered {exc.response.status_code}: "
                f"{exc.response.text[:300]}"
            )
        return InferenceServerError(f"inference server {self.base_url} unreachable: {exc}")

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.post("/completions", json=body)
            if response.status_code >= 400:
                response.read()
                response.raise_for_status()
            out: dict[str, Any] = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._fail(exc) from exc
        return out

    def _sampling(self, params: GenerationParams) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "frequency_penalty": params.frequency_penalty,
            "presence_penalty": params.presence_penalty,
            "seed": params.seed,
            "stop": list(params.stop),
            # llama.cpp's server defaults to 40 / 0.05 / 1.1; the in-process backend uses none.
            "top_k": params.top_k,
            "min_p": 0.0,
            "repeat_penalty": 1.0,
        }
        return fields

    def _events(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The server-sent events of a streamed completion, as JSON objects."""
        try:
            with self.client.stream("POST", "/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    response.raise_for_status()
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    yield json.loads(data)
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._fail(exc) from exc

    def stream(
        self, prompt: str, params: GenerationParams
    ) -> PyGenerator[StreamEvent, None, None]:  # closing it ends the server's request
        n_prompt = self.count_tokens(prompt)
        check_fits(n_prompt, params.max_tokens, self.settings.n_ctx)
        body = self._body(prompt, stream=True, logprobs=TOP_ALTERNATIVES, **self._sampling(params))
        started = time.perf_counter()
        first: float | None = None
        scanner = StopScanner(params.stop)
        tokens: list[TokenLogprob] = []
        finish = "length"
        missing_logprobs = False
        for event in self._events(body):
            checkpoint()  # a cancelled ask stops reading; closing the stream tells the server
            choice = (event.get("choices") or [{}])[0]
            piece = choice.get("text") or ""
            got = token_logprobs(choice.get("logprobs"))
            missing_logprobs |= bool(piece) and not got
            if piece and first is None:
                first = time.perf_counter() - started
            tokens.extend(got)
            ready, stopped = scanner.push(piece)
            if ready:
                yield StreamEvent(ready)
            if stopped:
                finish = "stop"
                break
            if choice.get("finish_reason"):
                finish = "length" if choice["finish_reason"] == "length" else "stop"
        if missing_logprobs:
            raise SignalUnavailable(f"inference server {self.base_url} streams no token logprobs")
        if rest := scanner.rest():
            yield StreamEvent(rest)
        yield StreamEvent.last(scanner.text, tokens, finish, n_prompt, started, first)

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        # Not on the compute thread (`model_call`): the work happens on the server.
        final: Generation | None = None
        for event in self.stream(prompt, params):
            final = event.final or final
        if final is None:  # pragma: no cover - `stream` always ends with a final event
            raise InferenceServerError(f"{self.name}: stream ended without a result")
        return final

    def score(self, prompt: str, continuation: str) -> list[TokenLogprob]:
        if not continuation:
            return []
        body = self._body(
            prompt + continuation,
            max_tokens=1,
            echo=True,
            logprobs=TOP_ALTERNATIVES,
            temperature=0.0,
        )
        response = self._post(body)
        choice = (response.get("choices") or [{}])[0]
        tokens = token_logprobs(choice.get("logprobs"))
        if not tokens:
            raise SignalUnavailable(
                f"inference server {self.base_url} gives no prompt logprobs (echo)"
            )
        # Echoed: the prompt's tokens, the continuation's, then what was generated. Servers
        # give text offsets without special tokens, so the continuation is counted instead,
        # with the same tokenizer on the same joined text.
        generated = int((response.get("usage") or {}).get("completion_tokens", 1))
        n = self.count_tokens(prompt + continuation) - self.count_tokens(prompt)
        end = len(tokens) - generated
        if n <= 0 or end - n < 0:
            raise SignalUnavailable(
                f"inference server {self.base_url} echoed {len(tokens)} tokens, fewer than the "
                "prompt and continuation"
            )
        return tokens[end - n : end]

    def next_token_logprobs(self, prompt: str, k: int = 20) -> dict[str, float]:
        body = self._body(prompt, max_tokens=1, logprobs=k, temperature=0.0)
        choice = (self._post(body).get("choices") or [{}])[0]
        tops = (choice.get("logprobs") or {}).get("top_logprobs") or []
        if not tops or not tops[0]:
            raise SignalUnavailable(
                f"inference server {self.base_url} gives no next-token logprobs"
            )
        return {str(t): float(v) for t, v in tops[0].items()}

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
