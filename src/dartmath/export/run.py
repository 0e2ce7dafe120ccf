"""`dart export` as a library call: the training set of run directories and graded pools.

Two passes over the inputs: the first (`scan`) checks every line and tallies each query, the
selection (`select`) decides which lines are kept, and the second streams the inputs again and
writes the kept lines only. Memory grows with the number of queries and of correct responses
(24 bytes each, 8 more per kept one), never with the number of pool lines: incorrect lines cost
nothing kept. Records come out in the inputs' line order, inputs in the order given (a run
directory's pool holds each query's lines in sample order).

Everything that can be refused is refused before the first pass (format, output, card place,
template, inputs) or during it (bad lines, conflicting inputs); the outputs are written under
temporary names and renamed into place at the end, so nothing is ever half-written.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dartmath.errors import DartError
from dartmath.export.card import (
    CARD_NAME,
    card_text,
    check_card_place,
    figure_path,
    write_figure,
)
from dartmath.export.inputs import Input, check_agreement, check_distinct, open_input
from dartmath.export.layout import LAYOUTS, QUERY_RESPONSE, Layout, prompt_template
from dartmath.export.report import ExportReport
from dartmath.export.scan import Scan, local_key, scan
from dartmath.export.select import SelectOptions, select, split_place
from dartmath.export.writers import (
    DATASETS,
    Staging,
    check_output,
    format_of,
    require_extras,
    write_records,
)
from dartmath.io.jsonl import iter_jsonl_raw, parse_line

# The data files of a datasets folder, as the hub's `arrow` loader reads them.
ARROW_FILES = "data-*.arrow"


@dataclass(frozen=True)
class ExportOptions:
    """How to export: file format (None: from the output's name), record layout, selection,
    which inputs to accept, and where the card goes (`card` None: the default place)."""

    fmt: str | None = None
    layout: str = QUERY_RESPONSE
    with_meta: bool = False
    prompt_template: str | None = None
    select: SelectOptions = field(default_factory=SelectOptions)
    allow_mixed: bool = False
    allow_unfinished: bool = False
    card: str | os.PathLike | None = None
    write_card: bool = True

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")


def export_training_set(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
) -> ExportReport:
    """Write the training set of `inputs` (run directories or graded pool files) to `output`,
    with its dataset card unless told not to; return the report of what was kept and why the
    rest was left out. DartError (InputError naming file, line and field for a bad input) when
    something is refused: then nothing is written."""
    if not inputs:
        raise DartError("no input: give run directories or graded pool files")
    out = Path(output)
    fmt = format_of(output, options.fmt)
    template = prompt_template(options.prompt_template)
    check_output(out, fmt)
    require_extras(fmt)
    card = _card_place(out, fmt, options)
    opened = [open_input(path, options.allow_unfinished) for path in inputs]
    check_distinct(opened, out)
    found = scan(opened, options.select.dedup)
    check_agreement(opened, options.allow_mixed)
    report = ExportReport.start(
        str(output),
        fmt,
        options.layout,
        opened,
        found,
        with_meta=options.with_meta,
        prompt_template=options.prompt_template,
        options=options.select,
    )
    kept_lines, kept_counts = _select_all(found, len(opened), options.select, report)
    layout = Layout(options.layout, options.with_meta, template, found.meta_kinds)
    with Staging() as stage:
        data = stage.stage(out)
        scratch = stage.scratch(out) if fmt == DATASETS else None
        records = _records(opened, found, kept_lines, layout)
        written = write_records(fmt, records, layout.columns(), data, scratch)
        if written != report.records:
            raise DartError(
                f"the inputs changed while they were read ({written:,} records found of "
                f"{report.records:,} selected): export them again once nothing writes to them"
            )
        report.written = [str(out)]
        if card is not None:
            report.written += _write_card(report, found, kept_counts, out, fmt, card, data, stage)
        stage.commit()
    return report


def _select_all(
    found: Scan, n_inputs: int, opts: SelectOptions, report: ExportReport
) -> tuple[list[array], array]:
    """Select every query's responses (adding each to `report`): per input, the kept line
    numbers in order; per query, how many it keeps."""
    kept_lines: list[array] = [array("q") for _ in range(n_inputs)]
    kept_counts = array("q")
    for tally in found.queries:
        kept = select(tally.candidates, tally.n_samples, tally.target, opts)
        report.add_query(tally, kept)
        kept_counts.append(len(kept.places))
        for where in kept.places:
            index, lineno = split_place(where)
            kept_lines[index].append(lineno)
    return [array("q", sorted(lines)) for lines in kept_lines], kept_counts


def _card_place(out: Path, fmt: str, options: ExportOptions) -> Path | None:
    """Where the card goes: `options.card`, else inside a datasets folder or beside a file
    (where a README.md that `dart export` did not write is refused); None for no card."""
    if not options.write_card:
        return None
    if options.card is not None:
        card = Path(options.card)
        if card.is_dir():
            raise DartError(f"--card {card} is a folder: name the card's file")
        return card
    if fmt == DATASETS:
        return out / CARD_NAME
    card = out.parent / CARD_NAME
    check_card_place(card)
    return card


def _write_card(
    report: ExportReport,
    found: Scan,
    kept_counts: array,
    out: Path,
    fmt: str,
    card: Path,
    data: Path,
    stage: Staging,
) -> list[str]:
    """Write the card and its figure (into the staged datasets folder when they go inside the
    output); return their final paths."""
    figure = figure_path(card)
    if fmt == DATASETS and card.parent == out:
        card_tmp, figure_tmp, data_files = data / card.name, data / figure.name, ARROW_FILES
    else:
        card_tmp, figure_tmp = stage.stage(card), stage.stage(figure)
        data_files = os.path.relpath(out.resolve(), card.parent.resolve())
        if fmt == DATASETS:
            data_files = f"{data_files}/{ARROW_FILES}"
    rows = [
        _figure_row(tally.query_id, tally.n_samples, kept, tally.pass_rate)
        for tally, kept in zip(found.queries, kept_counts, strict=True)
    ]
    title = (
        f"{out.name}: {report.records:,} records from {report.with_records:,} "
        f"of {report.queries:,} queries"
    )
    write_figure(rows, figure_tmp, title)
    card_tmp.write_text(card_text(report, data_files, figure.name), encoding="utf-8")
    return [str(card), str(figure)]


def _figure_row(query_id: str | None, raw: int, kept: int, pass_rate: float) -> dict[str, Any]:
    """A stats row of one query for the figure: raw responses, kept as `tot_n_corrects`."""
    return {
        "query_id": query_id,
        "tot_n_samples": raw,
        "tot_n_corrects": kept,
        "pass_rate": pass_rate,
        "n_no_answer": 0,
        "n_grade_errors": 0,
    }


def _records(
    inputs: Sequence[Input], found: Scan, kept_lines: list[array], layout: Layout
) -> Iterator[dict[str, Any]]:
    """The second pass: the training record of every kept line, in line order."""
    for index, inp in enumerate(inputs):
        wanted = iter(kept_lines[index])
        want = next(wanted, None)
        if want is None:
            continue
        local = found.local[index]
        for lineno, raw in iter_jsonl_raw(inp.pool, inp.limit):
            if lineno < want:
                continue
            if lineno > want:
                break  # the line is gone: the count check reports it
            rec = parse_line(inp.pool, lineno, raw)
            qi = local.get(local_key(rec, inp.pool, lineno))
            if qi is None:
                break
            model = rec.get("model")
            model = model if isinstance(model, str) else inp.config_model
            yield layout.record(rec, found.queries[qi].pass_rate, model)
            want = next(wanted, None)
            if want is None:
                break
