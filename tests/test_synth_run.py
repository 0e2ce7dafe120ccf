"""`synth/run.py` pieces that need no engine: the Prop2Diff prior and the run summary sums."""

from __future__ import annotations

import json

import pytest

from dartmath.errors import InputError
from dartmath.synth.config import load_config
from dartmath.synth.run import load_run_queries, make_scheduler


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
