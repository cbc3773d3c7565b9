"""Request and response bodies of the HTTP API.

Kept apart from `verirag.core.records`: the wire format is a contract with clients and changes
by versioned path, the internal dataclasses change with the code. The response models are
validated from the records' attributes by field name (`from_attributes`): a field renamed on
one side fails at run time, not in mypy.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from verirag.core.records import Message
from verirag.generators.params import GenerationParams
from verirag.pipeline.requests import MAX_COLLECTIONS

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record)


# An empty page span has always gone out as null, never as [].
_Pages = Annotated[list[int] | None, BeforeValidator(lambda pages: pages or None)]


class Problem(_Out):
    """RFC 9457 problem details (every 4xx and 5xx, as application/problem+json)."""

    type: str = Field(examples=["urn:verirag:problem:unknown-collection"])
    title: str
    status: int
    detail: str


# -- ask -------------------------------------------------------------------------------------
class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


MetadataFilterField = Annotated[
    list[Annotated[str, Field(max_length=500)]] | None,
    Field(
        max_length=20,
        description="metadata conditions, all of which a document must meet to be searched "
        "(applied before top-k): `source=handbook/*.md` (a glob at the end of the path), "
        "`title=Leave policy`, or any metadata key with = != > >= < <= (`year>=2020`)",
        examples=[["source=handbook/*.md", "year>=2020"]],
    ),
]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="not empty, at most `max_question_chars` characters")
    collection: str = Field(default="default", pattern=COLLECTION_PATTERN)
    collections: list[Annotated[str, Field(pattern=COLLECTION_PATTERN)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_COLLECTIONS,
        description="ask several collections at once (instead of `collection`): the sources "
        "come from all of them, merged by rank; every one must be within the key's scope, and "
        "the answer's `collection` names them joined by ','",
    )
    history: list[Turn] = Field(
        default_factory=list,
        description="earlier turns of the conversation, oldest first (at most "
        "`max_history_chars` in all); a follow-up question is rewritten as a standalone one "
        "before retrieval, and the answer is checked against the sources as always",
    )
    k: int | None = Field(default=None, ge=1, description="sources to retrieve (≤ api_max_k)")
    filter: MetadataFilterField = None
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

    def asked_collections(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.collections)) if self.collections else (self.collection,)

    def turns(self) -> list[Message]:
        return [Message(t.role, t.content) for t in self.history]

    def generation_fields(self) -> dict[str, Any]:
        return self.model_dump(include={f.name for f in fields(GenerationParams)})


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="not empty, at most `max_question_chars` characters")
    collection: str = Field(default="default", pattern=COLLECTION_PATTERN)
    k: int | None = Field(default=None, ge=1, description="chunks to return (≤ api_max_k)")
    mode: Literal["hybrid", "dense", "bm25", "splade"] = Field(
        default="hybrid",
        description="hybrid: every side the collection has, fused; or one side alone "
        "(splade: only on a collection with a learned sparse index)",
    )
    rerank: bool | None = Field(
        default=None,
        description="hybrid mode: order the fused candidates again with the reranker; null: "
        "the server's rerank setting",
    )
    filter: MetadataFilterField = None


class EvidenceOut(_Out):
    source: int = Field(description="the cited source's number")
    start: int = Field(description="span in that source's `snippet`")
    end: int


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
    evidence: list[EvidenceOut] = Field(
        default_factory=list,
        description="per cited source, the sentence the claim rests on (most words shared)",
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
    pages: _Pages
    headings: list[str]


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
    pages: _Pages
    dense_score: float | None
    bm25_score: float | None
    rerank_score: float | None = Field(
        default=None, description="the reranker's logit of P(relevant); null when not reranked"
    )


class TimingsOut(_Out):
    retrieve: float
    generate: float
    verify: float
    total: float
    first_token: float
    decode_tokens_per_second: float


class AnswerOut(_Out):
    question: str = Field(
        description="what was retrieved for, answered and checked: with `history`, the "
        "follow-up rewritten as a standalone question"
    )
    follow_up: str = Field(
        default="", description="the question as asked, when `history` rewrote it; else empty"
    )
    collection: str
    short_answer: str = Field(
        description="the fewest words that answer the question, taken from `text`; empty when "
        "the answer declines or names none"
    )
    short_answer_extracted: bool = Field(
        default=False,
        description="true: the model named no short answer of its own (or only the "
        "question's words), and `short_answer` is the words of `text` that the question does "
        "not already say",
    )
    text: str
    decision: Literal["answer", "review", "abstain"]
    decision_reason: str
    confidence: float
    calibrated: bool = Field(
        description="the decision's cuts were fitted for this generator, judge and backend; "
        "false: confidence and verdicts are not calibrated"
    )
    calibration: str = Field(
        default="",
        description="which calibration decided the answer: the shipped one, the collection's "
        "own (`verirag calibrate --collection`), or a configured file, with its model and "
        "version",
    )
    logprob_confidence: float
    source_lift: float | None
    answer_check: float | None = Field(
        default=None,
        description="the judge's P(the sources give this answer to this question); null when "
        "undecided or not measured",
    )
    question_alignment: float | None = Field(
        default=None,
        description="share of the question's content words around the source sentences the "
        "claims rest on",
    )
    answer_anchor: float | None = Field(
        default=None,
        description="share of the question's content words around the source sentence that "
        "holds the short answer; 0 when no source sentence holds it",
    )
    retrieval_confidence: float | None = Field(
        default=None,
        description="the reranker's probability that the best source the model read is about "
        "what was asked; null when not reranked",
    )
    rests_support: float | None = Field(
        default=None,
        description="the judge's P(supported) of the weakest claim reading only the source "
        "sentence the claim rests on; null when undecided or not measured",
    )
    sample_agreement: float | None = Field(
        default=None,
        description="share of short answers sampled again from the sources that agree with "
        "this answer (setting agreement_samples); null when not measured",
    )
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

    @field_validator("params", mode="before")
    @classmethod
    def _tuples_as_lists(cls, params: Any) -> Any:
        # `GenerationParams` holds `stop` as a tuple; as a list the model equals its JSON.
        if isinstance(params, dict):
            return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        return params


# -- collections, documents, jobs ------------------------------------------------------------
class CollectionOut(_Out):
    name: str


class CollectionDropped(_Out):
    collection: str
    review_items_removed: int = Field(
        description="review items that quoted the collection, removed with it"
    )


class DocumentOut(_Out):
    doc_id: str
    source: str
    title: str
    content_hash: str
    # `n_chunks` on `DocumentInfo`; `chunks` too, as FastAPI re-validates the dumped body.
    chunks: int = Field(validation_alias=AliasChoices("chunks", "n_chunks"))
    indexed_at: float


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
    files_done: int = Field(default=0, description="files finished so far (live while running)")
    chunks_done: int = Field(default=0, description="chunks embedded so far")
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
    resolved_at: float | None = None
    resolved_by: str = Field(default="", description="the name of the key that resolved it")
    corrected_text: str | None = Field(
        default=None, description="the reviewer's answer, for a 'corrected' resolution"
    )


class ReviewItemDetailOut(ReviewItemOut):
    answer: dict[str, Any] = Field(
        description="the answer as recorded: claims with their evidence spans, citations, "
        "retrieved sources"
    )


class ReviewResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Literal["correct", "incorrect", "partially-correct", "corrected"] = Field(
        description="correct: approve; incorrect: reject; corrected: replace the answer with "
        "`corrected_text`"
    )
    note: str = Field(default="", max_length=4000)
    corrected_text: str | None = Field(
        default=None, max_length=20_000, description="required for, and only for, 'corrected'"
    )


class WhoAmI(_Out):
    name: str
    scope: Literal["read", "write", "admin"]
    all_collections: bool
    collections: list[str] = Field(description="the existing collections this key may use")


# -- health ----------------------------------------------------------------------------------
class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready", "loading", "failed"]
    detail: str
