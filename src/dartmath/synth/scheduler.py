"""Which queries to sample next and how many: per-query state, exact stops, caps and budget.

Pure logic, driven by the async pipeline and by `bench/bench_sample_efficiency.py` alike:

    sched = Scheduler(query_ids, spec, max_raw=2048)
    sched.restore(qid, verdicts, next_index)       # resume: before anything else
    for qid, first, n in sched.next_blocks(free):  # samples first..first+n-1 of qid, in flight
        ...start them...
    for s in sched.on_graded(qid, idx, correct):   # a graded sample; what it settled:
        ...write s.write, drop s.discard, abort s.query_id's requests if s.stopped,
        ...or those whose samples all lie above s.cutoff
    sched.on_lost(qid, indices)                    # in-flight samples that will not come back

Every sample has an index in its query's submission order (`sample_idx` in the pool: a request's
samples in their order within it). The stop rule (`stop`) decides which graded samples count:
- `submission-order` (default): a query keeps the first `target` correct samples in submission
  order. A graded sample is held until every earlier sample of its query is graded or lost, then
  counted (written) in index order; so the query stops exactly at the `target`-th correct sample
  in submission order, whatever order samples finish in. As soon as the held samples settle the
  outcome, the samples above the deciding one (`cutoff`) are aborted and none is started.
  Selection is then independent of how long a sample took, so kept responses are not biased
  toward short ones.
- `first-finished`: samples count as they finish; the query stops at the first `target` correct
  ones to finish and aborts the rest. A query is done sooner (no waiting on slow earlier
  samples), but the long samples are the ones aborted, so kept responses lean short.
`on_result(qid, correct)` / `on_cancelled(qid, n)` are the count-only form (arrival order, no
indices), for callers that track no indices.

Sizing: a query with remaining need r gets at most the samples in flight that `sizing.py` allows
for its pass rate. With a per-query cap, free slots go first to the queries with the most
expected rounds left (remaining work / allowed in flight), so that no query is left at the end
with a long chain of small rounds; without one, to the queries with the least expected work
left (`SizingPolicy.order`), so that a query that is never solved cannot take the engine. What
a target is, and when a query's difficulty is still being probed, is the strategy's
(`strategies.py`); caps, budget, order, stop rule and accounting are the scheduler's.

Accounting: `raw` counts graded samples counted (restored ones included); held samples wait for
earlier ones. `max_raw` bounds raw + held + in flight of a query, `budget` the same summed over
queries (aborted and lost samples give their room back).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from dartmath.synth.sizing import (
    _UNBOUNDED,
    SizingPolicy,
    cached_allowed_in_flight,
    wilson_upper,
)
from dartmath.synth.strategies import (
    STOP_BUDGET,
    STOP_MAX_RAW,
    STOP_REASONS,
    StrategySpec,
    check_limits,
    make_strategy,
)

STOP_RULES = ("submission-order", "first-finished")

# --------------------------------------------------------------------------------------------
# State


@dataclass(eq=False)
class QueryState:
    """One query's counters (a live view: read, do not modify).

    target: correct responses needed (vrt: raw samples); None while Prop2Diff probes are running.
    raw: graded samples accepted (restored ones included); correct: how many were correct.
    inflight: handed out and not yet reported; started/cancelled/aborted: this session's totals.
    submitted: the next sample index to hand out; next_commit: the lowest index not yet settled.
    held/held_correct: graded samples waiting for earlier ones (submission order).
    cutoff: once held samples settle the outcome, the index of the deciding correct sample.
    discarded: graded samples past the query's stop in submission order (not counted).
    probe_correct: correct among the probe (the first n_probe graded samples), once complete.
    target_lower_bound: max(1, ceil(k_p * f_i)) from the probe, known before the final target.
    want: how many it may have in flight now (the sizing, as of its last change).
    """

    query_id: str
    index: int = field(repr=False)
    target: int | None = None
    raw: int = 0
    correct: int = 0
    inflight: int = 0
    stop_reason: str | None = None
    started: int = 0
    cancelled: int = 0
    aborted: int = 0
    restored: int = 0
    probe_correct: int | None = None
    target_lower_bound: int | None = None
    submitted: int = 0
    next_commit: int = 0
    held: int = 0
    held_correct: int = 0
    cutoff: int | None = None
    discarded: int = 0
    resolved: dict[int, bool | None] = field(default_factory=dict, repr=False)  # None: lost
    version: int = field(default=0, repr=False)
    want: int = field(default=0, repr=False)  # desired in flight, as of the last refresh

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    @property
    def known_raw(self) -> int:
        """Graded samples, counted or held."""
        return self.raw + self.held

    @property
    def known_correct(self) -> int:
        """Correct samples, counted or held."""
        return self.correct + self.held_correct

    @property
    def pass_rate(self) -> float | None:
        """correct / raw, or None before any graded sample."""
        return self.correct / self.raw if self.raw else None


@dataclass
class Settled:
    """What a report settled for one query (`on_graded`, `on_lost`): samples to write now, in
    this order; graded samples to drop; whether the query stopped (abort all it has in flight);
    the cutoff above which no sample can be kept (abort those)."""

    query_id: str
    write: list[int] = field(default_factory=list)
    discard: list[int] = field(default_factory=list)
    stopped: bool = False
    cutoff: int | None = None


@dataclass
class SchedulerTotals:
    """Run-level counters (this session, plus what restore() replayed)."""

    started: int = 0  # samples handed out by next_requests
    graded: int = 0  # results accepted by on_result
    correct: int = 0  # correct among graded + restored
    restored: int = 0  # verdicts accepted by restore()
    restore_ignored: int = 0  # restored verdicts past a query's stop
    cancelled: int = 0  # reported by on_cancelled for an active query
    aborted: int = 0  # in flight when their query stopped
    ignored: int = 0  # reports for an already stopped query
    discarded: int = 0  # graded, past their query's stop in submission order
    inflight: int = 0
    held: int = 0  # graded, waiting for earlier samples of their query

    @property
    def raw(self) -> int:
        return self.graded + self.restored


class Scheduler:
    """Per-query targets, exact stops, caps and budget, and the sizing of requests (see module)."""

    def __init__(
        self,
        query_ids: Sequence[str],
        spec: StrategySpec,
        *,
        max_raw: int | None,
        budget: int | None = None,
        prior: Mapping[str, float] | None = None,
        max_n_per_request: int = 64,
        policy: SizingPolicy | None = None,
        stop: str = "submission-order",
    ) -> None:
        ids = list(query_ids)
        self._index: dict[str, int] = {}
        dups = []
        for i, q in enumerate(ids):
            if q in self._index:
                dups.append(q)
            self._index[q] = i
        if dups:
            raise ValueError(
                f"{len(dups)} duplicate query ids (e.g. {', '.join(map(repr, dups[:5]))})"
            )
        check_limits(spec, max_raw=max_raw, budget=budget, has_prior=prior is not None)
        if max_n_per_request < 1:
            raise ValueError(f"max_n_per_request must be >= 1, got {max_n_per_request}")
        if stop not in STOP_RULES:
            raise ValueError(f"stop must be one of {', '.join(STOP_RULES)}, got {stop!r}")

        self.spec = spec
        self.strategy = make_strategy(spec, prior)
        self.max_raw = max_raw
        self.budget = budget
        self.max_n_per_request = max_n_per_request
        self.policy = policy or SizingPolicy()
        order = self.policy.order
        if order == "auto":
            order = "rounds" if max_raw is not None else "least-work"
        self._order = order
        self.stop = stop
        self._in_order = stop == "submission-order"
        self.totals = SchedulerTotals()
        self._states = [QueryState(q, i) for i, q in enumerate(ids)]
        self._active: set[int] = set(range(len(ids)))
        self._stop_counts = dict.fromkeys(STOP_REASONS, 0)
        self._heap: list[tuple[int, float, int, int]] = []
        self._sealed = False
        self._pending_restore: dict[int, bytearray] = {}
        self._next_index: dict[int, int] = {}
        self._events: dict[int, Settled] = {}
        self._exhausted = False
        self.strategy.start(self._states)

    # ----------------------------------------------------------------------------------------
    # Public API

    def restore(
        self, query_id: str, verdicts: Sequence[bool], next_index: int | None = None
    ) -> None:
        """Replay a query's graded samples (pool order) before any other call; may be repeated.

        Replay follows the live rules (probes first, then each query up to its stop), so a resumed
        run stops where an uninterrupted one would; verdicts past a stop are ignored and counted in
        `totals.restore_ignored`. New samples get indices from `next_index` (the pool's largest
        `sample_idx` + 1; default: the number of verdicts restored).
        """
        if self._sealed:
            raise RuntimeError("restore() must come before any other call")
        i = self._idx(query_id)
        pending = self._pending_restore.setdefault(i, bytearray())
        pending.extend(1 if v else 0 for v in verdicts)
        self._next_index[i] = max(self._next_index.get(i, 0), next_index or 0, len(pending))

    def next_requests(self, free_slots: int) -> list[tuple[str, int]]:
        """`next_blocks` without the indices: (query_id, n) pairs."""
        return [(qid, n) for qid, _, n in self.next_blocks(free_slots)]

    def next_blocks(self, free_slots: int) -> list[tuple[str, int, int]]:
        """Up to `free_slots` samples to start, as (query_id, first index, n), marked in flight.

        A query may appear more than once (each n <= max_n_per_request). Stopped queries never
        appear; the budget is respected.
        """
        self._seal()
        free = free_slots
        if self.budget is not None:
            t = self.totals
            free = min(free, self.budget - t.raw - t.inflight - t.held)
        out: list[tuple[str, int, int]] = []
        heap = self._heap
        states = self._states
        while free > 0 and heap:
            _, _, i, version = heap[0]
            st = states[i]
            if version != st.version or st.stop_reason is not None:
                heapq.heappop(heap)
                continue
            extra = st.want - st.inflight
            if extra <= 0:
                heapq.heappop(heap)
                continue
            n = min(extra, free, self.max_n_per_request)
            st.inflight += n
            st.started += n
            self.totals.started += n
            self.totals.inflight += n
            free -= n
            out.append((st.query_id, st.submitted, n))
            st.submitted += n
            if n == extra:
                heapq.heappop(heap)
            # else: the entry stays on top (priority does not depend on in-flight counts)
        return out

    def on_result(self, query_id: str, correct: bool) -> bool:
        """A graded sample of `query_id` arrived; True if the query stopped because of it.

        When True, the caller aborts the query's other samples (already counted as aborted) and
        drops their results. A report for an already stopped query is ignored (returns False).
        """
        self._seal()
        self._events = {}
        st = self._states[self._idx(query_id)]
        if st.stop_reason is not None:
            self.totals.ignored += 1
            return False
        if st.inflight <= 0:
            raise ValueError(f"on_result({query_id!r}): the query has no sample in flight")
        st.inflight -= 1
        self.totals.inflight -= 1
        self._count(st, bool(correct))
        if st.stop_reason is not None:
            return True
        self._refresh(st)
        return False

    def on_cancelled(self, query_id: str, n: int) -> None:
        """`n` in-flight samples of the query will not come back (aborted, failed); frees room."""
        self._seal()
        self._events = {}
        st = self._states[self._idx(query_id)]
        if n < 0:
            raise ValueError(f"on_cancelled({query_id!r}, {n}): n must be >= 0")
        if st.stop_reason is not None:
            self.totals.ignored += n
            return
        if n > st.inflight:
            raise ValueError(
                f"on_cancelled({query_id!r}, {n}): only {st.inflight} samples in flight"
            )
        st.inflight -= n
        st.cancelled += n
        self.totals.inflight -= n
        self.totals.cancelled += n
        self._refresh(st)

    def on_graded(self, query_id: str, idx: int, correct: bool) -> list[Settled]:
        """Sample `idx` of `query_id` was graded; what that settled, for this query and any other
        (a probe that makes every target final can stop other queries).

        first-finished: counted now. submission-order: held until every earlier sample of the
        query is settled, then counted in index order. A sample of a stopped query, or above the
        query's cutoff, is discarded.
        """
        self._seal()
        self._events = {}
        st = self._states[self._idx(query_id)]
        if st.stop_reason is not None:
            self.totals.ignored += 1
            self._event(st).discard.append(idx)
            return self._take_events()
        self._take_flight(st, idx)
        if not self._in_order:
            self._event(st).write.append(idx)
            self._count(st, bool(correct))
            if st.stop_reason is None:
                self._refresh(st)
        elif st.cutoff is not None and idx > st.cutoff:
            self._discard(st, idx)
        else:
            st.resolved[idx] = bool(correct)
            st.held += 1
            st.held_correct += bool(correct)
            self.totals.held += 1
            self._advance(st)
        return self._take_events()

    def on_lost(self, query_id: str, indices: Sequence[int]) -> list[Settled]:
        """In-flight samples of `query_id` that will not come back (aborted, failed); frees
        their room, and (submission order) lets later held samples be counted."""
        self._seal()
        self._events = {}
        st = self._states[self._idx(query_id)]
        if st.stop_reason is not None:
            self.totals.ignored += len(indices)
            return []
        for idx in indices:
            self._take_flight(st, idx)
            st.cancelled += 1
            self.totals.cancelled += 1
            if self._in_order and (st.cutoff is None or idx <= st.cutoff):
                st.resolved[idx] = None
        if self._in_order:
            self._advance(st)
        else:
            self._refresh(st)
        return self._take_events()

    def state(self, query_id: str) -> QueryState:
        self._seal()
        return self._states[self._idx(query_id)]

    def states(self) -> Iterator[QueryState]:
        self._seal()
        return iter(self._states)

    @property
    def done(self) -> bool:
        """Every query has stopped."""
        self._seal()
        return not self._active

    @property
    def targets_final(self) -> bool:
        """False while Prop2Diff probes are still running (targets not known yet)."""
        return self.strategy.targets_final

    @property
    def stop_counts(self) -> dict[str, int]:
        """How many queries stopped for each reason."""
        return dict(self._stop_counts)

    def expected_remaining_samples(self) -> float:
        """Expected raw samples still to grade (for an ETA), from each query's own pass rate."""
        self._seal()
        total = math.fsum(self._expected_work(self._states[i]) for i in self._active)
        if self.budget is not None:
            total = min(total, float(self.budget - self.totals.raw))
        return total

    # ----------------------------------------------------------------------------------------
    # Internals

    def _idx(self, query_id: str) -> int:
        try:
            return self._index[query_id]
        except KeyError:
            raise KeyError(f"unknown query id {query_id!r}") from None

    def _take_flight(self, st: QueryState, idx: int) -> None:
        """One in-flight sample of the query reported back (ValueError if it cannot be)."""
        if not st.next_commit <= idx < st.submitted or idx in st.resolved:
            raise ValueError(f"{st.query_id!r}: sample {idx} is not in flight")
        if st.inflight <= 0:
            raise ValueError(f"{st.query_id!r}: no sample in flight")
        st.inflight -= 1
        self.totals.inflight -= 1

    def _advance(self, st: QueryState) -> None:
        """Count the held samples that no earlier sample waits for, in index order."""
        while st.stop_reason is None and st.next_commit in st.resolved:
            idx = st.next_commit
            verdict = st.resolved.pop(idx)
            st.next_commit += 1
            if verdict is None:
                continue
            st.held -= 1
            st.held_correct -= verdict
            self.totals.held -= 1
            self._event(st).write.append(idx)
            self._count(st, verdict)
        if st.stop_reason is None:
            self._refresh(st)

    def _update_cutoff(self, st: QueryState) -> None:
        """Once the held samples hold the rest of the target, no later sample can be kept:
        set the cutoff there and discard what is held above it."""
        if not self.spec.counts_correct or st.target is None:
            return
        left = st.target - st.correct
        if left <= 0 or st.held_correct < left:
            return
        cut = sorted(i for i, v in st.resolved.items() if v)[left - 1]
        if st.cutoff is not None and cut >= st.cutoff:
            return
        st.cutoff = cut
        self._event(st).cutoff = cut
        for idx in [i for i in st.resolved if i > cut]:
            if st.resolved[idx] is None:
                del st.resolved[idx]
            else:
                self._discard(st, idx)

    def _discard(self, st: QueryState, idx: int) -> None:
        """A graded sample that will never count: drop it (held or just graded)."""
        verdict = st.resolved.pop(idx, None)
        if verdict is not None:
            st.held -= 1
            st.held_correct -= verdict
            self.totals.held -= 1
        st.discarded += 1
        self.totals.discarded += 1
        self._event(st).discard.append(idx)

    def _event(self, st: QueryState) -> Settled:
        ev = self._events.get(st.index)
        if ev is None:
            ev = self._events[st.index] = Settled(st.query_id)
        return ev

    def _take_events(self) -> list[Settled]:
        events, self._events = list(self._events.values()), {}
        return events

    def _seal(self) -> None:
        """End of the restore phase: replay restored verdicts, then build the request heap."""
        if self._sealed:
            return
        self._sealed = True
        pending, self._pending_restore = self._pending_restore, {}
        for i, nxt in self._next_index.items():
            self._states[i].submitted = self._states[i].next_commit = nxt
        n_probe = self.strategy.probe_size
        if n_probe is not None:  # all probes first, so that targets are final before the rest
            for i, verdicts in pending.items():
                self._replay(self._states[i], verdicts[:n_probe])
            for i, verdicts in pending.items():
                self._replay(self._states[i], verdicts[n_probe:])
        else:
            for i, verdicts in pending.items():
                self._replay(self._states[i], verdicts)
        self._heap = []
        for i in self._active:
            st = self._states[i]
            st.version += 1
            st.want = self._desired(st)
            if st.want > st.inflight:
                self._heap.append(self._entry(st))
        heapq.heapify(self._heap)

    def _replay(self, st: QueryState, verdicts: bytearray) -> None:
        for v in verdicts:
            if st.stop_reason is not None:
                self.totals.restore_ignored += 1
                continue
            st.restored += 1
            self.totals.restored += 1
            self._accept(st, bool(v))

    def _count(self, st: QueryState, correct: bool) -> None:
        """A graded sample of this session counts toward its query."""
        self.totals.graded += 1
        self._accept(st, correct)

    def _accept(self, st: QueryState, correct: bool) -> None:
        """Count one graded sample and apply the stop rules."""
        st.raw += 1
        if correct:
            st.correct += 1
            self.totals.correct += 1
        if self.strategy.on_graded(st):
            self._finalize()
        if st.stop_reason is None:
            reason = self._stop_reason(st)
            if reason is not None:
                self._stop(st, reason)
        if self.budget is not None and self.totals.raw >= self.budget:
            self._stop_all(STOP_BUDGET)

    def _stop_reason(self, st: QueryState) -> str | None:
        if self.strategy.reached(st):
            return self.strategy.stop_reason
        if self.max_raw is not None and st.raw >= self.max_raw:
            return STOP_MAX_RAW
        return None

    def _finalize(self) -> None:
        """Every target is final: stop or re-queue every active query."""
        if self._exhausted:
            return
        self.strategy.finalize(self._states)
        for i in list(self._active):
            st = self._states[i]
            reason = self._stop_reason(st)
            if reason is not None:
                self._stop(st, reason)
            else:
                self._refresh(st)

    def _stop(self, st: QueryState, reason: str) -> None:
        st.stop_reason = reason
        st.version += 1
        if st.inflight:
            st.aborted += st.inflight
            self.totals.aborted += st.inflight
            self.totals.inflight -= st.inflight
            st.inflight = 0
        for idx in sorted(i for i, v in st.resolved.items() if v is not None):
            self._discard(st, idx)
        st.resolved.clear()
        self._event(st).stopped = True
        self._active.discard(st.index)
        self._stop_counts[reason] += 1
        if self.strategy.on_stopped(st) and self._active:
            self._finalize()

    def _stop_all(self, reason: str) -> None:
        self._exhausted = True
        for i in list(self._active):
            self._stop(self._states[i], reason)

    def _refresh(self, st: QueryState) -> None:
        """The query's state changed: invalidate its heap entries, re-queue it if it wants more."""
        st.version += 1
        if not self._sealed or st.stop_reason is not None:
            return
        if self._in_order:
            self._update_cutoff(st)
        st.want = self._desired(st)
        if st.want > st.inflight:
            heapq.heappush(self._heap, self._entry(st))

    def _room(self, st: QueryState) -> int:
        return _UNBOUNDED if self.max_raw is None else self.max_raw - st.known_raw

    def _desired(self, st: QueryState) -> int:
        """How many samples of the query should be in flight now."""
        if st.stop_reason is not None or st.cutoff is not None:
            return 0  # stopped, or decided and waiting for earlier samples
        return min(self.strategy.wanted(st, self._sized), self._room(st))

    def _sized(self, st: QueryState, need: int) -> int:
        pol = self.policy
        p_up = wilson_upper(st.correct, st.raw, pol.z)
        return cached_allowed_in_flight(need, p_up, pol.waste_frac, pol.p_step)

    def _expected_work(self, st: QueryState) -> float:
        """Expected raw samples until the query stops, within its cap."""
        room = math.inf if self.max_raw is None else self.max_raw - st.raw
        return min(self.strategy.expected_work(st), room)

    def _entry(self, st: QueryState) -> tuple[int, float, int, int]:
        cls = 0 if self.strategy.probing(st) else 1  # probes first: they make the targets final
        if self._order == "fifo":
            key = 0.0
        elif self._order == "least-work":
            key = self._expected_work(st)
        elif self._order == "work":
            key = -self._expected_work(st)
        else:  # "rounds": expected remaining work / what it may have in flight
            key = -self._expected_work(st) / max(1, st.want)
        return (cls, key, st.index, st.version)
