"""Request and response bodies of the HTTP API.

Kept apart from `verirag.core.records`: the wire format is a contract with clients and changes
by versioned path, the internal dataclasses change with the code. Conversions are explicit.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verirag.core.records import (
    Answer,
    Citation,
    ClaimResult,
    DocumentInfo,
    FileOutcome,
    SearchHit,
    Timings,
)
from verirag.generators.params import GenerationParams
from verirag.pipeline.review import ReviewItem

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Problem(_Out):
    """RFC 9457 problem details (every 4xx and 5xx, as application/problem+json)."""

    type: str = Field(examples=["urn:verirag:problem:unknown-collection"])
    title: str
    status: int
    detail: str


# -- ask -------------------------------------------------------------------------------------
class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="not empty, at most `max_question_chars` characters")
    collection: str = Field(default="default", pattern=COLLECTION_PATTERN)
    k: int | None = Field(default=None, ge=1, description="sources to retrieve (≤ api_max_k)")
    # Generation parameters: null or absent = the default. Defaults and ranges are
    # `GenerationParams`', checked by the builder the CLI uses too; a violation is a 422
    # problem naming every bad parameter.
    max_tokens: int | None = Field(
        default=None, description="default: the max_tokens setting; at most api_max_tokens"
    )
    temperature: float | None = Field(default=None, description="default 0 (greedy)")
    top_p: float | None = None
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: list[str] | None = None
    seed: int | None = None

    def generation_fields(self) -> dict[str, Any]:
        return self.model_dump(include={f.name for f in fields(GenerationParams)})


class ClaimOut(_Out):
    text: str
    start: int
    end: int
    citations: list[int]
    verdict: str
    score: float | None
    reason: str
    judge_p: float | None
    missing_terms: list[str]

    @classmethod
    def of(cls, claim: ClaimResult) -> ClaimOut:
        return cls(
            text=claim.text,
            start=claim.start,
            end=claim.end,
            citations=list(claim.citations),
            verdict=claim.verdict,
            score=claim.score,
            reason=claim.reason,
            judge_p=claim.judge_p,
            missing_terms=list(claim.missing_terms),
        )


class CitationOut(_Out):
    number: int
    chunk_id: int
    doc_id: str
    source: str
    title: str
    start: int
    end: int
    snippet: str
    pages: list[int] | None
    headings: list[str]

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        return cls(
            number=c.number,
            chunk_id=c.chunk_id,
            doc_id=c.doc_id,
            source=c.source,
            title=c.title,
            start=c.start,
            end=c.end,
            snippet=c.snippet,
            pages=list(c.pages) if c.pages else None,
            headings=list(c.headings),
        )


class HitOut(_Out):
    rank: int
    score: float
    chunk_id: int
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    headings: list[str]
    pages: list[int] | None
    dense_score: float | None
    bm25_score: float | None

    @classmethod
    def of(cls, h: SearchHit) -> HitOut:
        return cls(
            rank=h.rank,
            score=h.score,
            chunk_id=h.chunk_id,
            doc_id=h.doc_id,
            source=h.source,
            title=h.title,
            text=h.text,
            start=h.start,
            end=h.end,
            headings=list(h.headings),
            pages=list(h.pages) if h.pages else None,
            dense_score=h.dense_score,
            bm25_score=h.bm25_score,
        )


class TimingsOut(_Out):
    retrieve: float
    generate: float
    verify: float
    total: float
    first_token: float
    decode_tokens_per_second: float

    @classmethod
    def of(cls, t: Timings) -> TimingsOut:
        return cls(
            retrieve=t.retrieve,
            generate=t.generate,
            verify=t.verify,
            total=t.total,
            first_token=t.first_token,
            decode_tokens_per_second=t.decode_tokens_per_second,
        )


class AnswerOut(_Out):
    question: str
    collection: str
    short_answer: str = Field(
        description="the fewest words that answer the question, taken from `text`; empty when "
        "the answer declines or names none"
    )
    text: str
    decision: Literal["answer", "review", "abstain"]
    decision_reason: str
    confidence: float
    calibrated: bool = Field(
        description="the decision's cuts were fitted for this generator, judge and backend; "
        "false: confidence and verdicts are not calibrated"
    )
    logprob_confidence: float
    source_lift: float | None
    claims: list[ClaimOut]
    citations: list[CitationOut]
    retrieved: list[HitOut]
    generator: str
    prompt_version: str
    params: dict[str, Any]
    timings: TimingsOut
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    review_id: int | None

    @classmethod
    def of(cls, a: Answer) -> AnswerOut:
        return cls(
            question=a.question,
            collection=a.collection,
            short_answer=a.short_answer,
            text=a.text,
            decision=a.decision,  # type: ignore[arg-type]
            decision_reason=a.decision_reason,
            confidence=a.confidence,
            calibrated=a.calibrated,
            logprob_confidence=a.logprob_confidence,
            source_lift=a.source_lift,
            claims=[ClaimOut.of(c) for c in a.claims],
            citations=[CitationOut.of(c) for c in a.citations],
            retrieved=[HitOut.of(h) for h in a.retrieved],
            generator=a.generator,
            prompt_version=a.prompt_version,
            params={k: list(v) if isinstance(v, tuple) else v for k, v in a.params.items()},
            timings=TimingsOut.of(a.timings),
            prompt_tokens=a.prompt_tokens,
            completion_tokens=a.completion_tokens,
            finish_reason=a.finish_reason,
            review_id=a.review_id,
        )


# -- collections, documents, jobs ------------------------------------------------------------
class CollectionOut(_Out):
    name: str


class DocumentOut(_Out):
    doc_id: str
    source: str
    title: str
    content_hash: str
    chunks: int
    indexed_at: float

    @classmethod
    def of(cls, d: DocumentInfo) -> DocumentOut:
        return cls(
            doc_id=d.doc_id,
            source=d.source,
            title=d.title,
            content_hash=d.content_hash,
            chunks=d.n_chunks,
            indexed_at=d.indexed_at,
        )


class DocumentPage(_Out):
    collection: str
    total: int
    offset: int
    limit: int
    items: list[DocumentOut]


class DeletedDocument(_Out):
    doc_id: str
    source: str


class DeleteResult(_Out):
    collection: str
    deleted: list[DeletedDocument]


class FileOutcomeOut(_Out):
    source: str
    doc_id: str | None
    outcome: str
    chunks: int
    reason: str

    @classmethod
    def of(cls, o: FileOutcome) -> FileOutcomeOut:
        return cls(
            source=o.source, doc_id=o.doc_id, outcome=o.outcome, chunks=o.chunks, reason=o.reason
        )


class UploadedFile(_Out):
    filename: str  # as sent by the client
    saved_as: str  # the sanitised name the document is indexed under
    bytes: int


class JobAccepted(_Out):
    job_id: str
    status: str
    collection: str
    files: list[UploadedFile]
    location: str


class JobOut(_Out):
    job_id: str
    collection: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: float
    started_at: float | None
    finished_at: float | None
    files: list[str]
    added: int
    updated: int
    unchanged: int
    failed: int
    chunks_added: int
    outcomes: list[FileOutcomeOut]
    error: str


# -- review ----------------------------------------------------------------------------------
class ReviewItemOut(_Out):
    id: int
    created_at: float
    collection: str
    question: str
    answer_text: str
    decision_reason: str
    confidence: float
    flagged_claims: int
    status: str
    resolution: str | None
    note: str

    @classmethod
    def of(cls, item: ReviewItem) -> ReviewItemOut:
        return cls(
            id=item.id,
            created_at=item.created_at,
            collection=item.collection,
            question=item.question,
            answer_text=item.answer_text,
            decision_reason=item.decision_reason,
            confidence=item.confidence,
            flagged_claims=item.flagged_claims,
            status=item.status,
            resolution=item.resolution,
            note=item.note,
        )


class ReviewResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Literal["correct", "incorrect", "partially-correct"]
    note: str = Field(default="", max_length=4000)


# -- health ----------------------------------------------------------------------------------
class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready", "loading", "failed"]
    detail: str
