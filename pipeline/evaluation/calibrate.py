"""`verirag calibrate`: the labelled signals a calibration is fitted on.

The generator answers SQuAD questions twice, once with the question's paragraph indexed and
once without it (right = the source was there and the answer contains a gold answer), and
its checks score HaluEval QA's right and hallucinated answers, and optionally HaluEval
summarization's (a second set, which the given-answer model must also hold on). The data
collection lives here; the fit is `calibration_fit` (format 3: calibrated probabilities, a
cut for a target precision, out-of-fold figures only). Every sampled item is listed in the
calibration's exclusion file, and `--avoid` keeps a test set out of the sample.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from verirag.core.records import Answer
from verirag.evaluators.alignment import anchor_alignment
from verirag.evaluators.confidence import ConfidenceFeatures
from verirag.evaluators.decision import claim_floor
from verirag.pipeline.evaluation.datasets import Passage, Question
from verirag.pipeline.evaluation.hallucination import (
    HaluPair,
    Signals,
    SignalScorer,
    load_halueval,
    score_pairs,
)
from verirag.pipeline.evaluation.metrics import answer_contains
from verirag.pipeline.evaluation.qa import squad_qa_sample


def fit_logistic(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], l2: float = 1.0
) -> tuple[float, npt.NDArray[np.float64]]:
    """(bias, weights) of an L2-regularised logistic regression, fitted on standardised
    features (so the penalty does not depend on each feature's unit) and returned in raw
    units."""
    scaler = StandardScaler().fit(x)
    # L2 with C = 1 / l2: summed log loss + l2/2 * |w|^2, intercept unpenalised. The default
    # l2 = 1 shrinks only mildly, but keeps the weights finite when a feature separates the few
    # hundred labelled answers. A tight tol: the fit is tiny, and refits should land on the
    # optimum itself rather than wherever lbfgs' default tolerance stops.
    model = LogisticRegression(C=1.0 / l2, tol=1e-10, max_iter=1000)
    model.fit(scaler.transform(x), y)
    raw_w = np.asarray(model.coef_[0] / scaler.scale_, dtype=np.float64)
    return float(model.intercept_[0] - raw_w @ scaler.mean_), raw_w


def _feature_row(f: ConfidenceFeatures) -> list[float]:
    return [f.mean_logprob, f.min_logprob, f.mean_entropy, f.low_share]


@dataclass(frozen=True)
class Sources:
    """What an answer was read from, kept so that a new text signal can be measured on the
    stored answers without the models: the question, the answer, its short answer, and the
    numbered sources with their retrieval scores."""

    question: str = ""
    answer: str = ""
    short: str = ""
    texts: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    dense: tuple[float | None, ...] = ()  # each source's cosine to the question

    @property
    def read(self) -> tuple[str, ...]:
        """Each source as the verifier read it (`PackedContext.texts`: the title, then the
        body), so a text signal measured again sees what the pipeline saw. Headings are not
        stored: the calibration corpora (SQuAD passages) have none."""
        if len(self.titles) != len(self.texts):
            return self.texts
        return tuple(
            f"{title} \n{text}" for title, text in zip(self.titles, self.texts, strict=True)
        )


@dataclass(frozen=True)
class OwnAnswer:
    """One of the generator's own answers, reduced to what the decision sees."""

    features: ConfidenceFeatures
    lift: float | None
    claim_scores: tuple[float, ...]  # undecided claims at their floor
    correct: bool
    item_id: str = ""  # the SQuAD question id
    check: float | None = None  # the judge's P(the sources give this answer to the question)
    alignment: float | None = None  # question words around the sentences claims rest on
    indexed: bool = True  # the question's paragraph was indexed
    sources: Sources = field(default_factory=Sources)
    anchor: float | None = None  # question words around the sentence holding the short answer
    retrieval: float | None = None  # the reranker's P(relevant) of the best source read
    rests: float | None = None  # the judge's P(supported) reading the sentence a claim rests on


@dataclass(frozen=True)
class Asked:
    """The outcome of one question asked while calibrating, labelled or not: what the
    unanswerable-question figures (withheld when the paragraph was left out) count."""

    item_id: str
    indexed: bool
    decision: str
    contains_gold: bool


def _sources(answer: Answer) -> Sources:
    dense = {h.chunk_id: h.dense_score for h in answer.retrieved}
    return Sources(
        answer.question,
        answer.text,
        answer.named_short_answer,  # what the anchor reads
        tuple(c.snippet for c in answer.citations),
        tuple(c.title for c in answer.citations),
        tuple(dense.get(c.chunk_id) for c in answer.citations),
    )


def own_answer(
    answer: Answer, gold: Sequence[str], gold_indexed: bool, item_id: str = ""
) -> OwnAnswer | None:
    """Label an answer: right = its source was indexed and it contains a gold answer; wrong =
    it misses every gold answer, or was given although its source was left out. None for
    abstentions, and for answers without their source that still contain a gold answer
    (from the model's memory or a sibling passage: not decidable here)."""
    if answer.decision == "abstain" or not answer.claims:
        return None
    hit = answer_contains(answer.text, gold)
    if not gold_indexed and hit:
        return None
    return OwnAnswer(
        ConfidenceFeatures.from_dict(answer.confidence_features),
        answer.source_lift,
        tuple(
            c.score if c.score is not None else claim_floor(bool(c.missing_terms))
            for c in answer.claims
        ),
        gold_indexed and hit,
        item_id,
        answer.answer_check,
        answer.question_alignment,
        gold_indexed,
        _sources(answer),
        answer.answer_anchor,
        answer.retrieval_confidence,
        answer.rests_support,
    )


@dataclass(frozen=True)
class HaluRow:
    """One HaluEval answer's signals, as stored for refitting."""

    features: ConfidenceFeatures
    support: float
    lift: float | None
    judge: float | None
    lexical: float
    right: bool
    item_id: str = ""  # the HaluEval pair id (both answers of a pair share it)
    check: float | None = None
    alignment: float | None = None
    anchor: float | None = None
    retrieval: float | None = None  # never measured: given text was not retrieved here
    rests: float | None = None  # never measured: an own-answer signal, like retrieval


@dataclass(frozen=True)
class HeldOutAnswer:
    """An own answer from an evaluation run of today's pipeline, never fitted on by the
    answer model: the answer model's intercept is recalibrated on these
    (`calibration_fit.recalibrate`), so that its probabilities hold for the answers the
    pipeline gives now and not only for those the calibration's questions drew."""

    item_id: str
    run: str  # the evaluation run's directory name
    correct: bool
    support: float | None  # the weakest claim's raw score (before the claim model)
    lift: float | None
    logprob: float
    check: float | None = None
    alignment: float | None = None
    anchor: float | None = None
    retrieval: float | None = None
    rests: float | None = None


@dataclass(frozen=True)
class CalibrationData:
    """Everything the fit needs; collected once with the models, refit without them."""

    own: list[OwnAnswer]
    halueval: list[HaluRow]
    abstained_without_source: int
    described: str  # the generator, samples and seed
    # Every item sampled, whether or not it was labelled: evaluations leave these ids out.
    excluded: dict[str, list[str]] = field(default_factory=dict)
    asked: list[Asked] = field(default_factory=list)  # every question's outcome
    # HaluEval summarization answers, never fitted on: the given-answer model's signals are
    # chosen so that a model fitted on HaluEval QA also holds here (a second domain).
    confirm: list[HaluRow] = field(default_factory=list)
    # Own answers of evaluation runs the answer model's intercept is recalibrated on (their
    # ids are excluded too); empty: the out-of-fold fit stands as it is.
    held_out: list[HeldOutAnswer] = field(default_factory=list)
    # Own answers of evaluation runs the own-answer model is fitted on again, every weight
    # and the cut (`calibration_fit.refit_own`; their ids are excluded too). They supersede
    # the held-out recalibration, which would move an intercept the refit has just set.
    refit: list[HeldOutAnswer] = field(default_factory=list)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> CalibrationData:
        raw = json.loads(path.read_text())

        return cls(
            own=[own_from_dict(o) for o in raw["own"]],
            halueval=[_halu_row(h) for h in raw["halueval"]],
            abstained_without_source=raw["abstained_without_source"],
            described=raw["described"],
            excluded=raw.get("excluded", {}),
            asked=[Asked(**a) for a in raw.get("asked", [])],
            confirm=[_halu_row(h) for h in raw.get("confirm", [])],
            held_out=[HeldOutAnswer(**h) for h in raw.get("held_out", [])],
            refit=[HeldOutAnswer(**h) for h in raw.get("refit", [])],
        )


def own_from_dict(o: dict[str, Any]) -> OwnAnswer:
    """An `OwnAnswer` from its JSON form (files written before a field existed lack it)."""
    src = o.get("sources") or {}
    sources = Sources(
        question=src.get("question", ""),
        answer=src.get("answer", ""),
        short=src.get("short", ""),
        texts=tuple(src.get("texts", ())),
        titles=tuple(src.get("titles", ())),
        dense=tuple(src.get("dense", ())),
    )
    anchor = o.get("anchor")
    if anchor is None and sources.question and sources.texts:
        # Pure text: files from before the anchor existed are measured from what they kept,
        # each source read as the verifier reads it (title, then body).
        anchor = anchor_alignment(sources.question, sources.short, sources.read)
    return OwnAnswer(
        ConfidenceFeatures.from_dict(o["features"]),
        o["lift"],
        tuple(o["claim_scores"]),
        o["correct"],
        o.get("item_id", ""),
        o.get("check"),
        o.get("alignment"),
        o.get("indexed", True),
        sources,
        anchor,
        o.get("retrieval"),
        o.get("rests"),
    )


# Indexes a corpus as a collection and returns a function that asks it one question.
Asker = Callable[[str, list[Passage]], Callable[[str], Answer]]
# (part, items done, items in all)
Progress = Callable[[str, int, int], None]


class Checkpoint:
    """Measured items, one JSON line each as soon as measured: a calibration run takes hours,
    and one stopped half-way resumes where it stopped instead of from the start."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.done[(entry["part"], entry["id"])] = entry

    def get(self, part: str, item_id: str) -> dict[str, Any] | None:
        return self.done.get((part, item_id))

    def put(self, part: str, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        entry = {"part": part, "id": item_id, **body}
        self.done[(part, item_id)] = entry
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        return entry


HALUEVAL_PART, CONFIRM_PART = "halueval", "summaries"  # checkpoint parts


def _halu_row(raw: dict[str, Any]) -> HaluRow:
    return HaluRow(**{**raw, "features": ConfidenceFeatures.from_dict(raw["features"])})


def collect(
    *,
    scorer: SignalScorer,
    ask: Asker,
    squad_path: Path,
    halueval_path: Path,
    pairs: int,
    questions: int,
    distractors: int,
    seed: int,
    generator_name: str,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
    avoid: dict[str, frozenset[str]] | None = None,
    deadline: float | None = None,
    confirm_path: Path | None = None,
    confirm_pairs: int = 0,
) -> CalibrationData:
    """Score each HaluEval pair (QA, then `confirm_pairs` of the summarization file at
    `confirm_path`), then ask each SQuAD question with its paragraph indexed and
    without it. Items already in `checkpoint` (same samples) are not measured again.
    `avoid`: ids ("squad", "halueval") never to sample, e.g. a test set's. `deadline` (a
    `time.monotonic()` value): no new item is started after it, and the data holds the items
    measured by then (a question with and without its paragraph, or not at all)."""
    avoid = avoid or {}
    saved = Checkpoint(checkpoint)

    def in_time() -> bool:
        return deadline is None or time.monotonic() < deadline

    def score(part: str, path: Path, n_pairs: int) -> tuple[list[HaluRow], list[HaluPair]]:
        return score_halueval(
            scorer,
            path,
            n_pairs,
            seed,
            saved,
            part,
            avoid=avoid,
            progress=progress,
            in_time=in_time,
        )

    halueval, measured_pairs = score(HALUEVAL_PART, halueval_path, pairs)
    confirm: list[HaluRow] = []
    confirm_done: list[HaluPair] = []
    if confirm_path is not None and confirm_pairs > 0:
        confirm, confirm_done = score(CONFIRM_PART, confirm_path, confirm_pairs)
    sample = squad_qa_sample(
        squad_path, questions, distractors, seed, avoid.get("squad", frozenset())
    )
    own: list[OwnAnswer] = []
    asked: list[Asked] = []
    askers: dict[str, Callable[[str], Answer]] = {}
    corpora = {"with-gold": sample.corpus, "without-gold": sample.distractors}
    measured: list[Question] = []
    for n, q in enumerate(sample.questions, 1):
        entries = [saved.get(part, q.qid) for part in corpora]
        if None in entries and not in_time():
            break
        for part, entry in zip(corpora, entries, strict=True):
            indexed = part == "with-gold"
            if entry is None:
                if part not in askers:
                    askers[part] = ask(part, corpora[part])
                answer = askers[part](q.question)
                row = own_answer(answer, q.answers, indexed, q.qid)
                outcome = Asked(
                    q.qid, indexed, answer.decision, answer_contains(answer.text, q.answers)
                )
                entry = saved.put(
                    part, q.qid, {"asked": asdict(outcome), "own": asdict(row) if row else None}
                )
            asked.append(Asked(**entry["asked"]))
            if entry["own"] is not None:
                own.append(own_from_dict(entry["own"]))
        measured.append(q)
        if progress is not None:
            progress("squad", n, len(sample.questions))
    return CalibrationData(
        own,
        halueval,
        sum(not a.indexed and a.decision == "abstain" for a in asked),
        f"{generator_name}; SQuAD v1.1 dev {len(measured)} questions with and without their "
        f"paragraph among {distractors} others, HaluEval QA {len(measured_pairs)} pairs"
        + (f", HaluEval summarization {len(confirm_done)} pairs" if confirm_done else "")
        + f"; seed {seed}",
        excluded=excluded_ids(measured, [*measured_pairs, *confirm_done]),
        asked=asked,
        confirm=confirm,
    )


def score_halueval(
    scorer: SignalScorer,
    path: Path,
    pairs: int,
    seed: int,
    saved: Checkpoint,
    part: str,
    *,
    avoid: dict[str, frozenset[str]] | None = None,
    progress: Progress | None = None,
    in_time: Callable[[], bool] = lambda: True,
) -> tuple[list[HaluRow], list[HaluPair]]:
    """The rows of a seeded sample of HaluEval pairs (QA or summarization), each pair saved
    under `part` as it is scored; the pairs measured before `in_time` turned false."""
    chosen = load_halueval(path, pairs, seed, (avoid or {}).get("halueval", frozenset()))
    rows: list[HaluRow] = []
    done: list[HaluPair] = []
    for n, pair in enumerate(chosen, 1):
        entry = saved.get(part, pair.pair_id)
        if entry is None:
            if not in_time():
                break
            measured = [
                _halu_from_signals(s, right, pair.pair_id)
                for s, right in score_pairs(scorer, [pair])
            ]
            entry = saved.put(part, pair.pair_id, {"rows": [asdict(r) for r in measured]})
        rows += [_halu_row(r) for r in entry["rows"]]
        done.append(pair)
        if progress is not None:
            progress(part, n, len(chosen))
    return rows, done


def _excluding(data: CalibrationData, rows: list[HaluRow]) -> dict[str, list[str]]:
    """`data`'s exclusion list with the pair ids of `rows` added."""
    ids = {*data.excluded.get("halueval", ()), *(h.item_id for h in rows)}
    return {**data.excluded, "halueval": sorted(ids)}


def with_second_set(data: CalibrationData, rows: list[HaluRow], pairs: int) -> CalibrationData:
    """Signals measured earlier, with a second set of given answers added (and excluded)."""
    return replace(
        data,
        confirm=rows,
        excluded=_excluding(data, rows),
        described=f"{data.described}; plus HaluEval summarization {pairs} pairs",
    )


def with_more_pairs(data: CalibrationData, rows: list[HaluRow], pairs: int) -> CalibrationData:
    """Signals measured earlier, with more HaluEval QA pairs to fit on (and excluded)."""
    return replace(
        data,
        halueval=[*data.halueval, *rows],
        excluded=_excluding(data, rows),
        described=f"{data.described}; plus HaluEval QA {pairs} pairs",
    )


def with_held_out(
    data: CalibrationData, rows: Sequence[HeldOutAnswer], only: bool = False
) -> CalibrationData:
    """Signals measured earlier, with own answers of evaluation runs to recalibrate the answer
    model's intercept on (and excluded). A question already held out keeps its first answer,
    so adding the same run twice changes nothing; no rows change nothing either. `only`: the
    rows replace the earlier held-out answers (a collection's domain is recalibrated on its
    own answers alone; the earlier ones, of another domain, stay excluded)."""
    if not rows:
        return data
    held = {} if only else {h.item_id: h for h in data.held_out}
    earlier = {h.item_id for h in data.held_out}
    for row in rows:
        held.setdefault(row.item_id, row)
    runs = sorted({h.run for h in held.values()})
    described = data.described.split("; held out: ")[0]
    return replace(
        data,
        held_out=list(held.values()),
        excluded={
            **data.excluded,
            "squad": sorted({*data.excluded.get("squad", ()), *earlier, *held}),
        },
        described=f"{described}; held out: {len(held)} own answers of {', '.join(runs)}",
    )


def with_refit(
    data: CalibrationData, rows: Sequence[HeldOutAnswer], anew: bool = False
) -> CalibrationData:
    """Signals measured earlier, with own answers of evaluation runs that the own-answer model
    is fitted on again (`calibration_fit.refit_own`), their ids excluded from every later
    sample. A question already listed keeps its first answer; no rows change nothing. `anew`:
    the rows replace the answers an earlier refit stored (runs from before a signal existed,
    which would keep it out of the refit); those stay excluded."""
    if not rows:
        return data
    earlier = {h.item_id for h in data.refit}
    refit = {} if anew else {h.item_id: h for h in data.refit}
    for row in rows:
        refit.setdefault(row.item_id, row)
    runs = sorted({h.run for h in refit.values()})
    return replace(
        data,
        refit=list(refit.values()),
        excluded={
            **data.excluded,
            "squad": sorted({*data.excluded.get("squad", ()), *earlier, *refit}),
        },
        described=f"{data.described.split('; refit on: ')[0]}; refit on: {len(refit)} own "
        f"answers of {', '.join(runs)}",
    )


def with_own_answers(data: CalibrationData, fresh: CalibrationData, how: str) -> CalibrationData:
    """Signals measured earlier, with their own answers replaced by `fresh`'s (asked by the
    pipeline as it is now): a generator's own answers are only evidence for the pipeline that
    gave them, and one that changed since (how it names its short answer, say) would be
    calibrated on answers it no longer gives. Every id either sample drew stays excluded;
    `how` says how the fresh ones were sampled."""
    excluded = {
        part: sorted({*data.excluded.get(part, ()), *fresh.excluded.get(part, ())})
        for part in {*data.excluded, *fresh.excluded}
    }
    return replace(
        data,
        own=fresh.own,
        asked=fresh.asked,
        abstained_without_source=fresh.abstained_without_source,
        excluded=excluded,
        described=f"{data.described}; own answers replaced by {how}",
    )


def _halu_from_signals(s: Signals, right: bool, pair_id: str) -> HaluRow:
    return HaluRow(
        s.features,
        s.support,
        s.lift,
        s.judge,
        s.lexical,
        right,
        pair_id,
        s.check,
        s.alignment,
        s.anchor,
    )


def excluded_ids(questions: Sequence[Question], pairs: Sequence[HaluPair]) -> dict[str, list[str]]:
    """The ids a calibration sampled, shipped beside it so that no evaluation reuses them."""
    return {
        "squad": sorted(q.qid for q in questions),
        "halueval": sorted(p.pair_id for p in pairs),
    }
