"""`dart synth` end to end on the real vLLM CPU engine with the embedded tiny model.

One engine serves the three strategy runs (starting one costs ~30 s on 2 cores); the
kill-and-resume test drives the real `dart synth` command in a subprocess, twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from math import ceil
from pathlib import Path

import pytest
import yaml

from dartmath.sampling.backends import start_vllm
from dartmath.sampling.prompts import get_template
from dartmath.synth.config import load_config
from dartmath.synth.run import synth
from synth_helpers import (
    check_pool_consistent,
    kill_if_running,
    query_info,
    synth_cmd,
    wait_for,
)

pytestmark = pytest.mark.slow

# Easy ones the tiny model solves most of the time (pass rate ~0.7-0.9 in calibration), and hard
# ones it almost never does, so that both stop reasons occur.
QUERIES = [
    ("add", "What is 10 + 10?", "20"),
    ("one-two", "What is 1 + 2?", "3"),
    ("times", "What is 2 times 3?", "6"),
    ("sub", "What is 91 - 47?", "44"),
    ("hard", "What is 123456789 times 987654321?", "121932631112635269"),
]
INSTRUCTION = (
    'Think step by step, briefly. Then write "The answer is" followed by the final number.'
)
ENGINE = {
    "dtype": "float32",  # bf16 is 4x slower on CPUs without AVX-512 (most of ours)
    "enforce_eager": True,
    "max_model_len": 512,
    "max_num_seqs": 32,
    "kv_cache_memory_bytes": 1 << 30,
}


def _base(tmp_path: Path, run_name: str, **strategy) -> dict:
    qfile = tmp_path / "queries.jsonl"
    if not qfile.exists():
        qfile.write_text(
            "".join(
                json.dumps({"query_id": i, "query": q, "gt_ans": a}) + "\n" for i, q, a in QUERIES
            )
        )
    return {
        "model": "embedded:smollm2-135m",
        "queries": {"source": str(qfile)},
        "prompt": {"template": "chat", "instruction": INSTRUCTION},
        "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64},
        "strategy": strategy,
        "engine": ENGINE,
        "grader": {"workers": 1, "timeout": 5.0},
        "run": {"dir": str(tmp_path / run_name)},
    }


def _cfg(d: dict):
    flat = {}
    for section, value in d.items():
        if isinstance(value, dict) and section != "engine":
            for k, v in value.items():
                flat[f"{section}.{k}"] = v
        else:
            flat[section] = value
    return load_config(None, flat)


@pytest.fixture(scope="module")
def strategy_runs(tmp_path_factory):
    """Run uniform, prop2diff and vrt on one engine; return their run directories."""
    tmp = tmp_path_factory.mktemp("synth")
    specs = {
        "uniform": {"name": "uniform", "k_u": 2, "max_raw": 8},
        "prop2diff": {"name": "prop2diff", "k_p": 3, "n_probe": 3, "max_raw": 8},
        "vrt": {"name": "vrt", "n_vrt": 3},
    }

    async def main():
        first = _cfg(_base(tmp, "uniform", **specs["uniform"]))
        sampler = await start_vllm(first, get_template("chat", first.prompt.instruction))
        outcomes = {}
        try:

            async def shared(cfg, template):
                return sampler

            for name, spec in specs.items():
                cfg = _cfg(_base(tmp, name, **spec))
                outcomes[name] = await synth(
                    cfg, progress=False, sampler_factory=shared, shutdown_sampler=False
                )
        finally:
            sampler.shutdown()
        return outcomes

    outcomes = asyncio.run(main())
    return tmp, outcomes


def test_uniform_stops_exactly_at_k_u_or_max_raw(strategy_runs):
    tmp, outcomes = strategy_runs
    assert outcomes["uniform"].outcome == "done"
    pool = check_pool_consistent(tmp / "uniform")
    info = query_info(tmp / "uniform")
    raw, correct = Counter(), Counter()
    for r in pool:
        raw[r["query_id"]] += 1
        correct[r["query_id"]] += r["correct"]
    for qid, *_ in QUERIES:
        row = info[qid]
        assert row["target"] == 2
        if row["stop_reason"] == "target_met":
            assert correct[qid] == 2  # exact: never one more
        else:
            assert row["stop_reason"] == "max_raw"
            assert raw[qid] == 8 and correct[qid] < 2
    # the last line of a query that met its target is its second correct response
    for qid, *_ in QUERIES:
        lines = [r for r in pool if r["query_id"] == qid]
        if info[qid]["stop_reason"] == "target_met":
            assert lines[-1]["correct"] is True
    assert any(info[q]["stop_reason"] == "target_met" for q, *_ in QUERIES)
    assert info["hard"]["stop_reason"] == "max_raw"  # both branches above ran


def test_prop2diff_targets_follow_the_probe(strategy_runs):
    tmp, outcomes = strategy_runs
    assert outcomes["prop2diff"].outcome == "done"
    pool = check_pool_consistent(tmp / "prop2diff")
    info = query_info(tmp / "prop2diff")
    probe = {}
    for qid, *_ in QUERIES:
        lines = sorted((r for r in pool if r["query_id"] == qid), key=lambda r: r["sample_idx"])
        assert len(lines) >= 3  # every query was probed n_probe times
        probe[qid] = 1 - sum(r["correct"] for r in lines[:3]) / 3
    fmax = max(probe.values())
    for qid, *_ in QUERIES:
        expect = 1 if fmax == 0 else max(1, ceil(3 * probe[qid] / fmax - 1e-9))
        row = info[qid]
        assert row["target"] == expect, (qid, row, probe)
        if row["stop_reason"] == "target_met":
            assert row["tot_n_corrects"] == expect or (
                row["tot_n_samples"] == 3 and row["tot_n_corrects"] >= expect
            )
        else:
            assert row["stop_reason"] == "max_raw" and row["tot_n_samples"] == 8


def test_vrt_takes_exactly_n_raw_samples(strategy_runs):
    tmp, outcomes = strategy_runs
    pool = check_pool_consistent(tmp / "vrt")
    assert Counter(r["query_id"] for r in pool) == {qid: 3 for qid, *_ in QUERIES}
    summary = json.loads((tmp / "vrt" / "run_summary.json").read_text())
    assert summary["totals"]["pool_lines_written"] == 15
    assert summary["totals"]["tokens_generated"] > 0


def test_finished_run_resumes_to_nothing_to_do(strategy_runs):
    tmp, _ = strategy_runs
    before = (tmp / "vrt" / "pool.jsonl").read_bytes()
    cfg = _cfg(_base(tmp, "vrt", name="vrt", n_vrt=3))

    async def never(cfg, template):  # must not be called: nothing is left to sample
        raise AssertionError("engine started for a finished run")

    out = asyncio.run(synth(cfg, progress=False, sampler_factory=never))
    assert out.outcome == "nothing-to-do"
    assert (tmp / "vrt" / "pool.jsonl").read_bytes() == before


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    base = _base(tmp_path, "killed", name="uniform", k_u=3, max_raw=10)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(base))
    run_dir = tmp_path / "killed"
    pool_path = run_dir / "pool.jsonl"
    cmd = synth_cmd(cfg_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for(
            lambda: pool_path.exists() and pool_path.read_bytes().count(b"\n") >= 4,
            timeout=400,
            what="4 pool lines",
            proc=proc,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the engine's processes too
        proc.wait()
    killed = pool_path.read_bytes()
    whole = killed[: killed.rfind(b"\n") + 1]
    # killed mid-run: its session was recorded when it started and never closed
    (record,) = json.loads((run_dir / "run_summary.json").read_text())["sessions"]
    assert record["outcome"] == "running" and not record["ended_at"]

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(resumed)" in done.stdout
    after = pool_path.read_bytes()
    assert after.startswith(whole)  # every line written before the kill is still there
    # samples in flight or graded-not-written at the kill are gaps in sample_idx; the rule
    # stays exact: each query that met its target ends on its 3rd correct in submission order
    pool = check_pool_consistent(run_dir, dense=False)
    info = query_info(run_dir)
    for qid, *_ in QUERIES:
        n_correct = sum(r["correct"] for r in pool if r["query_id"] == qid)
        n_raw = sum(1 for r in pool if r["query_id"] == qid)
        if info[qid]["stop_reason"] == "target_met":
            assert n_correct == 3
        else:
            assert info[qid]["stop_reason"] == "max_raw" and n_raw == 10 and n_correct < 3
    summary = json.loads((run_dir / "run_summary.json").read_text())
    # the killed session was recorded when it started; the resumed one found it still running
    assert [s["outcome"] for s in summary["sessions"]] == ["killed", "done"]
    assert summary["queries"]["pool_lines"] == len(pool)


def test_resume_with_another_strategy_or_sampling_is_refused(tmp_path):
    base = _base(tmp_path, "r", name="vrt", n_vrt=1)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(base))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text(yaml.safe_dump(_cfg(base).to_dict()))
    cmd = synth_cmd(cfg_path, "--set", "sampling.temperature=0.5", "--set", "strategy.n_vrt=2")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "sampling.temperature: 0.7 -> 0.5" in res.stderr
    assert "strategy.n_vrt: 1 -> 2" in res.stderr and "--force" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "r" / "pool.jsonl").exists()


def test_bad_queries_fail_before_the_engine_starts(tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"query_id": "a", "query": "1+1?", "gt_ans": "2"}\n{"query_id": "b", "query": ""}\n'
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "dartmath.cli",
            "synth",
            "--queries",
            str(qfile),
            "--run-dir",
            str(tmp_path / "run"),
            "--strategy",
            "uniform",
            "--k-u",
            "1",
            "--max-raw",
            "4",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert f"{qfile}:2" in res.stderr
    assert not (tmp_path / "run").exists()  # stopped before the run directory, so before the engine


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    base = _base(tmp_path, "stopped", name="uniform", k_u=3, max_raw=10)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(base))
    run_dir = tmp_path / "stopped"
    pool_path = run_dir / "pool.jsonl"
    cmd = synth_cmd(cfg_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        cmd,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: pool_path.exists() and pool_path.read_bytes().count(b"\n") >= 2,
            timeout=400,
            what="2 pool lines",
            proc=proc,
        )
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        out, err = proc.communicate(timeout=120)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "Resume with: dart synth --config" in err
    assert "Traceback" not in err
    pool = check_pool_consistent(run_dir, dense=False)  # query-info written, matches the pool
    assert pool and pool_path.read_bytes().endswith(b"\n")
    summary = json.loads((run_dir / "run_summary.json").read_text())
    assert summary["sessions"][-1]["outcome"] == "interrupted"
