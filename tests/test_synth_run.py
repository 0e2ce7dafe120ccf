"""`synth/run.py` pieces that need no engine: the Prop2Diff prior, resuming an older run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from dartmath.errors import InputError, ResumeRefused
from dartmath.sampling import prompts
from dartmath.synth.config import load_config
from dartmath.synth.run import synth
from scripted_sampler import ScriptedSampler
from synth_helpers import OLD_RUN, OLD_RUN_SETTINGS, scheduler_of


def _cfg(tmp_path, prior_rows):
    q = tmp_path / "q.jsonl"
    q.write_text(
        "".join(
            json.dumps({"query_id": f"q{i}", "query": f"What is {i} + 1?", "gt_ans": str(i + 1)})
            + "\n"
            for i in range(4)
        )
    )
    prior = tmp_path / "query_info.jsonl"
    prior.write_text("".join(json.dumps(r) + "\n" for r in prior_rows))
    return load_config(
        None,
        {
            "queries.source": str(q),
            "run.dir": str(tmp_path / "run"),
            "strategy.k_p": 10,
            "strategy.difficulty_from": str(prior),
            "strategy.max_raw": 100,
        },
    )


def test_prior_from_a_query_info_file_sets_prop2diff_targets(tmp_path):
    rows = [{"query_id": f"q{i}", "pass_rate": p} for i, p in enumerate([1.0, 0.75, 0.5, 0.0])]
    rows.append({"query_id": "not-in-this-run", "pass_rate": 0.3})  # extra ids are fine
    cfg = _cfg(tmp_path, rows)
    sched = scheduler_of(cfg)
    assert [sched.state(f"q{i}").target for i in range(4)] == [1, 3, 5, 10]


def test_prior_missing_queries_is_an_error_naming_them(tmp_path):
    cfg = _cfg(tmp_path, [{"query_id": "q0", "pass_rate": 0.5}])
    with pytest.raises(
        InputError,
        match=r"query_info.jsonl: the Prop2Diff prior has no pass rate "
        r"for 3 of 4 queries \(e\.g\. 'q1', 'q2', 'q3'\)",
    ) as e:
        scheduler_of(cfg)
    assert "matched on query_id" in str(e.value)


def test_a_run_directory_of_the_version_before_the_record_module_resumes(tmp_path, monkeypatch):
    """The version before this layout wrote its summary only at a session's end, had no lock
    file and no `run.log_every`; its interrupted run (3 queries, uniform k_u=2, max_raw 6;
    a met its target, b has 3 wrong samples, c none) used the alpaca template before it gained
    its final newline: resuming is refused with that reason, and with --force it resumes and
    keeps all it wrote."""
    shutil.copytree(OLD_RUN, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")  # its config names q.jsonl and run relative to here
    pool = Path("run/pool.jsonl")
    old_pool = pool.read_bytes()
    old_session = json.loads(Path("run/run_summary.json").read_text())["sessions"][0]
    cfg = load_config(None, OLD_RUN_SETTINGS)

    def right_for_b_wrong_for_c(prompt: str, k: int) -> str:
        return "The answer is 4." if "2 + 2" in prompt else "The answer is 0."

    async def factory(cfg, template):
        return ScriptedSampler(right_for_b_wrong_for_c)

    with pytest.raises(ResumeRefused, match=r"old text of prompt template 'alpaca': it now ends "):
        asyncio.run(synth(cfg, progress=False, sampler_factory=factory))
    assert pool.read_bytes() == old_pool
    outcome = asyncio.run(synth(cfg, force=True, progress=False, sampler_factory=factory))

    assert outcome.resumed and outcome.outcome == "done"
    assert pool.read_bytes().startswith(old_pool)  # nothing written before is touched
    lines = [json.loads(line) for line in pool.read_text().splitlines()]
    assert sorted(r["sample_idx"] for r in lines if r["query_id"] == "b") == [0, 1, 2, 3, 4]
    assert sum(r["query_id"] == "a" for r in lines) == 2  # a was done: not sampled again
    rows = {
        r["query_id"]: r
        for r in map(json.loads, Path("run/query_info.jsonl").read_text().splitlines())
    }
    assert {q: (r["tot_n_corrects"], r["stop_reason"]) for q, r in rows.items()} == {
        "a": (2, "target_met"),
        "b": (2, "target_met"),
        "c": (0, "max_raw"),
    }
    summary = json.loads(Path("run/run_summary.json").read_text())
    assert summary["sessions"][0] == old_session
    assert [s["outcome"] for s in summary["sessions"]] == ["interrupted", "done"]
    assert summary["totals"]["pool_lines_written"] == len(lines)


def test_a_run_is_not_resumed_with_another_text_of_its_template(tmp_path, monkeypatch):
    """A run records its template's fingerprint; a resume whose template text differs (here:
    the text changed under the same name) is refused, one whose text is the same resumes."""
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"query_id": "a", "query": "What is 1 + 1?", "gt_ans": "2"}) + "\n")
    over = {"queries.source": str(q), "run.dir": str(tmp_path / "run"), "prompt.template": "alpaca"}
    cfg = load_config(None, over | {"strategy.name": "vrt", "strategy.n_vrt": 2})

    async def factory(cfg, template):
        return ScriptedSampler(lambda prompt, k: "The answer is 2.")

    def run():
        return asyncio.run(synth(cfg, progress=False, sampler_factory=factory))

    assert run().outcome == "done"
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert summary["prompt_format"] == {
        "template": "alpaca",
        "fingerprint": prompts.ALPACA.fingerprint(),
    }
    changed = dataclasses.replace(prompts.ALPACA, suffix="\n\n### Response:")
    assert changed.fingerprint() != prompts.ALPACA.fingerprint()
    monkeypatch.setitem(prompts.TEMPLATES, "alpaca", changed)
    with pytest.raises(ResumeRefused, match="text of prompt template 'alpaca' differs"):
        run()
    monkeypatch.undo()
    assert run().outcome == "nothing-to-do"  # the same text: resumes (nothing left to do)


def test_an_older_run_with_an_unchanged_template_resumes_without_force(tmp_path, monkeypatch):
    """The same older run directory, had it used `deepseekmath` (whose text did not change):
    it resumes as it is, and its new samples continue each query's sample_idx."""
    shutil.copytree(OLD_RUN, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")
    config = Path("run/config.yaml")
    config.write_text(config.read_text().replace("template: alpaca", "template: deepseekmath"))
    old_lines = Path("run/pool.jsonl").read_text().splitlines()
    cfg = load_config(None, {**OLD_RUN_SETTINGS, "prompt.template": "deepseekmath"})

    async def factory(cfg, template):
        return ScriptedSampler(
            lambda prompt, k: "\\boxed{4}" if "2 + 2" in prompt else "\\boxed{0}"
        )

    outcome = asyncio.run(synth(cfg, progress=False, sampler_factory=factory))
    assert outcome.resumed and outcome.outcome == "done"
    lines = [json.loads(line) for line in Path("run/pool.jsonl").read_text().splitlines()]
    assert [json.dumps(r) for r in lines[: len(old_lines)]] == [
        json.dumps(json.loads(x)) for x in old_lines
    ]
    for qid in ("a", "b", "c"):
        idx = [r["sample_idx"] for r in lines if r["query_id"] == qid]
        assert idx == list(range(len(idx)))  # continued where the older run stopped
