"""The run directory of `dart synth`: what it writes, and how a run resumes from it.

```
RUN_DIR/
  config.yaml        the resolved config that produced the run
  pool.jsonl         one line per graded response, appended as it is graded
  query_info.jsonl   one line per query, rewritten atomically
  run_summary.json   totals of every session (samples, tokens, time, grader accounting)
```
`pool.jsonl` is the only source of truth: each line is written whole with one `write` call
and flushed at once, so a process killed at any moment (Ctrl-C, kill -9, a crash) leaves every
finished line in the file and at most one torn last line, which resuming cuts off. Everything
else is rebuilt from the pool on resume.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dartmath.io.jsonl import InputError, atomic_writer, dumps, iter_jsonl_raw, parse_line
from dartmath.stats import QueryAccumulator
from dartmath.synth.config import meaning_diff

CONFIG = "config.yaml"
POOL = "pool.jsonl"
QUERY_INFO = "query_info.jsonl"
SUMMARY = "run_summary.json"


class ResumeRefused(RuntimeError):
    """The run directory holds a run with a different meaning (model, queries, prompt...)."""


@dataclass
class PoolState:
    """What an existing pool says: each query's verdicts in pool order and its next index."""

    verdicts: dict[str, list[bool]] = field(default_factory=dict)
    next_idx: dict[str, int] = field(default_factory=dict)
    n_lines: int = 0
    torn_bytes: int = 0  # size of the cut-off last line, 0 when the file ended cleanly
    tokens: int = 0


class RunStore:
    """Owns one run directory: config check, pool appends, query-info and summary rewrites."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        self.pool_path = self.dir / POOL
        self._pool_fd: int | None = None

    def exists(self) -> bool:
        return (self.dir / CONFIG).exists() or self.pool_path.exists()

    def prepare(self, config: dict[str, Any], force: bool = False) -> bool:
        """Create the directory, or check that an existing run has the same meaning.

        Returns True when resuming. Raises ResumeRefused listing what differs, unless `force`.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
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
        with atomic_writer(cfg_path) as f:
            f.write(yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8"))
        return resuming

    def load_pool(
        self, known_ids: Iterable[str], accumulator: QueryAccumulator | None = None
    ) -> PoolState:
        """Read the pool, cutting off a torn last line; every other line must be whole and
        belong to a known query, or the pool is reported as damaged (file, line, field).
        Each record also goes to `accumulator` (the query-info counts)."""
        state = PoolState()
        if not self.pool_path.exists():
            return state
        state.torn_bytes = _cut_torn_tail(self.pool_path)
        known = set(known_ids)
        path = self.pool_path
        for lineno, raw in iter_jsonl_raw(path):
            rec = parse_line(path, lineno, raw)
            qid = rec.get("query_id")
            if not isinstance(qid, str) or qid not in known:
                raise InputError(path, lineno, f"unknown query_id {qid!r}", "query_id")
            correct = rec.get("correct")
            if not isinstance(correct, bool):
                raise InputError(path, lineno, "missing or not a boolean", "correct")
            idx = rec.get("sample_idx")
            if not isinstance(idx, int):
                raise InputError(path, lineno, "missing or not an integer", "sample_idx")
            state.verdicts.setdefault(qid, []).append(correct)
            state.next_idx[qid] = max(state.next_idx.get(qid, 0), idx + 1)
            state.tokens += int(rec.get("n_tokens") or 0)
            state.n_lines += 1
            if accumulator is not None:
                accumulator.add(rec, lineno)
        return state

    def iter_pool(self) -> Iterator[dict[str, Any]]:
        for lineno, raw in iter_jsonl_raw(self.pool_path):
            yield parse_line(self.pool_path, lineno, raw)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append whole lines with one write; the OS has them as soon as this returns."""
        if not records:
            return
        if self._pool_fd is None:
            self._pool_fd = os.open(self.pool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        data = b"".join(dumps(r) for r in records)
        view = memoryview(data)
        while view:
            written = os.write(self._pool_fd, view)
            view = view[written:]

    def sync(self) -> None:
        if self._pool_fd is not None:
            os.fsync(self._pool_fd)

    def write_query_info(self, rows: Iterable[dict[str, Any]]) -> None:
        with atomic_writer(self.dir / QUERY_INFO) as f:
            for row in rows:
                f.write(dumps(row))

    def read_summary(self) -> dict[str, Any]:
        path = self.dir / SUMMARY
        if not path.exists():
            return {"sessions": []}
        return json.loads(path.read_text(encoding="utf-8"))

    def write_summary(self, summary: dict[str, Any]) -> None:
        with atomic_writer(self.dir / SUMMARY) as f:
            f.write(json.dumps(summary, indent=2).encode("utf-8") + b"\n")

    def close(self) -> None:
        if self._pool_fd is not None:
            os.fsync(self._pool_fd)
            os.close(self._pool_fd)
            self._pool_fd = None


def _cut_torn_tail(path: Path) -> int:
    """Truncate a file that does not end with a newline back to its last newline."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        pos, chunk = size, 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
