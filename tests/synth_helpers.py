"""Helpers shared by the end-to-end tests of `dart synth` (in-process engine and servers)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from dartmath.stats import query_info_from_jsonl

# A run directory made by dartmath at 84e762b (interrupted; alpaca, uniform k_u=2, max_raw 6),
# and the settings that resume it (run from inside the copy: its paths are relative).
OLD_RUN = Path(__file__).parent / "data" / "run_84e762b"
OLD_RUN_SETTINGS = {
    "queries.source": "q.jsonl",
    "run.dir": "run",
    "prompt.template": "alpaca",
    "strategy.name": "uniform",
    "strategy.k_u": 2,
    "strategy.max_raw": 6,
    "grader.workers": 1,
}


def synth_cmd(cfg_path: Path, *extra: str) -> list[str]:
    """`dart synth --config CFG --no-progress` as a subprocess command (this interpreter)."""
    cmd = [sys.executable, "-m", "dartmath.cli", "synth", "--config", str(cfg_path)]
    return [*cmd, "--no-progress", *extra]


def pool_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "pool.jsonl").read_text().splitlines()]


def query_info(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "query_info.jsonl").read_text().splitlines()
    return {r["query_id"]: r for r in map(json.loads, lines)}


def check_pool_consistent(run_dir: Path, dense: bool = True) -> list[dict]:
    """No duplicate sample indices; each query's lines in submission order (`sample_idx`
    increasing) and, for a run never interrupted (`dense`), with no index skipped; every query
    that met its target has exactly its first `target` correct responses in submission order:
    the last line is its target-th correct one. Query-info equals the pool."""
    pool = pool_lines(run_dir)
    per_q = defaultdict(list)
    for r in pool:
        per_q[r["query_id"]].append(r)
    info = query_info(run_dir)
    for qid, lines in per_q.items():
        idxs = [r["sample_idx"] for r in lines]
        assert idxs == sorted(set(idxs)), qid
        if dense:
            assert idxs == list(range(len(idxs))), qid
        row = info[qid]
        if row["stop_reason"] == "target_met":
            n_correct = sum(r["correct"] for r in lines)
            assert n_correct >= row["target"], qid
            if n_correct == row["target"]:  # (more: a Prop2Diff probe, kept whole)
                assert lines[-1]["correct"], qid
    recomputed = {r["query_id"]: r for r in query_info_from_jsonl(run_dir / "pool.jsonl")}
    for qid, row in info.items():
        if qid in recomputed:
            for k in ("tot_n_samples", "tot_n_corrects", "pass_rate", "n_no_answer"):
                assert row[k] == recomputed[qid][k], (qid, k)
        else:
            assert row["tot_n_samples"] == 0
    return pool


def wait_for(pred, timeout: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (code {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def kill_if_running(proc: subprocess.Popen) -> None:
    """Kill a `dart synth` started in a session of its own, with its whole process group (the
    grader's workers, an engine), if it is still running: a failed test leaves nothing behind."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def scheduler_of(cfg, note=print):
    """The scheduler `dart synth` builds for `cfg` (its queries and its prior read)."""
    from dartmath.synth.run import load_run_prior, load_run_queries, make_scheduler

    queries = load_run_queries(cfg)
    return make_scheduler(cfg, queries, load_run_prior(cfg, queries), note)


@contextlib.contextmanager
def lock_held_by_another_process(run_dir):
    """A child process holding `run_dir`'s lock as `dart synth` does (POSIX record locks are
    per process); yields its pid once it holds the lock, and ends it on exit."""
    child = textwrap.dedent(
        f"""
        import sys
        from dartmath.synth.store import RunStore
        with RunStore({str(run_dir)!r}).lock():
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "locked\n"
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
