"""Load the queries of a run: map each record's fields to ours, check every record, and give
each query an id.

Everything is checked before any sampling starts, and every problem found is reported at once
(up to `MAX_REPORTED`), each with its file and line (or row index) and field. No record is
ever dropped silently.

`query_id`: kept from the input when present (as a string). Otherwise a folder of MATH problem
files gives each problem its path (`MATH/train/algebra/1.json`), and any other query gets
`q-` + the first 16 hex digits of the SHA-256 of its text (whitespace runs collapsed, ends
stripped): the same text gets the same id in every run and any order, so a resumed run or a
prior file still matches.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dartmath.errors import InputError
from dartmath.io.jsonl import json_type
from dartmath.queries.presets import PRESETS, Preset, hint
from dartmath.queries.problems import Problem, Problems
from dartmath.queries.sources import iter_source
from dartmath.record import NOT_METADATA

OUR_NAMES = ("query", "gt_ans", "query_id")
# Fields of the default mapping that may stand in for ours when ours is absent, one at a time.
# `answer` is not one: GSM8K's `answer` is a whole solution, MATH-500's a short answer.
ALIASES: dict[str, tuple[str, ...]] = {
    "query": ("question", "problem"),
    "gt_ans": ("ref_ans",),
    "query_id": ("id", "unique_id"),
}
# Kept in Query.meta: other input fields holding a JSON scalar (strings up to this length).
MAX_META_STR = 200
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Query:
    """One problem to sample: stable id, text, reference answer and kept input metadata."""

    query_id: str
    query: str
    gt_ans: str
    meta: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The query as one flat JSON object (`query_id`, `query`, `gt_ans`, then metadata)."""
        return {"query_id": self.query_id, "query": self.query, "gt_ans": self.gt_ans, **self.meta}


def derive_query_id(query: str) -> str:
    """The id of a query that has none: `q-` + 16 hex digits of SHA-256 of its text, with
    whitespace runs collapsed and ends stripped; stable across runs and orderings."""
    return "q-" + hashlib.sha256(_normalised(query).encode("utf-8")).hexdigest()[:16]


def _normalised(query: str) -> str:
    return _WS.sub(" ", query).strip()


def load_queries(
    source: str | os.PathLike,
    *,
    preset: str | None = None,
    fields: Mapping[str, str] | None = None,
    config: str | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> list[Query]:
    """Load and check every query of `source`; raise QueryInputError listing all problems.

    `preset`: `math` (`problem`; reference = last box of `solution`; `level`, `domain` kept)
    or `gsm8k` (`question`; reference = after `####` in `answer`). `fields` maps our names
    (`query`, `gt_ans`, `query_id`) to input field names and overrides the preset's. Without
    either, the fields are `query`, `gt_ans`, `query_id`, or else one of their aliases
    (`question`/`problem`, `ref_ans`, `id`/`unique_id`). `limit` keeps the first N records
    (only those are read and checked). `config`/`split` apply to `datasets` sources.
    """
    src = str(source)
    explicit = dict(fields or {})
    unknown = sorted(set(explicit) - set(OUR_NAMES))
    if unknown:
        raise InputError(
            src,
            None,
            f"unknown name(s) in fields: {', '.join(unknown)} (ours: query, gt_ans, query_id)",
        )
    if preset is not None and preset not in PRESETS:
        raise InputError(src, None, f"unknown preset '{preset}' (presets: {', '.join(PRESETS)})")
    _check_limit(src, limit)
    checker = _Checker(explicit, PRESETS[preset] if preset else None)
    queries: list[Query] = []
    n = 0
    for loc, rec, implicit in iter_source(src, config, split):
        n += 1
        if isinstance(rec, Problem):
            checker.problems.add(rec.location, rec.field, rec.message)
        else:
            query = checker.query(loc, rec, implicit)
            if query is not None:
                queries.append(query)
        if limit is not None and n >= limit:
            break
    if n == 0:
        raise InputError(src, None, "no queries found")
    checker.problems.raise_if_any(src)
    return queries


def _check_limit(source: str, limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(source, None, f"limit must be a positive integer, got {limit!r}")


def _resolve(
    rec: dict[str, Any], ours: str, explicit: Mapping[str, str], preset: Preset | None
) -> tuple[str | None, str | None]:
    """(input field name for `ours`, ambiguity message): None when the record has none."""
    if ours in explicit:
        return explicit[ours], None
    if preset is not None and ours in preset.fields:
        return preset.fields[ours], None
    if ours in rec:
        return ours, None
    present = [a for a in ALIASES[ours] if a in rec]
    if len(present) > 1:
        names = " and ".join(f"'{a}'" for a in present)
        return None, f"missing, and {names} could both stand for it: say which with fields="
    return (present[0], None) if present else (None, None)


def _text(val: Any) -> str | None:
    """A string, or a number as a string; None for any other type."""
    if isinstance(val, str):
        return val
    if isinstance(val, int | float) and not isinstance(val, bool):
        return str(val)
    return None


def _small_scalar(v: Any) -> bool:
    """True for JSON scalars worth copying: null, booleans, finite numbers, short strings."""
    if v is None or isinstance(v, bool | int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, str) and len(v) <= MAX_META_STR


def _meta(rec: dict[str, Any], used: set[str], preset: Preset | None) -> dict[str, Any]:
    skip = used | (preset.consumed if preset else frozenset())
    meta = {
        k: v for k, v in rec.items() if k not in skip and k not in NOT_METADATA and _small_scalar(v)
    }
    if preset is not None:
        meta.update(preset.meta(rec))
    return meta


class _Checker:
    """Turns the records of one input into queries under one field mapping, recording every
    problem, and remembers the ids seen so far to catch duplicates."""

    def __init__(self, explicit: Mapping[str, str], preset: Preset | None) -> None:
        self.explicit = explicit
        self.preset = preset
        self.problems = Problems()
        self._seen: dict[str, tuple[str, str]] = {}  # id -> (location, normalised text if derived)

    def query(self, loc: str, rec: dict[str, Any], implicit: str | None) -> Query | None:
        """The record's query, or None after recording its problems (a duplicate is one)."""
        made = self._query(loc, rec, implicit)
        if made is None or not self._unique(loc, *made):
            return None
        return made[0]

    def _query(
        self, loc: str, rec: dict[str, Any], implicit: str | None
    ) -> tuple[Query, bool] | None:
        """(Query, whether its id came from the input), or None after recording its problems."""
        preset, problems = self.preset, self.problems
        before = problems.total
        used: set[str] = set()
        values: dict[str, str] = {}
        for ours in ("query", "gt_ans"):
            name, ambiguous = _resolve(rec, ours, self.explicit, preset)
            if name is None:
                problems.add(loc, ours, ambiguous or f"missing{hint(rec)}")
                continue
            used.add(name)
            if name not in rec:
                problems.add(loc, name, "missing")
                continue
            val = rec[name] if ours == "query" else _text(rec[name])
            if not isinstance(val, str):
                want = "a string" if ours == "query" else "a string or a number"
                problems.add(loc, name, f"expected {want}, got {json_type(rec[name])}")
                continue
            if not val.strip():
                problems.add(loc, name, "empty")
                continue
            if ours == "gt_ans" and preset is not None and name == preset.fields["gt_ans"]:
                ref = preset.reference(val)
                if ref is None:
                    problems.add(loc, name, preset.no_reference)
                    continue
                val = ref
            values[ours] = val

        qid, from_input = self._query_id(loc, rec, implicit, used)
        if problems.total > before:
            return None
        if qid is None:
            qid = derive_query_id(values["query"])
        meta = _meta(rec, used, preset)
        return Query(qid, values["query"], values["gt_ans"], meta), from_input

    def _query_id(
        self, loc: str, rec: dict[str, Any], implicit: str | None, used: set[str]
    ) -> tuple[str | None, bool]:
        """(query_id from the input or the file path, True), or (None, False) to derive one."""
        name, ambiguous = _resolve(rec, "query_id", self.explicit, self.preset)
        if ambiguous:
            self.problems.add(loc, "query_id", ambiguous)
            return None, False
        if name is None:
            return implicit, implicit is not None
        used.add(name)
        if name not in rec:
            if name in self.explicit.values():
                self.problems.add(loc, name, "missing")
            return implicit, implicit is not None
        val = rec[name]
        qid = val if isinstance(val, str) else _text(val) if isinstance(val, int) else None
        if qid is None:
            self.problems.add(loc, name, f"expected a string or an integer, got {json_type(val)}")
            return None, False
        qid = qid.strip()
        if not qid:
            self.problems.add(loc, name, "empty")
            return None, False
        return (self.preset.query_id(qid) if self.preset else qid), True

    def _unique(self, loc: str, query: Query, explicit_id: bool) -> bool:
        """Record the query's id; False (and a problem naming both places) if seen before."""
        first = self._seen.get(query.query_id)
        if first is None:
            self._seen[query.query_id] = (loc, "" if explicit_id else _normalised(query.query))
            return True
        first_loc, first_text = first
        if explicit_id:
            message = f"duplicate query_id '{query.query_id}' (also at {first_loc})"
            self.problems.add(loc, "query_id", message)
        elif first_text == _normalised(query.query):
            self.problems.add(
                loc,
                "query",
                f"same text as {first_loc}, so the same derived query_id '{query.query_id}': "
                "remove the duplicate or give each record a query_id",
            )
        else:
            message = f"derived query_id '{query.query_id}' collides with {first_loc}"
            self.problems.add(loc, "query_id", message)
        return False
