"""Writing the training set as JSONL, Parquet or a `datasets` folder (`save_to_disk`, read back
with `load_from_disk`), streaming, under temporary names beside the outputs that `Staging`
renames into place together at the end: a failed or killed export leaves the old outputs (or
none), never a partial one.

Parquet is written in batches of `BATCH_ROWS` records with a schema fixed before the first
(`layout.Layout.columns`); a `datasets` folder is built from such a Parquet file through a cache
beside the output, so neither holds the data in memory. Both need the `export` extra.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from dartmath.errors import EXIT_FAILURE, DartError, require
from dartmath.export.layout import BOOLEAN, FLOAT64, INT64, JSON, STRING, TURNS
from dartmath.io.jsonl import dumps

FORMATS = ("jsonl", "parquet", "datasets")
JSONL, PARQUET, DATASETS = FORMATS
BATCH_ROWS = 5000
EXTRAS = ("export", "cpu", "gpu", "openai")

_T = TypeVar("_T")


class OutputError(DartError):
    """The output cannot be written (permissions, a full disk)."""

    exit_code = EXIT_FAILURE


def format_of(output: str | os.PathLike, fmt: str | None) -> str:
    """The file format: `fmt`, or from the output's name (`.jsonl`, `.parquet`; an existing
    folder, a name without a suffix or ending in `/`: a `datasets` folder)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise DartError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
        return fmt
    text, path = str(output), Path(output)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".parquet"):
        return suffix[1:]
    if text.endswith(("/", os.sep)) or path.is_dir() or not suffix:
        return DATASETS
    raise DartError(
        f"cannot tell the format of {output} from its name: name it .jsonl or .parquet, "
        "or give --format jsonl|parquet|datasets"
    )


def is_dataset_folder(path: Path) -> bool:
    """Whether `path` is a folder `save_to_disk` wrote (the only kind of folder replaced)."""
    return (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def check_output(output: Path, fmt: str) -> None:
    """DartError, before any work, when the output exists and is not something to replace:
    a folder for a file format, or a file or a folder not written by `save_to_disk`."""
    if fmt == DATASETS:
        if output.is_file():
            raise DartError(f"--output {output} is a file: a datasets folder cannot replace it")
        if output.is_dir() and any(output.iterdir()) and not is_dataset_folder(output):
            raise DartError(
                f"--output {output} is a folder that save_to_disk did not write: "
                "not replacing it (name a new folder)"
            )
    elif output.is_dir():
        raise DartError(f"--output {output} is a folder: name a {fmt} file")


def require_extras(fmt: str) -> None:
    """MissingDependency (naming the extra) when `fmt` needs a package that is missing."""
    if fmt in (PARQUET, DATASETS):
        require("pyarrow", f"dart export to {fmt}", EXTRAS)
    if fmt == DATASETS:
        require("datasets", "dart export to a datasets folder", EXTRAS)


class Staging:
    """Outputs written under temporary names beside their final ones, moved into place
    together by `commit`. Leaving the `with` block removes every temporary left (all of them
    after a failure; the scratch folders after a commit)."""

    def __init__(self) -> None:
        self._moves: list[tuple[Path, Path]] = []
        self._temps: list[Path] = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        for tmp in self._temps:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def stage(self, final: Path) -> Path:
        """A temporary path (not created) that `commit` moves to `final`."""
        _disk(final.parent, lambda: final.parent.mkdir(parents=True, exist_ok=True))
        tmp = final.parent / f".{final.name}.{secrets.token_hex(4)}.tmp"
        self._moves.append((tmp, final))
        self._temps.append(tmp)
        return tmp

    def scratch(self, near: Path) -> Path:
        """A new temporary folder beside `near`, removed when the block ends."""
        prefix = f".{near.name}."
        folder = Path(_disk(near.parent, lambda: tempfile.mkdtemp(".work", prefix, near.parent)))
        self._temps.append(folder)
        return folder

    def commit(self) -> None:
        """Move every staged output into place (an existing folder is replaced whole)."""
        for tmp, final in self._moves:
            _disk(final, lambda tmp=tmp, final=final: _replace(tmp, final))
        self._moves.clear()


def _replace(tmp: Path, final: Path) -> None:
    if not (tmp.is_dir() and final.is_dir()):
        os.replace(tmp, final)
        return
    old = final.parent / f".{final.name}.{secrets.token_hex(4)}.old"
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _disk(path: Path, op: Callable[[], _T]) -> _T:
    """Run a file operation of the output; an OSError becomes an OutputError."""
    try:
        return op()
    except OSError as e:
        raise OutputError(f"{path}: cannot write the output: {e.strerror or e}") from e


def write_records(
    fmt: str,
    records: Iterable[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    path: Path,
    scratch: Path | None = None,
) -> int:
    """Write `records` to `path` (a file, or the folder of a `datasets` output, which needs a
    `scratch` folder); return how many were written."""
    if fmt == JSONL:
        return _disk(path, lambda: write_jsonl(path, records))
    if fmt == PARQUET:
        return _disk(path, lambda: write_parquet(path, records, columns))
    assert scratch is not None, "a datasets folder needs a scratch folder"
    return _disk(path, lambda: write_dataset_folder(path, records, columns, scratch))


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    n = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for rec in records:
            f.write(dumps(rec))
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def arrow_schema(columns: Sequence[tuple[str, str]]) -> Any:
    """The Arrow schema of the columns (`json` values are stored as their JSON text)."""
    import pyarrow as pa

    turn = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {
        STRING: pa.string(),
        JSON: pa.string(),
        INT64: pa.int64(),
        FLOAT64: pa.float64(),
        BOOLEAN: pa.bool_(),
        TURNS: pa.list_(turn),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns])


def write_parquet(
    path: Path, records: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns)
    json_cols = {name for name, kind in columns if kind == JSON}
    n = 0
    with open(path, "wb") as f:
        with pq.ParquetWriter(f, schema) as writer:
            for batch in _batches(records, [name for name, _ in columns], json_cols):
                writer.write_table(pa.Table.from_pydict(batch, schema=schema))
                n += len(batch[columns[0][0]])
        f.flush()
        os.fsync(f.fileno())
    return n


def _batches(
    records: Iterable[dict[str, Any]], names: list[str], json_cols: set[str]
) -> Iterator[dict[str, list[Any]]]:
    """Column lists of up to BATCH_ROWS records each."""
    batch: dict[str, list[Any]] = {name: [] for name in names}
    size = 0
    for rec in records:
        for name in names:
            value = rec.get(name)
            if name in json_cols and value is not None:
                value = orjson.dumps(value).decode("utf-8")
            batch[name].append(value)
        size += 1
        if size == BATCH_ROWS:
            yield batch
            batch, size = {name: [] for name in names}, 0
    if size:
        yield batch


def write_dataset_folder(
    folder: Path,
    records: Iterable[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    scratch: Path,
) -> int:
    """A `save_to_disk` folder of the records, built from a Parquet file in `scratch` (also its
    cache), so that nothing holds the data in memory."""
    import datasets

    parquet = scratch / "data.parquet"
    n = write_parquet(parquet, records, columns)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        if n:
            dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(scratch / "cache"))
        else:  # from_parquet finds no data in a file of no rows
            schema = arrow_schema(columns)
            features = datasets.Features.from_arrow_schema(schema)
            dataset = datasets.Dataset.from_dict({n: [] for n in schema.names}, features=features)
        # An empty dataset saved in no shard does not load again (datasets 4.8): give it one.
        dataset.save_to_disk(str(folder), num_shards=None if n else 1)
    finally:
        if bars:
            datasets.enable_progress_bars()
    return n
