"""The LangChain adapters: LangChain's own standard retriever tests, and the verified answer
as a Runnable inside LCEL chains (invoke, batch, stream, async)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests

from tests.scripted import ScriptedGenerator, scripted_pipeline
from verirag.core.records import Answer
from verirag.pipeline.adapters.langchain import VerifiedAnswer, VerIRagRetriever
from verirag.pipeline.rag import QueryError, RagPipeline

FACTS = {
    "paris.txt": "Paris is the capital of France. It lies on the Seine.",
    "rome.txt": "Rome is the capital of Italy. It lies on the Tiber.",
    "berlin.txt": "Berlin is the capital of Germany. It lies on the Spree.",
    "madrid.txt": "Madrid is the capital of Spain. It lies on the Manzanares.",
}


def _pipeline(root: Path, gen: ScriptedGenerator | None = None) -> RagPipeline:
    return scripted_pipeline(root, gen, FACTS, "capitals")


_SHARED: dict[str, RagPipeline] = {}


@pytest.fixture(scope="module", autouse=True)
def _shared_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _SHARED["rag"] = _pipeline(tmp_path_factory.mktemp("lc"))
    yield
    _SHARED.pop("rag").close()


class TestVerIRagRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own retriever test suite (k in the constructor and in invoke, sync and
    async, documents returned)."""

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return VerIRagRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, object]:
        return {"pipeline": _SHARED["rag"], "collection": "capitals"}

    @property
    def retriever_query_example(self) -> str:
        return "Which river does Paris lie on?"


def test_retriever_documents_carry_their_source() -> None:
    retriever = VerIRagRetriever(pipeline=_SHARED["rag"], collection="capitals", k=2)
    docs = retriever.invoke("Which river does Rome lie on?")
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["source"].endswith("rome.txt") and "Tiber" in docs[0].page_content
    assert docs[0].metadata["dense_score"] is not None
    # Retrieval's own validation: an empty query is refused, as the CLI and API refuse it.
    with pytest.raises(QueryError, match="empty"):
        retriever.invoke("   ")

    # In an LCEL chain: retrieve, then format.
    def joined(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    chain = retriever | RunnableLambda(joined)
    assert "Tiber" in chain.invoke("Which river does Rome lie on?")


def test_verified_answer_runs_in_lcel_chains(tmp_path: Path) -> None:
    gen = ScriptedGenerator(
        {"Paris lies": 0.9},
        reply="Paris lies on the Seine [1].",
        rewrite="Which river does Paris lie on?",
    )
    rag = _pipeline(tmp_path, gen)
    answerer = VerifiedAnswer(pipeline=rag, collection="capitals")
    answer = answerer.invoke("Which river does Paris lie on?")
    assert isinstance(answer, Answer) and answer.text == "Paris lies on the Seine [1]."
    assert answer.claims[0].verdict == "supported"

    def decision(a: Answer) -> str:
        return a.decision

    chain = {"question": RunnablePassthrough()} | answerer | RunnableLambda(decision)
    assert chain.invoke("Which river does Paris lie on?") == answer.decision
    same = (answer.text, answer.decision, answer.claims)

    def seen(a: Answer) -> tuple[object, ...]:
        return (a.text, a.decision, a.claims)

    assert [seen(a) for a in answerer.batch(["Which river does Paris lie on?"] * 2)] == [same] * 2
    assert [seen(a) for a in answerer.stream("Which river does Paris lie on?")] == [same]
    assert seen(asyncio.run(answerer.ainvoke("Which river does Paris lie on?"))) == same
    # A conversation: LangChain messages, dicts or pairs as history.
    follow = answerer.invoke(
        {
            "question": "And its river?",
            "history": [HumanMessage("What is the capital of France?"), AIMessage("Paris [1].")],
        }
    )
    assert follow.follow_up == "And its river?" and follow.question.startswith("Which river")
    with pytest.raises(ValueError, match="user or assistant"):
        answerer.invoke({"question": "x?", "history": [("system", "Obey.")]})
    with pytest.raises(ValueError, match="'question' key"):
        answerer.invoke({"q": "x?"})
    rag.close()
