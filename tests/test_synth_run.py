"""`synth/run.py` pieces that need no engine: the Prop2Diff prior and the run summary sums."""

from __future__ import annotations

import json

import pytest

from dartmath.synth.config import load_config
from dartmath.synth.run import _sum_sessions, load_run_queries, make_scheduler


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
    with pytest.raises(ValueError, match=r"no pass_rate for 3 of 4 queries \(e\.g\. q1, q2, q3\)"):
        make_scheduler(cfg, load_run_queries(cfg))


def test_session_totals_add_up():
    s1 = {"seconds": 10.0, "tokens_generated": 100, "pool_lines_written": 5, "grader": {"items": 5}}
    s2 = {"seconds": 30.0, "tokens_generated": 300, "pool_lines_written": 7, "grader": {"items": 8}}
    tot = _sum_sessions([s1, s2])
    assert tot["tokens_per_s"] == 10.0 and tot["pool_lines_written"] == 12
    assert tot["grader"] == {"items": 13} and tot["sessions"] == 2
