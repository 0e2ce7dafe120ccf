"""The DARS strategies: their parameters, targets and stop rules, and how each sizes its
queries' requests (pure logic, no I/O; the scheduler holds the state and calls these).

- `uniform`: every query needs `k_u` correct responses.
- `prop2diff`: query i needs `t_i = max(1, ceil(k_p * f_i / max_j f_j))` correct responses, where
  `f_i = 1 - pass_rate_i` is its fail rate; if every fail rate is 0, every target is 1. The pass
  rates come from a prior (`{query_id: pass_rate}`, e.g. a DART-Math query-info file), from a
  probe: the first `n_probe` graded samples of each query (their correct ones count toward the
  target), or from both: the prior where it has the query, a probe for the others.
- `vrt` (vanilla rejection tuning): a fixed number `n_vrt` of raw samples per query; correctness
  does not decide when to stop.

Stop reasons (the `stop_reason` of a query, also written to query_info.jsonl):
- `target_met`: the query has its target of correct responses (uniform, prop2diff);
- `n_samples_done`: a vrt query has its `n_vrt` raw samples;
- `max_raw`: the per-query cap of raw samples was reached first;
- `budget`: the run's global budget of raw samples ran out first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dartmath.synth.scheduler import QueryState

STRATEGIES = ("uniform", "prop2diff", "vrt")

STOP_TARGET_MET = "target_met"
STOP_N_SAMPLES_DONE = "n_samples_done"
STOP_MAX_RAW = "max_raw"
STOP_BUDGET = "budget"
STOP_REASONS = (STOP_TARGET_MET, STOP_N_SAMPLES_DONE, STOP_MAX_RAW, STOP_BUDGET)

# Pass rates are ratios of counts; a float is read as the nearest fraction with a denominator up
# to this, so that 0.7 means 7/10 and k_p * f lands exactly on an integer when it should.
_MAX_DENOMINATOR = 1_000_000

# Which parameters each strategy uses; the others must be left unset (None).
PARAMS = {"uniform": ("k_u",), "prop2diff": ("k_p", "n_probe"), "vrt": ("n_vrt",)}
_REQUIRED = {"uniform": "k_u", "prop2diff": "k_p", "vrt": "n_vrt"}


@dataclass(frozen=True)
class StrategySpec:
    """Which strategy and its parameters; validated on construction (ValueError).

    `n_probe` is optional for prop2diff: without it the difficulty must come from a prior given to
    the scheduler; with a prior too, it probes the queries the prior lacks. Parameters of other strategies must be None, so that a config that sets `k_u`
    on a prop2diff run fails loudly instead of being ignored.
    """

    name: str
    k_u: int | None = None
    k_p: int | None = None
    n_probe: int | None = None
    n_vrt: int | None = None

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.name!r}: expected one of {', '.join(STRATEGIES)}"
            )
        for param in ("k_u", "k_p", "n_probe", "n_vrt"):
            value = getattr(self, param)
            if value is None:
                continue
            if param not in PARAMS[self.name]:
                raise ValueError(
                    f"{param} does not apply to strategy {self.name!r} "
                    f"(it takes {', '.join(PARAMS[self.name])}); leave it unset"
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{param} must be an integer >= 1, got {value!r}")
        required = _REQUIRED[self.name]
        if getattr(self, required) is None:
            raise ValueError(f"strategy {self.name!r} needs {required} (an integer >= 1)")

    @classmethod
    def uniform(cls, k_u: int) -> StrategySpec:
        return cls("uniform", k_u=k_u)

    @classmethod
    def prop2diff(cls, k_p: int, n_probe: int | None = None) -> StrategySpec:
        return cls("prop2diff", k_p=k_p, n_probe=n_probe)

    @classmethod
    def vrt(cls, n_vrt: int) -> StrategySpec:
        return cls("vrt", n_vrt=n_vrt)

    @property
    def counts_correct(self) -> bool:
        """True when the target counts correct responses (uniform, prop2diff); False for vrt."""
        return counts_correct(self.name)

    def describe(self) -> str:
        """A short label, e.g. `prop2diff(k_p=40, n_probe=8)`."""
        params = ", ".join(
            f"{p}={getattr(self, p)}" for p in PARAMS[self.name] if getattr(self, p) is not None
        )
        return f"{self.name}({params})"


def counts_correct(strategy: str) -> bool:
    """Whether the targets of `strategy` count correct responses (all but vrt: raw samples)."""
    return strategy != "vrt"


class MissingPriorError(ValueError):
    """Some queries have no pass rate in the Prop2Diff prior; `missing` lists their ids."""

    def __init__(self, missing: list[str], n_queries: int) -> None:
        self.missing = missing
        shown = ", ".join(repr(q) for q in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        super().__init__(
            f"the Prop2Diff prior has no pass rate for {len(missing)} of {n_queries} queries "
            f"(e.g. {shown}{more}); drop those queries or use a probe (n_probe)"
        )


def exact_rate(value: float | Fraction, *, what: str = "pass rate") -> Fraction:
    """`value` in [0, 1] as an exact fraction (floats: nearest fraction, denominator <= 10^6)."""
    if isinstance(value, Fraction):
        rate = value
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
        rate = Fraction(value).limit_denominator(_MAX_DENOMINATOR)
    if not 0 <= rate <= 1:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return rate


def _ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


def prop2diff_target(fail: Fraction, max_fail: Fraction, k_p: int) -> int:
    """`max(1, ceil(k_p * fail / max_fail))`, exactly; 1 when `max_fail` is 0."""
    if max_fail <= 0:
        return 1
    return max(1, _ceil(k_p * fail / max_fail))


def prop2diff_lower_bound(fail: Fraction, k_p: int) -> int:
    """`max(1, ceil(k_p * fail))`: a lower bound of the final target whatever `max_j f_j` (<= 1)."""
    return max(1, _ceil(k_p * fail))


def prop2diff_targets(pass_rates: Mapping[str, float | Fraction], k_p: int) -> dict[str, int]:
    """Prop2Diff targets of the queries in `pass_rates` (normalised by their own max fail rate)."""
    if isinstance(k_p, bool) or not isinstance(k_p, int) or k_p < 1:
        raise ValueError(f"k_p must be an integer >= 1, got {k_p!r}")
    fails = {q: 1 - exact_rate(p, what=f"pass rate of {q!r}") for q, p in pass_rates.items()}
    max_fail = max(fails.values(), default=Fraction(0))
    return {q: prop2diff_target(f, max_fail, k_p) for q, f in fails.items()}


def targets_from_prior(
    query_ids: Iterable[str], prior: Mapping[str, float | Fraction], k_p: int
) -> dict[str, int]:
    """Prop2Diff targets of `query_ids` from a prior; raises MissingPriorError if any is missing.

    Prior entries for other queries are ignored: the targets are normalised by the largest fail
    rate among the queries of this run.
    """
    ids = list(query_ids)
    missing = [q for q in ids if q not in prior]
    if missing:
        raise MissingPriorError(missing, len(ids))
    return prop2diff_targets({q: prior[q] for q in ids}, k_p)


def check_limits(
    spec: StrategySpec, *, max_raw: int | None, budget: int | None, has_prior: bool
) -> None:
    """Whether a run of `spec` with these caps and difficulty source can end (ValueError)."""
    for name, value in (("max_raw", max_raw), ("budget", budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer or None, got {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if spec.counts_correct and max_raw is None and budget is None:
        raise ValueError(
            f"{spec.name} needs max_raw or budget: a query that is never solved would "
            "otherwise be sampled forever"
        )
    if spec.name == "prop2diff":
        if not has_prior and spec.n_probe is None:
            raise ValueError(
                "prop2diff needs a difficulty: a prior of pass rates (difficulty_from) or n_probe"
            )
        if spec.n_probe is not None and max_raw is not None and max_raw < spec.n_probe:
            raise ValueError(f"max_raw ({max_raw}) must be >= n_probe ({spec.n_probe})")
    elif has_prior:
        raise ValueError(f"a prior of pass rates applies to prop2diff only, not {spec.name}")


# Sizes a query's requests toward a remaining need of correct responses (the scheduler's rule).
Sizer = Callable[["QueryState", int], int]


class Strategy:
    """How a strategy sets its queries' targets, when a query has met its target, and how
    many of its samples it wants in flight. Uniform is the base case: a fixed target of
    correct responses. Methods see one query's state; the scheduler applies caps and budget."""

    stop_reason = STOP_TARGET_MET
    targets_final = True
    probe_size: int | None = None  # graded samples that measure a query's difficulty first

    def __init__(self, spec: StrategySpec) -> None:
        self.spec = spec

    def start(self, states: Sequence[QueryState]) -> None:
        """Set the targets known before any sample."""
        for st in states:
            st.target = self.spec.k_u

    def reached(self, st: QueryState) -> bool:
        """The query has what its target asks for."""
        return st.target is not None and st.correct >= st.target

    def probing(self, st: QueryState) -> bool:
        """The query's samples are still measuring its difficulty (served first)."""
        return False

    def on_graded(self, st: QueryState) -> bool:
        """A graded sample was counted; True when every target has just become final."""
        return False

    def on_stopped(self, st: QueryState) -> bool:
        """The query stopped; True when every target has just become final."""
        return False

    def finalize(self, states: Sequence[QueryState]) -> None:
        """Set the final targets (called once, when `on_graded`/`on_stopped` said so)."""

    def wanted(self, st: QueryState, size: Sizer) -> int:
        """Samples the query should have in flight now, before the per-query cap."""
        return size(st, st.target - st.known_correct)

    def expected_work(self, st: QueryState) -> float:
        """Expected raw samples until the query stops, from its posterior-mean pass rate."""
        p_mean = (st.correct + 1) / (st.raw + 2)
        return max(0.0, st.target - st.correct) / p_mean


class VRT(Strategy):
    """A fixed number of raw samples; correctness does not decide when to stop."""

    stop_reason = STOP_N_SAMPLES_DONE

    def start(self, states: Sequence[QueryState]) -> None:
        for st in states:
            st.target = self.spec.n_vrt

    def reached(self, st: QueryState) -> bool:
        return st.raw >= st.target

    def wanted(self, st: QueryState, size: Sizer) -> int:
        return st.target - st.known_raw

    def expected_work(self, st: QueryState) -> float:
        return float(st.target - st.raw)


class Prop2DiffPrior(Strategy):
    """Prop2Diff with targets from a prior of pass rates, known from the start."""

    def __init__(self, spec: StrategySpec, prior: Mapping[str, float | Fraction]) -> None:
        super().__init__(spec)
        self.prior = prior

    def start(self, states: Sequence[QueryState]) -> None:
        targets = targets_from_prior([st.query_id for st in states], self.prior, self.spec.k_p)
        for st in states:
            st.target = targets[st.query_id]


class Prop2DiffProbe(Strategy):
    """Prop2Diff whose difficulties come from a probe: each query's first `n_probe` graded
    samples (all kept, even past the final target: the target is not known yet). A probed
    query samples, with no waste, toward `max(1, ceil(k_p * f_i))`, a lower bound of its final
    target, while other probes finish; with the last probe in, every target becomes final.

    With a partial prior, the queries the prior has take their fail rate from it and are not
    probed; the others are. One normalisation, `max_j f_j` over both kinds, sets every target.
    """

    def __init__(
        self, spec: StrategySpec, prior: Mapping[str, float | Fraction] | None = None
    ) -> None:
        super().__init__(spec)
        self.targets_final = False
        self.probe_size = spec.n_probe
        self.prior = prior or {}
        self._fail: dict[int, Fraction] = {}  # query index -> fail rate, once known
        self._pending = 0  # queries whose fail rate is not known yet
        self._max_fail = Fraction(0)

    def start(self, states: Sequence[QueryState]) -> None:
        for st in states:
            rate = self.prior.get(st.query_id)
            if rate is not None:
                self._measured(st, 1 - exact_rate(rate, what=f"pass rate of {st.query_id!r}"))
        self._pending = len(states) - len(self._fail)
        if self._pending == 0:
            self.finalize(states)

    def _measured(self, st: QueryState, fail: Fraction) -> None:
        self._fail[st.index] = fail
        st.target_lower_bound = prop2diff_lower_bound(fail, self.spec.k_p)
        self._max_fail = max(self._max_fail, fail)

    def probing(self, st: QueryState) -> bool:
        return st.index not in self._fail

    def on_graded(self, st: QueryState) -> bool:
        n_probe = self.spec.n_probe
        if st.index in self._fail or st.raw < n_probe:
            return False
        st.probe_correct = st.correct
        self._measured(st, Fraction(n_probe - st.correct, n_probe))
        self._pending -= 1
        return self._pending == 0

    def on_stopped(self, st: QueryState) -> bool:
        if st.index in self._fail:
            return False
        self._pending -= 1
        return self._pending == 0

    def finalize(self, states: Sequence[QueryState]) -> None:
        self.targets_final = True
        for st in states:
            fail = self._fail.get(st.index)
            if fail is not None:
                st.target = prop2diff_target(fail, self._max_fail, self.spec.k_p)

    def wanted(self, st: QueryState, size: Sizer) -> int:
        if st.index not in self._fail:
            return self.spec.n_probe - st.known_raw
        if st.target is None:  # measured, others still probing: no waste toward the bound
            return max(0, st.target_lower_bound - st.known_correct)
        return size(st, st.target - st.known_correct)

    def expected_work(self, st: QueryState) -> float:
        p_mean = (st.correct + 1) / (st.raw + 2)
        target = st.target
        if target is None:
            target = st.target_lower_bound
        if target is None:
            target = max(1.0, self.spec.k_p * (1 - p_mean))
        return max(0.0, target - st.correct) / p_mean


def make_strategy(spec: StrategySpec, prior: Mapping[str, float | Fraction] | None) -> Strategy:
    """The behaviour of `spec` (with its prior, for Prop2Diff; a partial prior needs n_probe)."""
    if spec.name == "vrt":
        return VRT(spec)
    if spec.name == "prop2diff":
        if spec.n_probe is None:
            assert prior is not None  # check_limits
            return Prop2DiffPrior(spec, prior)
        return Prop2DiffProbe(spec, prior)
    return Strategy(spec)
