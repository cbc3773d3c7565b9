"""The LLM judge: P(supported) for a claim from the judge model's own yes/no logprobs.

No free text is parsed. The judge reads the same system message and sources as the answer,
so with the generator as judge llama.cpp reuses the sources' KV cache for every claim. When
the model puts almost no probability on yes or no, the verdict is "unverified", never
"supported".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from verirag.generators.base import Generator
from verirag.generators.prompts import PromptSet

YES = frozenset({"yes", "y", "true", "supported"})
NO = frozenset({"no", "n", "false", "unsupported", "not"})
MIN_MASS = 0.2


@dataclass(frozen=True)
class JudgeResult:
    p_supported: float | None  # None: the judge could not decide
    yes_no_mass: float
    reason: str = ""


def yes_probability(top: dict[str, float], min_mass: float = MIN_MASS) -> JudgeResult:
    """Normalised P(yes) over the yes/no variants among the top next tokens."""
    p_yes = p_no = 0.0
    for token, logprob in top.items():
        word = token.strip().lower().strip(".,:;!\"'")
        if word in YES:
            p_yes += math.exp(logprob)
        elif word in NO:
            p_no += math.exp(logprob)
    mass = p_yes + p_no
    if mass < min_mass:
        return JudgeResult(None, mass, f"judge gave yes/no only {mass:.0%} probability")
    return JudgeResult(p_yes / mass, mass)


class LlmJudgeVerifier:
    def __init__(self, generator: Generator, prompts: PromptSet, k: int = 20) -> None:
        self.generator = generator
        self.prompts = prompts
        self.k = k

    def judge(self, context_block: str, question: str, claim: str) -> JudgeResult:
        prompt = self.generator.render(self.prompts.judge_messages(context_block, question, claim))
        return self._yes_no(prompt)

    def check_answer(self, context_block: str, question: str, answer: str) -> JudgeResult:
        """P(the sources give `answer` as the answer to `question`): whether the answer is
        about what was asked, which a claim's support does not say."""
        prompt = self.generator.render(
            self.prompts.answer_check_messages(context_block, question, answer)
        )
        return self._yes_no(prompt)

    def _yes_no(self, prompt: str) -> JudgeResult:
        try:
            top = self.generator.next_token_logprobs(prompt, self.k)
        except Exception as exc:  # a judge failure must never read as "supported"
            return JudgeResult(None, 0.0, f"judge failed: {type(exc).__name__}: {exc}")
        return yes_probability(top)

    def judge_all(
        self, context_block: str, question: str, claims: Sequence[str]
    ) -> list[JudgeResult]:
        return [self.judge(context_block, question, claim) for claim in claims]
