"""The compute thread: every model call on one thread, whichever thread asks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from verirag.core.compute import ComputeThread, Interrupted, background


def test_calls_from_many_threads_run_on_one_thread() -> None:
    compute = ComputeThread()
    seen: set[int] = set()

    def work(x: int) -> int:
        seen.add(threading.get_ident())
        return x * 2

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda x: compute.call(work, x), range(20)))
    assert results == [x * 2 for x in range(20)]
    assert len(seen) == 1
    assert threading.get_ident() not in seen


def test_nested_calls_run_inline() -> None:
    compute = ComputeThread()

    def inner() -> int:
        assert compute.on_thread()
        return threading.get_ident()

    def outer() -> tuple[int, int]:
        return threading.get_ident(), compute.call(inner)  # would deadlock if queued

    a, b = compute.call(outer)
    assert a == b


def test_exceptions_reach_the_caller() -> None:
    compute = ComputeThread()

    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        compute.call(boom)
    assert compute.call(lambda: 1) == 1  # the thread survives


def test_iterate_hands_items_over_and_reraises() -> None:
    compute = ComputeThread()

    def items(n: int) -> Iterator[int]:
        assert compute.on_thread()
        yield from range(n)
        raise RuntimeError("after the items")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="after the items"):
        for item in compute.iterate(items, 3):
            got.append(item)
    assert got == [0, 1, 2]


def test_a_consumer_that_stops_stops_the_producer_at_its_next_checkpoint() -> None:
    compute = ComputeThread()
    produced: list[int] = []
    closed = threading.Event()

    def tokens() -> Iterator[int]:
        try:
            for i in range(10_000):
                compute.checkpoint()
                produced.append(i)
                if i % 100 == 0:
                    yield i
                time.sleep(0.0001)
        finally:
            closed.set()

    class StopError(Exception):
        pass

    with pytest.raises(StopError):
        for item in compute.iterate(tokens):
            if item == 200:
                raise StopError
    # `iterate` returns only once the producer has stopped: the model is free again.
    assert closed.is_set()
    assert len(produced) < 10_000
    assert compute.call(lambda: "free") == "free"


def test_the_consumer_may_make_model_calls_between_items() -> None:
    compute = ComputeThread()

    def items() -> Iterator[int]:
        yield 1
        yield 2

    # The producer never waits for the consumer, so a call between items cannot deadlock.
    def times_ten(x: int) -> int:
        return x * 10

    out = [(item, compute.call(times_ten, item)) for item in compute.iterate(items)]
    assert out == [(1, 10), (2, 20)]


def test_checkpoint_outside_a_stopped_call_is_a_no_op() -> None:
    compute = ComputeThread()
    compute.checkpoint()  # not on the compute thread

    def checked() -> int:
        compute.checkpoint()  # the caller is still waiting
        return 5

    assert compute.call(checked) == 5
    assert issubclass(Interrupted, Exception)


def _queued(compute: ComputeThread, n: int) -> None:
    deadline = time.monotonic() + 5
    while compute._queue.qsize() < n:
        assert time.monotonic() < deadline, "calls never queued"
        time.sleep(0.005)


def test_interactive_calls_overtake_queued_background_calls() -> None:
    """An answer's model call must not wait behind an upload's queued embedding batches."""
    compute = ComputeThread(grace=0.0)
    order: list[str] = []
    gate = threading.Event()

    def hold() -> None:
        gate.wait(5)
        order.append("gate")

    def background_call(name: str) -> None:
        with background():
            compute.call(order.append, name)

    threads = [threading.Thread(target=compute.call, args=(hold,))]
    threads[0].start()
    time.sleep(0.05)  # the gate call is running: the queue is empty again
    for name in ("b1", "b2", "b3"):
        t = threading.Thread(target=background_call, args=(name,))
        t.start()
        threads.append(t)
        _queued(compute, len(threads) - 1)
    t = threading.Thread(target=compute.call, args=(order.append, "ask"))
    t.start()
    threads.append(t)
    _queued(compute, 4)
    gate.set()
    for t in threads:
        t.join(5)
    assert order == ["gate", "ask", "b1", "b2", "b3"]


def test_background_calls_wait_out_the_grace_after_an_interactive_call() -> None:
    compute = ComputeThread(grace=0.4)
    order: list[str] = []
    compute.call(order.append, "ask 1")  # an answer's first call

    def background_call() -> None:
        with background():
            compute.call(order.append, "embed")

    started = time.monotonic()
    t = threading.Thread(target=background_call)
    t.start()
    time.sleep(0.1)  # the answer's glue between two model calls
    compute.call(order.append, "ask 2")
    t.join(5)
    assert order == ["ask 1", "ask 2", "embed"]
    assert time.monotonic() - started < 2  # the grace delays background work, never starves it


def test_background_is_per_thread_and_restored() -> None:
    compute = ComputeThread()
    seen: list[int] = []

    def record() -> None:
        task = compute._local.task
        seen.append(task.priority)

    with background():
        compute.call(record)
        with ThreadPoolExecutor(1) as pool:  # another thread is interactive
            pool.submit(compute.call, record).result()
    compute.call(record)
    assert seen == [1, 0, 0]
