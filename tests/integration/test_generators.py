"""Both generator backends on the small bundled SmolLM2: the same typed result, logprobs
that agree with teacher forcing, parameters honoured."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.records import Message
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.generators.base import Generator
from verirag.generators.hf import TransformersGenerator
from verirag.generators.llamacpp import LlamaCppGenerator
from verirag.generators.params import GenerationParams

pytestmark = pytest.mark.integration

SETTINGS = Settings(model_cache=MODEL_CACHE, n_ctx=2048)
MESSAGES = [Message("user", "List three colours of the rainbow.")]


@pytest.fixture(scope="module", params=["llama.cpp", "transformers"])
def generator(request: pytest.FixtureRequest) -> Iterator[Generator]:
    if request.param == "llama.cpp":
        gen: Generator = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
    else:
        path = resolve_model("smollm2-135m", MODEL_CACHE, kind="generator")
        gen = TransformersGenerator(path, settings=SETTINGS)
    gen.warm_up()
    yield gen


def test_greedy_generation_result_and_teacher_forcing_agree(generator: Generator) -> None:
    prompt = generator.render(MESSAGES)
    result = generator.generate(prompt, GenerationParams(max_tokens=24))
    assert result.text.strip()
    assert result.completion_tokens == len(result.tokens) > 0
    assert result.prompt_tokens == generator.count_tokens(prompt)
    assert result.finish_reason in ("stop", "length")
    assert 0 < result.seconds_to_first_token <= result.seconds_total
    for token in result.tokens:
        assert token.logprob <= 0 and math.isfinite(token.logprob)
        assert 1 <= len(token.top) <= 5
        assert token.top[0][1] >= token.logprob - 1e-4  # greedy picks the best token
    assert "".join(t.token for t in result.tokens) == result.text
    # Scoring the model's own greedy answer reproduces its logprobs.
    scored = generator.score(prompt, result.text)
    n = min(len(scored), len(result.tokens), 10)
    for a, b in zip(scored[:n], result.tokens[:n], strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=0.05)
    top = generator.next_token_logprobs(prompt, 5)
    assert max(top, key=lambda t: top[t]) == result.tokens[0].token


def test_streaming_max_tokens_stop_and_seed(generator: Generator) -> None:
    prompt = generator.render(MESSAGES)
    events = list(generator.stream(prompt, GenerationParams(max_tokens=5)))
    final = events[-1].final
    assert final is not None and final.finish_reason == "length"
    assert final.completion_tokens == 5
    assert "".join(e.text for e in events[:-1]) == final.text
    full = generator.generate(prompt, GenerationParams(max_tokens=24)).text
    cut_word = full.split()[1]
    stopped = generator.generate(prompt, GenerationParams(max_tokens=24, stop=(cut_word,)))
    assert stopped.finish_reason == "stop" and cut_word not in stopped.text
    sampled = GenerationParams(max_tokens=16, temperature=1.0, top_p=0.9, top_k=40, seed=123)
    assert generator.generate(prompt, sampled).text == generator.generate(prompt, sampled).text


def test_llamacpp_first_token_logprob_is_read_from_its_own_row() -> None:
    """With the whole prompt cached, llama.cpp samples the first token without evaluating the
    prompt again: its logprob once came from a logits row never written (uniform over the
    vocabulary, -10.8 here), in every answer and in the answer's teacher-forced score."""
    prompt_gen = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
    prompt = prompt_gen.render(MESSAGES)
    result = prompt_gen.generate(prompt, GenerationParams(max_tokens=8))
    cold = LlamaCppGenerator("smollm2-135m", settings=SETTINGS).score(prompt, result.text)
    first = result.tokens[0]
    assert first.logprob == pytest.approx(cold[0].logprob, abs=1e-3)
    assert first.logprob > -5 and first.top[0][1] > first.top[-1][1]
    warm = prompt_gen.score(prompt, result.text)
    assert warm[0].logprob == pytest.approx(cold[0].logprob, abs=1e-3)


def test_llamacpp_scores_do_not_depend_on_what_the_cache_holds() -> None:
    """Prompt prefill keeps no logits rows; a later score over the same cached tokens must
    evaluate them again rather than read rows left by another prompt."""
    gen = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
    prompt = gen.render(MESSAGES)
    text = " Red, green and blue."
    gen.llm.reset()
    cold = [t.logprob for t in gen.score(prompt, text)]
    # Fill the rows with another text's logits, then cache prompt + text as a prompt
    # prefix, evaluated without keeping rows.
    gen.score(gen.render([Message("user", "Name a fruit.")]), " Apples and pears " * 8)
    gen.generate(prompt + text + " Also", GenerationParams(max_tokens=2))
    assert [t.logprob for t in gen.score(prompt, text)] == pytest.approx(cold, abs=1e-3)
    # And again straight after, reusing the rows it kept itself.
    assert [t.logprob for t in gen.score(prompt, text)] == pytest.approx(cold, abs=1e-3)
    top = gen.next_token_logprobs(prompt + text, 5)
    gen.llm.reset()
    assert gen.next_token_logprobs(prompt + text, 5).keys() == top.keys()


def test_llamacpp_json_grammar_fast_path_matches_the_sampler_chain() -> None:
    """generate_json checks the argmax against the grammar before running the grammar over
    the whole vocabulary; it must pick exactly the tokens llama.cpp's own chain picks."""
    import json

    from pydantic import BaseModel

    class Verdict(BaseModel):
        reason: str
        verdict: int
        statements: list[str]

    gen = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
    schema = Verdict.model_json_schema()
    for question in (
        "Is the sky blue? Give a reason, a verdict 0 or 1 and two statements, as JSON.",
        "Paris is in France. Extract the statements as JSON.",
    ):
        prompt = gen.render([Message("user", question)])
        fast = gen.generate_json(prompt, schema, max_tokens=120)
        assert fast == gen.generate_json_reference(prompt, schema, max_tokens=120)
        try:
            data = json.loads(fast)
        except json.JSONDecodeError:  # cut off at the token limit: nothing more to check
            continue
        Verdict.model_validate(data)
        assert list(data) == ["reason", "verdict", "statements"]

    class Ordered(BaseModel):
        zeta: str
        alpha: int

    # Properties come in the schema's order (sorted keys would put `alpha` first); the
    # grammar forces the first key, so this holds however the 135M model goes on.
    prompt = gen.render([Message("user", "Give zeta (a word) and alpha (a number) as JSON.")])
    text = gen.generate_json(prompt, Ordered.model_json_schema(), max_tokens=8)
    assert text.lstrip("{ \n\t").startswith('"zeta"'), text


def test_llamacpp_saved_prompt_states_give_the_same_results() -> None:
    """A prompt started from a saved KV state (another template evaluated in between) must
    decode and score as if evaluated from scratch."""
    from pydantic import BaseModel

    class Items(BaseModel):
        items: list[str]

    template = "You extract facts. " + " ".join(
        f"Rule {i}: keep every fact short, plain and in the text's own words." for i in range(24)
    )
    prompts = [
        f"{template}\nText: Paris is the capital of France.",
        "Other instructions entirely. " + " ".join(f"Step {i} of a recipe." for i in range(60)),
        f"{template}\nText: The Nile flows north into the Mediterranean.",
    ]
    plain = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
    saving = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
    states = saving.keep_prompt_states(max_mib=64)
    schema = Items.model_json_schema()
    for text in prompts:
        a = plain.render([Message("user", text)])
        b = saving.render([Message("user", text)])
        assert saving.generate_json(b, schema, 40) == plain.generate_json(a, schema, 40)
        fresh = LlamaCppGenerator("smollm2-135m", settings=SETTINGS)
        expected = fresh.next_token_logprobs(a, 5)
        got = saving.next_token_logprobs(b, 5)
        assert list(got)[:1] == list(expected)[:1]
        for piece, value in expected.items():
            if piece in got:
                assert got[piece] == pytest.approx(value, abs=0.05)
    assert states.hits >= 1 and states.tokens_reused >= 256  # the third prompt reused the first
    assert 0 < states.size <= 64 * 2**20
