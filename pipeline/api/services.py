"""What the HTTP API runs on: one `RagPipeline`, one `IndexingPipeline` (the same classes as
the CLI), the key store, the job registry, the metrics and a bounded worker pool.

Model calls are CPU-bound and hold the GIL only in Python glue, so they run on a small pool
of threads sized for the machine; the event loop only waits on futures and stays free for
health checks. Work beyond `api_queue_limit` waiting requests is refused (503), never piled up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from verirag.core import compute
from verirag.core.records import Answer, Message, SearchHit
from verirag.core.settings import Settings
from verirag.generators.params import GenerationParams
from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.jobs import Job, JobRegistry, run_job
from verirag.pipeline.api.keys import ApiKey, KeyStore
from verirag.pipeline.api.metrics import Metrics
from verirag.pipeline.api.sources import SourceView, as_indexed, relative_source, source_root
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import AccessCheck, Question
from verirag.pipeline.review import ReviewQueue
from verirag.retrievers.filters import MetadataFilter
from verirag.retrievers.hybrid import SearchMode
from verirag.retrievers.store import FaissStore, collection_exists, list_collections

log = logging.getLogger("verirag.api")

T = TypeVar("T")


class AnswerPipeline(Protocol):
    """The part of `RagPipeline` the API uses (tests substitute a fake with this surface)."""

    settings: Settings

    def question(self, text: str) -> Question: ...

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
    ) -> Answer: ...

    def search(
        self,
        query: str | Question,
        collection: str | Sequence[str] = "default",
        k: int | None = None,
        mode: SearchMode = "hybrid",
        allowed: AccessCheck | None = None,
        where: MetadataFilter | None = None,
        rerank: bool | None = None,
    ) -> list[SearchHit]: ...

    def store(self, collection: str) -> FaissStore: ...

    def forget(self, collection: str) -> None: ...

    def review_queue(self) -> ReviewQueue: ...

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


def default_worker_threads() -> int:
    # Model calls run one at a time on the compute thread (verirag/core/compute.py), each on
    # every core; two workers let one request's file parsing, search and database work
    # overlap another's model calls, and more never helps a CPU-bound model.
    return max(2, min(4, (os.cpu_count() or 2) // 2))


INDEX_THREAD_NICE = 10


def _lower_this_threads_priority() -> None:
    """Nice the calling thread (the indexing pool's own: it never serves an answer). Linux
    schedules threads apart, so only this thread moves; elsewhere the same call would nice
    the whole process, so it is skipped. Raising niceness needs no privilege."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < INDEX_THREAD_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, INDEX_THREAD_NICE)
    except OSError:  # a sandbox that forbids it: the job runs at normal priority
        log.debug("could not lower the indexing thread's CPU priority", exc_info=True)


class Cancelled(Exception):  # noqa: N818 - a signal, not an error condition
    """Raised inside a worker (from the token callback) when its request was abandoned."""


class QueueFullError(Exception):
    pass


class WorkerPool:
    """A ThreadPoolExecutor that counts queued and running work and refuses overflow."""

    def __init__(self, workers: int, queue_limit: int) -> None:
        self.workers = workers
        self.queue_limit = queue_limit
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verirag")
        self._lock = threading.Lock()
        self.queued = 0
        self.running = 0

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self.queued + self.running >= self.workers + self.queue_limit:
                raise QueueFullError
            self.queued += 1

        def run() -> T:
            with self._lock:
                self.queued -= 1
                self.running += 1
            try:
                return fn()
            finally:
                with self._lock:
                    self.running -= 1

        try:
            return self._executor.submit(run)
        except RuntimeError:  # shut down
            with self._lock:
                self.queued -= 1
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class RateLimiter:
    """A token bucket per key: `per_minute` requests of burst, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key_id: int) -> float:
        """0 when allowed, else the seconds until the next request will be."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate


class Services:
    """Everything the routers need, built once per app and injected into every request."""

    def __init__(
        self,
        settings: Settings,
        rag: AnswerPipeline | None = None,
        indexer: IndexingPipeline | None = None,
        keys: KeyStore | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        from verirag.pipeline.rag import RagPipeline

        self.settings = settings
        self.indexer = indexer or IndexingPipeline(settings)
        # One encoder for both pipelines: the model is loaded once per process.
        self.rag: AnswerPipeline = rag or RagPipeline(settings, encoder=self.indexer.encoder)
        self.keys = keys or KeyStore.for_data_dir(settings.data_dir)
        self.jobs = JobRegistry(settings.data_dir / "jobs.sqlite")
        self.metrics = Metrics()
        self.rate_limiter = RateLimiter(settings.api_rate_limit_per_minute)
        n = workers or settings.api_worker_threads or default_worker_threads()
        self.pool = WorkerPool(n, settings.api_queue_limit)
        # Indexing jobs have their own worker and queue: an upload waiting for a collection's
        # writer lock never holds a worker that questions need.
        self.index_pool = WorkerPool(1, settings.api_index_queue_limit)
        # One writer per collection directory at a time (the store's flock would refuse a
        # second one); jobs wait for each other instead of failing as busy.
        self._index_lock = threading.Lock()
        self._roots: dict[str, tuple[int, str | None]] = {}
        self._roots_lock = threading.Lock()
        self.ready = threading.Event()
        self.warm_error: str = ""
        self.metrics.gauge(
            "verirag_queue_depth",
            "Requests waiting for a worker.",
            lambda: float(self.pool.queued),
        )
        self.metrics.gauge(
            "verirag_workers_busy",
            "Workers running a model call.",
            lambda: float(self.pool.running),
        )
        self.metrics.gauge(
            "verirag_jobs_in_flight",
            "Indexing jobs queued or running.",
            lambda: float(self.jobs.in_flight()),
        )
        self.metrics.gauge(
            "verirag_ready", "1 once the models are loaded.", lambda: float(self.ready.is_set())
        )

    # -- start-up --------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the generator and the encoder once; `/readyz` turns 200 after this."""
        started = time.perf_counter()
        try:
            self.rag.warm_up()
        except Exception as exc:
            self.warm_error = f"{type(exc).__name__}: {exc}"
            log.exception("model warm-up failed")
            return
        log.info("models loaded in %.1fs", time.perf_counter() - started)
        self.ready.set()

    def start_warm_up(self) -> threading.Thread:
        thread = threading.Thread(target=self.warm_up, name="verirag-warm-up", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.pool.shutdown()
        self.index_pool.shutdown()
        self.rag.close()
        self.keys.close()
        self.jobs.close()

    # -- collections ---------------------------------------------------------------------
    def collections(self) -> list[str]:
        return list_collections(self.settings.collections_dir)

    def collection_exists(self, name: str) -> bool:
        return collection_exists(self.settings.collections_dir, name)

    # -- running work off the event loop ---------------------------------------------------
    async def run(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """Run `fn` on the worker pool; 503 when the queue is full, 504 past the timeout."""
        future = self.submit(fn)
        limit = self.settings.api_request_timeout_seconds if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limit)
        except TimeoutError as exc:
            future.cancel()
            raise ProblemError(
                504,
                f"the request took longer than {limit:g}s and was abandoned",
                kind="timeout",
            ) from exc

    async def run_indexing(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the indexing worker, after the jobs queued before it. No timeout: a
        drop waits for the job that is writing."""
        return await asyncio.wrap_future(self.submit_indexing(fn))

    def submit_indexing(self, fn: Callable[[], T]) -> Future[T]:
        """`fn` on the indexing worker; 503 when its queue is full."""
        try:
            return self.index_pool.submit(fn)
        except QueueFullError as exc:
            raise ProblemError(
                503,
                f"the indexing queue is full ({self.index_pool.running} running, "
                f"{self.index_pool.queued} waiting); retry later",
                kind="indexing-busy",
                headers={"Retry-After": "30"},
            ) from exc

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        try:
            return self.pool.submit(fn)
        except QueueFullError as exc:
            raise ProblemError(
                503,
                f"the server is busy ({self.pool.running} running, {self.pool.queued} "
                "waiting); retry later",
                kind="overloaded",
                headers={"Retry-After": str(self.retry_after())},
            ) from exc

    def retry_after(self) -> int:
        # A rough guess: one answer takes seconds on a CPU; a client should not hammer.
        return max(1, math.ceil(2 * (1 + self.pool.queued) / max(self.pool.workers, 1)))

    # -- indexing jobs ---------------------------------------------------------------------
    def upload_dir(self, collection: str) -> Path:
        return self.settings.uploads_dir / collection

    def source_view(self, key: ApiKey) -> SourceView:
        """Source paths as `key` may see them: as indexed for an admin, else relative to the
        collection's root (`pipeline/api/sources.py`)."""
        if key.scope == "admin":
            return as_indexed
        # One view serves one response: each collection's root is looked up once in it, not
        # once per source (an answer shows ~2k sources, a document page up to 1,000).
        roots: dict[str, str | None] = {}

        def view(collection: str, source: str) -> str:
            if collection not in roots:
                roots[collection] = self.source_root(collection)
            return relative_source(source, roots[collection])

        return view

    def source_root(self, collection: str) -> str | None:
        """The collection's root directory, recomputed when its document count changes."""
        store = self.rag.store(collection)
        count = store.count("documents")
        with self._roots_lock:
            cached = self._roots.get(collection)
            if cached is not None and cached[0] == count:
                return cached[1]
        root = source_root(d.source for d in store.documents())
        with self._roots_lock:
            self._roots[collection] = (count, root)
        return root

    def create_collection(self, collection: str) -> bool:
        with self._index_lock:
            return self.indexer.create(collection)

    def drop_collection(self, collection: str) -> int:
        """Drop it after the indexing job that holds it, if any; returns the review items
        removed with it."""
        with self._index_lock:
            self.rag.forget(collection)
            try:
                return self.indexer.drop(collection)
            finally:
                self.rag.forget(collection)  # a reader opened in between

    def start_job(self, collection: str, files: list[str], staging: Path) -> Job:
        """Queue a job for files staged in `staging`; they replace earlier uploads only when
        it starts. 503 when the indexing queue is full, and then the staged files are gone and
        nothing else changed."""
        job = self.jobs.add(collection, files, staging)
        try:
            self.submit_indexing(lambda: self._run_job(job))
        except ProblemError:
            self.jobs.remove(job.id)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return job

    def _run_job(self, job: Job) -> None:
        # Its model calls yield to the answers' (verirag/core/compute.py), and its own
        # parsing, chunking and writing run at a lower CPU priority than the answers' glue.
        _lower_this_threads_priority()
        with self._index_lock, compute.background():
            try:
                run_job(
                    job,
                    self.jobs,
                    self.upload_dir(job.collection),
                    lambda paths, name, progress: self.indexer.run(paths, name, progress=progress),
                )
            except Exception:
                log.exception("indexing job %s failed", job.id)

    def delete_document(self, collection: str, doc_id: str) -> list[tuple[str, str]]:
        """Delete the document, and the uploaded file it came from (deleted means deleted)."""
        with self._index_lock:
            deleted = self.indexer.delete(collection, [doc_id])
            uploads = self.upload_dir(collection).resolve()
            store = self.indexer.open_store(collection)
            try:
                for _, source in deleted:
                    # A JSONL record's source is "<file>#<line>"; the file goes only when no
                    # document of the collection still comes from it.
                    path = Path(source.split("#", 1)[0]).resolve()
                    if path.parent == uploads and not store.docs_of_file(str(path)):
                        path.unlink(missing_ok=True)
            finally:
                store.close()
            return deleted
