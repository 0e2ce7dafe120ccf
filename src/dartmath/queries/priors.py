"""The difficulty priors of a Prop2Diff run: read pass-rate tables and match them to the run's
queries.

A prior is our `query_info.jsonl` or a published DART-Math query-info dataset
(`hkust-nlp/dart-math-pool-math-query-info`, `hkust-nlp/dart-math-pool-gsm8k-query-info`), in
any format `load_queries` reads. Each row needs `query_id` (string or integer) and `pass_rate`
(a number in [0, 1]); a row may also carry its `query` text (ours do, the published ones do
not), which lets it find a run query whose id differs. Other fields are ignored.

Reading (`read_prior_rows`) checks every row of every prior and reports all problems together,
each with its file and line (or row) and field; a `query_id` given twice, in one prior or in
two, is one of them. Matching (`match_prior`) is pure: it gives each run query the pass rate of
its prior row, found by id or by text as `prior_match` says, and reports what matched and what
did not (`PriorMatch`).

Texts are compared in `match_text` form: Unicode NFC, whitespace runs collapsed to one space,
ends stripped (the normalisation of `derive_query_id`, plus NFC, which only merges different
encodings of the same characters). Nothing else is folded: case, NFKC compatibility forms
(`x²` is not `x2`) and spaces inside a line (`1 2` is not `12`) can change a problem's meaning.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dartmath.errors import InputError
from dartmath.io.jsonl import json_type
from dartmath.queries.load import Query
from dartmath.queries.problems import Problem, Problems
from dartmath.queries.sources import iter_source

# How a run query finds its prior row: `auto` by id where the prior has the id, else by text.
PRIOR_MATCH = ("auto", "query_id", "query")
_WS = re.compile(r"\s+")
_SHOWN = 60  # characters of a query text shown in an example


@dataclass(frozen=True)
class PriorRow:
    """One row of a prior: where it is, its id, its pass rate, if it has one its query text in
    `match_text` form and, if it has them and they agree with its pass rate, the counts behind
    it (`tot_n_corrects` of `tot_n_samples`: how well the pass rate is known)."""

    location: str
    query_id: str
    pass_rate: float
    text: str | None = None
    counts: tuple[int, int] | None = None  # (correct, samples)


def match_text(query: str) -> str:
    """A query text in the form texts are compared in: NFC, whitespace runs collapsed to one
    space, ends stripped."""
    return _WS.sub(" ", unicodedata.normalize("NFC", query)).strip()


def read_prior_rows(sources: Sequence[str | os.PathLike]) -> list[PriorRow]:
    """Every row of every prior in `sources`, checked; raise QueryInputError listing all the
    problems found (a `query_id` given twice names both places), or InputError for a source
    that cannot be read at all."""
    problems = Problems()
    seen: dict[str, str] = {}
    rows = [row for src in sources for row in _read(str(src), problems, seen)]
    problems.raise_if_any(", ".join(str(s) for s in sources))
    return rows


def load_prior(
    sources: Sequence[str | os.PathLike], queries: Sequence[Query], mode: str = "auto"
) -> PriorMatch:
    """Read the priors in `sources` and match them to `queries` (see `match_prior`)."""
    return match_prior(queries, read_prior_rows(sources), mode)


def _read(src: str, problems: Problems, seen: dict[str, str]) -> list[PriorRow]:
    """The good rows of one prior (a hub dataset: its default config, split `train`);
    problems recorded, `seen` (id -> location) updated."""
    rows: list[PriorRow] = []
    n = 0
    for loc, rec, _ in iter_source(src, None, None):
        n += 1
        if isinstance(rec, Problem):
            problems.add(rec.location, rec.field, rec.message)
            continue
        before = problems.total
        qid = _query_id(loc, rec, problems)
        rate = _pass_rate(loc, rec, problems)
        text = _text(loc, rec, problems)
        if problems.total > before or qid is None or rate is None:
            continue
        first = seen.setdefault(qid, loc)
        if first != loc:
            problems.add(loc, "query_id", f"duplicate query_id '{qid}' (also at {first})")
            continue
        rows.append(PriorRow(loc, qid, rate, text, _counts(rec, rate)))
    if n == 0:
        raise InputError(src, None, "no records found")
    return rows


def _typed(
    loc: str, rec: dict[str, Any], name: str, types: tuple[type, ...], want: str, problems: Problems
) -> Any:
    """`rec[name]` if it is one of `types` (a boolean never is); else None, problem recorded."""
    if name not in rec:
        problems.add(loc, name, "missing")
        return None
    val = rec[name]
    if isinstance(val, bool) or not isinstance(val, types):
        problems.add(loc, name, f"expected {want}, got {json_type(val)}")
        return None
    return val


def _query_id(loc: str, rec: dict[str, Any], problems: Problems) -> str | None:
    val = _typed(loc, rec, "query_id", (str, int), "a string or an integer", problems)
    if val is None:
        return None
    qid = str(val).strip()
    if not qid:
        problems.add(loc, "query_id", "empty")
        return None
    return qid


def _pass_rate(loc: str, rec: dict[str, Any], problems: Problems) -> float | None:
    val = _typed(loc, rec, "pass_rate", (int, float), "a number", problems)
    if val is None:
        return None
    if not (math.isfinite(val) and 0.0 <= val <= 1.0):
        problems.add(loc, "pass_rate", f"expected a number in [0, 1], got {val!r}")
        return None
    return float(val)


def _counts(rec: dict[str, Any], rate: float) -> tuple[int, int] | None:
    """(tot_n_corrects, tot_n_samples) when both are counts that give `rate`; else None: the
    rate is then taken as exact (a prior of bare rates, or counts that do not match)."""
    c, n = rec.get("tot_n_corrects"), rec.get("tot_n_samples")
    for v in (c, n):
        if isinstance(v, bool) or not isinstance(v, int):
            return None
    if not 0 <= c <= n or n == 0 or abs(c / n - rate) > 1e-9:
        return None
    return c, n


def _text(loc: str, rec: dict[str, Any], problems: Problems) -> str | None:
    """The row's `query` in `match_text` form; None when it has none (absent, or null as in a
    table whose other rows have one) or after recording a problem."""
    val = rec.get("query")
    if val is None:
        return None
    if not isinstance(val, str):
        problems.add(loc, "query", f"expected a string, got {json_type(val)}")
        return None
    text = match_text(val)
    if not text:
        problems.add(loc, "query", "empty")
    return text or None


@dataclass
class PriorMatch:
    """The pass rates a prior gives a run's queries (`pass_rates`, keyed by the run's
    `query_id`), how each was found, and one example of each kind of mismatch."""

    mode: str
    n_queries: int
    prior_rows: int
    pass_rates: dict[str, float] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # where the row has them
    by_id: int = 0
    by_text: int = 0
    unused_rows: int = 0
    no_text: int = 0  # unused rows without query text, so matchable by id only
    ambiguous: int = 0  # queries whose text is that of rows with different pass rates
    text_differs: int = 0  # id matches whose row holds another text
    examples: dict[str, str] = field(default_factory=dict)  # kind -> the first example

    @property
    def unmatched(self) -> int:
        """Run queries the prior gives no pass rate."""
        return self.n_queries - len(self.pass_rates)

    def _example(self, kind: str, text: str) -> None:
        self.examples.setdefault(kind, text)

    def report(self, fallback: str = "") -> str:
        """What matched and what did not, one example of each mismatch; `fallback` says what
        happens to the queries with no match (e.g. "probed with n_probe=8 samples")."""
        no_match = f"{self.unmatched:,} with no match" + (f" ({fallback})" if fallback else "")
        lines = [
            f"difficulty prior (prior_match {self.mode}): "
            f"{_count(self.n_queries, 'query', 'queries')}: {self.by_id:,} matched by query_id, "
            f"{self.by_text:,} by query text, {no_match}; "
            f"{self.unused_rows:,} of {_count(self.prior_rows, 'prior row', 'prior rows')} unused"
        ]
        if self.unmatched:
            lines.append(f"  no match, e.g. {self.examples['unmatched']}")
        if self.no_text:
            rows = _count(self.no_text, "unused prior row has", "unused prior rows have")
            lines.append(
                f"  {rows} no `query` text, so can match by query_id only, "
                f"e.g. {self.examples['no_text']}"
            )
        if self.ambiguous:
            queries = _count(self.ambiguous, "query has", "queries have")
            lines.append(
                f"  {queries} the text of prior rows with different pass rates (not used), "
                f"e.g. {self.examples['ambiguous']}"
            )
        if self.text_differs:
            matches = _count(self.text_differs, "query_id match holds", "query_id matches hold")
            what = "kept" if self.mode == "query_id" else "not used; matched by text if it can be"
            lines.append(
                f"  {matches} another query text in the prior ({what}), "
                f"e.g. {self.examples['text_differs']}"
            )
        return "\n".join(lines)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _shown(text: str) -> str:
    text = match_text(text)
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def match_prior(
    queries: Sequence[Query], rows: Sequence[PriorRow], mode: str = "auto"
) -> PriorMatch:
    """Give each query the pass rate of its prior row.

    `query_id`: the row with the query's id. `query`: the rows with its text (`match_text`).
    `auto`: by id where a row has the query's id, else by text. Several rows with the query's
    text and one pass rate match; with different pass rates they do not (the query has no
    match). A row found by id whose text is another query's is kept under `query_id` (the
    user trusts the ids); under `auto` it is not used, since the text is what gets sampled, and
    the query is matched by text if it can be. `rows` must have distinct ids (as
    `read_prior_rows` gives them).
    """
    if mode not in PRIOR_MATCH:
        raise ValueError(f"prior_match must be one of {', '.join(PRIOR_MATCH)}, got {mode!r}")
    by_id: dict[str, int] = {}
    for i, row in enumerate(rows):
        first = by_id.setdefault(row.query_id, i)
        if first != i:
            raise ValueError(
                f"duplicate query_id {row.query_id!r} at {rows[first].location} and {row.location}"
            )
    by_text: dict[str, list[int]] = {}
    if mode != "query_id":
        for i, row in enumerate(rows):
            if row.text is not None:
                by_text.setdefault(row.text, []).append(i)
    m = PriorMatch(mode, len(queries), len(rows))
    used: set[int] = set()
    for q in queries:
        text = match_text(q.query)
        i = by_id.get(q.query_id) if mode != "query" else None
        if i is not None:
            row = rows[i]
            if row.text is not None and row.text != text:
                m.text_differs += 1
                m._example(
                    "text_differs",
                    f"query '{q.query_id}' {_shown(text)}, prior {row.location} {_shown(row.text)}",
                )
            if mode == "query_id" or row.text in (None, text):
                m.pass_rates[q.query_id] = row.pass_rate
                if row.counts is not None:
                    m.counts[q.query_id] = row.counts
                m.by_id += 1
                used.add(i)
                continue
        hits = by_text.get(text, [])
        rates = {rows[j].pass_rate for j in hits}
        if len(rates) == 1:
            m.pass_rates[q.query_id] = rates.pop()
            counted = [rows[j].counts for j in hits if rows[j].counts is not None]
            if counted:  # rows of one text and one rate: their counts pooled
                m.counts[q.query_id] = (sum(c for c, _ in counted), sum(n for _, n in counted))
            m.by_text += 1
            used.update(hits)
            continue
        if len(rates) > 1:
            m.ambiguous += 1
            a = rows[hits[0]]
            b = next(rows[j] for j in hits if rows[j].pass_rate != a.pass_rate)
            found = f"{a.location} ({a.pass_rate:g}), {b.location} ({b.pass_rate:g})"
            more = f" and {len(hits) - 2} more" if len(hits) > 2 else ""
            m._example("ambiguous", f"query '{q.query_id}' {_shown(text)}: {found}{more}")
        m._example("unmatched", f"query '{q.query_id}' {_shown(text)}")
    m.unused_rows = len(rows) - len(used)
    if mode != "query_id":
        idle = [rows[i] for i in range(len(rows)) if i not in used and rows[i].text is None]
        m.no_text = len(idle)
        if idle:
            m._example("no_text", f"{idle[0].location} (query_id '{idle[0].query_id}')")
    return m
