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

from dartmath.errors import DartError, InputError, ResumeRefused
from dartmath.grading.async_grader import AsyncGrader
from dartmath.plan.predict import plan_from_scheduler
from dartmath.queries import Query, QuerySource, load_query_sources
from dartmath.queries.priors import PriorMatch, load_prior
from dartmath.record import QueryAccumulator
from dartmath.sampling.backends import check_backend, event_loop_factory, start_sampler
from dartmath.sampling.base import Sampler
from dartmath.sampling.prompts import CHANGED_SINCE_UNRECORDED, PromptTemplate, get_template
from dartmath.stats import cut_short
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
    """The queries of every source the config names, each with its source's name, ids unique
    across sources (`load_query_sources`)."""
    sources = []
    for q in cfg.query_sources():
        assert q.source is not None
        sources.append(
            QuerySource(q.source, q.label, q.preset, q.fields or None, q.config, q.split, q.limit)
        )
    return load_query_sources(sources)


_MATCHED_ON = {
    "auto": "The prior is matched on query_id, else on the query text (prior_match: auto)",
    "query_id": "The prior is matched on query_id only (prior_match: query_id)",
    "query": "The prior is matched on the query text only (prior_match: query)",
}


def load_run_prior(cfg: SynthConfig, queries: list[Query]) -> PriorMatch | None:
    """The Prop2Diff priors of the config (`strategy.difficulty_from`) read and matched to the
    queries (`strategy.prior_match`); None without a prior."""
    sources = cfg.strategy.difficulty_sources()
    return load_prior(sources, queries, cfg.strategy.prior_match) if sources else None


def make_scheduler(
    cfg: SynthConfig,
    queries: list[Query],
    match: PriorMatch | None,
    note: Callable[[str], None] = log.info,
) -> Scheduler:
    """The scheduler for this run. With a Prop2Diff prior's `match` (`load_run_prior`), `note`
    gets its match report; the queries with no match are probed (`strategy.n_probe`), or
    without a probe the run is refused (InputError, with the report)."""
    s = cfg.strategy
    try:
        scheduler = Scheduler(
            [q.query_id for q in queries],
            cfg.strategy_spec(),
            max_raw=s.max_raw,
            budget=s.budget,
            prior=match.pass_rates if match is not None else None,
            stop=cfg.run.stop,
        )
    except MissingPriorError as e:
        assert match is not None  # only a prior can lack queries
        raise InputError(
            ", ".join(s.difficulty_sources()),
            None,
            f"{e}: strategy.n_probe (--n-probe) probes each query the prior lacks with that many "
            f"samples. {_MATCHED_ON[s.prior_match]}:\n{match.report()}",
        ) from None
    if match is not None:
        probed = f"probed with n_probe={s.n_probe} samples each" if match.unmatched else ""
        note(match.report(probed))
    return scheduler


def check_prompt_format(summary: dict[str, Any], template: PromptTemplate, run_dir: Any) -> None:
    """Refuse to resume a run whose prompts were rendered from another text of its template:
    the one the run recorded, or (a run made before runs recorded it) the text a template had
    before it changed. ResumeRefused names what changed."""
    recorded = summary.get("prompt_format")
    if recorded is not None:
        if recorded.get("fingerprint") == template.fingerprint():
            return
        why = f"the text of prompt template {template.name!r} differs from the one it was made with"
    elif summary.get("sessions") and template.name in CHANGED_SINCE_UNRECORDED:
        why = (
            f"it was made by an earlier dartmath with the old text of prompt template "
            f"{template.name!r}: {CHANGED_SINCE_UNRECORDED[template.name]}"
        )
    else:
        return
    raise ResumeRefused(
        f"{run_dir}: {why}; resuming would mix two prompt renderings in one pool.\n"
        "Use another run directory, or --force to resume anyway."
    )


async def synth(
    cfg: SynthConfig,
    *,
    force: bool = False,
    progress: bool = True,
    sampler_factory: SamplerFactory | None = None,
    shutdown_sampler: bool = True,
    note: Callable[[str], None] = log.info,
) -> SynthOutcome:
    """Run (or resume) the synthesis described by `cfg` in `cfg.run.dir`.

    A user error raises a DartError; an interrupted run returns with outcome `interrupted`.
    `sampler_factory` (default: the backend the config names) starts the sampler. `note` gets
    what the user should see before the engine starts (how a Prop2Diff prior matched).
    Whatever ends the session, its record in `run_summary.json` says how it ended.
    """
    assert cfg.run.dir is not None
    template = get_template(cfg.prompt.template, cfg.prompt.instruction)
    check_backend(cfg, template)
    queries = load_run_queries(cfg)
    match = load_run_prior(cfg, queries)
    scheduler = make_scheduler(cfg, queries, match, note)
    store = RunStore(cfg.run.dir)
    with store.lock():
        resumed = store.prepare(cfg.to_dict(), force=force)
        if resumed and not force:
            check_prompt_format(store.read_summary(), template, store.dir)
        acc = QueryAccumulator(store.pool_path)
        pool = store.load_pool([q.query_id for q in queries], acc)
        if pool.torn_bytes:
            log.warning("%s: cut off a torn last line (%d bytes)", store.pool_path, pool.torn_bytes)
        for qid, verdicts in pool.verdicts.items():
            scheduler.restore(qid, verdicts, pool.next_idx[qid])
        session = _Session(cfg, store, queries, scheduler, acc)
        if not scheduler.done:
            plan = plan_from_scheduler(cfg, queries, scheduler, match, resumed=resumed)
            if plan.totals.planned:
                note(plan.headline())
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
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.queries = queries
        self.scheduler = scheduler
        self.acc = acc
        self.totals = SessionTotals(started_at=now())
        self.sampler: Sampler | None = None
        self.engine_start = 0.0
        self.error: str | None = None
        self.summary: dict[str, Any] = {}

    def query_info_rows(self) -> list[dict[str, Any]]:
        rows = []
        counts_correct = self.cfg.strategy_spec().counts_correct
        for q in self.queries:
            st = self.scheduler.state(q.query_id)
            rows.append(self.acc.run_row(q, st.target, st.stop_reason, counts_correct))
        return rows

    async def run(
        self,
        template: PromptTemplate,
        sampler_factory: SamplerFactory,
        progress: bool,
        shutdown_sampler: bool,
    ) -> SessionTotals:
        cfg = self.cfg
        fmt = {"template": template.name, "fingerprint": template.fingerprint()}
        self.store.begin_session(self.record(), fmt)
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
        rec["stop"] = self.cfg.run.stop  # the stop rule (an older session: first-finished)
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
    """The run's queries and pool lines as `run_summary.json` sums them up; `cut_short`: per
    cap, the queries it stopped and how far short of their targets (`stats.cut_short`)."""
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
        "cut_short": cut_short(rows),
    }


def _interrupt(e: BaseException) -> bool:
    return isinstance(e, KeyboardInterrupt | asyncio.CancelledError)


def run_synth(cfg: SynthConfig, **kwargs: Any) -> SynthOutcome:
    """Synchronous entry point (the CLI's), on the event loop the backend is best served by."""
    with asyncio.Runner(loop_factory=event_loop_factory(cfg)) as runner:
        return runner.run(synth(cfg, **kwargs))
