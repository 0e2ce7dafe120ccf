"""What a `dart synth` invocation did, and the text it prints at the end: where the outputs
are, what this session did, how far to trust the verdicts, and the `dart stats` summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dartmath.stats import format_cut_short, load_report
from dartmath.synth.pipeline import SessionTotals
from dartmath.synth.store import CONFIG, POOL, QUERY_INFO, SUMMARY


@dataclass
class SynthOutcome:
    """What a `dart synth` invocation did, for the CLI to print."""

    run_dir: str
    resumed: bool
    outcome: str  # done | interrupted | nothing-to-do
    session: SessionTotals | None
    summary: dict[str, Any]
    engine_start_seconds: float = 0.0


def format_outcome(o: SynthOutcome, top: int = 10) -> str:
    """The closing text: outputs, this session's figures, the run's queries and its stats."""
    d = Path(o.run_dir)
    lines = [f"run directory: {d}" + (" (resumed)" if o.resumed else "")]
    for name in (POOL, QUERY_INFO, CONFIG, SUMMARY):
        if (d / name).exists():
            lines.append(f"  {d / name}")
    if o.outcome == "nothing-to-do":
        lines.append("every query had already stopped: nothing to sample")
    s = o.session
    if s is not None:
        lines += [
            "",
            f"this session: {s.outcome}, {s.seconds:.1f} s sampling "
            f"(+{o.engine_start_seconds:.1f} s engine start)",
            f"  samples   started {s.samples_started:,}  written {s.pool_lines_written:,}"
            f"  correct {s.correct_written:,}  cancelled in flight {s.samples_cancelled:,}"
            f"  graded past their query's stop {s.samples_late:,}",
            f"  tokens    {s.tokens_generated:,} generated, {s.tokens_per_s:,.1f} tokens/s",
        ]
    q = o.summary.get("queries")
    if q:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(q["stop_reasons"].items()))
        lines += [
            f"grader (whole run): {q['pool_lines']:,} responses graded, "
            f"{q['no_answer']:,} with no answer found, {q['grade_errors']:,} grading errors "
            f"(timeouts and failures count as incorrect)",
            f"queries: {q['queries']:,} ({reasons})",
        ]
        if "cut_short" in q:  # summaries written before it have none
            lines.append(f"cut short by a cap: {format_cut_short(q['cut_short'])}")
    if (d / POOL).exists():  # the pool alone: the cap figures are the line above
        lines += ["", load_report(d / POOL).format(top=top)]
    return "\n".join(lines)
