"""The dataset card of an export: a `README.md` whose YAML front matter the Hugging Face hub
reads (data files, task, language, tags, size), a body with the export's figures, and the figure
of responses per query by difficulty, drawn by `dartmath.plot` as `dart stats --plot` draws it.

A card carries the `dartmath-export` tag: an existing `README.md` without it was not written by
`dart export` and is never replaced at the default place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from dartmath.errors import DartError
from dartmath.export.report import LEFT_OUT, ExportReport, Group

TAG = "dartmath-export"
CARD_NAME = "README.md"
_SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def size_category(n: int) -> str:
    """The hub's `size_categories` bucket of `n` records."""
    return next((label for bound, label in _SIZES if n < bound), "n>1B")


def figure_path(card: Path) -> Path:
    """Where the figure of a card goes: beside it, named after it (`README.png`)."""
    return card.with_suffix(".png")


def front_matter(path: Path) -> dict[str, Any] | None:
    """The YAML front matter of a markdown file, or None when it has none readable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---"):
        return None
    head, sep, _ = text[3:].partition("\n---")
    if not sep:
        return None
    try:
        meta = yaml.safe_load(head)
    except yaml.YAMLError:
        return None
    return meta if isinstance(meta, dict) else None


def check_card_place(card: Path) -> None:
    """DartError when `card` exists and `dart export` did not write it."""
    if not card.exists():
        return
    meta = front_matter(card) if card.is_file() else None
    tags = meta.get("tags") if meta else None
    if not isinstance(tags, list) or TAG not in tags:
        raise DartError(
            f"{card} exists and dart export did not write it: not replacing it. "
            "Put the card elsewhere with --card PATH, or write none with --no-card"
        )


def card_text(report: ExportReport, data_files: str, figure: str) -> str:
    """The card's markdown: front matter, then the export's figures (`data_files`: the data
    relative to the card; `figure`: the figure's file name)."""
    out = Path(report.output.rstrip("/" + os.sep))
    name = out.name if report.fmt == "datasets" else out.stem
    meta = {
        "pretty_name": name,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["math", "synthetic", "dart-math", TAG],
        "size_categories": [size_category(report.records)],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}
        ],
    }
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return "\n".join(["---", head.rstrip("\n"), "---", "", *_body(report, name, figure), ""])


def _body(report: ExportReport, name: str, figure: str) -> list[str]:
    fields = "`messages` (a user and an assistant turn)"
    if report.layout == "query-response":
        fields = "`query`, `response`"
    if report.with_meta:
        fields += "; with `query_id`, `source`, metadata, `sample_idx`, `pass_rate`, `model`"
    if report.prompt_template:
        fields += f"; the user turn rendered with the `{report.prompt_template}` prompt template"
    missing = report.queries - report.with_records
    lines = [
        f"# {name}",
        "",
        "Math instruction-tuning data made by Difficulty-Aware Rejection Sampling "
        "([DART-Math](https://arxiv.org/abs/2407.13690)), exported by dartmath's `dart export`: "
        "correct responses only, each graded against its query's reference answer.",
        "",
        f"![Responses per query, hardest first]({figure})",
        "",
        "Responses per query, hardest first (raw: every response of the inputs; kept: the "
        "records), and the queries' pass rates.",
        "",
        "## Sources",
        "",
        "| input | kind | lines | queries | strategy | targets | unfinished queries |",
        "|---|---|---:|---:|---|---|---:|",
        *(
            f"| `{i.name}` | {i.kind} | {i.lines:,} | {i.queries:,} | {i.strategy or 'unknown'} "
            f"| {i.targets or '-'} | {i.unfinished:,} |"
            for i in report.inputs
        ),
        "",
        f"- Model: {report.setting('model')}",
        f"- Prompt template: {report.setting('prompt template')}",
        f"- Selection: {report.selection()}",
        f"- Fields: {fields}",
        "",
        "## Contents",
        "",
        f"- Records: {report.records:,}, from {report.with_records:,} of {report.queries:,} "
        "queries",
        f"- Queries with no record: {missing:,} ({report.unsolved:,} with no correct response, "
        f"{report.filtered:,} outside the pass-rate range)",
        f"- Unfinished queries: {report.unfinished:,}",
        "",
        *_table("source", list(report.by_source.items())),
        *_table("level", report.levels()),
        "### Responses left out",
        "",
        "| reason | responses |",
        "|---|---:|",
        *(f"| {LEFT_OUT[k]} | {v:,} |" for k, v in report.left_out.items()),
        f"| **total** (of {report.lines:,}) | {sum(report.left_out.values()):,} |",
    ]
    notes = [f"`{i.name}`: {note}" for i in report.inputs for note in i.notes]
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    return lines


def _table(title: str, groups: Sequence[tuple[str, Group]]) -> list[str]:
    return [
        f"### Records per {title}",
        "",
        f"| {title} | queries | with records | records |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {g.queries:,} | {g.with_records:,} | {g.records:,} |" for n, g in groups),
        "",
    ]


def write_figure(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """The figure of per-query rows (`query_id`, `tot_n_samples`: raw responses,
    `tot_n_corrects`: kept, `pass_rate`: the query's), as `dart stats --plot` draws it."""
    from dartmath.plot import plot_report
    from dartmath.stats import Report

    plot_report(Report.from_rows(rows), path, title=title, correct_label="kept")
