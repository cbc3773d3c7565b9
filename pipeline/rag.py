"""`RagPipeline`: the read side. It only orchestrates the stages: retrieve (`HybridRetriever`),
pack the context, generate, verify (`Verifier`), decide. The CLI, the API, the evaluation and
the notebooks all ask through it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from verirag.core.records import (
    Answer,
    Citation,
    Message,
    SearchHit,
    Timings,
    joined_collections,
)
from verirag.core.settings import Settings
from verirag.evaluators.confidence import LogprobConfidence, features, sigmoid
from verirag.evaluators.consistency import sample_agreement
from verirag.evaluators.decision import ClaimVerdict, Thresholds, decide, is_abstention
from verirag.evaluators.judge import LlmJudgeVerifier
from verirag.evaluators.verifier import Evidence, Verifier
from verirag.generators import backend_for, make_generator
from verirag.generators.base import Generator
from verirag.generators.context import pack_context
from verirag.generators.params import GenerationParams, generation_params
from verirag.generators.prompts import load_prompts
from verirag.generators.rewrite import standalone_question
from verirag.generators.short_answer import (
    answers_question,
    short_answer,
    shown_extracted,
    shown_short_answer,
)
from verirag.pipeline.calibrations import ChosenCalibration, CollectionCalibrations, describe
from verirag.pipeline.requests import (
    AccessCheck,
    CollectionAccessError,
    QueryError,
    Question,
    check_access,
    collection_names,
    validate_history,
    validate_query,
)
from verirag.pipeline.review import ReviewQueue
from verirag.retrievers.encoders import SentenceTransformerEncoder
from verirag.retrievers.filters import MetadataFilter
from verirag.retrievers.fusion import merge_collections
from verirag.retrievers.hybrid import FusionConfig, HybridRetriever, SearchMode
from verirag.retrievers.learned_sparse import SpladeEncoder
from verirag.retrievers.rerank import load_reranker
from verirag.retrievers.store import CollectionError, FaissStore, validate_name

__all__ = [
    "AccessCheck",
    "CollectionAccessError",
    "QueryError",
    "Question",
    "RagPipeline",
    "SearchMode",
    "check_access",
    "validate_history",
    "validate_query",
]


@dataclass(frozen=True)
class PreparedPrompt:
    question: str
    hits: list[SearchHit]
    relevant: list[SearchHit]  # hits at or above the relevance floor
    citations: list[Citation]  # the numbered sources packed into the prompt
    context_block: str
    prompt: str  # empty when nothing relevant was retrieved
    texts: tuple[str, ...]  # the packed sources as lexical evidence reads them
    follow_up: str = ""  # the question as asked, when a conversation made `question` of it
    # The reranker's P(relevant) of the best packed source; None when not reranked.
    retrieval: float | None = None
    quarantine: bool = True  # the block left out sentences addressed to an AI

    def evidence(self) -> Evidence:
        """What an answer to this prompt is checked against."""
        return Evidence(
            self.question,
            self.context_block,
            self.prompt,
            self.texts,
            tuple(c.snippet for c in self.citations),
            self.retrieval,
            tuple(c.title for c in self.citations),
            self.quarantine,
        )


def retrieval_confidence(hits: Sequence[SearchHit], packed: Sequence[Citation]) -> float | None:
    """The reranker's P(relevant) of the best source packed into the prompt: its score is a
    logistic model's logit (`retrievers/rerank.py`), so the sigmoid reads as a probability.
    None when no packed source was reranked (each hit scored by its collection's reranker)."""
    scores = {
        (h.collection, h.chunk_id): h.rerank_score for h in hits if h.rerank_score is not None
    }
    read = [scores[key] for c in packed if (key := (c.collection, c.chunk_id)) in scores]
    return sigmoid(max(read)) if read else None


class RagPipeline:
    """Cheap to construct; encoders load on first use, one per embedder, shared by threads.

    `measure_all`: every answer carries every signal, also those its score gives no weight
    (calibration measures them all; see `Verifier`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        encoder: SentenceTransformerEncoder | None = None,
        generator: Generator | None = None,
        thresholds: Thresholds | None = None,
        *,
        measure_all: bool = False,
        splade: SpladeEncoder | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.measure_all = measure_all
        self._encoders: dict[str, SentenceTransformerEncoder] = {}
        self._splade: dict[str, SpladeEncoder] = {}
        if encoder is not None:
            self._encoders[encoder.model_spec] = encoder
        if splade is not None:
            self._splade[splade.model_spec] = splade
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
        s = self.settings
        backend = backend_for(s.generator, s)
        # Whether a calibration was fitted for the combination answering: the pipeline's and
        # each collection's are judged by the same test. With the reranker off, a calibration
        # that weighs its P(relevant) scores every answer with it unknown: not as fitted.
        self._fits: Callable[[Thresholds], bool] = lambda t: (
            t.covers(s.generator, s.judge, backend) and (s.rerank or not t.weighs_retrieval)
        )
        self.calibrated = self._fits(self.thresholds)
        # Thresholds handed in (a calibration measuring its own signals) decide every answer;
        # otherwise a collection's own calibration comes before the pipeline's.
        self._given_thresholds = thresholds is not None
        origin = (
            "given"
            if thresholds is not None
            else f"file {s.thresholds_file}"
            if s.thresholds_file is not None
            else "shipped"
        )
        self.default_calibration = ChosenCalibration(
            self.thresholds, self.calibrated, describe(self.thresholds, origin)
        )
        self.collection_calibrations = CollectionCalibrations(s.collections_dir)

    def encoder_for(self, embedder: str) -> SentenceTransformerEncoder:
        with self._lock:
            if embedder not in self._encoders:
                self._encoders[embedder] = SentenceTransformerEncoder(
                    embedder, settings=self.settings
                )
            return self._encoders[embedder]

    def splade_for(self, model: str) -> SpladeEncoder | None:
        """The learned sparse encoder of a collection's `splade_model` ("" = none)."""
        if not model:
            return None
        with self._lock:
            if model not in self._splade:
                self._splade[model] = SpladeEncoder(model, settings=self.settings)
            return self._splade[model]

    def store(self, collection: str) -> FaissStore:
        with self._lock:
            store = self._stores.get(collection)
            if store is not None and not store.is_current():
                # Dropped (and maybe created anew) since it was opened: read the new one.
                self.forget(collection)
                store = None
            if store is None:
                path = self.settings.collections_dir / validate_name(collection)
                store = FaissStore(path)
                self._stores[collection] = store
            return store

    def forget(self, collection: str) -> None:
        """Close this pipeline's reader of a collection (before it is dropped)."""
        with self._lock:
            store = self._stores.pop(collection, None)
        if store is not None:
            store.close()

    def question(self, text: str) -> Question:
        """Validate a question once (empty, too long); faces that refuse bad input before
        queueing work call this and pass the result on."""
        return Question(validate_query(text, self.settings.max_question_chars))

    def retriever(self, collection: str) -> HybridRetriever:
        store = self.store(collection)
        s = self.settings
        fusion = FusionConfig(
            s.retrieval_k,
            s.rrf_k,
            s.dense_weight,
            s.bm25_weight,
            s.fusion_method,
            s.fusion_alpha,
            s.splade_share,
            s.splade_weight,
            s.rerank_depth,
        )
        encoder = self.encoder_for(store.config.embedder)
        return HybridRetriever(store, encoder, fusion, self.splade_for(store.config.splade_model))

    def search(
        self,
        query: str | Question,
        collection: str | Sequence[str] = "default",
        k: int | None = None,
        mode: SearchMode = "hybrid",
        allowed: AccessCheck | None = None,
        where: MetadataFilter | None = None,
        rerank: bool | None = None,
    ) -> list[SearchHit]:
        """Top-k chunks for `query`: dense (FAISS), BM25, SPLADE, or all fused; only from the
        documents that match `where` when given (`retrievers/filters.py`). `rerank`: order
        the fused candidates again with the reranker (None: the `rerank` setting).

        The query embeds with each collection's own model. `allowed` (e.g. an API key's
        check) is applied to every collection before any is opened. Several collections:
        each one's top k, merged by rank (`merge_collections`); empty ones add nothing.
        """
        names = collection_names(collection)
        for name in names:
            check_access(name, allowed)
        text = validate_query(query, self.settings.max_question_chars)
        k = k or self.settings.top_k
        if k < 1:
            raise QueryError("k must be at least 1")
        wanted = self.settings.rerank if rerank is None else rerank
        # Only the fusion is reranked: one side alone is asked for to see that side.
        reranker = (
            load_reranker(self.settings.rerank_model) if wanted and mode == "hybrid" else None
        )
        ranked = [
            [
                replace(hit, collection=name)
                for hit in self.retriever(name).retrieve(text, k, mode, where, reranker)
            ]
            for name in names
            if len(names) == 1 or self.store(name).count("chunks") > 0
        ]
        if len(ranked) == 1:
            return ranked[0]
        return merge_collections(ranked, k, self.settings.rrf_k)

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

    def verifier(self, thresholds: Thresholds | None = None) -> Verifier:
        return Verifier(
            self.generator(),
            self.judge(),
            self.prompts,
            thresholds or self.thresholds,
            measure_all=self.measure_all,
        )

    def calibration_for(self, collection: str | Sequence[str]) -> ChosenCalibration:
        """The calibration answers from `collection` are decided by: the collections' own
        (`verirag calibrate --collection`) when they share one fitted for this generator,
        judge and backend, else the pipeline's."""
        if self._given_thresholds:
            return self.default_calibration
        return self.collection_calibrations.choose(
            collection_names(collection), self.default_calibration, self._fits
        )

    def prepare(
        self,
        question: str | Question,
        collection: str | Sequence[str] = "default",
        k: int | None = None,
        allowed: AccessCheck | None = None,
        history: Sequence[Message] = (),
        where: MetadataFilter | None = None,
    ) -> PreparedPrompt:
        """Retrieval and prompt building: everything `ask` does before generating.

        With `history` (earlier turns of a conversation), the question is first rewritten as
        a standalone one; retrieval, the answer prompt and every check use that.
        Several collections: the sources come from all of them (see `search`)."""
        names = collection_names(collection)
        for name in names:
            check_access(name, allowed)
        s = self.settings
        text = Question(validate_query(question, s.max_question_chars))
        turns = validate_history(history, s.max_history_chars)
        if all(self.store(name).count("chunks") == 0 for name in names):
            which = f"collection '{names[0]}' is" if len(names) == 1 else "the collections are"
            raise CollectionError(f"{which} empty: index documents into it first")
        follow_up = ""
        if turns:
            follow_up = text.text
            text = Question(
                standalone_question(
                    self.generator(), self.prompts, turns, text.text, s.max_question_chars
                )
            )
        hits = self.search(text, names, k, allowed=allowed, where=where)
        floor = self.settings.relevance_floor
        relevant = [h for h in hits if h.dense_score is not None and h.dense_score >= floor]
        if not relevant:
            return PreparedPrompt(text.text, hits, [], [], "", "", (), follow_up)
        gen = self.generator()
        packed = pack_context(
            relevant,
            gen.count_tokens,
            self.settings.context_tokens,
            self.prompts,
            quarantine_instructions=self.settings.quarantine_source_instructions,
        )
        prompt = gen.render(
            self.prompts.answer_messages(packed.block, text.text, self.settings.idk_sentence)
        )
        return PreparedPrompt(
            text.text,
            hits,
            relevant,
            list(packed.citations),
            packed.block,
            prompt,
            packed.texts,
            follow_up,
            retrieval_confidence(relevant, packed.citations),
            self.settings.quarantine_source_instructions,
        )

    def ask(
        self,
        question: str | Question,
        collection: str | Sequence[str] = "default",
        k: int | None = None,
        params: GenerationParams | None = None,
        on_token: Callable[[str], None] | None = None,
        allowed: AccessCheck | None = None,
        history: Sequence[Message] = (),
        where: MetadataFilter | None = None,
    ) -> Answer:
        """Retrieve, answer from the sources, check every claim, decide.

        `on_token` receives the answer text as it is generated (streaming); the returned
        `Answer` is the verified result. `allowed` guards the collection (see `search`).
        `history`: earlier turns of a conversation (see `prepare`). Several collections: one
        answer from the sources of all of them; its `collection` names them all.
        """
        started = time.perf_counter()
        params = params or generation_params(self.settings)
        prepared = self.prepare(question, collection, k, allowed, history, where)
        t_retrieve = time.perf_counter() - started
        # One answer at a time from here on. Its calls (generate, score, judge) reuse the KV
        # cache of its own prompt; interleaved call by call with another request's, each
        # would evaluate its sources again (4 concurrent clients: 2.7x the time of the same
        # answers one after another). Model calls never overlapped anyway.
        chosen = self.calibration_for(collection)
        with self._answering:
            label = joined_collections(collection_names(collection))
            return self._answer(prepared, label, chosen, params, on_token, started, t_retrieve)

    def _answer(
        self,
        prepared: PreparedPrompt,
        collection: str,
        chosen: ChosenCalibration,
        params: GenerationParams,
        on_token: Callable[[str], None] | None,
        started: float,
        t_retrieve: float,
    ) -> Answer:
        """`ask` after retrieval: generate, verify, decide by the `chosen` calibration."""
        gen = self.generator()
        if not prepared.relevant:
            return self._finish(
                self._abstain(prepared, collection, chosen, gen, params, t_retrieve, started)
            )
        t = chosen.thresholds
        t0 = time.perf_counter()
        result = None
        for event in gen.stream(prepared.prompt, params):
            if event.final is not None:
                result = event.final
            elif on_token is not None and event.text:
                on_token(event.text)
        assert result is not None
        t_generate = time.perf_counter() - t0
        conf_features = features(result.tokens)
        logprob_conf = LogprobConfidence(t.weights).score(conf_features)
        # Claims are split on the text the answer carries, so `text[start:end]` is the claim.
        answer_text = result.text.strip()
        abstained = is_abstention(answer_text, self.settings.idk_sentence)
        short = shown = ""
        if not abstained:
            # Right after the answer: its prompt and text are still in the KV cache.
            t0 = time.perf_counter()
            short = short_answer(
                gen,
                self.prompts,
                prepared.context_block,
                prepared.question,
                self.settings.idk_sentence,
                answer_text,
            )
            t_generate += time.perf_counter() - t0
            shown = shown_short_answer(short, answer_text, prepared.question)
        t0 = time.perf_counter()
        verification = None
        verifier = self.verifier(t)
        agreement = None
        if not abstained:
            if self.settings.agreement_samples:
                agreement = sample_agreement(
                    gen,
                    self.prompts,
                    prepared.context_block,
                    prepared.question,
                    self.settings.idk_sentence,
                    answer_text,
                    short,
                    samples=self.settings.agreement_samples,
                    temperature=self.settings.agreement_temperature,
                ).score
            verification = verifier.verify(prepared.evidence(), answer_text, short=short)
        t_verify = time.perf_counter() - t0
        claims = verification.claims if verification else ()
        # Withheld (the model declined): no delivered answer whose correctness to report.
        confidence = verifier.score(verification, logprob_conf) if verification else 0.0
        decision, reason = decide(
            relevant_sources=len(prepared.relevant),
            abstained=abstained,
            verdicts=[ClaimVerdict(c.verdict, c.score, c.reason) for c in claims],  # type: ignore[arg-type]
            score=confidence,
            t=t,
            answered=abstained
            or answers_question(
                short,
                prepared.question,
                answer_text,
                tuple(f"{c.title} {' '.join(c.headings)}" for c in prepared.citations),
            ),
        )
        answer = Answer(
            question=prepared.question,
            follow_up=prepared.follow_up,
            collection=collection,
            text=answer_text,
            decision=decision,
            decision_reason=reason,
            confidence=confidence,
            claims=claims,
            citations=tuple(prepared.citations),
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
            source_lift=verification.lift if verification else None,
            logprob_confidence=logprob_conf,
            confidence_features={k: float(v) for k, v in asdict(conf_features).items()},
            short_answer=shown,
            short_answer_named=None if shown == short else short,
            short_answer_extracted=shown_extracted(short, shown, prepared.question),
            answer_check=verification.answer_check if verification else None,
            question_alignment=verification.alignment if verification else None,
            answer_anchor=verification.anchor if verification else None,
            rests_support=verification.rests if verification else None,
            retrieval_confidence=verification.retrieval if verification else None,
            sample_agreement=agreement,
            calibrated=chosen.calibrated,
            calibration=chosen.source,
        )
        return self._finish(answer)

    def _abstain(
        self,
        prepared: PreparedPrompt,
        collection: str,
        chosen: ChosenCalibration,
        gen: Generator,
        params: GenerationParams,
        t_retrieve: float,
        started: float,
    ) -> Answer:
        return Answer(
            question=prepared.question,
            follow_up=prepared.follow_up,
            collection=collection,
            text=self.settings.idk_sentence,
            decision="abstain",
            decision_reason="nothing relevant was retrieved",
            confidence=0.0,
            claims=(),
            citations=(),
            retrieved=tuple(prepared.hits),
            generator=gen.name,
            prompt_version=self.prompts.version,
            params=asdict(params),
            timings=Timings(retrieve=t_retrieve, total=time.perf_counter() - started),
            calibrated=chosen.calibrated,
            calibration=chosen.source,
        )

    def _finish(self, answer: Answer) -> Answer:
        if answer.decision == "review":
            answer = replace(answer, review_id=self.review_queue().add(answer))
        return answer

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
            if self._review is not None:
                self._review.close()
                self._review = None
