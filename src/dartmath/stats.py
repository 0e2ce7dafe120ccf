"""Per-query raw/correct counts and pass rates of a graded pool, and a whole-pool summary.

A query-info row has the names of the published DART-Math query-info datasets
(`hkust-nlp/dart-math-pool-math-query-info`, `hkust-nlp/dart-math-pool-gsm8k-query-info`:
`query_id`, `tot_n_samples`, `tot_n_corrects`, `pass_rate`, `pass_rate_bernoulli_std`), so that
one of those files can serve as the difficulty prior of a Prop2Diff run and ours can be compared
with theirs. We add `query` and `gt_ans` (theirs key queries by `query_id` only), the query's
metadata, and two counts of our own: `n_no_answer` and `n_grade_errors`.

`pass_rate_bernoulli_std`: the dataset cards list the column but do not define it. We store the
standard error of the pass rate, `sqrt(p * (1 - p) / n)` with `p = tot_n_corrects / tot_n_samples`
and `n = tot_n_samples`: the standard deviation of the mean of `n` Bernoulli(p) trials, which is
what says how well `n` samples pin down a query's difficulty. It is 0 when `p` is 0 or 1.

Counting streams: memory grows with the number of queries, never with the number of responses,
because `dart grade` runs this over pools of millions of lines.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dartmath.io.jsonl import InputError, iter_jsonl, json_type, write_jsonl

# Fields that describe one response, not its query: never copied into a query-info row.
PER_RESPONSE_FIELDS = frozenset(
    {
        "sample_idx",
        "resp",
        "ans",
        "correct",
        "grade_error",
        "finish_reason",
        "n_tokens",
        "model",
        "prompt_template",
        "prompt",
        "seed",
        "temperature",
        "top_p",
        "cum_logprob",
    }
)
HEAD_FIELDS = ("query_id", "query", "gt_ans")
COUNT_FIELDS = (
    "tot_n_samples",
    "tot_n_corrects",
    "pass_rate",
    "pass_rate_bernoulli_std",
    "n_no_answer",
    "n_grade_errors",
)
_NOT_METADATA = PER_RESPONSE_FIELDS | set(HEAD_FIELDS) | set(COUNT_FIELDS)

QUANTILES = (
    ("min", 0.0),
    ("p10", 0.10),
    ("p25", 0.25),
    ("median", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("max", 1.0),
)


def pass_rate_std(n_correct: int, n_samples: int) -> float:
    """Standard error of a pass rate estimated from `n_samples` graded responses."""
    if n_samples <= 0:
        raise ValueError("n_samples must be positive")
    p = n_correct / n_samples
    return math.sqrt(p * (1.0 - p) / n_samples)


def _short(val: Any, width: int = 40) -> str:
    """A value's repr cut to `width` characters, for error messages."""
    text = repr(val)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(slots=True)
class _QueryCounts:
    """Running counts of one query plus the fields copied from its first record."""

    head: dict[str, Any]
    first_line: int | None
    n_samples: int = 0
    n_corrects: int = 0
    n_no_answer: int = 0
    n_grade_errors: int = 0

    def row(self) -> dict[str, Any]:
        """The query-info row: head fields and metadata, then the counts."""
        row = dict(self.head)
        row["tot_n_samples"] = self.n_samples
        row["tot_n_corrects"] = self.n_corrects
        row["pass_rate"] = self.n_corrects / self.n_samples
        row["pass_rate_bernoulli_std"] = pass_rate_std(self.n_corrects, self.n_samples)
        row["n_no_answer"] = self.n_no_answer
        row["n_grade_errors"] = self.n_grade_errors
        return row


class QueryAccumulator:
    """Group graded pool records by query as they stream past, keeping only counts.

    Records are grouped by `query_id`, or by the `query` text when a record has none, and the
    queries keep the order in which they were first seen. Every record needs a boolean
    `correct`. `ans: null` (or `grade_error: "no_answer"`) counts as a response without an
    answer; any other non-null `grade_error` (a timeout, a grader exception) counts as a
    grading error.
    """

    def __init__(self, source: str | os.PathLike = "<records>") -> None:
        self.source = str(source)
        self.n_records = 0
        self._queries: dict[tuple[str, Any], _QueryCounts] = {}

    def __len__(self) -> int:
        return len(self._queries)

    def add(self, rec: dict[str, Any], lineno: int | None = None) -> None:
        """Count one graded record; raise InputError (naming `lineno`) if it is unusable."""
        correct = self._correct(rec, lineno)
        key = self._key(rec, lineno)
        counts = self._queries.get(key)
        if counts is None:
            counts = _QueryCounts(head=self._head(rec), first_line=lineno)
            self._queries[key] = counts
        else:
            self._check_same_query(counts, rec, lineno)
        counts.n_samples += 1
        counts.n_corrects += correct
        grade_error = rec.get("grade_error")
        if ("ans" in rec and rec["ans"] is None) or grade_error == "no_answer":
            counts.n_no_answer += 1
        if grade_error is not None and grade_error != "no_answer":
            counts.n_grade_errors += 1
        self.n_records += 1

    def rows(self) -> list[dict[str, Any]]:
        """Query-info rows, one per query, in first-seen order."""
        return [counts.row() for counts in self._queries.values()]

    def _correct(self, rec: dict[str, Any], lineno: int | None) -> bool:
        if "correct" not in rec:
            raise InputError(
                self.source, lineno, "missing (grade the pool first: dart grade)", field="correct"
            )
        correct = rec["correct"]
        if not isinstance(correct, bool):
            raise InputError(
                self.source,
                lineno,
                f"expected true or false, got {json_type(correct)}",
                field="correct",
            )
        return correct

    def _key(self, rec: dict[str, Any], lineno: int | None) -> tuple[str, Any]:
        qid = rec.get("query_id")
        if qid is not None:
            if isinstance(qid, bool) or not isinstance(qid, str | int):
                raise InputError(
                    self.source,
                    lineno,
                    f"expected a string, got {json_type(qid)}",
                    field="query_id",
                )
            return ("id", qid)
        query = rec.get("query")
        if query is None:
            raise InputError(
                self.source, lineno, "missing, and no 'query' to group by instead", field="query_id"
            )
        if not isinstance(query, str):
            raise InputError(
                self.source, lineno, f"expected a string, got {json_type(query)}", field="query"
            )
        return ("query", query)

    @staticmethod
    def _head(rec: dict[str, Any]) -> dict[str, Any]:
        head = {name: rec.get(name) for name in HEAD_FIELDS}
        head.update((k, v) for k, v in rec.items() if k not in _NOT_METADATA)
        return head

    def _check_same_query(
        self, counts: _QueryCounts, rec: dict[str, Any], lineno: int | None
    ) -> None:
        """One query_id must mean one problem: a clash is a bug upstream, so say where."""
        for name in ("query", "gt_ans"):
            if name in rec and rec[name] != counts.head[name]:
                first = f"line {counts.first_line}" if counts.first_line else "its first record"
                raise InputError(
                    self.source,
                    lineno,
                    f"differs from {first} of the same query_id "
                    f"({_short(rec[name])} vs {_short(counts.head[name])})",
                    field=name,
                )


def query_info_from_records(
    records: Iterable[dict[str, Any]], source: str | os.PathLike = "<records>"
) -> list[dict[str, Any]]:
    """Query-info rows of in-memory records; errors name the record's 1-based position."""
    acc = QueryAccumulator(source)
    for i, rec in enumerate(records, start=1):
        acc.add(rec, i)
    return acc.rows()


def query_info_from_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Query-info rows of a graded pool JSONL file, read line by line."""
    acc = QueryAccumulator(path)
    for lineno, rec in iter_jsonl(path):
        acc.add(rec, lineno)
    return acc.rows()


def write_query_info(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write query-info rows as JSONL; return how many were written."""
    return write_jsonl(path, rows)


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
            raise FileNotFoundError(
                f"{path} is a directory but has no pool.jsonl "
                "(expected a run directory or a pool JSONL file)"
            )
        return pool
    if not path.is_file():
        raise FileNotFoundError(f"no such pool file or run directory: {path}")
    return path


def load_report(path: str | os.PathLike) -> Report:
    """Report on a pool file or run directory, always recomputed from the pool itself.

    A run directory's `query_info.jsonl` is ignored: `pool.jsonl` is the truth, and the
    query-info file may be stale after a crash.
    """
    pool = pool_path(path)
    return Report.from_rows(query_info_from_jsonl(pool), source=str(pool))


__all__ = [
    "COUNT_FIELDS",
    "HEAD_FIELDS",
    "PER_RESPONSE_FIELDS",
    "QueryAccumulator",
    "Report",
    "hardest_first",
    "load_report",
    "pass_rate_std",
    "pool_path",
    "query_info_from_jsonl",
    "query_info_from_records",
    "quantile",
    "summarize",
    "write_query_info",
]
