"""`dart plan` against real runs of the embedded model on CPU.

1. Probe: `dart synth --strategy vrt --n-vrt 16` on the demo queries (16 samples each).
2. Plan a Uniform run (k_u=3) and a Prop2Diff run (k_p=4), both max_raw 16, from the probe's
   query-info (`dart plan --json`, for a run directory that does not exist yet).
3. Run both (`dart synth`), each with its own engine seed, and compare what they used with
   what the plan said: raw samples against mean ± 2 sd, kept responses, queries short.

Stages whose run directory is complete are not run again (`dart synth` finds nothing to do),
so a second call only recomputes the comparison. The probe's and runs' samples are independent
(each session draws its own engine seed).

    .venv/bin/python bench/bench_plan.py                 # ~40 min on a 2-core CPU
    .venv/bin/python bench/bench_plan.py --workdir runs/plancheck
    .venv/bin/python bench/bench_plan.py --quick         # 8 queries, 8-sample probe
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DART = str(Path(sys.executable).with_name("dart"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def dart(*args: str, log: Path | None = None) -> str:
    """Run `dart` from the project root; its stdout (stderr to `log`, or shown on failure)."""
    proc = subprocess.run([DART, *args], cwd=ROOT, capture_output=True, text=True)
    if log is not None:
        log.write_text(proc.stderr + proc.stdout)
    if proc.returncode != 0:
        sys.exit(f"dart {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def used(run_dir: Path) -> dict[str, float]:
    """Raw samples, kept responses and queries short of target of a finished run."""
    rows = [json.loads(x) for x in (run_dir / "query_info.jsonl").read_text().splitlines()]
    pool = (json.loads(x) for x in (run_dir / "pool.jsonl").read_text().splitlines())
    return {
        "tokens": sum(r["n_tokens"] for r in pool),
        "raw": sum(r["tot_n_samples"] for r in rows),
        "kept": sum(min(r["tot_n_corrects"], r["target"]) for r in rows),
        "short": sum(1 for r in rows if r["short_by"]),
        "short_by": sum(r["short_by"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/cpu-demo.yaml")
    ap.add_argument("--workdir", default="runs/bench-plan")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir)  # as given: `dart` runs in the project root
    (ROOT / work).mkdir(parents=True, exist_ok=True)
    n_probe, cap = (8, 8) if args.quick else (16, 16)
    base = ["--config", args.config, "--max-raw", str(cap), "--no-progress"]
    if args.quick:
        base += ["--limit", "8"]
    probe = work / "probe"
    print(f"probe: {n_probe} samples per query -> {probe}", flush=True)
    dart("synth", *base, "--strategy", "vrt", "--n-vrt", str(n_probe), "--run-dir", str(probe))
    prior = str(probe / "query_info.jsonl")
    runs = {
        "uniform": ["--strategy", "uniform", "--k-u", "3"],
        "prop2diff": ["--strategy", "prop2diff", "--k-p", "4"],
    }
    results = []
    for name, strategy in runs.items():
        plan_args = [a for a in base if a != "--no-progress"] + strategy
        plan_args += ["--difficulty-from", prior, "--run-dir", str(work / "not-run"), "--json"]
        plan = json.loads(dart("plan", *plan_args))
        run_dir = work / name
        print(f"{name}: planned, running -> {run_dir}", flush=True)
        prior_args = ["--difficulty-from", prior] if name == "prop2diff" else []  # its prior
        dart(
            "synth",
            *base,
            *strategy,
            *prior_args,
            "--run-dir",
            str(run_dir),
            log=ROOT / work / f"{name}.log",
        )
        results.append((name, plan, used(ROOT / run_dir)))
    print()
    print(
        f"{'run':<10} {'raw: planned (± 2 sd)':>22} {'used':>5} {'z':>6} "
        f"{'kept: planned (± 2 sd)':>23} {'used':>5} {'z':>6} {'short: planned':>15} {'used':>5} "
        f"{'tokens: planned (± 2 sd)':>25} {'used':>7}"
    )
    for name, plan, real in results:
        t = plan["totals"]
        cost = plan["cost"]
        print(
            f"{name:<10} {t['raw_mean']:>13,.1f} ± {2 * t['raw_sd']:>5,.1f} {real['raw']:>5,} "
            f"{_z(real['raw'], t['raw_mean'], t['raw_sd']):>+6.2f} "
            f"{t['kept_mean']:>14,.1f} ± {2 * t['kept_sd']:>5,.1f} {real['kept']:>5,} "
            f"{_z(real['kept'], t['kept_mean'], t['kept_sd']):>+6.2f} "
            f"{t['short_queries']:>15,.1f} {real['short']:>5,} "
            f"{cost['tokens']:>14,.0f} ± {2 * cost['tokens_sd']:>7,.0f} {real['tokens']:>7,}"
        )
    print("z: (used - planned mean) / planned sd; |z| <= 2 is within the stated uncertainty")


def _z(real: float, mean: float, sd: float) -> float:
    return (real - mean) / sd if sd else float("nan")


if __name__ == "__main__":
    main()
