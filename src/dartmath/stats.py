"""`dart stats`: per-query raw/correct counts and pass rates of a graded pool, a whole-pool
summary, and the table and JSON it prints. The rows are query-info rows (`dartmath.record`),
always recomputed from the pool itself.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dartmath.errors import InputError
from dartmath.record import query_info_from_jsonl

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
    responses = sum(r["tot_n_samples"] for r in rows)
    correct = sum(r["tot_n_corrects"] for r in rows)
    rates = sorted(r["pass_rate"] for r in rows)
    return {
        "queries": len(rows),
        "responses": responses,
        "correct": correct,
        "pass_rate": correct / responses if responses else None,
        "unsolved_queries": sum(1 for r in rows if r["tot_n_corrects"] == 0),
        "all_correct_queries": sum(1 for r in rows if r["tot_n_corrects"] == r["tot_n_samples"]),
        "no_answer_responses": sum(r["n_no_answer"] for r in rows),
        "grade_errors": sum(r["n_grade_errors"] for r in rows),
        "query_pass_rate": {
            **{name: (quantile(rates, q) if rates else None) for name, q in QUANTILES},
            "mean": sum(rates) / len(rates) if rates else None,
        },
    }


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

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], source: str = "") -> Report:
        """Build a report (summary included) from query-info rows."""
        return cls(queries=rows, summary=summarize(rows), source=source)

    def to_json(self) -> str:
        """The summary and every per-query row, as one JSON document."""
        doc = {"source": self.source, "summary": self.summary, "queries": self.queries}
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
        ]

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
    """Report on a pool file or run directory, always recomputed from the pool itself.

    A run directory's `query_info.jsonl` is ignored: `pool.jsonl` is the truth, and the
    query-info file may be stale after a crash.
    """
    pool = pool_path(path)
    return Report.from_rows(query_info_from_jsonl(pool), source=str(pool))
