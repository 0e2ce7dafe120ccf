"""How many raw samples a query needs to reach its target, predicted from what is known of its
pass rate (pure math, no I/O).

A query that needs `need` more correct responses, and may draw at most `cap` more samples, draws
`R = min(N, cap)` samples, where `N` is the number of Bernoulli(p) trials until the `need`-th
success. Its pass rate p is known from `c` correct of `n` graded samples (a prior's counts, the
run's own, or both), so p is taken as Beta(a0 + c, b0 + n - c) and every figure is a
posterior-predictive one: the mean and variance of R averaged over that uncertainty, so a query
seen 4 times is predicted less confidently than one seen 400 times. The base Beta(a0, b0) is the
spread of pass rates over the run's queries, fitted to their counts (`fit_base`, the
beta-binomial method of moments), or Jeffreys' (1/2, 1/2) when too few queries have counts:
math queries are mostly solved always or never, and a base fitted to that reads 0 of 16 as
"probably never" more firmly than Jeffreys' does. A pass rate without counts is taken as exact.

With a cap the predictive law is walked exactly, trial by trial (a Pólya urn: after n trials with
j successes the next succeeds with probability (a + j) / (a + b + n)); without one, the
beta-negative-binomial moments are closed forms, which exist only when the query has been
solved often enough: the mean needs a > 1, the variance a > 2 (with a0 < 1: at least one and
two correct samples). A query never solved has no finite expectation without a cap: it takes whatever the
budget leaves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

JEFFREYS = (0.5, 0.5)
MIN_FIT = 20  # queries with counts needed to fit the base
# A pass rate without counts: a Beta so concentrated that the urn's probability stays at p.
_EXACT = 1e12
_NEGLIGIBLE = 1e-13  # probability mass below which a query counts as done


@dataclass(frozen=True)
class Belief:
    """What is known of a query's pass rate: `correct` of `samples` graded ones on top of a
    base Beta, or (counts None) an exact `rate`."""

    rate: float
    counts: tuple[float, float] | None = None  # (correct, samples); floats: pooled sources
    base: tuple[float, float] = JEFFREYS  # the Beta the counts update (`fit_base`)

    @classmethod
    def observed(
        cls, correct: float, samples: float, base: tuple[float, float] = JEFFREYS
    ) -> Belief:
        if samples <= 0 or not 0 <= correct <= samples:
            raise ValueError(
                f"need 0 <= correct <= samples and samples > 0, got {correct}/{samples}"
            )
        return cls(correct / samples, (correct, samples), base)

    def beta(self) -> tuple[float, float]:
        """The (a, b) of the Beta law of the pass rate."""
        if self.counts is None:
            return self.rate * _EXACT, (1.0 - self.rate) * _EXACT
        c, n = self.counts
        return c + self.base[0], n - c + self.base[1]

    def mean(self) -> float:
        a, b = self.beta()
        return a / (a + b)


def fit_base(counts: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The Beta(a0, b0) of pass rates across queries, from their (correct, samples) counts by
    the beta-binomial method of moments; Jeffreys' when there are fewer than MIN_FIT or the
    counts show no spread beyond the binomial's own."""
    if len(counts) < MIN_FIT:
        return JEFFREYS
    rates = np.array([c / n for c, n in counts])
    inv_n = float(np.mean([1.0 / n for _, n in counts]))
    mu = float(rates.mean())
    if not 0 < mu < 1 or inv_n >= 1:
        return JEFFREYS
    # Var(c/n) = mu (1 - mu) (1/n + (1 - 1/n) rho), rho = 1 / (a0 + b0 + 1)
    rho = (float(rates.var()) / (mu * (1 - mu)) - inv_n) / (1 - inv_n)
    if not 0 < rho < 1:
        return JEFFREYS
    total = 1 / rho - 1
    return mu * total, (1 - mu) * total


@dataclass(frozen=True)
class Estimate:
    """Predicted samples of one query: the mean and variance of its raw samples (inf: no finite
    value), the probability that its cap stops it before its need is met, and the mean and
    variance of the correct responses it keeps (at most `need`); `short_mean`: those it lacks."""

    raw_mean: float
    raw_var: float
    p_short: float
    kept_mean: float
    need: int
    kept_var: float = 0.0

    @property
    def short_mean(self) -> float:
        return self.need - self.kept_mean


def estimate_many(
    needs: Sequence[int], caps: Sequence[int | None], beliefs: Sequence[Belief]
) -> list[Estimate]:
    """The estimate of each query (`need` correct responses still wanted, at most `cap` more
    samples: None for no cap). Queries are walked together, so many cost one pass."""
    if not len(needs) == len(caps) == len(beliefs):
        raise ValueError("needs, caps and beliefs differ in length")
    keys = list(zip(needs, caps, beliefs, strict=True))
    done: dict[tuple[int, int | None, Belief], Estimate] = {}
    walked = []
    for key in dict.fromkeys(keys):  # queries alike are estimated once
        need, cap, belief = key
        if need < 0 or (cap is not None and cap < 0):
            raise ValueError(f"need and cap must be >= 0, got {need} and {cap}")
        if need == 0 or cap == 0:
            done[key] = Estimate(0.0, 0.0, float(need > 0), 0.0, need)
        elif cap is None:
            done[key] = _uncapped(need, belief)
        else:
            walked.append(key)
    if walked:
        done.update(zip(walked, _walk(*map(list, zip(*walked, strict=True))), strict=True))
    return [done[key] for key in keys]


def _uncapped(need: int, belief: Belief) -> Estimate:
    """Moments of the number of trials until the `need`-th success, with no cap."""
    if belief.counts is None:
        p = belief.rate
        if p == 0:
            return Estimate(math.inf, math.inf, 0.0, float(need), need)
        return Estimate(need / p, need * (1 - p) / p**2, 0.0, float(need), need)
    a, b = belief.beta()
    mean = need + need * b / (a - 1) if a > 1 else math.inf
    var = need * b * (need + a - 1) * (a + b - 1) / ((a - 2) * (a - 1) ** 2) if a > 2 else math.inf
    return Estimate(mean, var, 0.0, float(need), need)


def _walk(needs: list[int], caps: list[int], beliefs: list[Belief]) -> list[Estimate]:
    """The capped estimates, by walking every query's predictive law one trial at a time.

    `alive[k, j]`: probability that query k has not stopped and has j successes after the trials
    walked so far. P(N > t) is the mass alive after t trials; E[R] = sum of P(N > t) for t < cap
    and E[R^2] = sum of (2t + 1) P(N > t) over the same range.
    """
    k = len(needs)
    width = max(needs)
    need = np.array(needs)
    cap = np.array(caps)
    ab = np.array([b.beta() for b in beliefs])
    a, total = ab[:, 0:1], ab.sum(axis=1, keepdims=True)
    j = np.arange(width)[None, :]
    inside = j < need[:, None]  # the states a query can be in before it stops
    alive = np.zeros((k, width))
    alive[:, 0] = 1.0
    mean = np.zeros(k)
    square = np.zeros(k)
    for t in range(int(cap.max())):
        walking = cap > t
        mass = alive.sum(axis=1)
        mean += np.where(walking, mass, 0.0)
        square += np.where(walking, (2 * t + 1) * mass, 0.0)
        if not (walking & (mass > _NEGLIGIBLE)).any():
            break
        p = (a + j) / (total + t)
        moved = alive * p
        step = alive - moved
        step[:, 1:] += moved[:, :-1]
        step *= inside  # reaching `need` successes: stopped
        alive = np.where(walking[:, None], step, alive)
    p_short = alive.sum(axis=1)
    kept = (alive * j).sum(axis=1) + need * (1.0 - p_short)
    kept_var = np.maximum((alive * j**2).sum(axis=1) + need**2 * (1.0 - p_short) - kept**2, 0.0)
    var = np.maximum(square - mean**2, 0.0)
    return [
        Estimate(
            float(mean[i]),
            float(var[i]),
            float(p_short[i]),
            float(kept[i]),
            needs[i],
            float(kept_var[i]),
        )
        for i in range(k)
    ]
