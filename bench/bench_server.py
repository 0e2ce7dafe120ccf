"""`dart synth` through one local vLLM server against the in-process engine, on the same work.

1. In-process: `dart synth` runs the config with vLLM's AsyncLLM in this process.
2. Server: a vLLM OpenAI-compatible server (same model, same engine settings) is started on
   127.0.0.1 and `dart synth --backend openai` runs the same config against it.
3. Client overhead alone: 1,000 requests (n=4, 1 new token each) through the openai sampler,
   and as its baseline the same requests from a bare aiohttp client that asks for whole answers:
   3 rounds, alternating, each in a fresh process as a user's `dart synth` runs (measured in
   the process that ran 1 and 2, a run soon after them costs up to twice the others).

Prints generated tokens/s of each synth run (sampling time only: engine/server start-up is
excluded) and the ratio server / in-process (goal >= 0.9), and the client's own CPU seconds
(this process: HTTP, JSON, scheduling, pool writes; not the grader's worker processes nor the
server) per 1,000 requests, for the synth run and for the overhead-only run (medians), the
latter also as a ratio to the bare client.

`--child overhead|bare URL N` runs one such phase and prints its figures as JSON, with the
dartmath found on PYTHONPATH (`bench_client_overhead.py` runs other checkouts this way).

    .venv/bin/python bench/bench_server.py            # the demo config, ~20 min
    .venv/bin/python bench/bench_server.py --quick    # 8 queries, small caps
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]


async def run_synth(cfg, factory) -> tuple[object, float]:
    from dartmath.synth.run import synth

    cpu0 = time.process_time()
    out = await synth(cfg, progress=False, sampler_factory=factory)
    return out, time.process_time() - cpu0


async def overhead_only(url: str, n_requests: int) -> tuple[float, float]:
    """(client CPU seconds, wall seconds) for n_requests tiny requests, 64 in flight."""
    from dartmath.sampling.openai_http import HTTPOptions, OpenAISampler

    sampler = await OpenAISampler.start(
        [url], {"max_tokens": 1, "temperature": 1.0}, HTTPOptions(limit_per_endpoint=256)
    )
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            async for _ in sampler.sample(f"o-{i}", f"Count to {i % 50}:", 4):
                pass

    try:
        await one(-1)  # warm the connection pool
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n_requests)))
        return time.process_time() - cpu0, time.monotonic() - t0
    finally:
        await sampler.aclose()


async def bare_client(url: str, n_requests: int) -> tuple[float, float]:
    """(client CPU seconds, wall seconds) for the overhead phase's requests from a bare aiohttp
    client on asyncio's own loop: whole answers, no retries, no accounting."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/v1/models") as resp:
            model = (await resp.json())["data"][0]["id"]
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            body = {"model": model, "prompt": f"Count to {i % 50}:", "n": 4, "max_tokens": 1}
            async with sem, session.post(f"{url}/v1/completions", json=body) as resp:
                assert len((await resp.json())["choices"]) == 4

        await one(-1)
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n_requests)))
        return time.process_time() - cpu0, time.monotonic() - t0


CHILD_PHASES = {"overhead": overhead_only, "bare": bare_client}


def child(phase: str, url: str, n_requests: int) -> None:
    """One client phase in this process, by the dartmath on PYTHONPATH; prints JSON."""
    if phase not in CHILD_PHASES:
        sys.exit(f"--child: the phase is one of {', '.join(CHILD_PHASES)}, not {phase!r}")
    run = CHILD_PHASES[phase]
    factory = None
    if run is overhead_only:
        from dartmath.synth.config import BackendConfig

        try:
            from dartmath.sampling.backends import event_loop_factory
        except ImportError:  # a version that ran every backend on asyncio's own loop
            pass
        else:  # the loop its `dart synth` gives the openai backend, with its defaults
            factory = event_loop_factory(argparse.Namespace(backend=BackendConfig(name="openai")))

    async def timed() -> tuple[float, float, str]:
        loop = type(asyncio.get_running_loop())
        return (*await run(url, n_requests), f"{loop.__module__.split('.')[0]}.{loop.__name__}")

    with asyncio.Runner(loop_factory=factory) as runner:
        cpu, wall, loop = runner.run(timed())
    print(json.dumps({"cpu": cpu, "wall": wall, "loop": loop}))


def in_child(phase: str, url: str, n_requests: int, src: Path = ROOT / "src") -> dict:
    """`child` in a fresh process, with the dartmath in `src`."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", phase, url, str(n_requests)],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"the {phase} client from {src} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu-demo.yaml")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--overhead-requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="of the client overhead phase")
    ap.add_argument("--inflight-per-endpoint", type=int, default=None)
    ap.add_argument("--child", nargs=3, metavar=("PHASE", "URL", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        phase, url, n = args.child
        child(phase, url, int(n))
        return
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "tests"))
    from dartmath.sampling.backends import event_loop_factory, start_openai, start_vllm
    from dartmath.sampling.models import resolve_model
    from dartmath.synth.config import load_config
    from vllm_server import VLLMServer

    with tempfile.TemporaryDirectory(prefix="dart-server-bench-") as tmp:
        overrides: dict = {}
        if args.quick:
            overrides.update({"queries.limit": 8, "strategy.max_raw": 4, "strategy.n_probe": 2})
            args.overhead_requests = min(args.overhead_requests, 200)
            args.rounds = 1
        base = load_config(ROOT / args.config, {**overrides, "run.dir": f"{tmp}/inproc"})
        base.queries.source = str(ROOT / base.queries.source)
        eng = base.engine
        max_seqs = int(eng.get("max_num_seqs", 256))

        print("1. in-process engine ...", flush=True)
        inproc, inproc_cpu = asyncio.run(run_synth(base, start_vllm))

        print("2. one local server ...", flush=True)
        kv_gib = max(1, int(eng.get("kv_cache_memory_bytes", 1 << 30)) >> 30)
        server = VLLMServer(
            resolve_model(base.model),
            Path(tmp) / "server.log",
            max_num_seqs=max_seqs,
            max_model_len=int(eng.get("max_model_len", 1024)),
            kv_cache_gib=kv_gib,
        )
        t0 = time.monotonic()
        server.start(timeout=600)
        print(f"   server ready in {time.monotonic() - t0:.0f} s", flush=True)
        try:
            limit = args.inflight_per_endpoint or max_seqs + max(8, max_seqs // 4)
            cfg = load_config(
                ROOT / args.config,
                {
                    **overrides,
                    "run.dir": f"{tmp}/server",
                    "backend.name": "openai",
                    "backend.endpoints": [server.url],
                    "backend.max_inflight_per_endpoint": limit,
                },
            )
            cfg.queries.source = base.queries.source
            # on the event loop `dart synth` gives the backend, as a user's run goes
            with asyncio.Runner(loop_factory=event_loop_factory(cfg)) as runner:
                served, served_cpu = runner.run(run_synth(cfg, start_openai))
            n_oh = args.overhead_requests
            print(f"3. client overhead, {n_oh} requests, {args.rounds} rounds ...", flush=True)
            per_1k: dict[str, list[float]] = {"overhead": [], "bare": []}
            for _ in range(args.rounds):
                for phase, cpus in per_1k.items():
                    cpus.append(1000 * in_child(phase, server.url, n_oh)["cpu"] / n_oh)
                last = {phase: cpus[-1] for phase, cpus in per_1k.items()}
                print(f"   dartmath {last['overhead']:.3f}, bare {last['bare']:.3f}", flush=True)
        finally:
            server.stop()

    rows = []
    for name, out, cpu in (
        ("in-process (baseline)", inproc, inproc_cpu),
        ("server", served, served_cpu),
    ):
        s = out.session
        rows.append((name, s, s.tokens_generated / s.seconds, cpu))
    base_rate = rows[0][2]
    print()
    print(
        f"{'':24}{'samples':>9}{'requests':>9}{'tokens':>9}{'seconds':>9}{'tokens/s':>10}"
        f"{'ratio':>7}{'CPU s':>8}{'CPU s/1k req':>14}"
    )
    for name, s, rate, cpu in rows:
        print(
            f"{name:24}{s.samples_finished:>9}{s.requests:>9}{s.tokens_generated:>9}"
            f"{s.seconds:>9.1f}{rate:>10.1f}{rate / base_rate:>7.2f}{cpu:>8.1f}"
            f"{1000 * cpu / max(1, s.requests):>14.2f}"
        )
    oh, bare = (statistics.median(v) for v in per_1k.values())
    print(
        f"client overhead only ({args.overhead_requests} requests, n=4, 1 token; median of "
        f"{args.rounds}): {oh:.3f} CPU s per 1,000 requests; a bare client, whole answers: "
        f"{bare:.3f}; ratio {oh / bare:.2f}"
    )
    ratio = rows[1][2] / base_rate
    print(
        f"goal: server / in-process tokens/s >= 0.9: {ratio:.2f}, {'PASS' if ratio >= 0.9 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
