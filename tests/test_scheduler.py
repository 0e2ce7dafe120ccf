"""Tests of the sample scheduler: stop rules, caps, budget, probe, resume, sizing, invariants."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from fractions import Fraction

import pytest

from dartmath.synth.scheduler import QueryState, Scheduler
from dartmath.synth.sizing import (
    SizingPolicy,
    allowed_in_flight,
    binom_cdf,
    cached_allowed_in_flight,
    expected_waste,
    wilson_upper,
)
from dartmath.synth.strategies import MissingPriorError, StrategySpec

UNIFORM = StrategySpec.uniform

# --------------------------------------------------------------------------------------------
# A fake pipeline: samples complete in random order; verdicts come from a fixed function of
# (query, index of the graded sample), so any schedule sees the same verdict sequences.

Verdict = Callable[[str, int], bool]


def hashed_verdicts(rates: dict[str, float], seed: int = 0) -> Verdict:
    def verdict(qid: str, k: int) -> bool:
        return random.Random(f"{seed}/{qid}/{k}").random() < rates[qid]

    return verdict


class FakeLoop:
    """Drives a Scheduler like the async pipeline does, and checks invariants at every step."""

    def __init__(
        self,
        sched: Scheduler,
        verdict: Verdict,
        *,
        capacity: int = 16,
        fail_rate: float = 0.0,
        seed: int = 0,
        check: bool = True,
    ) -> None:
        self.sched, self.verdict, self.capacity = sched, verdict, capacity
        self.fail_rate, self.rng, self.check = fail_rate, random.Random(seed), check
        self.pending: list[str] = []  # one entry per sample in flight
        self.accepted: dict[str, list[bool]] = {}  # the pool: graded samples kept, in order
        self.steps = 0

    def fill(self) -> None:
        free = self.capacity - len(self.pending)
        reqs = self.sched.next_requests(free)
        if self.check:
            assert sum(n for _, n in reqs) <= max(free, 0)
            for qid, n in reqs:
                assert 1 <= n <= self.sched.max_n_per_request
                assert self.sched.state(qid).stop_reason is None
        for qid, n in reqs:
            self.pending.extend([qid] * n)

    def step(self) -> None:
        self.fill()
        if not self.pending:
            assert self.sched.done, "stalled: not done, nothing in flight, nothing requested"
            return
        qid = self.pending.pop(self.rng.randrange(len(self.pending)))
        self.steps += 1
        if self.rng.random() < self.fail_rate:
            self.sched.on_cancelled(qid, 1)
        else:
            st = self.sched.state(qid)
            ok = self.verdict(qid, st.raw)
            self.accepted.setdefault(qid, []).append(ok)
            before = {s.query_id: s.aborted for s in self.sched.states()} if self.check else {}
            stopped = self.sched.on_result(qid, ok)
            assert stopped == (st.stop_reason is not None)
            if self.check:  # only the reported query can stop with samples in flight
                for s in self.sched.states():
                    if s.query_id != qid:
                        assert s.aborted == before[s.query_id]
            if stopped:  # abort its other samples, then report them as the pipeline does
                left = self.pending.count(qid)
                self.pending = [q for q in self.pending if q != qid]
                self.sched.on_cancelled(qid, left)  # ignored: already counted as aborted
        if self.check:
            check_invariants(self.sched)

    def run(self, max_steps: int = 200_000) -> None:
        while not self.sched.done:
            self.step()
            assert self.steps < max_steps


def check_invariants(sched: Scheduler) -> None:
    t = sched.totals
    assert t.started == t.graded + t.cancelled + t.aborted + t.inflight
    assert t.inflight == sum(s.inflight for s in sched.states())
    assert t.raw == sum(s.raw for s in sched.states())
    if sched.budget is not None:
        assert t.raw + t.inflight <= sched.budget
    for s in sched.states():
        assert s.inflight >= 0
        if sched.max_raw is not None:
            assert s.raw + s.inflight <= sched.max_raw
        if s.stop_reason is not None:
            assert s.inflight == 0
        if sched.spec.counts_correct and s.target is not None:
            # exact stop; only a Prop2Diff probe may hold more than the target
            assert s.correct <= max(s.target, s.probe_correct or 0)
        if s.target is None and s.target_lower_bound is not None:
            assert s.correct <= max(s.target_lower_bound, s.probe_correct or 0)


def outcome(sched: Scheduler) -> dict[str, tuple]:
    return {s.query_id: (s.raw, s.correct, s.target, s.stop_reason) for s in sched.states()}


def feed(sched: Scheduler, qid: str, verdicts: list[bool]) -> list[bool]:
    """Report verdicts for samples of qid already in flight; the on_result return values."""
    return [sched.on_result(qid, v) for v in verdicts]


# --------------------------------------------------------------------------------------------
# Probability helpers


def _brute_waste(m: int, r: int, p: float) -> float:
    return sum(
        math.comb(t - 1, r - 1) * p**r * (1 - p) ** (t - r) * (m - t) for t in range(r, m + 1)
    )


@pytest.mark.parametrize(
    ("m", "r", "p"), [(2, 1, 0.5), (10, 1, 0.1), (30, 3, 0.2), (60, 5, 0.5), (200, 10, 0.05)]
)
def test_expected_waste_matches_brute_force(m: int, r: int, p: float) -> None:
    assert expected_waste(m, r, p) == pytest.approx(_brute_waste(m, r, p), rel=1e-9, abs=1e-12)


def test_no_waste_at_most_r_in_flight() -> None:
    for r in (1, 3, 10):
        for p in (0.01, 0.5, 0.99, 1.0):
            assert expected_waste(r, r, p) == 0
    assert expected_waste(5, 2, 1.0) == 3  # p = 1: every sample beyond r is wasted


def test_binom_cdf_matches_exact_sums() -> None:
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(1, 120)
        k = rng.randint(0, n - 1)
        p = rng.choice([rng.random(), rng.random() ** 5, 1 - rng.random() ** 5])
        fp = Fraction(p)
        exact = sum(math.comb(n, j) * fp**j * (1 - fp) ** (n - j) for j in range(k + 1))
        assert binom_cdf(k, n, p) == pytest.approx(float(exact), abs=1e-12)
    assert binom_cdf(-1, 5, 0.5) == 0 and binom_cdf(5, 5, 0.5) == 1
    assert 0 < binom_cdf(999, 100_000, 0.01) < 1  # no underflow for large n


def test_allowed_in_flight_bounds_the_expected_waste() -> None:
    for r in (1, 2, 7, 40):
        for p in (0.9, 0.3, 0.05, 0.005):
            m = allowed_in_flight(r, p, 0.02)
            assert m >= r
            assert expected_waste(m, r, p) <= 0.02 * r / p
            assert expected_waste(m + 1, r, p) > 0.02 * r / p
    # the cached grid rounds the cautious way (p up, r down) and never goes below r
    for r in (1, 9, 64, 65, 300, 5000):
        for p in (0.7, 0.05, 0.002):
            m = cached_allowed_in_flight(r, p, 0.02, 0.02)
            assert r <= m <= allowed_in_flight(r, p, 0.02)
            assert expected_waste(m, r, p) <= 0.02 * r / p
    assert allowed_in_flight(5, 1.0, 0.5) == 5
    assert allowed_in_flight(5, 0.1, 0.0) == 5  # no waste allowed: exactly r
    # rarer success: more in flight
    assert (
        allowed_in_flight(10, 0.01, 0.02)
        > allowed_in_flight(10, 0.1, 0.02)
        > allowed_in_flight(10, 0.5, 0.02)
    )


def test_wilson_upper() -> None:
    assert wilson_upper(0, 0, 3.0) == 1.0
    assert 0 < wilson_upper(0, 100, 2.0) < 0.05
    assert wilson_upper(30, 100, 2.0) > 0.3
    assert wilson_upper(30, 100, 3.0) > wilson_upper(30, 100, 2.0)
    assert wilson_upper(100, 100, 2.0) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Construction


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="duplicate query ids"):
        Scheduler(["a", "b", "a"], UNIFORM(2), max_raw=10)
    with pytest.raises(ValueError, match="needs max_raw or budget"):
        Scheduler(["a"], UNIFORM(2), max_raw=None)
    with pytest.raises(ValueError, match="max_raw must be >= 1"):
        Scheduler(["a"], UNIFORM(2), max_raw=0)
    with pytest.raises(ValueError, match="budget must be >= 1"):
        Scheduler(["a"], UNIFORM(2), max_raw=5, budget=0)
    with pytest.raises(ValueError, match="max_n_per_request"):
        Scheduler(["a"], UNIFORM(2), max_raw=5, max_n_per_request=0)
    with pytest.raises(ValueError, match="needs a difficulty"):
        Scheduler(["a"], StrategySpec.prop2diff(4), max_raw=9)
    with pytest.raises(ValueError, match=r"max_raw \(3\) must be >= n_probe \(4\)"):
        Scheduler(["a"], StrategySpec.prop2diff(4, n_probe=4), max_raw=3)
    with pytest.raises(ValueError, match="applies to prop2diff only"):
        Scheduler(["a"], UNIFORM(2), max_raw=9, prior={"a": 0.5})
    with pytest.raises(ValueError, match="order must be"):
        SizingPolicy(order="random")
    # vrt needs no cap: it stops by itself
    assert not Scheduler(["a"], StrategySpec.vrt(3), max_raw=None).done


def test_prior_missing_ids_raise_a_clear_error() -> None:
    with pytest.raises(MissingPriorError, match="no pass rate for 2 of 3 queries") as err:
        Scheduler(["a", "b", "c"], StrategySpec.prop2diff(8), max_raw=50, prior={"b": 0.5})
    assert err.value.missing == ["a", "c"]


def test_unknown_query_id() -> None:
    sched = Scheduler(["a"], UNIFORM(2), max_raw=5)
    with pytest.raises(KeyError, match="unknown query id 'zz'"):
        sched.on_result("zz", True)


def test_empty_run_is_done() -> None:
    sched = Scheduler([], UNIFORM(2), max_raw=5)
    assert sched.done and sched.next_requests(8) == []
    assert sched.expected_remaining_samples() == 0


# --------------------------------------------------------------------------------------------
# Stop rules


def test_uniform_fresh_query_starts_with_exactly_its_need_and_stops_at_target() -> None:
    sched = Scheduler(["a"], UNIFORM(5), max_raw=100)
    assert sched.next_requests(100) == [("a", 5)]  # optimistic start: r in flight, no waste
    assert sched.next_requests(100) == []  # nothing more until results arrive
    assert feed(sched, "a", [True] * 4) == [False] * 4
    assert sched.on_result("a", True) is True
    st = sched.state("a")
    assert (st.raw, st.correct, st.stop_reason, st.aborted) == (5, 5, "target_met", 0)
    assert sched.done and sched.stop_counts["target_met"] == 1


def test_exact_stop_aborts_in_flight_and_ignores_late_results() -> None:
    sched = Scheduler(["a"], UNIFORM(2), max_raw=1000)
    n_flight = 0
    for _ in range(30):  # failures: the pass-rate bound drops, so more go in flight
        [(qid, n_flight)] = sched.next_requests(1000)
        if n_flight > 2:
            break
        feed(sched, "a", [False] * n_flight)
    assert n_flight > 2  # more in flight than the remaining need
    assert feed(sched, "a", [True, True]) == [False, True]
    st = sched.state("a")
    assert st.correct == 2 and st.stop_reason == "target_met"
    assert st.aborted == n_flight - 2 and st.inflight == 0
    assert sched.totals.aborted == n_flight - 2
    # late reports are ignored, never counted
    assert sched.on_result("a", True) is False
    sched.on_cancelled("a", 3)
    assert st.correct == 2 and st.raw == sched.totals.raw
    assert sched.totals.ignored == 4
    assert sched.next_requests(10) == []


def test_on_result_without_a_sample_in_flight_is_an_error() -> None:
    sched = Scheduler(["a"], UNIFORM(2), max_raw=10)
    with pytest.raises(ValueError, match="no sample in flight"):
        sched.on_result("a", True)


def test_max_raw_is_never_exceeded_counting_in_flight() -> None:
    sched = Scheduler(["a", "b"], UNIFORM(5), max_raw=7)
    seen = 0
    for _ in range(50):
        reqs = sched.next_requests(100)
        if not reqs:
            break
        for qid, n in reqs:
            st = sched.state(qid)
            assert st.raw + st.inflight <= 7
            seen += n
            feed(sched, qid, [False] * n)
    assert sched.done
    assert seen == 14
    for qid in "ab":
        st = sched.state(qid)
        assert (st.raw, st.stop_reason) == (7, "max_raw")
    # a fresh query whose need is above the cap asks for the cap only
    capped = Scheduler(["a"], UNIFORM(10), max_raw=4)
    assert capped.next_requests(100) == [("a", 4)]


def test_target_met_wins_over_max_raw_on_the_same_sample() -> None:
    sched = Scheduler(["a"], UNIFORM(1), max_raw=1)
    sched.next_requests(5)
    assert sched.on_result("a", True)
    assert sched.state("a").stop_reason == "target_met"


def test_budget_bounds_raw_plus_in_flight_and_stops_everything() -> None:
    sched = Scheduler(["a", "b", "c"], UNIFORM(4), max_raw=100, budget=10)
    reqs = sched.next_requests(100)
    assert sum(n for _, n in reqs) == 10  # 3 x 4 wanted, budget 10
    assert sched.next_requests(100) == []
    for qid, n in reqs:
        feed(sched, qid, [False] * n)
    assert sched.done
    assert sched.stop_counts["budget"] == 3
    assert sched.totals.raw == 10


def test_budget_room_given_back_by_aborted_and_cancelled_samples() -> None:
    sched = Scheduler(["a", "b"], UNIFORM(1), max_raw=100, budget=3)
    for _ in range(3):  # failures on a: it gets more than its need in flight
        for qid, n in sched.next_requests(1):
            feed(sched, qid, [False] * n)
    assert sched.totals.raw == 3 or sched.done
    # fresh budget run with cancellation: cancelled samples free their budget
    sched = Scheduler(["a"], UNIFORM(3), max_raw=100, budget=3)
    assert sched.next_requests(10) == [("a", 3)]
    sched.on_cancelled("a", 2)
    assert sched.next_requests(10) == [("a", 2)]
    with pytest.raises(ValueError, match="only 3 samples in flight"):
        sched.on_cancelled("a", 4)


def test_vrt_counts_raw_samples_whatever_the_verdicts() -> None:
    sched = Scheduler(["a", "b"], StrategySpec.vrt(4), max_raw=None)
    reqs = dict(sched.next_requests(100))
    assert reqs == {"a": 4, "b": 4}
    feed(sched, "a", [False, True, False, False])
    feed(sched, "b", [True] * 4)
    for qid in "ab":
        st = sched.state(qid)
        assert (st.raw, st.target, st.stop_reason) == (4, 4, "n_samples_done")
    capped = Scheduler(["a"], StrategySpec.vrt(10), max_raw=3)
    assert capped.next_requests(100) == [("a", 3)]
    feed(capped, "a", [True] * 3)
    assert capped.state("a").stop_reason == "max_raw"


def test_prop2diff_with_a_prior_uses_its_targets() -> None:
    prior = {"easy": 0.95, "mid": 0.5, "never": 0.0}
    sched = Scheduler(list(prior), StrategySpec.prop2diff(10), max_raw=30, prior=prior)
    assert {s.query_id: s.target for s in sched.states()} == {"easy": 1, "mid": 5, "never": 10}
    assert dict(sched.next_requests(100)) == {"easy": 1, "mid": 5, "never": 10}
    assert feed(sched, "easy", [True]) == [True]
    assert feed(sched, "mid", [True] * 5)[-1] is True
    assert sched.state("mid").correct == 5


def test_next_requests_respects_free_slots_and_max_n() -> None:
    sched = Scheduler([f"q{i}" for i in range(10)], UNIFORM(30), max_raw=200, max_n_per_request=8)
    assert sched.next_requests(0) == []
    reqs = sched.next_requests(50)
    assert sum(n for _, n in reqs) == 50
    assert all(n <= 8 for _, n in reqs)
    # a query may appear more than once in one call (each n <= max_n_per_request)
    assert reqs[0][0] == reqs[1][0]


def test_cancelled_samples_are_requested_again() -> None:
    sched = Scheduler(["a"], UNIFORM(3), max_raw=10)
    assert sched.next_requests(10) == [("a", 3)]
    sched.on_cancelled("a", 2)
    assert sched.state("a").cancelled == 2
    assert sched.next_requests(10) == [("a", 2)]
    assert sched.totals.started == 5 and sched.totals.cancelled == 2


def test_expected_remaining_samples() -> None:
    sched = Scheduler(["a", "b"], UNIFORM(4), max_raw=50)
    fresh = sched.expected_remaining_samples()
    assert 8 <= fresh <= 100
    for _ in range(10):  # a never succeeds: finite, capped by what max_raw leaves
        for qid, n in sched.next_requests(100):
            feed(sched, qid, [qid == "b"] * n)
    left = sched.expected_remaining_samples()
    assert math.isfinite(left)
    assert left <= 50 - sched.state("a").raw
    assert sched.state("b").stop_reason == "target_met"
    for _ in range(50):
        for qid, n in sched.next_requests(100):
            feed(sched, qid, [False] * n)
    assert sched.done
    assert sched.expected_remaining_samples() == 0


# --------------------------------------------------------------------------------------------
# Sizing and order


def test_in_flight_grows_for_a_hard_query_but_bounds_its_waste() -> None:
    sched = Scheduler(["a"], UNIFORM(10), max_raw=100_000)
    sizes = []
    for _ in range(6):
        n = sum(k for _, k in sched.next_requests(100_000))
        sizes.append(n)
        feed(sched, "a", [False] * n)  # no success yet: p looks small
    assert sizes[0] == 10
    assert sizes == sorted(sizes) and sizes[-1] > 10 * sizes[0]  # ramps up geometrically
    st = sched.state("a")
    n = sum(k for _, k in sched.next_requests(100_000))
    p_up = wilson_upper(st.correct, st.raw, sched.policy.z)
    r = st.target - st.correct
    # p_up is rounded up to the cache grid (cautious), so the bound holds at p_up itself
    assert expected_waste(n, r, p_up) <= sched.policy.waste_frac * r / p_up


def test_no_waste_policy_never_exceeds_the_need() -> None:
    sched = Scheduler(["a"], UNIFORM(4), max_raw=1000, policy=SizingPolicy(waste_frac=0.0))
    for _ in range(20):
        for qid, n in sched.next_requests(1000):
            st = sched.state(qid)
            assert st.inflight <= st.target - st.correct
            feed(sched, qid, [False] * n)


def test_queries_with_most_rounds_left_are_served_first() -> None:
    sched = Scheduler(["fresh", "hard"], UNIFORM(5), max_raw=10_000)
    assert dict(sched.next_requests(10)) == {"fresh": 5, "hard": 5}
    sched.on_cancelled("fresh", 5)  # back to a fresh query, first in query order
    feed(sched, "hard", [False] * 5)
    # hard (no success yet: a long chain of rounds to go) comes before the fresh query
    assert sched.next_requests(1) == [("hard", 1)]
    fifo = Scheduler(
        ["fresh", "hard"], UNIFORM(5), max_raw=10_000, policy=SizingPolicy(order="fifo")
    )
    fifo.next_requests(10)
    fifo.on_cancelled("fresh", 5)
    feed(fifo, "hard", [False] * 5)
    assert fifo.next_requests(1) == [("fresh", 1)]


def test_rounds_order_prefers_the_longer_chain_over_the_larger_work() -> None:
    def make(order: str) -> Scheduler:
        sched = Scheduler(
            ["known", "unsure"], UNIFORM(40), max_raw=100_000, policy=SizingPolicy(order=order)
        )
        sched.restore("known", [True] * 20 + [False] * 1980)  # p ~ 0.01, well measured
        sched.restore("unsure", [False] * 5)  # little evidence yet
        return sched

    rounds, work = make("rounds"), make("work")
    for sched in (rounds, work):
        known, unsure = sched.state("known"), sched.state("unsure")
        assert known.want > 10 * unsure.want  # known may have many more in flight
    assert rounds.next_requests(1) == [("unsure", 1)]
    assert work.next_requests(1) == [("known", 1)]


# --------------------------------------------------------------------------------------------
# Prop2Diff probe


def test_probe_lower_bound_then_final_targets_without_a_barrier() -> None:
    # n_probe 4, k_p 10. Probes: a 1/4 (f .75), b 2/4 (f .5), c 4/4 (f 0).
    # Lower bounds: a 8, b 5, c 1. Final (max f .75): a 10, b ceil(6.67) = 7, c 1.
    spec = StrategySpec.prop2diff(10, n_probe=4)
    sched = Scheduler(["a", "b", "c"], spec, max_raw=1000)
    assert dict(sched.next_requests(100)) == {"a": 4, "b": 4, "c": 4}
    assert all(s.target is None for s in sched.states())
    feed(sched, "a", [True, False, False, False])
    a = sched.state("a")
    assert (a.probe_correct, a.target_lower_bound, a.target) == (1, 8, None)
    assert not sched.targets_final
    # a keeps sampling toward its lower bound, never more than the bound needs
    assert sched.next_requests(100) == [("a", 7)]
    feed(sched, "a", [True] * 7)
    assert (a.correct, a.stop_reason) == (8, None)  # at the bound: waits, not stopped
    assert sched.next_requests(100) == []
    feed(sched, "b", [True, True, False, False])
    assert feed(sched, "c", [True] * 4) == [False, False, False, True]  # last probe: final
    assert sched.targets_final
    assert {s.query_id: s.target for s in sched.states()} == {"a": 10, "b": 7, "c": 1}
    c = sched.state("c")
    assert (c.stop_reason, c.correct) == ("target_met", 4)  # the probe overshoots: kept
    reqs = dict(sched.next_requests(100))
    assert set(reqs) == {"a", "b"} and reqs["a"] >= 2 and reqs["b"] >= 5


def test_probe_ceil_is_exact() -> None:
    # probe 7/10 correct: f = 3/10, k_p * f = 3 exactly (floats would say 3.0000000000000004)
    spec = StrategySpec.prop2diff(10, n_probe=10)
    sched = Scheduler(["a", "b"], spec, max_raw=100)
    sched.next_requests(100)
    feed(sched, "a", [True] * 7 + [False] * 3)
    assert sched.state("a").target_lower_bound == 3
    feed(sched, "b", [False] * 10)  # max f = 1
    assert sched.state("a").target == 3


def test_probe_all_solved_gives_targets_of_one() -> None:
    spec = StrategySpec.prop2diff(40, n_probe=3)
    sched = Scheduler(["a", "b"], spec, max_raw=100)
    sched.next_requests(100)
    feed(sched, "a", [True] * 3)
    assert feed(sched, "b", [True] * 3)[-1] is True
    assert sched.done
    assert [(s.target, s.stop_reason) for s in sched.states()] == [(1, "target_met")] * 2


def test_probes_are_served_before_other_work() -> None:
    spec = StrategySpec.prop2diff(4, n_probe=8)
    sched = Scheduler(["a", "b", "c"], spec, max_raw=1000)
    assert sched.next_requests(8) == [("a", 8)]
    feed(sched, "a", [False] * 8)
    # a (lower bound 4, no success in 8: many rounds to go) would come first on rounds alone,
    # but the probes of b and c come first: they make the targets final
    assert sched.next_requests(20) == [("b", 8), ("c", 8), ("a", 4)]


# --------------------------------------------------------------------------------------------
# Resume


def _run_with_crash(make: Callable[[], Scheduler], verdict: Verdict, crash_after: int, seed: int):
    first = make()
    loop = FakeLoop(first, verdict, capacity=12, seed=seed)
    while not first.done and loop.steps < crash_after:
        loop.step()
    pool = loop.accepted  # what pool.jsonl holds at the crash (in-flight samples are lost)
    second = make()
    for qid, verdicts in pool.items():
        second.restore(qid, verdicts)
    FakeLoop(second, verdict, capacity=7, seed=seed + 1).run()
    return second


RESUME_CASES = {
    "uniform": (UNIFORM(3), {}, None),
    "prop2diff-prior": (StrategySpec.prop2diff(6), {"prior": True}, None),
    "prop2diff-probe": (StrategySpec.prop2diff(6, n_probe=3), {}, None),
    "vrt": (StrategySpec.vrt(5), {}, None),
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
@pytest.mark.parametrize("crash_after", [0, 5, 25, 60, 150])
def test_restore_then_continue_gives_the_same_stops(case: str, crash_after: int) -> None:
    spec, opts, _ = RESUME_CASES[case]
    rates = {f"q{i}": r for i, r in enumerate([0.9, 0.6, 0.3, 0.1, 0.0, 1.0, 0.45, 0.05])}
    verdict = hashed_verdicts(rates, seed=crash_after)
    prior = rates if opts.get("prior") else None

    def make() -> Scheduler:
        return Scheduler(list(rates), spec, max_raw=40, prior=prior)

    reference = make()
    FakeLoop(reference, verdict, seed=99).run()
    resumed = _run_with_crash(make, verdict, crash_after, seed=crash_after)
    assert outcome(resumed) == outcome(reference)


def test_restore_ignores_verdicts_past_the_stop_and_must_come_first() -> None:
    sched = Scheduler(["a", "b"], UNIFORM(2), max_raw=10)
    sched.restore("a", [False, True, True, True, False])
    sched.restore("b", [False])
    sched.restore("b", [True])  # may be called again: appends
    a, b = sched.state("a"), sched.state("b")
    assert (a.raw, a.correct, a.stop_reason, a.restored) == (3, 2, "target_met", 3)
    assert (b.raw, b.correct, b.stop_reason) == (2, 1, None)
    assert sched.totals.restore_ignored == 2
    assert sched.next_requests(10) == [("b", 1)]
    with pytest.raises(RuntimeError, match="restore"):
        sched.restore("b", [True])


def test_restore_counts_toward_max_raw_and_budget() -> None:
    sched = Scheduler(["a", "b"], UNIFORM(5), max_raw=4, budget=6)
    sched.restore("a", [False] * 4)
    assert sched.state("a").stop_reason == "max_raw"
    assert sched.next_requests(10) == [("b", 2)]  # budget 6 - 4 restored
    sched2 = Scheduler(["a", "b"], UNIFORM(5), max_raw=10, budget=3)
    sched2.restore("a", [False] * 3)
    assert sched2.done and sched2.stop_counts["budget"] == 2


def test_restore_probe_replays_probes_first() -> None:
    # Pool order: a's probe and its samples after the targets became final, then b's probe.
    # Replayed query by query, a's later samples must still count toward its final target.
    spec = StrategySpec.prop2diff(4, n_probe=2)
    sched = Scheduler(["a", "b"], spec, max_raw=50)
    sched.restore("a", [False, False, True, True, True])  # f 1: lower bound 4, final 4
    sched.restore("b", [True, True])  # f 0: target 1
    a, b = sched.state("a"), sched.state("b")
    assert sched.targets_final
    assert (a.raw, a.correct, a.target, a.stop_reason) == (5, 3, 4, None)
    assert (b.target, b.stop_reason) == (1, "target_met")
    assert sched.next_requests(50) == [("a", 1)]


# --------------------------------------------------------------------------------------------
# Fuzz


@pytest.mark.parametrize("seed", range(8))
def test_fuzz_invariants(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 25)
    rates = {
        f"q{i}": rng.choice([0.0, 1.0, rng.random(), rng.random() ** 3, 0.95]) for i in range(n)
    }
    specs = [
        UNIFORM(rng.randint(1, 6)),
        StrategySpec.prop2diff(rng.randint(1, 12)),
        StrategySpec.prop2diff(rng.randint(1, 12), n_probe=rng.randint(1, 5)),
        StrategySpec.vrt(rng.randint(1, 9)),
    ]
    spec = specs[seed % 4]
    prior = rates if spec.name == "prop2diff" and spec.n_probe is None else None
    max_raw = rng.choice([None, 5, 12, 60]) if spec.name == "vrt" else rng.choice([6, 12, 60])
    budget = rng.choice([None, None, rng.randint(1, 300)])
    policy = SizingPolicy(
        waste_frac=rng.choice([0.0, 0.02, 0.3]), z=rng.choice([0.5, 3.0]), order="rounds"
    )
    sched = Scheduler(
        list(rates),
        spec,
        max_raw=max_raw,
        budget=budget,
        prior=prior,
        max_n_per_request=rng.choice([1, 3, 64]),
        policy=policy,
    )
    loop = FakeLoop(
        sched,
        hashed_verdicts(rates, seed),
        capacity=rng.choice([1, 4, 32]),
        fail_rate=rng.choice([0.0, 0.1]),
        seed=seed,
    )
    loop.run()
    assert sched.done and sched.totals.inflight == 0
    for st in sched.states():
        _check_final(sched, st)
    assert sum(sched.stop_counts.values()) == n


def _check_final(sched: Scheduler, st: QueryState) -> None:
    reason = st.stop_reason
    if reason == "target_met":
        assert st.correct >= st.target
        assert st.correct == st.target or st.probe_correct == st.correct
    elif reason == "n_samples_done":
        assert st.raw == st.target
    elif reason == "max_raw":
        assert st.raw == sched.max_raw
        if sched.spec.counts_correct and st.target is not None:
            assert st.correct < st.target
    else:
        assert reason == "budget" and sched.totals.raw == sched.budget


def test_many_queries_run_fast() -> None:
    # 3,000 queries: no O(#queries) scan per call (this would take minutes if there were)
    n = 3000
    rates = {f"q{i}": (i % 10) / 10 for i in range(n)}
    sched = Scheduler(list(rates), UNIFORM(4), max_raw=30)
    loop = FakeLoop(sched, hashed_verdicts(rates), capacity=64, check=False)
    loop.run()
    assert sched.stop_counts["max_raw"] >= n // 10  # the p = 0 tenth


# --------------------------------------------------------------------------------------------
# Stop rules with sample indices (on_graded / on_lost)


class IndexedLoop:
    """Drives a Scheduler by sample index, like the pipeline: samples finish in random order,
    some are lost; the verdict of sample i of a query is fixed. Records what each query wrote."""

    def __init__(
        self,
        sched: Scheduler,
        verdict: Verdict,
        *,
        capacity: int = 24,
        seed: int = 0,
        lose: float = 0.0,
    ) -> None:
        self.sched, self.verdict, self.capacity = sched, verdict, capacity
        self.rng, self.lose = random.Random(seed), lose
        self.pending: list[tuple[str, int]] = []
        self.written: dict[str, list[int]] = {}
        self.lost: dict[str, set[int]] = {}
        self.discarded: dict[str, list[int]] = {}

    def settle(self, events) -> None:
        for ev in events:
            self.written.setdefault(ev.query_id, []).extend(ev.write)
            self.discarded.setdefault(ev.query_id, []).extend(ev.discard)
            cut = None if ev.stopped else ev.cutoff
            if ev.stopped or cut is not None:  # abort (whole query, or the samples above cut)
                gone = [
                    (q, i) for q, i in self.pending if q == ev.query_id and (cut is None or i > cut)
                ]
                self.pending = [p for p in self.pending if p not in gone]
                if gone:
                    self.settle(self.sched.on_lost(ev.query_id, [i for _, i in gone]))

    def run(self, max_steps: int = 100_000) -> None:
        for _ in range(max_steps):
            free = self.capacity - len(self.pending)
            for qid, first, n in self.sched.next_blocks(free):
                self.pending.extend((qid, first + k) for k in range(n))
            if not self.pending:
                assert self.sched.done
                return
            qid, idx = self.pending.pop(self.rng.randrange(len(self.pending)))
            if self.rng.random() < self.lose:
                self.lost.setdefault(qid, set()).add(idx)
                self.settle(self.sched.on_lost(qid, [idx]))
            else:
                self.settle(self.sched.on_graded(qid, idx, self.verdict(qid, idx)))
            t = self.sched.totals
            assert (
                t.started == t.graded + t.cancelled + t.aborted + t.discarded + t.held + t.inflight
            )
        raise AssertionError("did not finish")


@pytest.mark.parametrize("lose", [0.0, 0.1])
@pytest.mark.parametrize("seed", range(4))
def test_submission_order_keeps_exactly_the_first_k_correct_in_submission_order(seed, lose):
    rates = {f"q{i}": r for i, r in enumerate([0.9, 0.5, 0.3, 0.1, 0.6, 0.05])}
    verdict = hashed_verdicts(rates, seed)
    sched = Scheduler(list(rates), UNIFORM(4), max_raw=400)
    loop = IndexedLoop(sched, verdict, seed=seed, lose=lose)
    loop.run()
    for st in sched.states():
        qid = st.query_id
        written = loop.written.get(qid, [])
        assert written == sorted(written)  # counted in index order
        lost = loop.lost.get(qid, set())
        # every sample up to the last written one was written or lost, none skipped
        assert set(written) | {i for i in lost if i < max(written)} == set(range(max(written) + 1))
        n_correct = sum(verdict(qid, i) for i in written)
        assert n_correct == st.correct
        if st.stop_reason == "target_met":
            assert n_correct == st.target == 4
            assert verdict(qid, written[-1])  # stops on the target-th correct one
        assert st.held == 0 and not st.resolved


def test_a_late_earlier_sample_decides_and_later_ones_are_cut_off() -> None:
    sched = Scheduler(["a"], UNIFORM(1), max_raw=1000, stop="submission-order")
    sched.restore("a", [False] * 200)  # a low pass rate: several samples in flight at once
    [(qid, first, n)] = sched.next_blocks(100)
    assert (qid, first) == ("a", 200) and n >= 3
    [ev] = sched.on_graded("a", 202, True)  # held: 200 and 201 are still running
    assert (ev.write, ev.stopped, ev.cutoff) == ([], False, 202)
    assert sched.next_blocks(100) == []  # decided: nothing more starts
    [ev] = sched.on_graded("a", 201, True)  # an earlier correct one: the cutoff moves down
    assert (ev.write, ev.discard, ev.cutoff) == ([], [202], 201)
    [ev] = sched.on_graded("a", 200, False)
    assert (ev.write, ev.stopped) == ([200, 201], True)
    st = sched.state("a")
    assert (st.raw, st.correct, st.stop_reason, st.discarded) == (202, 1, "target_met", 1)
    assert st.aborted == n - 3  # the samples above the cutoff still in flight


def test_first_finished_counts_samples_as_they_finish() -> None:
    sched = Scheduler(["a"], UNIFORM(1), max_raw=1000, stop="first-finished")
    sched.restore("a", [False] * 200)
    [(_, _, n)] = sched.next_blocks(100)
    [ev] = sched.on_graded("a", 202, True)
    assert (ev.write, ev.stopped) == ([202], True)
    assert sched.state("a").aborted == n - 1
    assert sched.on_graded("a", 200, True)[0].discard == [200]


def test_a_lost_earlier_sample_releases_the_held_ones() -> None:
    sched = Scheduler(["a"], UNIFORM(2), max_raw=100)
    sched.restore("a", [False] * 12, next_index=20)  # gaps in an older pool: indices go on
    assert sched.next_blocks(100)[0][:2] == ("a", 20)
    assert sched.on_graded("a", 21, True) == []  # held, nothing settled
    [ev] = sched.on_lost("a", [20])
    assert ev.write == [21] and sched.state("a").correct == 1


def test_probe_completion_stops_other_queries_and_reports_them() -> None:
    # b meets its lower bound (1) with a held sample beyond; a's probe makes targets final
    spec = StrategySpec.prop2diff(2, n_probe=2)
    sched = Scheduler(["a", "b"], spec, max_raw=100)
    blocks = {q: (first, n) for q, first, n in sched.next_blocks(100)}
    assert blocks == {"a": (0, 2), "b": (0, 2)}
    sched.on_graded("b", 0, True)
    sched.on_graded("b", 1, True)  # b: probe 2/2, f 0 -> final target 1, already met... later
    sched.on_graded("a", 0, False)
    events = sched.on_graded("a", 1, False)  # a: f 1; every target is final now
    by_q = {ev.query_id: ev for ev in events}
    assert by_q["b"].stopped and sched.state("b").stop_reason == "target_met"
    assert sched.state("a").target == 2


def test_unknown_stop_rule() -> None:
    with pytest.raises(ValueError, match="stop must be one of"):
        Scheduler(["a"], UNIFORM(1), max_raw=5, stop="fastest")


def test_reports_for_samples_not_in_flight_are_refused() -> None:
    sched = Scheduler(["a"], UNIFORM(2), max_raw=10)
    sched.next_blocks(10)
    with pytest.raises(ValueError, match="sample 7 is not in flight"):
        sched.on_graded("a", 7, True)
    sched.on_graded("a", 0, False)
    with pytest.raises(ValueError, match="sample 0 is not in flight"):
        sched.on_graded("a", 0, False)


def test_without_a_cap_a_never_solved_query_cannot_take_the_engine() -> None:
    """No max_raw (a budget instead): the least expected work goes first, so a query that failed
    400 times gets only the slots the others leave. With the capped runs' order it would come
    first (most expected rounds left) and its allowed in flight grows as its rate falls."""
    spec = UNIFORM(4)
    sched = Scheduler(["hopeless", "a", "b"], spec, max_raw=None, budget=100_000)
    sched.restore("hopeless", [False] * 400)
    blocks = sched.next_requests(6)
    assert [q for q, _ in blocks] == ["a", "b"]  # 4 each would need 8: all 6 go to them
    assert dict(blocks) == {"a": 4, "b": 2}
    rest = dict(sched.next_requests(1000))
    assert rest["hopeless"] > 0 and rest["b"] == 2  # then the idle slots go to it
    capped = Scheduler(["hopeless", "a", "b"], spec, max_raw=100_000, budget=100_000)
    capped.restore("hopeless", [False] * 400)
    assert capped.next_requests(6) == [("hopeless", 6)]


def test_a_partial_prior_probes_the_rest_with_one_normalisation() -> None:
    # a from the prior (f 1/4), b probed (4 samples): targets once b's probe is in, over both
    spec = StrategySpec.prop2diff(8, n_probe=4)
    sched = Scheduler(["a", "b"], spec, max_raw=100, prior={"a": 0.75})
    a = sched.state("a")
    assert (a.target, a.target_lower_bound) == (None, 2)  # ceil(8 * 1/4): no probe for a
    reqs = dict(sched.next_requests(100))
    assert reqs == {"b": 4, "a": 2}  # the probe first; a toward its lower bound
    feed(sched, "b", [True, True, False, False])  # f_b = 1/2, f_a = 1/4: max f = 1/2
    assert sched.targets_final
    assert (a.target, sched.state("b").target) == (4, 8)  # ceil(8 * (1/4) / (1/2)), k_p
    full = Scheduler(["a"], spec, max_raw=100, prior={"a": 0.75})  # the prior has them all
    assert full.targets_final and full.state("a").target == 8
