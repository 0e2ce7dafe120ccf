"""`dart plan` as a library call: a synth config in, the predicted cost of its run out.

The plan comes from the very scheduler `dart synth` would build (`plan.predict`), restored from
the run directory's pool when there is one (read only: the run may be going on), so that it says
what is left of a run in progress as well as what a new run will take.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

from dartmath.errors import ConfigError, InputError, ResumeRefused
from dartmath.plan.predict import plan_from_scheduler
from dartmath.plan.report import Plan, Throughput, TokenRate
from dartmath.queries.priors import load_prior
from dartmath.synth.config import SynthConfig, meaning_diff, resolve_config
from dartmath.synth.run import load_run_prior, load_run_queries, make_scheduler
from dartmath.synth.store import CONFIG, POOL, read_pool, read_run_config

log = logging.getLogger(__name__)


def plan_run(
    cfg: SynthConfig,
    *,
    rates_from: list[str] | None = None,
    tokens: TokenRate | None = None,
    tokens_from: str | None = None,
    throughput: Throughput | None = None,
    config_path: str | None = None,
    note: Callable[[str], None] = log.info,
) -> Plan:
    """The plan of the run `cfg` describes (or of what is left of it, when `cfg.run.dir` holds
    its pool). Pass rates: the config's Prop2Diff prior, or `rates_from` (priors read for their
    pass rates only, for any strategy; for Prop2Diff they replace the config's). Tokens per
    response: `tokens`, else measured in `tokens_from` (a pool or run directory), the run's own
    pool or the pool beside a prior's query-info file, in that order."""
    queries = load_run_queries(cfg)
    if rates_from and cfg.strategy.name != "prop2diff":
        match = load_prior(rates_from, queries, cfg.strategy.prior_match)
        note(match.report("no pass rate"))
        scheduler = make_scheduler(cfg, queries, None, note)
    else:
        match = load_run_prior(cfg, queries)
        scheduler = make_scheduler(cfg, queries, match, note)
    measured = _TokenCount()
    run_dir = Path(cfg.run.dir) if cfg.run.dir else None
    in_run = run_dir is not None and (run_dir / POOL).is_file()
    if in_run:
        assert run_dir is not None
        _check_same_run(run_dir, cfg)
        pool = read_pool(run_dir / POOL, [q.query_id for q in queries], measured.add)
        for qid, verdicts in pool.verdicts.items():
            scheduler.restore(qid, verdicts, pool.next_idx[qid])
    if tokens is None:
        priors = rates_from or cfg.strategy.difficulty_sources()
        ids = {q.query_id for q in queries}
        tokens = _measured_tokens(tokens_from, measured, run_dir if in_run else None, priors, ids)
    return plan_from_scheduler(
        cfg, queries, scheduler, match, tokens, throughput, config_path or "", in_run
    )


class _TokenCount:
    """Sums `n_tokens` over the pool lines it is shown: overall, and per query and verdict."""

    def __init__(self) -> None:
        self.tokens = 0
        self.squares = 0
        self.lines = 0
        self.by_query: dict[str, list[int]] = {}  # [correct tokens, lines, incorrect tokens, lines]

    def add(self, rec: dict, lineno: int) -> None:
        n = rec.get("n_tokens")
        if isinstance(n, int) and not isinstance(n, bool):
            self.tokens += n
            self.squares += n * n
            self.lines += 1
            tally = self.by_query.setdefault(str(rec.get("query_id")), [0, 0, 0, 0])
            k = 0 if rec.get("correct") is True else 2
            tally[k] += n
            tally[k + 1] += 1

    def rate(self, origin: str, query_ids: set[str]) -> TokenRate | None:
        """The means, overall and of `query_ids` (None: no line had `n_tokens`)."""
        if self.lines == 0:
            return None
        own = {q: (_mean(t[0], t[1]), _mean(t[2], t[3])) for q, t in self.by_query.items()}
        tallies = list(self.by_query.values())
        lengths = tuple(
            _mean(sum(t[k] for t in tallies), sum(t[k + 1] for t in tallies)) for k in (0, 2)
        )
        mean = self.tokens / self.lines
        # the spread of all lengths: at least that of a response about its own query's mean
        spread = max(0.0, self.squares / self.lines - mean**2)
        run_own = {q: v for q, v in own.items() if q in query_ids}
        return TokenRate(mean, f"measured in {origin}", lengths, run_own, spread)


def _mean(total: int, n: int) -> float | None:
    return total / n if n else None


def _measured_tokens(
    tokens_from: str | None,
    in_run: _TokenCount,
    run_dir: Path | None,
    priors: list[str],
    query_ids: set[str],
) -> TokenRate | None:
    """Tokens per response, measured in the first pool that has some (`plan_run` says which)."""
    if tokens_from is not None:
        path = Path(tokens_from)
        pool = path / POOL if path.is_dir() else path
        if not pool.is_file():
            raise InputError(tokens_from, None, "no such pool file or run directory")
        rate = _tokens_in(pool, query_ids)
        if rate is None:
            raise InputError(pool, None, "no line has `n_tokens`: nothing to measure")
        return rate
    if run_dir is not None and in_run.lines:
        return in_run.rate(str(run_dir / POOL), query_ids)
    for src in priors:
        beside = Path(src).parent / POOL
        if Path(src).is_file() and beside.is_file():
            rate = _tokens_in(beside, query_ids)
            if rate is not None:
                return rate
    return None


def _tokens_in(pool: Path, query_ids: set[str]) -> TokenRate | None:
    count = _TokenCount()
    read_pool(pool, None, count.add)
    return count.rate(str(pool), query_ids)


def _check_same_run(run_dir: Path, cfg: SynthConfig) -> None:
    """A run directory planned from must hold a run of this config (as `dart synth` would
    resume it)."""
    old = read_run_config(run_dir / CONFIG)
    if old is None:
        return
    diffs = meaning_diff(old, cfg.to_dict())
    if diffs:
        raise ResumeRefused(
            f"{run_dir} holds a run made with a different config, so its pool says nothing "
            "about this one:\n  " + "\n  ".join(diffs) + "\nPlan with another --run-dir."
        )


def throughput_of(
    tokens_per_s: float | None, replicas: int, gpus_per_replica: int
) -> Throughput | None:
    """The throughput options, checked (None without a tokens/s figure)."""
    if tokens_per_s is None:
        return None
    if not (math.isfinite(tokens_per_s) and tokens_per_s > 0):
        raise ConfigError(f"--tokens-per-s must be a positive number, got {tokens_per_s}")
    return Throughput(tokens_per_s, replicas, gpus_per_replica)


def plan_config(
    config_path: str | None, values: dict[str, object], rates_from: list[str]
) -> tuple[SynthConfig, list[str], list[str] | None]:
    """The run config to plan, its notes, and the priors to read for pass rates only: for
    Prop2Diff, `rates_from` is the config's prior (as `dart synth --difficulty-from`); the other
    strategies take no prior, so the plan reads it apart."""
    if not rates_from:
        cfg, notes = resolve_config(config_path, values)
        return cfg, notes, None
    prior = rates_from[0] if len(rates_from) == 1 else rates_from
    try:
        cfg, notes = resolve_config(config_path, {**values, "strategy.difficulty_from": prior})
        return cfg, notes, None
    except ConfigError as as_prior:
        cfg, notes = resolve_config(config_path, values)
        if cfg.strategy.name == "prop2diff":
            raise as_prior from None
        return cfg, notes, rates_from
