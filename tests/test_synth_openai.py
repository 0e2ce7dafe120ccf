"""`dart synth --backend openai` against real vLLM servers (the CPU build, the tiny model)
started on 127.0.0.1 by the tests: balancing, a server killed mid-run, every server down,
Ctrl-C and resume, and an unreachable endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from dartmath.errors import BackendError, ConfigError
from dartmath.sampling.models import embedded_model_dir
from dartmath.sampling.openai_http import HTTPOptions, OpenAISampler
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
from vllm_server import SERVED_NAME, VLLMServer, free_port

pytestmark = pytest.mark.slow

QUERIES = [
    ("add", "What is 10 + 10?", "20"),
    ("one-two", "What is 1 + 2?", "3"),
    ("times", "What is 2 times 3?", "6"),
    ("sub", "What is 91 - 47?", "44"),
    ("hard1", "What is 123456789 times 987654321?", "121932631112635269"),
    ("hard2", "What is 98765 times 4321 minus 17?", "426763548"),
]
INSTRUCTION = (
    'Think step by step, briefly. Then write "The answer is" followed by the final number.'
)
K_U, MAX_RAW = 2, 12
API_KEY = "dart-test-key"
KEY_ENV = "DART_TEST_API_KEY"


@pytest.fixture(scope="module")
def model_dir() -> str:
    return str(embedded_model_dir())


@pytest.fixture(scope="module")
def servers(model_dir, tmp_path_factory):
    """Two servers, started together (each takes ~30-60 s to come up on 2 cores)."""
    logs = tmp_path_factory.mktemp("servers")
    pair = [VLLMServer(model_dir, logs / f"server{i}.log", api_key=API_KEY) for i in range(2)]
    procs = []
    try:
        for s in pair:  # start both, then wait for both: their start-ups overlap
            procs.append(threading.Thread(target=s.start, kwargs={"timeout": 400}))
            procs[-1].start()
        for t in procs:
            t.join()
        for s in pair:
            s.wait_ready(1)
        yield pair
    finally:
        for s in pair:
            s.stop()


def _config(tmp_path: Path, endpoints: list[str], run_name: str, **extra) -> dict:
    qfile = tmp_path / "queries.jsonl"
    qfile.write_text(
        "".join(json.dumps({"query_id": i, "query": q, "gt_ans": a}) + "\n" for i, q, a in QUERIES)
    )
    cfg = {
        "model": "embedded:smollm2-135m",
        "queries": {"source": str(qfile)},
        "prompt": {"template": "chat", "instruction": INSTRUCTION},
        "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64},
        "strategy": {"name": "uniform", "k_u": K_U, "max_raw": MAX_RAW},
        "backend": {
            "name": "openai",
            "endpoints": endpoints,
            "max_inflight_per_endpoint": 24,
            "connect_timeout": 2.0,
            "startup_timeout": 60.0,
            "api_key_env": KEY_ENV,
        },
        "grader": {"workers": 1, "timeout": 5.0},
        "run": {"dir": str(tmp_path / run_name)},
    }
    for key, value in extra.items():
        cfg[key].update(value)
    return cfg


def _check_stops(run_dir: Path) -> list[dict]:
    pool = check_pool_consistent(run_dir)
    info = query_info(run_dir)
    for qid, *_ in QUERIES:
        rows = [r for r in pool if r["query_id"] == qid]
        n_correct = sum(r["correct"] for r in rows)
        if info[qid]["stop_reason"] == "target_met":
            assert n_correct == K_U, qid
        else:
            assert info[qid]["stop_reason"] == "max_raw", qid
            assert len(rows) == MAX_RAW and n_correct < K_U, qid
    return pool


def test_prompts_match_the_in_process_engine_token_for_token(servers, model_dir):
    """The chat template is applied client side and sent without a second BOS (the request
    streamed, as the sampler sends it: the first event of a sample carries the prompt ids)."""
    import urllib.request

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    prompt = get_template("chat", INSTRUCTION).render("What is 1 + 2?", tok)
    body = json.dumps(
        {
            "model": SERVED_NAME,
            "prompt": prompt,
            "max_tokens": 1,
            "add_special_tokens": False,
            "return_token_ids": True,
            "stream": True,
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    req = urllib.request.Request(f"{servers[0].url}/v1/completions", body, headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        first = next(line for line in r if line.startswith(b"data: {"))
    served = json.loads(first[len(b"data: ") :])["choices"][0]["prompt_token_ids"]
    # what the in-process engine tokenizes for the chat template (add_special_tokens=False)
    assert served == tok(prompt, add_special_tokens=False)["input_ids"]


@pytest.fixture(autouse=True)
def _api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)


def test_synth_on_two_servers_and_a_dead_one_meets_every_target(servers, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = load_config(
        None, _flat(_config(tmp_path, [servers[0].url, dead, servers[1].url], "fleet"))
    )
    out = asyncio.run(synth(cfg, progress=False))
    assert out.outcome == "done"
    run_dir = tmp_path / "fleet"
    pool = _check_stops(run_dir)
    assert all(r["n_tokens"] > 0 and r["finish_reason"] in ("stop", "length") for r in pool)
    # exact counts from the streamed token ids: a sample cut at max_tokens has that many
    cut = [r["n_tokens"] for r in pool if r["finish_reason"] == "length"]
    assert cut and set(cut) == {64}
    backend_stats = out.summary["sessions"][-1]["backend_stats"]
    assert backend_stats["poll_interval"] is None  # the library call runs on the caller's loop
    stats = backend_stats["endpoints"]
    by_url = {e["url"]: e for e in stats}
    assert by_url[dead]["samples"] == 0 and by_url[dead]["set_asides"] >= 1
    assert "cannot connect" in by_url[dead]["last_error"]
    for s in servers:  # the work was spread over both live servers
        assert by_url[s.url]["samples"] > 0
    assert sum(e["samples"] for e in stats) >= len(pool)


class _Lines:
    """Collect a subprocess's stderr lines in a thread, to wait for a message."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._t.start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def seen(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def text(self) -> str:
        self._t.join(timeout=10)
        return "".join(self.lines)


def _start_synth(cfg_path: Path, stdout) -> tuple[subprocess.Popen, _Lines]:
    """`dart synth` on `cfg_path` in its own session (so a test can signal its group), with
    the servers' key; its stderr collected line by line."""
    proc = subprocess.Popen(
        synth_cmd(cfg_path),
        env={**os.environ, "HF_HUB_OFFLINE": "1", KEY_ENV: API_KEY},
        start_new_session=True,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, _Lines(proc.stderr)


def _n_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_servers_dying_and_coming_back_ctrl_c_and_resume_lose_nothing(servers, tmp_path):
    """Kill one of two servers mid-run (the other carries on), Ctrl-C, resume with that server
    still dead, kill the other one too (every server down: the run waits and says so), bring
    the first back: the run finishes with every target met exactly, nothing lost or repeated.
    """
    a, b = servers
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(tmp_path, [a.url, b.url], "faults")))
    run_dir = tmp_path / "faults"
    pool_path = run_dir / "pool.jsonl"

    def launch():
        out_path = tmp_path / f"stdout-{len(list(tmp_path.glob('stdout-*')))}.txt"
        with out_path.open("w") as out:
            proc, err = _start_synth(cfg_path, out)
        proc.out_path = out_path
        return proc, err

    proc, err = launch()
    try:
        wait_for(lambda: _n_lines(pool_path) >= 6, 300, "6 pool lines", proc)
        a.kill()  # a crash: its requests in flight fail and move to b
        at_kill = _n_lines(pool_path)
        wait_for(lambda: _n_lines(pool_path) >= at_kill + 6, 300, "lines from b", proc)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=120)
    finally:
        kill_if_running(proc)
    first_err = err.text()
    assert proc.returncode == 130, first_err[-3000:]
    assert "Resume with: dart synth --config" in first_err
    assert "Traceback" not in first_err
    assert f"endpoint {a.url} set aside" in first_err
    interrupted = pool_path.read_bytes()
    check_pool_consistent(run_dir, dense=False)

    proc, err = launch()  # resume, with a still dead
    try:
        wait_for(lambda: err.seen(f"endpoint {a.url} does not answer"), 120, "a reported", proc)
        wait_for(lambda: _n_lines(pool_path) >= interrupted.count(b"\n") + 4, 300, "lines", proc)
        b.kill()  # now every server is down
        wait_for(lambda: err.seen("all endpoints are down"), 120, "the all-down warning", proc)
        a.start(timeout=400)  # a comes back on its port; the run finds it and finishes
        proc.wait(timeout=600)
    finally:
        kill_if_running(proc)
        b.start(timeout=400)  # leave the pair as the fixture made it
    second_err = err.text()
    out = proc.out_path.read_text()
    assert proc.returncode == 0, out[-3000:] + second_err[-3000:]
    assert "(resumed)" in out and f"endpoint {a.url} is back" in second_err
    assert pool_path.read_bytes().startswith(interrupted)  # nothing written was lost
    _check_stops(run_dir)  # ... nor duplicated, and every target is met exactly
    summary = json.loads((run_dir / "run_summary.json").read_text())
    assert [s["outcome"] for s in summary["sessions"]] == ["interrupted", "done"]


def _run_with_a_fault(servers, tmp_path, name: str, fault, **extra) -> tuple[dict, str, float]:
    """`dart synth` over both servers; once both have answered, `fault()` hits the first.
    Returns the session's per-endpoint stats, stderr, and the seconds from fault to end."""
    a, b = servers
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(tmp_path, [a.url, b.url], name, **extra)))
    run_dir = tmp_path / name
    proc, err = _start_synth(cfg_path, subprocess.DEVNULL)
    try:
        wait_for(lambda: _n_lines(run_dir / "pool.jsonl") >= 4, 300, "4 pool lines", proc)
        fault()
        t_fault = time.monotonic()
        proc.wait(timeout=300)
        after = time.monotonic() - t_fault
    finally:
        kill_if_running(proc)
    text = err.text()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text
    _check_stops(run_dir)  # every target met exactly, nothing lost or written twice
    summary = json.loads((run_dir / "run_summary.json").read_text())
    backend_stats = summary["sessions"][-1]["backend_stats"]
    assert backend_stats["poll_interval"] == 0.05  # `dart synth` runs the client on a paced loop
    return {e["url"]: e for e in backend_stats["endpoints"]}, text, after


@pytest.mark.parametrize("part", ["engine", "api-server"])
def test_a_stalled_server_costs_seconds_and_its_requests_finish_on_the_other(
    servers, tmp_path, part
):
    """A hung engine (its process stopped: the API server takes requests, lists its model,
    says it is healthy and never answers) or a stopped API server (the kernel still completes
    connections nobody answers), beside a healthy server: the run moves the stalled server's
    requests at once and finishes, nothing lost or duplicated, the server recorded as stalled.
    request_timeout stays at its 1800 s default: only stall detection can end those requests."""
    a, b = servers
    stopped = []

    def stall() -> None:
        proc = a.engine_core() if part == "engine" else a.api_process()
        proc.suspend()  # SIGSTOP
        stopped.append(proc)

    try:
        by_url, err, after = _run_with_a_fault(
            servers, tmp_path, f"stall-{part}", stall, backend={"idle_timeout": 10.0}
        )
    finally:
        for proc in stopped:
            proc.resume()
    assert after < 120, f"the run took {after:.0f} s after the stall"
    assert by_url[a.url]["stalls"] >= 1 and by_url[a.url]["failures"] >= 1
    assert f"endpoint {a.url} stalled: nothing received for" in err
    assert by_url[b.url]["stalls"] == 0 and by_url[b.url]["samples"] > 0
    a.wait_ready(60)  # resumed, it answers again


def test_a_server_whose_engine_dies_is_recognised_and_its_requests_finish_elsewhere(
    servers, tmp_path
):
    """kill -9 of vLLM's engine process: the API server lives on for a few seconds, lists its
    model and fails requests; /health says 503. The run tells, sets it aside, and finishes."""
    a, b = servers
    try:
        by_url, err, _ = _run_with_a_fault(
            servers, tmp_path, "engine-dies", lambda: a.engine_core().kill()
        )
        assert by_url[a.url]["engine_deaths"] == 1, by_url[a.url]
        assert f"endpoint {a.url}: its engine is dead (GET /health answers HTTP 503)" in err
        assert not by_url[a.url]["healthy"] and by_url[b.url]["samples"] > 0
    finally:
        a.stop()
        a.start(timeout=400)  # leave the pair as the fixture made it


def test_unreachable_endpoint_is_reported_clearly(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    cfg_path = tmp_path / "run.yaml"
    cfg = _config(tmp_path, [dead], "unreachable", backend={"startup_timeout": 1.0})
    cfg_path.write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "dartmath.cli", "synth", "--config", str(cfg_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", KEY_ENV: API_KEY},
    )
    assert res.returncode == 1, res.stderr
    assert f"{dead}: cannot connect" in res.stderr
    assert "backend.startup_timeout" in res.stderr
    assert "Traceback" not in res.stderr
    assert _n_lines(tmp_path / "unreachable" / "pool.jsonl") == 0


def _start(url: str, **options):
    async def main():
        sampler = await OpenAISampler.start([url], {"max_tokens": 8}, HTTPOptions(**options))
        await sampler.aclose()

    asyncio.run(main())


def test_wrong_model_name_is_an_error_naming_what_is_served(servers):
    with pytest.raises(BackendError, match=f"does not serve model 'not-this-one'.*{SERVED_NAME}"):
        _start(servers[0].url, served_model_name="not-this-one", api_key=API_KEY)


def test_wrong_or_missing_api_key_is_an_error_that_says_so(servers, tmp_path, monkeypatch):
    with pytest.raises(BackendError, match="HTTP 401.*check the API key"):
        _start(servers[0].url, api_key="wrong")
    monkeypatch.delenv(KEY_ENV)
    cfg = load_config(None, _flat(_config(tmp_path, [servers[0].url], "nokey")))
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is not set"):
        asyncio.run(synth(cfg, progress=False))


def _flat(d: dict) -> dict:
    flat = {}
    for section, value in d.items():
        if isinstance(value, dict):
            for k, v in value.items():
                flat[f"{section}.{k}"] = v
        else:
            flat[section] = value
    return flat
