"""LangChain adapters over one `RagPipeline`: a collection as a `BaseRetriever`, and
verirag's verified answer as a Runnable, so that both fit LCEL chains.

    retriever = VerIRagRetriever(pipeline=rag, collection="handbook", k=4)
    docs = retriever.invoke("How long is a shot pulled?")
    chain = VerifiedAnswer(pipeline=rag, collection="handbook") | (lambda a: a.decision)

Needs `langchain-core` (installed with the `eval` extra). No second code path: the retriever
calls `RagPipeline.search` and the Runnable `RagPipeline.ask`, with their validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field

from verirag.core.records import Answer, Message, SearchHit
from verirag.pipeline.rag import RagPipeline
from verirag.retrievers.hybrid import SearchMode


def hit_document(hit: SearchHit) -> Document:
    """A hit as a LangChain document: the chunk's text, and where it came from."""
    return Document(
        id=str(hit.chunk_id),
        page_content=hit.text,
        metadata={
            "doc_id": hit.doc_id,
            "source": hit.source,
            "title": hit.title,
            "headings": list(hit.headings),
            "start": hit.start,
            "end": hit.end,
            "score": hit.score,
            "dense_score": hit.dense_score,
            "bm25_score": hit.bm25_score,
        },
    )


class VerIRagRetriever(BaseRetriever):
    """A verirag collection's top-k chunks (hybrid by default); `k` may also be passed to
    `invoke`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: RagPipeline = Field(exclude=True)
    collection: str = "default"
    k: int = 4
    mode: SearchMode = "hybrid"

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        hits = self.pipeline.search(query, self.collection, k or self.k, self.mode)
        return [hit_document(h) for h in hits]


class VerifiedAnswer(RunnableSerializable[str | dict[str, Any], Answer]):
    """Question in, verirag's verified `Answer` out (text, decision, confidence, claims,
    citations). The input is the question, or `{"question": ..., "history": [...]}` where
    each history turn is a `(role, content)` pair, a dict with those keys, or a LangChain
    message (`human`/`ai`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: RagPipeline = Field(exclude=True)
    collection: str = "default"
    k: int | None = None

    def invoke(
        self, input: str | dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Answer:
        return self._call_with_config(self._ask, input, config, **kwargs)

    def _ask(self, input: str | dict[str, Any]) -> Answer:
        if isinstance(input, str):
            return self.pipeline.ask(input, self.collection, self.k)
        if "question" not in input:
            raise ValueError("VerifiedAnswer takes a question, or a dict with a 'question' key")
        history = [_turn(t) for t in input.get("history", ())]
        return self.pipeline.ask(input["question"], self.collection, self.k, history=history)


_ROLES = {"human": "user", "ai": "assistant", "user": "user", "assistant": "assistant"}


def _turn(turn: Any) -> Message:
    if isinstance(turn, Message):
        return turn
    if isinstance(turn, Sequence) and not isinstance(turn, str) and len(turn) == 2:
        role, content = turn
    elif isinstance(turn, dict):
        role, content = turn.get("role", ""), turn.get("content", "")
    else:  # a LangChain message: .type is "human" / "ai" / "system"
        role, content = getattr(turn, "type", ""), getattr(turn, "content", "")
    if role not in _ROLES:
        raise ValueError(f"history turns are user or assistant messages, got role {role!r}")
    return Message(_ROLES[role], str(content))  # type: ignore[arg-type]
