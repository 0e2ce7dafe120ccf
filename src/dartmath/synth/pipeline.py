"""The DARS loop: keep the sampler full, grade as samples finish, stop each query exactly.

One asyncio loop owns all state. Whenever samples finish it asks the scheduler for more work,
so generation never waits for a batch. Each sample has its index in its query's submission
order (`sample_idx`). Each finished sample goes to the grader thread at once; its verdict comes
back as a future whose callback tells the scheduler, which says what that settled (see
`scheduler.py`, stop rules): the pool lines to write now, in order; graded samples past the
query's stop, dropped; and which of the query's requests to cancel (vLLM aborts a request whose
consumer is cancelled): all of them once it stopped, or those whose samples all lie above the
cutoff. The pool holds exactly the target, never one more.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dartmath.grading.async_grader import AsyncGrader
from dartmath.grading.grade import Verdict
from dartmath.queries import Query
from dartmath.record import QueryAccumulator, pool_record
from dartmath.sampling.base import Completion, Sampler
from dartmath.synth.scheduler import Scheduler, Settled
from dartmath.synth.store import RunStore

CHECKPOINT_EVERY = 30.0  # seconds between rewrites of query-info and the session's record


@dataclass
class SessionTotals:
    """What one `dart synth` invocation did (a resumed run has one per invocation)."""

    started_at: str = ""
    ended_at: str = ""  # "" while running
    outcome: str = "running"  # running | done | interrupted | error (killed: see store.py)
    seconds: float = 0.0  # from the first request to the end (or the last update)
    samples_started: int = 0
    samples_finished: int = 0  # generated to the end (graded or late)
    samples_cancelled: int = 0  # aborted in flight: their query no longer needed them
    samples_late: int = 0  # graded past their query's stop (stop rule): not written
    pool_lines_written: int = 0
    correct_written: int = 0
    tokens_generated: int = 0  # every finished sample's tokens, late ones included
    tokens_per_s: float = 0.0
    requests: int = 0
    grader: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """One synthesis session over a prepared run directory."""

    def __init__(
        self,
        *,
        queries: list[Query],
        prompts: Mapping[str, str],
        sampler: Sampler,
        grader: AsyncGrader,
        scheduler: Scheduler,
        store: RunStore,
        accumulator: QueryAccumulator,
        run_fields: Mapping[str, Any],
        totals: SessionTotals | None = None,
        on_progress: Callable[[Pipeline], None] | None = None,
        on_checkpoint: Callable[[Pipeline], None] | None = None,
    ) -> None:
        self.queries = {q.query_id: q for q in queries}
        self.prompts = prompts
        self.sampler = sampler
        self.grader = grader
        self.scheduler = scheduler
        self.store = store
        self.acc = accumulator
        self.run_fields = dict(run_fields)  # model, prompt_template: the same on every line
        self.on_progress = on_progress
        self.on_checkpoint = on_checkpoint
        self.totals = totals or SessionTotals()
        self._tasks: dict[str, asyncio.Task] = {}  # request id -> task
        self._by_query: dict[str, set[str]] = {}  # query id -> its live request ids
        self._blocks: dict[str, tuple[int, int]] = {}  # request id -> (first sample index, n)
        self._finished: dict[str, set[int]] = {}  # request id -> its finished samples (0..n-1)
        self._held: dict[tuple[str, int], tuple[Completion, Verdict]] = {}  # graded, not written
        self._grading = 0  # samples finished and waiting for a verdict
        self._wake = asyncio.Event()
        self._stop = False
        self._error: BaseException | None = None
        self._req_counter = 0
        self._t0 = 0.0

    # ---- the loop ----
    async def run(self) -> SessionTotals:
        """Sample until every query has stopped, or until interrupted (Ctrl-C, SIGTERM) or an
        error; in every case what is already generated is graded and written."""
        self._t0 = time.monotonic()
        if not self.totals.started_at:
            self.totals.started_at = now()
        last_checkpoint = time.monotonic()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.interrupt)
        try:
            while not self._stop:
                self._launch()
                if self.scheduler.done and not self._tasks and not self._grading:
                    self.totals.outcome = "done"
                    break
                if not self._tasks and not self._grading:
                    raise RuntimeError(  # the scheduler must stop a query it cannot serve
                        "scheduler stalled: queries remain but nothing is in flight or planned"
                    )
                self._wake.clear()
                await self._wake.wait()
                if self._stop:
                    break  # Ctrl-C also reaches vLLM's processes: their errors are expected now
                if self._error is not None:
                    raise self._error
                if self.on_progress:
                    self.on_progress(self)
                if time.monotonic() - last_checkpoint > CHECKPOINT_EVERY:
                    self.checkpoint()
                    last_checkpoint = time.monotonic()
            if self._stop:
                self.totals.outcome = "interrupted"
        except BaseException:
            self.totals.outcome = "error"
            raise
        finally:
            await self._cancel_all()
            await self._drain_grading()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            self.totals.ended_at = now()
            self.store.sync()
            self.checkpoint()
            if self.on_progress:
                self.on_progress(self)
        return self.totals

    def interrupt(self) -> None:
        """Stop launching, cancel what is in flight, write what is graded (Ctrl-C, SIGTERM)."""
        self._stop = True
        self._wake.set()

    def _launch(self) -> None:
        if self._stop:
            return
        free = self.sampler.capacity - self._in_flight()
        if free <= 0:
            return
        for qid, first, n in self.scheduler.next_blocks(free):
            self._req_counter += 1
            rid = f"dart-{self._req_counter}-{qid}"
            self._blocks[rid] = (first, n)
            self._finished[rid] = set()
            self._by_query.setdefault(qid, set()).add(rid)
            task = asyncio.create_task(self._request(rid, qid, n))
            # a done callback, not a `finally`: a task cancelled before its first step never
            # runs its body, and its samples must still be counted and its slot freed
            task.add_done_callback(lambda _t, rid=rid, qid=qid: self._request_done(rid, qid))
            self._tasks[rid] = task
            self.totals.samples_started += n
            self.totals.requests += 1

    def _in_flight(self) -> int:
        unfinished = sum(n - len(self._finished[rid]) for rid, (_, n) in self._blocks.items())
        return unfinished + self._grading

    async def _request(self, rid: str, qid: str, n: int) -> None:
        first = self._blocks[rid][0]
        finished = self._finished[rid]
        try:
            async for comp in self.sampler.sample(rid, self.prompts[qid], n):
                if comp.finish_reason == "abort" or comp.index in finished:
                    continue  # an abort is counted as cancelled in _request_done
                finished.add(comp.index)
                self.totals.samples_finished += 1
                self.totals.tokens_generated += comp.n_tokens or 0
                self._grade(qid, first + comp.index, comp)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # an engine failure ends the run; what is graded is kept
            if self._error is None:
                self._error = e

    def _request_done(self, rid: str, qid: str) -> None:
        first, n = self._blocks.pop(rid)
        finished = self._finished.pop(rid)
        self._tasks.pop(rid, None)
        rids = self._by_query.get(qid)
        if rids is not None:
            rids.discard(rid)
            if not rids:
                del self._by_query[qid]
        lost = [first + k for k in range(n) if k not in finished]
        if lost:
            self.totals.samples_cancelled += len(lost)
            self._settle(self.scheduler.on_lost(qid, lost))
        self._wake.set()

    def _grade(self, qid: str, idx: int, comp: Completion) -> None:
        self._grading += 1
        q = self.queries[qid]
        fut = self.grader.grade(q.gt_ans, comp.text)
        fut.add_done_callback(lambda f: self._on_verdict(qid, idx, comp, f))

    def _on_verdict(self, qid: str, idx: int, comp: Completion, fut: asyncio.Future) -> None:
        self._grading -= 1
        self._wake.set()
        if fut.cancelled() or fut.exception() is not None:
            if not fut.cancelled() and self._error is None:
                self._error = fut.exception()
            self._settle(self.scheduler.on_lost(qid, [idx]))
            return
        verdict: Verdict = fut.result()
        self._held[(qid, idx)] = (comp, verdict)
        self._settle(self.scheduler.on_graded(qid, idx, verdict.correct))

    def _settle(self, settled: list[Settled]) -> None:
        """Write what the scheduler counted, drop what it discarded, cancel what it no longer
        needs."""
        for s in settled:
            qid = s.query_id
            for idx in s.write:
                comp, verdict = self._held.pop((qid, idx))
                if self._error is None:
                    try:
                        self._write(qid, idx, comp, verdict)
                    except Exception as e:  # a full disk: stop the run; nothing written is lost
                        self._error = e
            for idx in s.discard:
                self._held.pop((qid, idx), None)
                self.totals.samples_late += 1
            if s.stopped or s.cutoff is not None:
                self._cancel_above(qid, None if s.stopped else s.cutoff)

    def _cancel_above(self, qid: str, cutoff: int | None) -> None:
        """Cancel the query's requests (all of them, or those whose unfinished samples all lie
        above `cutoff`: a request's samples cannot be aborted one by one)."""
        for rid in list(self._by_query.get(qid, ())):
            task = self._tasks.get(rid)
            if task is None:
                continue
            if cutoff is not None:
                first, n = self._blocks[rid]
                finished = self._finished[rid]
                lowest = min((first + k for k in range(n) if k not in finished), default=None)
                if lowest is None or lowest <= cutoff:
                    continue
            task.cancel()

    def _write(self, qid: str, idx: int, comp: Completion, verdict: Verdict) -> None:
        rec = pool_record(self.queries[qid], idx, comp, verdict, self.run_fields)
        self.store.append([rec])
        self.acc.add(rec)
        self.totals.pool_lines_written += 1
        self.totals.correct_written += verdict.correct

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain_grading(self) -> None:
        """Wait for verdicts of samples already generated: they cost compute, keep them."""
        while self._grading and self._error is None:
            self._wake.clear()
            await self._wake.wait()

    # ---- reporting ----
    def checkpoint(self) -> None:
        """Bring the session's figures up to date and hand them to `on_checkpoint` (which
        rewrites what the run directory derives from the pool)."""
        t = self.totals
        t.seconds = round(time.monotonic() - self._t0, 3)
        t.tokens_per_s = round(t.tokens_generated / t.seconds, 2) if t.seconds > 0 else 0.0
        if self.grader is not None:
            t.grader = asdict(self.grader.stats)
        if self.on_checkpoint:
            self.on_checkpoint(self)

    def elapsed(self) -> float:
        return time.monotonic() - self._t0


def now() -> str:
    """Local time as the run summary writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
