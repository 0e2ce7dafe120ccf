"""One Prop2Diff run over two query sources on the real vLLM CPU engine with the embedded model:
ids unique across the sources, `source` on every line, `dart stats` by source, and one
normalisation of the targets over the union of the sources."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from fractions import Fraction
from math import ceil
from pathlib import Path

from click.testing import CliRunner

from dartmath.cli import main
from dartmath.synth.config import load_config
from dartmath.synth.run import synth
from synth_helpers import check_pool_consistent, query_info

INSTRUCTION = (
    'Think step by step, briefly. Then write "The answer is" followed by the final number.'
)
ENGINE = {
    "dtype": "float32",
    "enforce_eager": True,
    "max_model_len": 512,
    "max_num_seqs": 32,
    "kv_cache_memory_bytes": 1 << 30,
}
K_P, N_PROBE, MAX_RAW = 3, 3, 6


def _write(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_two_source_prop2diff_run(tmp_path, embedded_dir):
    arith = _write(
        tmp_path / "arith.jsonl",
        [
            {"query_id": "add", "query": "What is 10 + 10?", "gt_ans": "20"},
            {"query_id": "hard", "query": "What is 123456789 times 987654321?", "gt_ans": "-7.25"},
        ],
    )
    gsm = _write(  # GSM8K's format; the first record's `id` clashes with arith's `add`
        tmp_path / "gsm.jsonl",
        [
            {"id": "add", "question": "What is 1 + 2?", "answer": "1 + 2 = 3\n#### 3"},
            {"question": "What is 2 times 3?", "answer": "2 * 3 = 6\n#### 6"},
            {"question": "left out by the limit", "answer": "#### 1"},
        ],
    )
    run = tmp_path / "run"
    cfg = load_config(
        None,
        {
            "model": str(embedded_dir),
            "queries": [
                {"source": arith, "name": "arith"},
                {"source": gsm, "name": "gsm8k", "preset": "gsm8k", "limit": 2},
            ],
            "prompt.instruction": INSTRUCTION,
            "sampling.temperature": 0.7,
            "sampling.top_p": 0.9,
            "sampling.max_tokens": 64,
            "strategy.k_p": K_P,
            "strategy.n_probe": N_PROBE,
            "strategy.max_raw": MAX_RAW,
            "engine": ENGINE,
            "run.dir": str(run),
        },
    )
    outcome = asyncio.run(synth(cfg, progress=False))
    assert outcome.outcome == "done"

    pool = check_pool_consistent(run)
    info = query_info(run)
    derived = [qid for qid in info if qid.startswith("q-")]
    assert len(derived) == 1 and len(info) == 4  # the third gsm8k record is past the limit
    sources = {"arith:add": "arith", "hard": "arith", "gsm8k:add": "gsm8k", derived[0]: "gsm8k"}
    assert {qid: r["source"] for qid, r in info.items()} == sources
    assert all(r["source"] == sources[r["query_id"]] for r in pool)

    # one Prop2Diff normalisation over both sources, from this run's own probe counts
    fails = {}
    for qid in info:
        lines = sorted((r for r in pool if r["query_id"] == qid), key=lambda r: r["sample_idx"])
        assert len(lines) >= N_PROBE
        fails[qid] = 1 - Fraction(sum(r["correct"] for r in lines[:N_PROBE]), N_PROBE)
    fmax = max(fails.values())
    assert fails["hard"] == 1  # its reference is wrong on purpose: max f = 1
    for qid, row in info.items():
        assert row["target"] == max(1, ceil(K_P * fails[qid] / fmax)), (qid, row, fails)
        assert row["short_by"] == max(0, row["target"] - row["tot_n_corrects"])
        if row["stop_reason"] == "max_raw":
            assert row["tot_n_samples"] == MAX_RAW and row["short_by"] > 0
        else:
            assert row["stop_reason"] == "target_met" and row["short_by"] == 0
    cut = outcome.summary["queries"]["cut_short"]["max_raw"]
    capped = [r for r in info.values() if r["stop_reason"] == "max_raw"]
    assert cut["queries"] == len(capped) >= 1
    assert cut["short_by"] == sum(r["short_by"] for r in capped)

    result = CliRunner().invoke(main, ["stats", str(run), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    by = {e["source"]: e for e in summary["by_source"]}
    assert set(by) == {"arith", "gsm8k"}
    for key in ("queries", "responses", "correct"):
        assert sum(e[key] for e in by.values()) == summary[key]
    for name in by:
        lines = [r for r in pool if r["source"] == name]
        assert by[name]["responses"] == len(lines)
        assert by[name]["correct"] == sum(r["correct"] for r in lines)
        assert by[name]["queries"] == len(Counter(r["query_id"] for r in lines)) == 2
    assert summary["cut_short"]["max_raw"]["queries"] == len(capped)
