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
with remaining need r gets at most m samples in flight, the largest m whose expected waste (the
samples still in flight when the r-th success arrives, negative binomial) stays below
`waste_frac * r / p_up`, where p_up is a Wilson upper bound of the query's pass rate from its own
graded samples (1 for a fresh query, so it starts with exactly r samples: m <= r never wastes).
Free slots go first to the queries with the most expected rounds left (remaining work / allowed
in flight), so that no query is left at the end with a long chain of small rounds.

Prop2Diff with a probe: the first `n_probe` graded samples of a query are its probe (all kept,
even past the final target: the target is not known yet). A query whose probe is in samples, with
no waste, toward `max(1, ceil(k_p * f_i))` (a lower bound of its final target) while other probes
finish; when the last probe is in, every target becomes final. No barrier.

Accounting: `raw` counts graded samples accepted; `max_raw` bounds raw + in flight of a query,
`budget` bounds raw + in flight summed over queries (restored samples included; aborted and
cancelled samples give their room back).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from dartmath.synth.strategies import (
    STOP_BUDGET,
    STOP_MAX_RAW,
    STOP_N_SAMPLES_DONE,
    STOP_REASONS,
    STOP_TARGET_MET,
    StrategySpec,
    prop2diff_lower_bound,
    prop2diff_target,
    targets_from_prior,
)

_UNBOUNDED = 1 << 62

# --------------------------------------------------------------------------------------------
# Probability helpers


def _log_pmf(j: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(j + 1)
        - math.lgamma(n - j + 1)
        + j * math.log(p)
        + (n - j) * math.log1p(-p)
    )


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k).

    Sums the smaller tail from its largest term outward (term ratios, one lgamma), so it neither
    underflows for large n nor loses the small tail.
    """
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    q = 1.0 - p
    if k < n * p:  # lower tail: terms grow up to j = k; sum from k downward
        odds, total, term = q / p, 1.0, 1.0
        for j in range(k, 0, -1):
            term *= j / (n - j + 1) * odds
            total += term
            if term < 1e-17 * total:
                break
        return min(1.0, math.exp(_log_pmf(k, n, p)) * total)
    # upper tail: terms shrink from j = k + 1 upward
    odds, total, term, j = p / q, 1.0, 1.0, k + 1
    while j < n:
        term *= (n - j) / (j + 1) * odds
        total += term
        j += 1
        if term < 1e-17 * total:
            break
    return max(0.0, 1.0 - math.exp(_log_pmf(k + 1, n, p)) * total)


def expected_waste(m: int, r: int, p: float) -> float:
    """E[(m - T)^+], T = trials until the r-th success at pass rate p.

    The samples still running when the r-th success arrives, if m are started now and no more
    (completion order is random, so the first results behave like the first trials). Uses
    E[T 1{T <= m}] = (r/p) P(T_{r+1} <= m+1) and P(T_r <= m) = P(Bin(m, p) >= r).
    """
    if m <= r or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return float(m - r)
    reach = 1.0 - binom_cdf(r - 1, m, p)
    reach_next = 1.0 - binom_cdf(r, m + 1, p)
    return max(0.0, m * reach - (r / p) * reach_next)


def max_inflight(r: int, p: float, waste_frac: float) -> int:
    """Largest m >= r with expected_waste(m, r, p) <= waste_frac * r / p (m <= r wastes nothing)."""
    if r < 1:
        raise ValueError(f"remaining need must be >= 1, got {r}")
    if p >= 1.0:
        return r
    p = max(p, 1e-9)
    bound = waste_frac * r / p
    lo = r  # expected_waste(r) == 0
    hi = min(int(r / p * (1.0 + waste_frac)) + 2, _UNBOUNDED)  # waste(hi) >= hi - r/p > bound
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if expected_waste(mid, r, p) <= bound:
            lo = mid
        else:
            hi = mid
    return lo


_R_EXACT = 64  # needs above this are rounded down to a 5% grid for the cache


@lru_cache(maxsize=1 << 17)
def _grid_max_inflight(r: int, k: int, waste_frac: float, p_step: float) -> int:
    return max_inflight(r, math.exp(-k * p_step), waste_frac)


def cached_max_inflight(r: int, p_up: float, waste_frac: float, p_step: float) -> int:
    """max_inflight on a grid, rounded the cautious way: p_up up, r down (never below r).

    A smaller need r' <= r wastes no less with m in flight and allows less (waste_frac * r' / p),
    so m(r') is safe for r; likewise a larger p.
    """
    if p_up >= 1.0:
        return r
    k = int(-math.log(p_up) / p_step)  # grid point exp(-k * p_step) >= p_up
    if k == 0:
        return r
    r_grid = r
    if r > _R_EXACT:
        r_grid = int(_R_EXACT * 1.05 ** int(math.log(r / _R_EXACT) / math.log(1.05)))
    return max(r, _grid_max_inflight(min(r_grid, r), k, waste_frac, p_step))


def wilson_upper(correct: int, n: int, z: float) -> float:
    """Upper end of the Wilson score interval for a pass rate; 1.0 with no data."""
    if n <= 0:
        return 1.0
    phat = correct / n
    z2n = z * z / n
    centre = phat + z2n / 2
    radius = z * math.sqrt(phat * (1 - phat) / n + z2n / (4 * n))
    return min(1.0, (centre + radius) / (1 + z2n))


# --------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class SizingPolicy:
    """How many samples of a query may be in flight, and which queries are served first.

    waste_frac: allowed expected waste as a fraction of the remaining expected work r / p_up
        (0: never more in flight than the remaining need r, so never any waste).
    z: z-score of the Wilson upper bound p_up of the pass rate (larger: more cautious).
    order: which queries get free slots first (probes always come first):
        "rounds": most expected remaining rounds (expected remaining work / allowed in flight),
            i.e. the longest remaining chain first, so that no query is left at the end with
            many sequential rounds to go (default);
        "work": largest expected remaining work first; "fifo": query order.
    p_step: p_up is rounded up to a geometric grid of this log-step (to cache the sizing).

    Defaults chosen with bench/bench_sample_efficiency.py (see bench/README.md).
    """

    waste_frac: float = 0.02
    z: float = 3.0
    order: str = "rounds"
    p_step: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.waste_frac < 1:
            raise ValueError(f"waste_frac must be in [0, 1), got {self.waste_frac!r}")
        if self.z < 0:
            raise ValueError(f"z must be >= 0, got {self.z!r}")
        if self.order not in ("rounds", "work", "fifo"):
            raise ValueError(f"order must be 'rounds', 'work' or 'fifo', got {self.order!r}")
        if not 0 < self.p_step <= 0.5:
            raise ValueError(f"p_step must be in (0, 0.5], got {self.p_step!r}")


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
        for name, value in (("max_raw", max_raw), ("budget", budget)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be an integer or None, got {value!r}")
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_n_per_request < 1:
            raise ValueError(f"max_n_per_request must be >= 1, got {max_n_per_request}")
        if spec.counts_correct and max_raw is None and budget is None:
            raise ValueError(
                f"{spec.name} needs max_raw or budget: a query that is never solved would "
                "otherwise be sampled forever"
            )
        self._probe = False
        if spec.name == "prop2diff":
            if prior is not None and spec.n_probe is not None:
                raise ValueError("prop2diff: give either a prior or n_probe, not both")
            if prior is None and spec.n_probe is None:
                raise ValueError("prop2diff needs a difficulty: a prior of pass rates or n_probe")
            self._probe = prior is None
            if self._probe and max_raw is not None and max_raw < spec.n_probe:
                raise ValueError(f"max_raw ({max_raw}) must be >= n_probe ({spec.n_probe})")
        elif prior is not None:
            raise ValueError(f"a prior of pass rates applies to prop2diff only, not {spec.name}")

        self.spec = spec
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

        if spec.name == "uniform":
            for st in self._states:
                st.target = spec.k_u
        elif spec.name == "vrt":
            for st in self._states:
                st.target = spec.n_vrt
        elif not self._probe:
            assert prior is not None and spec.k_p is not None
            targets = targets_from_prior(ids, prior, spec.k_p)
            for st in self._states:
                st.target = targets[st.query_id]
        self._probe_pending = len(ids) if self._probe else 0
        self._max_fail = 0  # largest probe fail count seen
        self._targets_final = not self._probe

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
    def n_active(self) -> int:
        self._seal()
        return len(self._active)

    @property
    def targets_final(self) -> bool:
        """False while Prop2Diff probes are still running (targets not known yet)."""
        return self._targets_final

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
        if self._probe:  # all probes first, so that targets are final before the rest replays
            n_probe = self.spec.n_probe
            assert n_probe is not None
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
        if self._probe and st.probe_correct is None and st.raw >= self.spec.n_probe:
            self._finish_probe(st)
        if st.stop_reason is None:
            reason = self._stop_reason(st)
            if reason is not None:
                self._stop(st, reason)
        if self.budget is not None and self.totals.raw >= self.budget:
            self._stop_all(STOP_BUDGET)

    def _stop_reason(self, st: QueryState) -> str | None:
        if self.spec.name == "vrt":
            if st.raw >= st.target:
                return STOP_N_SAMPLES_DONE
        elif st.target is not None and st.correct >= st.target:
            return STOP_TARGET_MET
        if self.max_raw is not None and st.raw >= self.max_raw:
            return STOP_MAX_RAW
        return None

    def _finish_probe(self, st: QueryState) -> None:
        n_probe, k_p = self.spec.n_probe, self.spec.k_p
        st.probe_correct = st.correct
        fail = n_probe - st.correct
        st.target_lower_bound = prop2diff_lower_bound(Fraction(fail, n_probe), k_p)
        self._max_fail = max(self._max_fail, fail)
        self._probe_pending -= 1
        if self._probe_pending == 0:
            self._finalize()

    def _finalize(self) -> None:
        """Every probe is in: final Prop2Diff targets; stop or re-queue every active query."""
        if self._exhausted:
            return
        self._targets_final = True
        n_probe, k_p = self.spec.n_probe, self.spec.k_p
        max_fail = Fraction(self._max_fail, n_probe)
        for st in self._states:
            if st.probe_correct is not None:
                fail = Fraction(n_probe - st.probe_correct, n_probe)
                st.target = prop2diff_target(fail, max_fail, k_p)
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
        if self._probe and st.probe_correct is None:
            self._probe_pending -= 1
            if self._probe_pending == 0 and self._active:
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

    def _desired(self, st: QueryState) -> int:
        """How many samples of the query should be in flight now."""
        if st.stop_reason is not None:
            return 0
        room = _UNBOUNDED if self.max_raw is None else self.max_raw - st.raw
        if self.spec.name == "vrt":
            return min(st.target - st.raw, room)
        if self._probe and st.probe_correct is None:
            return min(self.spec.n_probe - st.raw, room)
        if st.target is None:  # probe done, others still probing: no-waste toward the bound
            return min(max(0, st.target_lower_bound - st.correct), room)
        need = st.target - st.correct
        pol = self.policy
        p_up = wilson_upper(st.correct, st.raw, pol.z)
        return min(cached_max_inflight(need, p_up, pol.waste_frac, pol.p_step), room)

    def _expected_work(self, st: QueryState) -> float:
        """Expected raw samples until the query stops, from its posterior-mean pass rate."""
        room = math.inf if self.max_raw is None else self.max_raw - st.raw
        if self.spec.name == "vrt":
            return float(min(st.target - st.raw, room))
        p_mean = (st.correct + 1) / (st.raw + 2)
        target = st.target
        if target is None:
            target = st.target_lower_bound
        if target is None:
            target = max(1.0, self.spec.k_p * (1 - p_mean))
        need = max(0.0, target - st.correct)
        return min(need / p_mean, room)

    def _entry(self, st: QueryState) -> tuple[int, float, int, int]:
        probing = self._probe and st.probe_correct is None
        cls = 0 if probing else 1  # probes first: they make the targets final
        if self.policy.order == "fifo":
            key = 0.0
        elif self.policy.order == "work":
            key = -self._expected_work(st)
        else:  # "rounds": expected remaining work / what it may have in flight
            key = -self._expected_work(st) / max(1, st.want)
        return (cls, key, st.index, st.version)
