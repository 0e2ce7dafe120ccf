"""Read the records of an input, whatever its format, each with where it came from.

Sources: a `.jsonl`, `.json` (a list of objects, or an object holding one list) or `.parquet`
file; a folder written by `datasets` `save_to_disk`; a folder of one-problem JSON files in the
layout of the original MATH release (`MATH/train/algebra/1.json`, ...); any other local folder
`datasets.load_dataset` reads (a `git clone` of a Hugging Face dataset repository); or else a
Hugging Face dataset name, loaded with `datasets` (which needs the hub, unless cached).

A record that cannot be read (a malformed line, a value that is not an object) comes out as a
Problem in its place, so that the caller reports it with all the others; only a source that
cannot be read at all raises InputError.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dartmath.errors import InputError
from dartmath.io.jsonl import decode_json, iter_jsonl_raw, json_type, parse_line
from dartmath.queries.problems import Problem

# (location, record or Problem, implicit query_id or None)
Item = tuple[str, "dict[str, Any] | Problem", "str | None"]

_PROBLEM_FILE = re.compile(r"^\d+\.json$")


def iter_source(
    source: str | os.PathLike, config: str | None = None, split: str | None = None
) -> Iterator[Item]:
    """Yield (location, record or Problem, implicit query_id) for every record of `source`.

    Raises InputError when the source as a whole cannot be read, or does not exist.
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
        raise InputError(src, None, "no such file or folder")
    return _load_dataset(src, config, split)


def _object_or_problem(loc: str, val: Any) -> dict[str, Any] | Problem:
    if isinstance(val, dict):
        return val
    return Problem(loc, None, f"expected a JSON object, got {json_type(val)}")


def _iter_jsonl(path: Path) -> Iterator[Item]:
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


def _iter_json(path: Path) -> Iterator[Item]:
    """Items of a JSON array (top level, or the one list inside a top-level object), each
    located by the line its object starts on."""
    data = path.read_bytes()
    top = decode_json(path, None, data)
    text = data.decode("utf-8")  # valid: decode_json checked it
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


def _iter_parquet(path: Path) -> Iterator[Item]:
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


def _iter_problem_files(root: Path) -> Iterator[Item]:
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


def _iter_dataset(ds: Any, label: str) -> Iterator[Item]:
    for row, rec in enumerate(ds):
        yield f"{label} row {row}", _object_or_problem(f"{label} row {row}", rec), None


def _load_from_disk(root: Path, split: str | None) -> Iterator[Item]:
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


def _load_dataset(source: str, config: str | None, split: str | None) -> Iterator[Item]:
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
