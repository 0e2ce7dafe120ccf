"""Run directory: torn last lines are cut, damaged pools are reported, resume is checked."""

from __future__ import annotations

import json

import pytest

from dartmath.io.jsonl import InputError
from dartmath.stats import QueryAccumulator
from dartmath.synth.store import ResumeRefused, RunStore


def _rec(qid, idx, correct):
    return {
        "query_id": qid,
        "sample_idx": idx,
        "query": f"q{qid}",
        "gt_ans": "1",
        "resp": "r",
        "ans": "1" if correct else "2",
        "correct": correct,
    }


def test_append_then_load_rebuilds_counts(tmp_path):
    s = RunStore(tmp_path / "run")
    s.prepare({"model": "m"})
    s.append([_rec("a", 0, True), _rec("a", 1, False)])
    s.append([_rec("b", 0, False)])
    s.close()
    acc = QueryAccumulator()
    st = RunStore(tmp_path / "run").load_pool(["a", "b"], acc)
    assert st.verdicts == {"a": [True, False], "b": [False]}
    assert st.next_idx == {"a": 2, "b": 1}
    assert st.torn_bytes == 0
    assert [r["tot_n_samples"] for r in acc.rows()] == [2, 1]


def test_torn_last_line_is_cut_and_the_rest_kept(tmp_path):
    s = RunStore(tmp_path)
    s.prepare({"model": "m"})
    s.append([_rec("a", 0, True), _rec("a", 1, True)])
    s.close()
    with open(s.pool_path, "ab") as f:
        f.write(b'{"query_id": "a", "sample_idx": 2, "resp": "half a li')
    st = RunStore(tmp_path).load_pool(["a"])
    assert st.verdicts == {"a": [True, True]} and st.torn_bytes > 0
    assert s.pool_path.read_bytes().endswith(b"}\n")
    assert len(s.pool_path.read_bytes().splitlines()) == 2


def test_damaged_line_in_the_middle_names_file_and_line(tmp_path):
    s = RunStore(tmp_path)
    s.prepare({"model": "m"})
    s.append([_rec("a", 0, True)])
    s.close()
    with open(s.pool_path, "ab") as f:
        f.write(b"{not json}\n")
        f.write(json.dumps(_rec("a", 1, True)).encode() + b"\n")
    with pytest.raises(InputError) as e:
        RunStore(tmp_path).load_pool(["a"])
    assert f"{s.pool_path}:2" in str(e.value)


def test_unknown_query_in_pool_is_an_error(tmp_path):
    s = RunStore(tmp_path)
    s.prepare({"model": "m"})
    s.append([_rec("zzz", 0, True)])
    s.close()
    with pytest.raises(InputError, match="query_id"):
        RunStore(tmp_path).load_pool(["a"])


def test_resume_with_other_meaning_is_refused_unless_forced(tmp_path):
    cfg = {"model": "m", "strategy": {"name": "uniform", "k_u": 4}, "engine": {"a": 1}}
    assert RunStore(tmp_path).prepare(cfg) is False
    RunStore(tmp_path).append([_rec("a", 0, True)])
    assert RunStore(tmp_path).prepare({**cfg, "engine": {"a": 2}}) is True  # engine: fine
    other = {**cfg, "strategy": {"name": "uniform", "k_u": 8}}
    with pytest.raises(ResumeRefused, match="strategy.k_u: 4 -> 8"):
        RunStore(tmp_path).prepare(other)
    assert RunStore(tmp_path).prepare(other, force=True) is True
