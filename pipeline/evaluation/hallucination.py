"""Hallucination signals for a given answer to a question over given sources.

The same `Verifier` that `RagPipeline.ask` runs, applied to an answer someone else wrote (HaluEval's
right and hallucinated answers): the generator's teacher-forced logprobs of the answer on the
answer prompt, the judge's P(supported), and lexical evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from verirag.evaluators.confidence import ConfidenceFeatures, LogprobConfidence, features
from verirag.evaluators.decision import Thresholds
from verirag.evaluators.judge import LlmJudgeVerifier
from verirag.evaluators.verifier import Verifier
from verirag.generators.base import Generator
from verirag.generators.prompts import PromptSet
from verirag.pipeline.evaluation.datasets import HaluItem, load_eval_dataset, sample_halu


@dataclass(frozen=True)
class HaluPair:
    knowledge: str
    question: str
    right: str
    hallucinated: str
    pair_id: str = ""


def load_halueval(
    path: Path, n: int, seed: int, avoid: frozenset[str] = frozenset()
) -> list[HaluPair]:
    """A seeded sample of `n` HaluEval QA records as pairs, none of the pair ids in `avoid`
    (the eval loader reads and checks the file; the same seed picks the same records)."""
    records = load_eval_dataset(path, "halueval").halu
    if avoid:
        records = [h for h in records if h.pair_id not in avoid]
    items = sample_halu(records, n, seed)
    by_pair: dict[str, dict[bool, HaluItem]] = {}
    for item in items:
        by_pair.setdefault(item.pair_id, {})[item.hallucinated] = item
    return [
        HaluPair(
            pair[False].knowledge,
            pair[False].question,
            pair[False].answer,
            pair[True].answer,
            pair_id,
        )
        for pair_id, pair in by_pair.items()
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
    check: float | None = None  # the judge's P(the sources give this answer to the question)
    alignment: float | None = None  # question words around the sentences claims rest on
    anchor: float | None = None  # question words around the sentence holding the answer


class SignalScorer:
    """The hallucination suite's view of `Verifier`: its signals for given answers."""

    def __init__(
        self,
        generator: Generator,
        prompts: PromptSet,
        thresholds: Thresholds,
        idk: str,
        judge: LlmJudgeVerifier | None = None,
    ) -> None:
        self.idk = idk
        # Every signal, weighted or not: the suite reports each one's AUROC.
        self.verifier = Verifier(
            generator,
            judge or LlmJudgeVerifier(generator, prompts),
            prompts,
            thresholds,
            measure_all=True,
        )
        self.confidence = LogprobConfidence(thresholds.weights)

    def signals_many(self, sources: list[str], question: str, answers: list[str]) -> list[Signals]:
        """Signals for several answers over the same sources (their KV cache is computed once)."""
        evidence = self.verifier.evidence(question, sources, self.idk)
        out = []
        for v in self.verifier.verify_many(evidence, answers, given=True):
            feats = features(v.with_sources)
            assert v.support is not None  # a given answer is at least one claim
            out.append(
                Signals(
                    self.confidence.score(feats),
                    feats,
                    v.judge,
                    1.0 if v.lexical_clean else 0.0,
                    v.support,
                    v.lift,
                    # Not the generator's own text: its logprobs measure fluency, not doubt.
                    self.verifier.score(v, None),
                    v.answer_check,
                    v.alignment,
                    v.anchor,
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
