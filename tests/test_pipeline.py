"""The async pipeline with a scripted sampler (the real grader, scheduler and run store): exact
stops, cancelled requests, late verdicts not written, and counts that add up. The real engine is
driven by tests/test_synth_e2e.py; this one makes the interleavings deterministic."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from dartmath.grading.async_grader import AsyncGrader
from dartmath.queries import Query
from dartmath.record import QueryAccumulator, query_info_from_jsonl
from dartmath.synth.pipeline import Pipeline
from dartmath.synth.scheduler import Scheduler
from dartmath.synth.sizing import SizingPolicy
from dartmath.synth.store import RunStore
from dartmath.synth.strategies import StrategySpec
from scripted_sampler import ScriptedSampler


def scripted(capacity: int = 12) -> ScriptedSampler:
    """Query `easy` is always right, `hard` never, `rare` right on every 5th sample; the samples
    of `rare` after its third correct one never finish, so only cancelling them ends the run."""

    def answer(prompt: str, k: int) -> str | None:
        if prompt == "rare" and k >= 15:
            return None
        right = prompt == "easy" or (prompt == "rare" and k % 5 == 4)
        return f"The answer is {7 if right else 8}."

    return ScriptedSampler(answer, capacity)


@pytest.mark.parametrize("stop", ["submission-order", "first-finished"])
def test_pipeline_stops_exactly_and_accounts_for_every_sample(tmp_path, stop):
    queries = [Query(q, f"question {q}", "7", {"level": 1}) for q in ("easy", "hard", "rare")]
    spec = StrategySpec(name="uniform", k_u=3)

    async def main():
        store = RunStore(tmp_path)
        store.prepare({"model": "scripted"})
        grader = AsyncGrader(workers=1, timeout=10)
        # room for all: `rare` gets more in flight than its need as soon as it has a verdict
        sampler = scripted(capacity=100)
        # a careless sizing policy, so that queries often have more in flight than they need
        policy = SizingPolicy(waste_frac=0.9, z=0.5)
        ids = [q.query_id for q in queries]
        sched = Scheduler(ids, spec, max_raw=40, policy=policy, stop=stop)
        checkpoints = []
        pipe = Pipeline(
            queries=queries,
            prompts={q.query_id: q.query_id for q in queries},
            sampler=sampler,
            grader=grader,
            scheduler=sched,
            store=store,
            accumulator=acc,
            run_fields={"model": "scripted", "prompt_template": "chat"},
            on_checkpoint=lambda p: checkpoints.append(p.totals.pool_lines_written),
        )
        try:
            totals = await pipe.run()
        finally:
            grader.close()
            store.close()
        return totals, sched, checkpoints

    acc = QueryAccumulator("<pool>")
    totals, sched, checkpoints = asyncio.run(main())
    assert totals.outcome == "done"
    pool = [json.loads(x) for x in (tmp_path / "pool.jsonl").read_text().splitlines()]
    correct = Counter(r["query_id"] for r in pool if r["correct"])
    raw = Counter(r["query_id"] for r in pool)
    assert correct["easy"] == 3 and raw["easy"] == 3
    assert correct["rare"] == 3  # exact, though more than its need was in flight
    assert raw["hard"] == 40 and correct["hard"] == 0
    assert sched.state("hard").stop_reason == "max_raw"
    assert sched.state("rare").stop_reason == "target_met"
    # every started sample is written, cancelled in flight, or finished after its query stopped
    assert totals.samples_started == (
        totals.pool_lines_written + totals.samples_cancelled + totals.samples_late
    )
    assert totals.pool_lines_written == len(pool)
    assert totals.samples_cancelled > 0  # the abort path ran: `rare` had samples in flight
    # sample_idx: the submission order. Submission order keeps every sample up to the
    # target-th correct one and nothing after it: the indices are dense and the last is correct
    for qid in raw:
        lines = [r for r in pool if r["query_id"] == qid]
        idx = [r["sample_idx"] for r in lines]
        assert len(set(idx)) == len(idx)
        if stop == "submission-order":
            assert idx == list(range(raw[qid]))  # written in submission order, none skipped
            assert qid == "hard" or lines[-1]["correct"]
    assert checkpoints == [len(pool)]  # the last checkpoint sees every line written
    assert totals.seconds > 0 and totals.ended_at
    assert totals.grader["items"] == len(pool) + totals.samples_late  # every finished sample
    # the pipeline's running counts are the pool's own; a line keeps the query's metadata
    assert acc.rows() == query_info_from_jsonl(tmp_path / "pool.jsonl")
    by_query = {q.query_id: q for q in queries}
    row = acc.run_row(by_query["rare"], sched.state("rare").target, "target_met")
    assert row["target"] == 3 and row["level"] == 1 and row["tot_n_corrects"] == 3


def test_request_cancelled_before_its_first_step_is_accounted(tmp_path):
    """A query can meet its target in the same loop turn that launched more of its requests;
    cancelling a task that never ran must still free its slot and count its samples."""
    queries = [Query("easy", "question easy", "7", {})]

    async def main():
        store = RunStore(tmp_path)
        store.prepare({"model": "scripted"})
        sched = Scheduler(["easy"], StrategySpec(name="uniform", k_u=3), max_raw=40)
        pipe = Pipeline(
            queries=queries,
            prompts={"easy": "easy"},
            sampler=scripted(),
            grader=None,
            scheduler=sched,
            store=store,
            accumulator=QueryAccumulator(store.pool_path),
            run_fields={},
        )
        try:
            pipe._launch()
            assert pipe._tasks
            for task in list(pipe._tasks.values()):
                task.cancel()  # before the task has taken a single step
            await pipe._cancel_all()
        finally:
            store.close()
        return pipe, sched

    pipe, sched = asyncio.run(main())
    assert not pipe._tasks and not pipe._blocks and pipe._in_flight() == 0
    assert pipe.totals.samples_cancelled == pipe.totals.samples_started > 0
    assert sched.state("easy").stop_reason is None
    assert sched.next_requests(100)  # the cancelled samples are the scheduler's to plan again
