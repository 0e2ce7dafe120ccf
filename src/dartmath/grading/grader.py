"""Grade many responses: answers are extracted here, judged in worker processes.

Why processes: sympy can spin inside C code where no signal or thread can stop it, so each
item gets a hard time limit and a worker that overruns it is killed (SIGKILL) and replaced.
Verdicts are cached by (normalised reference, extracted answer): in a DARS pool most responses
to one query share a handful of answers, so most never reach a worker at all.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import multiprocessing as mp
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from dartmath.errors import GraderStartError
from dartmath.grading.extract import extract_answer
from dartmath.grading.grade import NO_ANSWER, Verdict
from dartmath.grading.normalize import normalize

TIMEOUT = "timeout"
_LONG_KEY = 512  # answers longer than this are cached under a digest


Judge = Callable[[str, str], bool]


def _worker_main(conn: Connection, judge: Judge | None) -> None:
    """Worker loop: judge (item_id, ref, ans) messages one at a time, answer each at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if judge is None:
        from dartmath.grading.equivalence import is_equivalent as judge

        with contextlib.suppress(Exception):  # warm the LaTeX parser before the clock runs
            judge("\\frac{1}{2}", "x = \\sqrt{2}")
    conn.send(None)  # ready
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        item_id, ref, ans = msg
        try:
            result = (item_id, bool(judge(ref, ans)), None)
        except Exception as e:  # any grader bug is this item's error, not the run's
            result = (item_id, False, f"error: {type(e).__name__}: {str(e)[:200]}")
        conn.send(result)


_MAX_FAILED_STARTS = 3


@dataclass
class _Worker:
    proc: mp.process.BaseProcess
    conn: Connection
    ready: bool = False
    queue: deque = field(default_factory=deque)  # (item_id, ref, ans) sent, in order
    head_started: float = 0.0


class WorkerPool:
    """Worker processes judging (ref, ans) items, each under a hard time limit.

    `submit` queues an item; `poll` returns finished (item_id, correct, error) triples.
    Up to `depth` items are in a worker's pipe at once so that it never waits for the parent.
    """

    def __init__(
        self, workers: int = 1, timeout: float = 5.0, depth: int = 2, judge: Judge | None = None
    ) -> None:
        self.timeout = timeout
        self.depth = depth
        self._judge = judge  # None: the project's grader; tests pass module-level functions
        self._ctx = mp.get_context("spawn")  # safe beside threads (vLLM, tqdm) in the parent
        self._workers = [self._start() for _ in range(workers)]
        self._backlog: deque = deque()
        self.restarts = 0
        self._failed_starts = 0

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main, args=(child, self._judge), daemon=True, name="dart-grader"
        )
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def outstanding(self) -> int:
        """Items submitted and not yet returned by poll."""
        return len(self._backlog) + sum(len(w.queue) for w in self._workers)

    def submit(self, item_id: int, ref: str, ans: str) -> None:
        self._backlog.append((item_id, ref, ans))
        self._dispatch()

    def _dispatch(self) -> None:
        for w in self._workers:
            while w.ready and self._backlog and len(w.queue) < self.depth:
                item = self._backlog.popleft()
                if not w.queue:
                    w.head_started = time.monotonic()
                w.queue.append(item)
                w.conn.send(item)

    def _replace(self, w: _Worker) -> _Worker:
        """Kill a worker, put its unfinished items (but the head) back first in line."""
        with contextlib.suppress(Exception):
            w.proc.kill()
        w.proc.join(timeout=5)
        w.conn.close()
        rest = list(w.queue)[1:]
        self._backlog.extendleft(reversed(rest))
        self.restarts += 1
        return self._start()

    def poll(
        self, timeout: float | None = 0.0, wake: object | None = None
    ) -> list[tuple[int, bool, str | None]]:
        """Wait up to `timeout` seconds (None: until something finishes) and collect results.

        `wake` (anything `multiprocessing.connection.wait` takes, e.g. a pipe's file descriptor)
        ends the wait early when it becomes readable; the caller drains it.
        """
        out: list[tuple[int, bool, str | None]] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            busy = [w for w in self._workers if w.queue or not w.ready]
            if not busy:
                return out
            now = time.monotonic()
            next_kill = min(
                (w.head_started + self.timeout for w in busy if w.ready and w.queue), default=None
            )
            limits = [t for t in (deadline, next_kill) if t is not None]
            wait_for = max(0.0, min(limits) - now) if limits else None
            woken = False
            waitables = [w.conn for w in busy] + ([wake] if wake is not None else [])
            for conn in wait(waitables, timeout=wait_for):
                if conn is wake:
                    woken = True
                    continue
                w = next(x for x in self._workers if x.conn is conn)
                self._receive(w, out)
            self._enforce_deadlines(out)
            self._dispatch()
            if out or woken or (deadline is not None and time.monotonic() >= deadline):
                return out

    def _receive(self, w: _Worker, out: list) -> None:
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if msg is None:
                    w.ready = True
                    w.head_started = time.monotonic()
                    continue
                w.queue.popleft()
                w.head_started = time.monotonic()
                out.append(msg)
        except (EOFError, OSError):
            w.proc.join(timeout=5)
            code = w.proc.exitcode
            if not w.ready:
                self._failed_starts += 1
                if self._failed_starts >= _MAX_FAILED_STARTS:
                    raise GraderStartError(
                        f"grader workers exit before they are ready ({self._failed_starts} in a "
                        f"row, last exit code {code}); see the worker traceback above"
                    ) from None
            else:
                self._failed_starts = 0
            if w.queue:
                out.append((w.queue[0][0], False, f"error: grader worker died (exit code {code})"))
            self._workers[self._workers.index(w)] = self._replace(w)

    def _enforce_deadlines(self, out: list) -> None:
        now = time.monotonic()
        for i, w in enumerate(self._workers):
            if w.ready and w.queue and now - w.head_started > self.timeout:
                out.append((w.queue[0][0], False, TIMEOUT))
                self._workers[i] = self._replace(w)

    def close(self) -> None:
        """Stop all workers (politely, then by force)."""
        for w in self._workers:
            with contextlib.suppress(Exception):
                w.conn.send(None)
        for w in self._workers:
            w.proc.join(timeout=2)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)
            w.conn.close()
        self._workers = []


@functools.lru_cache(maxsize=100_000)
def _ref_key(ref: str) -> str:
    return normalize(ref)


def _ans_key(ans: str) -> str:
    if len(ans) <= _LONG_KEY:
        return ans
    return "#blake2b:" + hashlib.blake2b(ans.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class GraderStats:
    """What the grader did: how many items were judged where, and how they ended."""

    items: int = 0
    cache_hits: int = 0
    judged: int = 0
    no_answer: int = 0
    timeouts: int = 0
    errors: int = 0
    worker_restarts: int = 0


class Grader:
    """Extract, cache and judge responses against references; usable as a context manager.

    `grade_many` yields one Verdict per (reference, response), in input order, holding at
    most `window` items at a time so that memory stays flat on any pool size.
    """

    def __init__(
        self,
        workers: int = 1,
        timeout: float = 5.0,
        cache_size: int = 200_000,
        window: int = 10_000,
        judge: Judge | None = None,
    ) -> None:
        self.pool = WorkerPool(workers=workers, timeout=timeout, judge=judge)
        self.workers = workers
        self.window = window
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[bool, str | None]] = OrderedDict()
        self._waiting: dict[tuple[str, str], list] = {}  # cache key -> [(token, ans)] awaiting it
        self._ids: dict[int, tuple[str, str]] = {}  # pool item id -> cache key
        self._counter = itertools.count()
        self.stats = GraderStats()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stats.worker_restarts = self.pool.restarts
        self.pool.close()

    def _remember(self, key: tuple[str, str], result: tuple[bool, str | None]) -> None:
        self._cache[key] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _count(self, v: Verdict) -> Verdict:
        if v.error == NO_ANSWER:
            self.stats.no_answer += 1
        elif v.error == TIMEOUT:
            self.stats.timeouts += 1
        elif v.error:
            self.stats.errors += 1
        return v

    def pending(self) -> int:
        """Submitted items whose verdicts `poll` has not returned yet."""
        return sum(len(v) for v in self._waiting.values())

    def pending_tokens(self) -> list[object]:
        """The tokens of submitted items still waiting for a verdict."""
        return [token for waiters in self._waiting.values() for token, _ in waiters]

    def submit(self, token: object, ref: str, resp: str) -> Verdict | None:
        """Start grading one response: its verdict now (no answer, cache hit), or None and the
        verdict comes back later from `poll` together with `token`."""
        self.stats.items += 1
        ans = extract_answer(resp)
        if ans is None:
            return self._count(Verdict(None, False, NO_ANSWER))
        key = (_ref_key(ref), _ans_key(ans))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return self._count(Verdict(ans, hit[0], hit[1]))
        if key in self._waiting:  # the same answer is being judged: wait for that verdict
            self.stats.cache_hits += 1
            self._waiting[key].append((token, ans))
            return None
        self.stats.judged += 1
        self._waiting[key] = [(token, ans)]
        item_id = next(self._counter)
        self._ids[item_id] = key
        self.pool.submit(item_id, ref, ans)
        return None

    def poll(self, timeout: float | None = 0.0, wake: object | None = None) -> list[tuple]:
        """(token, Verdict) pairs judged since the last call, waiting up to `timeout` seconds
        (None: until one is ready, or `wake` is readable)."""
        out = []
        for item_id, ok, err in self.pool.poll(timeout, wake):
            key = self._ids.pop(item_id)
            if err is None or err == TIMEOUT:
                self._remember(key, (ok, err))
            for token, ans in self._waiting.pop(key):
                out.append((token, self._count(Verdict(ans, ok, err))))
        self.stats.worker_restarts = self.pool.restarts
        return out

    def grade_many(self, items: Iterable[tuple[str, str]]) -> Iterator[Verdict]:
        """Grade (reference, response) pairs; yield their verdicts in the same order."""
        entries: deque[list] = deque()  # [verdict or None], in input order
        max_outstanding = max(32, 8 * self.workers)

        def collect(timeout: float | None) -> None:
            for entry, verdict in self.poll(timeout):
                entry[0] = verdict

        def ready() -> Iterator[Verdict]:
            while entries and entries[0][0] is not None:
                yield entries.popleft()[0]

        for ref, resp in items:
            entry: list = [None]
            entries.append(entry)
            entry[0] = self.submit(entry, ref, resp)
            collect(0.0)
            while self.pool.outstanding() >= max_outstanding or (
                len(entries) >= self.window and entries[0][0] is None
            ):
                collect(None)
            yield from ready()
        while entries:
            if entries[0][0] is None:
                collect(None)
            yield from ready()
