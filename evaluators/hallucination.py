"""Hallucination signals for a given answer to a question over given sources.

The same checks `RagPipeline.ask` runs, applied to an answer someone else wrote (HaluEval's
right and hallucinated answers): the generator's teacher-forced logprobs of the answer on the
answer prompt, the judge's P(supported), and lexical evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evaluators.claims import split_claims
from evaluators.confidence import ConfidenceFeatures, LogprobConfidence, features
from evaluators.datasets import HaluItem, load_eval_dataset, sample_halu
from evaluators.decision import Thresholds, answer_score, claim_floor, claim_verdict
from evaluators.grounding import source_lift
from evaluators.judge import LlmJudgeVerifier
from evaluators.lexical import lexical_evidence
from generators.base import Generator
from generators.prompts import PromptSet


@dataclass(frozen=True)
class HaluPair:
    knowledge: str
    question: str
    right: str
    hallucinated: str


def load_halueval(path: Path, n: int, seed: int) -> list[HaluPair]:
    """A seeded sample of `n` HaluEval QA records as pairs (the eval loader reads and checks
    the file; the same seed picks the same records)."""
    items = sample_halu(load_eval_dataset(path, "halueval").halu, n, seed)
    by_pair: dict[str, dict[bool, HaluItem]] = {}
    for item in items:
        by_pair.setdefault(item.pair_id, {})[item.hallucinated] = item
    return [
        HaluPair(pair[False].knowledge, pair[False].question, pair[False].answer, pair[True].answer)
        for pair in by_pair.values()
    ]


@dataclass(frozen=True)
class Signals:
    logprob: float  # LogprobConfidence of the teacher-forced answer, [0, 1]
    features: ConfidenceFeatures  # what `logprob` was computed from
    judge: float | None  # P(supported) over the answer's claims (min), None if undecided
    lexical: float  # 1.0 if every number/name is in the sources, else 0.0
    support: float  # the weakest claim's score, as the decision sees it
    lift: float | None  # source lift, nats/token
    combined: float  # `answer_score` of someone else's answer: support and lift


class SignalScorer:
    def __init__(
        self,
        generator: Generator,
        prompts: PromptSet,
        thresholds: Thresholds,
        idk: str,
        judge: LlmJudgeVerifier | None = None,
    ) -> None:
        self.generator = generator
        self.prompts = prompts
        self.thresholds = thresholds
        self.idk = idk
        self.judge = judge or LlmJudgeVerifier(generator, prompts)
        self.confidence = LogprobConfidence(thresholds.weights)

    def signals_many(self, sources: list[str], question: str, answers: list[str]) -> list[Signals]:
        """Signals for several answers over the same sources: every step that reads the
        sources runs first, so their KV cache is computed once for all the answers."""
        block = self.prompts.context_block([(i + 1, "", s) for i, s in enumerate(sources)])
        prompt = self.generator.render(self.prompts.answer_messages(block, question, self.idk))
        grounded = []
        for answer in answers:
            with_sources = self.generator.score(prompt, answer)
            spans = split_claims(answer) or []
            claims = [s.text for s in spans] or [answer]
            judge_ps: list[float] = []
            scores: list[float] = []
            clean = True
            for claim in claims:
                lexical = lexical_evidence(claim, sources, (), question)
                clean = clean and not lexical.missing
                result = self.judge.judge(block, question, claim)
                verdict = claim_verdict(result, lexical, self.thresholds)
                if result.p_supported is not None:
                    judge_ps.append(result.p_supported)
                undecided = claim_floor(bool(lexical.missing))
                scores.append(verdict.score if verdict.score is not None else undecided)
            grounded.append((with_sources, min(judge_ps) if judge_ps else None, min(scores), clean))
        # Last: the closed-book prompt shares no sources, so it would evict them from the
        # KV cache; the closed-book prompts share their own prefix with each other.
        closed = self.generator.render(self.prompts.closed_book_messages(question))
        out = []
        for answer, (with_sources, judge, support, clean) in zip(answers, grounded, strict=True):
            feats = features(with_sources)
            lift = source_lift(with_sources, self.generator.score(closed, answer))
            out.append(
                Signals(
                    self.confidence.score(feats),
                    feats,
                    judge,
                    1.0 if clean else 0.0,
                    support,
                    lift,
                    # Not the generator's own text: its logprobs measure fluency, not doubt.
                    answer_score(self.thresholds, support, lift, None),
                )
            )
        return out


def score_pairs(scorer: SignalScorer, pairs: list[HaluPair]) -> list[tuple[Signals, bool]]:
    """(signals, is_right) for each pair's right then hallucinated answer."""
    rows: list[tuple[Signals, bool]] = []
    for pair in pairs:
        right, wrong = scorer.signals_many(
            [pair.knowledge], pair.question, [pair.right, pair.hallucinated]
        )
        rows += [(right, True), (wrong, False)]
    return rows
