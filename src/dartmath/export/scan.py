"""The first pass of `dart export`: read every line of every input once, check it, and tally
each query across inputs, keeping counts and compact candidates, never the records.

Within one input, lines are grouped by `query_id` (compared as a string), or by the `query` text
where a line has none, as `dartmath.record` does; one id must keep one query text and reference.
Across inputs, a query is its text in `match_text` form (NFC, whitespace collapsed) together with
its reference answer `gt_ans`: the same problem in two inputs is one query, whatever its ids
(MATH "0" and GSM8K "0" are two queries, texts differing); two queries of one input stay two,
each matching its own of another input. The same text with two different references in two
inputs is an error naming both places.

Memory: per query its counts and a few fields; per correct response 24 bytes (place, order,
hash; `select.Candidates`); incorrect lines cost nothing kept.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from dartmath.errors import InputError
from dartmath.export.inputs import Input
from dartmath.export.select import Candidates, place, response_hash, split_place
from dartmath.io.jsonl import iter_jsonl_raw, json_type, parse_line
from dartmath.queries.priors import match_text
from dartmath.record import NOT_METADATA, SOURCE, correct_of, query_id_of, sample_idx_of

# Kinds of metadata values, for the Parquet schema (`layout.column_kind`).
BOOL, INT, FLOAT, STR, OTHER = "bool", "int", "float", "str", "other"
_INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(slots=True)
class QueryTally:
    """One query across all inputs: where it was first seen, its counts and candidates."""

    query_id: str | None  # as first seen
    first: int  # place of its first line
    gt: str | None
    source: str | None
    level: Any
    n_samples: int = 0
    target: int | None = None  # the largest of the targets its run directories give
    candidates: Candidates = field(default_factory=Candidates)

    @property
    def n_correct(self) -> int:
        return len(self.candidates)

    @property
    def pass_rate(self) -> float:
        return self.n_correct / self.n_samples


@dataclass
class Scan:
    """What the first pass found."""

    queries: list[QueryTally]
    local: list[dict[Any, int]]  # per input: its query key (id, or text) -> query index
    lines: list[int]  # per input
    meta_kinds: dict[str, set[str]]  # metadata field -> kinds of its values on correct lines

    @property
    def n_lines(self) -> int:
        return sum(self.lines)


def local_key(rec: dict[str, Any], path: Any, lineno: int) -> Any:
    """The key grouping a line within its input: its `query_id` as a string, else its text."""
    if rec.get("query_id") is None:
        return ("query", rec["query"])
    return query_id_of(rec, path, lineno)


def value_kind(value: Any) -> str | None:
    """The kind of a metadata value (None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT if _INT64[0] <= value <= _INT64[1] else OTHER
    if isinstance(value, float):
        return FLOAT
    return STR if isinstance(value, str) else OTHER


def scan(inputs: Sequence[Input], dedup: str = "none") -> Scan:
    """Read every input once (InputError naming file, line and field at the first bad line);
    `dedup` ("none", "exact", "normalized") decides which response hashes are kept."""
    queries: list[QueryTally] = []
    by_key: dict[tuple[bytes, str | None], list[int]] = {}
    by_text: dict[bytes, list[int]] = {}
    out = Scan(queries=queries, local=[], lines=[], meta_kinds={})
    for index, inp in enumerate(inputs):
        path = inp.pool
        local: dict[Any, int] = {}
        claimed: set[int] = set()  # the queries this input's keys are
        seen: dict[Any, tuple[int, Any, int]] = {}  # local key -> (hash of text, gt_ans, line)
        n_lines = 0
        for lineno, raw in iter_jsonl_raw(path, inp.limit):
            rec = parse_line(path, lineno, raw)
            correct = correct_of(rec, path, lineno)
            query = _string(rec, "query", path, lineno)
            resp = _string(rec, "resp", path, lineno)
            key = local_key(rec, path, lineno)
            gt = rec.get("gt_ans")
            qi = local.get(key)
            if qi is None:
                where = place(index, lineno)
                qi = _merge(rec, query, gt, where, inputs, queries, claimed, by_key, by_text)
                local[key] = qi
                claimed.add(qi)
                seen[key] = (hash(query), gt, lineno)
                if isinstance(key, str) and key in inp.targets:
                    target = inp.targets[key]
                    queries[qi].target = max(queries[qi].target or 0, target)
            elif seen[key][:2] != (hash(query), gt):
                _same_query_error(query, gt, seen[key], path, lineno)
            tally = queries[qi]
            tally.n_samples += 1
            if correct:
                idx = rec.get("sample_idx")
                order = lineno if idx is None else sample_idx_of(rec, path, lineno)
                rhash = 0 if dedup == "none" else response_hash(resp, dedup)
                tally.candidates.add(place(index, lineno), order, rhash)
                _add_kinds(out.meta_kinds, rec)
            for name, values in (("model", inp.models), ("prompt_template", inp.templates)):
                value = rec.get(name)
                if isinstance(value, str):
                    values.add(value)
            n_lines += 1
        out.local.append(local)
        out.lines.append(n_lines)
    return out


def _string(rec: dict[str, Any], name: str, path: Any, lineno: int) -> str:
    if name not in rec:
        raise InputError(path, lineno, "missing", field=name)
    value = rec[name]
    if not isinstance(value, str):
        raise InputError(path, lineno, f"expected a string, got {json_type(value)}", name)
    return value


def _merge(
    rec: dict[str, Any],
    query: str,
    gt: Any,
    where: int,
    inputs: Sequence[Input],
    queries: list[QueryTally],
    claimed: set[int],
    by_key: dict[tuple[bytes, str | None], list[int]],
    by_text: dict[bytes, list[int]],
) -> int:
    """The index of the query a new query of an input is: the first of an earlier input with
    its text and reference that none of this input's queries is yet, or a new one."""
    text = hashlib.blake2b(match_text(query).encode("utf-8", "surrogatepass"), digest_size=16)
    digest = text.digest()
    ref = None if gt is None else str(gt)
    same = by_key.setdefault((digest, ref), [])
    for qi in same:
        if qi not in claimed:
            return qi
    index, lineno = split_place(where)
    for other in by_text.get(digest, ()):
        o = queries[other]
        o_index, o_line = split_place(o.first)
        if o_index != index and None not in (o.gt, ref) and o.gt != ref:
            raise InputError(
                inputs[index].pool,
                lineno,
                f"the same query as {inputs[o_index].pool}:{o_line} with another reference "
                f"answer ({ref!r} here, {o.gt!r} there)",
                "gt_ans",
            )
    source = rec.get(SOURCE)
    qid = rec.get("query_id")
    queries.append(
        QueryTally(
            query_id=None if qid is None else str(qid),
            first=where,
            gt=ref,
            source=sys.intern(source) if isinstance(source, str) else None,
            level=rec.get("level"),
        )
    )
    qi = len(queries) - 1
    same.append(qi)
    by_text.setdefault(digest, []).append(qi)
    return qi


def _same_query_error(
    query: str, gt: Any, first: tuple[int, Any, int], path: Any, lineno: int
) -> NoReturn:
    """One query_id must keep one problem: say which field differs from its first line."""
    name = "query" if hash(query) != first[0] else "gt_ans"
    value = query if name == "query" else gt
    raise InputError(
        path,
        lineno,
        f"differs from line {first[2]} of the same query_id ({_short(value)})",
        field=name,
    )


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _add_kinds(kinds: dict[str, set[str]], rec: dict[str, Any]) -> None:
    for name, value in rec.items():
        if name not in NOT_METADATA:
            kind = value_kind(value)
            if kind is not None:
                kinds.setdefault(name, set()).add(kind)
