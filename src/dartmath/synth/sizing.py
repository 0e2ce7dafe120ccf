"""How many samples of a query may be in flight at once (pure maths, no state).

A query with remaining need r and pass rate p gets at most m samples in flight, the largest m
whose expected waste (the samples still in flight when the r-th success arrives, negative
binomial) stays below `waste_frac * r / p`. p is a Wilson upper bound of the query's pass rate
from its own graded samples (1 for a fresh query, so it starts with exactly r samples: m <= r
never wastes). The scheduler calls `cached_allowed_in_flight`, which rounds p and r the cautious
way onto a grid so that the sizing is computed once per grid point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

_UNBOUNDED = 1 << 62
ORDERS = ("auto", "rounds", "least-work", "work", "fifo")


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


def allowed_in_flight(r: int, p: float, waste_frac: float) -> int:
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
def _grid_allowed_in_flight(r: int, k: int, waste_frac: float, p_step: float) -> int:
    return allowed_in_flight(r, math.exp(-k * p_step), waste_frac)


def cached_allowed_in_flight(r: int, p_up: float, waste_frac: float, p_step: float) -> int:
    """allowed_in_flight on a grid, rounded the cautious way: p_up up, r down (never below r).

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
    return max(r, _grid_allowed_in_flight(min(r_grid, r), k, waste_frac, p_step))


def wilson_upper(correct: int, n: int, z: float) -> float:
    """Upper end of the Wilson score interval for a pass rate; 1.0 with no data."""
    if n <= 0:
        return 1.0
    phat = correct / n
    z2n = z * z / n
    centre = phat + z2n / 2
    radius = z * math.sqrt(phat * (1 - phat) / n + z2n / (4 * n))
    return min(1.0, (centre + radius) / (1 + z2n))


@dataclass(frozen=True)
class SizingPolicy:
    """How many samples of a query may be in flight, and which queries are served first.

    waste_frac: allowed expected waste as a fraction of the remaining expected work r / p_up
        (0: never more in flight than the remaining need r, so never any waste).
    z: z-score of the Wilson upper bound p_up of the pass rate (larger: more cautious).
    order: which queries get free slots first (probes always come first):
        "auto" (default): "rounds" with a per-query cap (max_raw), "least-work" without one;
        "rounds": most expected remaining rounds (expected remaining work / allowed in flight),
            i.e. the longest remaining chain first, so that no query is left at the end with
            many sequential rounds to go;
        "least-work": least expected remaining work first. Without a per-query cap, a query
            that is never solved would otherwise take ever more of the engine (its allowed in
            flight grows as its pass rate estimate falls) and the run's budget with it; this
            way it takes only the slots the others leave idle, and the budget goes first to
            the queries it can finish;
        "work": largest expected remaining work first; "fifo": query order.
    p_step: p_up is rounded up to a geometric grid of this log-step (to cache the sizing).

    Defaults chosen with bench/bench_sample_efficiency.py (see bench/README.md).
    """

    waste_frac: float = 0.02
    z: float = 3.0
    order: str = "auto"
    p_step: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.waste_frac < 1:
            raise ValueError(f"waste_frac must be in [0, 1), got {self.waste_frac!r}")
        if self.z < 0:
            raise ValueError(f"z must be >= 0, got {self.z!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if not 0 < self.p_step <= 0.5:
            raise ValueError(f"p_step must be in (0, 0.5], got {self.p_step!r}")
