"""Generation and judging on an OpenAI-compatible server: llama-cpp-python's own server
(`llama_cpp.server`), started here on 127.0.0.1 with the bundled SmolLM2 GGUF, against the
in-process llama.cpp backend on the same model and prompts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.records import Message
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.evaluators.judge import LlmJudgeVerifier
from verirag.generators import make_generator
from verirag.generators.base import InferenceServerError, SignalUnavailable
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.generators.openai_compat import OpenAICompatibleGenerator
from verirag.generators.params import GenerationParams
from verirag.generators.prompts import load_prompts
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.encoders import SentenceTransformerEncoder

pytestmark = pytest.mark.integration

MODEL = "smollm2-135m"
N_CTX = 2048
MESSAGES = [
    Message("system", "Answer in one short sentence."),
    Message("user", "Which city is the Eiffel Tower in?"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free local port; its /v1 URL."""
    port = _free_port()
    path = resolve_model(MODEL, MODEL_CACHE, kind="generator")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", path, "--model_alias", MODEL,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX),
         "--logits_all", "true", "--n_threads", "2", "--seed", "0", "--verbose", "false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not come up in 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _settings(tmp: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp / "data", model_cache=MODEL_CACHE, generator=MODEL, n_ctx=N_CTX, **extra
    )


@pytest.fixture(scope="module")
def local() -> LlamaCppGenerator:
    gen = LlamaCppGenerator(MODEL, settings=Settings(model_cache=MODEL_CACHE, n_ctx=N_CTX))
    gen.warm_up()
    return gen


@pytest.fixture(scope="module")
def remote(server: str, tmp_path_factory: pytest.TempPathFactory) -> OpenAICompatibleGenerator:
    settings = _settings(
        tmp_path_factory.mktemp("remote"), generator_backend="openai", inference_url=server
    )
    gen = make_generator(MODEL, settings)
    assert isinstance(gen, OpenAICompatibleGenerator)
    return gen


def test_generation_logprobs_and_scores_match_in_process(
    local: LlamaCppGenerator, remote: OpenAICompatibleGenerator
) -> None:
    prompt = remote.render(MESSAGES)
    assert prompt == local.render(MESSAGES)
    assert remote.count_tokens(prompt) == local.count_tokens(prompt)
    params = GenerationParams(max_tokens=24)
    a, b = local.generate(prompt, params), remote.generate(prompt, params)
    assert b.text == a.text and b.text.strip()
    assert b.finish_reason == a.finish_reason
    assert b.prompt_tokens == a.prompt_tokens
    assert [t.token for t in b.tokens] == [t.token for t in a.tokens]
    for x, y in zip(a.tokens, b.tokens, strict=True):
        # Two llama.cpp contexts (server and in-process) batch the prompt differently: a
        # fresh build on one 2-core machine differed by 0.027 on one token, same text.
        assert y.logprob == pytest.approx(x.logprob, abs=0.05)
        assert y.top and y.top[0][0] == x.top[0][0]
    # Teacher-forced scores of the answer (echo) and the judge's next-token distribution.
    for x, y in zip(local.score(prompt, a.text), remote.score(prompt, a.text), strict=True):
        assert y.token == x.token
        # Two llama.cpp contexts (server and in-process) batch the prompt differently: a
        # fresh build on one 2-core machine differed by 0.027 on one token, same text.
        assert y.logprob == pytest.approx(x.logprob, abs=0.05)
    near, far = local.next_token_logprobs(prompt, 5), remote.next_token_logprobs(prompt, 5)
    assert max(far, key=far.__getitem__) == max(near, key=near.__getitem__)
    for token in set(near) & set(far):
        assert far[token] == pytest.approx(near[token], abs=0.02)


def test_streaming_stop_and_cancellation(remote: OpenAICompatibleGenerator) -> None:
    prompt = remote.render(MESSAGES)
    events = list(remote.stream(prompt, GenerationParams(max_tokens=6)))
    final = events[-1].final
    assert final is not None and final.finish_reason == "length"
    assert "".join(e.text for e in events[:-1]) == final.text
    full = remote.generate(prompt, GenerationParams(max_tokens=24)).text
    cut = full.split()[1]
    stopped = remote.generate(prompt, GenerationParams(max_tokens=24, stop=(cut,)))
    assert stopped.finish_reason == "stop" and cut not in stopped.text
    # A consumer that stops reading closes the request; the server serves the next one.
    stream = remote.stream(prompt, GenerationParams(max_tokens=200))
    next(stream)
    stream.close()
    again = remote.generate(prompt, GenerationParams(max_tokens=24))
    assert again.text == full


def test_ask_matches_the_in_process_backend(
    server: str, tmp_path: Path, minilm: SentenceTransformerEncoder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.md").write_text(
        "# Eiffel Tower\nThe Eiffel Tower in Paris was completed in 1889. It is 330 metres tall.\n"
    )
    (docs / "bread.md").write_text("# Sourdough\nSourdough rises thanks to wild yeast.\n")
    base = _settings(tmp_path)
    IndexingPipeline(base, encoder=minilm).run([docs], "t")
    answers = []
    for settings in (base, base.with_overrides(generator_backend="openai", inference_url=server)):
        rag = RagPipeline(settings, encoder=minilm)
        answers.append(
            rag.ask("When was the Eiffel Tower completed?", "t", 2, GenerationParams(max_tokens=40))
        )
    near, far = answers
    assert far.text == near.text and far.short_answer == near.short_answer
    assert far.decision == near.decision
    assert [c.verdict for c in far.claims] == [c.verdict for c in near.claims]
    assert far.confidence == pytest.approx(near.confidence, abs=0.02)
    assert far.calibrated is False  # no calibration ships for the server backend


class _Stub(BaseHTTPRequestHandler):
    """A server that speaks the API but gives no logprobs, or never answers."""

    mode = "no-logprobs"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "stall":
            time.sleep(5)
            return
        body = json.dumps(
            {"choices": [{"text": " Paris", "finish_reason": "stop", "logprobs": None}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_a_missing_signal_is_reported_unavailable_never_filled_in(
    stub: str, tmp_path: Path
) -> None:
    url = stub
    gen = OpenAICompatibleGenerator(
        MODEL, settings=_settings(tmp_path, generator_backend="openai", inference_url=url)
    )
    prompt = gen.render(MESSAGES)
    with pytest.raises(SignalUnavailable, match="no prompt logprobs"):
        gen.score(prompt, " Paris")
    with pytest.raises(SignalUnavailable, match="next-token"):
        gen.next_token_logprobs(prompt)
    verdict = LlmJudgeVerifier(gen, load_prompts("v2")).judge("[1] Paris.", "Where?", "Paris")
    assert verdict.p_supported is None and "judge failed" in verdict.reason


def test_a_down_or_stalled_server_fails_fast_and_clearly(stub: str, tmp_path: Path) -> None:
    down = OpenAICompatibleGenerator(
        MODEL,
        settings=_settings(
            tmp_path,
            generator_backend="openai",
            inference_url=f"http://127.0.0.1:{_free_port()}/v1",
        ),
    )
    prompt = down.render(MESSAGES)
    with pytest.raises(InferenceServerError, match="unreachable"):
        down.generate(prompt, GenerationParams(max_tokens=8))
    url = stub
    _Stub.mode = "stall"
    try:
        stalled = OpenAICompatibleGenerator(
            MODEL,
            settings=_settings(
                tmp_path, generator_backend="openai", inference_url=url, inference_timeout=1.0
            ),
        )
        started = time.monotonic()
        with pytest.raises(InferenceServerError, match="gave nothing for 1 s"):
            stalled.generate(prompt, GenerationParams(max_tokens=8))
        assert time.monotonic() - started < 4
        judged = LlmJudgeVerifier(stalled, load_prompts("v2")).judge("[1] x", "q?", "x")
        assert judged.p_supported is None  # unverified, not supported
    finally:
        _Stub.mode = "no-logprobs"
