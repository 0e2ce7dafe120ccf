"""`dart plan`: the per-query predictions against brute force, the plan's totals against
simulated runs of the real scheduler on fabricated priors, plans of runs in progress, the
strategies' special cases, the CLI and the line `dart synth` prints at start."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dartmath.synth.run as run_mod
from dartmath.cli import main
from dartmath.errors import InputError, ResumeRefused
from dartmath.plan.build import plan_config, plan_run
from dartmath.plan.estimate import JEFFREYS, MIN_FIT, Belief, estimate_many, fit_base
from dartmath.synth.config import load_config
from dartmath.synth.scheduler import Scheduler
from dartmath.synth.store import RunStore
from input_files import write_jsonl
from scripted_sampler import ScriptedSampler
from synth_helpers import OLD_RUN, OLD_RUN_SETTINGS

# ------------------------------------------------------------------------------ estimates


def brute_force(need: int, cap: int, belief: Belief, reps: int, rng) -> tuple[np.ndarray, ...]:
    """Raw samples, kept responses and stopped-short flags of `reps` simulated queries: a pass
    rate drawn from the belief, then Bernoulli trials one by one up to the cap."""
    exact = belief.counts is None
    p = np.full(reps, belief.rate) if exact else rng.beta(*belief.beta(), size=reps)
    hits = np.cumsum(rng.random((reps, cap)) < p[:, None], axis=1)
    reached = hits[:, -1] >= need
    raw = np.where(reached, np.argmax(hits >= need, axis=1) + 1, cap)
    return raw, np.minimum(hits[:, -1], need), ~reached


@pytest.mark.parametrize(
    "need, cap, belief",
    [
        (3, 16, Belief.observed(5, 16)),
        (4, 16, Belief.observed(0, 16)),  # never solved in the prior: mostly takes its cap
        (2, 30, Belief(0.3)),  # a bare rate: only the sampling's own spread
        (5, 40, Belief.observed(1, 4)),  # seen 4 times: a wide spread
        (1, 8, Belief.observed(16, 16)),
    ],
)
def test_an_estimate_is_the_brute_force_mean_and_spread(need, cap, belief):
    (est,) = estimate_many([need], [cap], [belief])
    raw, kept, short = brute_force(need, cap, belief, 100_000, np.random.default_rng(7))
    se = math.sqrt(est.raw_var / len(raw)) + 1e-9
    assert abs(raw.mean() - est.raw_mean) < 5 * se
    assert raw.var() == pytest.approx(est.raw_var, rel=0.05, abs=1e-6)
    assert kept.mean() == pytest.approx(est.kept_mean, abs=0.02)
    assert short.mean() == pytest.approx(est.p_short, abs=0.01)


def test_without_a_cap_the_closed_forms_agree_with_a_cap_never_reached():
    belief = Belief.observed(6, 10)
    free, capped = estimate_many([4, 4], [None, 400], [belief, belief])
    assert free.raw_mean == pytest.approx(capped.raw_mean, rel=1e-6)
    assert free.raw_var == pytest.approx(capped.raw_var, rel=1e-3)
    assert capped.p_short < 1e-9


def test_without_a_cap_a_query_never_or_once_solved_has_no_finite_figure():
    never, once, exact0 = estimate_many(
        [2, 2, 1], [None] * 3, [Belief.observed(0, 32), Belief.observed(1, 32), Belief(0.0)]
    )
    assert math.isinf(never.raw_mean) and math.isinf(exact0.raw_mean)
    assert math.isfinite(once.raw_mean) and math.isinf(once.raw_var)


def test_the_base_is_fitted_to_the_spread_of_pass_rates():
    """Counts drawn from a known U-shaped population of pass rates give that population back;
    too few queries, no spread, or none ever solved give Jeffreys'."""
    rng = np.random.default_rng(5)
    p = rng.beta(0.3, 0.6, size=20_000)
    n = rng.integers(8, 65, size=p.size)
    a0, b0 = fit_base(list(zip(rng.binomial(n, p), n, strict=True)))
    assert a0 == pytest.approx(0.3, rel=0.1) and b0 == pytest.approx(0.6, rel=0.1)
    assert fit_base([(1, 4)] * (MIN_FIT - 1)) == JEFFREYS
    assert fit_base([(8, 16)] * 400) == JEFFREYS  # no spread beyond the binomial's own
    assert fit_base([(0, 16)] * 50) == JEFFREYS  # never solved, any of them: no mean to fit


def test_alike_queries_are_estimated_once_and_in_order():
    beliefs = [Belief.observed(i % 3, 6) for i in range(9)]
    ests = estimate_many([2] * 9, [12] * 9, beliefs)
    assert [e.raw_mean for e in ests[:3]] == [e.raw_mean for e in ests[3:6]]
    assert ests[0].raw_mean > ests[1].raw_mean > ests[2].raw_mean  # harder: more samples


# ------------------------------------------------------------------------------ plans


def fabricated(tmp_path, n: int = 30, seed: int = 3):
    """Queries and a prior of `n` queries: true rates spread over [0, 0.9], prior counts of
    8 to 40 samples drawn from them (some never solved)."""
    rng = np.random.default_rng(seed)
    queries, prior = [], []
    for i in range(n):
        samples = int(rng.integers(8, 41))
        correct = int(rng.binomial(samples, 0.9 * i / (n - 1)))
        queries.append({"query_id": f"q{i}", "query": f"What is {i} + 1?", "gt_ans": str(i + 1)})
        prior.append(
            {
                "query_id": f"q{i}",
                "pass_rate": correct / samples,
                "tot_n_corrects": correct,
                "tot_n_samples": samples,
            }
        )
    write_jsonl(tmp_path / "queries.jsonl", queries)
    write_jsonl(tmp_path / "prior.jsonl", prior)
    return tmp_path / "queries.jsonl", tmp_path / "prior.jsonl"


def config(tmp_path, **strategy):
    queries, prior = fabricated(tmp_path)
    values = {"queries.source": str(queries), "run.dir": str(tmp_path / "run")}
    values.update({f"strategy.{k}": v for k, v in strategy.items()})
    return values, prior


def simulate(cfg, prior_path, base, reps: int, seed: int = 11) -> dict[str, np.ndarray]:
    """`reps` runs of the real Scheduler, one sample at a time: each query's pass rate drawn
    from what the prior's counts say of it (on top of `base`), its samples Bernoulli draws."""
    rows = [json.loads(x) for x in prior_path.read_text().splitlines()]
    rates = {r["query_id"]: r["pass_rate"] for r in rows}
    ab = {
        r["query_id"]: (
            r["tot_n_corrects"] + base[0],
            r["tot_n_samples"] - r["tot_n_corrects"] + base[1],
        )
        for r in rows
    }
    rng = np.random.default_rng(seed)
    s = cfg.strategy
    out = {"raw": [], "kept": [], "short": []}
    for _ in range(reps):
        sched = Scheduler(
            list(rates),
            cfg.strategy_spec(),
            max_raw=s.max_raw,
            budget=s.budget,
            prior=rates if s.name == "prop2diff" else None,
        )
        p = {q: rng.beta(*ab[q]) for q in rates}
        while not sched.done:
            ((qid, idx, _),) = sched.next_blocks(1)
            sched.on_graded(qid, idx, bool(rng.random() < p[qid]))
        states = list(sched.states())
        out["raw"].append(sum(st.raw for st in states))
        out["kept"].append(sum(min(st.correct, st.target) for st in states))
        out["short"].append(sum(st.correct < st.target for st in states))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize(
    "strategy",
    [
        {"name": "prop2diff", "k_p": 6, "max_raw": 24},
        {"name": "uniform", "k_u": 3, "max_raw": 20},
    ],
)
def test_plan_totals_match_simulated_runs_of_the_scheduler(tmp_path, strategy):
    values, prior = config(tmp_path, **strategy)
    cfg, _, rates_from = plan_config(None, values, [str(prior)])
    plan = plan_run(cfg, rates_from=rates_from)
    t = plan.totals
    assert plan.base != JEFFREYS  # fitted to the 30 queries' spread
    sim = simulate(cfg, prior, plan.base, reps=300)
    assert t.planned == 30 and t.unknown == 0 and t.done == 0
    se = t.raw_sd / math.sqrt(300)
    assert abs(sim["raw"].mean() - t.raw_mean) < 4 * se
    assert sim["raw"].std() == pytest.approx(t.raw_sd, rel=0.2)  # the stated spread is real
    assert abs(sim["kept"].mean() - t.kept_mean) < 4 * t.kept_sd / math.sqrt(300)
    assert sim["kept"].std() == pytest.approx(t.kept_sd, rel=0.2)
    assert sim["short"].mean() == pytest.approx(t.short_queries, abs=0.5)
    # the stated interval, mean ± 2 sd, holds about 95% of the runs
    inside = np.abs(sim["raw"] - t.raw_mean) <= 2 * t.raw_sd
    assert 0.9 <= inside.mean() <= 0.99


def test_prop2diff_targets_are_the_schedulers(tmp_path):
    values, prior = config(tmp_path, name="prop2diff", k_p=6, max_raw=24)
    cfg, _, _ = plan_config(None, values, [str(prior)])
    plan = plan_run(cfg)
    rows = {r.query_id: r for r in plan.queries}
    hardest = min(plan.queries, key=lambda r: r.prior_rate)
    assert hardest.target == 6 and all(1 <= r.target <= 6 for r in rows.values())
    assert rows["q29"].target < rows["q0"].target


def test_a_run_in_progress_is_planned_from_what_is_left(tmp_path):
    """The run's own samples count: a query that met its target is done, the others' pass
    rates pool the prior's counts with the run's; a torn last line is left out, not cut."""
    values, prior = config(tmp_path, name="uniform", k_u=2, max_raw=20)
    cfg, _, rates_from = plan_config(None, values, [str(prior)])
    store = RunStore(cfg.run.dir)
    store.prepare(cfg.to_dict())
    lines = [
        {"query_id": "q5", "sample_idx": i, "correct": c, "n_tokens": 10}
        for i, c in enumerate([False, True, True])
    ] + [{"query_id": "q0", "sample_idx": i, "correct": False, "n_tokens": 30} for i in range(6)]
    pool = store.pool_path
    pool.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"query_id": "q1", "sa')
    before = pool.read_bytes()
    plan = plan_run(cfg, rates_from=rates_from)
    assert pool.read_bytes() == before
    rows = {r.query_id: r for r in plan.queries}
    assert rows["q5"].status == "done" and rows["q5"].kept_mean == 2
    assert (rows["q0"].raw, rows["q0"].correct) == (6, 0)
    assert rows["q0"].belief.counts[1] == rows["q0"].prior_samples + 6
    assert plan.totals.done == 1 and plan.totals.raw_so_far == 9
    assert plan.tokens.per_response == pytest.approx(210 / 9)
    # lengths per query and verdict: q0 was only wrong (30), q5 right (10) and wrong (10)
    assert plan.tokens.of("q0", False) == 30 and plan.tokens.of("q5", True) == 10
    assert plan.tokens.of("q0", True) == 10  # no correct one of its own: the pool's
    assert plan.tokens.of("q9", False) == 190 / 7  # nothing of its own: the pool's incorrect
    cost = 0.0
    for r in plan.queries:
        if r.status == "planned":
            right = r.kept_mean - r.kept_so_far()
            cost += right * plan.tokens.of(r.query_id, True)
            cost += (r.raw_mean - right) * plan.tokens.of(r.query_id, False)
    assert plan.cost()["tokens"] == pytest.approx(cost)
    assert plan.resumed and "9 so far" in plan.format()
    fresh = plan_run(
        plan_config(None, {**values, "run.dir": str(tmp_path / "new")}, [str(prior)])[0],
        rates_from=rates_from,
    )
    assert fresh.totals.raw_mean > plan.totals.raw_mean


def test_a_run_directory_of_another_config_is_refused(tmp_path):
    values, prior = config(tmp_path, name="uniform", k_u=2, max_raw=20)
    cfg, _, rates_from = plan_config(None, values, [str(prior)])
    other = load_config(None, {**values, "strategy.k_u": 5})
    store = RunStore(cfg.run.dir)
    store.prepare(other.to_dict())
    store.pool_path.write_text("")
    with pytest.raises(ResumeRefused, match="strategy.k_u"):
        plan_run(cfg, rates_from=rates_from)


def test_vrt_draws_a_fixed_number_and_keeps_what_its_pass_rate_says(tmp_path):
    values, prior = config(tmp_path, name="vrt", n_vrt=10, max_raw=None)
    cfg, _, rates_from = plan_config(None, values, [str(prior)])
    plan = plan_run(cfg, rates_from=rates_from)
    assert plan.totals.raw_mean == 300 and plan.totals.raw_sd == 0
    expected = sum(10 * r.belief.mean() for r in plan.queries)
    assert plan.totals.kept_mean == pytest.approx(expected)
    # without pass rates the samples are still known, the correct ones not
    blind = plan_run(cfg)
    assert blind.totals.raw_mean == 300 and blind.totals.kept_unknown == 30


def test_a_probe_without_a_prior_is_unknown_with_its_probe_as_a_floor(tmp_path):
    values, _ = config(tmp_path, name="prop2diff", k_p=4, n_probe=8, max_raw=16)
    cfg, _, _ = plan_config(None, values, [])
    plan = plan_run(cfg)
    assert plan.totals.unknown == 30 and plan.totals.unknown_min_raw == 240
    assert "at least 240 (unknown)" in plan.format()


def test_no_cap_a_never_solved_query_takes_the_budget(tmp_path):
    """Bare pass rates (no counts): a rate of 0 is exact, so with no cap the query is never
    done and the budget is what stops the run."""
    values, prior = config(tmp_path, name="uniform", k_u=2, max_raw=None, budget=5000)
    bare = [
        {"query_id": r["query_id"], "pass_rate": r["pass_rate"]}
        for r in map(json.loads, prior.read_text().splitlines())
    ]
    write_jsonl(prior, bare)
    cfg, _, rates_from = plan_config(None, values, [str(prior)])
    plan = plan_run(cfg, rates_from=rates_from)
    t = plan.totals
    zero = sum(1 for r in bare if r["pass_rate"] == 0)
    assert zero and t.unbounded == zero == t.zero_rate
    assert plan.budget_binds() and plan.samples_to_draw() == 5000
    text = plan.format()
    assert f"{zero} never-solved queries (the budget's rest)" in text
    assert "it runs out first" in text


def test_cost_in_tokens_hours_and_gpu_hours(tmp_path):
    values, prior = config(tmp_path, name="uniform", k_u=2, max_raw=20)
    args = ["plan", "--queries", values["queries.source"], "--run-dir", values["run.dir"]]
    args += ["--strategy", "uniform", "--k-u", "2", "--max-raw", "20"]
    args += ["--difficulty-from", str(prior), "--tokens-per-response", "500"]
    args += ["--tokens-per-s", "1000", "--replicas", "4", "--gpus-per-replica", "2", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    draw = doc["totals"]["raw_mean"]
    assert doc["cost"]["tokens"] == pytest.approx(draw * 500)
    assert doc["cost"]["hours"] == pytest.approx(draw * 500 / 4000 / 3600)
    assert doc["cost"]["gpu_hours"] == pytest.approx(doc["cost"]["hours"] * 8)
    assert len(doc["queries"]) == 30 and doc["queries"][0]["status"] == "planned"


def test_cli_text_plot_and_bad_input(tmp_path):
    values, prior = config(tmp_path)
    base = ["plan", "--queries", values["queries.source"], "--run-dir", values["run.dir"]]
    base += ["--strategy", "prop2diff", "--k-p", "4", "--max-raw", "16"]
    png = tmp_path / "plan.png"
    ok = CliRunner().invoke(main, [*base, "--difficulty-from", str(prior), "--plot", str(png)])
    assert ok.exit_code == 0, ok.output
    assert "raw samples" in ok.stdout and "prop2diff(k_p=4)" in ok.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # no pass rate and no probe: the same error as dart synth's
    bad = CliRunner().invoke(main, [*base, "--difficulty-from", str(tmp_path / "queries.jsonl")])
    assert bad.exit_code == 2
    assert "dart plan: error:" in bad.stderr and "pass_rate" in bad.stderr
    missing = CliRunner().invoke(main, [*base])
    assert missing.exit_code == 2 and "needs a difficulty" in missing.stderr


def test_dart_synth_prints_the_plan_at_start(tmp_path, monkeypatch):
    values, prior = config(tmp_path)

    async def factory(cfg, template):
        return ScriptedSampler(lambda prompt, k: "The answer is 1.")

    monkeypatch.setattr(run_mod, "start_sampler", factory)
    args = ["synth", "--queries", values["queries.source"], "--run-dir", values["run.dir"]]
    args += ["--strategy", "prop2diff", "--k-p", "2", "--max-raw", "4", "--template", "alpaca"]
    args += ["--difficulty-from", str(prior), "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("dart synth: note: plan:")]
    assert "responses kept" in line


def test_unreadable_prior_is_an_input_error(tmp_path):
    values, _ = config(tmp_path, name="uniform", k_u=2, max_raw=20)
    cfg, _, rates_from = plan_config(None, values, [str(tmp_path / "nope.jsonl")])
    with pytest.raises(InputError):
        plan_run(cfg, rates_from=rates_from)


def test_a_config_of_several_sources_is_planned_per_source(tmp_path):
    queries, prior = fabricated(tmp_path)
    rows = [json.loads(x) for x in queries.read_text().splitlines()]
    write_jsonl(tmp_path / "a.jsonl", rows[:10])
    write_jsonl(tmp_path / "b.jsonl", rows[10:])
    values = {
        "queries": [
            {"name": "a", "source": str(tmp_path / "a.jsonl")},
            {"name": "b", "source": str(tmp_path / "b.jsonl")},
        ],
        "run.dir": str(tmp_path / "run"),
        "strategy.name": "uniform",
        "strategy.k_u": 2,
        "strategy.max_raw": 12,
    }
    cfg, _, rates_from = plan_config(None, values, [str(prior)])
    plan = plan_run(cfg, rates_from=rates_from)
    groups = plan.by_source()
    assert list(groups) == ["a", "b"] and [t.queries for t in groups.values()] == [10, 20]
    assert sum(t.raw_mean for t in groups.values()) == pytest.approx(plan.totals.raw_mean)
    assert "by source:" in plan.format()
    assert [e["source"] for e in json.loads(plan.to_json())["by_source"]] == ["a", "b"]


def test_a_throughput_that_is_not_positive_is_refused(tmp_path):
    values, prior = config(tmp_path)
    args = ["plan", "--queries", values["queries.source"], "--run-dir", values["run.dir"]]
    args += ["--strategy", "uniform", "--k-u", "2", "--max-raw", "8", "--tokens-per-s", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--tokens-per-s must be a positive number" in result.stderr


def test_a_run_directory_of_an_older_version_is_planned_from(tmp_path, monkeypatch):
    """tests/data/run_84e762b (pool lines without `source`): its samples count, nothing in it
    changes."""
    shutil.copytree(OLD_RUN, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")
    before = {p: p.read_bytes() for p in Path("run").iterdir()}
    cfg = load_config(None, OLD_RUN_SETTINGS)
    plan = plan_run(cfg)
    assert plan.resumed and plan.totals.raw_so_far == sum(
        1 for _ in Path("run/pool.jsonl").read_text().splitlines()
    )
    assert plan.totals.done + plan.totals.planned + plan.totals.unknown == plan.totals.queries
    assert {p: p.read_bytes() for p in Path("run").iterdir()} == before
