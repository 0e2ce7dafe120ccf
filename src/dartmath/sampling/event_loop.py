"""The event loop the fleet client runs on: asyncio's, with a selector that gathers wake-ups.

A streamed completion reaches the client in several pieces (its headers, then its samples as
they finish), and each piece that finds the loop idle wakes it up. A wake-up costs more CPU than
the few lines that handle a piece, so the client's CPU grows with the number of pieces rather
than with the work in them. `PacedSelector` lets an idle loop look at its sockets at most every
`interval` seconds: whatever arrived in between is handled after one wake-up. A loop with work
ready (callbacks to run) never waits, and a timer fires no later than it would have: only time
the loop would have spent blocked is used for gathering.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from collections.abc import Callable
from typing import Any


class PacedSelector(selectors.DefaultSelector):
    """A selector whose blocking polls come at most `interval` seconds apart."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._polled = -math.inf  # when the last poll returned

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        # timeout 0 (work is ready: the loop only looks) never waits
        wait = self._polled + self.interval - self._clock()
        if timeout is not None:
            wait = min(wait, timeout)  # a timer is due first
        if wait > 0:
            self._sleep(wait)
            if timeout is not None:
                timeout -= wait
        ready = super().select(timeout)
        self._polled = self._clock()
        return ready


class PacedEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop on a `PacedSelector` (`poll_interval` seconds)."""

    def __init__(self, poll_interval: float) -> None:
        super().__init__(PacedSelector(poll_interval))
        self.poll_interval = poll_interval


def poll_interval(loop: asyncio.AbstractEventLoop) -> float | None:
    """The loop's poll interval; None for a loop that wakes at every arrival."""
    return loop.poll_interval if isinstance(loop, PacedEventLoop) else None
