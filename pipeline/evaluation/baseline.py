"""The peer baseline: a plain LangChain RAG chain, as its tutorials build it.

Same passages, same embedder (through langchain-huggingface), same GGUF generator (through
langchain-community's llama.cpp chat model), LangChain's own FAISS store and the standard
RAG prompt of the LangChain tutorial (`prompts/langchain_rag.txt`, the "rlm/rag-prompt"
text): retrieve k chunks, stuff them into the prompt, return the model's text. No claim
checks, no decision; it withholds an answer only when its text says it does not know.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from verirag.core.compute import compute_thread
from verirag.core.device import cpu_threads, offline_env
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets import Passage

PROMPT_FILE = "prompts/langchain_rag.txt"

# The chain's own way of declining; its prompt asks it to "say that you don't know".
_DONT_KNOW = re.compile(
    r"\b(i\s+(do\s*n[o']t|don't|cannot|can't)\s+know|"
    r"(do(es)?\s*n[o']t|does not|do not)\s+(provide|contain|mention|say|specify|include)|"
    r"(no|not enough)\s+information|not\s+(mentioned|provided|specified|stated)|"
    r"(cannot|can't|unable to)\s+(answer|determine|find))",
    re.IGNORECASE,
)


def says_dont_know(text: str) -> bool:
    return not text.strip() or bool(_DONT_KNOW.search(text))


def rag_prompt_text() -> str:
    return (
        resources.files("verirag.pipeline.evaluation")
        .joinpath(PROMPT_FILE)
        .read_text(encoding="utf-8")
    )


class LangChainRag:
    """retriever | format_docs -> prompt -> ChatLlamaCpp -> str, built on first use."""

    def __init__(
        self, passages: list[Passage], settings: Settings, k: int = 5, max_tokens: int = 128
    ) -> None:
        self.passages = passages
        self.settings = settings
        self.k = k
        self.max_tokens = max_tokens
        self._chain: Any = None

    def _build(self) -> Any:
        offline_env()
        from langchain_community.chat_models import ChatLlamaCpp
        from langchain_community.vectorstores import FAISS
        from langchain_core.embeddings import Embeddings
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.runnables import RunnableLambda, RunnablePassthrough
        from langchain_huggingface import HuggingFaceEmbeddings

        compute = compute_thread()

        # The chain's model calls run on verirag's compute thread (verirag/core/compute.py), as
        # verirag's own do: LangChain embeds the question on a worker thread of its own, and
        # a second OpenMP team in the process would slow both systems' calls in this run.
        class ComputeThreadEmbeddings(Embeddings):
            def __init__(self, inner: Embeddings) -> None:
                self.inner = inner

            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return compute.call(self.inner.embed_documents, texts)

            def embed_query(self, text: str) -> list[float]:
                return compute.call(self.inner.embed_query, text)

        settings = self.settings
        embedder = resolve_model(settings.embedder, settings.models_dir, kind="embedder")
        embeddings = ComputeThreadEmbeddings(
            HuggingFaceEmbeddings(
                model_name=embedder,
                model_kwargs={"device": "cpu"},
                encode_kwargs={"normalize_embeddings": True},
            )
        )
        store = FAISS.from_texts(
            [p.text for p in self.passages],
            embeddings,
            metadatas=[{"id": p.pid, "title": p.title} for p in self.passages],
        )
        retriever = store.as_retriever(search_kwargs={"k": self.k})
        llm = ChatLlamaCpp(
            model_path=resolve_model(settings.generator, settings.models_dir, kind="generator"),
            n_ctx=settings.n_ctx,
            n_threads=cpu_threads(settings.threads),
            n_gpu_layers=0,
            # llama.cpp's own batch, as verirag's generator uses: ChatLlamaCpp's default (8)
            # reads a prompt 8 tokens at a time, and would make the latency comparison one of
            # defaults, not of the two systems.
            n_batch=512,
            temperature=0.0,
            max_tokens=self.max_tokens,
            seed=0,
            verbose=False,
        )
        prompt = ChatPromptTemplate.from_messages([("human", rag_prompt_text())])

        def format_docs(docs: list[Any]) -> str:
            return "\n\n".join(d.page_content for d in docs)

        return (
            {"context": retriever | format_docs, "question": RunnablePassthrough()}
            | prompt
            | RunnableLambda(lambda messages: compute.call(llm.invoke, messages))
            | StrOutputParser()
        )

    def warm_up(self) -> None:
        if self._chain is None:
            self._chain = compute_thread().call(self._build)

    def ask(self, question: str) -> str:
        self.warm_up()
        text: str = self._chain.invoke(question)
        return text.strip()
