"""Which queries to sample next and how many: per-query state, exact stops, caps and budget.

Pure logic, driven by the async pipeline and by `bench/bench_sample_efficiency.py` alike:

    sched = Scheduler(query_ids, spec, max_raw=2048)
    sched.restore(qid, verdicts)                  # resume: before anything else
    for qid, n in sched.next_requests(free):      # marks n samples of qid in flight
        ...start n samples...
    if sched.on_result(qid, correct):             # a graded sample; True: qid just stopped,
        ...abort qid's other samples...           # its in-flight samples count as aborted
    sched.on_cancelled(qid, n)                    # n in-flight samples failed / were aborted

Exact stop: a query stops the moment its graded correct count reaches its target; whatever it
still had in flight is then counted as aborted and later reports for it are ignored. So the only
over-sampling is what was in flight at that moment, and `next_requests` keeps that small: a query
with remaining need r gets at most the samples in flight that `sizing.py` allows for its pass
rate. Free slots go first to the queries with the most expected rounds left (remaining work /
allowed in flight), so that no query is left at the end with a long chain of small rounds.
What a target is, and when a query's difficulty is still being probed, is the strategy's
(`strategies.py`); caps, budget, order and accounting are the scheduler's.

Accounting: `raw` counts graded samples accepted; `max_raw` bounds raw + in flight of a query,
`budget` bounds raw + in flight summed over queries (restored samples included; aborted and
cancelled samples give their room back).
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

# --------------------------------------------------------------------------------------------
# State


@dataclass(eq=False)
class QueryState:
    """One query's counters (a live view: read, do not modify).

    target: correct responses needed (vrt: raw samples); None while Prop2Diff probes are running.
    raw: graded samples accepted (restored ones included); correct: how many were correct.
    inflight: handed out and not yet reported; started/cancelled/aborted: this session's totals.
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
    version: int = field(default=0, repr=False)
    want: int = field(default=0, repr=False)  # desired in flight, as of the last refresh

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    @property
    def pass_rate(self) -> float | None:
        """correct / raw, or None before any graded sample."""
        return self.correct / self.raw if self.raw else None


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
    ignored: int = 0  # on_result / on_cancelled reports for an already stopped query
    inflight: int = 0

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

        self.spec = spec
        self.strategy = make_strategy(spec, prior)
        self.max_raw = max_raw
        self.budget = budget
        self.max_n_per_request = max_n_per_request
        self.policy = policy or SizingPolicy()
        self.totals = SchedulerTotals()
        self._states = [QueryState(q, i) for i, q in enumerate(ids)]
        self._active: set[int] = set(range(len(ids)))
        self._stop_counts = dict.fromkeys(STOP_REASONS, 0)
        self._heap: list[tuple[int, float, int, int]] = []
        self._sealed = False
        self._pending_restore: dict[int, bytearray] = {}
        self._exhausted = False
        self.strategy.start(self._states)

    # ----------------------------------------------------------------------------------------
    # Public API

    def restore(self, query_id: str, verdicts: Sequence[bool]) -> None:
        """Replay a query's graded samples (pool order) before any other call; may be repeated.

        Replay follows the live rules (probes first, then each query up to its stop), so a resumed
        run stops where an uninterrupted one would; verdicts past a stop are ignored and counted in
        `totals.restore_ignored`.
        """
        if self._sealed:
            raise RuntimeError(
                "restore() must come before next_requests/on_result/on_cancelled/state/done"
            )
        i = self._idx(query_id)
        self._pending_restore.setdefault(i, bytearray()).extend(1 if v else 0 for v in verdicts)

    def next_requests(self, free_slots: int) -> list[tuple[str, int]]:
        """Up to `free_slots` samples to start, as (query_id, n) pairs, marked in flight.

        A query may appear more than once (each n <= max_n_per_request). Stopped queries never
        appear; the budget is respected.
        """
        self._seal()
        free = free_slots
        if self.budget is not None:
            free = min(free, self.budget - self.totals.raw - self.totals.inflight)
        out: list[tuple[str, int]] = []
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
            if n == extra:
                heapq.heappop(heap)
            # else: the entry stays on top (priority does not depend on in-flight counts)
            st.inflight += n
            st.started += n
            self.totals.started += n
            self.totals.inflight += n
            free -= n
            out.append((st.query_id, n))
        return out

    def on_result(self, query_id: str, correct: bool) -> bool:
        """A graded sample of `query_id` arrived; True if the query stopped because of it.

        When True, the caller aborts the query's other samples (already counted as aborted) and
        drops their results. A report for an already stopped query is ignored (returns False).
        """
        self._seal()
        st = self._states[self._idx(query_id)]
        if st.stop_reason is not None:
            self.totals.ignored += 1
            return False
        if st.inflight <= 0:
            raise ValueError(f"on_result({query_id!r}): the query has no sample in flight")
        st.inflight -= 1
        self.totals.inflight -= 1
        self.totals.graded += 1
        self._accept(st, bool(correct))
        if st.stop_reason is not None:
            return True
        self._refresh(st)
        return False

    def on_cancelled(self, query_id: str, n: int) -> None:
        """`n` in-flight samples of the query will not come back (aborted, failed); frees room."""
        self._seal()
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

    def _seal(self) -> None:
        """End of the restore phase: replay restored verdicts, then build the request heap."""
        if self._sealed:
            return
        self._sealed = True
        pending, self._pending_restore = self._pending_restore, {}
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
        st.want = self._desired(st)
        if st.want > st.inflight:
            heapq.heappush(self._heap, self._entry(st))

    def _room(self, st: QueryState) -> int:
        return _UNBOUNDED if self.max_raw is None else self.max_raw - st.raw

    def _desired(self, st: QueryState) -> int:
        """How many samples of the query should be in flight now."""
        if st.stop_reason is not None:
            return 0
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
        if self.policy.order == "fifo":
            key = 0.0
        elif self.policy.order == "work":
            key = -self._expected_work(st)
        else:  # "rounds": expected remaining work / what it may have in flight
            key = -self._expected_work(st) / max(1, st.want)
        return (cls, key, st.index, st.version)
