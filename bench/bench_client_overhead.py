"""The openai backend's client CPU per 1,000 requests: this checkout against another, paired.

`bench_server.py`'s "client overhead only" phase (1,000 requests, n=4, 1 new token each, 64 in
flight) for this checkout and for another one (`--other`: its `src` folder, e.g. a git worktree
of an older commit), alternating round by round against one local vLLM server, each in a fresh
process on the event loop its own `dart synth` runs the openai backend on, with its default
settings. Single runs of that phase vary by a third from one hour to the next on a shared 2-core
machine; pairs measured minutes apart do not, so the ratio of the medians is the figure.

    git worktree add --detach /tmp/before a2cea15
    .venv/bin/python bench/bench_client_overhead.py --other /tmp/before/src   # ~12 min
    .venv/bin/python bench/bench_client_overhead.py --other /tmp/before/src --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--other", required=True, type=Path, help="another checkout's src folder")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 100 requests")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.requests = 2, 100
    if not (args.other / "dartmath").is_dir():
        sys.exit(f"--other {args.other}: no dartmath package there (give a checkout's src)")
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "tests"))
    from bench_server import in_child
    from dartmath.sampling.models import embedded_model_dir
    from vllm_server import VLLMServer

    sides = {"other": args.other.resolve(), "this": ROOT / "src"}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="dart-client-bench-") as tmp:
        server = VLLMServer(
            str(embedded_model_dir()),
            Path(tmp) / "server.log",
            max_num_seqs=256,
            max_model_len=1024,
        )
        t0 = time.monotonic()
        server.start(timeout=600)
        print(f"server ready in {time.monotonic() - t0:.0f} s", flush=True)
        try:
            for r in range(1, args.rounds + 1):
                line = []
                for name, src in sides.items():
                    got = in_child("overhead", server.url, args.requests, src)
                    per_1k = 1000 * got["cpu"] / args.requests
                    cpu[name].append(per_1k)
                    line.append(f"{name} {per_1k:.3f} ({got['loop']}, {got['wall']:.0f} s)")
                ratio = cpu["this"][-1] / cpu["other"][-1]
                print(f"round {r}: " + ", ".join(line) + f"; this/other {ratio:.2f}", flush=True)
        finally:
            server.stop()
    med = {name: statistics.median(v) for name, v in cpu.items()}
    print(
        f"client CPU s per 1,000 requests (median of {args.rounds}): other {med['other']:.3f}, "
        f"this {med['this']:.3f}; this/other {med['this'] / med['other']:.2f}"
    )


if __name__ == "__main__":
    main()
