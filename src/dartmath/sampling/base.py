"""What the synthesis loop needs from a sampler: n completions of a prompt, each delivered as soon
as it finishes; the model's tokenizer for chat prompts; and what the run reports about it.

A request whose query no longer needs it is stopped by cancelling the task that iterates
`sample`: each backend then stops the work behind it (vLLM aborts the request; an HTTP server
aborts one whose client has gone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


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
    seed: int | None  # the sampling seed of this session, when the backend has one

    def sample(self, request_id: str, prompt: str, n: int) -> AsyncIterator[Completion]:
        """Yield the request's completions one by one, in the order they finish."""
        ...

    def tokenizer(self) -> Any:
        """The model's tokenizer (for the `chat` template), or None when there is none."""
        ...

    def status(self) -> str | None:
        """A short note for the progress line while something is wrong, else None."""
        ...

    def stats(self) -> dict[str, Any]:
        """Backend accounting for the run summary (empty when there is nothing to say)."""
        ...

    async def aclose(self) -> None:
        """Stop the backend's engine, connections and tasks."""
        ...
