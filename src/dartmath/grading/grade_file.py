"""`dart grade`: re-grade a pool file, streaming, in order, written atomically."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dartmath.errors import InputError
from dartmath.grading.grader import Grader, GraderStats
from dartmath.io.jsonl import atomic_writer, dumps, iter_jsonl_raw, parse_line, write_jsonl
from dartmath.record import QueryAccumulator, gradable

MAX_REPORTED_BAD = 20


@dataclass
class GradeSummary:
    """Counts of one `dart grade` run, for the closing summary."""

    lines: int = 0
    correct: int = 0
    grader: GraderStats = field(default_factory=GraderStats)  # the grader's own counts
    skipped_bad: int = 0
    bad_messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def format(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        pct = 100.0 * self.correct / self.lines if self.lines else 0.0
        out = [
            f"graded        {self.lines:>10,d}   ({rate:,.0f} lines/s, {self.seconds:.1f} s)",
            f"correct       {self.correct:>10,d}   ({pct:.1f}%)",
            f"no answer     {self.grader.no_answer:>10,d}",
            f"timeouts      {self.grader.timeouts:>10,d}",
            f"errors        {self.grader.errors:>10,d}",
            f"judged        {self.grader.judged:>10,d}   (the rest came from the verdict cache)",
        ]
        if self.skipped_bad:
            out.append(f"skipped bad   {self.skipped_bad:>10,d}   (left out of the output)")
            out += [f"  {m}" for m in self.bad_messages]
            if self.skipped_bad > len(self.bad_messages):
                out.append(f"  ... and {self.skipped_bad - len(self.bad_messages)} more")
        return "\n".join(out)


def grade_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    workers: int = 1,
    timeout: float = 5.0,
    skip_bad: bool = False,
    query_info_path: str | os.PathLike | None = None,
    progress: bool = True,
) -> GradeSummary:
    """Grade every line of a pool; add `ans`, `correct` and `grade_error` (where there is one).

    Other fields and the line order are kept. The output is written to a temporary file and
    renamed at the end, so `output_path` may equal `input_path`, and a failed or killed run
    leaves the old file untouched. A bad line stops the run (InputError, nothing written)
    unless `skip_bad`, in which case it is counted, reported and left out.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(input_path, None, "no such file")
    if input_path.is_dir():
        raise InputError(input_path, None, "a directory, expected a pool JSONL file")
    summary = GradeSummary()
    held: deque[tuple[int, dict[str, Any]]] = deque()  # records waiting for their verdicts

    def items() -> Iterator[tuple[str, str]]:
        for lineno, raw in iter_jsonl_raw(input_path):
            try:
                rec = parse_line(input_path, lineno, raw)
                gt, resp = gradable(rec, input_path, lineno)
            except InputError as e:
                if not skip_bad:
                    raise
                summary.skipped_bad += 1
                if len(summary.bad_messages) < MAX_REPORTED_BAD:
                    summary.bad_messages.append(str(e))
                continue
            held.append((lineno, rec))
            yield gt, resp

    acc = QueryAccumulator(output_path) if query_info_path else None
    start = time.monotonic()
    bar = tqdm(desc="grading", unit=" lines", disable=not progress, dynamic_ncols=True)
    with Grader(workers=workers, timeout=timeout) as grader, atomic_writer(output_path) as out:
        for verdict in grader.grade_many(items()):
            lineno, rec = held.popleft()
            rec["ans"] = verdict.ans
            rec["correct"] = verdict.correct
            if verdict.error is not None:
                rec["grade_error"] = verdict.error
            else:
                rec.pop("grade_error", None)
            out.write(dumps(rec))
            summary.lines += 1
            summary.correct += verdict.correct
            if acc is not None:
                acc.add(rec, lineno)
            bar.update()
            if summary.lines % 1000 == 0:
                bar.set_postfix(correct=f"{summary.correct / summary.lines:.1%}", refresh=False)
        grader.close()
        summary.grader = grader.stats
    bar.close()
    if acc is not None:
        write_jsonl(query_info_path, acc.rows())
    summary.seconds = time.monotonic() - start
    return summary
