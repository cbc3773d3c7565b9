"""Per-claim verdicts and the answer decision. Pure Python; thresholds from a shipped file."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from verirag.evaluators.confidence import ConfidenceWeights, logit, sigmoid
from verirag.evaluators.grounding import lift_score
from verirag.evaluators.judge import JudgeResult
from verirag.evaluators.lexical import LexicalEvidence

Verdict = Literal["supported", "unsupported", "unverified"]
Decision = Literal["answer", "review", "abstain"]
CALIBRATION_DIR = "calibration"
DEFAULT_MODEL = "qwen2.5-1.5b"  # the default generator; its file serves uncalibrated models
UNKNOWN = 0.5  # a probability-like signal that could not be measured

log = logging.getLogger(__name__)


def calibration_name(model: str) -> str:
    """The file name for a model spec: registry names as they are, paths by their stem."""
    stem = Path(model).name if ("/" in model or model.endswith(".gguf")) else model
    stem = stem.removesuffix(".gguf")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lower() + ".json"


@dataclass(frozen=True)
class AnswerModel:
    """P(the answer is right) from its signals: a logistic model fitted by `verirag
    calibrate` on labelled answers. `logprob` is 0 in the model for text the generator did
    not write (its logprobs measure fluency there, not doubt)."""

    SIGNALS: ClassVar[tuple[str, ...]] = (
        "support",
        "lift",
        "logprob",
        "check",
        "alignment",
        "anchor",
        "retrieval",
        "rests",
    )

    bias: float
    support: float  # the weakest claim's score
    lift: float  # the source lift mapped to [0, 1] (`lift_score`)
    logprob: float = 0.0  # the logprob confidence
    # Added 2026-12; 0 in files fitted before, which did not measure them.
    check: float = 0.0  # the judge's P(the sources give this answer to this question)
    alignment: float = 0.0  # the question's words around the sentences the claims rest on
    anchor: float = 0.0  # the question's words around the sentence holding the short answer
    # Added 2026-12-06; 0 in files fitted before.
    retrieval: float = 0.0  # the reranker's P(relevant) of the best source the model read
    # Added 2026-12-07; 0 in files fitted before.
    rests: float = 0.0  # the judge's P(supported) reading only the sentence a claim rests on

    def probability(
        self,
        support: float,
        lift: float,
        logprob: float,
        check: float = UNKNOWN,
        alignment: float = UNKNOWN,
        anchor: float = UNKNOWN,
        retrieval: float = UNKNOWN,
        rests: float = UNKNOWN,
    ) -> float:
        z = (
            self.bias
            + self.support * support
            + self.lift * lift
            + self.logprob * logprob
            + self.check * check
            + self.alignment * alignment
            + self.anchor * anchor
            + self.retrieval * retrieval
            + self.rests * rests
        )
        return sigmoid(z)


@dataclass(frozen=True)
class ClaimModel:
    """P(a claim is supported) from its raw score (the judge's P(yes) after the lexical
    penalties): a logistic model fitted by `verirag calibrate` on labelled answers."""

    bias: float
    slope: float

    def probability(self, raw: float) -> float:
        return sigmoid(self.bias + self.slope * raw)

    def raw(self, probability: float) -> float:
        """The raw score that `probability` calibrates to (its inverse): a stored claim score
        read back, so that another calibration's claim model can score it."""
        return (logit(probability) - self.bias) / self.slope


@dataclass(frozen=True)
class Thresholds:
    """Fitted per generator by `verirag calibrate`; files in the package are the defaults.

    One answer score blends the three signals (all in [0, 1]):
    `support_weight * weakest claim score + grounding_weight * source-lift score
    + (1 - both) * logprob confidence`. An answer goes to review when a claim is flagged
    or the blend is under `answer_min`: one cut on the signal the evaluation measures,
    rather than a cascade of separate cuts that each drop good answers.
    """

    version: str = "0"
    model: str = ""  # the generator these were fitted for ("" = library defaults)
    claim_support: float = 0.5  # claim score below this: unsupported
    missing_penalty: float = 0.3  # claim score factor when names/numbers are in no source
    citation_penalty: float = 0.7  # factor when a citation points to no source
    support_weight: float = 0.5
    grounding_weight: float = 0.25
    grounding_scale: float = 2.0  # lift (nats/token) to [0, 1]
    answer_min: float = 0.5  # blended score below this: review
    # A given answer (text the generator did not write, checked against the sources) is
    # flagged when its P(right) is under this: more likely wrong than right. Not fitted, like
    # the claim cut: the given-answer model is the fitted part.
    given_min: float = 0.5
    weights: ConfidenceWeights = field(default_factory=ConfidenceWeights)
    fitted_on: str = "defaults"
    # The combination the fit belongs to: the judge ("same" = the generator) and the backend
    # that produced the signals (logprobs differ between backends).
    judge: str = "same"
    backend: str = "llama.cpp"
    # Why this fit no longer describes its generator's signals (e.g. they were measured with
    # a bug since fixed); such a file still decides, but its answers say `calibrated: false`.
    stale: str = ""
    # Calibrated answer scores (version 3 files): P(right) for the generator's own answers and
    # for given answers. Without them the score is the fixed-weight blend above.
    own_model: AnswerModel | None = None
    given_model: AnswerModel | None = None
    # With it, a claim's score is its calibrated P(supported) and `claim_support` is 0.5.
    claim_model: ClaimModel | None = None
    # What the fit was measured on: sample sizes, folds, out-of-fold figures, the target
    # precision and the file of the item ids it used (excluded from every evaluation).
    report: dict[str, Any] = field(default_factory=dict)

    def weighs_check(self, given: bool) -> bool:
        """Whether the answer score reads the answer check (one judge call per answer): only
        a fitted model that kept it does, so an answer pays for it only where it counts."""
        model = self.given_model if given else self.own_model
        return model is not None and model.check != 0.0

    @property
    def weighs_rests(self) -> bool:
        """Whether the own-answer score reads the rests judge (one short judge call per
        claim): only a fitted model that kept it does."""
        return self.own_model is not None and self.own_model.rests != 0.0

    @property
    def weighs_retrieval(self) -> bool:
        """Whether the own-answer score reads the reranker's P(relevant): answers retrieved
        without the reranker lack it, and are not scored as the model was fitted."""
        return self.own_model is not None and self.own_model.retrieval != 0.0

    def covers(self, generator: str, judge: str, backend: str) -> bool:
        """Fitted for this (generator, judge, backend), so its cuts mean what they say."""
        same_judge = {self.judge, self.model} if self.judge == "same" else {self.judge}
        return (
            bool(self.model)
            and not self.stale
            and calibration_name(self.model) == calibration_name(generator)
            and (judge in same_judge or (judge == generator and self.judge == "same"))
            and self.backend == backend
        )

    @classmethod
    def load(cls, path: Path | None = None, model: str | None = None) -> Thresholds:
        """From `path`, else the packaged file for `model`, else the library defaults (an
        uncalibrated model is never judged by another model's fitted cuts; `covers` says
        whether a calibration applies)."""
        if path is not None:
            return cls.parse(path.read_text(), str(path))
        folder = resources.files("verirag.evaluators").joinpath(CALIBRATION_DIR)
        name = calibration_name(model or DEFAULT_MODEL)
        if not folder.joinpath(name).is_file():
            log.warning(
                "no calibration shipped for generator '%s': its answers are marked uncalibrated "
                "(run `verirag calibrate --generator %s` to fit one)",
                model,
                model,
            )
            return cls()
        thresholds = cls.parse(folder.joinpath(name).read_text(), name)
        if thresholds.stale:
            log.warning(
                "the calibration of '%s' is stale (%s): answers are marked uncalibrated",
                model,
                thresholds.stale,
            )
        return thresholds

    @classmethod
    def parse(cls, text: str, origin: str) -> Thresholds:
        try:
            raw: dict[str, Any] = json.loads(text)
            weights = ConfidenceWeights(**raw.pop("weights", {}))
            own, given = (raw.pop(key, None) for key in ("own_model", "given_model"))
            claim = raw.pop("claim_model", None)
            return cls(
                weights=weights,
                own_model=AnswerModel(**own) if own else None,
                given_model=AnswerModel(**given) if given else None,
                claim_model=ClaimModel(**claim) if claim else None,
                **raw,
            )
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{origin}: not a verirag calibration file ({exc}); "
                "write one with `verirag calibrate`"
            ) from exc

    def dump(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def claim_floor(missing: bool) -> float:
    """The score an undecided claim counts as: unknown (0.5), or 0 with lexical misses."""
    return 0.0 if missing else 0.5


def answer_score(
    t: Thresholds,
    support: float | None,
    lift: float | None,
    confidence: float | None,
    *,
    check: float | None = None,
    alignment: float | None = None,
    anchor: float | None = None,
    retrieval: float | None = None,
    rests: float | None = None,
) -> float:
    """The blended score of an answer; `support` is its weakest claim's score.

    `confidence` is None for an answer the generator did not write (verifying someone
    else's text): teacher-forced logprobs then reward fluency, not certainty (they ranked
    HaluEval's hallucinations above the right answers here), so the other two weights are
    renormalised instead.
    """
    lift_s = lift_score(lift, t.grounding_scale)
    known_support = UNKNOWN if support is None else support
    extra = (
        UNKNOWN if check is None else check,
        UNKNOWN if alignment is None else alignment,
        UNKNOWN if anchor is None else anchor,
        UNKNOWN if retrieval is None else retrieval,
        UNKNOWN if rests is None else rests,
    )
    if confidence is not None and t.own_model is not None:
        return t.own_model.probability(known_support, lift_s, confidence, *extra)
    if confidence is None and t.given_model is not None:
        return t.given_model.probability(known_support, lift_s, 0.0, *extra)
    ws, wg = t.support_weight, t.grounding_weight
    rest = max(0.0, 1.0 - ws - wg)
    if confidence is None:
        total = ws + wg or 1.0
        ws, wg, rest = ws / total, wg / total, 0.0
    return ws * known_support + wg * lift_s + rest * (confidence or 0.0)


def given_flagged(score: float, t: Thresholds) -> bool:
    """Whether a given answer is flagged as a likely hallucination: its answer score (the
    given-answer model's P(right)) is under `given_min`. Its claims keep their own verdicts
    but do not flag it as well: the given model already weighs what of them carries over
    (on HaluEval QA, out of fold, flagging on them too lowered the default generator's
    balanced accuracy from 0.80 to 0.74)."""
    return score < t.given_min


@dataclass(frozen=True)
class ClaimVerdict:
    verdict: Verdict
    score: float | None
    reason: str


def claim_verdict(judge: JudgeResult, lexical: LexicalEvidence, t: Thresholds) -> ClaimVerdict:
    reasons: list[str] = []
    if lexical.missing:
        reasons.append("not in any source: " + ", ".join(lexical.missing))
    if lexical.bad_citations:
        reasons.append("cites missing source " + ", ".join(f"[{n}]" for n in lexical.bad_citations))
    if judge.p_supported is None:
        reasons.append(judge.reason or "judge could not decide")
        # Lexical evidence alone can still show a claim is unsupported, never supported.
        verdict: Verdict = "unsupported" if lexical.missing else "unverified"
        return ClaimVerdict(verdict, None, "; ".join(reasons))
    score = judge.p_supported
    if lexical.missing:
        score *= t.missing_penalty
    if lexical.bad_citations:
        score *= t.citation_penalty
    if t.claim_model is not None:
        score = t.claim_model.probability(score)
    reasons.insert(0, f"judge P(yes) {judge.p_supported:.2f}")
    if t.claim_model is not None:
        reasons.insert(1, f"calibrated P(supported) {score:.2f}")
    verdict = "supported" if score >= t.claim_support else "unsupported"
    return ClaimVerdict(verdict, score, "; ".join(reasons))


# A refusal opens the answer: "I don't know", "I cannot answer", "The sources do not
# mention ...", optionally after "Based on the (provided) sources/context,". Searched anywhere,
# the same words also end real answers ("One cannot determine both position and momentum"),
# which then would go unchecked.
_IDK_OPENING = re.compile(
    r"^(?:(?:based on|according to|from|in) (?:the )?(?:provided |given )?"
    r"(?:sources?|context|documents?|information)[ ,:]+)?"
    r"(?:i (?:do not|don't|dont) know"
    r"|i (?:cannot|can't|can not|am unable to|am not able to) (?:answer|determine|tell|find)"
    r"|(?:this|the) question cannot be answered"
    r"|(?:the )?(?:provided |given )?(?:sources?|context|documents?|information) "
    r"(?:do|does|did) not (?:contain|mention|provide|say|include|specify|state|give))\b"
)


def is_abstention(text: str, idk_sentence: str) -> bool:
    """The model declined: empty, its reply opens with the IDK sentence or another refusal."""
    norm = " ".join(re.sub(r"\[\d+\]", "", text).lower().replace("’", "'").split())
    idk = " ".join(idk_sentence.lower().split())
    return not norm or norm.startswith(idk.rstrip(".")) or bool(_IDK_OPENING.match(norm))


def decide(
    *,
    relevant_sources: int,
    abstained: bool,
    verdicts: list[ClaimVerdict],
    score: float,
    t: Thresholds,
    answered: bool = True,
) -> tuple[Decision, str]:
    """`score` is `answer_score(...)` of the answer; `answered`: it has a short answer that
    says more than the question (claims can all be supported by text that answers nothing,
    e.g. the sources' titles)."""
    if relevant_sources == 0:
        return "abstain", "nothing relevant was retrieved"
    if abstained:
        return "abstain", "the model said the sources do not contain the answer"
    if not answered:
        return "review", "the answer does not answer the question"
    if not verdicts:
        return "review", "the answer has no checkable claim"
    flagged = [v for v in verdicts if v.verdict != "supported"]
    if flagged:
        kinds = sorted({v.verdict for v in flagged})
        return "review", f"{len(flagged)} of {len(verdicts)} claims {'/'.join(kinds)}"
    if score < t.answer_min:
        return "review", f"answer confidence {score:.2f} under {t.answer_min:.2f}"
    return "answer", "every claim is supported"
