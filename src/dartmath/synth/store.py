"""The run directory of `dart synth`: what it writes, and how a run resumes from it.

```
RUN_DIR/
  config.yaml        the resolved config that produced the run
  pool.jsonl         one line per graded response, appended as it is graded
  query_info.jsonl   one line per query, rewritten atomically
  run_summary.json   one record per session (written when it starts, updated as it goes)
  .lock              held by the `dart synth` working here (a second one is refused)
```
`pool.jsonl` is the only source of truth: each line is written whole with one `write` call
and flushed at once, so a process killed at any moment (Ctrl-C, kill -9, a crash) leaves every
finished line in the file and at most one torn last line, which resuming cuts off. Everything
else is rebuilt from the pool on resume. A session the summary still shows as `running` when the
next one takes the lock ended without closing its record (kill -9, a crash): it is marked
`killed`, its counts as of its last update.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dartmath.errors import InputError, ResumeRefused, RunDirError
from dartmath.io.jsonl import atomic_writer, dumps, iter_jsonl_raw, parse_line, whole_size
from dartmath.record import QueryAccumulator, correct_of, query_id_of, sample_idx_of
from dartmath.synth.config import meaning_diff

CONFIG = "config.yaml"
POOL = "pool.jsonl"
QUERY_INFO = "query_info.jsonl"
SUMMARY = "run_summary.json"
LOCK = ".lock"
RUNNING, KILLED = "running", "killed"

_T = TypeVar("_T")


@dataclass
class PoolState:
    """What an existing pool says: each query's verdicts in pool order and its next index."""

    verdicts: dict[str, list[bool]] = field(default_factory=dict)
    next_idx: dict[str, int] = field(default_factory=dict)
    torn_bytes: int = 0  # size of the cut-off last line, 0 when the file ended cleanly


class RunStore:
    """Owns one run directory: lock, config check, pool appends, query-info and summary."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        self.pool_path = self.dir / POOL
        self._pool_fd: int | None = None
        self._summary: dict[str, Any] | None = None

    def exists(self) -> bool:
        return (self.dir / CONFIG).exists() or self.pool_path.exists()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process (created if needed); ResumeRefused when
        another process holds it. A POSIX record lock: the engine's forked processes do not
        inherit it, and the kernel drops it when this process dies, however it dies."""
        _disk(self.dir, lambda: self.dir.mkdir(parents=True, exist_ok=True))
        path = self.dir / LOCK
        fd = _disk(path, lambda: os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
                raise ResumeRefused(
                    f"{self.dir} is in use by another dart synth (pid {holder}); "
                    "wait for it to end, or use another run directory"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def lock_holder(self) -> int | None:
        """The pid of the process holding the run directory's lock (0 when it wrote none
        readable), or None when no process holds it. Creates nothing: a directory without a
        `.lock` has never been locked. Tests the lock by taking it for an instant, so from a
        process that holds it itself (POSIX locks are per process) it reads as free."""
        try:
            fd = os.open(self.dir / LOCK, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                return int(text) if text.isdigit() else 0
            return None
        finally:
            os.close(fd)  # releases the lock if it was taken

    def prepare(self, config: dict[str, Any], force: bool = False) -> bool:
        """Create the directory, or check that an existing run has the same meaning.

        Returns True when resuming. Raises ResumeRefused listing what differs, unless `force`.
        """
        _disk(self.dir, lambda: self.dir.mkdir(parents=True, exist_ok=True))
        cfg_path = self.dir / CONFIG
        resuming = self.exists()
        if cfg_path.exists():
            old = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
            diffs = meaning_diff(old, config)
            if diffs and not force:
                raise ResumeRefused(
                    f"{self.dir} holds a run made with a different config; resuming would mix "
                    "two runs in one pool:\n  "
                    + "\n  ".join(diffs)
                    + "\nUse another run directory, or --force to resume anyway."
                )
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8")
        _disk(cfg_path, lambda: _write_atomic(cfg_path, text))
        return resuming

    def load_pool(
        self, known_ids: Iterable[str], accumulator: QueryAccumulator | None = None
    ) -> PoolState:
        """Read the pool after cutting off a torn last line (`read_pool`); each record also
        goes to `accumulator` (the query-info counts)."""
        if not self.pool_path.exists():
            return PoolState()
        torn = _cut_torn_tail(self.pool_path)
        state = read_pool(
            self.pool_path, known_ids, None if accumulator is None else accumulator.add
        )
        state.torn_bytes = torn
        return state

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append whole lines with one write; the OS has them as soon as this returns."""
        if not records:
            return
        data = b"".join(dumps(r) for r in records)
        _disk(self.pool_path, lambda: self._write_pool(data))

    def _write_pool(self, data: bytes) -> None:
        if self._pool_fd is None:
            self._pool_fd = os.open(self.pool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._pool_fd, view)
            view = view[written:]

    def sync(self) -> None:
        if self._pool_fd is not None:
            _disk(self.pool_path, lambda: os.fsync(self._pool_fd))

    def write_query_info(self, rows: Iterable[dict[str, Any]]) -> None:
        path = self.dir / QUERY_INFO
        _disk(path, lambda: _write_atomic(path, b"".join(dumps(row) for row in rows)))

    def read_summary(self) -> dict[str, Any]:
        """The run summary (an empty one for a new run)."""
        path = self.dir / SUMMARY
        if not path.exists():
            return {"sessions": []}
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(path, None, f"not a readable run summary ({e})") from None
        if not isinstance(summary, dict) or not isinstance(summary.get("sessions"), list):
            raise InputError(path, None, "not a run summary (no list of sessions)")
        return summary

    def begin_session(
        self, session: dict[str, Any], prompt_format: dict[str, str] | None = None
    ) -> None:
        """Record a new session (outcome `running`); earlier sessions still `running` died
        without closing their record (the caller holds the lock) and are marked `killed`.
        `prompt_format` (the template's name and fingerprint) is recorded for the run."""
        summary = self.read_summary()
        if prompt_format is not None:
            summary["prompt_format"] = prompt_format
        for old in summary["sessions"]:
            if old.get("outcome") == RUNNING:
                old["outcome"] = KILLED
        summary["sessions"].append(session)
        self._summary = summary
        self._write_summary()

    def update_session(self, session: dict[str, Any], queries: dict[str, Any]) -> dict[str, Any]:
        """Replace this session's record and the run's query counts; returns the summary."""
        assert self._summary is not None, "begin_session first"
        self._summary["sessions"][-1] = session
        self._summary["queries"] = queries
        self._write_summary()
        return self._summary

    def _write_summary(self) -> None:
        summary = self._summary
        summary["totals"] = sum_sessions(summary["sessions"])
        path = self.dir / SUMMARY
        text = json.dumps(summary, indent=2).encode("utf-8") + b"\n"
        _disk(path, lambda: _write_atomic(path, text))

    def close(self) -> None:
        if self._pool_fd is not None:
            fd, self._pool_fd = self._pool_fd, None
            try:
                _disk(self.pool_path, lambda: os.fsync(fd))
            finally:
                os.close(fd)


def read_run_config(path: Path) -> dict[str, Any] | None:
    """A run directory's `config.yaml` as a mapping, for the commands that read a run without
    resuming it; None when there is none, InputError when it cannot be read or is no mapping."""
    if not path.exists():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(path, None, f"cannot read it ({e.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise InputError(path, None, "not a run config (expected a mapping)")
    return config


def read_pool(
    path: Path,
    known_ids: Iterable[str] | None,
    on_record: Callable[[dict[str, Any], int], None] | None = None,
) -> PoolState:
    """The verdicts of a pool's whole lines, without changing the file: a last line with no
    newline (a run writing it now, or killed while writing it) is left out and its size is
    `torn_bytes`. Every whole line must be a graded record of a known query (any query when
    `known_ids` is None), or the pool is reported as damaged (InputError: file, line, field).
    `on_record` sees each record."""
    state = PoolState()
    known = None if known_ids is None else set(known_ids)
    whole = whole_size(path)
    state.torn_bytes = path.stat().st_size - whole
    for lineno, raw in iter_jsonl_raw(path, whole):
        rec = parse_line(path, lineno, raw)
        qid = query_id_of(rec, path, lineno)
        if known is not None and qid not in known:
            raise InputError(path, lineno, f"unknown query_id {qid!r}", "query_id")
        correct = correct_of(rec, path, lineno)
        idx = sample_idx_of(rec, path, lineno)
        state.verdicts.setdefault(qid, []).append(correct)
        state.next_idx[qid] = max(state.next_idx.get(qid, 0), idx + 1)
        if on_record is not None:
            on_record(rec, lineno)
    return state


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def _disk(path: Path, op: Callable[[], _T]) -> _T:
    """Run a file operation of the run directory; an OSError becomes a RunDirError."""
    try:
        return op()
    except OSError as e:
        raise RunDirError(f"{path}: cannot write the run directory: {e.strerror or e}") from e


# Session fields summed over sessions in the summary's totals.
_SUMMED = (
    "seconds",
    "samples_started",
    "samples_finished",
    "samples_cancelled",
    "samples_late",
    "pool_lines_written",
    "correct_written",
    "tokens_generated",
    "requests",
    "engine_start_seconds",
)


def sum_sessions(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every session of a run (what `run_summary.json` calls `totals`)."""
    tot: dict[str, Any] = {k: 0 for k in _SUMMED}
    grader: dict[str, int] = {}
    for s in sessions:
        for k in _SUMMED:
            tot[k] += s.get(k, 0) or 0
        for k, v in (s.get("grader") or {}).items():
            grader[k] = grader.get(k, 0) + v
    tot["seconds"] = round(tot["seconds"], 3)
    tot["engine_start_seconds"] = round(tot["engine_start_seconds"], 3)
    tot["tokens_per_s"] = (
        round(tot["tokens_generated"] / tot["seconds"], 2) if tot["seconds"] else 0
    )
    tot["grader"] = grader
    tot["sessions"] = len(sessions)
    return tot


def _cut_torn_tail(path: Path) -> int:
    """Truncate a file that does not end with a newline back to its last newline."""
    size = path.stat().st_size
    keep = whole_size(path)
    if keep == size:
        return 0
    with open(path, "rb+") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep
