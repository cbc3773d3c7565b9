"""A fake answering pipeline and an API test bed that load no model.

`FakeRag` has the surface the API uses (`question`, `ask`, `store`, `review_queue`,
`warm_up`, `close`) and returns real `Answer` records built from real retrieval over the
collection's FAISS store with the hashing encoder, so access control is tested against real
data: content planted in one collection must never surface through a key of another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import HashEncoder
from verirag.core.records import (
    Answer,
    Citation,
    ClaimResult,
    Message,
    SearchHit,
    Timings,
    joined_collections,
)
from verirag.core.settings import Settings
from verirag.generators.params import GenerationParams
from verirag.pipeline.api import Services, create_app
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import AccessCheck, Question, SearchMode, check_access, validate_query
from verirag.pipeline.requests import collection_names
from verirag.pipeline.review import ReviewQueue
from verirag.retrievers.filters import MetadataFilter
from verirag.retrievers.fusion import merge_collections
from verirag.retrievers.store import CollectionError, FaissStore, validate_name

CANARY = "CANARY-b7e1f0c3-zebra-quokka"


class Scrape:
    """A /metrics body read by prometheus-client's own parser (which fails on malformed text),
    with samples looked up by name and exact label set."""

    def __init__(self, text: str) -> None:
        self.families: dict[str, Metric] = {f.name: f for f in text_string_to_metric_families(text)}
        self._values = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def value(self, sample: str, **labels: str) -> float:
        key = (sample, frozenset(labels.items()))
        assert key in self._values, f"no sample {sample}{labels}"
        return self._values[key]

    def endpoints(self) -> set[str]:
        return {
            dict(labels)["endpoint"]
            for name, labels in self._values
            if name == "verirag_http_requests_total"
        }


class FakeGenerator:
    name = "fake-generator"

    def __init__(self) -> None:
        self.gate: threading.Event | None = None
        self.warmed = False

    def warm_up(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.warmed = True


class FakeRag:
    def __init__(self, settings: Settings, encoder: HashEncoder) -> None:
        self.settings = settings
        self.encoder = encoder
        self.gen = FakeGenerator()
        self._stores: dict[str, FaissStore] = {}
        self._review: ReviewQueue | None = None
        self._lock = threading.Lock()
        self.asked: list[str] = []  # every collection `ask` touched
        self.reranked: list[bool | None] = []  # `search`'s rerank, as each call gave it
        self.histories: list[list[Message]] = []  # the history each `ask` was given
        self.pieces = ["Cats ", "purr ", "and ", "sleep [1]."]
        self.token_delay = 0.0
        self.gate: threading.Event | None = None
        self.cancelled = threading.Event()

    def warm_up(self) -> None:
        self.gen.warm_up()

    def store(self, collection: str) -> FaissStore:
        with self._lock:
            cached = self._stores.get(collection)
            if cached is not None and not cached.is_current():
                del self._stores[collection]
                cached.close()
            if collection not in self._stores:
                path = self.settings.collections_dir / validate_name(collection)
                self._stores[collection] = FaissStore(path)
            return self._stores[collection]

    def forget(self, collection: str) -> None:
        with self._lock:
            store = self._stores.pop(collection, None)
        if store is not None:
            store.close()

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
        """Dense retrieval over the real stores, whatever `mode` and `rerank` (the fake has no
        BM25; `rerank` is recorded); several collections merged as the real pipeline merges
        them."""
        names = collection_names(collection)
        for name in names:
            check_access(name, allowed)
        self.asked.extend(names)
        self.reranked.append(rerank)
        text = validate_query(query, self.settings.max_question_chars)
        vector = self.encoder.encode_query(text)[0]
        ranked = []
        for name in names:
            store = self.store(name)
            within = None if where is None else store.chunk_ids_where(where)
            hits = store.hits(store.search(vector, k or 3, within))
            ranked.append([replace(h, collection=name) for h in hits])
        return ranked[0] if len(ranked) == 1 else merge_collections(ranked, k or 3, 60)

    def review_queue(self) -> ReviewQueue:
        with self._lock:
            if self._review is None:
                self._review = ReviewQueue(self.settings.data_dir / "review.sqlite")
            return self._review

    def question(self, text: str) -> Question:
        return Question(validate_query(text, self.settings.max_question_chars))

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
        names = collection_names(collection)
        for name in names:
            check_access(name, allowed)
        self.histories.append(list(history))
        text = validate_query(question, self.settings.max_question_chars)
        if all(self.store(name).count("chunks") == 0 for name in names):
            raise CollectionError(f"collection '{names[0]}' is empty: index documents into it")
        if self.gate is not None:
            self.gate.wait(10)
        hits = self.search(text, names, k, where=where)
        if not hits:
            raise CollectionError("no document matches the filter")
        for piece in self.pieces:
            if self.token_delay:
                time.sleep(self.token_delay)
            if on_token is not None:
                try:
                    on_token(piece)
                except Exception:
                    self.cancelled.set()
                    raise
        answer_text = "".join(self.pieces).strip()
        top = hits[0]
        answer = Answer(
            question=text,
            collection=joined_collections(names),
            text=answer_text,
            decision="review" if "review" in text else "answer",
            decision_reason="a claim is unverified" if "review" in text else "all claims supported",
            confidence=0.9,
            claims=(
                ClaimResult(
                    text=answer_text,
                    start=0,
                    end=len(answer_text),
                    citations=(1,),
                    verdict="supported",
                    score=0.93,
                    reason="judge P(yes)=0.93",
                    judge_p=0.93,
                ),
            ),
            citations=(
                Citation(
                    number=1,
                    chunk_id=top.chunk_id,
                    doc_id=top.doc_id,
                    source=top.source,
                    title=top.title,
                    start=top.start,
                    end=top.end,
                    snippet=top.text,
                    collection=top.collection,
                ),
            ),
            retrieved=tuple(hits),
            generator=self.gen.name,
            prompt_version="v2",
            params={"max_tokens": (params or GenerationParams()).max_tokens, "stop": ()},
            timings=Timings(retrieve=0.01, generate=0.02, verify=0.03, total=0.06),
            logprob_confidence=0.8,
        )
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


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "embedder": "hash-test",
        "chunk_tokens": 40,
        "chunk_overlap": 8,
        "api_worker_threads": 2,
        "api_queue_limit": 4,
        "api_rate_limit_per_minute": 0,
        "api_request_timeout_seconds": 10.0,
    }
    return Settings(**{**base, **overrides})


def seed_collections(tmp_path: Path, indexer: IndexingPipeline) -> None:
    """Collection `a` (animals) and collection `b`, which holds the canary."""
    docs_a = tmp_path / "src-a"
    docs_a.mkdir(parents=True)
    (docs_a / "cats.md").write_text("# Cats\nCats purr and sleep all day long.\n")
    (docs_a / "dogs.txt").write_text("Dogs bark at the mailman every morning.\n")
    docs_b = tmp_path / "src-b"
    docs_b.mkdir(parents=True)
    (docs_b / "secret.txt").write_text(
        f"Cats purr and sleep; the launch code is {CANARY}. Dogs bark.\n"
    )
    indexer.run([docs_a], "a")
    indexer.run([docs_b], "b")


@dataclass
class Bed:
    client: TestClient
    services: Services
    rag: FakeRag
    keys: dict[str, str]  # role -> secret

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@contextmanager
def api_bed(
    tmp_path: Path, *, warm_gate: threading.Event | None = None, **overrides: Any
) -> Iterator[Bed]:
    settings = api_settings(tmp_path, **overrides)
    encoder = HashEncoder()
    indexer = IndexingPipeline(settings, encoder=encoder)  # type: ignore[arg-type]
    seed_collections(tmp_path, indexer)
    rag = FakeRag(settings, encoder)
    rag.gen.gate = warm_gate
    services = Services(settings, rag=rag, indexer=indexer)
    keys = {
        "admin": services.keys.create("*", "admin", "root")[1],
        "a_read": services.keys.create("a", "read", "reader")[1],
        "a_write": services.keys.create(["a"], "write", "writer")[1],
        "b_write": services.keys.create("b", "write", "b-writer")[1],
        "all_read": services.keys.create("*", "read", "everything")[1],
    }
    app = create_app(settings, services)
    with TestClient(app) as client:
        if warm_gate is None:
            assert services.ready.wait(5)
        yield Bed(client, services, rag, keys)
    services.close()
