"""A sampler test double with scripted answers (beside the real-engine tests, never instead):
it makes interleavings deterministic and lets a test break the backend on purpose."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

from dartmath.sampling.base import Completion

# (prompt, k) -> the response text of the k-th sample drawn for that prompt; None: that sample
# never finishes (its request waits until it is cancelled)
Script = Callable[[str, int], str | None]


class ScriptedSampler:
    """Implements the Sampler protocol; each sample's text comes from `script`."""

    seed = None

    def __init__(self, script: Script, capacity: int = 12) -> None:
        self.script = script
        self.capacity = capacity
        self.counters: dict[str, itertools.count] = {}
        self.cancelled_requests = 0
        self.closed = False

    async def sample(self, request_id: str, prompt: str, n: int) -> AsyncIterator[Completion]:
        counter = self.counters.setdefault(prompt, itertools.count())
        try:
            for i in range(n):
                await asyncio.sleep(0)
                text = self.script(prompt, next(counter))
                if text is None:
                    await asyncio.Event().wait()
                yield Completion(i, text, 5, "stop")
        except asyncio.CancelledError:
            self.cancelled_requests += 1
            raise

    def tokenizer(self) -> Any:
        return None

    def status(self) -> str | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        self.closed = True
