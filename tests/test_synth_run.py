"""`synth/run.py` pieces that need no engine: the Prop2Diff prior, resuming an older run."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from dartmath.errors import InputError
from dartmath.synth.config import load_config
from dartmath.synth.run import load_run_queries, make_scheduler, synth
from scripted_sampler import ScriptedSampler


def _cfg(tmp_path, prior_rows):
    q = tmp_path / "q.jsonl"
    q.write_text(
        "".join(
            json.dumps({"query_id": f"q{i}", "query": f"What is {i} + 1?", "gt_ans": str(i + 1)})
            + "\n"
            for i in range(4)
        )
    )
    prior = tmp_path / "query_info.jsonl"
    prior.write_text("".join(json.dumps(r) + "\n" for r in prior_rows))
    return load_config(
        None,
        {
            "queries.source": str(q),
            "run.dir": str(tmp_path / "run"),
            "strategy.k_p": 10,
            "strategy.difficulty_from": str(prior),
            "strategy.max_raw": 100,
        },
    )


def test_prior_from_a_query_info_file_sets_prop2diff_targets(tmp_path):
    rows = [{"query_id": f"q{i}", "pass_rate": p} for i, p in enumerate([1.0, 0.75, 0.5, 0.0])]
    rows.append({"query_id": "not-in-this-run", "pass_rate": 0.3})  # extra ids are fine
    cfg = _cfg(tmp_path, rows)
    sched = make_scheduler(cfg, load_run_queries(cfg))
    assert [sched.state(f"q{i}").target for i in range(4)] == [1, 3, 5, 10]


def test_prior_missing_queries_is_an_error_naming_them(tmp_path):
    cfg = _cfg(tmp_path, [{"query_id": "q0", "pass_rate": 0.5}])
    with pytest.raises(
        InputError,
        match=r"query_info.jsonl: the Prop2Diff prior has no pass rate "
        r"for 3 of 4 queries \(e\.g\. 'q1', 'q2', 'q3'\)",
    ) as e:
        make_scheduler(cfg, load_run_queries(cfg))
    assert "matched on query_id" in str(e.value)


OLD_RUN = Path(__file__).parent / "data" / "run_84e762b"  # made by dartmath at 84e762b


def test_a_run_directory_of_the_version_before_the_record_module_resumes(tmp_path, monkeypatch):
    """The version before this layout wrote its summary only at a session's end, had no lock
    file and no `run.log_every`; its interrupted run (3 queries, uniform k_u=2, max_raw 6;
    a met its target, b has 3 wrong samples, c none) resumes and keeps all it wrote."""
    shutil.copytree(OLD_RUN, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")  # its config names q.jsonl and run relative to here
    pool = Path("run/pool.jsonl")
    old_pool = pool.read_bytes()
    old_session = json.loads(Path("run/run_summary.json").read_text())["sessions"][0]
    cfg = load_config(
        None,
        {
            "queries.source": "q.jsonl",
            "run.dir": "run",
            "prompt.template": "alpaca",
            "strategy.name": "uniform",
            "strategy.k_u": 2,
            "strategy.max_raw": 6,
            "grader.workers": 1,
        },
    )

    def right_for_b_wrong_for_c(prompt: str, k: int) -> str:
        return "The answer is 4." if "2 + 2" in prompt else "The answer is 0."

    async def factory(cfg, template):
        return ScriptedSampler(right_for_b_wrong_for_c)

    outcome = asyncio.run(synth(cfg, progress=False, sampler_factory=factory))

    assert outcome.resumed and outcome.outcome == "done"
    assert pool.read_bytes().startswith(old_pool)  # nothing written before is touched
    lines = [json.loads(line) for line in pool.read_text().splitlines()]
    assert sorted(r["sample_idx"] for r in lines if r["query_id"] == "b") == [0, 1, 2, 3, 4]
    assert sum(r["query_id"] == "a" for r in lines) == 2  # a was done: not sampled again
    rows = {
        r["query_id"]: r
        for r in map(json.loads, Path("run/query_info.jsonl").read_text().splitlines())
    }
    assert {q: (r["tot_n_corrects"], r["stop_reason"]) for q, r in rows.items()} == {
        "a": (2, "target_met"),
        "b": (2, "target_met"),
        "c": (0, "max_raw"),
    }
    summary = json.loads(Path("run/run_summary.json").read_text())
    assert summary["sessions"][0] == old_session
    assert [s["outcome"] for s in summary["sessions"]] == ["interrupted", "done"]
    assert summary["totals"]["pool_lines_written"] == len(lines)
