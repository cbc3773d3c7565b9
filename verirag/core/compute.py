"""One thread runs every model call in the process.

llama.cpp (ggml) and torch load the same libgomp, which keeps one OpenMP thread team per
thread that calls into it. Once the process holds more OpenMP threads than there are cores,
libgomp spins only 100 times at a barrier before sleeping in the kernel, and ggml passes a
barrier after every operation of its graph. So the first model call made from a second
thread (a server worker, a user's thread pool) slowed every later call of the process:
greedy decoding by 33% on 2 cores (`python bench/compute_thread.py`), and the HTTP API's
answers by 7-10% against the same pipeline called in-process. Routing the calls of the
encoder and the generators through this one thread keeps one team, whichever thread asks.

Model calls were serialised by each model's lock already, so nothing that ran in parallel
before is serialised by this. A call made on the compute thread runs inline (a generator's
`generate` calls its own `stream`). A caller interrupted while it waits (Ctrl-C, a
cancelled request) asks the running call to stop at its next token (`checkpoint`), waits
for it to stop, and re-raises: the model is never freed under a running call.

Calls made inside `background()` (the HTTP API's indexing jobs) wait while any other call
is queued, and for a short grace after one finishes, because an answer is a chain of model
calls with a little glue between them: in FIFO order each of its calls queued behind an
upload's embedding, and asks beside a 200-document upload took 3.7x longer at p95.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_END = object()

INTERACTIVE = 0
BACKGROUND = 1
_PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar(
    "verirag_compute_priority", default=INTERACTIVE
)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Model calls made inside this block yield to every interactive call (see module doc)."""
    token = _PRIORITY.set(BACKGROUND)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


class Interrupted(Exception):  # noqa: N818 - a signal, not an error condition
    """Raised by `checkpoint` on the compute thread when the caller stopped waiting."""


class _Task:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.priority = _PRIORITY.get()  # the caller's: tasks are made on the calling thread
        self.future: Future[Any] = Future()
        self.stop = threading.Event()


class ComputeThread:
    """A single long-lived worker thread with a queue of calls: interactive calls first, in
    the order they came; background calls when no interactive call has come for `grace`
    seconds."""

    def __init__(self, name: str = "verirag-compute", grace: float = 0.25) -> None:
        self._name = name
        self.grace = grace
        self._queue: queue.PriorityQueue[tuple[int, int, _Task]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._last_interactive = float("-inf")
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._local = threading.local()

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                # A daemon: a process that exits with the thread idle must not wait on it;
                # callers wait for the running call themselves (see `call`).
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _next(self) -> _Task:
        while True:
            entry = self._queue.get()
            task = entry[2]
            if task.priority == INTERACTIVE:
                return task
            wait = self._last_interactive + self.grace - time.monotonic()
            if wait <= 0:
                return task
            # The answer that just ran a call is likely to make another within the grace:
            # hold the background call back, then take whatever ranks first.
            self._queue.put(entry)
            time.sleep(wait)

    def _loop(self) -> None:
        while True:
            task = self._next()
            if not task.future.set_running_or_notify_cancel():
                continue
            self._local.task = task
            try:
                task.future.set_result(task.fn())
            except BaseException as exc:  # handed to the waiting caller
                task.future.set_exception(exc)
            finally:
                self._local.task = None
                if task.priority == INTERACTIVE:
                    self._last_interactive = time.monotonic()

    def checkpoint(self) -> None:
        """Raise `Interrupted` if the caller of the running call has stopped waiting.
        Token loops call this once per token; elsewhere it is a no-op."""
        task: _Task | None = getattr(self._local, "task", None)
        if task is not None and task.stop.is_set():
            raise Interrupted("the caller stopped waiting for this model call")

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.on_thread():
            return fn(*args, **kwargs)
        task = self._submit(_Task(functools.partial(fn, *args, **kwargs)))
        try:
            result: T = task.future.result()
        except BaseException:
            _abandon(task)
            raise
        return result

    def _submit(self, task: _Task) -> _Task:
        self._ensure_started()
        self._queue.put((task.priority, next(self._order), task))
        return task

    def iterate(
        self, fn: Callable[P, Iterator[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[T]:
        """Run a generator function on the compute thread, its items handed over as they
        come. The producer never waits for the consumer (an unbounded hand-over), so a
        consumer that makes other model calls between items cannot deadlock; a consumer
        that stops early (or raises) stops the producer at its next item or token."""
        if self.on_thread():
            yield from fn(*args, **kwargs)
            return
        handover: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def produce() -> None:
            items = fn(*args, **kwargs)
            try:
                for item in items:
                    handover.put(item)
                    if task.stop.is_set():
                        break
            except Interrupted:
                pass
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
                handover.put(_END)

        task = _Task(produce)  # bound before it is queued: `produce` reads it
        self._submit(task)
        try:
            while (item := handover.get()) is not _END:
                yield item
            task.future.result()  # re-raises the producer's exception
        finally:
            _abandon(task)


def _abandon(task: _Task) -> None:
    """The caller stopped waiting: a queued call never runs, a running one stops at its
    next checkpoint, and the caller waits for that, so the model stays alive until then."""
    if not task.future.done():
        task.stop.set()
        task.future.cancel()
        _wait_quietly(task.future)


def _wait_quietly(future: Future[Any]) -> None:
    while True:
        try:
            future.exception()
            return
        except BaseException:  # a second Ctrl-C must not free the model early
            if future.done():
                return


_COMPUTE = ComputeThread()


def compute_thread() -> ComputeThread:
    return _COMPUTE


def checkpoint() -> None:
    """See `ComputeThread.checkpoint`: token loops call it once per token."""
    _COMPUTE.checkpoint()


def model_call(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator: the call runs on the compute thread."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return _COMPUTE.call(fn, *args, **kwargs)

    return wrapper


def model_stream(fn: Callable[P, Iterator[T]]) -> Callable[P, Iterator[T]]:
    """Decorator for generator functions: the generator runs on the compute thread."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return _COMPUTE.iterate(fn, *args, **kwargs)

    return wrapper
