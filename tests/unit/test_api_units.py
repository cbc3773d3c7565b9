"""Pure parts of the HTTP API: file name sanitising, the token bucket, the worker pool,
Prometheus exposition."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tests.api_support import Scrape
from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.metrics import Metrics
from verirag.pipeline.api.services import QueueFullError, RateLimiter, WorkerPool
from verirag.pipeline.api.uploads import sanitize_filename


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.PDF", "report.pdf"),
        ("/etc/cron.d/job.txt", "job.txt"),
        ("C:\\Users\\me\\notes.md", "notes.md"),
        ("  spaced name (1).txt", "spaced_name_1.txt"),
        (".hidden.txt", "hidden.txt"),
        ("日本語.txt", "upload.txt"),
        ("a" * 300 + ".rst", "a" * 100 + ".rst"),
        ("data.jsonl", "data.jsonl"),
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


@pytest.mark.parametrize(
    "raw", ["", "..", "../x.txt", "x/../../y.txt", "a\x00.txt", "a\n.txt", "a.sh", "x.txt/"]
)
def test_sanitize_filename_refuses(raw: str) -> None:
    with pytest.raises(ProblemError) as info:
        sanitize_filename(raw)
    assert info.value.status == 422


def test_token_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("verirag.pipeline.api.services.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=2)
    assert limiter.acquire(1) == 0 and limiter.acquire(1) == 0
    assert limiter.acquire(1) == pytest.approx(30.0)
    assert limiter.acquire(2) == 0  # per key
    now[0] += 30.0
    assert limiter.acquire(1) == 0
    assert RateLimiter(per_minute=0).acquire(1) == 0


def test_worker_pool_refuses_beyond_workers_plus_queue() -> None:
    pool = WorkerPool(workers=1, queue_limit=1)
    gate = threading.Event()
    running = pool.submit(lambda: gate.wait(5))
    waiting = pool.submit(lambda: 1)
    with pytest.raises(QueueFullError):
        pool.submit(lambda: 2)
    gate.set()
    assert running.result(5) and waiting.result(5) == 1
    assert (pool.queued, pool.running) == (0, 0)
    pool.shutdown()


def test_prometheus_exposition() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/v1/x", 200, 0.01)
    metrics.observe_request("GET", "/v1/x", 200, 3.0)
    metrics.count_answer("review")
    metrics.gauge("verirag_queue_depth", "Waiting.", lambda: 3.0)
    scrape = Scrape(metrics.render().decode())
    base = {"method": "GET", "endpoint": "/v1/x", "status": "200"}
    histogram = "verirag_http_request_duration_seconds"
    assert scrape.families[histogram].type == "histogram"
    assert scrape.value(f"{histogram}_bucket", **base, le="0.005") == 0
    assert scrape.value(f"{histogram}_bucket", **base, le="0.025") == 1
    assert scrape.value(f"{histogram}_bucket", **base, le="5.0") == 2
    assert scrape.value(f"{histogram}_bucket", **base, le="+Inf") == 2
    assert scrape.value(f"{histogram}_count", **base) == 2
    assert scrape.value(f"{histogram}_sum", **base) == pytest.approx(3.01)
    assert scrape.value("verirag_http_requests_total", **base) == 2
    assert scrape.value("verirag_answers_total", decision="review") == 1
    # Every decision is exposed from the start, at 0 until it happens.
    assert scrape.value("verirag_answers_total", decision="abstain") == 0
    assert scrape.value("verirag_answers_total", decision="answer") == 0
    assert scrape.families["verirag_queue_depth"].type == "gauge"
    assert scrape.value("verirag_queue_depth") == 3
    # The standard collectors, on this registry rather than the global one.
    assert "python_info" in scrape.families and "python_gc_objects_collected" in scrape.families
    if sys.platform.startswith("linux"):  # the process collector reads /proc
        assert scrape.value("process_resident_memory_bytes") > 0
        assert "process_cpu_seconds" in scrape.families


def test_metrics_of_two_apps_are_separate() -> None:
    # On the global registry the second instance would raise on duplicate names.
    first, second = Metrics(), Metrics()
    first.count_answer("answer")
    first.gauge("verirag_ready", "Ready.", lambda: 1.0)
    second.gauge("verirag_ready", "Ready.", lambda: 0.0)
    one, two = Scrape(first.render().decode()), Scrape(second.render().decode())
    assert one.value("verirag_answers_total", decision="answer") == 1
    assert two.value("verirag_answers_total", decision="answer") == 0
    assert (one.value("verirag_ready"), two.value("verirag_ready")) == (1, 0)


def test_api_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from verirag.core.settings import Settings

    monkeypatch.setenv("VERIRAG_API_CORS_ORIGINS", '["https://app.example"]')
    monkeypatch.setenv("VERIRAG_API_RATE_LIMIT_PER_MINUTE", "7")
    settings = Settings()
    assert settings.api_cors_origins == ["https://app.example"]
    assert settings.api_rate_limit_per_minute == 7
    assert Settings(api_queue_limit=0).api_queue_limit == 0
    with pytest.raises(ValueError, match="api_max_k"):
        Settings(api_max_k=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_indexing_thread_alone_runs_at_a_lower_cpu_priority() -> None:
    from verirag.pipeline.api.services import INDEX_THREAD_NICE, _lower_this_threads_priority

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def job() -> None:
        _lower_this_threads_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen == [max(before, INDEX_THREAD_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
