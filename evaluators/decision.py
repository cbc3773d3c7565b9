"""Per-claim verdicts and the answer decision. Pure Python; thresholds from a shipped file."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from evaluators.confidence import ConfidenceWeights
from evaluators.judge import JudgeResult
from evaluators.lexical import LexicalEvidence

Verdict = Literal["supported", "unsupported", "unverified"]
Decision = Literal["answer", "review", "abstain"]
CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Thresholds:
    """Fitted by `verirag calibrate`; the file in the package is the shipped default."""

    version: str = "0"
    claim_support: float = 0.5  # claim score below this: unsupported
    confidence: float = 0.35  # logprob confidence below this: review
    missing_penalty: float = 0.3  # claim score factor when names/numbers are in no source
    citation_penalty: float = 0.7  # factor when a citation points to no source
    # combined = support_weight * claim score + grounding_weight * lift score
    #            + (1 - both) * logprob confidence
    support_weight: float = 0.5
    grounding_weight: float = 0.5
    grounding_scale: float = 2.0  # lift (nats/token) to [0, 1]
    grounding_min: float = 0.0  # answers whose source lift is below this go to review
    weights: ConfidenceWeights = field(default_factory=ConfidenceWeights)
    fitted_on: str = "defaults"

    @classmethod
    def load(cls, path: Path | None = None) -> Thresholds:
        if path is None:
            text = resources.files("evaluators").joinpath(CALIBRATION_FILE).read_text()
        else:
            text = path.read_text()
        raw = json.loads(text)
        weights = ConfidenceWeights(**raw.pop("weights", {}))
        return cls(weights=weights, **raw)

    def dump(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


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
    reasons.insert(0, f"judge P(supported) {judge.p_supported:.2f}")
    verdict = "supported" if score >= t.claim_support else "unsupported"
    return ClaimVerdict(verdict, score, "; ".join(reasons))


_IDK_CORE = re.compile(
    r"\b(i (?:do not|don't|dont) know|cannot (?:be )?(?:answer|determine)|"
    r"(?:sources|context) (?:do|does) not (?:contain|mention|provide|say))\b"
)


def is_abstention(text: str, idk_sentence: str) -> bool:
    norm = " ".join(re.sub(r"\[\d+\]", "", text).lower().replace("’", "'").split())
    idk = " ".join(idk_sentence.lower().split())
    return not norm or norm.startswith(idk.rstrip(".")) or bool(_IDK_CORE.search(norm))


def decide(
    *,
    relevant_sources: int,
    abstained: bool,
    verdicts: list[ClaimVerdict],
    confidence: float,
    t: Thresholds,
    lift: float | None = None,
) -> tuple[Decision, str]:
    if relevant_sources == 0:
        return "abstain", "nothing relevant was retrieved"
    if abstained:
        return "abstain", "the model said the sources do not contain the answer"
    if not verdicts:
        return "review", "the answer has no checkable claim"
    flagged = [v for v in verdicts if v.verdict != "supported"]
    if flagged:
        kinds = sorted({v.verdict for v in flagged})
        return "review", f"{len(flagged)} of {len(verdicts)} claims {'/'.join(kinds)}"
    if lift is not None and lift < t.grounding_min:
        return "review", (
            f"the sources barely support the answer's wording (lift {lift:.2f} nats/token "
            f"under {t.grounding_min:.2f}): it may come from the model's memory"
        )
    if confidence < t.confidence:
        return "review", f"generation confidence {confidence:.2f} under {t.confidence:.2f}"
    return "answer", "every claim is supported"
