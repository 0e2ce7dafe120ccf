"""Loading queries and pass-rate priors: formats, presets, field mapping, ids, validation."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

# No hub is reachable here; a test must never try one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from dartmath.errors import InputError  # noqa: E402
from dartmath.queries import (  # noqa: E402
    MAX_REPORTED,
    Query,
    QueryInputError,
    derive_query_id,
    gsm8k_reference,
    load_queries,
    math_reference,
)
from dartmath.queries.priors import read_prior_rows  # noqa: E402
from input_files import write_jsonl, write_parquet

DATA = Path(__file__).parent / "data"
MATH_DIR = DATA / "queries" / "MATH"
QUERY_INFO = DATA / "queries" / "math_query_info.jsonl"
SAMPLE = Path(__file__).parent.parent / "data" / "sample_queries.jsonl"


def load_pass_rates(path) -> dict[str, float]:
    """Every row's pass rate of one prior, by query_id."""
    return {r.query_id: r.pass_rate for r in read_prior_rows([path])}


def problems_of(exc: pytest.ExceptionInfo) -> list[str]:
    return [str(p) for p in exc.value.problems]


RECS = [
    {"query_id": "a", "query": "What is 1 + 1?", "gt_ans": "2", "level": 1},
    {"query_id": "b", "query": "What is 2 + 2?", "gt_ans": 4, "level": 2, "source": "mine"},
]
# the same with one type per column, for Parquet and `datasets`
TABLE = [{**r, "gt_ans": str(r["gt_ans"]), "source": r.get("source")} for r in RECS]


# ------------------------------------------------------------------------------ formats


def test_jsonl_default_fields(tmp_path: Path) -> None:
    qs = load_queries(write_jsonl(tmp_path / "q.jsonl", RECS))
    assert qs == [
        Query("a", "What is 1 + 1?", "2", {"level": 1}),
        Query("b", "What is 2 + 2?", "4", {"level": 2, "input_source": "mine"}),
    ]
    assert qs[1].record() == {  # an input `source` is kept as `input_source`
        "query_id": "b",
        "query": "What is 2 + 2?",
        "gt_ans": "4",
        "level": 2,
        "input_source": "mine",
    }


def test_json_list_and_wrapped_list(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text(json.dumps(RECS, indent=2))
    (tmp_path / "wrapped.json").write_text(json.dumps({"version": 1, "data": RECS}, indent=2))
    expected = load_queries(write_jsonl(tmp_path / "q.jsonl", RECS))
    assert load_queries(tmp_path / "list.json") == expected
    assert load_queries(tmp_path / "wrapped.json") == expected


def test_json_errors_name_the_line_of_the_object(tmp_path: Path) -> None:
    bad = [RECS[0], {"query_id": "c", "query": "", "gt_ans": "1"}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": bad}, indent=2))
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    # the second object starts on line 9 of the indented file
    start = path.read_text().splitlines().index("    {", 3) + 1
    assert problems_of(exc) == [f"{path}:{start}: field 'query': empty"]


def test_json_shape_errors(tmp_path: Path) -> None:
    (tmp_path / "two.json").write_text(json.dumps({"a": RECS, "b": RECS}))
    with pytest.raises(InputError, match="one list"):
        load_queries(tmp_path / "two.json")
    (tmp_path / "num.json").write_text("[1, 2]")
    with pytest.raises(QueryInputError) as exc:
        load_queries(tmp_path / "num.json")
    assert "num.json:1: expected a JSON object, got number" in problems_of(exc)[0]
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(InputError, match="malformed JSON"):
        load_queries(tmp_path / "broken.json")


def test_parquet(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "q.parquet", TABLE)
    assert [q.query_id for q in load_queries(path)] == ["a", "b"]
    bad = write_parquet(tmp_path / "bad.parquet", [TABLE[0], {**TABLE[1], "gt_ans": ""}])
    with pytest.raises(QueryInputError) as exc:
        load_queries(bad)
    assert problems_of(exc) == [f"{bad} row 1: field 'gt_ans': empty"]


def test_not_parquet_and_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("nope")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        load_queries(tmp_path / "x.parquet")
    (tmp_path / "x.csv").write_text("query,gt_ans\n")
    with pytest.raises(InputError, match="unknown file type '.csv'"):
        load_queries(tmp_path / "x.csv")


def test_missing_file() -> None:
    with pytest.raises(InputError) as exc:
        load_queries("no-such.jsonl")
    assert str(exc.value) == "no-such.jsonl: no such file or folder"
    with pytest.raises(InputError, match="no such file or folder"):
        load_pass_rates("./no-such-folder")


def test_datasets_save_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(TABLE).save_to_disk(str(tmp_path / "one"))
    assert [q.query_id for q in load_queries(tmp_path / "one")] == ["a", "b"]
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(TABLE),
            "test": datasets.Dataset.from_list([{**TABLE[0], "gt_ans": None}]),
        }
    )
    dd.save_to_disk(str(tmp_path / "dict"))
    assert len(load_queries(tmp_path / "dict")) == 2
    with pytest.raises(QueryInputError) as exc:
        load_queries(tmp_path / "dict", split="test")
    assert problems_of(exc) == [
        f"{tmp_path / 'dict'} [test] row 0: field 'gt_ans': expected a string or a number, got null"
    ]
    with pytest.raises(InputError, match="no split 'dev'"):
        load_queries(tmp_path / "dict", split="dev")


def test_datasets_local_repository_clone(tmp_path: Path) -> None:
    """A `git clone` of a hub dataset repository, read offline with `datasets.load_dataset`."""
    pytest.importorskip("datasets")
    repo = tmp_path / "my-queries"
    (repo / "data").mkdir(parents=True)
    write_parquet(repo / "data" / "train-00000-of-00001.parquet", TABLE)
    write_parquet(repo / "data" / "test-00000-of-00001.parquet", TABLE[:1])
    assert [q.query_id for q in load_queries(repo)] == ["a", "b"]
    assert [q.query_id for q in load_queries(repo, split="test")] == ["a"]


def test_unresolvable_dataset_name_is_one_clear_error() -> None:
    pytest.importorskip("datasets")
    with pytest.raises(InputError) as exc:
        load_queries("nobody-here/no-such-dataset")
    msg = str(exc.value)
    assert msg.startswith("nobody-here/no-such-dataset: cannot load this as a dataset")
    assert "save_to_disk" in msg and "Traceback" not in msg
    assert len(msg.splitlines()) == 1 and len(msg) < 800


# ------------------------------------------------------------------------------ presets


def test_math_reference_uses_the_last_box() -> None:
    assert math_reference("so $\\boxed{2}$ first, then $\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert math_reference("Hence $\\fbox{6}$.") == "6"
    assert math_reference("no box here") is None
    assert math_reference("empty $\\boxed{}$") is None


def test_gsm8k_reference() -> None:
    assert gsm8k_reference("He pays 3*400 = <<3*400=1200>>1200.\n#### 1,200") == "1200"
    assert gsm8k_reference("#### -5") == "-5"
    assert gsm8k_reference("#### 1,234,567.5") == "1234567.5"
    assert gsm8k_reference("The answer is 5") is None
    assert gsm8k_reference("####   ") is None


def test_math_preset(tmp_path: Path) -> None:
    recs = [
        {
            "problem": "What is $1+2$?",
            "solution": "It is $\\boxed{3}$.",
            "level": "Level 2",
            "type": "Counting & Probability",
        },
        {
            "problem": "What is $2+2$?",
            "solution": "It is $\\boxed{4}$.",
            "level": "Level ?",
            "type": "Prealgebra",
            "unique_id": "train/prealgebra/17.json",
        },
    ]
    qs = load_queries(write_jsonl(tmp_path / "m.jsonl", recs), preset="math")
    assert qs[0] == Query(
        derive_query_id("What is $1+2$?"),
        "What is $1+2$?",
        "3",
        {"level": 2, "domain": "Counting&Probability"},
    )
    assert qs[1].query_id == "MATH/train/prealgebra/17.json"
    assert qs[1].meta == {"level": None, "domain": "Prealgebra"}


def test_math_preset_missing_box_names_file_line_field(tmp_path: Path) -> None:
    recs = [
        {"problem": "p1", "solution": "It is $\\boxed{3}$."},
        {"problem": "p2", "solution": "It is 4."},
    ]
    path = write_jsonl(tmp_path / "m.jsonl", recs)
    with pytest.raises(QueryInputError) as exc:
        load_queries(path, preset="math")
    assert problems_of(exc) == [
        f"{path}:2: field 'solution': no \\boxed{{}} answer in the solution"
    ]


def test_gsm8k_preset(tmp_path: Path) -> None:
    recs = [
        {"question": "Q1?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
        {"question": "Q2?", "answer": "Lots.\n#### 12,500"},
        {"question": "Q3?", "answer": "no marker"},
    ]
    path = write_jsonl(tmp_path / "g.jsonl", recs)
    with pytest.raises(QueryInputError) as exc:
        load_queries(path, preset="gsm8k")
    assert problems_of(exc) == [
        f"{path}:3: field 'answer': no final answer after '####' in the solution"
    ]
    qs = load_queries(path, preset="gsm8k", limit=2)
    assert [(q.query, q.gt_ans, q.meta) for q in qs] == [("Q1?", "7", {}), ("Q2?", "12500", {})]


def test_math_problem_folder_ids_match_published_query_info() -> None:
    qs = load_queries(MATH_DIR, preset="math")
    assert [q.query_id for q in qs] == [
        "MATH/train/algebra/1.json",
        "MATH/train/algebra/2.json",
        "MATH/train/algebra/12.json",
        "MATH/train/counting_and_probability/7.json",
    ]
    assert [q.gt_ans for q in qs] == ["5", "\\frac{3}{4}", "7", "6"]
    assert qs[3].meta == {"level": 2, "domain": "Counting&Probability"}
    rates = load_pass_rates(QUERY_INFO)
    assert {q.query_id for q in qs} == set(rates)


def test_unknown_preset_and_field_names(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", RECS)
    with pytest.raises(InputError, match="unknown preset 'maths'"):
        load_queries(path, preset="maths")
    with pytest.raises(InputError, match="unknown name.*answer"):
        load_queries(path, fields={"answer": "gt_ans"})


# ------------------------------------------------------------------------------ field mapping


def test_field_mapping(tmp_path: Path) -> None:
    recs = [{"uid": 7, "prompt": "What is 3 - 1?", "target": 2.5, "src": "x"}]
    qs = load_queries(
        write_jsonl(tmp_path / "q.jsonl", recs),
        fields={"query": "prompt", "gt_ans": "target", "query_id": "uid"},
    )
    assert qs == [Query("7", "What is 3 - 1?", "2.5", {"src": "x"})]


def test_field_mapping_overrides_preset(tmp_path: Path) -> None:
    recs = [{"text": "What is $x$ if $x+1=2$?", "solution": "$x=\\boxed{1}$"}]
    qs = load_queries(
        write_jsonl(tmp_path / "q.jsonl", recs), preset="math", fields={"query": "text"}
    )
    assert (qs[0].query, qs[0].gt_ans) == ("What is $x$ if $x+1=2$?", "1")


def test_mapped_field_missing(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"query": "q", "ans": "1"}])
    with pytest.raises(QueryInputError) as exc:
        load_queries(path, fields={"gt_ans": "target"})
    assert problems_of(exc) == [f"{path}:1: field 'target': missing"]


def test_aliases(tmp_path: Path) -> None:
    recs = [{"id": 3, "question": "What is 5 + 5?", "ref_ans": "10"}]
    qs = load_queries(write_jsonl(tmp_path / "q.jsonl", recs))
    assert qs == [Query("3", "What is 5 + 5?", "10", {})]


def test_ambiguous_alias(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "a?", "problem": "b?", "gt_ans": "1"}])
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    assert problems_of(exc) == [
        f"{path}:1: field 'query': missing, and 'question' and 'problem' could both stand for it: "
        "say which with fields="
    ]


def mapping_hint(query: str) -> str:
    mapping = f"{{query: {query}, gt_ans: answer}}"
    return (
        f"(map the fields: fields: {mapping} in the queries section of the config,"
        f" or -o queries.fields='{mapping}')"
    )


GSM8K_HINT = "(this looks like GSM8K: use preset 'gsm8k')"
MATH_HINT = "(this looks like MATH: use preset 'math')"


@pytest.mark.parametrize(
    ("rec", "hint"),
    [
        ({"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}, GSM8K_HINT),
        ({"problem": "What is 1 + 1?", "solution": "So $\\boxed{2}$."}, MATH_HINT),
        # MATH-500: a box in the solution and a short answer; the preset reads the box
        ({"problem": "What is 1 + 1?", "solution": "$\\boxed{2}$", "answer": "2"}, MATH_HINT),
        # a short answer, no `####`: preset gsm8k would fail, the mapping reads it
        ({"question": "What is 1 + 1?", "answer": "2"}, mapping_hint("question")),
        ({"question": "What is 1 + 1?", "answer": 2}, mapping_hint("question")),
        ({"problem": "What is 1 + 1?", "answer": "2"}, mapping_hint("problem")),
        # no box in the solution: preset math would fail, the answer field is the reference
        (
            {"problem": "What is 1 + 1?", "solution": "It is 2.", "answer": "2"},
            mapping_hint("problem"),
        ),
    ],
)
def test_missing_reference_hint_names_what_would_read_the_file(
    tmp_path: Path, rec: dict, hint: str
) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [rec])
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    assert problems_of(exc) == [f"{path}:1: field 'gt_ans': missing {hint}"]

    preset = re.search(r"use preset '(\w+)'", hint)
    if preset:
        [q] = load_queries(path, preset=preset.group(1))
    else:
        from dartmath.synth.config import parse_override

        in_config = re.search(r"fields: (\{[^}]*\}) in the queries section", hint)
        [override] = shlex.split(re.search(r" -o (.+)\)$", hint).group(1))
        key, fields = parse_override(override)
        assert key == "queries.fields"
        assert fields == yaml.safe_load(in_config.group(1))
        [q] = load_queries(path, fields=fields)
    assert (q.query, q.gt_ans) == ("What is 1 + 1?", "2")


@pytest.mark.parametrize(
    "rec",
    [
        {"problem": "What is 1 + 1?", "solution": "It is 2."},
        {"problem": "What is 1 + 1?"},
    ],
)
def test_no_hint_when_nothing_would_read_the_file(tmp_path: Path, rec: dict) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [rec])
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    assert problems_of(exc) == [f"{path}:1: field 'gt_ans': missing"]


# ------------------------------------------------------------------------------ ids


def test_derived_ids_are_stable_across_runs_orders_and_spacing(tmp_path: Path) -> None:
    recs = [{"query": f"What is {i} + {i}?", "gt_ans": str(2 * i)} for i in range(5)]
    a = load_queries(write_jsonl(tmp_path / "a.jsonl", recs))
    b = load_queries(write_jsonl(tmp_path / "b.jsonl", recs[::-1]))
    assert {q.query: q.query_id for q in a} == {q.query: q.query_id for q in b}
    assert len({q.query_id for q in a}) == 5
    assert a[0].query_id == derive_query_id("What is 0 + 0?")
    assert a[0].query_id == derive_query_id("  What is 0\n+  0?\n")
    assert a[0].query_id.startswith("q-") and len(a[0].query_id) == 18


def test_input_ids_are_kept_as_strings(tmp_path: Path) -> None:
    recs = [
        {"query_id": 12, "query": "x?", "gt_ans": "1"},
        {"query_id": " k ", "query": "y?", "gt_ans": "2"},
    ]
    assert [q.query_id for q in load_queries(write_jsonl(tmp_path / "q.jsonl", recs))] == [
        "12",
        "k",
    ]


def test_sample_queries_file() -> None:
    qs = load_queries(SAMPLE)
    assert len(qs) >= 40
    assert {q.meta["level"] for q in qs} == {1, 2, 3, 4, 5}


# ------------------------------------------------------------------------------ validation


def test_every_problem_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    lines = [
        json.dumps({"query_id": "a", "query": "ok?", "gt_ans": "1"}),
        json.dumps({"query_id": "b", "query": "   ", "gt_ans": "1"}),
        json.dumps({"query_id": "c", "query": "q?"}),
        json.dumps({"query_id": "d", "query": "q2?", "gt_ans": ""}),
        json.dumps({"query_id": "a", "query": "dup?", "gt_ans": "1"}),
        json.dumps({"query_id": ["x"], "query": "q3?", "gt_ans": "1"}),
        json.dumps({"query_id": "e", "query": 5, "gt_ans": "1"}),
        json.dumps({"query_id": "f", "query": "q4?", "gt_ans": True}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"query_id": "", "query": "q5?", "gt_ans": "1"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    p = str(path)
    found = problems_of(exc)
    assert found[7].startswith(f"{p}:9: malformed JSON")
    assert found[:7] + found[8:] == [
        f"{p}:2: field 'query': empty",
        f"{p}:3: field 'gt_ans': missing",
        f"{p}:4: field 'gt_ans': empty",
        f"{p}:5: field 'query_id': duplicate query_id 'a' (also at {p}:1)",
        f"{p}:6: field 'query_id': expected a string or an integer, got array",
        f"{p}:7: field 'query': expected a string, got number",
        f"{p}:8: field 'gt_ans': expected a string or a number, got boolean",
        f"{p}:11: expected a JSON object, got list",
        f"{p}:12: field 'query_id': empty",
    ]
    assert exc.value.total == 10
    assert str(exc.value).startswith(f"{p}: 10 problems in the input, nothing loaded:\n  {p}:2:")


def test_duplicate_queries_without_ids_name_both_lines(tmp_path: Path) -> None:
    recs = [
        {"query": "What is 1 + 1?", "gt_ans": "2"},
        {"query": "What is 2 + 2?", "gt_ans": "4"},
        {"query": "What  is 1 + 1? ", "gt_ans": "2"},
    ]
    path = write_jsonl(tmp_path / "q.jsonl", recs)
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    [msg] = problems_of(exc)
    assert msg.startswith(f"{path}:3: field 'query': same text as {path}:1")


def test_report_is_capped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"query": f"q{i}?"} for i in range(MAX_REPORTED + 5)])
    with pytest.raises(QueryInputError) as exc:
        load_queries(path)
    assert len(exc.value.problems) == MAX_REPORTED
    assert exc.value.total == MAX_REPORTED + 5
    assert str(exc.value).endswith("... and 5 more")


def test_limit_reads_only_the_first_records(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECS) + "{broken\n")
    assert [q.query_id for q in load_queries(path, limit=1)] == ["a"]
    assert len(load_queries(path, limit=2)) == 2
    with pytest.raises(QueryInputError):
        load_queries(path, limit=3)
    with pytest.raises(InputError, match="limit must be a positive integer"):
        load_queries(path, limit=0)


def test_empty_input(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="no queries found"):
        load_queries(tmp_path / "e.jsonl")


def test_long_text_fields_stay_out_of_meta(tmp_path: Path) -> None:
    recs = [{"query": "q?", "gt_ans": "1", "solution": "x" * 500, "tags": ["a"], "n": 2.5}]
    [q] = load_queries(write_jsonl(tmp_path / "q.jsonl", recs))
    assert q.meta == {"n": 2.5}


# ------------------------------------------------------------------------------ pass rates


PUBLISHED_COLUMNS = [
    "query_id",
    "level",
    "domain",
    "n_samples_list",
    "n_corrects_list",
    "tot_n_samples",
    "tot_n_corrects",
    "pass_rate",
    "pass_rate_bernoulli_std",
]


def published_rows() -> list[dict]:
    rows = [json.loads(line) for line in QUERY_INFO.read_text().splitlines()]
    assert all(list(r) == PUBLISHED_COLUMNS for r in rows)
    return rows


def test_pass_rates_from_published_format_parquet(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "train-00000-of-00001.parquet", published_rows())
    rates = load_pass_rates(path)
    assert rates == {
        "MATH/train/algebra/1.json": 0.953125,
        "MATH/train/algebra/2.json": 0.640625,
        "MATH/train/algebra/12.json": 0.1875,
        "MATH/train/counting_and_probability/7.json": 0.0,
    }


def test_pass_rates_from_a_local_copy_of_the_published_dataset(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    repo = tmp_path / "dart-math-pool-math-query-info"
    (repo / "data").mkdir(parents=True)
    write_parquet(repo / "data" / "train-00000-of-00001.parquet", published_rows())
    assert load_pass_rates(repo) == load_pass_rates(QUERY_INFO)


def test_pass_rates_from_our_query_info(tmp_path: Path) -> None:
    rows = [
        {
            "query_id": "demo-001",
            "query": "What is 1 + 1?",
            "gt_ans": "2",
            "level": 1,
            "tot_n_samples": 16,
            "tot_n_corrects": 12,
            "pass_rate": 0.75,
            "pass_rate_bernoulli_std": 0.108,
            "n_no_answer": 1,
            "n_grade_errors": 0,
        },
        {"query_id": 5, "pass_rate": 1},
    ]
    assert load_pass_rates(write_jsonl(tmp_path / "query_info.jsonl", rows)) == {
        "demo-001": 0.75,
        "5": 1.0,
    }


def test_pass_rate_errors_name_file_line_field(tmp_path: Path) -> None:
    rows = [
        {"query_id": "a", "pass_rate": 0.5},
        {"query_id": "b", "pass_rate": 1.5},
        {"query_id": "c", "pass_rate": "0.5"},
        {"query_id": "d"},
        {"pass_rate": 0.1},
        {"query_id": "a", "pass_rate": 0.25},
        {"query_id": "e", "pass_rate": True},
        {"query_id": "f", "pass_rate": -0.1},
    ]
    path = write_jsonl(tmp_path / "qi.jsonl", rows)
    with pytest.raises(QueryInputError) as exc:
        load_pass_rates(path)
    assert problems_of(exc) == [
        f"{path}:2: field 'pass_rate': expected a number in [0, 1], got 1.5",
        f"{path}:3: field 'pass_rate': expected a number, got string",
        f"{path}:4: field 'pass_rate': missing",
        f"{path}:5: field 'query_id': missing",
        f"{path}:6: field 'query_id': duplicate query_id 'a' (also at {path}:1)",
        f"{path}:7: field 'pass_rate': expected a number, got boolean",
        f"{path}:8: field 'pass_rate': expected a number in [0, 1], got -0.1",
    ]


def test_pass_rate_parquet_errors_name_the_row(tmp_path: Path) -> None:
    rows = published_rows()
    rows[2]["pass_rate"] = None
    path = write_parquet(tmp_path / "qi.parquet", rows)
    with pytest.raises(QueryInputError) as exc:
        load_pass_rates(path)
    assert problems_of(exc) == [f"{path} row 2: field 'pass_rate': expected a number, got null"]


def test_dataset_name_without_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    with pytest.raises(InputError, match="needs the `datasets` package"):
        load_queries("some-org/some-dataset")
