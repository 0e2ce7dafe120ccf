"""Engine utilisation of `dart synth` against plain vLLM generation, on one engine, in one run.

1. `dart synth` (the real pipeline: scheduler, streaming requests, grader processes, pool
   writes) runs a config to the end; we count the samples it generated per query.
2. Plain vLLM generation of the same number of samples of the same prompts with the same
   sampling settings: one request per query with `n` = that query's sample count, all
   submitted at once, nothing graded or written.

Both use the same `AsyncLLM` instance (same process, same warm caches); generated tokens/s of
(1) over (2) is the figure (goal >= 0.9 on a 2-core CPU, where grading competes for the cores).
A short warm-up generation runs first so that neither side pays for first-call costs.

    .venv/bin/python bench/bench_engine_utilisation.py            # the demo config, ~12 min
    .venv/bin/python bench/bench_engine_utilisation.py --quick    # 8 queries, small caps
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]


async def plain_generation(sampler, prompts: dict[str, str], counts: Counter) -> tuple[int, float]:
    """Generate counts[qid] samples of prompts[qid] for every query at once; (tokens, seconds)."""
    from vllm.sampling_params import RequestOutputKind

    engine = sampler.engine
    base = sampler._params.clone()
    base.output_kind = RequestOutputKind.FINAL_ONLY

    async def one(i: int, qid: str, n: int) -> int:
        params = base.clone()
        params.n = n
        tokens = 0
        async for out in engine.generate(
            prompts[qid], params, f"plain-{i}", tokenization_kwargs=sampler._tok_kwargs
        ):
            if out.finished:
                tokens = sum(len(c.token_ids) for c in out.outputs)
        return tokens

    t0 = time.monotonic()
    results = await asyncio.gather(
        *(one(i, qid, n) for i, (qid, n) in enumerate(sorted(counts.items())))
    )
    return sum(results), time.monotonic() - t0


async def main_async(args: argparse.Namespace) -> None:
    from dartmath.sampling.backends import start_vllm
    from dartmath.sampling.prompts import get_template
    from dartmath.synth.config import load_config
    from dartmath.synth.run import load_run_queries, synth

    with tempfile.TemporaryDirectory(prefix="dart-util-") as tmp:
        overrides: dict = {"run.dir": str(Path(tmp) / "run")}
        if args.quick:
            overrides.update({"queries.limit": 8, "strategy.max_raw": 4, "strategy.n_probe": 2})
        cfg = load_config(ROOT / args.config, overrides)
        cfg.queries.source = str(ROOT / cfg.queries.source)
        template = get_template(cfg.prompt.template, cfg.prompt.instruction)
        t0 = time.monotonic()
        sampler = await start_vllm(cfg, template)
        print(f"engine start: {time.monotonic() - t0:.1f} s; in flight up to {sampler.capacity}")
        try:
            tok = sampler.tokenizer()
            queries = load_run_queries(cfg)
            prompts = {q.query_id: template.render(q.query, tok) for q in queries}
            warm = Counter({queries[0].query_id: 4})
            await plain_generation(sampler, prompts, warm)

            async def shared(cfg, template):
                return sampler

            out = await synth(cfg, progress=False, sampler_factory=shared, shutdown_sampler=False)
            s = out.session
            pool = [json.loads(x) for x in (Path(cfg.run.dir) / "pool.jsonl").open()]
            counts = Counter(r["query_id"] for r in pool)
            # samples generated to the end but not written (their query had stopped) also cost
            # engine time: give them to plain generation too, spread over their queries' prompts
            extra = s.samples_finished - sum(counts.values())
            for qid in list(counts)[: max(0, extra)]:
                counts[qid] += 1
            plain_tokens, plain_s = await plain_generation(sampler, prompts, counts)
        finally:
            sampler.shutdown()

    dart_rate = s.tokens_generated / s.seconds
    plain_rate = plain_tokens / plain_s
    print()
    print(f"{'':26}{'samples':>9}{'tokens':>9}{'seconds':>9}{'tokens/s':>10}{'ratio':>8}")
    print(
        f"{'plain vLLM (baseline)':26}{sum(counts.values()):>9}{plain_tokens:>9}"
        f"{plain_s:>9.1f}{plain_rate:>10.1f}{1.0:>8.2f}"
    )
    print(
        f"{'dart synth':26}{s.samples_finished:>9}{s.tokens_generated:>9}"
        f"{s.seconds:>9.1f}{dart_rate:>10.1f}{dart_rate / plain_rate:>8.2f}"
    )
    print(
        f"dart synth: started {s.samples_started}, cancelled in flight {s.samples_cancelled}, "
        f"late {s.samples_late}, requests {s.requests}; grader {s.grader}"
    )
    print(
        f"goal: dart / plain tokens/s >= 0.9: {dart_rate / plain_rate:.2f}, "
        f"{'PASS' if dart_rate / plain_rate >= 0.9 else 'FAIL'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu-demo.yaml")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
