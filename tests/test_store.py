"""Run directory: torn last lines are cut, damaged pools are reported, resume is checked."""

from __future__ import annotations

import json

import pytest

from dartmath.errors import InputError, ResumeRefused, RunDirError
from dartmath.record import QueryAccumulator
from dartmath.synth.store import RunStore, sum_sessions
from synth_helpers import lock_held_by_another_process


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


def test_integer_query_ids_in_a_pool_match_the_run_s_string_ids(tmp_path):
    s = RunStore(tmp_path)
    s.prepare({"model": "m"})
    s.append([{**_rec("a", 0, True), "query_id": 7}])
    s.close()
    st = RunStore(tmp_path).load_pool(["7"])
    assert st.verdicts == {"7": [True]}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("query_id", True, "query_id': expected a string or an integer, got boolean"),
        ("correct", "yes", "correct': expected true or false, got string"),
        ("sample_idx", None, "sample_idx': missing or not an integer"),
    ],
)
def test_bad_field_in_the_pool_names_line_and_field(tmp_path, field, value, message):
    s = RunStore(tmp_path)
    s.prepare({"model": "m"})
    s.append([_rec("a", 0, True), {**_rec("a", 1, True), field: value}])
    s.close()
    with pytest.raises(InputError, match=f"pool.jsonl:2: field '{message}"):
        RunStore(tmp_path).load_pool(["a", "7"])


def test_second_process_on_the_same_run_directory_is_refused(tmp_path):
    with lock_held_by_another_process(tmp_path) as pid:
        refused = pytest.raises(ResumeRefused, match=rf"in use by another dart synth \(pid {pid}\)")
        with refused, RunStore(tmp_path).lock():
            pass
    with RunStore(tmp_path).lock():  # free again once the holder has ended
        pass


def test_sessions_are_recorded_at_start_and_a_dead_one_is_marked_killed(tmp_path):
    s = RunStore(tmp_path)
    s.prepare({"model": "m"})
    s.begin_session({"outcome": "running", "pool_lines_written": 0})
    on_disk = json.loads((tmp_path / "run_summary.json").read_text())
    assert [x["outcome"] for x in on_disk["sessions"]] == ["running"]
    s.update_session({"outcome": "running", "pool_lines_written": 5}, {"queries": 1})
    on_disk = json.loads((tmp_path / "run_summary.json").read_text())
    assert on_disk["totals"]["pool_lines_written"] == 5 and on_disk["queries"] == {"queries": 1}
    # the process dies here; the next session finds the record still running
    t = RunStore(tmp_path)
    t.begin_session({"outcome": "running", "pool_lines_written": 0})
    t.update_session({"outcome": "done", "pool_lines_written": 2}, {"queries": 1})
    on_disk = json.loads((tmp_path / "run_summary.json").read_text())
    assert [x["outcome"] for x in on_disk["sessions"]] == ["killed", "done"]
    assert on_disk["totals"]["sessions"] == 2 and on_disk["totals"]["pool_lines_written"] == 7


def test_unreadable_summary_is_an_input_error(tmp_path):
    (tmp_path / "run_summary.json").write_text("{not json")
    with pytest.raises(InputError, match="run_summary.json: not a readable run summary"):
        RunStore(tmp_path).read_summary()


def test_run_directory_that_cannot_be_written_is_a_run_dir_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunDirError, match="cannot write the run directory"):
        RunStore(blocker / "run").prepare({"model": "m"})
    s = RunStore(tmp_path / "run")
    s.prepare({"model": "m"})
    s.pool_path.mkdir()  # appending to the pool fails
    with pytest.raises(RunDirError, match="pool.jsonl: cannot write the run directory"):
        s.append([_rec("a", 0, True)])


def test_session_totals_add_up():
    s1 = {"seconds": 10.0, "tokens_generated": 100, "pool_lines_written": 5, "grader": {"items": 5}}
    s2 = {"seconds": 30.0, "tokens_generated": 300, "pool_lines_written": 7, "grader": {"items": 8}}
    tot = sum_sessions([s1, s2])
    assert tot["tokens_per_s"] == 10.0 and tot["pool_lines_written"] == 12
    assert tot["grader"] == {"items": 13} and tot["sessions"] == 2
