"""A streamed `/v1/completions` answer read into finished samples (pure: bytes in, samples out).

With `stream: true` a server sends server-sent events, one `data: {json}` line each: deltas of
the request's `n` samples (text, and the generated token ids when `return_token_ids` is asked),
the last delta of a sample carrying its `finish_reason`; then, with `stream_options.include_usage`,
a usage-only event; then `data: [DONE]`. A sample is handed on as soon as its last delta is in,
as the in-process engine does. An error the server meets after it has answered 200 arrives as
an event `{"error": {...}}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from dartmath.sampling.base import Completion

# The value of each `data:` line; blank separators, comments (": ping") and other fields
# (event:, id:) carry no data. One search per piece read instead of one step per line.
_DATA = re.compile(rb"^data:[ \t]*(.*?)[ \t\r]*$", re.MULTILINE)


class StreamError(Exception):
    """The server reported an error inside the stream."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class CompletionStream:
    """Feed the body's bytes as they arrive; get back the samples that finished.

    Token counts are exact when the server sends `token_ids` (vLLM with `return_token_ids`);
    otherwise a lone sample (`n = 1`) takes the usage event's count, and samples of a larger
    request have none (`n_tokens` None), as the server does not say per sample.
    """

    def __init__(self, n: int, numbers: Sequence[int] | None = None) -> None:
        """`numbers`: the sample numbers the request's `n` choices stand for (default 0..n-1);
        a retry that asks only for the missing samples reads back under their numbers."""
        self.n = n
        self._numbers = range(n) if numbers is None else numbers
        self.finished = 0
        self.done = False  # `data: [DONE]` was read
        self._texts: list[list[str]] = [[] for _ in range(n)]
        self._tokens = [0] * n
        self._counted = [False] * n  # token ids were sent for this sample
        self._over = [False] * n
        self._held: Completion | None = None  # n = 1 without token ids: waits for the usage
        self._tail = b""

    def feed(self, data: bytes) -> list[Completion]:
        """The samples whose last delta is in `data` (with what came before)."""
        buf = self._tail + data if self._tail else data
        end = buf.rfind(b"\n") + 1  # whole lines only; the rest waits for its end
        self._tail = buf[end:]
        out: list[Completion] = []
        if end:
            for payload in _DATA.findall(buf, 0, end):
                self._event(payload, out)
        return out

    def end(self) -> list[Completion]:
        """The body is over: what is still held back; an error if a sample never finished."""
        out = self.feed(b"\n") if self._tail else []
        if self.finished < self.n:
            raise ValueError(f"the stream ended with {self.finished} of {self.n} samples finished")
        return out + self._release(None)

    def _event(self, payload: bytes, out: list[Completion]) -> None:
        if payload == b"[DONE]":
            self.done = True
            out.extend(self._release(None))
            return
        event = orjson.loads(payload)
        if not isinstance(event, dict):
            raise TypeError("an event that is not a JSON object")
        error = event.get("error")
        if error is not None:
            raise _stream_error(error)
        for choice in event.get("choices") or ():
            self._delta(choice, out)
        usage = event.get("usage")
        if usage and isinstance(usage.get("completion_tokens"), int):
            out.extend(self._release(usage["completion_tokens"]))

    def _delta(self, choice: dict[str, Any], out: list[Completion]) -> None:
        i = choice["index"]
        if not isinstance(i, int) or not 0 <= i < self.n:
            raise ValueError(f"a sample index {i!r} outside the request's {self.n}")
        if self._over[i]:
            raise ValueError(f"sample {i} went on after it finished")
        text = choice.get("text")
        if text:
            if not isinstance(text, str):
                raise TypeError("a delta whose text is not a string")
            self._texts[i].append(text)
        ids = choice.get("token_ids")
        if ids is not None:
            self._tokens[i] += len(ids)
            self._counted[i] = True
        reason = choice.get("finish_reason")
        if reason is None:
            return
        self._over[i] = True
        self.finished += 1
        n_tokens = self._tokens[i] if self._counted[i] else None
        comp = Completion(self._numbers[i], "".join(self._texts[i]), n_tokens, reason)
        self._texts[i] = []
        if n_tokens is None and self.n == 1:
            self._held = comp
        else:
            out.append(comp)

    def _release(self, n_tokens: int | None) -> list[Completion]:
        comp, self._held = self._held, None
        if comp is None:
            return []
        return [Completion(comp.index, comp.text, n_tokens, comp.finish_reason)]


def _stream_error(error: Any) -> StreamError:
    if isinstance(error, dict):
        code = error.get("code")
        return StreamError(
            str(error.get("message", error))[:500], code if isinstance(code, int) else None
        )
    return StreamError(str(error)[:500], None)
