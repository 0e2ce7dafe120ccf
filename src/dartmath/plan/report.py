"""A plan: per-query predictions, their totals (whole run and per source), cost in tokens,
time and GPU-hours, and how it prints and serialises.

Totals add the queries' predictions: means add, and so do variances (queries are sampled
independently), so a total is stated as mean ± 2 standard deviations (about 95%). A query whose
prediction has no finite mean (never solved, no cap) or variance (solved once, no cap) is counted
apart, never folded into a figure it would make infinite.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from dartmath.plan.estimate import JEFFREYS, Belief, Estimate
from dartmath.synth.strategies import STOP_BUDGET, STOP_MAX_RAW

Z = 2.0  # the stated uncertainty: mean ± Z standard deviations


@dataclass(frozen=True)
class Throughput:
    """Generated tokens per second of one replica (one engine: a GPU, or a tensor-parallel
    group of `gpus_per_replica`), and how many replicas run."""

    tokens_per_s: float
    replicas: int = 1
    gpus_per_replica: int = 1


@dataclass(frozen=True)
class TokenRate:
    """Generated tokens per response, and where the figure comes from. Measured in a pool,
    it also has the mean length of correct and of incorrect responses, overall (`lengths`) and
    per query of the run (`by_query`): wrong answers ramble (many run to max_tokens), and a
    DARS run draws mostly correct samples from easy queries and wrong ones from hard queries.
    """

    per_response: float
    origin: str
    lengths: tuple[float | None, float | None] = (None, None)  # (correct, incorrect)
    by_query: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    var_per_response: float = 0.0  # the spread of one response's length, where measured

    def of(self, query_id: str, correct: bool) -> float:
        """The mean length of a correct (or incorrect) response of the query: its own, else
        the pool's, else the mean of every response."""
        k = 0 if correct else 1
        own = self.by_query.get(query_id, (None, None))[k]
        if own is not None:
            return own
        overall = self.lengths[k]
        return overall if overall is not None else self.per_response


@dataclass
class QueryPlan:
    """One query: what is known, and what is predicted for the rest of its run.

    `raw`/`correct`: graded so far (a run directory's pool). `raw_mean`/`raw_var`: samples still
    to draw (None: unknown, at least `min_raw`). `kept_mean`: correct responses it ends with,
    at most its target. `p_short`: probability that a cap stops it short of its target;
    `short_mean`: expected responses it lacks then.
    """

    query_id: str
    source: str | None
    level: Any
    prior_rate: float | None
    prior_samples: int | None
    belief: Belief | None
    target: int | None
    raw: int
    correct: int
    stop_reason: str | None
    target_estimated: bool = False
    raw_mean: float | None = None
    raw_var: float | None = None
    kept_mean: float | None = None
    kept_var: float = 0.0
    p_short: float = 0.0
    short_mean: float = 0.0
    min_raw: int = 0

    @property
    def status(self) -> str:
        """`done` (stopped), `planned` (predicted) or `unknown` (no pass rate or target yet)."""
        if self.stop_reason is not None:
            return "done"
        return "unknown" if self.raw_mean is None else "planned"

    def kept_so_far(self) -> int:
        return self.correct if self.target is None else min(self.correct, self.target)

    def set_estimate(self, est: Estimate) -> None:
        """A query whose target counts correct responses."""
        self.raw_mean, self.raw_var = est.raw_mean, est.raw_var
        self.kept_mean = self.kept_so_far() + est.kept_mean
        self.kept_var = est.kept_var
        self.p_short, self.short_mean = est.p_short, est.short_mean

    def set_fixed(self, n: int) -> None:
        """A vrt query: `n` more samples, so many correct as its pass rate says."""
        self.raw_mean, self.raw_var = float(n), 0.0
        if self.belief is not None:  # beta-binomial: n draws of a rate known as a Beta(a, b)
            a, b = self.belief.beta()
            p = a / (a + b)
            self.kept_mean = self.correct + n * p
            self.kept_var = n * p * (1 - p) * (a + b + n) / (a + b + 1)
        if self.target is not None and self.raw + n < self.target:
            self.p_short, self.short_mean = 1.0, float(self.target - self.raw - n)

    def settle(self, n_probe: int | None, counts_correct: bool) -> None:
        """Fill in what a stopped or unknown query contributes."""
        if self.stop_reason is not None:
            self.raw_mean, self.raw_var = 0.0, 0.0
            self.kept_mean = float(self.kept_so_far() if counts_correct else self.correct)
            if self.stop_reason in (STOP_MAX_RAW, STOP_BUDGET) and self.target is not None:
                have = self.correct if counts_correct else self.raw
                self.p_short, self.short_mean = 1.0, float(max(0, self.target - have))
        elif self.raw_mean is None:
            need = (
                0
                if self.target is None
                else self.target - (self.correct if counts_correct else self.raw)
            )
            self.min_raw = max(0, (n_probe or 0) - self.raw, need)

    def to_json(self) -> dict[str, Any]:
        sd = None if self.raw_var is None else _sqrt(self.raw_var)
        return {
            "query_id": self.query_id,
            "source": self.source,
            "level": self.level,
            "status": self.status,
            "prior_pass_rate": self.prior_rate,
            "prior_samples": self.prior_samples,
            "pass_rate": None if self.belief is None else self.belief.rate,
            "target": self.target,
            "target_estimated": self.target_estimated,
            "raw_so_far": self.raw,
            "correct_so_far": self.correct,
            "stop_reason": self.stop_reason,
            "expected_raw": None if self.raw_mean is None else _num(self.raw + self.raw_mean),
            "raw_sd": _num(sd),
            "min_raw": self.min_raw if self.status == "unknown" else None,
            "expected_kept": _num(self.kept_mean),
            "kept_sd": math.sqrt(self.kept_var),
            "p_short": self.p_short,
            "expected_short": self.short_mean,
        }


def _sqrt(x: float) -> float:
    return math.inf if math.isinf(x) else math.sqrt(x)


def _num(x: float | None) -> float | str | None:
    """A figure for JSON: infinity as the string "inf" (JSON has no infinity)."""
    return "inf" if x is not None and math.isinf(x) else x


@dataclass
class Totals:
    """The sums of some queries' predictions (see the module docstring)."""

    queries: int = 0
    done: int = 0
    planned: int = 0
    unknown: int = 0
    raw_so_far: int = 0
    raw_mean: float = 0.0  # samples still to draw, over the queries with a finite mean
    raw_var: float = 0.0  # over the queries with a finite variance
    unbounded: int = 0  # no finite mean: never solved and no cap
    heavy: int = 0  # a finite mean but no finite variance
    unknown_min_raw: int = 0
    kept_mean: float = 0.0
    kept_var: float = 0.0
    kept_unknown: int = 0  # queries whose kept responses cannot be predicted
    short_queries: float = 0.0
    short_responses: float = 0.0
    zero_rate: int = 0  # pass rate 0 as far as known: each takes its cap (or the budget)

    @classmethod
    def of(cls, rows: list[QueryPlan]) -> Totals:
        t = cls(queries=len(rows))
        for r in rows:
            t.raw_so_far += r.raw
            status = r.status
            if status == "done":
                t.done += 1
            elif status == "unknown":
                t.unknown += 1
                t.unknown_min_raw += r.min_raw
            else:
                t.planned += 1
                assert r.raw_mean is not None and r.raw_var is not None
                if math.isinf(r.raw_mean):
                    t.unbounded += 1
                else:
                    t.raw_mean += r.raw_mean
                    if math.isinf(r.raw_var):
                        t.heavy += 1
                    else:
                        t.raw_var += r.raw_var
                if r.belief is not None and r.belief.rate == 0:
                    t.zero_rate += 1
            if r.kept_mean is None:
                t.kept_unknown += 1
            else:
                t.kept_mean += r.kept_mean
                t.kept_var += r.kept_var
            t.short_queries += r.p_short
            t.short_responses += r.short_mean
        return t

    @property
    def raw_sd(self) -> float:
        return math.sqrt(self.raw_var)

    @property
    def kept_sd(self) -> float:
        return math.sqrt(self.kept_var)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("raw_var", "kept_var")}
        out["raw_sd"] = self.raw_sd
        out["kept_sd"] = self.kept_sd
        out["expected_raw_total"] = self.raw_so_far + self.raw_mean
        return out


@dataclass
class Plan:
    """The plan of one run config (`dart plan`): its queries and what they add up to."""

    config: str
    strategy: str
    counts_correct: bool
    max_raw: int | None
    budget: int | None
    budget_left: int | None
    resumed: bool
    queries: list[QueryPlan]
    tokens: TokenRate | None = None
    throughput: Throughput | None = None
    prior: str | None = None
    base: tuple[float, float] = JEFFREYS
    totals: Totals = field(init=False)

    def __post_init__(self) -> None:
        self.totals = Totals.of(self.queries)

    def by_source(self) -> dict[str | None, Totals]:
        """Totals per source, in query order; empty for a single-source config."""
        groups: dict[str | None, list[QueryPlan]] = {}
        for r in self.queries:
            groups.setdefault(r.source, []).append(r)
        return {k: Totals.of(v) for k, v in groups.items()} if len(groups) > 1 else {}

    def samples_to_draw(self) -> float:
        """Expected samples still to draw, the budget applied: all it leaves when some query
        will never stop on its own (or the predicted samples exceed it)."""
        t = self.totals
        draw = math.inf if t.unbounded else t.raw_mean + t.unknown_min_raw
        return draw if self.budget_left is None else min(draw, float(self.budget_left))

    def budget_binds(self) -> bool:
        return self.budget_left is not None and self.samples_to_draw() >= self.budget_left

    def cost(self) -> dict[str, float] | None:
        """Tokens, wall hours and GPU-hours of the samples still to draw (None: not known)."""
        draw = self.samples_to_draw()
        if self.tokens is None or math.isinf(draw):
            return None
        if self.budget_binds():
            tokens, sd = draw * self.tokens.per_response, 0.0
        else:
            # each query's correct and incorrect samples at their own lengths; var: of the
            # number of samples (the marginal one is mostly incorrect), plus of the lengths
            tokens = self.totals.unknown_min_raw * self.tokens.per_response
            var = 0.0
            for r in self.queries:
                if r.status == "planned":
                    assert r.raw_mean is not None and r.raw_var is not None
                    right = 0.0 if r.kept_mean is None else r.kept_mean - r.kept_so_far()
                    right_len = self.tokens.of(r.query_id, True)
                    wrong_len = self.tokens.of(r.query_id, False)
                    tokens += right * right_len + (r.raw_mean - right) * wrong_len
                    var += r.raw_var * wrong_len**2 + r.raw_mean * self.tokens.var_per_response
            sd = math.sqrt(var)
        out = {"tokens": tokens, "tokens_sd": sd}
        if self.throughput is not None:
            tp = self.throughput
            hours = tokens / (tp.tokens_per_s * tp.replicas) / 3600
            out["hours"] = hours
            out["hours_sd"] = sd / (tp.tokens_per_s * tp.replicas) / 3600
            out["gpu_hours"] = hours * tp.replicas * tp.gpus_per_replica
        return out

    def to_json(self) -> str:
        doc = {
            "config": self.config,
            "strategy": self.strategy,
            "max_raw": self.max_raw,
            "budget": self.budget,
            "budget_left": self.budget_left,
            "resumed": self.resumed,
            "prior": self.prior,
            "pass_rate_base": list(self.base),
            "uncertainty": f"mean ± {Z:g} sd",
            "totals": self.totals.to_json(),
            "samples_to_draw": _num(self.samples_to_draw()),
            "budget_binds": self.budget_binds(),
            "tokens_per_response": None if self.tokens is None else self.tokens.per_response,
            "tokens_origin": None if self.tokens is None else self.tokens.origin,
            "throughput": None if self.throughput is None else self.throughput.__dict__,
            "cost": self.cost(),
            "by_source": [{"source": name, **t.to_json()} for name, t in self.by_source().items()],
            "queries": [r.to_json() for r in self.queries],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False)

    def headline(self) -> str:
        """One line: samples to draw ± and responses kept (`dart synth` prints it at start)."""
        t = self.totals
        parts = [f"plan: {_samples(t, self.budget_left)}"]
        if t.kept_unknown < t.queries:
            parts.append(f"~{t.kept_mean:,.0f} responses kept")
        if t.short_queries >= 0.05:
            parts.append(f"~{t.short_queries:,.1f} queries short of their targets")
        if t.unknown:
            parts.append(f"{t.unknown:,} queries without a pass rate yet")
        return ", ".join(parts)

    def format(self) -> str:
        t = self.totals
        caps = f"max_raw {self.max_raw if self.max_raw is not None else 'none'}, budget " + (
            f"{self.budget:,}" if self.budget is not None else "none"
        )
        lines = [
            f"plan: {self.config or '<config>'}",
            f"  strategy             {self.strategy}, {caps}",
            f"  pass rates           {self.prior or 'no prior'}"
            + ("; the run's own samples so far" if self.resumed else ""),
            f"                       each a Beta(c + {self.base[0]:.2f}, n - c + "
            f"{self.base[1]:.2f}) from its c correct of n"
            + (" (Jeffreys')" if self.base == JEFFREYS else " (fitted to the queries' spread)"),
            f"  queries              {t.queries:,} (done {t.done:,}, to sample {t.planned:,}, "
            f"no pass rate yet {t.unknown:,})",
            f"  raw samples          {_samples(t, self.budget_left)}"
            + (f"; {t.raw_so_far:,} so far" if t.raw_so_far else ""),
        ]
        kept = "the size of the exported set" if self.counts_correct else "correct responses"
        if t.kept_unknown < t.queries:
            more = f" (+ {t.kept_unknown:,} queries unknown)" if t.kept_unknown else ""
            lines.append(f"  responses kept       {_pm(t.kept_mean, t.kept_sd)}{more} ({kept})")
        lines.append(
            f"  short of targets     ~{t.short_queries:,.1f} queries, ~{t.short_responses:,.0f} "
            "responses (stopped by a cap)"
        )
        if t.zero_rate:
            where = (
                f"each takes its cap ({self.max_raw:,} samples)"
                if self.max_raw is not None
                else "with no cap they take what the budget leaves"
            )
            lines.append(f"  pass rate 0          {t.zero_rate:,} queries: {where}")
        if t.heavy:
            lines.append(
                f"  solved once          {t.heavy:,} queries: no cap, so their spread is unbounded "
                "(left out of ±)"
            )
        if self.budget_left is not None:
            verdict = "runs out first" if self.budget_binds() else "is enough"
            lines.append(f"  budget               {self.budget_left:,} samples left: it {verdict}")
        lines += self._cost_lines()
        lines += self._source_lines()
        return "\n".join(lines)

    def _cost_lines(self) -> list[str]:
        if self.tokens is None:
            return ["  tokens               unknown (--tokens-per-response, or a pool to measure)"]
        cost = self.cost()
        if cost is None:
            return ["  tokens               unbounded (queries never solved and no cap or budget)"]
        lines = [
            f"  tokens               {_pm(cost['tokens'], cost['tokens_sd'])} "
            f"({self.tokens.per_response:,.1f} per response"
            + (", correct and incorrect apart, per query" if self.tokens.by_query else "")
            + f", {self.tokens.origin})"
        ]
        if self.throughput is not None:
            tp = self.throughput
            lines.append(
                f"  time                 {_pm(cost['hours'], cost['hours_sd'], '.2f')} h at "
                f"{tp.tokens_per_s:,.0f} tokens/s x {tp.replicas} replica(s); "
                f"{cost['gpu_hours']:,.2f} GPU-hours ({tp.gpus_per_replica} GPU(s) per replica)"
            )
        else:
            lines.append("  time                 unknown (--tokens-per-s: see bench/README.md)")
        return lines

    def _source_lines(self) -> list[str]:
        groups = self.by_source()
        if not groups:
            return []
        names = [str(n) if n is not None else "-" for n in groups]
        w = max(len("source"), *(len(n) for n in names))
        lines = [
            "",
            "by source:",
            f"  {'source':<{w}}  {'queries':>8}  {'raw samples':>22}  {'kept':>9}  {'short':>7}",
        ]
        for name, t in zip(names, groups.values(), strict=True):
            lines.append(
                f"  {name:<{w}}  {t.queries:>8,}  {_samples(t, None):>22}  "
                f"{t.kept_mean:>9,.0f}  {t.short_queries:>7,.1f}"
            )
        return lines


def _pm(mean: float, sd: float, fmt: str = ",.0f") -> str:
    return f"{mean:{fmt}} ± {Z * sd:{fmt}}"


def _samples(t: Totals, budget_left: int | None) -> str:
    """`412 ± 38`, with what the figure leaves out."""
    text = _pm(t.raw_mean, t.raw_sd)
    if t.unknown:
        text += f" + at least {t.unknown_min_raw:,} (unknown)"
    if t.unbounded:
        rest = "the budget's rest" if budget_left is not None else "unbounded"
        text += f" + {t.unbounded:,} never-solved queries ({rest})"
    return text
