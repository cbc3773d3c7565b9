"""`Verifier`: the verify sequence, one implementation for every caller.

split claims -> lexical evidence -> judge -> verdict -> (undecided claims at their floor) ->
rests judge -> source lift -> answer score. `RagPipeline` runs it on the answer it generated;
the hallucination suite runs it on answers someone else wrote (HaluEval's right and
hallucinated answers). Both get the same claims, verdicts and scores for the same text and
sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from verirag.core.records import ClaimResult, EvidenceSpan
from verirag.evaluators.alignment import (
    anchor_alignment,
    given_anchor,
    question_alignment,
    rests_on,
    rests_on_sources,
)
from verirag.evaluators.claims import split_claims
from verirag.evaluators.decision import Thresholds, answer_score, claim_floor, claim_verdict
from verirag.evaluators.grounding import source_lift
from verirag.evaluators.judge import LlmJudgeVerifier
from verirag.evaluators.lexical import lexical_evidence
from verirag.generators.base import Generator, SignalUnavailable, TokenLogprob
from verirag.generators.prompts import PromptSet

UNDECIDED_P = 0.5  # an undecided claim's P(supported) in the answer's judge signal
_CITATION = re.compile(r"\s*\[\d+\]")


@dataclass(frozen=True)
class Evidence:
    """What an answer is checked against: the sources as the model saw them."""

    question: str
    block: str  # the numbered, fenced sources (the judge reads these)
    prompt: str  # the rendered answer prompt (teacher-forced scores are taken on it)
    texts: tuple[str, ...]  # each source's text for lexical evidence, titles included
    # Each source's body as a reader sees it (a citation's snippet), where claims' evidence
    # spans point; empty: the texts themselves.
    bodies: tuple[str, ...] = ()
    # The reranker's P(relevant) of the best source (`Answer.retrieval_confidence`); None:
    # the sources were not retrieved and reranked here (given text, a reranker switched off).
    retrieval: float | None = None
    # Each source's title, and whether the block left out sentences addressed to an AI: the
    # rests judge reads one source sentence in the form the whole block gave its source.
    titles: tuple[str, ...] = ()
    quarantine: bool = True


@dataclass(frozen=True)
class Verification:
    claims: tuple[ClaimResult, ...]
    support: float | None  # the weakest claim's score (undecided at its floor); None: no claim
    judge: float | None  # the weakest claim's P(supported), undecided at 0.5; None: none decided
    lexical_clean: bool  # every number and name of every claim is in some source
    lift: float | None  # source lift, nats/token
    with_sources: tuple[TokenLogprob, ...]  # the answer's teacher-forced tokens on the prompt
    # P(the sources give the (short) answer as the answer to the question); None: undecided,
    # or not measured (the score gives it no weight and `measure_all` is off).
    answer_check: float | None = None
    # Share of the question's content words around the source sentences the claims rest on.
    alignment: float | None = None
    # The same around the source sentence that holds the short answer (`anchor_alignment`).
    anchor: float | None = None
    retrieval: float | None = None  # the evidence's, carried to the score
    # The judge's P(supported) of the weakest claim, reading only the source sentence the claim
    # rests on (`rests_judge`); None: undecided, or not measured.
    rests: float | None = None


@dataclass(frozen=True)
class Grounded:
    """What is read from the sources, before the closed-book prompt evicts them."""

    with_sources: tuple[TokenLogprob, ...]
    claims: list[ClaimResult]
    judge: float | None
    answer_check: float | None
    alignment: float | None
    anchor: float | None


class Verifier:
    """Cheap to build; the models it calls are the generator's and the judge's, loaded lazily.

    `measure_all`: measure every signal, also those the score gives no weight (calibration
    and the evaluation suites, which compare them); otherwise the answer check and the rests
    judge, the signals that cost model calls of their own, run only where the fitted model
    weighs them.
    """

    def __init__(
        self,
        generator: Generator,
        judge: LlmJudgeVerifier,
        prompts: PromptSet,
        thresholds: Thresholds,
        *,
        measure_all: bool = False,
    ) -> None:
        self.generator = generator
        self.judge = judge
        self.prompts = prompts
        self.thresholds = thresholds
        self.measure_all = measure_all

    def _scored(self, prompt: str, answer: str) -> tuple[TokenLogprob, ...]:
        """Teacher-forced scores; none where the backend cannot give them (a server without
        prompt logprobs), so the source lift reads as unknown rather than as a guess."""
        try:
            return tuple(self.generator.score(prompt, answer))
        except SignalUnavailable:
            return ()

    def evidence(self, question: str, sources: Sequence[str], idk: str) -> Evidence:
        """Evidence for untitled sources numbered from 1 (text that was not retrieved here)."""
        block = self.prompts.context_block([(i + 1, "", s) for i, s in enumerate(sources)])
        prompt = self.generator.render(self.prompts.answer_messages(block, question, idk))
        return Evidence(question, block, prompt, tuple(sources))

    def verify(
        self, evidence: Evidence, answer: str, *, given: bool = False, short: str = ""
    ) -> Verification:
        return self.verify_many(evidence, [answer], given=given, shorts=[short])[0]

    def verify_many(
        self,
        evidence: Evidence,
        answers: Sequence[str],
        *,
        given: bool = False,
        shorts: Sequence[str] | None = None,
    ) -> list[Verification]:
        """Verify several answers over the same sources.

        `given`: the answers were not written by this generator, so an answer without a
        sentence of its own is checked as one claim (the generator's own such answer has no
        checkable claim and goes to review). `shorts`: each answer's short answer, which the
        answer check asks about (the answer itself where it is empty). Every step that reads
        the sources runs first for all answers, so their KV cache is computed once; the
        closed-book prompts come last because they share no sources and would evict them.
        """
        shorts = list(shorts) if shorts is not None else [""] * len(answers)
        check = self.measure_all or self.thresholds.weighs_check(given)
        grounded: list[Grounded] = []
        for answer, short in zip(answers, shorts, strict=True):
            # Scored first, while the KV cache still holds the prompt (and for the generator's
            # own answer, the answer itself).
            with_sources = self._scored(evidence.prompt, answer)
            claims = self._claims(evidence, answer, given)
            uncited = _CITATION.sub("", answer).strip()
            checked = (
                self.judge.check_answer(
                    evidence.block, evidence.question, short or uncited
                ).p_supported
                if check
                else None
            )
            aligned = question_alignment(
                evidence.question, [(c.text, c.citations) for c in claims], evidence.texts
            )
            # A given answer has no short answer of its own: it is anchored by its own words.
            anchored = (
                given_anchor(evidence.question, uncited, evidence.texts)
                if given and not short
                else anchor_alignment(evidence.question, short, evidence.texts)
            )
            grounded.append(
                Grounded(
                    with_sources,
                    claims,
                    weakest_judged([c.judge_p for c in claims]),
                    checked,
                    aligned,
                    anchored,
                )
            )
        # The rests judge reads one sentence, not the sources: after every step that reads them.
        rests = [
            self.rests_judge(evidence, [c.text for c in g.claims])
            if not given and (self.measure_all or self.thresholds.weighs_rests)
            else None
            for g in grounded
        ]
        closed = self.generator.render(self.prompts.closed_book_messages(evidence.question))
        out = []
        for answer, g, rested in zip(answers, grounded, rests, strict=True):
            with_sources, claims, judge = g.with_sources, g.claims, g.judge
            lift = source_lift(list(with_sources), list(self._scored(closed, answer)))
            scores = [
                c.score if c.score is not None else claim_floor(bool(c.missing_terms))
                for c in claims
            ]
            out.append(
                Verification(
                    claims=tuple(claims),
                    support=min(scores, default=None),
                    judge=judge,
                    lexical_clean=not any(c.missing_terms for c in claims),
                    lift=lift,
                    with_sources=with_sources,
                    answer_check=g.answer_check,
                    alignment=g.alignment,
                    anchor=g.anchor,
                    retrieval=evidence.retrieval,
                    rests=rested,
                )
            )
        return out

    def rests_judge(self, evidence: Evidence, claims: Sequence[str]) -> float | None:
        """The weakest claim's P(supported) when the judge reads only the source sentence the
        claim rests on (`rests_on_sources`), in the form the sources block gave it; a claim
        whose words stand in no source sentence is undecided. None: no claim, or none
        decided. The whole context lets the judge vouch for a claim from any sentence near
        its words; one sentence leaves it only what the claim's own words point to. Alone it
        ranks the 1.5B's own answers better than the whole-context judge (0.732 against
        0.673 on fresh runs), but beside the retrieval confidence it has added nothing on either
        generator's fresh runs (`bench/rests_gain.py`), so no shipped calibration weighs it."""
        bodies = evidence.bodies or evidence.texts
        titles = evidence.titles if len(evidence.titles) == len(bodies) else ("",) * len(bodies)
        judged: list[float | None] = []
        for claim in claims:
            found = rests_on_sources(claim, bodies)
            if found is None:
                judged.append(None)
                continue
            number, start, end = found
            one = self.prompts.context_block(
                [(number + 1, titles[number], bodies[number][start:end])],
                quarantine_instructions=evidence.quarantine,
            )
            judged.append(self.judge.judge(one, evidence.question, claim).p_supported)
        return weakest_judged(judged) if judged else None

    def score(self, verification: Verification, logprob_confidence: float | None) -> float:
        """The answer score; `logprob_confidence` None for text the generator did not write."""
        return answer_score(
            self.thresholds,
            verification.support,
            verification.lift,
            logprob_confidence,
            check=verification.answer_check,
            alignment=verification.alignment,
            anchor=verification.anchor,
            retrieval=verification.retrieval,
            rests=verification.rests,
        )

    def _claims(self, evidence: Evidence, answer: str, given: bool) -> list[ClaimResult]:
        spans = [(s.text, s.start, s.end, s.citations) for s in split_claims(answer)]
        if not spans and given:
            spans = [(answer, 0, len(answer), ())]
        claims = []
        for text, start, end, citations in spans:
            lexical = lexical_evidence(text, evidence.texts, citations, evidence.question)
            judged = self.judge.judge(evidence.block, evidence.question, text)
            verdict = claim_verdict(judged, lexical, self.thresholds)
            claims.append(
                ClaimResult(
                    text=text,
                    start=start,
                    end=end,
                    citations=citations,
                    verdict=verdict.verdict,
                    score=verdict.score,
                    reason=verdict.reason,
                    judge_p=judged.p_supported,
                    missing_terms=lexical.missing,
                    evidence=_evidence(text, citations, evidence.bodies or evidence.texts),
                )
            )
        return claims


def _evidence(
    claim: str, citations: Sequence[int], sources: Sequence[str]
) -> tuple[EvidenceSpan, ...]:
    spans = []
    for number in citations:
        if 1 <= number <= len(sources) and (span := rests_on(claim, sources[number - 1])):
            spans.append(EvidenceSpan(number, *span))
    return tuple(spans)


def weakest_judged(probabilities: Sequence[float | None]) -> float | None:
    """The judge's view of an answer from its claims' P(supported): the weakest claim's. A
    claim the judge could not decide (None) counts as a coin flip, not as absent, or one
    confident claim would vouch for an undecided one; None when none was decided."""
    if all(p is None for p in probabilities):
        return None
    return min(UNDECIDED_P if p is None else p for p in probabilities)
