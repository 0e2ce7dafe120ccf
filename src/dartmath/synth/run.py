"""`dart synth` as a library call: config in, run directory out.

Order matters for a user's time: everything that can be wrong with the inputs (config, queries,
prior, run directory) is checked before the engine starts, because the engine takes from
seconds (CPU, tiny model) to minutes (GPU, 7B) to come up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from dartmath.grading.async_grader import AsyncGrader
from dartmath.queries import Query, load_pass_rates, load_queries
from dartmath.sampling.base import Sampler
from dartmath.sampling.prompts import PromptTemplate, get_template
from dartmath.stats import QueryAccumulator
from dartmath.synth.config import SynthConfig
from dartmath.synth.pipeline import Pipeline, SessionTotals
from dartmath.synth.progress import SynthProgress
from dartmath.synth.scheduler import Scheduler
from dartmath.synth.store import RunStore

log = logging.getLogger(__name__)

SamplerFactory = Callable[[SynthConfig, PromptTemplate], Awaitable[Sampler]]


@dataclass
class SynthOutcome:
    """What a `dart synth` invocation did, for the CLI to print."""

    run_dir: str
    resumed: bool
    outcome: str  # done | interrupted | error | nothing-to-do
    session: SessionTotals | None
    summary: dict[str, Any]
    engine_start_seconds: float = 0.0


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
    prior = None
    if cfg.strategy.difficulty_from:
        rates = load_pass_rates(cfg.strategy.difficulty_from)
        prior = {q.query_id: rates[q.query_id] for q in queries if q.query_id in rates}
        missing = [q.query_id for q in queries if q.query_id not in rates]
        if missing:
            raise ValueError(
                f"{cfg.strategy.difficulty_from}: no pass_rate for {len(missing)} of "
                f"{len(queries)} queries (e.g. {', '.join(missing[:5])}); the prior must cover "
                "every query (match on query_id)"
            )
    return Scheduler(
        [q.query_id for q in queries],
        cfg.strategy_spec(),
        max_raw=cfg.strategy.max_raw,
        budget=cfg.strategy.budget,
        prior=prior,
    )


def sampling_params(cfg: SynthConfig, template: PromptTemplate) -> dict[str, Any]:
    """The sampling settings both backends send: the template's stops first, then the config's."""
    return {
        "temperature": cfg.sampling.temperature,
        "top_p": cfg.sampling.top_p,
        "max_tokens": cfg.sampling.max_tokens,
        "stop": list(dict.fromkeys([*template.stop, *cfg.sampling.stop])) or None,
    }


async def start_sampler(cfg: SynthConfig, template: PromptTemplate) -> Sampler:
    """The sampler `backend.name` asks for."""
    if cfg.backend.name == "openai":
        return await start_openai(cfg, template)
    return await start_vllm(cfg, template)


def endpoint_list(cfg: SynthConfig) -> list[str]:
    """`backend.endpoints` followed by those of `backend.endpoints_file`."""
    from dartmath.sampling.openai_http import read_endpoints_file

    urls = list(cfg.backend.endpoints)
    if cfg.backend.endpoints_file:
        urls += read_endpoints_file(cfg.backend.endpoints_file)
    return urls


def api_key(cfg: SynthConfig) -> str | None:
    """The servers' API key, from the environment variable `backend.api_key_env` names."""
    name = cfg.backend.api_key_env
    if name is None:
        return None
    key = os.environ.get(name)
    if not key:
        raise ValueError(f"backend.api_key_env: the environment variable {name} is not set")
    return key


async def start_openai(cfg: SynthConfig, template: PromptTemplate) -> Sampler:
    """A fleet of OpenAI-compatible servers; the prompt is rendered here, as in-process."""
    from dartmath.sampling.models import resolve_model
    from dartmath.sampling.openai_http import HTTPOptions, OpenAISampler

    b = cfg.backend
    options = HTTPOptions(
        served_model_name=b.served_model_name,
        api_key=api_key(cfg),
        limit_per_endpoint=b.max_inflight_per_endpoint,
        connect_timeout=b.connect_timeout,
        request_timeout=b.request_timeout,
        startup_timeout=b.startup_timeout,
        request_seed=b.request_seed,
        extra_body=dict(b.extra_body),
    )
    tokenizer_source = None
    if template.use_chat_template:
        tokenizer_source = b.tokenizer or resolve_model(cfg.model)
    return await OpenAISampler.start(
        endpoint_list(cfg),
        sampling_params(cfg, template),
        options,
        add_special_tokens=template.name != "chat",
        tokenizer_source=tokenizer_source,
        capacity=cfg.run.max_inflight,
    )


async def start_vllm(cfg: SynthConfig, template: PromptTemplate) -> Sampler:
    """The default sampler: vLLM in this process (GPU build or CPU build)."""
    from dartmath.sampling.models import resolve_model
    from dartmath.sampling.vllm_engine import VLLMSampler

    sampling = sampling_params(cfg, template)
    engine = dict(cfg.engine)
    # vLLM seeds its sampler with 0 by default: a resumed session would draw the samples of
    # the first session again. Unless the config fixes a seed, each session gets its own.
    engine.setdefault("seed", secrets.randbits(31))
    return await VLLMSampler.start(
        resolve_model(cfg.model),
        engine,
        sampling,
        add_special_tokens=template.name != "chat",
        capacity=cfg.run.max_inflight,
    )


async def synth(
    cfg: SynthConfig,
    *,
    force: bool = False,
    progress: bool = True,
    sampler_factory: SamplerFactory = start_sampler,
    shutdown_sampler: bool = True,
) -> SynthOutcome:
    """Run (or resume) the synthesis described by `cfg` in `cfg.run.dir`."""
    assert cfg.run.dir is not None
    queries = load_run_queries(cfg)
    if cfg.backend.name == "openai":
        endpoint_list(cfg)  # a missing or empty endpoints file is an input error: before all else
        api_key(cfg)
    template = get_template(cfg.prompt.template, cfg.prompt.instruction)
    scheduler = make_scheduler(cfg, queries)
    store = RunStore(cfg.run.dir)
    resumed = store.prepare(cfg.to_dict(), force=force)

    acc = QueryAccumulator(store.pool_path)
    pool = store.load_pool([q.query_id for q in queries], acc)
    if pool.torn_bytes:
        log.warning("%s: cut off a torn last line (%d bytes)", store.pool_path, pool.torn_bytes)
    for qid, verdicts in pool.verdicts.items():
        scheduler.restore(qid, verdicts)

    summary = store.read_summary()
    line_fields = {"model": cfg.model, "prompt_template": cfg.prompt.template}
    if scheduler.done:
        pipe = _pipeline(queries, {}, None, None, scheduler, store, acc, pool.next_idx, line_fields)
        pipe.write_query_info()
        return SynthOutcome(str(store.dir), resumed, "nothing-to-do", None, summary)

    grader = AsyncGrader(workers=cfg.grader.workers, timeout=cfg.grader.timeout)
    sampler = None
    bar = None
    try:
        t0 = time.monotonic()
        sampler = await sampler_factory(cfg, template)
        engine_start = time.monotonic() - t0
        tokenizer = getattr(sampler, "tokenizer", lambda: None)()
        prompts = {q.query_id: template.render(q.query, tokenizer) for q in queries}
        done_before = sum(1 for st in scheduler.states() if st.stop_reason is not None)
        bar = SynthProgress(len(queries), done_before, enabled=progress)
        pipe = _pipeline(
            queries,
            prompts,
            sampler,
            grader,
            scheduler,
            store,
            acc,
            pool.next_idx,
            line_fields,
            bar,
        )
        totals = await pipe.run()
    finally:
        if bar is not None:
            bar.close()
        grader.close()
        store.close()
        if shutdown_sampler and sampler is not None:
            if hasattr(sampler, "aclose"):
                await sampler.aclose()
            elif hasattr(sampler, "shutdown"):
                sampler.shutdown()

    session = asdict(totals)
    session["engine_start_seconds"] = round(engine_start, 3)
    session["engine_seed"] = getattr(sampler, "seed", None)
    session["backend"] = cfg.backend.name
    if hasattr(sampler, "stats"):
        session["backend_stats"] = sampler.stats()
    summary.setdefault("sessions", []).append(session)
    summary["totals"] = _sum_sessions(summary["sessions"])
    summary["queries"] = _query_totals(pipe)
    store.write_summary(summary)
    return SynthOutcome(str(store.dir), resumed, totals.outcome, totals, summary, engine_start)


def _pipeline(queries, prompts, sampler, grader, scheduler, store, acc, next_idx, fields, bar=None):
    return Pipeline(
        queries=queries,
        prompts=prompts,
        sampler=sampler,
        grader=grader,
        scheduler=scheduler,
        store=store,
        accumulator=acc,
        next_idx=next_idx,
        line_fields=fields,
        on_progress=bar,
    )


_SUMMED = (
    "seconds",
    "samples_started",
    "samples_finished",
    "samples_cancelled",
    "samples_late",
    "pool_lines_written",
    "correct_written",
    "tokens_generated",
    "requests",
    "engine_start_seconds",
)


def _sum_sessions(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    tot: dict[str, Any] = {k: 0 for k in _SUMMED}
    grader: dict[str, int] = {}
    for s in sessions:
        for k in _SUMMED:
            tot[k] += s.get(k, 0) or 0
        for k, v in (s.get("grader") or {}).items():
            grader[k] = grader.get(k, 0) + v
    tot["seconds"] = round(tot["seconds"], 3)
    tot["engine_start_seconds"] = round(tot["engine_start_seconds"], 3)
    tot["tokens_per_s"] = (
        round(tot["tokens_generated"] / tot["seconds"], 2) if tot["seconds"] else 0
    )
    tot["grader"] = grader
    tot["sessions"] = len(sessions)
    return tot


def _query_totals(pipe: Pipeline) -> dict[str, Any]:
    rows = pipe.query_info_rows()
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


def run_synth(cfg: SynthConfig, **kwargs: Any) -> SynthOutcome:
    """Synchronous entry point (the CLI's)."""
    return asyncio.run(synth(cfg, **kwargs))
