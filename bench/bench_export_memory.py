"""Peak memory and throughput of `dart export` on a large graded pool, against a plain
streaming pass, and at two pool sizes holding the same queries and correct responses.

Writes a graded DARS-like pool JSONL (default 1,000,000 lines of ~1 KB: ~1 GB; 64 responses per
query, 10% of them correct, `source` and `level` metadata) to a temporary directory, and a
second pool a quarter of its size with the same queries and, on average, the same number of
correct responses (16 per query, 40% correct). Then runs, one after the other, each as a
subprocess sampled every 50 ms with psutil (as bench_grade_memory.py does):
  - baseline: a plain streaming pass that decodes each line with orjson and writes the correct
    ones as `{"query", "response"}` records (the floor cost of the job);
  - `dart export POOL -o OUT.jsonl --with-meta` on the large pool, then on the small one
    (`--format parquet|datasets`: to OUT.parquet or a folder).
It prints peak RSS of the process tree and of the main process, and lines/s; dart's figures as
ratios to the baseline; and the ratio of dart's peak RSS on the large pool to the small one.
`dart export` keeps per query its counts and per correct response 24 bytes, never the lines, so
that ratio should be near 1 (what differs: incorrect lines, which cost nothing kept).

    .venv/bin/python bench/bench_export_memory.py             # 1,000,000 lines
    .venv/bin/python bench/bench_export_memory.py --quick     # 50,000 lines, under a minute
    .venv/bin/python bench/bench_export_memory.py --format parquet

Goal: peak RSS of dart export on the large pool within 10% of the small pool's.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_grade_memory import MB, count_lines, dart_command, run_sampled  # noqa: E402
from synth_pools import iter_dars  # noqa: E402

GOAL_RATIO = 1.10
PER_QUERY = 64
OUT_NAMES = {"jsonl": "train.jsonl", "parquet": "train.parquet", "datasets": "train"}

BASELINE_CODE = """
import os, sys, orjson
src, dst = sys.argv[1], sys.argv[2]
n = 0
with open(src, "rb") as f, open(dst, "wb") as out:
    for line in f:
        rec = orjson.loads(line)
        if rec["correct"]:
            out.write(orjson.dumps({"query": rec["query"], "response": rec["resp"]},
                                   option=orjson.OPT_APPEND_NEWLINE))
        n += 1
    out.flush()
    os.fsync(out.fileno())
print(n)
"""


def write_graded_pool(
    path: Path, n_queries: int, per_query: int, correct_share: float, seed: int = 0
) -> tuple[int, int]:
    """Stream a graded DARS-like pool (`correct` drawn with `correct_share`) to `path`;
    return (bytes written, correct lines). Holds one line at a time."""
    rng = random.Random(seed + 1)
    written = n_correct = 0
    sample, last_qid = 0, None
    with open(path, "wb", buffering=1 << 20) as f:
        for item in iter_dars(n_queries, per_query, seed):
            sample = sample + 1 if item.query_id == last_qid else 0
            last_qid = item.query_id
            rec = item.record(sample)
            correct = rng.random() < correct_share
            rec.update(
                source="math",
                level=1 + int(item.query_id[1:]) % 5,
                ans=item.answer,
                correct=correct,
                model="bench-model",
                prompt_template="alpaca",
            )
            line = orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)
            f.write(line)
            written += len(line)
            n_correct += correct
    return written, n_correct


def count_records(out: Path, fmt: str) -> int:
    """Records in dart export's output (read here, outside the measured process)."""
    if fmt == "jsonl":
        return count_lines(out)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(out).metadata.num_rows
    import datasets

    return datasets.load_from_disk(str(out)).num_rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="50,000 lines: a smoke check")
    ap.add_argument("--lines", type=float, default=None, help="pool lines (default 1e6; quick 5e4)")
    ap.add_argument("--correct-share", type=float, default=0.10, help="of the large pool")
    ap.add_argument("--interval", type=float, default=0.05, help="RSS sampling period, s")
    ap.add_argument("--max-seconds", type=float, default=None, help="kill dart export after this")
    ap.add_argument("--tmpdir", default=None, help="where to put the pools (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the pools and outputs")
    ap.add_argument("--format", choices=("jsonl", "parquet", "datasets"), default="jsonl")
    ap.add_argument("--export-args", default="--with-meta", help="more dart export options")
    ap.add_argument(
        "--dart-cmd",
        default=None,
        help="command to run instead of the dart beside python (shell words)",
    )
    args = ap.parse_args(argv)
    n_lines = int(args.lines if args.lines is not None else (5e4 if args.quick else 1e6))
    n_queries = max(1, n_lines // PER_QUERY)
    small_per_query = PER_QUERY // 4
    small_share = min(1.0, args.correct_share * 4)

    tmp = Path(tempfile.mkdtemp(prefix="dart-export-bench-", dir=args.tmpdir))
    try:
        big, small = tmp / "big" / "pool.jsonl", tmp / "small" / "pool.jsonl"
        big.parent.mkdir()
        small.parent.mkdir()
        t0 = time.perf_counter()
        size, big_correct = write_graded_pool(big, n_queries, PER_QUERY, args.correct_share)
        small_size, small_correct = write_graded_pool(
            small, n_queries, small_per_query, small_share
        )
        n_big, n_small = count_lines(big), count_lines(small)
        print(f"large pool: {n_big:,} lines, {size / MB:,.0f} MB, {n_queries:,} queries, "
              f"{big_correct:,} correct ({big_correct / n_big:.0%})", flush=True)  # fmt: skip
        print(f"small pool: {n_small:,} lines, {small_size / MB:,.0f} MB, {n_queries:,} queries, "
              f"{small_correct:,} correct ({small_correct / n_small:.0%}); "
              f"both written in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip

        base_out = tmp / "baseline.jsonl"
        base = run_sampled(
            "baseline", [sys.executable, "-c", BASELINE_CODE, str(big), str(base_out)],
            args.interval, None,
        )  # fmt: skip
        if base.returncode != 0:
            print(f"baseline failed ({base.returncode}):\n{base.stderr[-2000:]}")
            return 1
        base_out.unlink(missing_ok=True)

        prefix = shlex.split(args.dart_cmd) if args.dart_cmd else dart_command()
        runs = []
        for name, pool in (("dart export large", big), ("dart export small", small)):
            out = pool.parent / "out" / OUT_NAMES[args.format]
            cmd = [*prefix, "export", str(pool), "-o", str(out), *shlex.split(args.export_args)]
            print("running: " + " ".join(cmd), flush=True)
            m = run_sampled(name, cmd, args.interval, args.max_seconds)
            if m.returncode != 0:
                print(f"{name} FAILED (exit {m.returncode}); stderr tail:\n{m.stderr[-3000:]}")
                return 1
            got = count_records(out, args.format)
            correct = big_correct if pool == big else small_correct
            check = "ok" if got == correct else f"{got:,} records for {correct:,} correct lines"
            runs.append((m, n_big if pool == big else n_small, check))

        print("\n" + "=" * 92)
        print(f"{'':<20} {'lines':>10} {'seconds':>8} {'lines/s':>10} {'peak tree MB':>13} "
              f"{'peak main MB':>13}  output")  # fmt: skip
        for m, n, check in [(base, n_big, "-"), *runs]:
            print(
                f"{m.name:<20} {n:>10,} {m.seconds:>8.1f} {n / m.seconds:>10,.0f} "
                f"{m.peak_tree / MB:>13.1f} {m.peak_main / MB:>13.1f}  {check}"
            )
        large, small_run = runs[0][0], runs[1][0]
        print(
            f"{'large / baseline':<20} {'':>10} {large.seconds / base.seconds:>7.1f}x "
            f"{base.seconds / large.seconds:>9.3f}x {large.peak_tree / base.peak_tree:>12.1f}x "
            f"{large.peak_main / base.peak_main:>12.1f}x"
        )
        ratio = large.peak_tree / small_run.peak_tree
        print(
            f"{'large / small':<20} {n_big / n_small:>9.1f}x {'':>8} {'':>10} {ratio:>12.2f}x "
            f"{large.peak_main / small_run.peak_main:>12.2f}x"
        )
        print("=" * 92)
        print(
            "dart export report (large):\n  " + "\n  ".join(large.stdout.strip().splitlines()[:14])
        )
        if args.quick:
            print("--quick: too small for these figures to mean much; run without it for figures.")
        verdict = "PASS" if ratio < GOAL_RATIO else "FAIL"
        print(f"goal: peak RSS on the large pool within {GOAL_RATIO - 1:.0%} of the small pool's "
              f"({n_big / n_small:.0f}x fewer lines, same queries and correct responses): "
              f"{ratio:.2f}x, {verdict}")  # fmt: skip
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
