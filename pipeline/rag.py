"""`RagPipeline`: the read side. For now retrieval (`search`); answering builds on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Literal

from evaluators.claims import split_claims
from evaluators.confidence import LogprobConfidence, features
from evaluators.decision import (
    ClaimVerdict,
    Thresholds,
    answer_score,
    claim_floor,
    claim_verdict,
    decide,
    is_abstention,
)
from evaluators.grounding import source_lift
from evaluators.judge import LlmJudgeVerifier
from evaluators.lexical import lexical_evidence
from generators import make_generator
from generators.base import GenerationParams, Generator
from generators.prompts import load_prompts
from pipeline.records import Answer, Citation, ClaimResult, SearchHit, Timings
from pipeline.review import ReviewQueue
from pipeline.settings import Settings
from retrievers.bm25 import bm25_for
from retrievers.encoders import SentenceTransformerEncoder
from retrievers.fusion import reciprocal_rank_fusion
from retrievers.store import CollectionError, FaissStore, validate_name

SearchMode = Literal["hybrid", "dense", "bm25"]


class QueryError(ValueError):
    """The question itself is unusable (empty, too long)."""


class CollectionAccessError(PermissionError):
    """The caller may not read this collection (checked before the store is opened)."""


AccessCheck = Callable[[str], bool]


def check_access(collection: str, allowed: AccessCheck | None) -> None:
    if allowed is not None and not allowed(collection):
        raise CollectionAccessError(f"no access to collection '{collection}'")


def validate_query(query: str, limit: int) -> str:
    cleaned = query.strip()
    if not cleaned:
        raise QueryError("the query is empty")
    if len(cleaned) > limit:
        raise QueryError(f"the query is {len(cleaned)} characters, over the limit of {limit}")
    return cleaned


@dataclass(frozen=True)
class PreparedPrompt:
    question: str
    hits: list[SearchHit]
    relevant: list[SearchHit]  # hits at or above the relevance floor
    citations: list[Citation]  # the numbered sources packed into the prompt
    context_block: str
    prompt: str  # empty when nothing relevant was retrieved


class RagPipeline:
    """Cheap to construct; encoders load on first use, one per embedder, shared by threads."""

    def __init__(
        self,
        settings: Settings | None = None,
        encoder: SentenceTransformerEncoder | None = None,
        generator: Generator | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._encoders: dict[str, SentenceTransformerEncoder] = {}
        if encoder is not None:
            self._encoders[encoder.model_spec] = encoder
        self._stores: dict[str, FaissStore] = {}
        self._lock = threading.RLock()
        self._answering = threading.Lock()
        self._generator: Generator | None = generator
        self._judge: LlmJudgeVerifier | None = None
        self._review: ReviewQueue | None = None
        self.prompts = load_prompts(self.settings.prompt_version)
        self.thresholds = thresholds or Thresholds.load(
            self.settings.thresholds_file, model=self.settings.generator
        )

    def encoder_for(self, embedder: str) -> SentenceTransformerEncoder:
        with self._lock:
            if embedder not in self._encoders:
                self._encoders[embedder] = SentenceTransformerEncoder(
                    embedder, settings=self.settings
                )
            return self._encoders[embedder]

    def store(self, collection: str) -> FaissStore:
        with self._lock:
            store = self._stores.get(collection)
            if store is None:
                path = self.settings.collections_dir / validate_name(collection)
                store = FaissStore(path)
                self._stores[collection] = store
            return store

    def search(
        self,
        query: str,
        collection: str = "default",
        k: int | None = None,
        mode: SearchMode = "hybrid",
        allowed: AccessCheck | None = None,
    ) -> list[SearchHit]:
        """Top-k chunks for `query`: dense (FAISS), BM25, or both fused by weighted RRF.

        The query embeds with the collection's own model. Every hit carries its dense cosine,
        so callers can apply the relevance floor whichever retriever found it. `allowed`
        (e.g. an API key's check) is applied before the collection is even opened.
        """
        check_access(collection, allowed)
        text = validate_query(query, self.settings.max_question_chars)
        k = k or self.settings.top_k
        if k < 1:
            raise QueryError("k must be at least 1")
        s = self.settings
        store = self.store(collection)
        depth = max(k, s.retrieval_k)
        vector = self.encoder_for(store.config.embedder).encode_query(text)[0]
        dense = store.search(vector, depth) if mode != "bm25" else []
        sparse = bm25_for(store).search(text, depth) if mode != "dense" else []
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "bm25":
            ranked = sparse[:k]
        else:
            ranked = reciprocal_rank_fusion(
                [[cid for cid, _ in dense], [cid for cid, _ in sparse]],
                [s.dense_weight, s.bm25_weight],
                s.rrf_k,
            )[:k]
        cosine = dict(dense)
        missing = [cid for cid, _ in ranked if cid not in cosine]
        for cid, vec in store.vectors_for(missing).items():
            cosine[cid] = float(vec @ vector)
        bm25 = dict(sparse)
        return [
            replace(hit, dense_score=cosine.get(hit.chunk_id), bm25_score=bm25.get(hit.chunk_id))
            for hit in store.hits(ranked)
        ]

    # -- answering ----------------------------------------------------------------------
    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                self._generator = make_generator(self.settings.generator, self.settings)
            return self._generator

    def judge(self) -> LlmJudgeVerifier:
        with self._lock:
            if self._judge is None:
                judge_spec = self.settings.judge
                gen = (
                    self.generator()
                    if judge_spec in ("same", self.settings.generator)
                    else make_generator(judge_spec, self.settings)
                )
                self._judge = LlmJudgeVerifier(gen, self.prompts)
            return self._judge

    def warm_up(self) -> None:
        """Load the encoder, generator and judge now rather than inside the first question
        (a server before it reports ready; an evaluation before it times anything)."""
        self.encoder_for(self.settings.embedder).warm_up()
        self.generator().warm_up()
        self.judge().generator.warm_up()

    def review_queue(self) -> ReviewQueue:
        with self._lock:
            if self._review is None:
                self._review = ReviewQueue(self.settings.data_dir / "review.sqlite")
            return self._review

    def prepare(
        self,
        question: str,
        collection: str = "default",
        k: int | None = None,
        allowed: AccessCheck | None = None,
    ) -> PreparedPrompt:
        """Retrieval and prompt building: everything `ask` does before generating."""
        check_access(collection, allowed)
        text = validate_query(question, self.settings.max_question_chars)
        if self.store(collection).count("chunks") == 0:
            raise CollectionError(
                f"collection '{collection}' is empty: index documents into it first"
            )
        hits = self.search(text, collection, k, allowed=allowed)
        floor = self.settings.relevance_floor
        relevant = [h for h in hits if h.dense_score is not None and h.dense_score >= floor]
        if not relevant:
            return PreparedPrompt(text, hits, [], [], "", "")
        gen = self.generator()
        citations, block = self._pack(relevant, gen)
        prompt = gen.render(self.prompts.answer_messages(block, text, self.settings.idk_sentence))
        return PreparedPrompt(text, hits, relevant, citations, block, prompt)

    def ask(
        self,
        question: str,
        collection: str = "default",
        k: int | None = None,
        params: GenerationParams | None = None,
        on_token: Callable[[str], None] | None = None,
        allowed: AccessCheck | None = None,
    ) -> Answer:
        """Retrieve, answer from the sources, check every claim, decide.

        `on_token` receives the answer text as it is generated (streaming); the returned
        `Answer` is the verified result. `allowed` guards the collection (see `search`).
        """
        started = time.perf_counter()
        params = params or GenerationParams(max_tokens=self.settings.max_tokens)
        prepared = self.prepare(question, collection, k, allowed)
        t_retrieve = time.perf_counter() - started
        # One answer at a time from here on. Its calls (generate, score, judge) reuse the KV
        # cache of its own prompt; interleaved call by call with another request's, each
        # would evaluate its sources again (4 concurrent clients: 2.7x the time of the same
        # answers one after another). Model calls never overlapped anyway.
        with self._answering:
            return self._answer(prepared, collection, params, on_token, started, t_retrieve)

    def _answer(
        self,
        prepared: PreparedPrompt,
        collection: str,
        params: GenerationParams,
        on_token: Callable[[str], None] | None,
        started: float,
        t_retrieve: float,
    ) -> Answer:
        """`ask` after retrieval: generate, verify, decide."""
        text, citations, block, prompt = (
            prepared.question,
            prepared.citations,
            prepared.context_block,
            prepared.prompt,
        )
        gen = self.generator()
        if not prepared.relevant:
            return self._finish(
                self._abstain(text, collection, prepared.hits, gen, params, t_retrieve, started)
            )
        t0 = time.perf_counter()
        result = None
        for event in gen.stream(prompt, params):
            if event.final is not None:
                result = event.final
            elif on_token is not None and event.text:
                on_token(event.text)
        assert result is not None
        t_generate = time.perf_counter() - t0
        conf_features = features(result.tokens)
        logprob_conf = LogprobConfidence(self.thresholds.weights).score(conf_features)
        abstained = is_abstention(result.text, self.settings.idk_sentence)
        t0 = time.perf_counter()
        claims: list[ClaimResult] = []
        lift: float | None = None
        if not abstained:
            answer_text = result.text.strip()
            # Scored first, while the KV cache still holds this prompt and answer (cheap);
            # both sides re-tokenise the same text, so the two scores align token by token.
            with_sources = gen.score(prompt, answer_text)
            # Titles and headings were shown to the model too: names there are grounded.
            sources = [f"{c.title} {' '.join(c.headings)}\n{c.snippet}" for c in citations]
            for span in split_claims(result.text):
                lexical = lexical_evidence(span.text, sources, span.citations, text)
                judged = self.judge().judge(block, text, span.text)
                verdict = claim_verdict(judged, lexical, self.thresholds)
                claims.append(
                    ClaimResult(
                        text=span.text,
                        start=span.start,
                        end=span.end,
                        citations=span.citations,
                        verdict=verdict.verdict,
                        score=verdict.score,
                        reason=verdict.reason,
                        judge_p=judged.p_supported,
                        missing_terms=lexical.missing,
                    )
                )
            # After the judge: the closed-book prompt shares no sources and would evict
            # them from the KV cache that the judge reuses.
            closed = gen.render(self.prompts.closed_book_messages(text))
            lift = source_lift(with_sources, gen.score(closed, answer_text))
        t_verify = time.perf_counter() - t0
        support = min(
            (
                c.score if c.score is not None else claim_floor(bool(c.missing_terms))
                for c in claims
            ),
            default=None,
        )
        confidence = (
            logprob_conf
            if abstained
            else answer_score(self.thresholds, support, lift, logprob_conf)
        )
        decision, reason = decide(
            relevant_sources=len(prepared.relevant),
            abstained=abstained,
            verdicts=[ClaimVerdict(c.verdict, c.score, c.reason) for c in claims],  # type: ignore[arg-type]
            score=confidence,
            t=self.thresholds,
        )
        answer = Answer(
            question=text,
            collection=collection,
            text=result.text.strip(),
            decision=decision,
            decision_reason=reason,
            confidence=confidence,
            claims=tuple(claims),
            citations=tuple(citations),
            retrieved=tuple(prepared.hits),
            generator=gen.name,
            prompt_version=self.prompts.version,
            params=asdict(params),
            timings=Timings(
                retrieve=t_retrieve,
                generate=t_generate,
                verify=t_verify,
                total=time.perf_counter() - started,
                first_token=result.seconds_to_first_token,
                decode_tokens_per_second=result.decode_tokens_per_second,
            ),
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            finish_reason=result.finish_reason,
            source_lift=lift,
            logprob_confidence=logprob_conf,
            confidence_features={k: float(v) for k, v in asdict(conf_features).items()},
        )
        return self._finish(answer)

    def _abstain(
        self,
        question: str,
        collection: str,
        hits: list[SearchHit],
        gen: Generator,
        params: GenerationParams,
        t_retrieve: float,
        started: float,
    ) -> Answer:
        return Answer(
            question=question,
            collection=collection,
            text=self.settings.idk_sentence,
            decision="abstain",
            decision_reason="nothing relevant was retrieved",
            confidence=0.0,
            claims=(),
            citations=(),
            retrieved=tuple(hits),
            generator=gen.name,
            prompt_version=self.prompts.version,
            params=asdict(params),
            timings=Timings(retrieve=t_retrieve, total=time.perf_counter() - started),
        )

    def _finish(self, answer: Answer) -> Answer:
        if answer.decision == "review":
            answer = replace(answer, review_id=self.review_queue().add(answer))
        return answer

    def _pack(self, hits: list[SearchHit], gen: Generator) -> tuple[list[Citation], str]:
        """Best chunks first, up to the context token budget; numbered from 1."""
        budget = self.settings.context_tokens
        chosen: list[Citation] = []
        numbered: list[tuple[int, str, str]] = []
        used = 0
        for hit in hits:
            heading = " > ".join(h for h in (hit.title, *hit.headings) if h)
            cost = gen.count_tokens(f"[{len(chosen) + 1}] {heading}\n{hit.text}\n\n")
            if used + cost > budget:
                if chosen:
                    continue
                # Even the best chunk is over budget: keep its head, cut in proportion.
                keep = max(1, len(hit.text) * budget // max(cost, 1))
                hit = replace(hit, text=hit.text[:keep], end=hit.start + keep)
                cost = budget
            used += cost
            number = len(chosen) + 1
            chosen.append(
                Citation(
                    number=number,
                    chunk_id=hit.chunk_id,
                    doc_id=hit.doc_id,
                    source=hit.source,
                    title=hit.title,
                    start=hit.start,
                    end=hit.end,
                    snippet=hit.text,
                    pages=hit.pages,
                    headings=hit.headings,
                )
            )
            numbered.append((number, heading, hit.text))
        return chosen, self.prompts.context_block(numbered)

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
            if self._review is not None:
                self._review.close()
                self._review = None
