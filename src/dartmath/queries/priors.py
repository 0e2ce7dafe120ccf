"""Read the difficulty prior of a Prop2Diff run: a pass rate per `query_id`, from our
`query_info.jsonl` or a published DART-Math query-info dataset."""

from __future__ import annotations

import math
import os
from typing import Any

from dartmath.errors import InputError
from dartmath.io.jsonl import json_type
from dartmath.queries.problems import Problem, Problems
from dartmath.queries.sources import iter_source


def load_pass_rates(
    source: str | os.PathLike, *, config: str | None = None, split: str | None = None
) -> dict[str, float]:
    """Per-query pass rates keyed by `query_id`: the difficulty prior of a Prop2Diff run.

    Reads our `query_info.jsonl` or a published DART-Math query-info dataset (a file, a local
    copy, or its name) in any format `load_queries` reads. Each record needs `query_id` (string
    or integer) and `pass_rate` (a number in [0, 1]); other fields are ignored. All problems are
    reported together, as for queries.
    """
    src = str(source)
    problems = Problems()
    rates: dict[str, float] = {}
    where: dict[str, str] = {}
    n = 0
    for loc, rec, _ in iter_source(src, config, split):
        n += 1
        if isinstance(rec, Problem):
            problems.add(rec.location, rec.field, rec.message)
            continue
        qid = _pass_rate_id(loc, rec, problems)
        rate = _pass_rate(loc, rec, problems)
        if qid is None or rate is None:
            continue
        if qid in where:
            problems.add(loc, "query_id", f"duplicate query_id '{qid}' (also at {where[qid]})")
            continue
        where[qid] = loc
        rates[qid] = rate
    if n == 0:
        raise InputError(src, None, "no records found")
    problems.raise_if_any(src)
    return rates


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


def _pass_rate_id(loc: str, rec: dict[str, Any], problems: Problems) -> str | None:
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
