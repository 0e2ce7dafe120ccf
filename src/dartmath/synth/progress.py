"""The `dart synth` progress bar: queries done out of total, samples, correct, tokens/s, ETA.

tqdm's own ETA extrapolates queries per second, which is meaningless here (easy queries finish
first); the ETA shown comes from the scheduler's expected remaining samples and the observed
rate of samples per second.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

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
    """Callable given to Pipeline as `on_progress`; redraws at most every `interval` seconds."""

    def __init__(self, total: int, initial: int, enabled: bool = True, interval: float = 0.5):
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="query",
            disable=not enabled,
            dynamic_ncols=True,
            bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} queries "
            "[{elapsed}{postfix}]",
        )
        self.interval = interval
        self._last = 0.0

    def __call__(self, p: Pipeline) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and not p.scheduler.done:
            return
        self._last = now
        done = sum(1 for st in p.scheduler.states() if st.stop_reason is not None)
        self.bar.n = done
        t = p.totals
        elapsed = max(p.elapsed(), 1e-9)
        rate = t.samples_finished / elapsed
        remaining = p.scheduler.expected_remaining_samples()
        eta = remaining / rate if rate > 0 else float("inf")
        note = getattr(p.sampler, "status", lambda: None)()
        self.bar.set_postfix_str(
            f"samples {t.pool_lines_written} correct {t.correct_written} "
            f"{t.tokens_generated / elapsed:.0f} tok/s ETA {_fmt_eta(eta)}"
            + (f" | {note}" if note else ""),
            refresh=False,
        )
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
