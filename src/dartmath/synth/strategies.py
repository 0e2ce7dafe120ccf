"""Per-query targets and stop reasons of the DARS strategies (pure logic, no I/O).

- `uniform`: every query needs `k_u` correct responses.
- `prop2diff`: query i needs `t_i = max(1, ceil(k_p * f_i / max_j f_j))` correct responses, where
  `f_i = 1 - pass_rate_i` is its fail rate; if every fail rate is 0, every target is 1. The pass
  rates come from a prior (`{query_id: pass_rate}`, e.g. a DART-Math query-info file) or from a
  probe: the first `n_probe` graded samples of each query (their correct ones count toward the
  target).
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

STRATEGIES = ("uniform", "prop2diff", "vrt")

STOP_TARGET_MET = "target_met"
STOP_N_SAMPLES_DONE = "n_samples_done"
STOP_MAX_RAW = "max_raw"
STOP_BUDGET = "budget"
STOP_REASONS = (STOP_TARGET_MET, STOP_N_SAMPLES_DONE, STOP_MAX_RAW, STOP_BUDGET)

# Pass rates are ratios of counts; a float is read as the nearest fraction with a denominator up
# to this, so that 0.7 means 7/10 and k_p * f lands exactly on an integer when it should.
_MAX_DENOMINATOR = 1_000_000

# Which parameter each strategy uses; the others must be left unset (None).
_PARAMS = {"uniform": ("k_u",), "prop2diff": ("k_p", "n_probe"), "vrt": ("n_vrt",)}
_REQUIRED = {"uniform": "k_u", "prop2diff": "k_p", "vrt": "n_vrt"}


@dataclass(frozen=True)
class StrategySpec:
    """Which strategy and its parameters; validated on construction (ValueError).

    `n_probe` is optional for prop2diff: without it the difficulty must come from a prior given to
    the scheduler. Parameters of other strategies must be None, so that a config that sets `k_u`
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
            if param not in _PARAMS[self.name]:
                raise ValueError(
                    f"{param} does not apply to strategy {self.name!r} "
                    f"(it takes {', '.join(_PARAMS[self.name])}); leave it unset"
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
        return self.name != "vrt"

    def describe(self) -> str:
        """A short label, e.g. `prop2diff(k_p=40, n_probe=8)`."""
        params = ", ".join(
            f"{p}={getattr(self, p)}" for p in _PARAMS[self.name] if getattr(self, p) is not None
        )
        return f"{self.name}({params})"


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
