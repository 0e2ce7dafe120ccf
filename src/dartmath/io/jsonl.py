"""Streaming JSONL reading with precise errors, and atomic file writing.

Every error names the file, the 1-based line number and, where one is at fault, the field,
so that a user can fix a multi-GB input without guessing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from dartmath.errors import InputError


def json_type(val: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if val is None:
        return "null"
    if isinstance(val, bool):
        return "boolean"
    if isinstance(val, int | float):
        return "number"
    if isinstance(val, str):
        return "string"
    return "array" if isinstance(val, list | tuple) else "object"


def decode_json(path: str | os.PathLike, lineno: int | None, raw: bytes) -> Any:
    """Decode JSON bytes (a line, or a whole file when `lineno` is None), or raise InputError
    saying whether the bytes are not UTF-8 or not JSON."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, lineno, f"not valid UTF-8 (byte {e.start})") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InputError(path, lineno, f"malformed JSON ({e})") from None


def parse_line(path: str | os.PathLike, lineno: int, raw: bytes) -> dict[str, Any]:
    """Decode one JSONL line into a dict, or raise InputError naming the line."""
    obj = decode_json(path, lineno, raw)
    if not isinstance(obj, dict):
        raise InputError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def iter_jsonl_raw(
    path: str | os.PathLike, limit: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw line without newline), skipping blank lines. Constant memory.
    With `limit`, only the lines within its first `limit` bytes (see `whole_size`)."""
    pos = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            pos += len(raw)
            if limit is not None and pos > limit:
                return
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                yield lineno, raw


def whole_size(path: str | os.PathLike) -> int:
    """The bytes of a file up to its last newline: all of it unless a writer was cut off (or is
    writing) in the middle of its last line."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, chunk = end, 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            nl = f.read(pos - start).rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
    return 0


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for each non-blank line; raise InputError on a bad line."""
    for lineno, raw in iter_jsonl_raw(path):
        yield lineno, parse_line(path, lineno, raw)


def dumps(obj: Any) -> bytes:
    """Serialise one record as a JSONL line (with its newline)."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename it over `path`.

    A process killed mid-write leaves the old file (or none) and a stray temporary file,
    never a partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Atomically write records as JSONL; return how many were written."""
    n = 0
    with atomic_writer(path) as f:
        for rec in records:
            f.write(dumps(rec))
            n += 1
    return n
