"""Difficulty priors of Prop2Diff: reading several at once, matching them to a run's queries by
id or by text (`strategy.prior_match`), the match report, the config keys and the scheduler
they build, up to what `dart synth` prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dartmath.cli import main
from dartmath.errors import ConfigError, InputError
from dartmath.queries import Query, QueryInputError
from dartmath.queries.priors import (
    PriorRow,
    load_prior,
    match_prior,
    match_text,
    read_prior_rows,
)
from dartmath.synth import run as run_mod
from dartmath.synth.config import load_config, meaning_diff, resolve_config
from dartmath.synth.store import RunStore
from input_files import write_jsonl, write_parquet
from scripted_sampler import ScriptedSampler
from synth_helpers import scheduler_of

GSM8K_INFO = "hkust-nlp/dart-math-pool-gsm8k-query-info"


def gsm8k_info_rows(rates: dict[str, float]) -> list[dict]:
    """Rows with the columns of the published GSM8K query-info card (no `query` text). The
    card does not show what its ids look like: these are stand-ins."""
    return [
        {
            "query_id": qid,
            "n_steps": 3.0,
            "domain": "GSM8K",
            "n_samples_list": [64],
            "n_corrects_list": [round(64 * p)],
            "tot_n_samples": 64,
            "tot_n_corrects": round(64 * p),
            "pass_rate": p,
            "pass_rate_bernoulli_std": 0.05,
        }
        for qid, p in rates.items()
    ]


def problems_of(exc: pytest.ExceptionInfo) -> list[str]:
    return [str(p) for p in exc.value.problems]


def row(loc: str, qid: str, rate: float, text: str | None = None) -> PriorRow:
    return PriorRow(loc, qid, rate, None if text is None else match_text(text))


# ------------------------------------------------------------------------------ matching (pure)

QUERIES = [
    Query("MATH/train/algebra/1.json", "What is 1 + 1?", "2"),
    Query("q-natalia", "Natalia sold  clips\n to 48 friends.", "72"),
    Query("z", "A query no prior knows?", "0"),
]
ROWS = [
    row("math.parquet row 0", "MATH/train/algebra/1.json", 0.5),
    row("ours.jsonl:1", "gsm8k-7", 0.25, "Natalia sold clips to 48 friends."),
    row("gsm8k.parquet row 0", "gsm8k-8", 0.75),
]


def test_auto_matches_by_id_else_by_text_and_reports_the_rest():
    m = match_prior(QUERIES, ROWS, "auto")
    assert m.pass_rates == {"MATH/train/algebra/1.json": 0.5, "q-natalia": 0.25}
    assert (m.by_id, m.by_text, m.unmatched, m.unused_rows, m.no_text) == (1, 1, 1, 1, 1)
    assert m.report("probed with n_probe=8 samples each").splitlines() == [
        "difficulty prior (prior_match auto): 3 queries: 1 matched by query_id, 1 by query "
        "text, 1 with no match (probed with n_probe=8 samples each); 1 of 3 prior rows unused",
        "  no match, e.g. query 'z' 'A query no prior knows?'",
        "  1 unused prior row has no `query` text, so can match by query_id only, "
        "e.g. gsm8k.parquet row 0 (query_id 'gsm8k-8')",
    ]


def test_query_id_only_and_query_text_only():
    by_id = match_prior(QUERIES, ROWS, "query_id")
    assert by_id.pass_rates == {"MATH/train/algebra/1.json": 0.5}
    assert (by_id.by_id, by_id.by_text, by_id.unmatched, by_id.no_text) == (1, 0, 2, 0)
    by_text = match_prior(QUERIES, ROWS, "query")
    assert by_text.pass_rates == {"q-natalia": 0.25}
    assert (by_text.by_id, by_text.by_text, by_text.unused_rows, by_text.no_text) == (0, 1, 2, 2)
    with pytest.raises(ValueError, match="prior_match must be one of auto, query_id, query"):
        match_prior(QUERIES, ROWS, "text")


def test_text_is_compared_after_nfc_and_whitespace_only():
    queries = [Query("a", "Caf\u00e9 has\t3 cups.", "3"), Query("b", "What is X?", "1")]
    rows = [
        row("p:1", "r1", 0.5, "  Cafe\u0301 has 3\ncups. "),
        row("p:2", "r2", 0.5, "what is x?"),
    ]
    m = match_prior(queries, rows, "query")
    assert m.pass_rates == {"a": 0.5}  # same characters, other encoding and spacing
    assert m.examples["unmatched"] == "query 'b' 'What is X?'"  # case is meaning


def test_text_of_several_rows_matches_only_if_they_agree():
    queries = [Query("a", "Same text?", "1"), Query("b", "Twice, one rate?", "1")]
    rows = [
        row("p1.jsonl:1", "x1", 0.5, "Same text?"),
        row("p3.jsonl:9", "x3", 0.5, "Same text?"),
        row("p2.jsonl:4", "x2", 0.25, "Same  text?"),
        row("p1.jsonl:2", "y1", 0.75, "Twice, one rate?"),
        row("p2.jsonl:5", "y2", 0.75, "Twice, one rate?"),
    ]
    m = match_prior(queries, rows, "auto")
    assert m.pass_rates == {"b": 0.75}
    assert (m.ambiguous, m.unmatched, m.unused_rows) == (1, 1, 3)
    assert m.examples["ambiguous"] == (
        "query 'a' 'Same text?': p1.jsonl:1 (0.5), p2.jsonl:4 (0.25) and 1 more"
    )
    assert "1 query has the text of prior rows with different pass rates (not used)" in (m.report())


def test_an_id_match_holding_another_text():
    """Ids reused across datasets (`1`, `2`, ...): under auto the text decides; under
    query_id the ids are trusted and the disagreement is reported."""
    queries = [Query("1", "What is 2 + 2?", "4"), Query("2", "What is 3 + 3?", "6")]
    rows = [
        row("old.jsonl:1", "1", 0.9, "Name a prime."),
        row("old.jsonl:2", "7", 0.4, "What is 2 + 2?"),
        row("old.jsonl:3", "2", 0.1, "What is 3 + 3?"),
    ]
    auto = match_prior(queries, rows, "auto")
    assert auto.pass_rates == {"1": 0.4, "2": 0.1}
    assert (auto.by_id, auto.by_text, auto.text_differs, auto.unused_rows) == (1, 1, 1, 1)
    assert auto.examples["text_differs"] == (
        "query '1' 'What is 2 + 2?', prior old.jsonl:1 'Name a prime.'"
    )
    assert "(not used; matched by text if it can be)" in auto.report()
    trusted = match_prior(queries, rows, "query_id")
    assert trusted.pass_rates == {"1": 0.9, "2": 0.1}
    assert trusted.text_differs == 1 and "(kept)" in trusted.report()


def test_long_texts_are_shortened_in_examples():
    text = "x " * 100
    m = match_prior([Query("a", text, "1")], [row("p:1", "b", 0.5)], "auto")
    shown = m.examples["unmatched"]
    assert shown.startswith("query 'a' 'x x x") and shown.endswith("...'")
    assert len(shown) < 80


def test_duplicate_ids_in_rows_given_directly_are_a_bug():
    with pytest.raises(ValueError, match="duplicate query_id 'a' at p:1 and p:2"):
        match_prior([], [row("p:1", "a", 0.5), row("p:2", "a", 0.5)])


# ------------------------------------------------------------------------------ reading


def test_several_priors_in_two_formats(tmp_path):
    ours = write_jsonl(
        tmp_path / "query_info.jsonl",
        [
            {"query_id": "demo-1", "query": "What is 1 + 1?", "gt_ans": "2", "pass_rate": 0.75},
            {"query_id": 5, "query": "What is 2 + 2?", "pass_rate": 1},
        ],
    )
    published = write_parquet(tmp_path / "gsm8k.parquet", gsm8k_info_rows({"g-0": 0.5}))
    rows = read_prior_rows([ours, published])
    assert rows == [
        PriorRow(f"{ours}:1", "demo-1", 0.75, "What is 1 + 1?"),
        PriorRow(f"{ours}:2", "5", 1.0, "What is 2 + 2?"),
        PriorRow(f"{published} row 0", "g-0", 0.5, None, counts=(32, 64)),
    ]


def test_a_rows_counts_are_kept_only_when_they_give_its_pass_rate(tmp_path):
    """The counts say how well a pass rate is known (dart plan); counts that disagree with the
    rate, or are not counts, leave a bare rate."""
    prior = write_jsonl(
        tmp_path / "prior.jsonl",
        [
            {"query_id": "a", "pass_rate": 0.25, "tot_n_corrects": 1, "tot_n_samples": 4},
            {"query_id": "b", "pass_rate": 0.25, "tot_n_corrects": 2, "tot_n_samples": 4},
            {"query_id": "c", "pass_rate": 0.0, "tot_n_corrects": 0, "tot_n_samples": 0},
            {"query_id": "d", "pass_rate": 0.5, "tot_n_corrects": True, "tot_n_samples": 2},
            {"query_id": "e", "pass_rate": 0.5},
        ],
    )
    assert [r.counts for r in read_prior_rows([prior])] == [(1, 4), None, None, None, None]


def test_a_datasets_folder_and_null_query_cells(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    records = [
        {"query_id": "a", "query": "What is 1 + 1?", "pass_rate": 0.5},
        {"query_id": "b", "query": None, "pass_rate": 0.25},  # a table's row without text
    ]
    datasets.Dataset.from_list(records).save_to_disk(str(folder))
    assert read_prior_rows([folder]) == [
        PriorRow(f"{folder} row 0", "a", 0.5, "What is 1 + 1?"),
        PriorRow(f"{folder} row 1", "b", 0.25, None),
    ]


def test_problems_of_every_prior_are_reported_together(tmp_path):
    first = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"query_id": "a", "pass_rate": 0.5},
            {"query_id": "b", "pass_rate": 1.5},
            {"query_id": "c", "query": 7, "pass_rate": 0.5},
            {"query_id": "d", "query": "  ", "pass_rate": 0.5},
        ],
    )
    second = write_parquet(
        tmp_path / "b.parquet",
        [{"query_id": "a", "pass_rate": 0.25}, {"query_id": "e", "pass_rate": None}],
    )
    with pytest.raises(QueryInputError) as exc:
        read_prior_rows([first, second])
    assert problems_of(exc) == [
        f"{first}:2: field 'pass_rate': expected a number in [0, 1], got 1.5",
        f"{first}:3: field 'query': expected a string, got number",
        f"{first}:4: field 'query': empty",
        f"{second} row 0: field 'query_id': duplicate query_id 'a' (also at {first}:1)",
        f"{second} row 1: field 'pass_rate': expected a number, got null",
    ]
    assert str(exc.value).startswith(f"{first}, {second}: 5 problems in the input")


def test_an_unreadable_prior_is_an_error_naming_it(tmp_path):
    good = write_jsonl(tmp_path / "a.jsonl", [{"query_id": "a", "pass_rate": 0.5}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match=f"^{empty}: no records found$"):
        read_prior_rows([good, empty])
    with pytest.raises(InputError, match="no such file or folder"):
        read_prior_rows([good, "./missing.jsonl"])


def test_a_hub_name_is_read_through_datasets(tmp_path, monkeypatch):
    """The code path of a hub name (`hkust-nlp/...`), on a local copy: `datasets.load_dataset`
    is pointed at a folder laid out as the published repository (no download)."""
    datasets = pytest.importorskip("datasets")
    repo = tmp_path / "dart-math-pool-gsm8k-query-info"
    (repo / "data").mkdir(parents=True)
    write_parquet(repo / "data" / "train-00000-of-00001.parquet", gsm8k_info_rows({"g-0": 0.5}))
    real = datasets.load_dataset
    calls = []

    def local_copy(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return real(str(repo), name=name, split=split, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", local_copy)
    monkeypatch.chdir(tmp_path)  # no folder of that name here: it is a name, not a path
    queries = [Query("g-0", "Natalia sold clips?", "72"), Query("q-1", "Other?", "1")]
    m = load_prior([GSM8K_INFO], queries)
    assert calls == [(GSM8K_INFO, None, "train")]
    assert m.pass_rates == {"g-0": 0.5} and m.unmatched == 1


# ------------------------------------------------------------------------------ config

BASE = {"queries.source": "q.jsonl", "run.dir": "r", "strategy.k_p": 4, "strategy.max_raw": 8}


def test_difficulty_from_is_one_prior_or_a_list():
    one = load_config(None, {**BASE, "strategy.difficulty_from": "a.jsonl"})
    assert one.strategy.difficulty_sources() == ["a.jsonl"] and one.strategy.prior_match == "auto"
    two = load_config(
        None,
        {
            **BASE,
            "strategy.difficulty_from": ["a.jsonl", GSM8K_INFO],
            "strategy.prior_match": "query",
        },
    )
    assert two.strategy.difficulty_sources() == ["a.jsonl", GSM8K_INFO]
    assert two.strategy.prior_match == "query"
    none = load_config(None, {**BASE, "strategy.n_probe": 2})
    assert none.strategy.difficulty_sources() == []


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ({"strategy.difficulty_from": []}, "`strategy.difficulty_from` is an empty list"),
        ({"strategy.difficulty_from": ["a", "a"]}, "names 'a' twice"),
        ({"strategy.difficulty_from": ["a", 3]}, "must name priors (files, folders or dataset"),
        ({"strategy.difficulty_from": " "}, "must name priors"),
        ({"strategy.difficulty_from": 3}, "`strategy.difficulty_from` must be str or list"),
        (
            {"strategy.difficulty_from": "a", "strategy.prior_match": "text"},
            "`strategy.prior_match` must be auto, query_id, query, got 'text'",
        ),
        ({"strategy.difficulty_from": "a", "strategy.prior_match": None}, "must be str"),
    ],
)
def test_bad_prior_keys_are_config_errors(value, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(None, {**BASE, **value})


def test_another_strategy_on_the_command_line_sets_prior_match_aside(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "queries: {source: q.jsonl}\nrun: {dir: r}\n"
        "strategy: {k_p: 4, difficulty_from: [a, b], prior_match: query, max_raw: 8}\n"
    )
    cfg, notes = resolve_config(path, {"strategy.name": "uniform", "strategy.k_u": 2})
    assert cfg.strategy.difficulty_from is None
    assert notes == [
        "strategy uniform chosen on the command line: set aside strategy.k_p, "
        f"strategy.difficulty_from, strategy.prior_match from {path}"
    ]


def test_a_run_made_before_prior_match_resumes(tmp_path):
    """Its config.yaml has `difficulty_from` as a string and no `prior_match`: the same
    meaning as one prior in a list under the default rule."""
    old = load_config(None, {**BASE, "strategy.difficulty_from": "p.jsonl"}).to_dict()
    del old["strategy"]["prior_match"]
    store = RunStore(tmp_path / "run")
    store.prepare(old)
    new = load_config(None, {**BASE, "strategy.difficulty_from": ["p.jsonl"]})
    assert meaning_diff(old, new.to_dict()) == []
    assert store.prepare(new.to_dict()) is True  # resumes, no ResumeRefused
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["strategy"]["prior_match"] == "auto"


def test_what_changes_a_run_s_meaning():
    def cfg(**strategy):
        values = {**BASE, **{f"strategy.{k}": v for k, v in strategy.items()}}
        return load_config(None, values).to_dict()

    two = cfg(difficulty_from=["a", "b"])
    assert meaning_diff(two, cfg(difficulty_from=["b", "a"])) == []  # order means nothing
    assert meaning_diff(two, cfg(difficulty_from=["a"])) == [
        "strategy.difficulty_from: ['a', 'b'] -> 'a'"
    ]
    assert meaning_diff(two, cfg(difficulty_from=["a", "b"], prior_match="query")) == [
        "strategy.prior_match: 'auto' -> 'query'"
    ]
    probe = cfg(n_probe=2)  # no prior: prior_match means nothing
    assert meaning_diff(probe, cfg(n_probe=2, prior_match="query")) == []


# ------------------------------------------------------------------------------ make_scheduler


def run_config(tmp_path: Path, **strategy) -> tuple:
    """Four queries; a JSONL prior knows q0 by id and a Parquet prior knows q1 by text."""
    q = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"query_id": f"q{i}", "query": f"What is {i} + 1?", "gt_ans": str(i + 1)}
            for i in range(4)
        ],
    )
    by_id = write_jsonl(tmp_path / "ours.jsonl", [{"query_id": "q0", "pass_rate": 0.5}])
    by_text = write_parquet(
        tmp_path / "theirs.parquet",
        [
            {"query_id": "other-7", "query": "What is 1  +  1?", "pass_rate": 0.0},
            {"query_id": "other-8", "query": None, "pass_rate": 0.25},
        ],
    )
    values = {
        "queries.source": str(q),
        "run.dir": str(tmp_path / "run"),
        "strategy.k_p": 4,
        "strategy.max_raw": 16,
        "strategy.difficulty_from": [str(by_id), str(by_text)],
        **{f"strategy.{k}": v for k, v in strategy.items()},
    }
    return load_config(None, values), by_id, by_text


def test_a_partial_prior_with_a_probe_builds_the_scheduler_and_reports(tmp_path):
    cfg, _, by_text = run_config(tmp_path, n_probe=2)
    notes: list[str] = []
    sched = scheduler_of(cfg, notes.append)
    assert [sched.state(f"q{i}").target_lower_bound for i in range(4)] == [2, 4, None, None]
    (report,) = notes
    assert report.splitlines() == [
        "difficulty prior (prior_match auto): 4 queries: 1 matched by query_id, 1 by query "
        "text, 2 with no match (probed with n_probe=2 samples each); 1 of 3 prior rows unused",
        "  no match, e.g. query 'q2' 'What is 2 + 1?'",
        "  1 unused prior row has no `query` text, so can match by query_id only, "
        f"e.g. {by_text} row 1 (query_id 'other-8')",
    ]


def test_without_a_probe_unmatched_queries_are_an_error_with_the_report(tmp_path):
    cfg, by_id, by_text = run_config(tmp_path)
    notes: list[str] = []
    with pytest.raises(InputError) as exc:
        scheduler_of(cfg, notes.append)
    message = str(exc.value)
    assert message.startswith(
        f"{by_id}, {by_text}: the Prop2Diff prior has no pass rate for 2 of 4 queries "
        "(e.g. 'q2', 'q3')"
    )
    assert "strategy.n_probe (--n-probe) probes each query the prior lacks" in message
    assert "matched on query_id, else on the query text (prior_match: auto)" in message
    assert "1 matched by query_id, 1 by query text, 2 with no match" in message
    assert notes == []  # the report is in the error, not twice


def test_dart_synth_prints_the_report_and_resumes_a_multi_prior_run(tmp_path, monkeypatch):
    """`--difficulty-from` twice, without -v: the report is on stderr before sampling, the run
    stores both priors and a second invocation resumes it."""
    cfg, by_id, by_text = run_config(tmp_path)
    answers = {f"What is {i} + 1?": str(i + 1) for i in range(4)}

    def right(prompt: str, k: int) -> str:
        return next(f"The answer is {a}." for q, a in answers.items() if q in prompt)

    async def factory(cfg, template):
        return ScriptedSampler(right)

    monkeypatch.setattr(run_mod, "start_sampler", factory)
    args = [
        "synth",
        "--queries",
        cfg.queries.source,
        "--run-dir",
        str(tmp_path / "run"),
        "--template",
        "alpaca",
        "--k-p",
        "2",
        "--n-probe",
        "2",
        "--max-raw",
        "8",
        "--difficulty-from",
        str(by_id),
        "--difficulty-from",
        str(by_text),
        "--stop",
        "first-finished",
        "--no-progress",
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert (
        "dart synth: note: difficulty prior (prior_match auto): 4 queries: 1 matched by "
        "query_id, 1 by query text, 2 with no match (probed with n_probe=2 samples each)"
    ) in first.stderr
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["strategy"]["difficulty_from"] == [str(by_id), str(by_text)]
    assert stored["run"]["stop"] == "first-finished"
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert summary["sessions"][0]["stop"] == "first-finished"
    info = (tmp_path / "run" / "query_info.jsonl").read_text().splitlines()
    # fail rates 0.5 (q0, prior by id), 1 (q1, prior by text), 0 and 0 (q2, q3: probed, solved)
    assert {r["query_id"]: r["target"] for r in map(json.loads, info)} == {
        "q0": 1,
        "q1": 2,
        "q2": 1,
        "q3": 1,
    }
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "(resumed)" in again.stdout
