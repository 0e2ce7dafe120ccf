"""Tests of `dart export`: round trips through JSONL, Parquet and `datasets` folders, the
selection rules on real inputs (caps, targets, dedup, pass rates, merges), record layouts, the
dataset card, and every refusal (nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dartmath.cli import main
from dartmath.errors import DartError, InputError, MissingDependency
from dartmath.export import ExportOptions, SelectOptions, export_training_set
from dartmath.sampling.prompts import ALPACA
from dartmath.synth.store import RunStore
from input_files import write_jsonl
from synth_helpers import lock_held_by_another_process

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def line(qid, idx, correct, resp=None, query=None, gt="1", **extra) -> dict:
    """A graded pool line of query `qid` (text `problem <qid>` unless given)."""
    rec = {
        "query_id": qid,
        "sample_idx": idx,
        "query": query if query is not None else f"problem {qid}",
        "gt_ans": gt,
        "resp": resp if resp is not None else f"response {qid}/{idx}",
        "ans": gt if correct else "0",
        "correct": correct,
        "model": "m",
        "prompt_template": "alpaca",
    }
    rec.update(extra)
    return rec


def make_run(
    run_dir: Path,
    lines: list[dict],
    targets: dict[str, int | None],
    strategy: dict | None = None,
    stop_reasons: dict[str, str | None] | None = None,
    model: str = "m",
    template: str = "alpaca",
) -> Path:
    """A run directory as dart synth leaves it: config.yaml, pool.jsonl, query_info.jsonl."""
    run_dir.mkdir(parents=True)
    config = {
        "model": model,
        "prompt": {"template": template, "instruction": None},
        "strategy": strategy or {"name": "prop2diff", "k_p": 4, "n_probe": 4, "max_raw": 16},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    write_jsonl(run_dir / "pool.jsonl", lines)
    stop_reasons = stop_reasons or {}
    write_jsonl(
        run_dir / "query_info.jsonl",
        [
            {"query_id": q, "target": t, "stop_reason": stop_reasons.get(q, "target_met")}
            for q, t in targets.items()
        ],
    )
    return run_dir


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def export(inputs, output, **options) -> tuple:
    """Export with ExportOptions (selection keywords go to SelectOptions); (report, records)
    for a JSONL output."""
    select_keys = set(SelectOptions.__dataclass_fields__)
    sel = SelectOptions(**{k: options.pop(k) for k in list(options) if k in select_keys})
    report = export_training_set(
        [str(i) for i in inputs], output, ExportOptions(select=sel, **options)
    )
    records = read_jsonl(Path(output)) if str(output).endswith(".jsonl") else None
    return report, records


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """Three queries: a 3 of 4 correct, b 1 of 2, c 0 of 2."""
    return write_jsonl(
        tmp_path / "pool.jsonl",
        [
            line("a", 0, True),
            line("a", 1, False),
            line("b", 0, True),
            line("a", 2, True),
            line("b", 1, False),
            line("a", 3, True),
            line("c", 0, False),
            line("c", 1, False),
        ],
    )


# ---- round trips -------------------------------------------------------------------------


def test_jsonl_round_trip_keeps_every_correct_response_in_line_order(pool, tmp_path):
    out = tmp_path / "out" / "train.jsonl"
    report, records = export([pool], out)
    assert [r["response"] for r in records] == [
        "response a/0",
        "response b/0",
        "response a/2",
        "response a/3",
    ]
    assert all(list(r) == ["query", "response"] for r in records)
    assert records[0]["query"] == "problem a"
    assert (report.records, report.queries, report.with_records, report.unsolved) == (4, 3, 2, 1)
    assert report.left_out["incorrect"] == 4
    assert report.written == [
        str(out),
        str(out.parent / "README.md"),
        str(out.parent / "README.png"),
    ]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporaries


def test_parquet_round_trip(pool, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "train.parquet"
    report, _ = export([pool], out, max_per_query=2)
    table = pq.read_table(out)
    assert table.num_rows == report.records == 3
    assert table.column_names == ["query", "response"]
    assert table.column("response").to_pylist() == ["response a/0", "response b/0", "response a/2"]


def test_datasets_folder_round_trip_and_replacing_it(pool, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    report, _ = export([pool], out, layout="messages", with_meta=True)
    ds = datasets.load_from_disk(str(out))
    assert ds.num_rows == report.records == 4
    assert ds[0]["messages"] == [
        {"role": "user", "content": "problem a"},
        {"role": "assistant", "content": "response a/0"},
    ]
    assert ds[0]["pass_rate"] == 0.75 and ds[0]["query_id"] == "a"
    assert (out / "README.md").is_file() and (out / "README.png").read_bytes()[:8] == PNG_SIGNATURE
    card = (out / "README.md").read_text()
    assert "path: data-*.arrow" in card
    export([pool], out, max_per_query=1)  # an earlier export's folder is replaced whole
    assert datasets.load_from_disk(str(out)).num_rows == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "pool.jsonl"]


def test_empty_training_set_is_written(tmp_path):
    pytest.importorskip("datasets")
    pool = write_jsonl(tmp_path / "pool.jsonl", [line("a", 0, False)])
    report, records = export([pool], tmp_path / "t.jsonl")
    assert records == [] and report.records == 0
    import datasets

    export([pool], tmp_path / "ds")
    assert datasets.load_from_disk(str(tmp_path / "ds")).num_rows == 0


def test_format_from_name_and_unknown_suffix(pool, tmp_path):
    with pytest.raises(DartError, match="cannot tell the format"):
        export([pool], tmp_path / "train.csv")
    report, _ = export([pool], tmp_path / "train.csv", fmt="jsonl", write_card=False)
    assert report.fmt == "jsonl" and len(read_jsonl(tmp_path / "train.csv")) == 4


# ---- selection on real inputs ----------------------------------------------------------------


def test_max_per_query_keeps_first_in_sample_order_not_line_order(tmp_path):
    pool = write_jsonl(
        tmp_path / "pool.jsonl",
        [line("a", 3, True), line("a", 1, True), line("a", 2, True), line("a", 0, True)],
    )
    report, records = export([pool], tmp_path / "t.jsonl", max_per_query=2, with_meta=True)
    assert sorted(r["sample_idx"] for r in records) == [0, 1]
    assert [r["sample_idx"] for r in records] == [1, 0]  # written in line order
    assert report.left_out["over_max"] == 2


def test_target_caps_a_probe_overshoot_unless_keep_over_target(tmp_path):
    # a: target 2 but its probe kept 4 correct; b: target 3, met exactly.
    lines = [line("a", i, True) for i in range(4)] + [
        line("b", 0, True),
        line("b", 1, False),
        line("b", 2, True),
        line("b", 3, True),
    ]
    run = make_run(tmp_path / "run", lines, {"a": 2, "b": 3})
    report, records = export([run], tmp_path / "t.jsonl", with_meta=True)
    assert [(r["query_id"], r["sample_idx"]) for r in records] == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 2),
        ("b", 3),
    ]
    assert report.left_out["over_target"] == 2
    assert report.inputs[0].strategy == "prop2diff(k_p=4, n_probe=4); max_raw=16"
    report, records = export([run], tmp_path / "t.jsonl", keep_over_target=True)
    assert len(records) == 7 and report.left_out["over_target"] == 0


def test_vrt_targets_count_raw_samples_and_cap_nothing(tmp_path):
    lines = [line("a", i, True) for i in range(3)]
    run = make_run(tmp_path / "run", lines, {"a": 3}, strategy={"name": "vrt", "n_vrt": 3})
    _, records = export([run], tmp_path / "t.jsonl")
    assert len(records) == 3


def test_dedup_exact_and_normalized_are_counted(tmp_path):
    resps = ["x = 1", "x = 1", "X =  1", "y"]
    pool = write_jsonl(
        tmp_path / "pool.jsonl", [line("a", i, True, resp=r) for i, r in enumerate(resps)]
    )
    report, records = export([pool], tmp_path / "t.jsonl", dedup="exact")
    assert [r["response"] for r in records] == ["x = 1", "X =  1", "y"]
    assert report.left_out["duplicates"] == 1
    report, records = export([pool], tmp_path / "t.jsonl", dedup="normalized")
    assert [r["response"] for r in records] == ["x = 1", "y"]
    assert report.left_out["duplicates"] == 2


def test_pass_rate_filter_selects_queries_by_difficulty(pool, tmp_path):
    # a 0.75, b 0.5, c 0.0
    report, records = export([pool], tmp_path / "t.jsonl", min_pass_rate=0.5, max_pass_rate=0.5)
    assert [r["response"] for r in records] == ["response b/0"]
    assert (report.filtered, report.unsolved, report.left_out["pass_rate"]) == (1, 1, 3)
    assert report.records + sum(report.left_out.values()) == report.lines == 8
    assert report.with_records == 1


def test_merge_same_text_under_other_ids_is_one_query(tmp_path):
    text = "What is  1 + 1?"
    run1 = make_run(
        tmp_path / "r1", [line("a", 0, True, query=text), line("a", 1, True, query=text)], {"a": 2}
    )
    run2 = make_run(
        tmp_path / "r2",
        [line("q-x", i, i == 0, query=" What is 1 + 1?\n") for i in range(2)],
        {"q-x": 1},
    )
    report, records = export([run2, run1], tmp_path / "t.jsonl", with_meta=True)
    assert report.queries == 1
    # One query, one target (the largest, 2), filled in sample order: run2 first as given.
    assert [(r["query_id"], r["sample_idx"]) for r in records] == [("q-x", 0), ("a", 0)]
    assert {r["pass_rate"] for r in records} == {0.75}
    assert report.left_out["over_target"] == 1


def test_two_queries_of_one_input_with_one_text_stay_two(tmp_path):
    # As in dart stats: within one input, ids decide; each finds its own match in another input.
    p1 = write_jsonl(
        tmp_path / "p1.jsonl", [line("a", 0, True, query="Q"), line("b", 0, False, query="Q")]
    )
    p2 = write_jsonl(tmp_path / "p2.jsonl", [line("x", 0, True, query="Q")])
    report, _ = export([p1, p2], tmp_path / "t.jsonl", with_meta=True)
    assert report.queries == 2
    assert [i.queries for i in report.inputs] == [2, 1]
    report, records = export([p2, p1], tmp_path / "t.jsonl", with_meta=True)
    assert report.queries == 2
    assert {r["query_id"]: r["pass_rate"] for r in records} == {"x": 1.0, "a": 1.0}


def test_same_id_different_texts_in_two_inputs_are_two_queries(tmp_path):
    math = write_jsonl(
        tmp_path / "math.jsonl", [line("0", 0, True, query="Find x.", source="math")]
    )
    gsm = write_jsonl(tmp_path / "gsm.jsonl", [line(0, 0, True, query="How many?", source="gsm8k")])
    report, records = export([math, gsm], tmp_path / "t.jsonl")
    assert report.queries == 2 and len(records) == 2
    assert {k: g.records for k, g in report.by_source.items()} == {"math": 1, "gsm8k": 1}


def test_same_text_with_another_reference_in_two_inputs_is_an_error(tmp_path):
    p1 = write_jsonl(tmp_path / "p1.jsonl", [line("a", 0, True, query="Find x.", gt="2")])
    p2 = write_jsonl(
        tmp_path / "p2.jsonl", [line("b", 0, True), line("b", 1, True, query="Find  x.", gt="3")]
    )
    # b's first line is "problem b"; the line of "Find  x." is an id clash: name the field.
    with pytest.raises(InputError, match=r"p2.jsonl:2: field 'query': differs from line 1"):
        export([p1, p2], tmp_path / "t.jsonl")
    p3 = write_jsonl(tmp_path / "p3.jsonl", [line("c", 0, True, query="Find  x.", gt="3")])
    with pytest.raises(InputError, match=r"p3.jsonl:1: field 'gt_ans': the same query as .*p1"):
        export([p1, p3], tmp_path / "t.jsonl")
    assert not (tmp_path / "t.jsonl").exists()


def test_model_or_template_conflict_is_refused_unless_allow_mixed(tmp_path):
    p1 = write_jsonl(tmp_path / "p1.jsonl", [line("a", 0, True)])
    p2 = write_jsonl(tmp_path / "p2.jsonl", [line("b", 0, True, model="other")])
    bare = {k: v for k, v in line("c", 0, True).items() if k not in ("model", "prompt_template")}
    p3 = write_jsonl(tmp_path / "p3.jsonl", [bare])
    with pytest.raises(DartError, match=r"model 'm': .*p1.jsonl\n  model 'other': .*p2.jsonl"):
        export([p1, p2, p3], tmp_path / "t.jsonl")
    report, records = export([p1, p2, p3], tmp_path / "t.jsonl", allow_mixed=True)
    assert len(records) == 3
    assert report.setting("model").startswith("mixed: m (")
    assert "unknown for" in report.setting("model")
    report, _ = export([p1, p3], tmp_path / "t.jsonl")  # unknown does not conflict
    assert report.setting("model") == f"m (unknown for {p3})"


def test_run_config_and_lines_disagreeing_is_mixed(tmp_path):
    run = make_run(tmp_path / "run", [line("a", 0, True)], {"a": 1}, template="deepseekmath")
    with pytest.raises(DartError, match="prompt_template 'alpaca'"):
        export([run], tmp_path / "t.jsonl")


# ---- layouts and metadata ----------------------------------------------------------------


def test_messages_layout_and_prompt_template(pool, tmp_path):
    _, records = export([pool], tmp_path / "t.jsonl", layout="messages", prompt_template="alpaca")
    assert records[0] == {
        "messages": [
            {"role": "user", "content": ALPACA.render("problem a")},
            {"role": "assistant", "content": "response a/0"},
        ]
    }
    _, records = export([pool], tmp_path / "t.jsonl", prompt_template="alpaca")
    query = records[0]["query"]
    assert query.startswith("Below is an instruction") and query.endswith("### Response:\n")
    with pytest.raises(DartError, match="chat template is the model's own"):
        export([pool], tmp_path / "t2.jsonl", prompt_template="chat")
    assert not (tmp_path / "t2.jsonl").exists()


def test_with_meta_fields_and_parquet_schema_of_mixed_metadata(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p1 = write_jsonl(
        tmp_path / "p1.jsonl",
        [
            line("a", 0, True, source="math", level=5, domain="Algebra", tag=1, input_source="x"),
            line("a", 1, False, source="math", level=5, domain="Algebra", tag=1, input_source="x"),
        ],
    )
    p2 = write_jsonl(
        tmp_path / "p2.jsonl",
        [line("b", 0, True, source="gsm8k", tag="t", score=1, messages=[{"role": "user"}])],
    )
    p3 = write_jsonl(tmp_path / "p3.jsonl", [line("c", 7, True, score=0.5, flag=True)])
    report, records = export([p1, p2, p3], tmp_path / "t.jsonl", with_meta=True)
    assert list(records[0]) == [
        "query",
        "response",
        "query_id",
        "source",
        "level",
        "domain",
        "tag",
        "input_source",
        "score",
        "input_messages",
        "flag",
        "sample_idx",
        "pass_rate",
        "model",
    ]
    assert records[0]["pass_rate"] == 0.5 and records[0]["model"] == "m"
    assert records[1]["level"] is None and records[1]["input_messages"] == [{"role": "user"}]
    export([p1, p2, p3], tmp_path / "t.parquet", with_meta=True)
    table = pq.read_table(tmp_path / "t.parquet")
    types = {f.name: f.type for f in table.schema}
    assert types["level"] == pa.int64() and types["domain"] == pa.string()
    assert types["tag"] == pa.string() and types["score"] == pa.float64()
    assert types["flag"] == pa.bool_() and types["input_messages"] == pa.string()
    rows = table.to_pylist()
    assert [r["tag"] for r in rows] == ["1", '"t"', None]  # mixed kinds: JSON text
    assert rows[1]["input_messages"] == '[{"role":"user"}]'
    assert [r["score"] for r in rows] == [None, 1.0, 0.5]
    assert {k: g.records for k, g in report.levels()} == {"5": 1, "-": 2}


# ---- the dataset card --------------------------------------------------------------------


def test_card_front_matter_and_figure(pool, tmp_path):
    out = tmp_path / "out" / "train.jsonl"
    export([pool], out)
    text = (tmp_path / "out" / "README.md").read_text()
    head = yaml.safe_load(text.split("---")[1])
    assert head["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"}]}
    ]
    assert head["size_categories"] == ["n<1K"] and "dartmath-export" in head["tags"]
    assert "![Responses per query, hardest first](README.png)" in text
    assert "| incorrect | 4 |" in text
    assert (tmp_path / "out" / "README.png").read_bytes()[:8] == PNG_SIGNATURE


def test_a_readme_not_ours_is_never_replaced(pool, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# my project\n")
    with pytest.raises(DartError, match="--card PATH.*--no-card"):
        export([pool], tmp_path / "train.jsonl")
    assert readme.read_text() == "# my project\n" and not (tmp_path / "train.jsonl").exists()
    export([pool], tmp_path / "train.jsonl", write_card=False)
    export([pool], tmp_path / "train.jsonl", card=tmp_path / "cards" / "train.md")
    assert "path: ../train.jsonl" in (tmp_path / "cards" / "train.md").read_text()
    assert (tmp_path / "cards" / "train.png").is_file()
    assert readme.read_text() == "# my project\n"


# ---- bad inputs: refused, nothing written ---------------------------------------------------


def test_pool_without_correct_names_file_line_field_and_writes_nothing(tmp_path):
    ungraded = {k: v for k, v in line("a", 1, True).items() if k != "correct"}
    pool = write_jsonl(tmp_path / "pool.jsonl", [line("a", 0, True), ungraded])
    out = tmp_path / "train.jsonl"
    with pytest.raises(InputError, match=r"pool.jsonl:2: field 'correct': missing \(grade the"):
        export([pool], out)
    assert not out.exists() and not (tmp_path / "README.md").exists()
    out.write_text("old\n")
    with pytest.raises(InputError):
        export([pool], out)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.jsonl", "train.jsonl"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"{not json\n", r"pool.jsonl:2: malformed JSON"),
        (b'{"query_id": "a", "query": "q", "correct": true}\n', r"pool.jsonl:2: field 'resp'"),
        (
            b'{"query_id": "a", "query": "q", "resp": "r", "correct": "yes"}\n',
            r"pool.jsonl:2: field 'correct': expected true or false",
        ),
        (
            b'{"query_id": [1], "query": "q", "resp": "r", "correct": true}\n',
            r"pool.jsonl:2: field 'query_id'",
        ),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, bad, message):
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(json.dumps(line("a", 0, True)).encode() + b"\n" + bad)
    with pytest.raises(InputError, match=message):
        export([pool], tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_run_in_progress_is_refused(tmp_path):
    run = make_run(tmp_path / "run", [line("a", 0, True)], {"a": 1})
    assert RunStore(run).lock_holder() is None  # never locked: no .lock, none created
    assert not (run / ".lock").exists()
    with lock_held_by_another_process(run) as pid:
        assert RunStore(run).lock_holder() == pid
        with pytest.raises(InputError, match=rf"run: in use by dart synth \(pid {pid}\)"):
            export([run], tmp_path / "t.jsonl")
    assert RunStore(run).lock_holder() is None  # free once the holder has ended
    assert not (tmp_path / "t.jsonl").exists()
    _, records = export([run], tmp_path / "t.jsonl")
    assert len(records) == 1


def test_unfinished_run_is_refused_unless_allowed(tmp_path):
    run = make_run(
        tmp_path / "run",
        [line("a", 0, True), line("b", 0, False)],
        {"a": 1, "b": 2},
        stop_reasons={"b": None},
    )
    with pytest.raises(InputError, match=r"query_info.jsonl: 1 of 2 queries are unfinished"):
        export([run], tmp_path / "t.jsonl")
    report, records = export([run], tmp_path / "t.jsonl", allow_unfinished=True)
    assert len(records) == 1 and report.unfinished == 1
    assert "unfinished queries 1" in report.format()


def test_a_killed_runs_cut_off_last_line_is_left_out_with_a_note(tmp_path):
    """dart synth cuts a torn last line when it resumes; export leaves it out the same way
    (a pool file given by name keeps its last line: hand-written ones often lack the newline)."""
    run = make_run(tmp_path / "run", [line("a", 0, True), line("a", 1, True)], {"a": 2})
    pool = run / "pool.jsonl"
    with open(pool, "a") as f:
        f.write(json.dumps(line("a", 2, True))[:25])
    before = pool.read_bytes()
    report, records = export([run], tmp_path / "t.jsonl")
    assert [r["response"] for r in records] == ["response a/0", "response a/1"]
    assert "its last line is cut off (25 bytes" in report.format()
    assert pool.read_bytes() == before
    whole = write_jsonl(tmp_path / "p.jsonl", [line("b", 0, True)])
    whole.write_bytes(whole.read_bytes().rstrip(b"\n"))
    _, records = export([whole], tmp_path / "t2.jsonl")
    assert len(records) == 1


def test_run_directory_without_query_info_is_refused(tmp_path):
    run = make_run(tmp_path / "run", [line("a", 0, True)], {"a": 1})
    (run / "query_info.jsonl").unlink()
    with pytest.raises(InputError, match="run: no query_info.jsonl: .*give its pool.jsonl"):
        export([run], tmp_path / "t.jsonl")
    _, records = export([run / "pool.jsonl"], tmp_path / "t.jsonl")
    assert len(records) == 1


def test_parquet_without_the_extra_says_what_to_install(pool, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'dartmath\[export\]'"):
        export([pool], tmp_path / "t.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.jsonl"]
    _, records = export([pool], tmp_path / "t.jsonl")  # JSONL needs neither
    assert len(records) == 4


def test_same_input_twice_or_output_over_an_input_is_refused(pool, tmp_path):
    with pytest.raises(DartError, match="are the same pool"):
        export([pool, pool], tmp_path / "t.jsonl")
    with pytest.raises(DartError, match="would replace the input"):
        export([pool], pool, fmt="jsonl")


def test_a_folder_that_is_not_a_dataset_is_not_replaced(pool, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(DartError, match="save_to_disk did not write"):
        export([pool], mine)
    assert (mine / "notes.txt").read_text() == "keep"


# ---- the command line --------------------------------------------------------------------


def test_cli_prints_the_report_and_what_it_wrote(pool, tmp_path):
    out = tmp_path / "train.jsonl"
    result = CliRunner().invoke(
        main, ["export", str(pool), "-o", str(out), "--format", "messages", "--dedup", "exact"]
    )
    assert result.exit_code == 0, result.output
    assert "records                   4   from 2 of 3 queries" in result.output
    assert f"wrote {out}\n" in result.output
    assert "messages" in read_jsonl(out)[0]


def test_cli_errors_exit_2_and_say_nothing_was_written(tmp_path):
    ungraded = {k: v for k, v in line("a", 0, True).items() if k != "correct"}
    pool = write_jsonl(tmp_path / "pool.jsonl", [ungraded])
    result = CliRunner().invoke(main, ["export", str(pool), "-o", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 2
    assert "dart export: error: " in result.output
    assert "pool.jsonl:1: field 'correct'" in result.output
    assert "Nothing was written." in result.output
    result = CliRunner().invoke(
        main,
        ["export", str(pool), "-o", "t.jsonl", "--min-pass-rate", "0.8", "--max-pass-rate", "0.2"],
    )
    assert result.exit_code == 2 and "0 <= min <= max <= 1" in result.output
    result = CliRunner().invoke(
        main, ["export", str(pool), "-o", "t", "--format", "messages", "--layout", "query-response"]
    )
    assert result.exit_code == 2 and "disagree" in result.output
