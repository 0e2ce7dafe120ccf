"""The pool record and the query-info row: their fields, how a pool line is built, how one is
checked, and how pool lines add up per query.

A pool line (one graded response) holds, in this order: `query_id`, `sample_idx`, `query`,
`gt_ans`, `source` (the name of the query's source in the run config; pools written before it
existed have none), the query's metadata, `resp`, `ans`, `correct`, `grade_error` (only when
there is one), `finish_reason`, `n_tokens`, then the run's own fields (`model`,
`prompt_template`). An input field called `source` (NuminaMath has one) is metadata kept as
`input_source`.

A query-info row has the names of the published DART-Math query-info datasets
(`hkust-nlp/dart-math-pool-math-query-info`, `hkust-nlp/dart-math-pool-gsm8k-query-info`:
`query_id`, `tot_n_samples`, `tot_n_corrects`, `pass_rate`, `pass_rate_bernoulli_std`), so that
one of those files can serve as the difficulty prior of a Prop2Diff run and ours can be compared
with theirs. We add `query` and `gt_ans` (theirs key queries by `query_id` only), the query's
`source` when the pool has it, metadata, two counts of our own (`n_no_answer`,
`n_grade_errors`) and, in a run directory, the query's `target`, `stop_reason` and `short_by`:
how many of what its target counts (correct responses; raw samples for vrt) it lacks, 0 once
met, None while its target is unknown.

`pass_rate_bernoulli_std`: the dataset cards list the column but do not define it. We store the
standard error of the pass rate, `sqrt(p * (1 - p) / n)` with `p = tot_n_corrects / tot_n_samples`
and `n = tot_n_samples`: the standard deviation of the mean of `n` Bernoulli(p) trials, which is
what says how well `n` samples pin down a query's difficulty. It is 0 when `p` is 0 or 1.

`query_id`: a string or an integer (other tools write integers; `dart synth` writes strings),
compared as a string. A record without one is grouped by its `query` text where that is
allowed (`dart stats`, `dart grade --query-info`).

Counting streams: memory grows with the number of queries, never with the number of responses,
because `dart grade` runs this over pools of millions of lines.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dartmath.errors import InputError
from dartmath.io.jsonl import iter_jsonl, json_type

if TYPE_CHECKING:
    from dartmath.grading.grade import Verdict
    from dartmath.queries import Query
    from dartmath.sampling.base import Completion

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
# The name of a query's source (right after the head fields), and where an input's own
# `source` field goes.
SOURCE = "source"
INPUT_SOURCE = "input_source"
COUNT_FIELDS = (
    "tot_n_samples",
    "tot_n_corrects",
    "pass_rate",
    "pass_rate_bernoulli_std",
    "n_no_answer",
    "n_grade_errors",
)
# What a run directory's query-info adds, and per-query columns of the published query-info.
RUN_FIELDS = ("target", "stop_reason", "short_by")
PUBLISHED_FIELDS = ("n_samples_list", "n_corrects_list")
# Never a query's metadata: what describes responses, counts or a run, and the source's name.
NOT_METADATA = (
    PER_RESPONSE_FIELDS
    | {*HEAD_FIELDS, SOURCE}
    | set(COUNT_FIELDS)
    | set(RUN_FIELDS)
    | set(PUBLISHED_FIELDS)
)


def pool_record(
    query: Query,
    sample_idx: int,
    completion: Completion,
    verdict: Verdict,
    run_fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The pool line of one graded response (field order as in the module docstring)."""
    rec: dict[str, Any] = {
        "query_id": query.query_id,
        "sample_idx": sample_idx,
        "query": query.query,
        "gt_ans": query.gt_ans,
    }
    if query.source is not None:
        rec[SOURCE] = query.source
    rec.update((k, v) for k, v in query.meta.items() if k not in NOT_METADATA)
    rec["resp"] = completion.text
    rec["ans"] = verdict.ans
    rec["correct"] = verdict.correct
    if verdict.error is not None:
        rec["grade_error"] = verdict.error
    rec["finish_reason"] = completion.finish_reason
    rec["n_tokens"] = completion.n_tokens
    rec.update(run_fields)
    return rec


# ---- checks: each names the file, line and field ----


def query_id_of(rec: Mapping[str, Any], path: str | os.PathLike, lineno: int | None) -> str:
    """The record's `query_id` as a string; InputError if it is missing or not an id."""
    if "query_id" not in rec or rec["query_id"] is None:
        raise InputError(path, lineno, "missing", field="query_id")
    return _id_text(rec["query_id"], path, lineno)


def _id_text(qid: Any, path: str | os.PathLike, lineno: int | None) -> str:
    if isinstance(qid, bool) or not isinstance(qid, str | int):
        raise InputError(
            path, lineno, f"expected a string or an integer, got {json_type(qid)}", "query_id"
        )
    return str(qid)


def correct_of(rec: Mapping[str, Any], path: str | os.PathLike, lineno: int | None) -> bool:
    """The record's verdict; InputError if it has none (an ungraded pool) or not a boolean."""
    if "correct" not in rec:
        raise InputError(path, lineno, "missing (grade the pool first: dart grade)", "correct")
    correct = rec["correct"]
    if not isinstance(correct, bool):
        raise InputError(
            path, lineno, f"expected true or false, got {json_type(correct)}", "correct"
        )
    return correct


def sample_idx_of(rec: Mapping[str, Any], path: str | os.PathLike, lineno: int | None) -> int:
    """The record's `sample_idx`; InputError if it is missing or not an integer."""
    idx = rec.get("sample_idx")
    if isinstance(idx, bool) or not isinstance(idx, int):
        raise InputError(path, lineno, "missing or not an integer", "sample_idx")
    return idx


def gradable(
    rec: Mapping[str, Any], path: str | os.PathLike, lineno: int | None
) -> tuple[str, str]:
    """The (gt_ans, resp) of a record to grade; InputError if either is missing or unusable."""
    if "gt_ans" not in rec:
        raise InputError(path, lineno, "missing", field="gt_ans")
    gt = rec["gt_ans"]
    if isinstance(gt, bool) or not isinstance(gt, str | int | float):
        raise InputError(path, lineno, f"expected a string, got {json_type(gt)}", "gt_ans")
    gt = str(gt)
    if not gt.strip():
        raise InputError(path, lineno, "empty reference answer", field="gt_ans")
    if "resp" not in rec:
        raise InputError(path, lineno, "missing", field="resp")
    if not isinstance(rec["resp"], str):
        raise InputError(path, lineno, f"expected a string, got {json_type(rec['resp'])}", "resp")
    return gt, rec["resp"]


# ---- query-info ----


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


def unsampled_row(query: Query) -> dict[str, Any]:
    """The query-info row of a query with no graded response yet."""
    row = query.record()
    row.update(tot_n_samples=0, tot_n_corrects=0, pass_rate=None, pass_rate_bernoulli_std=None)
    row.update(n_no_answer=0, n_grade_errors=0)
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
        self._queries: dict[tuple[str, str], _QueryCounts] = {}

    def __len__(self) -> int:
        return len(self._queries)

    def add(self, rec: dict[str, Any], lineno: int | None = None) -> None:
        """Count one graded record; raise InputError (naming `lineno`) if it is unusable."""
        correct = correct_of(rec, self.source, lineno)
        key = self._key(rec, lineno)
        counts = self._queries.get(key)
        if counts is None:
            counts = _QueryCounts(head=_head(rec), first_line=lineno)
            self._queries[key] = counts
        else:
            self._check_same_query(counts, rec, lineno)
            if SOURCE not in counts.head and rec.get(SOURCE) is not None:
                counts.head = with_source(counts.head, rec[SOURCE])  # older lines had none
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

    def run_row(
        self,
        query: Query,
        target: int | None,
        stop_reason: str | None,
        counts_correct: bool = True,
    ) -> dict[str, Any]:
        """The row of a run directory's query-info: the query's counts (zero when it has no
        response yet), its `source` as the run names it, its target, its stop reason and
        `short_by` (see the module docstring; `counts_correct` False for vrt targets)."""
        counts = self._queries.get(("id", query.query_id))
        if counts is None:
            row = unsampled_row(query)
        else:
            row = counts.row()
            if query.source is not None:  # also when pool lines predate `source`
                row = with_source(row, query.source)
        row["target"] = target
        row["stop_reason"] = stop_reason
        row["short_by"] = short_by(target, row, counts_correct)
        return row

    def _key(self, rec: dict[str, Any], lineno: int | None) -> tuple[str, str]:
        qid = rec.get("query_id")
        if qid is not None:
            return ("id", _id_text(qid, self.source, lineno))
        query = rec.get("query")
        if query is None:
            raise InputError(
                self.source, lineno, "missing, and no 'query' to group by instead", "query_id"
            )
        if not isinstance(query, str):
            raise InputError(
                self.source, lineno, f"expected a string, got {json_type(query)}", "query"
            )
        return ("query", query)

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


def short_by(target: int | None, row: Mapping[str, Any], counts_correct: bool = True) -> int | None:
    """How many correct responses (raw samples when not `counts_correct`) a query-info row
    lacks against `target`: 0 once met, None when the target is unknown."""
    if target is None:
        return None
    have = row["tot_n_corrects"] if counts_correct else row["tot_n_samples"]
    return max(0, target - have)


def with_source(row: Mapping[str, Any], source: str) -> dict[str, Any]:
    """`row` with `source` set, placed right after the head fields."""
    out = {name: row[name] for name in HEAD_FIELDS if name in row}
    out[SOURCE] = source
    out.update((k, v) for k, v in row.items() if k not in out)
    return out


def _head(rec: dict[str, Any]) -> dict[str, Any]:
    head = {name: rec.get(name) for name in HEAD_FIELDS}
    if rec.get(SOURCE) is not None:
        head[SOURCE] = rec[SOURCE]
    head.update((k, v) for k, v in rec.items() if k not in NOT_METADATA)
    return head


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
