"""`dart synth` as a library call: config in, run directory out.

Order matters for a user's time: everything that can be wrong with the inputs (config, installed
extras, queries, prior, run directory) is checked before the engine starts, because the engine
takes from seconds (CPU, tiny model) to minutes (GPU, 7B) to come up. The session is recorded in
`run_summary.json` before the engine starts and updated as it goes, so a session that fails,
is interrupted or is killed still has its record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from dartmath.errors import DartError, InputError
from dartmath.grading.async_grader import AsyncGrader
from dartmath.queries import Query, load_pass_rates, load_queries
from dartmath.record import QueryAccumulator
from dartmath.sampling.backends import check_backend, start_sampler
from dartmath.sampling.base import Sampler
from dartmath.sampling.prompts import PromptTemplate, get_template
from dartmath.synth.config import SynthConfig
from dartmath.synth.outcome import SynthOutcome
from dartmath.synth.pipeline import Pipeline, SessionTotals, now
from dartmath.synth.progress import SynthProgress
from dartmath.synth.scheduler import Scheduler
from dartmath.synth.store import RunStore
from dartmath.synth.strategies import MissingPriorError

log = logging.getLogger(__name__)

SamplerFactory = Callable[[SynthConfig, PromptTemplate], Awaitable[Sampler]]


def load_run_queries(cfg: SynthConfig) -> list[Query]:
    q = cfg.queries
    assert q.source is not None
    return load_queries(
        q.source,
        preset=q.preset,
        fields=q.fields or None,
        config=q.config,
        split=q.split,
        limit=q.limit,
    )


def make_scheduler(cfg: SynthConfig, queries: list[Query]) -> Scheduler:
    """The scheduler for this run, with a Prop2Diff prior loaded when the config names one."""
    source = cfg.strategy.difficulty_from
    prior = load_pass_rates(source) if source else None
    try:
        return Scheduler(
            [q.query_id for q in queries],
            cfg.strategy_spec(),
            max_raw=cfg.strategy.max_raw,
            budget=cfg.strategy.budget,
            prior=prior,
        )
    except MissingPriorError as e:
        raise InputError(source, None, f"{e} (the prior is matched on query_id)") from None


async def synth(
    cfg: SynthConfig,
    *,
    force: bool = False,
    progress: bool = True,
    sampler_factory: SamplerFactory | None = None,
    shutdown_sampler: bool = True,
) -> SynthOutcome:
    """Run (or resume) the synthesis described by `cfg` in `cfg.run.dir`.

    A user error raises a DartError; an interrupted run returns with outcome `interrupted`.
    `sampler_factory` (default: the backend the config names) starts the sampler.
    Whatever ends the session, its record in `run_summary.json` says how it ended.
    """
    assert cfg.run.dir is not None
    template = get_template(cfg.prompt.template, cfg.prompt.instruction)
    check_backend(cfg, template)
    queries = load_run_queries(cfg)
    scheduler = make_scheduler(cfg, queries)
    store = RunStore(cfg.run.dir)
    with store.lock():
        resumed = store.prepare(cfg.to_dict(), force=force)
        acc = QueryAccumulator(store.pool_path)
        pool = store.load_pool([q.query_id for q in queries], acc)
        if pool.torn_bytes:
            log.warning("%s: cut off a torn last line (%d bytes)", store.pool_path, pool.torn_bytes)
        for qid, verdicts in pool.verdicts.items():
            scheduler.restore(qid, verdicts)
        session = _Session(cfg, store, queries, scheduler, acc, pool.next_idx)
        if scheduler.done:
            store.write_query_info(session.query_info_rows())
            summary = store.read_summary()
            return SynthOutcome(str(store.dir), resumed, "nothing-to-do", None, summary)
        try:
            factory = sampler_factory or start_sampler
            totals = await session.run(template, factory, progress, shutdown_sampler)
        finally:
            store.close()
    return SynthOutcome(
        str(store.dir), resumed, totals.outcome, totals, session.summary, session.engine_start
    )


class _Session:
    """One `dart synth` session over a locked, prepared run directory, and its record."""

    def __init__(
        self,
        cfg: SynthConfig,
        store: RunStore,
        queries: list[Query],
        scheduler: Scheduler,
        acc: QueryAccumulator,
        next_idx: dict[str, int],
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.queries = queries
        self.scheduler = scheduler
        self.acc = acc
        self.next_idx = next_idx
        self.totals = SessionTotals(started_at=now())
        self.sampler: Sampler | None = None
        self.engine_start = 0.0
        self.error: str | None = None
        self.summary: dict[str, Any] = {}

    def query_info_rows(self) -> list[dict[str, Any]]:
        rows = []
        for q in self.queries:
            st = self.scheduler.state(q.query_id)
            rows.append(self.acc.run_row(q, st.target, st.stop_reason))
        return rows

    async def run(
        self,
        template: PromptTemplate,
        sampler_factory: SamplerFactory,
        progress: bool,
        shutdown_sampler: bool,
    ) -> SessionTotals:
        cfg = self.cfg
        self.store.begin_session(self.record())
        grader = None
        bar = None
        try:
            grader = AsyncGrader(workers=cfg.grader.workers, timeout=cfg.grader.timeout)
            t0 = time.monotonic()
            self.sampler = await sampler_factory(cfg, template)
            self.engine_start = time.monotonic() - t0
            tokenizer = self.sampler.tokenizer()
            prompts = {q.query_id: template.render(q.query, tokenizer) for q in self.queries}
            done_before = sum(1 for st in self.scheduler.states() if st.stop_reason is not None)
            bar = SynthProgress(
                len(self.queries), done_before, enabled=progress, log_every=cfg.run.log_every
            )
            pipe = Pipeline(
                queries=self.queries,
                prompts=prompts,
                sampler=self.sampler,
                grader=grader,
                scheduler=self.scheduler,
                store=self.store,
                accumulator=self.acc,
                next_idx=self.next_idx,
                run_fields={"model": cfg.model, "prompt_template": cfg.prompt.template},
                totals=self.totals,
                on_progress=bar,
                on_checkpoint=lambda _pipe: self.save(),
            )
            await pipe.run()
        except BaseException as e:
            self.totals.outcome = "interrupted" if _interrupt(e) else "error"
            self.totals.ended_at = self.totals.ended_at or now()
            if not _interrupt(e):
                self.error = str(e) if isinstance(e, DartError) else f"{type(e).__name__}: {e}"
            raise
        finally:
            if bar is not None:
                bar.close()
            if grader is not None:
                grader.close()
            if shutdown_sampler and self.sampler is not None:
                await self.sampler.aclose()
            self.save()
        return self.totals

    def record(self) -> dict[str, Any]:
        """This session's entry in `run_summary.json`."""
        rec = asdict(self.totals)
        rec["engine_start_seconds"] = round(self.engine_start, 3)
        rec["backend"] = self.cfg.backend.name
        if self.sampler is not None:
            rec["engine_seed"] = self.sampler.seed
            stats = self.sampler.stats()
            if stats:
                rec["backend_stats"] = stats
        if self.error is not None:
            rec["error"] = self.error
        return rec

    def save(self) -> None:
        """Rewrite query-info, this session's record and the run's query counts."""
        rows = self.query_info_rows()
        self.store.write_query_info(rows)
        self.summary = self.store.update_session(self.record(), _query_totals(rows))


def _query_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's queries and pool lines as `run_summary.json` sums them up."""
    reasons: dict[str, int] = {}
    for r in rows:
        key = r["stop_reason"] or "unfinished"
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "queries": len(rows),
        "pool_lines": sum(r["tot_n_samples"] for r in rows),
        "correct": sum(r["tot_n_corrects"] for r in rows),
        "no_answer": sum(r["n_no_answer"] for r in rows),
        "grade_errors": sum(r["n_grade_errors"] for r in rows),
        "stop_reasons": reasons,
    }


def _interrupt(e: BaseException) -> bool:
    return isinstance(e, KeyboardInterrupt | asyncio.CancelledError)


def run_synth(cfg: SynthConfig, **kwargs: Any) -> SynthOutcome:
    """Synchronous entry point (the CLI's)."""
    return asyncio.run(synth(cfg, **kwargs))
