"""What a run will take, predicted query by query from the scheduler `dart synth` builds (same
queries, targets, caps and prior match), before any sample or when resuming: pure, no I/O.

What is known of each query's pass rate: the prior's counts (or its bare rate), plus the run's
own graded samples; a query with neither is `unknown` (a Prop2Diff probe will measure it).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from dartmath.plan.estimate import JEFFREYS, Belief, estimate_many, fit_base
from dartmath.plan.report import Plan, QueryPlan, Throughput, TokenRate
from dartmath.synth.strategies import exact_rate, prop2diff_target

if TYPE_CHECKING:
    from dartmath.queries import Query
    from dartmath.queries.priors import PriorMatch
    from dartmath.synth.config import SynthConfig
    from dartmath.synth.scheduler import Scheduler


def plan_from_scheduler(
    cfg: SynthConfig,
    queries: list[Query],
    scheduler: Scheduler,
    match: PriorMatch | None,
    tokens: TokenRate | None = None,
    throughput: Throughput | None = None,
    config_path: str = "",
    resumed: bool = False,
) -> Plan:
    """The plan from a scheduler as `dart synth` has it before sampling (restored from the pool
    when resuming), with what `match` knows of the pass rates."""
    spec = scheduler.spec
    max_raw = cfg.strategy.max_raw
    base = fit_base(list(match.counts.values())) if match is not None else JEFFREYS
    rows = [_row(q, scheduler, match, base) for q in queries]
    _estimate_missing_targets(rows, spec.k_p)
    todo = [r for r in rows if r.stop_reason is None and r.target is not None]
    if spec.counts_correct:
        known = [r for r in todo if r.belief is not None]
        estimates = estimate_many(
            [max(0, r.target - r.correct) for r in known],
            [None if max_raw is None else max(0, max_raw - r.raw) for r in known],
            [r.belief for r in known],
        )
        for row, est in zip(known, estimates, strict=True):
            row.set_estimate(est)
    else:
        for row in todo:
            row.set_fixed(
                max(0, (row.target if max_raw is None else min(row.target, max_raw)) - row.raw)
            )
    for row in rows:
        row.settle(spec.n_probe, spec.counts_correct)
    budget_left = None
    if cfg.strategy.budget is not None:
        budget_left = max(0, cfg.strategy.budget - sum(r.raw for r in rows))
    return Plan(
        config=config_path,
        strategy=spec.describe(),
        counts_correct=spec.counts_correct,
        max_raw=max_raw,
        budget=cfg.strategy.budget,
        budget_left=budget_left,
        resumed=resumed,
        queries=rows,
        tokens=tokens,
        throughput=throughput,
        prior=None if match is None else _prior_text(match),
        base=base,
    )


def _prior_text(match: PriorMatch) -> str:
    known = match.n_queries - match.unmatched
    return (
        f"{known:,} of {match.n_queries:,} queries have a prior pass rate, "
        f"{len(match.counts):,} with the counts behind it"
    )


def _row(
    q: Query, scheduler: Scheduler, match: PriorMatch | None, base: tuple[float, float]
) -> QueryPlan:
    """A query's state and what is known of its pass rate: the prior's counts (or its bare
    rate) plus the run's own graded samples, on top of `base`."""
    st = scheduler.state(q.query_id)
    rate = None if match is None else match.pass_rates.get(q.query_id)
    counts = None if match is None else match.counts.get(q.query_id)
    belief = None
    if counts is not None:
        belief = Belief.observed(counts[0] + st.correct, counts[1] + st.raw, base)
    elif rate is not None:
        belief = Belief(rate)
    elif st.raw > 0:
        belief = Belief.observed(st.correct, st.raw, base)
    return QueryPlan(
        query_id=q.query_id,
        source=q.source,
        level=q.meta.get("level"),
        prior_rate=rate,
        prior_samples=None if counts is None else counts[1],
        belief=belief,
        target=st.target,
        raw=st.raw,
        correct=st.correct,
        stop_reason=st.stop_reason,
    )


def _estimate_missing_targets(rows: list[QueryPlan], k_p: int | None) -> None:
    """Prop2Diff targets still unknown (probes not in): estimated from the pass rates known so
    far, normalised by the largest fail rate among them (the scheduler uses every query's)."""
    open_rows = [r for r in rows if r.target is None and r.stop_reason is None]
    if k_p is None or not open_rows:
        return
    fails = [1 - exact_rate(r.belief.rate) for r in rows if r.belief is not None]
    max_fail = max(fails, default=Fraction(0))
    for r in open_rows:
        if r.belief is not None:
            r.target = prop2diff_target(1 - exact_rate(r.belief.rate), max_fail, k_p)
            r.target_estimated = True
