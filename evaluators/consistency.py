"""Sampling consistency: would the model give its answer again?

SelfCheckGPT's idea (Manakul et al., 2023) on short answers: the generator answers the
question a few more times straight from the sources (`direct_answer.txt`), sampling at
temperature 1, and the share of samples that agree with the delivered answer is a signal of
its correctness. A model that knows the answer from its sources says it every time; one that
guesses scatters. Short samples cost a few tokens each, and the sources' KV cache is the
answer prompt's.

Agreement is judged on content words, not by a model, so that it costs nothing and cannot
itself hallucinate: a sample agrees when half of the shorter one's content words (of the
sample and the short answer) are in the other, or when half of the sample's content words
stand in the cited answer; numbers must match the short answer's ("5 million" is not "11
million"). A sample that declines or names nothing disagrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verirag.evaluators.decision import is_abstention
from verirag.generators.base import Generator
from verirag.generators.params import GenerationParams
from verirag.generators.prompts import PromptSet
from verirag.generators.short_answer import (
    STOP_WORDS,
    clean_short_answer,
    grounded_in,
    stem,
    words,
)

SAMPLE_TOKENS = 16
# Nucleus sampling: with the whole vocabulary open, temperature-1 samples of the 1.5B drew
# tail answers such as "Tilapia Theater" from a source that reads "Levi's Stadium".
TOP_P = 0.9
_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class SampleAgreement:
    score: float  # share of the samples that agree with the answer, [0, 1]
    samples: tuple[str, ...]  # the samples as cleaned ("" for one that declined)


def _content(text: str) -> set[str]:
    every = words(text)
    return {stem(w) for w in every if w not in STOP_WORDS} or {stem(w) for w in every}


def agrees(sample: str, short: str, answer: str) -> bool:
    """Does `sample` (a cleaned short answer) say what the answer says: the short answer in
    other words, or words of the cited answer ("San Francisco" for "Levi's Stadium" when the
    answer says "at Levi's Stadium in the San Francisco Bay Area")?"""
    if not sample:
        return False
    mine, theirs = _content(sample), _content(short)
    numbers = {w for w in mine if _NUMBER.match(w)}, {w for w in theirs if _NUMBER.match(w)}
    if all(numbers) and not numbers[0] & numbers[1]:
        return False
    if mine and theirs and len(mine & theirs) * 2 >= min(len(mine), len(theirs)):
        return True
    return grounded_in(sample, answer)


def sample_agreement(
    generator: Generator,
    prompts: PromptSet,
    context_block: str,
    question: str,
    idk: str,
    answer: str,
    short: str,
    *,
    samples: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> SampleAgreement:
    """`samples` short answers sampled from the sources (seeds `seed`, `seed + 1`, ...: the
    same answer gets the same samples) and the share that agree with `short` / `answer`."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    prompt = generator.render(prompts.direct_answer_messages(context_block, question, idk))
    kept: list[str] = []
    for i in range(samples):
        params = GenerationParams(
            max_tokens=SAMPLE_TOKENS,
            temperature=temperature,
            top_p=TOP_P,
            stop=("\n",),
            seed=seed + i,
        )
        raw = generator.generate(prompt, params).text
        kept.append("" if is_abstention(raw.strip(), idk) else clean_short_answer(raw, question))
    score = sum(agrees(s, short, answer) for s in kept) / samples
    return SampleAgreement(score, tuple(kept))
