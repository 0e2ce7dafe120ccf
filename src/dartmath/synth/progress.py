"""The progress of `dart synth`: queries done out of total, samples, correct, tokens/s, ETA.

On a terminal it is a tqdm bar. When stderr is not a terminal (a Slurm job, `nohup`, a pipe to a
file), a bar would write one endless line of carriage returns; a plain line is written instead
every `log_every` seconds (`run.log_every`), and once at the end.

tqdm's own ETA extrapolates queries per second, which is meaningless here (easy queries finish
first); the ETA shown comes from the scheduler's expected remaining samples and the observed
rate of samples per second.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from dartmath.synth.pipeline import Pipeline


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class SynthProgress:
    """Callable given to Pipeline as `on_progress`; redraws the bar at most every `interval`
    seconds, or writes a plain line every `log_every` seconds when `stream` is no terminal."""

    def __init__(
        self,
        total: int,
        initial: int,
        enabled: bool = True,
        interval: float = 0.5,
        log_every: float = 30.0,
        stream: IO[str] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.plain = enabled and not _is_terminal(self.stream)
        self.total = total
        self.enabled = enabled
        self.interval = log_every if self.plain else interval
        self.bar = None
        if enabled and not self.plain:
            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="query",
                file=self.stream,
                dynamic_ncols=True,
                bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} queries "
                "[{elapsed}{postfix}]",
            )
        self._last = time.monotonic() if self.plain else 0.0

    def __call__(self, p: Pipeline) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = bool(p.totals.ended_at)  # the pipeline's last call
        if now - self._last < self.interval and not final:
            return
        self._last = now
        done = sum(1 for st in p.scheduler.states() if st.stop_reason is not None)
        t = p.totals
        elapsed = max(p.elapsed(), 1e-9)
        rate = t.samples_finished / elapsed
        remaining = p.scheduler.expected_remaining_samples()
        eta = remaining / rate if rate > 0 else float("inf")
        note = p.sampler.status()
        figures = (
            f"samples {t.pool_lines_written} correct {t.correct_written} "
            f"{t.tokens_generated / elapsed:.0f} tok/s ETA {_fmt_eta(eta)}"
            + (f" | {note}" if note else "")
        )
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(figures, refresh=False)
            self.bar.refresh()
            return
        print(
            f"dart synth: {done}/{self.total} queries done, {figures}", file=self.stream, flush=True
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
