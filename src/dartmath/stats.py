"""`dart stats`: per-query raw/correct counts and pass rates of a graded pool, a whole-pool
summary, and the table and JSON it prints. The rows are query-info rows (`dartmath.record`),
always recomputed from the pool itself.

A pool of several sources (the `source` of its lines) is also summed up per source. A run
directory's `query_info.jsonl` adds what the pool cannot say: each query's `target` and
`stop_reason`, and so how many queries a cap (`max_raw`, `budget`) cut short and how far from
their targets (`short_by`, recomputed from the pool's counts). A missing or unusable
query-info file leaves those figures out, with a note.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dartmath.errors import DartError, InputError
from dartmath.io.jsonl import iter_jsonl
from dartmath.record import SOURCE, query_id_of, query_info_from_jsonl, short_by, with_source
from dartmath.synth.store import CONFIG, QUERY_INFO, read_run_config
from dartmath.synth.strategies import STOP_BUDGET, STOP_MAX_RAW, counts_correct

# The stop reasons of a cap: the query stopped before its target.
CAPS = (STOP_MAX_RAW, STOP_BUDGET)

QUANTILES = (
    ("min", 0.0),
    ("p10", 0.10),
    ("p25", 0.25),
    ("median", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("max", 1.0),
)


def quantile(sorted_vals: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly between neighbours."""
    if not sorted_vals:
        raise ValueError("quantile of no values")
    pos = q * (len(sorted_vals) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (pos - lo) * (sorted_vals[hi] - sorted_vals[lo])


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Whole-pool counts and the distribution of per-query pass rates."""
    rates = sorted(r["pass_rate"] for r in rows)
    return {
        **source_counts(rows),
        "unsolved_queries": sum(1 for r in rows if r["tot_n_corrects"] == 0),
        "all_correct_queries": sum(1 for r in rows if r["tot_n_corrects"] == r["tot_n_samples"]),
        "no_answer_responses": sum(r["n_no_answer"] for r in rows),
        "grade_errors": sum(r["n_grade_errors"] for r in rows),
        "query_pass_rate": {
            **{name: (quantile(rates, q) if rates else None) for name, q in QUANTILES},
            "mean": sum(rates) / len(rates) if rates else None,
        },
    }


def by_source(rows: Sequence[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """Rows grouped by their `source` (None for rows without one), in first-seen order."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get(SOURCE), []).append(r)
    return groups


def source_counts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Queries, responses, correct responses and overall pass rate of some rows."""
    responses = sum(r["tot_n_samples"] for r in rows)
    correct = sum(r["tot_n_corrects"] for r in rows)
    return {
        "queries": len(rows),
        "responses": responses,
        "correct": correct,
        "pass_rate": correct / responses if responses else None,
    }


def cut_short(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per cap (`max_raw`, `budget`), the queries it stopped (`stop_reason`) and how far they
    are from their targets: `short_by` summed and its max (queries whose target was never
    known count as queries only)."""
    gaps: dict[str, list[int | None]] = {reason: [] for reason in CAPS}
    for r in rows:
        if r.get("stop_reason") in gaps:
            gaps[r["stop_reason"]].append(r.get("short_by"))
    out = {}
    for reason, values in gaps.items():
        known = [v for v in values if v is not None]
        out[reason] = {
            "queries": len(values),
            "short_by": sum(known),
            "max_short_by": max(known, default=0),
        }
    return out


def format_cut_short(caps: Mapping[str, Mapping[str, int]]) -> str:
    """`3 queries (max_raw 2, budget 1), 7 responses short of targets (max 3)`, or `none`."""
    n = sum(c["queries"] for c in caps.values())
    if n == 0:
        return "none"
    parts = ", ".join(f"{reason} {c['queries']}" for reason, c in caps.items())
    missing = sum(c["short_by"] for c in caps.values())
    worst = max(c["max_short_by"] for c in caps.values())
    noun = "query" if n == 1 else "queries"
    return f"{n} {noun} ({parts}), {missing} responses short of targets (max {worst})"


def hardest_first(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by ascending pass rate; among equals, the ones with more samples first."""
    return sorted(rows, key=lambda r: (r["pass_rate"], -r["tot_n_samples"]))


def _fmt_rate(val: float | None) -> str:
    return "-" if val is None else f"{val:.3f}"


def _one_line(text: Any, width: int) -> str:
    """Whitespace collapsed to single spaces, cut to `width` characters."""
    text = " ".join(str(text if text is not None else "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Report:
    """Query-info rows of one pool and their summary, ready to print or serialise."""

    queries: list[dict[str, Any]]
    summary: dict[str, Any]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_rows(
        cls,
        rows: list[dict[str, Any]],
        source: str = "",
        run_rows: list[dict[str, Any]] | None = None,
        notes: Sequence[str] = (),
    ) -> Report:
        """Build a report (summary included) from query-info rows. `run_rows`, a run
        directory's rows of every query (`stop_reason`, `short_by`, `source`), add the queries
        cut short by a cap (`cut_short`). With more than one source the summary has
        `by_source`: one entry per source (None: rows without one), in first-seen order."""
        summary = summarize(rows)
        pool_groups = by_source(rows)
        run_groups = by_source(run_rows or [])
        if run_rows is not None:
            summary["cut_short"] = cut_short(run_rows)
        names = list(dict.fromkeys([*pool_groups, *run_groups]))
        if len(names) > 1:
            summary["by_source"] = []
            for name in names:
                entry = {SOURCE: name, **source_counts(pool_groups.get(name, []))}
                if run_rows is not None:
                    entry["cut_short"] = cut_short(run_groups.get(name, []))
                summary["by_source"].append(entry)
        return cls(queries=rows, summary=summary, source=source, notes=list(notes))

    def to_json(self) -> str:
        """The summary, notes and every per-query row, as one JSON document."""
        doc = {"source": self.source, "summary": self.summary, "queries": self.queries}
        if self.notes:
            doc["notes"] = self.notes
        return json.dumps(doc, indent=2, ensure_ascii=False)

    def format(self, top: int = 20) -> str:
        """A summary block, then the `top` hardest queries (0 = all) as a table."""
        return "\n".join([*self._summary_lines(), "", *self._table_lines(top)])

    def _summary_lines(self) -> list[str]:
        s = self.summary
        overall = "-" if s["pass_rate"] is None else f"{100 * s['pass_rate']:.1f}%"
        qpr = s["query_pass_rate"]
        return [
            f"pool: {self.source}" if self.source else "pool:",
            f"  queries              {s['queries']:>8}",
            f"  responses            {s['responses']:>8}",
            f"  correct              {s['correct']:>8}   overall pass rate {overall}",
            f"  unsolved queries     {s['unsolved_queries']:>8}   (no correct response)",
            f"  all-correct queries  {s['all_correct_queries']:>8}",
            f"  no-answer responses  {s['no_answer_responses']:>8}",
            f"  grade errors         {s['grade_errors']:>8}",
            "  per-query pass rate  "
            + "  ".join(f"{name} {_fmt_rate(qpr[name])}" for name, _ in QUANTILES[:4]),
            "                       "
            + "  ".join(f"{name} {_fmt_rate(qpr[name])}" for name, _ in QUANTILES[4:])
            + f"  mean {_fmt_rate(qpr['mean'])}",
            *(
                [f"  cut short by a cap   {format_cut_short(s['cut_short'])}"]
                if "cut_short" in s
                else []
            ),
            *self._source_lines(),
            *(f"  note: {note}" for note in self.notes),
        ]

    def _source_lines(self) -> list[str]:
        """The per-source table, when the pool has more than one source."""
        entries = self.summary.get("by_source")
        if not entries:
            return []
        names = [_one_line(e[SOURCE] if e[SOURCE] is not None else "-", 30) for e in entries]
        w = max(len("source"), *(len(n) for n in names))
        caps = "cut_short" in entries[0]
        head = (
            f"  {'source':<{w}}  {'queries':>8}  {'responses':>9}  {'correct':>8}  {'pass rate':>9}"
        )
        if caps:
            head += "".join(f"  {reason:>8}" for reason in CAPS) + f"  {'short by':>8}"
        lines = ["", "by source:", head]
        for name, e in zip(names, entries, strict=True):
            line = (
                f"  {name:<{w}}  {e['queries']:>8}  {e['responses']:>9}  {e['correct']:>8}  "
                f"{_fmt_rate(e['pass_rate']):>9}"
            )
            if caps:
                c = e["cut_short"]
                line += "".join(f"  {c[reason]['queries']:>8}" for reason in CAPS)
                line += f"  {sum(x['short_by'] for x in c.values()):>8}"
            lines.append(line)
        return lines

    def _table_lines(self, top: int) -> list[str]:
        if not self.queries:
            return ["no queries"]
        rows = hardest_first(self.queries)
        shown = rows if top == 0 else rows[:top]
        ids = [_one_line(r["query_id"] if r["query_id"] is not None else "-", 24) for r in shown]
        w = max(len("query_id"), *(len(i) for i in ids))
        lines = [
            f"queries, hardest first ({len(shown)} of {len(rows)}):",
            f"  {'query_id':<{w}}  {'raw':>6}  {'correct':>7}  {'pass rate':>9}  query",
        ]
        for qid, r in zip(ids, shown, strict=True):
            lines.append(
                f"  {qid:<{w}}  {r['tot_n_samples']:>6}  {r['tot_n_corrects']:>7}  "
                f"{r['pass_rate']:>9.3f}  {_one_line(r['query'], 60)}"
            )
        if len(rows) > len(shown):
            lines.append(f"  ... {len(rows) - len(shown)} more not shown")
        return lines


def pool_path(path: str | os.PathLike) -> Path:
    """The pool file named by `path`: the file itself, or `pool.jsonl` in a run directory."""
    path = Path(path)
    if path.is_dir():
        pool = path / "pool.jsonl"
        if not pool.is_file():
            raise InputError(
                path,
                None,
                "a directory with no pool.jsonl (expected a run directory or a pool JSONL file)",
            )
        return pool
    if not path.is_file():
        raise InputError(path, None, "no such pool file or run directory")
    return path


def load_report(path: str | os.PathLike) -> Report:
    """Report on a pool file or run directory, its counts always recomputed from the pool.

    In a run directory, `query_info.jsonl` gives each query's `target` and `stop_reason` (and
    the config's strategy whether targets count correct responses or raw samples); `short_by`
    is recomputed from the pool's counts, since the query-info file may be stale after a
    crash. The pool's rows get `target`, `stop_reason` and `short_by`, and the run's `source`.
    """
    pool = pool_path(path)
    rows = query_info_from_jsonl(pool)
    if not Path(path).is_dir():
        return Report.from_rows(rows, source=str(pool))
    notes: list[str] = []
    run_rows = _run_rows(Path(path), rows, notes)
    return Report.from_rows(rows, str(pool), run_rows, notes)


def _run_rows(
    run_dir: Path, rows: list[dict[str, Any]], notes: list[str]
) -> list[dict[str, Any]] | None:
    """Every query of the run: its query-info row's `query_id`, `source`, `target` and
    `stop_reason`, with the pool's counts and `short_by`; the pool's `rows` get the same run
    fields. None, with a note, when `query_info.jsonl` or `config.yaml` cannot be used."""
    info_path = run_dir / QUERY_INFO
    if not info_path.is_file():
        notes.append(f"no {info_path}: queries cut short by a cap are not known")
        return None
    try:
        correct_targets = _counts_correct(run_dir / CONFIG)
        info = [_run_fields(rec, info_path, lineno) for lineno, rec in iter_jsonl(info_path)]
    except DartError as e:
        notes.append(f"{e}: queries cut short by a cap are not known")
        return None
    pool = {str(r["query_id"]): i for i, r in enumerate(rows) if r["query_id"] is not None}
    run_rows, stale = [], 0
    for qid, fields, recorded in info:
        i = pool.get(qid)
        counts = rows[i] if i is not None else {"tot_n_samples": 0, "tot_n_corrects": 0}
        stale += recorded is not None and recorded != counts["tot_n_samples"]
        row = {"query_id": qid, **fields, "tot_n_samples": counts["tot_n_samples"]}
        row["tot_n_corrects"] = counts["tot_n_corrects"]
        row["short_by"] = short_by(fields["target"], row, correct_targets)
        if row[SOURCE] is None and i is not None:
            row[SOURCE] = rows[i].get(SOURCE)
        run_rows.append(row)
        if i is not None:
            if row[SOURCE] is not None:
                rows[i] = with_source(rows[i], row[SOURCE])
            rows[i].update((k, row[k]) for k in ("target", "stop_reason", "short_by"))
    if stale:
        notes.append(
            f"{info_path} is older than the pool for {stale} queries (a session was killed or "
            "is running): their stop reasons are as of its last checkpoint"
        )
    missing = len(pool.keys() - {qid for qid, _, _ in info})
    if missing:
        notes.append(f"{missing} queries of the pool are not in {info_path}")
    return run_rows


def _run_fields(
    rec: dict[str, Any], path: Path, lineno: int
) -> tuple[str, dict[str, Any], int | None]:
    """(query_id, {source, target, stop_reason}, tot_n_samples as recorded) of a query-info
    row; InputError naming the line and field when one is unusable."""
    qid = query_id_of(rec, path, lineno)
    target = rec.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise InputError(path, lineno, f"expected an integer or null, got {target!r}", "target")
    reason = rec.get("stop_reason")
    if reason is not None and not isinstance(reason, str):
        raise InputError(path, lineno, f"expected a string or null, got {reason!r}", "stop_reason")
    source = rec.get(SOURCE)
    if source is not None and not isinstance(source, str):
        raise InputError(path, lineno, f"expected a string or null, got {source!r}", SOURCE)
    recorded = rec.get("tot_n_samples")
    fields = {SOURCE: source, "target": target, "stop_reason": reason}
    return qid, fields, recorded if isinstance(recorded, int) else None


def _counts_correct(config_path: Path) -> bool:
    """Whether the run's targets count correct responses (every strategy but vrt), from its
    `config.yaml`; InputError when that cannot be read."""
    cfg = read_run_config(config_path)
    if cfg is None:
        raise InputError(config_path, None, "no such file")
    strategy = cfg.get("strategy")
    if not isinstance(strategy, dict) or not isinstance(strategy.get("name"), str):
        raise InputError(config_path, None, "no strategy name", "strategy.name")
    return counts_correct(strategy["name"])
