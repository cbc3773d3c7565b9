"""Prometheus text exposition (format 0.0.4), written by hand: a few counters, one histogram
and gauges read at scrape time need no client library."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

# Seconds: from a health check to a long answer on a CPU.
BUCKETS: tuple[float, ...] = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:
    __slots__ = ("counts", "sum", "total")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.sum = 0.0
        self.total = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(BUCKETS, value)
        if i < len(BUCKETS):
            self.counts[i] += 1
        self.sum += value
        self.total += 1


class Metrics:
    """Thread-safe; request metrics are labelled by route template, never by raw path, so a
    client cannot grow the series without bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str, str, str], _Histogram] = {}
        self._answers: dict[str, int] = {}
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        key = (method, endpoint, str(status))
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault(key, _Histogram()).observe(seconds)

    def count_answer(self, decision: str) -> None:
        with self._lock:
            self._answers[decision] = self._answers.get(decision, 0) + 1

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._gauges[name] = (help_text, read)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            requests = dict(self._requests)
            latency = {k: (list(h.counts), h.sum, h.total) for k, h in self._latency.items()}
            answers = dict(self._answers)
        lines += [
            "# HELP verirag_http_requests_total HTTP requests by method, route and status.",
            "# TYPE verirag_http_requests_total counter",
        ]
        for (method, endpoint, status), n in sorted(requests.items()):
            labels = _labels((("method", method), ("endpoint", endpoint), ("status", status)))
            lines.append(f"verirag_http_requests_total{labels} {n}")
        lines += [
            "# HELP verirag_http_request_duration_seconds HTTP request latency.",
            "# TYPE verirag_http_request_duration_seconds histogram",
        ]
        for (method, endpoint, status), (counts, total_s, n) in sorted(latency.items()):
            base = (("method", method), ("endpoint", endpoint), ("status", status))
            cumulative = 0
            for bound, count in zip(BUCKETS, counts, strict=True):
                cumulative += count
                labels = _labels((*base, ("le", _number(bound))))
                lines.append(f"verirag_http_request_duration_seconds_bucket{labels} {cumulative}")
            labels = _labels((*base, ("le", "+Inf")))
            lines.append(f"verirag_http_request_duration_seconds_bucket{labels} {n}")
            lines.append(f"verirag_http_request_duration_seconds_sum{_labels(base)} {total_s!r}")
            lines.append(f"verirag_http_request_duration_seconds_count{_labels(base)} {n}")
        lines += [
            "# HELP verirag_answers_total Answers by decision.",
            "# TYPE verirag_answers_total counter",
        ]
        for decision in sorted({"answer", "review", "abstain", *answers}):
            labels = _labels((("decision", decision),))
            lines.append(f"verirag_answers_total{labels} {answers.get(decision, 0)}")
        for name, (help_text, read) in sorted(self._gauges.items()):
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} gauge",
                f"{name} {_number(read())}",
            ]
        return "\n".join(lines) + "\n"
