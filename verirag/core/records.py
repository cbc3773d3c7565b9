"""Typed records passed between stages. No dicts cross a stage boundary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["added", "updated", "unchanged", "failed", "pruned", "deleted"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Section:
    """A heading-delimited span of a document's text (Markdown/HTML headings)."""

    start: int
    end: int
    headings: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """One loaded document. `text` is what chunk offsets refer to."""

    doc_id: str
    source: str  # absolute path, or "path#line" for JSONL records
    title: str
    text: str
    content_hash: str
    mtime: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    # Character offset at which each page starts (PDF only); page n is pages[n-1].
    page_starts: tuple[int, ...] = ()

    def page_span(self, start: int, end: int) -> tuple[int, int] | None:
        if not self.page_starts:
            return None
        import bisect

        first = bisect.bisect_right(self.page_starts, start)
        last = bisect.bisect_right(self.page_starts, max(start, end - 1))
        return (max(first, 1), max(last, 1))


@dataclass(frozen=True)
class Chunk:
    """A span `text[start:end]` of its document, embedded as one vector."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    n_tokens: int
    headings: tuple[str, ...] = ()
    pages: tuple[int, int] | None = None

    def embed_text(self, title: str) -> str:
        """What the encoder sees: the chunk with its title and heading path as context."""
        context = " > ".join(h for h in (title, *self.headings) if h)
        return f"{context}\n{self.text}" if context else self.text


@dataclass(frozen=True)
class LoadFailure:
    source: str
    reason: str


@dataclass(frozen=True)
class FileOutcome:
    source: str
    doc_id: str | None
    outcome: Outcome
    chunks: int = 0
    reason: str = ""


@dataclass
class IndexReport:
    """What one `IndexingPipeline.run` did; the CLI prints it, `--json` dumps it."""

    collection: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    pruned: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    outcomes: list[FileOutcome] = field(default_factory=list)

    def record(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.outcome in ("added", "updated", "unchanged", "failed", "pruned"):
            setattr(self, outcome.outcome, getattr(self, outcome.outcome) + 1)

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "pruned": self.pruned,
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_second": round(self.chunks_added / self.seconds, 2)
            if self.seconds > 0
            else None,
            "failures": [{"source": o.source, "reason": o.reason} for o in self.failures],
        }


@dataclass(frozen=True)
class SearchHit:
    """One retrieved chunk with its score and where it came from."""

    rank: int
    score: float
    chunk_id: int
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    headings: tuple[str, ...] = ()
    pages: tuple[int, int] | None = None
    dense_score: float | None = None  # cosine to the query
    bm25_score: float | None = None  # None: not among BM25's candidates
    collection: str = ""  # the collection it came from
    # The reranker's logistic score (a logit of P(relevant)); kept when collections are
    # merged by rank and `score` is replaced. None: not reranked.
    rerank_score: float | None = None


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    source: str
    title: str
    content_hash: str
    n_chunks: int
    indexed_at: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionStats:
    name: str
    documents: int
    chunks: int
    vectors: int
    dim: int
    embedder: str
    index_type: str
    generation: int
    disk_bytes: int
    chunk_tokens: int
    chunk_overlap: int


@dataclass(frozen=True)
class Citation:
    """A numbered source shown to the model, and where it sits in its document."""

    number: int
    chunk_id: int
    doc_id: str
    source: str
    title: str
    start: int
    end: int
    snippet: str
    pages: tuple[int, int] | None = None
    headings: tuple[str, ...] = ()
    collection: str = ""  # the collection the source came from


@dataclass(frozen=True)
class EvidenceSpan:
    """Where in cited source `source` (its number) a claim rests: `text[start:end]` of that
    source as the model saw it (the citation's snippet)."""

    source: int
    start: int
    end: int


@dataclass(frozen=True)
class ClaimResult:
    text: str
    start: int  # span in the answer text
    end: int
    citations: tuple[int, ...]
    verdict: str  # supported | unsupported | unverified
    score: float | None
    reason: str
    judge_p: float | None = None
    missing_terms: tuple[str, ...] = ()
    evidence: tuple[EvidenceSpan, ...] = ()  # the sentence it rests on, per cited source


@dataclass(frozen=True)
class Timings:
    retrieve: float = 0.0
    generate: float = 0.0
    verify: float = 0.0
    total: float = 0.0
    first_token: float = 0.0
    decode_tokens_per_second: float = 0.0


@dataclass(frozen=True)
class Answer:
    question: str
    collection: str  # one name, or several asked at once joined by "," (`joined_collections`)
    text: str
    decision: str  # answer | review | abstain
    decision_reason: str
    confidence: float  # claims, source lift and logprobs blended (`answer_score`), [0, 1]
    claims: tuple[ClaimResult, ...]
    citations: tuple[Citation, ...]  # the sources given to the model, numbered
    retrieved: tuple[SearchHit, ...]
    generator: str
    prompt_version: str
    params: dict[str, Any]
    timings: Timings
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    review_id: int | None = None
    source_lift: float | None = None  # nats/token the sources add to the answer's likelihood
    logprob_confidence: float = 0.0  # from the generator's own token logprobs alone, [0, 1]
    confidence_features: dict[str, float] = field(default_factory=dict)
    # The fewest words that answer the question, taken from `text`; "" when it declines or
    # when neither the model nor `text` names anything the question does not already say.
    short_answer: str = ""
    # The judge's P(the sources give this answer to this question), and the share of the
    # question's content words around the source sentences the claims rest on: whether the
    # sources are about what was asked, which a claim's support does not say. None: not
    # measured (withheld answers).
    answer_check: float | None = None
    question_alignment: float | None = None
    # The same share around the source sentence that holds the short answer: whether what the
    # model named stands where the question is asked (`anchor_alignment`). None: not measured.
    answer_anchor: float | None = None
    # The reranker's P(relevant) of the best source the model read: whether retrieval found a
    # source about what was asked, which no check of the answer against that source can say
    # (a right-looking answer from the wrong document). None: not reranked, or withheld.
    retrieval_confidence: float | None = None
    # The judge's P(supported) of the weakest claim when it reads only the source sentence the
    # claim rests on, not the whole context. None: not measured (the calibration gives it no
    # weight and every signal was not asked for), undecided, or withheld.
    rests_support: float | None = None
    # The share of short answers sampled again from the sources that agree with this one
    # (`agreement_samples`); None: not measured.
    sample_agreement: float | None = None
    # The decision's cuts were fitted for this (generator, judge, backend); False: they were
    # not, and `confidence` and the verdicts are not calibrated probabilities.
    calibrated: bool = False
    # Which calibration decided it: "shipped: qwen2.5-1.5b version 11", "collection 'reviews':
    # qwen2.5-1.5b version 12" (the collection's own), "file PATH: ...", "given: ..."; "" in
    # answers logged before it was recorded.
    calibration: str = ""
    # The question as the user asked it, when earlier turns of a conversation made `question`
    # (what was retrieved for, answered and checked) a standalone rewrite of it; "" otherwise.
    follow_up: str = ""
    # What the model itself named when `short_answer` is not that: extracted from `text` (it
    # named none, "", or only the question's words), a name or word it cut short run on to its
    # end ("Trout" shown as "Trout River"), or a list cut to what was asked ("Eisleben, 15
    # February 1546" shown as "Eisleben"); None: the model named `short_answer` itself. The answer
    # anchor, the answer check and the is-it-an-answer check read what it named, as they were
    # calibrated.
    short_answer_named: str | None = None
    # `short_answer` is words of `text` the question does not already say, because the model
    # named none of its own (`extracted_short_answer`); a name it named and the display ran
    # on, or a list it named cut to what was asked, is its own.
    short_answer_extracted: bool = False

    @property
    def named_short_answer(self) -> str:
        """The short answer the model named itself ("" for none)."""
        return self.short_answer if self.short_answer_named is None else self.short_answer_named

    @property
    def flagged(self) -> list[ClaimResult]:
        return [c for c in self.claims if c.verdict != "supported"]


# Collection names never hold a comma (`validate_name`), so one string can name several.
COLLECTION_SEPARATOR = ","


def joined_collections(names: Sequence[str]) -> str:
    """The `Answer.collection` of an answer drawn from `names` (in the order asked)."""
    return COLLECTION_SEPARATOR.join(names)


def split_collections(label: str) -> tuple[str, ...]:
    """The collections an `Answer.collection` (or a review item's) names."""
    return tuple(name for name in label.split(COLLECTION_SEPARATOR) if name)
