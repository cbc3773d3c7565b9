"""The inference-server backend's pure parts: the OpenAI `logprobs` object, settings, and
a constructor that touches neither the network nor a model."""

from __future__ import annotations

import math

import pytest
from pydantic import SecretStr, ValidationError

from verirag.core.settings import Settings
from verirag.generators import backend_for, make_generator
from verirag.generators.openai_compat import OpenAICompatibleGenerator, token_logprobs


def test_token_logprobs_keep_positions_and_rank_alternatives() -> None:
    got = token_logprobs(
        {
            "tokens": ["The", " Eiffel"],
            "token_logprobs": [None, -0.25],  # an echoed first token has none
            "top_logprobs": [None, {" a": -3.0, " Eiffel": -0.25, " b": -2.0, " c": -4.0,
                                    " d": -5.0, " e": -6.0}],
        }
    )  # fmt: skip
    assert [t.token for t in got] == ["The", " Eiffel"]
    assert math.isnan(got[0].logprob) and got[0].top == ()
    assert got[1].logprob == -0.25
    assert [t for t, _ in got[1].top] == [" Eiffel", " b", " a", " c", " d"]  # best 5, ranked
    assert token_logprobs(None) == [] and token_logprobs({}) == []


def test_the_backend_needs_a_url_and_builds_without_touching_anything() -> None:
    with pytest.raises(ValidationError, match="inference_url"):
        Settings(generator_backend="openai")
    settings = Settings(
        generator_backend="openai",
        inference_url="http://127.0.0.1:9/v1/",
        inference_model="served-name",
        inference_api_key=SecretStr("secret"),
    )
    assert backend_for("qwen2.5-1.5b", settings) == "openai"
    gen = make_generator("qwen2.5-1.5b", settings)
    assert isinstance(gen, OpenAICompatibleGenerator)
    assert gen.base_url == "http://127.0.0.1:9/v1" and gen.server_model == "served-name"
    assert "secret" not in gen.name and "secret" not in repr(settings)


def test_a_server_failure_is_a_502_and_a_cli_exit_4() -> None:
    from verirag.core.registry import ModelError
    from verirag.generators.base import InferenceServerError, SignalUnavailable
    from verirag.pipeline.api.errors import classify

    for exc in (InferenceServerError("server down"), SignalUnavailable("no echo")):
        problem = classify(exc)
        assert (problem.status, problem.kind) == (502, "inference-server")
        assert problem.headers == {"Retry-After": "5"}
        assert isinstance(exc, ModelError)  # the CLI's guard maps ModelError to exit 4
    assert classify(ModelError("gone")).status == 503
