"""Sample efficiency of the DARS scheduler: samples started against the expected minimum, and
what each stop rule keeps.

A discrete-event simulation drives the real `dartmath.synth.scheduler.Scheduler` (the code the
pipeline runs): an engine with C concurrent sample slots, each sample taking a time equal to its
length (lognormal, mean 1: lengths vary, so completions come back out of order), graded a fixed
latency after it completes. Samples start in the scheduler's blocks (one request each) and are
aborted a whole request at a time, as the pipeline does: when their query stops, or (submission
order) when every sample the request has left lies above the query's cutoff. Both stop rules run
on the same samples: `submission-order` (the default: the first k correct in submission order)
and `first-finished` (the first k correct to finish). In the same run, the DART-Math scripts'
rule on the same queries: batches of B prompts (one sample each) taken round-robin over the
unfinished queries, counts updated only when the whole batch is generated, a query stopping once
its correct count EXCEEDS its target (k+1) or its trials reach max_raw.

Samples are common random numbers: sample k of query i (in submission order) is correct iff a
fixed draw u[i, k] < p_i and has a fixed length, whatever rule or schedule produced it. So every
rule sees the same samples, and the realized minimum (a sequential sampler that stops at the
target) is the same. The length bias of a rule: the mean length of the correct samples it keeps
over the mean length of every correct sample started for the same queries.

Ratios: samples started on solvable queries (p > 0) / the minimum, where the minimum of query i
is E[min(T_i, max_raw)], T_i ~ trials until the t_i-th success (t_i / p_i when the cap does not
bind; computed exactly), and also / the realized minimum (isolates over-sampling), and both on
the target-1 queries. Never-solved queries take exactly max_raw under every rule: left out.
Makespan: against the slot-time used / C (idle slots) and the expected minimum / C.

Configurations: Uniform k_u=40; Prop2Diff k_p=40 and k_p=100 with a prior (the true p); then
Prop2Diff k_p=40 with a probe (n_probe=8; against the target minimum and against the
probe-aware minimum E[max(n_probe, min(T_i, max_raw))]); then ablations of the sizing policy
on 1,500 queries at C and 8*C (the tail matters when the engine is large for the query count).

Queries (fixed seed): a MATH-like spread of pass rates under a 7B model,
  35% easy       p ~ Beta(12, 1)            (mean 0.92)
  40% middle     p ~ Uniform(0.1, 0.9)
  15% hard       p ~ LogUniform(0.003, 0.1)
  10% unsolved   p = 0

    .venv/bin/python bench/bench_sample_efficiency.py            # full: 7,500 queries, ~4 min
    .venv/bin/python bench/bench_sample_efficiency.py --quick    # smoke check, under a minute

Goals (submission order): ratio <= 1.01 (Uniform k_u=40; Prop2Diff k_p=40 and 100 from a prior)
and a length bias within 0.5% of 1.
"""

from __future__ import annotations

import argparse
import heapq
import math
import sys
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from dartmath.synth.scheduler import Scheduler
from dartmath.synth.sizing import SizingPolicy, binom_cdf
from dartmath.synth.strategies import StrategySpec, prop2diff_targets

GOAL = 1.01
BIAS_GOAL = 0.005


# --------------------------------------------------------------------------------------------
# Queries and the baseline


def make_pass_rates(n: int, seed: int) -> np.ndarray:
    """The MATH-like mixture above, shuffled (query order carries no difficulty)."""
    rng = np.random.default_rng(seed)
    n_easy, n_mid, n_hard = round(0.35 * n), round(0.40 * n), round(0.15 * n)
    n_zero = n - n_easy - n_mid - n_hard
    p = np.concatenate(
        [
            rng.beta(12.0, 1.0, n_easy),
            rng.uniform(0.1, 0.9, n_mid),
            np.exp(rng.uniform(math.log(0.003), math.log(0.1), n_hard)),
            np.zeros(n_zero),
        ]
    )
    rng.shuffle(p)
    return p


def expected_min(t: int, p: float, cap: int) -> float:
    """E[min(T, cap)], T = trials until the t-th success at pass rate p."""
    if p <= 0.0:
        return float(cap)
    if p >= 1.0:
        return float(min(t, cap))
    # E[min(T, M)] = t/p - E[T 1{T > M}] + M P(T > M), E[T 1{T > M}] = (t/p) P(Bin(M+1) <= t)
    return t / p * (1.0 - binom_cdf(t, cap + 1, p)) + cap * binom_cdf(t - 1, cap, p)


def expected_min_probe(t: int, p: float, cap: int, n_probe: int) -> float:
    """E[max(n_probe, min(T, cap))]: the minimum when the first n_probe samples are a probe."""
    base = expected_min(t, p, cap)
    # E[(n_probe - min(T, M))^+] = sum_{j < n_probe} P(T <= j)
    extra = sum(1.0 - binom_cdf(t - 1, j, p) for j in range(t, n_probe)) if p > 0 else 0.0
    return base + extra


def expected_minima(
    targets: np.ndarray, p: np.ndarray, cap: int, n_probe: int | None = None
) -> np.ndarray:
    """Per query: expected_min (or expected_min_probe with n_probe)."""
    pairs = zip(targets.tolist(), p.tolist(), strict=True)
    if n_probe is None:
        return np.array([expected_min(t, pi, cap) for t, pi in pairs])
    return np.array([expected_min_probe(t, pi, cap, n_probe) for t, pi in pairs])


# --------------------------------------------------------------------------------------------
# Common random numbers


@dataclass
class Draws:
    """Each query's samples, fixed in advance: sample k (in submission order) of query i is
    correct iff ok[i, k] and takes length[i, k] (mean 1; its duration on the engine and, times
    TOKENS, its tokens).

    Every rule reads the same samples, so the realized minimum (a sequential sampler stopping at
    the target: the first t_i correct samples in submission order) is the same for all of them
    and `started / realized` isolates the over-sampling of a rule exactly. A sample's length is
    drawn apart from its verdict: any length bias of what a rule keeps is the rule's own.
    """

    ok: bytes  # row-major n x width, 0/1
    length: np.ndarray  # n x width, float32
    succ: np.ndarray  # n x (max_raw + 1): successes among the first k samples
    max_raw: int
    width: int  # samples drawn per query: max_raw plus room for aborted ones

    @classmethod
    def make(cls, p: np.ndarray, max_raw: int, seed: int, sigma: float = 0.5) -> Draws:
        rng = np.random.default_rng(seed)
        width = 2 * max_raw
        ok = rng.random((len(p), width), dtype=np.float32) < p[:, None].astype(np.float32)
        succ = np.zeros((len(p), max_raw + 1), dtype=np.int32)
        np.cumsum(ok[:, :max_raw], axis=1, out=succ[:, 1:])
        mu = -sigma * sigma / 2
        length = rng.lognormal(mu, sigma, (len(p), width)).astype(np.float32)
        return cls(ok.astype(np.uint8).tobytes(), length, succ, max_raw, width)

    def ok_row(self, i: int, n: int) -> np.ndarray:
        """The verdicts of query i's first n samples, as booleans."""
        start = i * self.width
        return np.frombuffer(self.ok, dtype=np.uint8, count=n, offset=start).astype(bool)

    def realized_min(self, targets: np.ndarray) -> np.ndarray:
        """Samples a sequential sampler needs: index of the t_i-th success, capped at max_raw."""
        below = (self.succ < targets[:, None]).sum(axis=1)
        return np.minimum(below, self.max_raw)


# --------------------------------------------------------------------------------------------
# Simulations

TOKENS = 500  # tokens of a sample of length 1 (only the ratios below are reported)


@dataclass
class Outcome:
    started: np.ndarray  # samples started per query (aborted included)
    corrects: np.ndarray  # correct samples kept per query
    targets: np.ndarray
    makespan: float
    busy: float  # slot-time used (completed samples + aborted samples until their abort)
    aborted: int
    seconds: float  # wall time of the simulation
    extra: str = ""
    extra_tokens: float = math.nan  # tokens generated and not kept (aborted, discarded) / kept
    length_bias: float = math.nan  # kept correct vs all correct samples of the same queries


def simulate_scheduler(
    p: np.ndarray,
    draws: Draws,
    spec: StrategySpec,
    *,
    prior: dict[str, float] | None,
    max_raw: int,
    capacity: int,
    grade_latency: float,
    policy: SizingPolicy | None = None,
    stop: str = "submission-order",
    budget: int | None = None,
) -> Outcome:
    """Event loop: keep `capacity` samples running, feed completions to the real Scheduler.

    Samples are started in the scheduler's blocks (one request each) and, as in the pipeline,
    aborted a whole request at a time: when its query stops, or (submission order) when every
    sample it has left lies above the query's cutoff.
    """
    t0 = time.perf_counter()
    n = len(p)
    ids = [f"q{i}" for i in range(n)]
    sched = Scheduler(
        ids, spec, max_raw=max_raw, budget=budget, prior=prior, policy=policy, stop=stop
    )
    index = {q: i for i, q in enumerate(ids)}
    states = [sched.state(q) for q in ids]
    ok, width, length = draws.ok, draws.width, draws.length
    # requests: id -> [query, start time, {unfinished sample index}]
    blocks: dict[int, list] = {}
    by_query: list[set[int]] = [set() for _ in range(n)]
    running: list[tuple[float, int, int, int]] = []  # heap of (end, block, query, sample index)
    grading: deque[tuple[float, int, int]] = deque()  # constant latency: FIFO in time
    free, now, busy, bid = capacity, 0.0, 0.0, 0
    gen_tokens = 0.0
    kept_tokens = 0.0
    kept_len = [0.0] * n  # per query: lengths of the kept correct samples
    kept_n = [0] * n

    def abort(b: int) -> list[int]:
        nonlocal free, busy, gen_tokens
        qi, start, left = blocks.pop(b)
        by_query[qi].discard(b)
        free += len(left)
        busy += len(left) * (now - start)
        gen_tokens += len(left) * (now - start) * TOKENS  # partial samples
        return sorted(left)

    def settle(events) -> None:
        nonlocal kept_tokens
        for ev in events:
            qi = index[ev.query_id]
            row = qi * width
            for k in ev.write:
                kept_tokens += float(length[qi, k]) * TOKENS
                if ok[row + k]:
                    kept_len[qi] += float(length[qi, k])
                    kept_n[qi] += 1
            if ev.stopped or ev.cutoff is not None:
                cut = None if ev.stopped else ev.cutoff
                for b in list(by_query[qi]):
                    if cut is None or min(blocks[b][2]) > cut:
                        lost = abort(b)
                        settle(sched.on_lost(ev.query_id, lost))

    while True:
        if free > 0:
            for qid, first, k in sched.next_blocks(free):
                i = index[qid]
                if first + k > width:
                    raise RuntimeError(f"{qid}: more than {width} samples: widen Draws")
                free -= k
                bid += 1
                blocks[bid] = [i, now, set(range(first, first + k))]
                by_query[i].add(bid)
                for idx in range(first, first + k):
                    heapq.heappush(running, (now + float(length[i, idx]), bid, i, idx))
        if grading and (not running or grading[0][0] <= running[0][0]):
            now, i, idx = grading.popleft()
        elif running:
            t, b, i, idx = heapq.heappop(running)
            if b not in blocks:
                continue  # aborted (slot already freed)
            now = t
            free += 1
            left = blocks[b][2]
            left.discard(idx)
            if not left:
                del blocks[b]
                by_query[i].discard(b)
            busy += float(length[i, idx])
            gen_tokens += float(length[i, idx]) * TOKENS
            if grade_latency > 0:
                grading.append((t + grade_latency, i, idx))
                continue
        else:
            break
        settle(sched.on_graded(ids[i], idx, bool(ok[i * width + idx])))
    if not sched.done:
        raise RuntimeError("simulation stalled: queries left but nothing in flight")
    started = np.array([st.started for st in states])
    corrects = np.array([st.correct for st in states])
    targets = np.array([st.target if st.target is not None else 0 for st in states])
    # length bias: kept correct samples against every correct sample started for the query
    expected = 0.0
    for i, st in enumerate(states):
        if kept_n[i]:
            sub = draws.ok_row(i, st.submitted)
            expected += kept_n[i] * float(length[i, : st.submitted][sub].mean())
    kept = sum(kept_len)
    return Outcome(
        started,
        corrects,
        targets,
        now,
        busy,
        sched.totals.aborted,
        time.perf_counter() - t0,
        extra_tokens=max(0.0, gen_tokens - kept_tokens) / kept_tokens if kept_tokens else math.nan,
        length_bias=kept / expected if expected else math.nan,
    )


def list_schedule_makespan(durations: list[float], capacity: int) -> float:
    """Makespan of jobs started in order on `capacity` slots, each as soon as a slot is free."""
    if len(durations) <= capacity:
        return max(durations, default=0.0)
    slots = durations[:capacity]
    heapq.heapify(slots)
    for d in durations[capacity:]:
        heapq.heapreplace(slots, slots[0] + d)
    return max(slots)


def simulate_dart_rule(
    p: np.ndarray,
    draws: Draws,
    targets: np.ndarray,
    *,
    batch: int,
    max_raw: int,
    capacity: int,
    sigma: float,
    seed: int,
) -> Outcome:
    """The DART-Math scripts' loop: batches of `batch` prompts, counts updated per batch.

    Each batch takes one prompt per unfinished query in query order, pass after pass, until it
    has `batch` prompts (a query's trials, counted when scheduled, never pass max_raw); all are
    generated (makespan: list scheduling on `capacity` slots), then graded; a query is finished
    once its correct count exceeds its target or its trials reach max_raw.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = len(p)
    trials = np.zeros(n, dtype=np.int64)
    corrects = np.zeros(n, dtype=np.int64)
    makespan = busy = 0.0
    mu = -sigma * sigma / 2
    n_batches = 0
    while True:
        unfinished = np.flatnonzero((corrects <= targets) & (trials < max_raw))
        if len(unfinished) == 0:
            break
        room = max_raw - trials[unfinished]
        counts = np.zeros(len(unfinished), dtype=np.int64)
        filled, j = 0, 0
        while filled < batch:
            elig = np.flatnonzero(room > j)
            if len(elig) == 0:
                break
            take = elig[: batch - filled]
            counts[take] += 1
            filled += len(take)
            j += 1
        trials[unfinished] += counts
        corrects[unfinished] = draws.succ[unfinished, trials[unfinished]]
        durations = rng.lognormal(mu, sigma, filled)
        busy += float(durations.sum())
        makespan += list_schedule_makespan(durations.tolist(), capacity)
        n_batches += 1
    return Outcome(
        trials,
        corrects,
        targets,
        makespan,
        busy,
        0,
        time.perf_counter() - t0,
        extra=f"{n_batches} batches, {time.perf_counter() - t0:.0f}s",
    )


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class Row:
    name: str
    vs_exp: float  # samples started on solvable queries / sum of expected minima
    vs_real: float  # ... / sum of realized minima (same verdict sequences)
    t1_exp: float
    t1_real: float
    n_t1: int
    mk_work: float  # makespan / (slot-time used / C)
    mk_min: float  # makespan / (expected minimum samples / C)
    extra_tokens: float  # generated and not kept / kept
    length_bias: float  # mean length of kept correct / of all correct of the same queries
    note: str


def summarise(
    name: str,
    out: Outcome,
    p: np.ndarray,
    exp_min: np.ndarray,
    real_min: np.ndarray,
    capacity: int,
    note: str = "",
) -> Row:
    solv = p > 0
    t1 = solv & (out.targets == 1)

    def ratio(mask: np.ndarray, base: np.ndarray) -> float:
        return float(out.started[mask].sum() / base[mask].sum()) if mask.any() else math.nan

    return Row(
        name,
        ratio(solv, exp_min),
        ratio(solv, real_min),
        ratio(t1, exp_min),
        ratio(t1, real_min),
        int(t1.sum()),
        out.makespan / (out.busy / capacity),
        out.makespan / (exp_min.sum() / capacity),
        out.extra_tokens,
        out.length_bias,
        note,
    )


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    head = (
        f"{'rule':<30} {'vs E[min]':>9} {'vs real':>8} {'t=1 E':>7} {'t=1 real':>8} {'n t=1':>6}"
        f" {'mk/work':>7} {'mk/min':>7} {'xtok':>6} {'len':>6}  note"
    )
    print(head)
    print("-" * (len(head) + 24))
    for r in rows:
        t1 = f"{r.t1_exp:7.3f} {r.t1_real:8.3f}" if r.n_t1 else f"{'-':>7} {'-':>8}"
        tok = (
            "     -      -"
            if math.isnan(r.length_bias)
            else (f"{r.extra_tokens:6.1%} {r.length_bias:6.3f}")
        )
        print(
            f"{r.name:<30} {r.vs_exp:9.4f} {r.vs_real:8.4f} {t1} {r.n_t1:6d}"
            f" {r.mk_work:7.3f} {r.mk_min:7.3f} {tok}  {r.note}"
        )
    sys.stdout.flush()


LEGEND = """\
vs E[min]: samples started on solvable queries (aborted included) / sum_i E[min(T_i, max_raw)],
  T_i = trials until the t_i-th success (t_i / p_i when the cap does not bind);
vs real: the same against the realized minimum on the same verdict sequences (pure over-sampling);
t=1: the same two on the solvable queries whose target is 1 (n t=1 of them);
mk/work: makespan / (slot-time used / C), 1 = never an idle slot;
mk/min: makespan / (expected minimum samples, unsolved included, / C);
xtok: tokens generated and not kept (aborted in flight, or graded past the stop) / tokens kept;
len: length bias, mean length of the kept correct samples / mean length of every correct sample
  started for the same queries (sample durations are their lengths; 1 = no bias)."""


def no_cap_table(args: argparse.Namespace) -> None:
    """Prop2Diff without a per-query cap, stopped by a run budget (the DART-Math configs): which
    queries the budget lets finish, under the default order (least expected work first without
    a cap) and the capped runs' order (most rounds left first)."""
    n = 600
    p = make_pass_rates(n, args.seed)
    width = 40_000
    draws = Draws.make(p, width // 2, args.seed + 1, args.sigma)
    prior = {f"q{i}": x for i, x in enumerate(p.tolist())}
    spec = StrategySpec.prop2diff(40)
    targets = np.array([t for t in prop2diff_targets(prior, 40).values()])
    solv = p > 0
    exp_min = expected_minima(targets, p, 10**9)
    need = float(exp_min[solv].sum())
    print(
        f"\nno per-query cap, a run budget: prop2diff k_p=40 (prior), {n} queries "
        f"({int((~solv).sum())} never solved); solvable E[min] {need:,.0f}"
    )
    print(f"{'order':<12} {'budget':>8} {'met':>8} {'on unsolved':>11} {'mk/work':>7}")
    for order in ("auto", "rounds"):
        for mult in (1.5, 3.0):
            budget = int(need * mult)
            try:
                out = simulate_scheduler(
                    p,
                    draws,
                    spec,
                    prior=prior,
                    grade_latency=args.grade_latency,
                    policy=SizingPolicy(order=order),
                    capacity=args.capacity,
                    max_raw=None,
                    budget=budget,
                )
            except RuntimeError as e:  # one query took more samples than drawn for it
                print(f"{order:<12} {mult:>7}x  stopped: {e}")
                continue
            met = int((out.corrects >= out.targets)[solv].sum())
            print(
                f"{order:<12} {mult:>7}x {met:>4}/{int(solv.sum()):<3} "
                f"{int(out.started[~solv].sum()):>11,} {out.makespan / (out.busy / args.capacity):7.3f}"
            )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,500 queries, fewer configurations")
    ap.add_argument("--queries", type=int, default=None, help="number of queries (7,500)")
    ap.add_argument("--capacity", type=int, default=256, help="concurrent samples C (256)")
    ap.add_argument("--max-raw", type=int, default=2048, help="per-query cap of raw samples")
    ap.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma of durations")
    ap.add_argument(
        "--grade-latency", type=float, default=0.05, help="in mean sample durations (0.05)"
    )
    ap.add_argument("--n-probe", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="queries and verdicts; sims derive theirs")
    ap.add_argument("--batches", type=int, nargs="*", default=None, help="DART rule batch sizes")
    ap.add_argument(
        "--ablation-capacity",
        type=int,
        nargs="*",
        default=None,
        help="engine sizes for the sizing ablations (default: C and 8*C; none: skip)",
    )
    ap.add_argument("--ablation-queries", type=int, default=1500, help="(1,500)")
    args = ap.parse_args(argv)

    n = args.queries or (1500 if args.quick else 7500)
    batches = args.batches or ([1024, 16384] if args.quick else [256, 1024, 4096, 16384])
    C, M = args.capacity, args.max_raw
    ablation_caps = args.ablation_capacity
    if ablation_caps is None:
        ablation_caps = [] if args.quick else [C, 8 * C]
    p = make_pass_rates(n, args.seed)
    draws = Draws.make(p, M, args.seed + 1, args.sigma)
    ids = [f"q{i}" for i in range(n)]
    prior = dict(zip(ids, p.tolist(), strict=True))
    sim = {"max_raw": M, "sigma": args.sigma}
    print(
        f"{n} queries (seed {args.seed}): {np.mean(p > 0.8):.0%} p>0.8, "
        f"{np.mean((p >= 0.1) & (p <= 0.8)):.0%} 0.1<=p<=0.8, "
        f"{np.mean((p > 0) & (p < 0.1)):.0%} 0<p<0.1, {np.mean(p == 0):.0%} p=0; "
        f"C={C}, max_raw={M}; lengths = durations lognormal(sigma={args.sigma}, mean 1); "
        f"grading latency {args.grade_latency}"
    )
    print(
        f"samples (verdicts, lengths): seed {args.seed + 1}; DART rule durations: seed "
        f"{args.seed} + 1000 * config id + 10 + batch index"
    )
    print(LEGEND)

    def run(spec, prior_=None, stop="submission-order"):
        return simulate_scheduler(
            p,
            draws,
            spec,
            prior=prior_,
            grade_latency=args.grade_latency,
            capacity=C,
            max_raw=M,
            stop=stop,
        )

    def minima(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return expected_minima(targets, p, M), draws.realized_min(targets)

    strategies = [
        ("uniform k_u=40", StrategySpec.uniform(40), None),
        ("prop2diff k_p=40 (prior)", StrategySpec.prop2diff(40), prior),
        ("prop2diff k_p=100 (prior)", StrategySpec.prop2diff(100), prior),
    ]
    if args.quick:
        strategies = strategies[:2]
    worst, worst_bias = 0.0, 0.0
    for cfg_id, (label, spec, prior_) in enumerate(strategies, start=1):
        rows = []
        for stop in ("submission-order", "first-finished"):
            out = run(spec, prior_, stop)
            exp_min, real_min = minima(out.targets)
            note = f"aborted {out.aborted}, {out.seconds:.0f}s"
            row = summarise(f"scheduler {stop}", out, p, exp_min, real_min, C, note)
            if stop == "submission-order":
                worst = max(worst, row.vs_exp)
                worst_bias = max(worst_bias, abs(row.length_bias - 1))
            rows.append(row)
        for b_id, b in enumerate(batches):
            d = simulate_dart_rule(
                p,
                draws,
                out.targets,
                batch=b,
                capacity=C,
                seed=args.seed + 1000 * cfg_id + 10 + b_id,
                **sim,
            )
            rows.append(summarise(f"DART rule B={b}", d, p, exp_min, real_min, C, d.extra))
        solv = p > 0
        print_table(
            f"{label}: E[min] {exp_min[solv].sum():,.0f}, realized min "
            f"{real_min[solv].sum():,} samples on solvable queries "
            f"(+{int((~solv).sum()) * M:,} on unsolved)",
            rows,
        )

    # Prop2Diff with a probe: targets come from each query's first n_probe samples
    n_probe = args.n_probe
    out = run(StrategySpec.prop2diff(40, n_probe=n_probe))
    exp_min, real_min = minima(out.targets)
    exp_probe = expected_minima(out.targets, p, M, n_probe)
    real_probe = np.maximum(real_min, n_probe)
    solv = p > 0
    over = int(np.maximum(out.corrects - out.targets, 0)[solv].sum())
    rows = [
        summarise(
            "scheduler vs target minimum", out, p, exp_min, real_min, C, f"{out.seconds:.0f}s"
        ),
        summarise(
            "scheduler vs probe-aware min",
            out,
            p,
            exp_probe,
            real_probe,
            C,
            f"aborted {out.aborted}",
        ),
    ]
    print_table(
        f"prop2diff k_p=40 with a probe (n_probe={n_probe}, targets from the probe): "
        f"E[min] {exp_min[solv].sum():,.0f}, probe-aware E[min] {exp_probe[solv].sum():,.0f}; "
        f"correct responses kept beyond target: {over:,}",
        rows,
    )

    if not args.quick:
        no_cap_table(args)

    if ablation_caps:
        # on a smaller population (quick to run); C and 8*C: the tail matters when C is large
        n_abl = args.ablation_queries
        p_abl = make_pass_rates(n_abl, args.seed)
        draws_abl = Draws.make(p_abl, M, args.seed + 1, args.sigma)
        prior_abl = {f"q{i}": x for i, x in enumerate(p_abl.tolist())}
        default = SizingPolicy()
        so = "submission-order"
        variants = [
            (f"default {default.order}/{default.waste_frac}/z{default.z}", default, so),
            ("default, stop first-finished", default, "first-finished"),
            ("no waste (waste_frac 0)", SizingPolicy(waste_frac=0.0), so),
            ("waste_frac 0.05, z 2", SizingPolicy(waste_frac=0.05, z=2.0), so),
            ("order work", SizingPolicy(order="work"), so),
            ("order fifo", SizingPolicy(order="fifo"), so),
            ("no waste, order work", SizingPolicy(waste_frac=0.0, order="work"), so),
        ]
        spec = StrategySpec.prop2diff(40)
        for cap in ablation_caps:
            rows = []
            for name, pol, stop in variants:
                out = simulate_scheduler(
                    p_abl,
                    draws_abl,
                    spec,
                    prior=prior_abl,
                    grade_latency=args.grade_latency,
                    policy=pol,
                    capacity=cap,
                    max_raw=M,
                    stop=stop,
                )
                exp_min = expected_minima(out.targets, p_abl, M)
                real_min = draws_abl.realized_min(out.targets)
                note = f"aborted {out.aborted}, {out.seconds:.0f}s"
                rows.append(summarise(name, out, p_abl, exp_min, real_min, cap, note))
            print_table(
                f"sizing ablations: prop2diff k_p=40 (prior), {n_abl} queries, C={cap}", rows
            )

    ok = worst <= GOAL
    print(f"\ngoal: scheduler vs E[min] <= {GOAL} (uniform, prop2diff with a prior): ", end="")
    print(f"{'ok' if ok else 'FAIL'} (worst {worst:.4f})")
    bias_ok = worst_bias <= BIAS_GOAL
    print(f"goal: submission-order length bias within {BIAS_GOAL:.1%} of 1: ", end="")
    print(f"{'ok' if bias_ok else 'FAIL'} (worst {worst_bias:.2%})")
    return 0 if ok and bias_ok else 1


if __name__ == "__main__":
    sys.exit(main())
