"""One run over several query sources: the config's list form, ids unique across sources,
`source` on every record, `short_by`, and `dart stats` by source and cap (no engine here; the
real-engine run is in test_multi_source_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
from fractions import Fraction
from math import ceil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dartmath.cli import main
from dartmath.errors import ConfigError
from dartmath.grading.grade import Verdict
from dartmath.queries import Query, QueryInputError, QuerySource, load_queries, load_query_sources
from dartmath.record import QueryAccumulator, pool_record, query_info_from_records
from dartmath.sampling.base import Completion
from dartmath.stats import load_report
from dartmath.synth.config import load_config, meaning_diff, parse_override, resolve_config
from dartmath.synth.outcome import format_outcome
from dartmath.synth.run import load_run_queries, synth
from input_files import write_jsonl
from scripted_sampler import ScriptedSampler
from synth_helpers import OLD_RUN, OLD_RUN_SETTINGS

DATA = Path(__file__).parent / "data"
MATH_DIR = DATA / "queries" / "MATH"
OLD_CONFIG = OLD_RUN / "run" / "config.yaml"
STRATEGY = {"strategy.k_p": 4, "strategy.n_probe": 2, "strategy.max_raw": 8, "run.dir": "r"}


def two_sources(**extra) -> dict:
    return {
        "queries": [{"source": "a.jsonl"}, {"source": "b.jsonl", "name": "b", "limit": 3}],
        **STRATEGY,
        **extra,
    }


# --- config ------------------------------------------------------------------------------


def test_list_form_gives_each_source_its_keys_and_a_name():
    cfg = load_config(None, two_sources())
    a, b = cfg.query_sources()
    assert (a.source, a.label, a.limit) == ("a.jsonl", "a.jsonl", None)
    assert (b.source, b.label, b.limit) == ("b.jsonl", "b", 3)
    assert cfg.to_dict()["queries"][1] == {
        "source": "b.jsonl",
        "preset": None,
        "config": None,
        "split": None,
        "fields": {},
        "limit": 3,
        "name": "b",
    }


def test_list_form_from_a_yaml_file_and_index_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "queries:\n  - {source: MATH, preset: math, name: math}\n"
        "  - {source: openai/gsm8k, config: main, preset: gsm8k, name: gsm8k}\n"
        "run: {dir: r}\nstrategy: {k_p: 4, n_probe: 2, max_raw: 8}\n"
    )
    cfg = load_config(p, {"queries.1.limit": 5, "queries.0.split": "test"})
    assert [(q.label, q.limit, q.split) for q in cfg.query_sources()] == [
        ("math", None, "test"),
        ("gsm8k", 5, None),
    ]


def test_whole_list_override_then_an_index_into_it():
    key, value = parse_override("queries=[{source: a.jsonl}, {source: b.jsonl, name: b}]")
    overrides = {key: value, "queries.0.limit": 2, **STRATEGY}
    cfg = load_config(None, overrides)
    assert [(q.label, q.limit) for q in cfg.query_sources()] == [("a.jsonl", 2), ("b", None)]
    assert value == [{"source": "a.jsonl"}, {"source": "b.jsonl", "name": "b"}]  # not edited


def test_mapping_form_still_takes_dotted_overrides():
    cfg = load_config(None, {"queries.source": "a.jsonl", "queries.limit": 2, **STRATEGY})
    assert [(q.label, q.limit) for q in cfg.query_sources()] == [("a.jsonl", 2)]


@pytest.mark.parametrize(
    "extra,needle",
    [
        ({"queries.1.name": "a.jsonl"}, "`queries.0` and `queries.1` are both named 'a.jsonl'"),
        ({"queries": [{"source": "x"}, {"source": "x"}]}, "both named 'x'"),
        ({"queries.1.name": " "}, "`queries.1.name` must not be empty"),
        ({"queries.1.limit": 0}, "`queries.1.limit` must be at least 1"),
        ({"queries.1.limit": "5"}, "`queries.1.limit` must be int"),
        ({"queries.0.source": None}, "`queries.0.source` is required"),
        ({"queries": []}, "`queries` is an empty list"),
        ({"queries": [{"source": "a", "limt": 1}]}, "queries.0.limt"),
        ({"queries": ["a.jsonl"]}, "`queries.0` must be a mapping"),
        ({"queries.source": "x"}, "`queries` is a list: index it, e.g. queries.0.source"),
        ({"queries.2.limit": 1}, "`queries` has 2 entries (0 to 1)"),
        ({"run.stop": "fastest"}, "`run.stop` must be submission-order or first-finished"),
    ],
)
def test_list_form_errors_name_the_source_and_key(extra, needle):
    with pytest.raises(ConfigError) as e:
        resolve_config(None, two_sources(**extra))
    assert needle in str(e.value)


def test_an_index_into_the_mapping_form_is_refused():
    with pytest.raises(ConfigError, match="`queries` is not a list, so has no entry 0"):
        load_config(None, {"queries.source": "a.jsonl", "queries.0.limit": 2, **STRATEGY})


def test_run_stop_is_checked_and_is_not_a_meaning_key():
    cfg = load_config(None, two_sources())
    assert cfg.run.stop == "submission-order"
    other = load_config(None, two_sources(**{"run.stop": "first-finished"}))
    assert other.run.stop == "first-finished"
    assert meaning_diff(cfg.to_dict(), other.to_dict()) == []


def test_a_config_of_the_version_before_has_no_meaning_diff_with_the_same_run_today(tmp_path):
    """The run in tests/data/run_84e762b, as its test resumes it: the mapping form serialises
    as it did, plus `name: null`, which reads as the missing key it replaces."""
    old = yaml.safe_load(OLD_CONFIG.read_text())
    cfg = load_config(None, OLD_RUN_SETTINGS)
    new = cfg.to_dict()
    assert meaning_diff(old, new) == []
    assert list(new["queries"]) == [*old["queries"], "name"]
    assert new["queries"]["name"] is None
    renamed = load_config(None, {**STRATEGY, "queries.source": "q.jsonl", "queries.name": "x"})
    assert "queries.name: None -> 'x'" in meaning_diff(old, renamed.to_dict())


def test_the_old_run_resumes_and_its_new_lines_and_rows_name_their_source(tmp_path, monkeypatch):
    """tests/data/run_84e762b (pool lines without `source`) resumes; what it writes now carries
    `source`, and every query-info row has it and `short_by`. (Its config has no meaning diff,
    see above; `force` is for its alpaca prompt text, which has changed since, see
    test_synth_run.py.)"""
    shutil.copytree(OLD_RUN, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")
    old_pool = Path("run/pool.jsonl").read_bytes()
    cfg = load_config(None, OLD_RUN_SETTINGS)

    async def factory(cfg, template):
        return ScriptedSampler(lambda prompt, k: "The answer is 0.")

    outcome = asyncio.run(synth(cfg, force=True, progress=False, sampler_factory=factory))
    assert outcome.resumed and outcome.outcome == "done"
    pool = Path("run/pool.jsonl").read_bytes()
    assert pool.startswith(old_pool)
    new_lines = [json.loads(x) for x in pool[len(old_pool) :].splitlines()]
    assert new_lines and all(r["source"] == "q.jsonl" for r in new_lines)
    rows = {
        r["query_id"]: r
        for r in map(json.loads, Path("run/query_info.jsonl").read_text().splitlines())
    }
    assert {qid: (r["source"], r["stop_reason"], r["short_by"]) for qid, r in rows.items()} == {
        "a": ("q.jsonl", "target_met", 0),
        "b": ("q.jsonl", "max_raw", 2),
        "c": ("q.jsonl", "max_raw", 2),
    }
    assert outcome.summary["queries"]["cut_short"]["max_raw"] == {
        "queries": 2,
        "short_by": 4,
        "max_short_by": 2,
    }


def test_meaning_diff_of_sources_names_the_source_and_a_list_of_one_is_its_mapping():
    a = load_config(None, two_sources()).to_dict()
    b = load_config(None, two_sources(**{"queries.1.limit": 5})).to_dict()
    assert meaning_diff(a, b) == ["queries.1.limit: 3 -> 5"]
    one = load_config(None, {"queries.source": "a.jsonl", **STRATEGY}).to_dict()
    listed = load_config(None, {"queries": [{"source": "a.jsonl"}], **STRATEGY}).to_dict()
    assert meaning_diff(one, listed) == []
    assert meaning_diff(one, a)  # a second source is a change


# --- loading -------------------------------------------------------------------------------


def q(qid: str | None, text: str, ans: str = "1", **extra) -> dict:
    rec = {"query": text, "gt_ans": ans, **extra}
    if qid is not None:
        rec["query_id"] = qid
    return rec


def test_only_ids_found_in_two_sources_are_namespaced_in_both(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [q("x", "A x"), q("y", "A y"), q(None, "shared?")])
    b = write_jsonl(tmp_path / "b.jsonl", [q("z", "B z"), q("x", "B x")])
    qs = load_query_sources([QuerySource(str(a), "A"), QuerySource(str(b), "B")])
    assert [(x.query_id, x.source, x.query) for x in qs] == [
        ("A:x", "A", "A x"),
        ("y", "A", "A y"),
        (qs[2].query_id, "A", "shared?"),
        ("z", "B", "B z"),
        ("B:x", "B", "B x"),
    ]
    assert qs[2].query_id.startswith("q-")  # a derived id that does not clash stays plain


def test_ids_are_stable_across_loads_and_record_orders(tmp_path):
    recs_a = [q("x", "A x"), q("y", "A y"), q(None, "What is 3?")]
    recs_b = [q("x", "B x"), q(None, "What is 3?"), q("w", "B w")]
    first = load_query_sources(
        [
            QuerySource(str(write_jsonl(tmp_path / "a.jsonl", recs_a)), "A"),
            QuerySource(str(write_jsonl(tmp_path / "b.jsonl", recs_b)), "B"),
        ]
    )
    again = load_query_sources(
        [
            QuerySource(str(tmp_path / "a.jsonl"), "A"),
            QuerySource(str(tmp_path / "b.jsonl"), "B"),
        ]
    )
    reordered = load_query_sources(
        [
            QuerySource(str(write_jsonl(tmp_path / "a2.jsonl", recs_a[::-1])), "A"),
            QuerySource(str(write_jsonl(tmp_path / "b2.jsonl", recs_b[::-1])), "B"),
        ]
    )
    assert first == again
    ids = {(x.source, x.query): x.query_id for x in first}
    assert {(x.source, x.query): x.query_id for x in reordered} == ids
    derived = ids[("A", "What is 3?")]  # same text in both sources: same derived id, namespaced
    assert derived.startswith("A:q-") and ids[("B", "What is 3?")] == "B:" + derived[2:]
    assert (ids[("A", "A x")], ids[("B", "B x")], ids[("A", "A y")]) == ("A:x", "B:x", "y")


def test_math_paths_and_gsm8k_derived_ids_stay_as_in_one_source_runs(tmp_path):
    gsm = write_jsonl(
        tmp_path / "gsm.jsonl",
        [{"question": "Q1?", "answer": "... #### 7"}, {"question": "Q2?", "answer": "#### 9"}],
    )
    alone_math = load_queries(MATH_DIR, preset="math")
    alone_gsm = load_queries(gsm, preset="gsm8k")
    both = load_query_sources(
        [
            QuerySource(str(MATH_DIR), "math", preset="math"),
            QuerySource(str(gsm), "gsm8k", preset="gsm8k"),
        ]
    )
    assert [x.query_id for x in both] == [x.query_id for x in alone_math + alone_gsm]
    assert [x.source for x in both] == ["math"] * 4 + ["gsm8k"] * 2


def test_a_single_source_is_named_by_its_source_string(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [q("x", "A x")])
    cfg = load_config(None, {"queries.source": str(path), **STRATEGY})
    assert [(x.query_id, x.source) for x in load_run_queries(cfg)] == [("x", str(path))]


def test_problems_of_every_source_are_reported_together(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [q("x", "A x"), q("x", "A x again"), {"query": "?"}])
    b = write_jsonl(tmp_path / "b.jsonl", [q("y", "", "2")])
    missing = tmp_path / "none.jsonl"
    with pytest.raises(QueryInputError) as e:
        load_query_sources(
            [QuerySource(str(a), "A"), QuerySource(str(b), "B"), QuerySource(str(missing), "C")]
        )
    assert [str(p) for p in e.value.problems] == [
        f"{a}:2: field 'query_id': duplicate query_id 'x' (also at {a}:1)",
        f"{a}:3: field 'gt_ans': missing",
        f"{b}:1: field 'query': empty",
        f"{missing}: no such file or folder",
    ]
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_a_namespaced_id_that_is_taken_is_a_problem_naming_both_places(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [q("x", "A x"), q("B:x", "A's own B:x")])
    b = write_jsonl(tmp_path / "b.jsonl", [q("x", "B x")])
    with pytest.raises(QueryInputError) as e:
        load_query_sources([QuerySource(str(a), "A"), QuerySource(str(b), "B")])
    assert [str(p) for p in e.value.problems] == [
        f"{b}:1: field 'query_id': 'x' is in more than one source, and its namespaced id 'B:x' "
        f"is already the id at {a}:2: rename the source (`name`) or the id"
    ]


def test_input_source_field_is_kept_as_input_source(tmp_path):
    path = write_jsonl(
        tmp_path / "numina.jsonl",
        [q("n1", "Q?", source="olympiads", level=3), q("n2", "R?", source="x", input_source="y")],
    )
    with pytest.raises(QueryInputError) as e:
        load_queries(path)
    assert [(p.location, p.field) for p in e.value.problems] == [(f"{path}:2", "source")]
    path.write_text(json.dumps(q("n1", "Q?", source="olympiads", level=3)) + "\n")
    (query,) = load_queries(path, name="numina")
    assert query.meta == {"input_source": "olympiads", "level": 3}
    assert list(query.record()) == [
        "query_id",
        "query",
        "gt_ans",
        "source",
        "input_source",
        "level",
    ]
    assert query.record()["source"] == "numina"


# --- records -------------------------------------------------------------------------------


def line(query: Query, idx: int, correct: bool) -> dict:
    completion = Completion(idx, "The answer is 1.", 5, "stop")
    verdict = Verdict("1" if correct else "2", correct, None)
    return pool_record(query, idx, completion, verdict, {"model": "m"})


def test_pool_line_and_query_info_row_have_source_after_gt_ans():
    query = Query("x", "Q?", "1", {"level": 2, "input_source": "amc"}, "math")
    rec = line(query, 0, True)
    assert list(rec)[:6] == ["query_id", "sample_idx", "query", "gt_ans", "source", "level"]
    assert rec["source"] == "math" and rec["input_source"] == "amc"
    assert "source" not in line(Query("x", "Q?", "1"), 0, True)  # no name, no field
    row = query_info_from_records([rec])[0]
    assert list(row)[:5] == ["query_id", "query", "gt_ans", "source", "level"]


def test_run_row_short_by_counts_what_the_target_counts():
    query = Query("x", "Q?", "1", {}, "math")
    acc = QueryAccumulator()
    for i, ok in enumerate([True, False, False, True, False]):
        acc.add(line(query, i, ok), i + 1)
    assert acc.run_row(query, 5, "max_raw")["short_by"] == 3  # 2 correct of 5 needed
    assert acc.run_row(query, 5, "budget", counts_correct=False)["short_by"] == 0  # 5 raw
    assert acc.run_row(query, 2, "target_met")["short_by"] == 0
    assert acc.run_row(query, None, "budget")["short_by"] is None  # target never known
    fresh = acc.run_row(Query("y", "R?", "2", {}, "gsm8k"), 3, None)
    assert (fresh["source"], fresh["tot_n_samples"], fresh["short_by"]) == ("gsm8k", 0, 3)


def test_run_row_names_the_source_of_queries_whose_lines_predate_it():
    old_line = {"query_id": "x", "sample_idx": 0, "query": "Q?", "gt_ans": "1", "correct": False}
    acc = QueryAccumulator()
    acc.add(old_line, 1)
    row = acc.run_row(Query("x", "Q?", "1", {}, "q.jsonl"), 2, None)
    assert list(row)[:4] == ["query_id", "query", "gt_ans", "source"]
    assert row["source"] == "q.jsonl" and row["short_by"] == 2
    # a pool read alone takes the source of a later line when its first had none
    acc.add({**old_line, "sample_idx": 1, "source": "q.jsonl"}, 2)
    assert acc.rows()[0]["source"] == "q.jsonl"


# --- stats ---------------------------------------------------------------------------------


def graded(qid: str, source: str | None, correct: list[bool]) -> list[dict]:
    out = []
    for i, ok in enumerate(correct):
        rec = {"query_id": qid, "sample_idx": i, "query": f"Q {qid}", "gt_ans": "1"}
        if source is not None:
            rec["source"] = source
        out.append({**rec, "resp": "r", "ans": "1", "correct": ok})
    return out


def info_row(qid: str, source: str, target: int | None, reason: str | None, n: int) -> dict:
    return {"query_id": qid, "source": source, "tot_n_samples": n, "target": target} | {
        "stop_reason": reason
    }


def make_run_dir(tmp_path: Path, strategy: str = "prop2diff") -> Path:
    run = tmp_path / "run"
    run.mkdir()
    pool = graded("m1", "math", [False] * 4)  # max_raw 4, target 3: short by 3
    pool += graded("m2", "math", [True, True])  # target 2 met
    pool += graded("g1", "gsm8k", [True, False, False])  # budget, target 3: short by 2
    write_jsonl(run / "pool.jsonl", pool)
    write_jsonl(
        run / "query_info.jsonl",
        [
            info_row("m1", "math", 3, "max_raw", 4),
            info_row("m2", "math", 2, "target_met", 2),
            info_row("g1", "gsm8k", 3, "budget", 3),
            info_row("g2", "gsm8k", 2, "budget", 0),  # never sampled: short by all its target
        ],
    )
    (run / "config.yaml").write_text(yaml.safe_dump({"strategy": {"name": strategy}}))
    return run


def test_stats_by_source_add_up_and_single_source_pools_have_none(tmp_path):
    pool = write_jsonl(
        tmp_path / "pool.jsonl",
        graded("m1", "math", [True, False]) + graded("g1", "gsm8k", [True, True, False]),
    )
    report = load_report(pool)
    by = report.summary["by_source"]
    assert [(e["source"], e["queries"], e["responses"], e["correct"]) for e in by] == [
        ("math", 1, 2, 1),
        ("gsm8k", 1, 3, 2),
    ]
    assert by[1]["pass_rate"] == pytest.approx(2 / 3)
    s = report.summary
    assert [sum(e[k] for e in by) for k in ("queries", "responses", "correct")] == [
        s["queries"],
        s["responses"],
        s["correct"],
    ]
    assert "cut_short" not in s and "by source:" in report.format()
    single = load_report(write_jsonl(tmp_path / "one.jsonl", graded("m1", "math", [True])))
    assert "by_source" not in single.summary and "by source:" not in single.format()
    old = load_report(DATA / "graded_pool_small.jsonl")  # lines without `source` still read
    assert "by_source" not in old.summary


def test_stats_of_a_run_directory_count_queries_cut_short_per_cap_and_source(tmp_path):
    report = load_report(make_run_dir(tmp_path))
    s = report.summary
    assert s["cut_short"] == {
        "max_raw": {"queries": 1, "short_by": 3, "max_short_by": 3},
        "budget": {"queries": 2, "short_by": 4, "max_short_by": 2},
    }
    math, gsm = s["by_source"]
    assert (math["source"], math["cut_short"]["max_raw"]["queries"]) == ("math", 1)
    assert gsm["cut_short"]["budget"] == {"queries": 2, "short_by": 4, "max_short_by": 2}
    assert gsm["queries"] == 1  # the pool's count: g2 has no response
    rows = {r["query_id"]: r for r in report.queries}
    assert (rows["m1"]["target"], rows["m1"]["stop_reason"], rows["m1"]["short_by"]) == (
        3,
        "max_raw",
        3,
    )
    text = report.format()
    assert (
        "cut short by a cap   3 queries (max_raw 1, budget 2), 7 responses short of targets (max 3)"
        in text
    )
    assert report.notes == []


def test_vrt_runs_count_raw_samples_short(tmp_path):
    s = load_report(make_run_dir(tmp_path, "vrt")).summary
    assert s["cut_short"]["budget"] == {"queries": 2, "short_by": 2, "max_short_by": 2}
    assert s["cut_short"]["max_raw"]["short_by"] == 0


def test_stale_query_info_leaves_counts_to_the_pool(tmp_path):
    run = make_run_dir(tmp_path)
    with (run / "pool.jsonl").open("a") as f:  # written after the last checkpoint
        f.write(json.dumps(graded("g1", "gsm8k", [True])[0] | {"sample_idx": 3}) + "\n")
    report = load_report(run)
    assert report.summary["cut_short"]["budget"]["short_by"] == 3  # g1 now short by 1
    assert report.summary["responses"] == 10
    assert any("older than the pool for 1 queries" in n for n in report.notes)


@pytest.mark.parametrize(
    "damage,needle",
    [
        (lambda run: (run / "query_info.jsonl").unlink(), "no "),
        (lambda run: (run / "query_info.jsonl").write_text("{oops\n"), "query_info.jsonl:1"),
        (
            lambda run: write_jsonl(run / "query_info.jsonl", [{"query_id": "m1", "target": "3"}]),
            "field 'target'",
        ),
        (lambda run: (run / "config.yaml").unlink(), "config.yaml"),
    ],
)
def test_a_missing_or_unusable_query_info_leaves_cap_figures_out(tmp_path, damage, needle):
    run = make_run_dir(tmp_path)
    damage(run)
    report = load_report(run)
    assert "cut_short" not in report.summary and report.summary["responses"] == 9
    (note,) = report.notes
    assert needle in note and "cut short by a cap are not known" in note
    assert note in report.format() and json.loads(report.to_json())["notes"] == [note]


def test_cli_stats_json_has_by_source_and_cut_short(tmp_path):
    result = CliRunner().invoke(main, ["stats", str(make_run_dir(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert [e["source"] for e in summary["by_source"]] == ["math", "gsm8k"]
    assert summary["cut_short"]["max_raw"]["queries"] == 1


# --- a whole run, scripted sampler ---------------------------------------------------------


def test_two_source_run_writes_source_everywhere_and_sums_up_what_caps_cut_short(tmp_path):
    """Prop2Diff probe over two sources that share the id `add`: ids unique, `source` on every
    pool and query-info line, targets normalised over both sources, shortfall in the summary."""
    a = write_jsonl(
        tmp_path / "a.jsonl", [q("add", "What is 1 + 1?", "2"), q("hard", "What is 7 * 7?", "9")]
    )
    b = write_jsonl(tmp_path / "b.jsonl", [q("add", "What is 2 + 2?", "4"), q(None, "Say 5.", "5")])
    cfg = load_config(
        None,
        {
            "queries": [{"source": str(a), "name": "a"}, {"source": str(b), "name": "b"}],
            "run.dir": str(tmp_path / "run"),
            "strategy.k_p": 4,
            "strategy.n_probe": 2,
            "strategy.max_raw": 5,
            "prompt.template": "alpaca",
        },
    )

    def script(prompt: str, k: int) -> str:  # 7 * 7 never, 2 + 2 on odd draws, others always
        if "7 * 7" in prompt:
            return "The answer is 0."
        if "2 + 2" in prompt:
            return "The answer is 4." if k % 2 else "The answer is 0."
        return "The answer is 2." if "1 + 1" in prompt else "The answer is 5."

    async def factory(cfg, template):
        return ScriptedSampler(script)

    outcome = asyncio.run(synth(cfg, progress=False, sampler_factory=factory))
    run = tmp_path / "run"
    pool = [json.loads(x) for x in (run / "pool.jsonl").read_text().splitlines()]
    info = {
        r["query_id"]: r
        for r in map(json.loads, (run / "query_info.jsonl").read_text().splitlines())
    }
    derived = next(qid for qid in info if qid.startswith("q-"))
    assert set(info) == {"a:add", "hard", "b:add", derived}
    assert {r["query_id"]: r["source"] for r in pool} == {
        "a:add": "a",
        "hard": "a",
        "b:add": "b",
        derived: "b",
    }
    for r in [*pool, *info.values()]:
        keys = list(r)
        assert keys[keys.index("gt_ans") + 1] == "source", r
    # one normalisation over both sources: fail rates of the first n_probe lines of each query
    fails = {}
    for qid in info:
        probe = sorted((r for r in pool if r["query_id"] == qid), key=lambda r: r["sample_idx"])
        fails[qid] = 1 - Fraction(sum(r["correct"] for r in probe[:2]), 2)
    assert fails["hard"] == 1 and fails["a:add"] == fails[derived] == 0
    for qid, row in info.items():
        assert row["target"] == max(1, ceil(4 * fails[qid] / max(fails.values()))), qid
    assert (info["hard"]["target"], info["a:add"]["target"]) == (4, 1)
    assert (info["hard"]["stop_reason"], info["hard"]["short_by"]) == ("max_raw", 4)
    assert all(r["short_by"] == 0 for qid, r in info.items() if qid != "hard")
    cut = outcome.summary["queries"]["cut_short"]
    assert cut["max_raw"] == {"queries": 1, "short_by": 4, "max_short_by": 4}
    text = format_outcome(outcome)
    assert (
        "cut short by a cap: 1 query (max_raw 1, budget 0), 4 responses short of targets (max 4)"
        in text
    )
    assert text.count("cut short by a cap") == 1
