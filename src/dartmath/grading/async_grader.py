"""Grading beside an asyncio loop: a thread owns a `Grader`, verdicts come back as futures.

The synthesis loop must never wait for sympy: it hands each finished response to this thread
and goes on generating. The thread extracts answers, answers cache hits at once and waits on the
grader's worker processes for the rest (waking when new work arrives), so grading overlaps
generation and a stuck item costs only its own time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading

from dartmath.grading.grade import Verdict
from dartmath.grading.grader import Grader, GraderStats, Judge


class AsyncGrader:
    """`await grader.grade(ref, resp)` from the event loop; `close()` when done."""

    def __init__(self, workers: int = 1, timeout: float = 5.0, judge: Judge | None = None) -> None:
        self._grader = Grader(workers=workers, timeout=timeout, judge=judge)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)  # a full pipe already means "wake up"
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dart-grader", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> GraderStats:
        return self._grader.stats

    def grade(self, ref: str, resp: str) -> asyncio.Future[Verdict]:
        """A future of the response's verdict; must be called from the running loop."""
        if self._error is not None:
            raise self._error
        fut = asyncio.get_running_loop().create_future()
        self._inbox.put((fut, ref, resp))
        self._wake()
        return fut

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        g = self._grader
        try:
            while True:
                items = [self._inbox.get()] if g.pending() == 0 else []
                with contextlib.suppress(queue.Empty):
                    while True:
                        items.append(self._inbox.get_nowait())
                for item in items:
                    if item is None:
                        return
                    fut, ref, resp = item
                    verdict = g.submit(fut, ref, resp)
                    if verdict is not None:
                        _deliver(fut, verdict)
                if g.pending():
                    for fut, verdict in g.poll(None, wake=self._wake_r):
                        _deliver(fut, verdict)
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 65536):
                        pass
        except BaseException as e:  # e.g. GraderStartError: fail every waiter, then the caller
            self._error = e
            for fut in g.pending_tokens():
                _fail(fut, e)
            with contextlib.suppress(queue.Empty):
                while (item := self._inbox.get_nowait()) is not None:
                    _fail(item[0], e)

    def close(self) -> None:
        """Stop the thread and the worker processes; pending futures are left unresolved."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put(None)
        self._wake()
        self._thread.join(timeout=30)
        self._grader.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _deliver(fut: asyncio.Future, verdict: Verdict) -> None:
    def set_result() -> None:
        if not fut.done():
            fut.set_result(verdict)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        fut.get_loop().call_soon_threadsafe(set_result)


def _fail(fut: asyncio.Future, error: BaseException) -> None:
    def set_exception() -> None:
        if not fut.done():
            fut.set_exception(error)

    with contextlib.suppress(RuntimeError):
        fut.get_loop().call_soon_threadsafe(set_exception)
