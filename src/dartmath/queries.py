"""Load the queries of a run, with their reference answers, and Prop2Diff difficulty priors.

Sources: a `.jsonl`, `.json` (a list of objects, or an object holding one list) or `.parquet`
file; a folder written by `datasets` `save_to_disk`; a folder of one-problem JSON files in the
layout of the original MATH release (`MATH/train/algebra/1.json`, ...); any other local folder
`datasets.load_dataset` reads (a `git clone` of a Hugging Face dataset repository); or else a
Hugging Face dataset name, loaded with `datasets` (which needs the hub, unless cached).

Everything is checked before any sampling starts, and every problem found is reported at once
(up to `MAX_REPORTED`), each with its file and line (or row index) and field. No record is
ever dropped silently.

`query_id`: kept from the input when present (as a string). Otherwise a folder of MATH problem
files gives each problem its path (`MATH/train/algebra/1.json`), and any other query gets
`q-` + the first 16 hex digits of the SHA-256 of its text (whitespace runs collapsed, ends
stripped): the same text gets the same id in every run and any order, so a resumed run or a
prior file still matches. The published DART-Math MATH query-info dataset appears to key
queries by exactly those MATH paths (see the README), which is why the `math` preset also turns
a MATH-style `unique_id` (`train/algebra/1.json`, as in PRM800K and MATH-500) into one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dartmath.grading.extract import extract_boxed
from dartmath.io.jsonl import InputError, iter_jsonl_raw, json_type, parse_line
from dartmath.stats import COUNT_FIELDS, PER_RESPONSE_FIELDS

MAX_REPORTED = 20
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
# Never metadata: names that describe responses or per-query counts (stats.py writes those).
_NOT_META = (
    PER_RESPONSE_FIELDS
    | set(COUNT_FIELDS)
    | {"n_samples_list", "n_corrects_list", "target", "stop_reason"}
)
_MATH_PATH = re.compile(r"^(?:MATH/)?(?:train|test)/[A-Za-z_]+/\d+\.json$")
_PROBLEM_FILE = re.compile(r"^\d+\.json$")
_GSM8K_FINAL = re.compile(r"####[ \t]*(?P<x>[^\n]*)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
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


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input record: where (file:line or row), which field, what."""

    location: str
    field: str | None
    message: str

    def __str__(self) -> str:
        what = f"field '{self.field}': {self.message}" if self.field else self.message
        return f"{self.location}: {what}"


class QueryInputError(InputError):
    """Every problem found in one input, reported together; nothing was loaded."""

    def __init__(self, source: str, problems: list[Problem], total: int) -> None:
        self.problems = problems
        self.total = total
        shown = "\n".join(f"  {p}" for p in problems)
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        noun = "problem" if total == 1 else "problems"
        super().__init__(
            source, None, f"{total} {noun} in the input, nothing loaded:\n{shown}{more}"
        )


class _Problems:
    """Collects problems, keeping the first MAX_REPORTED and counting the rest."""

    def __init__(self) -> None:
        self.shown: list[Problem] = []
        self.total = 0

    def add(self, location: str, fld: str | None, message: str) -> None:
        self.total += 1
        if len(self.shown) < MAX_REPORTED:
            self.shown.append(Problem(location, fld, message))

    def raise_if_any(self, source: str) -> None:
        if self.total:
            raise QueryInputError(source, self.shown, self.total)


# --------------------------------------------------------------------------------------------
# Reading records from any source: (location, record or Problem, implicit query_id or None)

_Item = tuple[str, "dict[str, Any] | Problem", "str | None"]


def _object_or_problem(loc: str, val: Any) -> dict[str, Any] | Problem:
    if isinstance(val, dict):
        return val
    return Problem(loc, None, f"expected a JSON object, got {json_type(val)}")


def _iter_jsonl(path: Path) -> Iterator[_Item]:
    for lineno, raw in iter_jsonl_raw(path):
        try:
            yield f"{path}:{lineno}", parse_line(path, lineno, raw), None
        except InputError as e:
            yield f"{path}:{lineno}", Problem(f"{path}:{lineno}", None, e.message), None


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _member_value_pos(text: str, i: int, key: str, dec: json.JSONDecoder) -> int:
    """Position of the value of member `key` of the JSON object starting at `text[i]`."""
    i = _skip_ws(text, i + 1)
    while text[i] != "}":
        name, i = dec.raw_decode(text, i)
        i = _skip_ws(text, i) + 1  # past ':'
        i = _skip_ws(text, i)
        if name == key:
            return i
        _, i = dec.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    raise AssertionError(f"member {key!r} not found")  # orjson found it: unreachable


def _iter_json(path: Path) -> Iterator[_Item]:
    """Items of a JSON array (top level, or the one list inside a top-level object), each
    located by the line its object starts on."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, None, f"not valid UTF-8 (byte {e.start})") from None
    try:
        top = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(path, None, f"malformed JSON ({e})") from None
    dec = json.JSONDecoder()
    start = _skip_ws(text, 0)
    if isinstance(top, dict):
        lists = [k for k, v in top.items() if isinstance(v, list)]
        if len(lists) != 1:
            found = f"members {', '.join(map(repr, lists))}" if lists else "no list"
            raise InputError(
                path, None, f"expected a list of objects, or an object holding one list ({found})"
            )
        start = _member_value_pos(text, start, lists[0], dec)
    elif not isinstance(top, list):
        raise InputError(path, None, f"expected a list of objects, got {json_type(top)}")
    i = _skip_ws(text, start + 1)
    line, counted = text.count("\n", 0, i) + 1, i
    first = True
    while text[i] != "]":
        if not first:
            i = _skip_ws(text, i + 1)  # past ','
        first = False
        line += text.count("\n", counted, i)
        counted = i
        val, i = dec.raw_decode(text, i)
        i = _skip_ws(text, i)
        loc = f"{path}:{line}"
        yield loc, _object_or_problem(loc, val), None


def _iter_parquet(path: Path) -> Iterator[_Item]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with `datasets`
        raise InputError(path, None, "reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InputError(path, None, f"not a readable Parquet file ({_first_line(e)})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            yield f"{path} row {row}", rec, None
            row += 1


def _problem_file_id(path: Path, root: Path) -> str:
    """The id of a problem file: its path from the last folder named `MATH` on
    (`MATH/train/algebra/1.json`), or else from the folder given."""
    parts = path.resolve().parts
    if "MATH" in parts:
        at = len(parts) - 1 - parts[::-1].index("MATH")
        return "/".join(parts[at:])
    return path.relative_to(root).as_posix()


def _iter_problem_files(root: Path) -> Iterator[_Item]:
    """A folder of one-problem JSON files (the original MATH layout), in a stable order."""

    def order(p: Path) -> tuple[str, int]:
        return (p.parent.as_posix(), int(p.stem))

    for path in sorted(_problem_files(root), key=order):
        try:
            rec = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as e:
            yield f"{path}:1", Problem(f"{path}:1", None, f"malformed JSON ({e})"), None
            continue
        yield f"{path}:1", _object_or_problem(f"{path}:1", rec), _problem_file_id(path, root)


def _problem_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.json") if _PROBLEM_FILE.match(p.name)]


def _is_problem_folder(root: Path) -> bool:
    """True for a folder holding only `<number>.json` problem files (no table files)."""
    table_suffixes = {".parquet", ".jsonl", ".arrow", ".csv"}
    if any(p.suffix in table_suffixes for p in root.rglob("*")):
        return False
    return bool(_problem_files(root))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _import_datasets(source: str, what: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise InputError(
            source,
            None,
            f"reading {what} needs the `datasets` package "
            "(pip install 'dartmath[cpu]', or pip install datasets)",
        ) from None
    return datasets


def _iter_dataset(ds: Any, label: str) -> Iterator[_Item]:
    for row, rec in enumerate(ds):
        yield f"{label} row {row}", _object_or_problem(f"{label} row {row}", rec), None


def _load_from_disk(root: Path, split: str | None) -> Iterator[_Item]:
    datasets = _import_datasets(str(root), "a folder written by save_to_disk")
    try:
        ds = datasets.load_from_disk(str(root))
    except Exception as e:
        raise InputError(root, None, f"cannot read this saved dataset ({_first_line(e)})") from None
    if isinstance(ds, datasets.DatasetDict):
        name = split or "train"
        if name not in ds:
            raise InputError(
                root, None, f"no split '{name}' (splits: {', '.join(sorted(ds))}); pass split="
            )
        return _iter_dataset(ds[name], f"{root} [{name}]")
    return _iter_dataset(ds, str(root))


def _load_dataset(source: str, config: str | None, split: str | None) -> Iterator[_Item]:
    what = "this folder" if Path(source).is_dir() else "a dataset by name"
    datasets = _import_datasets(source, what)
    name = split or "train"
    try:
        ds = datasets.load_dataset(source, name=config, split=name)
    except Exception as e:  # network, not found, bad config or split: all say the same to a user
        raise InputError(source, None, _load_failure(source, config, name, e)) from None
    label = f"{source}" + (f" ({config})" if config else "") + f" [{name}]"
    return _iter_dataset(ds, label)


def _load_failure(source: str, config: str | None, split: str, e: BaseException) -> str:
    what = f"config {config!r}, split {split!r}" if config else f"split {split!r}"
    msg = f"cannot load this as a dataset ({what}): {_first_line(e)}"
    if not Path(source).exists():
        msg += (
            ". It is not a local file or folder either. Without access to the Hugging Face hub "
            "(HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1, or no network), download the data "
            "elsewhere and pass a local .jsonl/.json/.parquet file, a `git clone` of the dataset "
            "repository, or a folder written by `save_to_disk`"
        )
    return msg


def iter_source(
    source: str | os.PathLike, config: str | None = None, split: str | None = None
) -> Iterator[_Item]:
    """Yield (location, record or Problem, implicit query_id) for every record of `source`.

    Raises InputError (or FileNotFoundError) when the source as a whole cannot be read.
    """
    src = str(source)
    path = Path(src).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _load_from_disk(path, split)
        if _is_problem_folder(path):
            return _iter_problem_files(path)
        return _load_dataset(str(path), config, split)
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".jsonl":
            return _iter_jsonl(path)
        if suffix == ".json":
            return _iter_json(path)
        if suffix == ".parquet":
            return _iter_parquet(path)
        raise InputError(
            path, None, f"unknown file type '{suffix}': expected .jsonl, .json or .parquet"
        )
    if suffix in {".jsonl", ".json", ".parquet"} or src.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{src}: no such file or folder")
    return _load_dataset(src, config, split)


# --------------------------------------------------------------------------------------------
# Presets and field mapping


def math_reference(solution: str) -> str | None:
    """The reference answer of a MATH solution: its last `\\boxed{}` / `\\fbox{}`.

    Boxes that end the solution separated only by punctuation or "and" are read as one list,
    the rule the grader applies to responses (so that reference and response agree).
    """
    return extract_boxed(solution)


def gsm8k_reference(answer: str) -> str | None:
    """The reference answer of a GSM8K solution: the text after its last `####`, without
    thousands separators (`1,200` -> `1200`)."""
    last = None
    for m in _GSM8K_FINAL.finditer(answer):
        last = m
    if last is None:
        return None
    x = _THOUSANDS.sub("", last.group("x").strip())
    return x or None


def _math_meta(rec: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    level = rec.get("level")
    if isinstance(level, str):
        token = level.split(" ")[-1]
        meta["level"] = int(token) if token.isdigit() else None  # "Level ?" -> unknown
    elif isinstance(level, int) and not isinstance(level, bool):
        meta["level"] = level
    domain = rec.get("type", rec.get("subject"))
    if isinstance(domain, str):
        meta["domain"] = domain.replace(" ", "")  # DART-Math's spelling: "Counting&Probability"
    return meta


@dataclass(frozen=True)
class _Preset:
    fields: dict[str, str]
    reference: Callable[[str], str | None]
    no_reference: str
    meta: Callable[[dict[str, Any]], dict[str, Any]]
    consumed: frozenset[str]  # input fields replaced by what `meta` returns


PRESETS: dict[str, _Preset] = {
    "math": _Preset(
        fields={"query": "problem", "gt_ans": "solution"},
        reference=math_reference,
        no_reference="no \\boxed{} answer in the solution",
        meta=_math_meta,
        consumed=frozenset({"level", "type", "subject"}),
    ),
    "gsm8k": _Preset(
        fields={"query": "question", "gt_ans": "answer"},
        reference=gsm8k_reference,
        no_reference="no final answer after '####' in the solution",
        meta=lambda rec: {},
        consumed=frozenset(),
    ),
}


def _resolve(
    rec: dict[str, Any], ours: str, explicit: Mapping[str, str], preset: _Preset | None
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


def _hint(rec: dict[str, Any]) -> str:
    if "problem" in rec and "solution" in rec:
        return " (this looks like MATH: use preset 'math')"
    if "question" in rec and "answer" in rec:
        return " (this looks like GSM8K: use preset 'gsm8k')"
    return ""


def _text(val: Any) -> str | None:
    """A string, or a number as a string; None for any other type."""
    if isinstance(val, str):
        return val
    if isinstance(val, int | float) and not isinstance(val, bool):
        return str(val)
    return None


def derive_query_id(query: str) -> str:
    """The id of a query that has none: `q-` + 16 hex digits of SHA-256 of its text, with
    whitespace runs collapsed and ends stripped; stable across runs and orderings."""
    norm = _WS.sub(" ", query).strip()
    return "q-" + hashlib.sha256(norm.encode("utf-8")).hexdigest()[:16]


def _small_scalar(v: Any) -> bool:
    """True for JSON scalars worth copying: null, booleans, finite numbers, short strings."""
    if v is None or isinstance(v, bool | int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, str) and len(v) <= MAX_META_STR


def _meta(rec: dict[str, Any], used: set[str], preset: _Preset | None) -> dict[str, Any]:
    meta = {}
    skip = used | (preset.consumed if preset else frozenset())
    for k, v in rec.items():
        if k in skip or k in _NOT_META or k in OUR_NAMES:
            continue
        if _small_scalar(v):
            meta[k] = v
    if preset is not None:
        meta.update(preset.meta(rec))
    return meta


def _check_limit(source: str, limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(source, None, f"limit must be a positive integer, got {limit!r}")


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
    pre = PRESETS[preset] if preset else None

    problems = _Problems()
    queries: list[Query] = []
    seen: dict[str, tuple[str, str]] = {}  # query_id -> (location, normalised text if derived)
    n = 0
    for loc, rec, implicit in iter_source(src, config, split):
        n += 1
        if isinstance(rec, Problem):
            problems.add(rec.location, rec.field, rec.message)
        else:
            made = _query(loc, rec, implicit, explicit, pre, problems)
            if made is not None and _unique(loc, *made, seen, problems):
                queries.append(made[0])
        if limit is not None and n >= limit:
            break
    if n == 0:
        raise InputError(src, None, "no queries found")
    problems.raise_if_any(src)
    return queries


def _query(
    loc: str,
    rec: dict[str, Any],
    implicit: str | None,
    explicit: Mapping[str, str],
    preset: _Preset | None,
    problems: _Problems,
) -> tuple[Query, bool] | None:
    """(Query, whether its id came from the input), or None after recording its problems."""
    before = problems.total
    used: set[str] = set()
    values: dict[str, str] = {}
    for ours in ("query", "gt_ans"):
        name, ambiguous = _resolve(rec, ours, explicit, preset)
        if name is None:
            problems.add(loc, ours, ambiguous or f"missing{_hint(rec)}")
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

    qid, from_input = _query_id(loc, rec, implicit, explicit, preset, problems, used)
    if problems.total > before:
        return None
    if qid is None:
        qid = derive_query_id(values["query"])
    meta = _meta(rec, used, preset)
    return Query(qid, values["query"], values["gt_ans"], meta), from_input


def _query_id(
    loc: str,
    rec: dict[str, Any],
    implicit: str | None,
    explicit: Mapping[str, str],
    preset: _Preset | None,
    problems: _Problems,
    used: set[str],
) -> tuple[str | None, bool]:
    """(query_id from the input or the file path, True), or (None, False) to derive one."""
    name, ambiguous = _resolve(rec, "query_id", explicit, preset)
    if ambiguous:
        problems.add(loc, "query_id", ambiguous)
        return None, False
    if name is None:
        return implicit, implicit is not None
    used.add(name)
    if name not in rec:
        if name in explicit.values():
            problems.add(loc, name, "missing")
        return implicit, implicit is not None
    val = rec[name]
    qid = val if isinstance(val, str) else _text(val) if isinstance(val, int) else None
    if qid is None:
        problems.add(loc, name, f"expected a string or an integer, got {json_type(val)}")
        return None, False
    qid = qid.strip()
    if not qid:
        problems.add(loc, name, "empty")
        return None, False
    if preset is PRESETS["math"] and _MATH_PATH.match(qid) and not qid.startswith("MATH/"):
        qid = "MATH/" + qid
    return qid, True


def _unique(
    loc: str,
    query: Query,
    explicit_id: bool,
    seen: dict[str, tuple[str, str]],
    problems: _Problems,
) -> bool:
    """Record the query's id; False (and a problem naming both places) if it was seen before."""
    first = seen.get(query.query_id)
    if first is None:
        seen[query.query_id] = (loc, "" if explicit_id else _WS.sub(" ", query.query).strip())
        return True
    first_loc, first_text = first
    if explicit_id:
        problems.add(
            loc, "query_id", f"duplicate query_id '{query.query_id}' (also at {first_loc})"
        )
    elif first_text == _WS.sub(" ", query.query).strip():
        problems.add(
            loc,
            "query",
            f"same text as {first_loc}, so the same derived query_id '{query.query_id}': "
            "remove the duplicate or give each record a query_id",
        )
    else:
        problems.add(
            loc, "query_id", f"derived query_id '{query.query_id}' collides with {first_loc}"
        )
    return False


# --------------------------------------------------------------------------------------------
# Pass-rate priors


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
    problems = _Problems()
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


def _pass_rate_id(loc: str, rec: dict[str, Any], problems: _Problems) -> str | None:
    if "query_id" not in rec:
        problems.add(loc, "query_id", "missing")
        return None
    val = rec["query_id"]
    if isinstance(val, bool) or not isinstance(val, str | int):
        problems.add(loc, "query_id", f"expected a string or an integer, got {json_type(val)}")
        return None
    qid = str(val).strip()
    if not qid:
        problems.add(loc, "query_id", "empty")
        return None
    return qid


def _pass_rate(loc: str, rec: dict[str, Any], problems: _Problems) -> float | None:
    if "pass_rate" not in rec:
        problems.add(loc, "pass_rate", "missing")
        return None
    val = rec["pass_rate"]
    if isinstance(val, bool) or not isinstance(val, int | float):
        problems.add(loc, "pass_rate", f"expected a number, got {json_type(val)}")
        return None
    if not (math.isfinite(val) and 0.0 <= val <= 1.0):
        problems.add(loc, "pass_rate", f"expected a number in [0, 1], got {val!r}")
        return None
    return float(val)
