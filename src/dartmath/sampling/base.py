"""What the synthesis loop needs from a sampler: n completions of a prompt, each delivered as soon
as it finishes, and a way to abort a request whose query no longer needs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Completion:
    """One finished sample: its text, how many tokens it took and why it ended."""

    index: int  # which of the request's n samples
    text: str
    n_tokens: int | None  # None: the backend does not say
    finish_reason: str | None  # "stop", "length", "abort", ...


class Sampler(Protocol):
    """A backend that samples completions: in-process vLLM, or a fleet of HTTP servers."""

    capacity: int  # samples worth keeping in flight to keep the backend busy

    def sample(self, request_id: str, prompt: str, n: int) -> AsyncIterator[Completion]:
        """Yield the request's completions one by one, in the order they finish."""
        ...

    async def abort(self, request_ids: list[str]) -> None:
        """Stop requests; their unfinished completions are never yielded."""
        ...
