"""Load the queries of a run: map each record's fields to ours, check every record, and give
each query an id.

Everything is checked before any sampling starts, and every problem found is reported at once
(up to `MAX_REPORTED`), each with its file and line (or row index) and field. No record is
ever dropped silently.

`query_id`: kept from the input when present (as a string). Otherwise a folder of MATH problem
files gives each problem its path (`MATH/train/algebra/1.json`), and any other query gets
`q-` + the first 16 hex digits of the SHA-256 of its text (whitespace runs collapsed, ends
stripped): the same text gets the same id in every run and any order, so a resumed run or a
prior file still matches. Over several sources (`load_query_sources`) an id found in more than
one of them becomes `<name>:<id>` in each; every other id stays as it is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dartmath.errors import InputError
from dartmath.io.jsonl import json_type
from dartmath.queries.presets import PRESETS, Preset, hint
from dartmath.queries.problems import Problem, Problems
from dartmath.queries.sources import iter_source
from dartmath.record import INPUT_SOURCE, NOT_METADATA, SOURCE

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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    """One problem to sample: stable id, text, reference answer, kept input metadata and the
    name of the source it came from (None when loaded without one)."""

    query_id: str
    query: str
    gt_ans: str
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def record(self) -> dict[str, Any]:
        """The query as one flat JSON object (`query_id`, `query`, `gt_ans`, `source` when
        known, then metadata)."""
        rec: dict[str, Any] = {
            "query_id": self.query_id,
            "query": self.query,
            "gt_ans": self.gt_ans,
        }
        if self.source is not None:
            rec[SOURCE] = self.source
        rec.update(self.meta)
        return rec


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
    name: str | None = None,
) -> list[Query]:
    """Load and check every query of `source`; raise QueryInputError listing all problems.

    `preset`: `math` (`problem`; reference = last box of `solution`; `level`, `domain` kept)
    or `gsm8k` (`question`; reference = after `####` in `answer`). `fields` maps our names
    (`query`, `gt_ans`, `query_id`) to input field names and overrides the preset's. Without
    either, the fields are `query`, `gt_ans`, `query_id`, or else one of their aliases
    (`question`/`problem`, `ref_ans`, `id`/`unique_id`). `limit` keeps the first N records
    (only those are read and checked). `config`/`split` apply to `datasets` sources. `name`
    becomes each query's `source`. An input field `source` is kept as `input_source`.
    """
    spec = QuerySource(str(source), name, preset, fields, config, split, limit)
    problems = Problems()
    queries, _ = _load(spec, name, problems)
    problems.raise_if_any(spec.source)
    return queries


@dataclass(frozen=True)
class QuerySource:
    """One source of a run's queries: where and how to read it (as `load_queries` does) and
    its `name`, the `source` of its queries (default: the `source` string)."""

    source: str
    name: str | None = None
    preset: str | None = None
    fields: Mapping[str, str] | None = None
    config: str | None = None
    split: str | None = None
    limit: int | None = None

    @property
    def label(self) -> str:
        """The source's name: `name`, or else the `source` string."""
        return self.name if self.name is not None else self.source


def load_query_sources(sources: Sequence[QuerySource]) -> list[Query]:
    """The queries of every source, source after source, each with its source's name.

    Ids are made unique across sources: an id found in more than one source becomes
    `<name>:<id>` in every source that has it; every other id keeps its plain form, so that a
    MATH path or a derived `q-...` id reads as in a run of its source alone and still matches a
    prior. Only the clashing ids are namespaced, not every id of the sources that share one:
    adding a record to a source then changes at most the ids it shares (with the whole-source
    rule one new record would rename every query of two sources, and a run directory or prior
    made before would no longer match). An id depends only on the set of ids of the other
    sources, so the same config gives the same ids in any record order.

    Every problem of every source (an unreadable or empty source, bad records, a duplicate id
    within one source, a namespaced id that is taken) is reported at once, each naming its
    file and line; nothing is loaded then. Source names must be unique (ValueError).
    """
    labels = [s.label for s in sources]
    if not sources or len(set(labels)) != len(labels):
        raise ValueError(f"expected one or more sources with distinct names, got {labels}")
    problems = Problems()
    loaded: list[tuple[QuerySource, list[Query], dict[str, str]]] = []
    for spec in sources:
        try:
            loaded.append((spec, *_load(spec, spec.label, problems)))
        except InputError as e:  # the source as a whole: unreadable, empty, bad options
            if len(sources) == 1:
                raise
            where = e.path if e.line is None else f"{e.path}:{e.line}"
            problems.add(where, e.field, e.message)
    what = ", ".join(s.source for s in sources)
    problems.raise_if_any(what)
    queries = _namespaced(loaded, problems)
    problems.raise_if_any(what)
    return queries


def _namespaced(
    loaded: list[tuple[QuerySource, list[Query], dict[str, str]]], problems: Problems
) -> list[Query]:
    """Every query with its final id (see `load_query_sources`); a namespaced id that another
    query already has is a problem naming both places."""
    seen = Counter(q.query_id for _, queries, _ in loaded for q in queries)
    clashing = {qid for qid, n in seen.items() if n > 1}
    if clashing:
        log.warning(
            "%d query_id(s) appear in more than one source and are namespaced as "
            "<source name>:<query_id>, e.g. %r",
            len(clashing),
            min(clashing),
        )
    out: list[Query] = []
    placed: dict[str, str] = {}  # final id -> location
    for spec, queries, locations in loaded:
        for q in queries:
            loc = locations[q.query_id]
            qid = f"{spec.label}:{q.query_id}" if q.query_id in clashing else q.query_id
            if qid in placed:
                problems.add(
                    loc,
                    "query_id",
                    f"'{q.query_id}' is in more than one source, and its namespaced id '{qid}' "
                    f"is already the id at {placed[qid]}: rename the source (`name`) or the id",
                )
            placed.setdefault(qid, loc)
            out.append(q if qid == q.query_id else replace(q, query_id=qid))
    return out


def _load(
    spec: QuerySource, name: str | None, problems: Problems
) -> tuple[list[Query], dict[str, str]]:
    """The queries of one source named `name` and where each was read ({query_id: location}),
    recording its records' problems in `problems`; InputError when the source as a whole
    cannot be used (bad options, unreadable, no records)."""
    src = spec.source
    explicit = dict(spec.fields or {})
    unknown = sorted(set(explicit) - set(OUR_NAMES))
    if unknown:
        raise InputError(
            src,
            None,
            f"unknown name(s) in fields: {', '.join(unknown)} (ours: query, gt_ans, query_id)",
        )
    preset = spec.preset
    if preset is not None and preset not in PRESETS:
        raise InputError(src, None, f"unknown preset '{preset}' (presets: {', '.join(PRESETS)})")
    _check_limit(src, spec.limit)
    checker = _Checker(explicit, PRESETS[preset] if preset else None, name, problems)
    queries: list[Query] = []
    n = 0
    for loc, rec, implicit in iter_source(src, spec.config, spec.split):
        n += 1
        if isinstance(rec, Problem):
            problems.add(rec.location, rec.field, rec.message)
        else:
            query = checker.query(loc, rec, implicit)
            if query is not None:
                queries.append(query)
        if spec.limit is not None and n >= spec.limit:
            break
    if n == 0:
        raise InputError(src, None, "no queries found")
    return queries, checker.locations()


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
    """The record's other fields worth keeping; an input `source` is kept as `input_source`
    (`source` is the name of the query's source in our records)."""
    skip = used | (preset.consumed if preset else frozenset())
    meta = {}
    for k, v in rec.items():
        if k in skip or not _small_scalar(v):
            continue
        if k == SOURCE:
            meta[INPUT_SOURCE] = v
        elif k not in NOT_METADATA:
            meta[k] = v
    if preset is not None:
        meta.update(preset.meta(rec))
    return meta


class _Checker:
    """Turns the records of one input into queries under one field mapping, recording every
    problem, and remembers the ids seen so far to catch duplicates."""

    def __init__(
        self,
        explicit: Mapping[str, str],
        preset: Preset | None,
        source: str | None,
        problems: Problems,
    ) -> None:
        self.explicit = explicit
        self.preset = preset
        self.source = source
        self.problems = problems
        self._seen: dict[str, tuple[str, str]] = {}  # id -> (location, normalised text if derived)

    def locations(self) -> dict[str, str]:
        """Where each query id seen so far was read."""
        return {qid: loc for qid, (loc, _) in self._seen.items()}

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
        if SOURCE in rec and INPUT_SOURCE in rec and SOURCE not in used:
            problems.add(
                loc,
                SOURCE,
                f"would be kept as '{INPUT_SOURCE}' ('{SOURCE}' names the query's source in our "
                f"records), but the record has an '{INPUT_SOURCE}' too: rename one of them",
            )
        if problems.total > before:
            return None
        if qid is None:
            qid = derive_query_id(values["query"])
        meta = _meta(rec, used, preset)
        return Query(qid, values["query"], values["gt_ans"], meta, self.source), from_input

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
