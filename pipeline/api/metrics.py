"""Prometheus metrics (prometheus-client) on a registry of the app's own: the global default
registry would make a second app in the same process (tests, an embedding server) fail on
duplicate names and mix its counts with the first one's."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

# Seconds: from a health check to a long answer on a CPU.
BUCKETS: tuple[float, ...] = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Exposed at 0 from the start, so that a rate() over a decision never seen yet is 0, not absent.
DECISIONS = ("answer", "review", "abstain")

_REQUEST_LABELS = ("method", "endpoint", "status")


class Metrics:
    """Thread-safe (prometheus-client locks per child); request metrics are labelled by route
    template, never by raw path, so a client cannot grow the series without bound."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._requests = Counter(
            "verirag_http_requests",
            "HTTP requests by method, route and status.",
            _REQUEST_LABELS,
            registry=self.registry,
        )
        self._latency = Histogram(
            "verirag_http_request_duration_seconds",
            "HTTP request latency.",
            _REQUEST_LABELS,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._answers = Counter(
            "verirag_answers", "Answers by decision.", ("decision",), registry=self.registry
        )
        for decision in DECISIONS:
            self._answers.labels(decision=decision)

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        labels = {"method": method, "endpoint": endpoint, "status": str(status)}
        self._requests.labels(**labels).inc()
        self._latency.labels(**labels).observe(seconds)

    def count_answer(self, decision: str) -> None:
        self._answers.labels(decision=decision).inc()

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge whose value is `read()` at scrape time."""
        Gauge(name, help_text, registry=self.registry).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
