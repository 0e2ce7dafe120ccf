"""Tests of per-query counting, the pool report, the stats plot and `dart stats`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from dartmath.cli import main
from dartmath.errors import InputError
from dartmath.io.jsonl import write_jsonl
from dartmath.record import (
    QueryAccumulator,
    pass_rate_std,
    query_info_from_jsonl,
    query_info_from_records,
)
from dartmath.stats import Report, load_report, quantile, summarize

DATA = Path(__file__).parent / "data"
SMALL = DATA / "graded_pool_small.jsonl"
SAMPLE_POOL = Path(__file__).parent.parent / "data" / "sample_pool.jsonl"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rec(qid: str | None, correct: bool, **extra) -> dict:
    """A minimal graded pool record."""
    base = {
        "query": f"problem {qid}",
        "gt_ans": "1",
        "ans": "1",
        "correct": correct,
        "grade_error": None,
        "resp": "...",
        "sample_idx": 0,
        "model": "m",
    }
    if qid is not None:
        base["query_id"] = qid
    return {**base, **extra}


def write_pool(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- counting -------------------------------------------------------------------------------


def test_counts_and_pass_rates_per_query():
    rows = query_info_from_records(
        [rec("a", True), rec("a", False), rec("a", True), rec("b", False), rec("a", True)]
    )
    a, b = rows
    assert (a["tot_n_samples"], a["tot_n_corrects"], a["pass_rate"]) == (4, 3, 0.75)
    assert (b["tot_n_samples"], b["tot_n_corrects"], b["pass_rate"]) == (1, 0, 0.0)


def test_bernoulli_std_is_standard_error_of_pass_rate():
    rows = query_info_from_records([rec("a", i < 3) for i in range(4)])
    assert rows[0]["pass_rate_bernoulli_std"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert pass_rate_std(0, 10) == 0.0
    assert pass_rate_std(10, 10) == 0.0
    assert pass_rate_std(5, 100) == pytest.approx(math.sqrt(0.05 * 0.95 / 100))
    with pytest.raises(ValueError):
        pass_rate_std(0, 0)


def test_queries_keep_first_seen_order_when_interleaved():
    rows = query_info_from_records(
        [rec("z", True), rec("m", True), rec("z", False), rec("a", True), rec("m", False)]
    )
    assert [r["query_id"] for r in rows] == ["z", "m", "a"]
    assert [r["tot_n_samples"] for r in rows] == [2, 2, 1]


def test_field_order_and_metadata_kept_per_response_fields_dropped():
    r = rec(
        "a",
        True,
        level=5,
        domain="Algebra",
        finish_reason="stop",
        n_tokens=100,
        prompt_template="alpaca",
        pass_rate=0.123,
    )
    row = query_info_from_records([r])[0]
    assert list(row) == [
        "query_id",
        "query",
        "gt_ans",
        "level",
        "domain",
        "tot_n_samples",
        "tot_n_corrects",
        "pass_rate",
        "pass_rate_bernoulli_std",
        "n_no_answer",
        "n_grade_errors",
    ]
    assert row["level"] == 5 and row["domain"] == "Algebra"
    assert row["pass_rate"] == 1.0  # a stale pass_rate in the pool line is not copied


def test_metadata_comes_from_first_record_of_the_query():
    rows = query_info_from_records([rec("a", True, level=1), rec("a", True, level=9)])
    assert rows[0]["level"] == 1


def test_no_answer_and_grade_error_counts():
    rows = query_info_from_records(
        [
            rec("a", False, ans=None, grade_error="no_answer"),
            rec("a", False, ans=None),
            rec("a", False, grade_error="timeout"),
            rec("a", False, grade_error="error: ValueError: bad"),
            rec("a", True),
        ]
    )
    assert rows[0]["n_no_answer"] == 2
    assert rows[0]["n_grade_errors"] == 2


def test_missing_query_id_groups_by_query_text():
    rows = query_info_from_records(
        [rec(None, True, query="p"), rec(None, False, query="p"), rec(None, True, query="q")]
    )
    assert [(r["query_id"], r["query"], r["tot_n_samples"]) for r in rows] == [
        (None, "p", 2),
        (None, "q", 1),
    ]


def test_missing_correct_raises_with_file_line_and_field(tmp_path):
    bad = rec("a", True)
    del bad["correct"]
    pool = write_pool(tmp_path / "pool.jsonl", [rec("a", True), rec("a", False), bad])
    with pytest.raises(InputError) as exc:
        query_info_from_jsonl(pool)
    assert exc.value.line == 3
    assert exc.value.field == "correct"
    assert f"{pool}:3" in str(exc.value)


@pytest.mark.parametrize("value", [None, 1, "true", 0.0])
def test_non_bool_correct_raises(value):
    with pytest.raises(InputError) as exc:
        query_info_from_records([rec("a", True), rec("a", value)])
    assert exc.value.line == 2 and exc.value.field == "correct"


def test_record_without_query_id_or_query_raises():
    bad = rec(None, True)
    del bad["query"]
    with pytest.raises(InputError, match="query_id"):
        query_info_from_records([bad])


def test_unhashable_query_id_raises():
    with pytest.raises(InputError) as exc:
        query_info_from_records([rec("a", True), rec("a", True, query_id=["a"])])
    assert exc.value.field == "query_id" and exc.value.line == 2


def test_same_query_id_with_different_reference_raises():
    with pytest.raises(InputError) as exc:
        query_info_from_records([rec("a", True), rec("a", True, gt_ans="2")])
    assert exc.value.field == "gt_ans"
    assert "line 1" in str(exc.value)


def test_accumulator_streams_and_keeps_no_responses():
    acc = QueryAccumulator("pool.jsonl")
    for i in range(1000):
        acc.add(rec(f"q{i % 3}", i % 2 == 0, resp="x" * 1000), lineno=i + 1)
    assert acc.n_records == 1000 and len(acc) == 3
    state = acc._queries[("id", "q0")]
    assert "resp" not in state.head
    assert [r["tot_n_samples"] for r in acc.rows()] == [334, 333, 333]


def test_write_query_info_roundtrip(tmp_path):
    rows = query_info_from_records([rec("a", True), rec("b", False)])
    out = tmp_path / "query_info.jsonl"
    assert write_jsonl(out, rows) == 2
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


# --- summary and report ---------------------------------------------------------------------


def test_quantile_interpolates():
    vals = [0.0, 0.25, 0.625, 1.0]
    assert quantile(vals, 0.0) == 0.0 and quantile(vals, 1.0) == 1.0
    assert quantile(vals, 0.5) == pytest.approx(0.4375)
    assert quantile(vals, 0.25) == pytest.approx(0.1875)
    assert quantile([0.3], 0.9) == 0.3


def test_small_pool_report_matches_hand_counts():
    report = load_report(SMALL)
    by_id = {r["query_id"]: r for r in report.queries}
    assert [r["query_id"] for r in report.queries] == ["small-1", "small-2", "small-3", "small-4"]
    assert (by_id["small-1"]["tot_n_samples"], by_id["small-1"]["tot_n_corrects"]) == (8, 8)
    assert (by_id["small-2"]["tot_n_corrects"], by_id["small-2"]["n_no_answer"]) == (5, 1)
    assert (by_id["small-3"]["tot_n_corrects"], by_id["small-3"]["n_grade_errors"]) == (2, 1)
    assert (by_id["small-4"]["tot_n_samples"], by_id["small-4"]["tot_n_corrects"]) == (6, 0)
    assert by_id["small-2"]["level"] == 1 and by_id["small-4"]["domain"] == "Number Theory"
    s = report.summary
    assert (s["queries"], s["responses"], s["correct"]) == (4, 30, 15)
    assert s["pass_rate"] == 0.5
    assert (s["unsolved_queries"], s["all_correct_queries"]) == (1, 1)
    assert (s["no_answer_responses"], s["grade_errors"]) == (2, 1)
    q = s["query_pass_rate"]
    assert (q["min"], q["max"]) == (0.0, 1.0)
    assert q["median"] == pytest.approx(0.4375)
    assert q["p25"] == pytest.approx(0.1875)
    assert q["p90"] == pytest.approx(0.8875)
    assert q["mean"] == pytest.approx(0.46875)


def test_empty_pool_summary(tmp_path):
    report = load_report(write_pool(tmp_path / "pool.jsonl", []))
    assert report.queries == [] and report.summary["responses"] == 0
    assert report.summary["pass_rate"] is None
    assert report.summary["query_pass_rate"]["median"] is None
    assert "no queries" in report.format()


def test_load_report_on_run_dir_ignores_stale_query_info(tmp_path):
    write_pool(tmp_path / "pool.jsonl", [rec("a", True), rec("a", False)])
    write_pool(
        tmp_path / "query_info.jsonl",
        [{"query_id": "a", "tot_n_samples": 99, "tot_n_corrects": 99, "pass_rate": 1.0}],
    )
    report = load_report(tmp_path)
    assert report.queries[0]["tot_n_samples"] == 2
    assert report.source == str(tmp_path / "pool.jsonl")


def test_load_report_missing_paths(tmp_path):
    with pytest.raises(InputError, match="a directory with no pool.jsonl"):
        load_report(tmp_path)
    with pytest.raises(InputError, match="nope.jsonl: no such pool file or run directory"):
        load_report(tmp_path / "nope.jsonl")


def test_format_hardest_first_and_top_limit():
    text = load_report(SMALL).format(top=2)
    assert "overall pass rate 50.0%" in text
    table = text[text.index("hardest first") :]
    assert table.index("small-4") < table.index("small-3")
    assert "small-1" not in table and "small-2" not in table
    assert "2 more not shown" in table
    assert "more not shown" not in load_report(SMALL).format(top=0)


def test_format_truncates_long_query_text():
    rows = query_info_from_records([rec("a", True, query="word " * 100)])
    line = next(ln for ln in Report.from_rows(rows).format().splitlines() if "  a  " in ln)
    assert line.endswith("...") and len(line) < 120


def test_to_json_has_summary_and_rows():
    doc = json.loads(load_report(SMALL).to_json())
    assert doc["summary"]["responses"] == 30
    assert [r["query_id"] for r in doc["queries"]] == ["small-1", "small-2", "small-3", "small-4"]
    assert doc["queries"][1]["pass_rate"] == 0.625


def test_summarize_hardest_counts_mixed_queries():
    rows = query_info_from_records([rec("a", False), rec("b", True), rec("b", False)])
    s = summarize(rows)
    assert s["unsolved_queries"] == 1 and s["all_correct_queries"] == 0


# --- the bundled demo pool ------------------------------------------------------------------


def test_sample_pool_is_ungraded_and_well_formed():
    lines = [json.loads(line) for line in SAMPLE_POOL.read_text().splitlines()]
    assert 90 <= len(lines) <= 110
    keys = {"query_id", "sample_idx", "query", "gt_ans", "resp", "model", "prompt_template"}
    assert all(set(r) == keys for r in lines)
    per_query: dict[str, list[int]] = {}
    for r in lines:
        per_query.setdefault(r["query_id"], []).append(r["sample_idx"])
    assert len(per_query) == 6
    assert all(12 <= len(idx) <= 24 and idx == list(range(len(idx))) for idx in per_query.values())


# --- plot and CLI ---------------------------------------------------------------------------


def test_plot_report_writes_png(tmp_path):
    from dartmath.plot import plot_report

    out = tmp_path / "stats.png"
    plot_report(load_report(SMALL), out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    empty = tmp_path / "empty.png"
    plot_report(Report.from_rows([]), empty)
    assert empty.read_bytes()[:8] == PNG_SIGNATURE


def test_cli_stats_text():
    result = CliRunner().invoke(main, ["stats", str(SMALL)])
    assert result.exit_code == 0, result.output
    assert "responses" in result.output and "30" in result.output
    assert result.output.index("small-4") < result.output.index("small-1")


def test_cli_stats_json():
    result = CliRunner().invoke(main, ["stats", str(SMALL), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["summary"]["correct"] == 15 and len(doc["queries"]) == 4


def test_cli_stats_plot(tmp_path):
    out = tmp_path / "tmp.png"
    result = CliRunner().invoke(main, ["stats", str(SMALL), "--plot", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE
    assert f"wrote {out}" in result.output


def test_cli_stats_top(tmp_path):
    result = CliRunner().invoke(main, ["stats", str(SMALL), "--top", "1"])
    assert result.exit_code == 0
    assert "small-4" in result.output and "small-3" not in result.output


def test_cli_stats_missing_path(tmp_path):
    result = CliRunner().invoke(main, ["stats", str(tmp_path / "missing.jsonl")])
    assert result.exit_code != 0
    assert "missing.jsonl" in result.output and "does not exist" in result.output


def test_cli_stats_dir_without_pool(tmp_path):
    result = CliRunner().invoke(main, ["stats", str(tmp_path)])
    assert result.exit_code == 2
    assert "no pool.jsonl" in result.output


def test_cli_stats_ungraded_pool_names_line(tmp_path):
    result = CliRunner().invoke(main, ["stats", str(SAMPLE_POOL)])
    assert result.exit_code == 2
    assert f"{SAMPLE_POOL}:1" in result.output and "correct" in result.output
