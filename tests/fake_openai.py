"""A small in-process fake of an OpenAI-compatible server (vLLM's shape), scriptable per request.

It runs in the test's own event loop (aiohttp.web on 127.0.0.1), answers `GET /v1/models`,
`GET /health` and `POST /v1/completions` with `n` choices (streamed as server-sent events when
the request says `stream: true`, as vLLM does), and can be told what to do with the next
requests of each route: answer an error status, drop the connection, never answer, stall part
way through a stream, or send an unreadable body. It counts what it receives, so tests synchronise on its counters instead of on sleeps.
Each normal answer is numbered and names its server, so a test can tell which server and which
attempt every yielded completion came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

ROUTES = ("models", "completions", "health")

DEFAULT_MESSAGES = {
    400: "This model's maximum context length is 2048 tokens; the request has 4096",
    401: "Unauthorized",
    403: "Forbidden",
    404: "The model `nope` does not exist.",
    429: "Too many requests: the server is at capacity",
    500: "Internal server error",
    503: "Service unavailable: the engine is restarting",
}


@dataclass(frozen=True)
class Ok:
    """Answer normally."""


@dataclass(frozen=True)
class Status:
    """Answer `code` with an OpenAI-style error body `{"error": {"message": ...}}`."""

    code: int
    message: str | None = None

    def text(self) -> str:
        return self.message or DEFAULT_MESSAGES.get(self.code, f"error {self.code}")


@dataclass(frozen=True)
class Drop:
    """Close the connection without an answer: before any byte, or after the headers and a
    first part of the body (`when="after_headers"`; a streamed answer: its first sample whole)."""

    when: str = "before"


@dataclass(frozen=True)
class Hang:
    """Never answer (until the client goes away or the server stops)."""


@dataclass(frozen=True)
class Stall:
    """Stream the first `after` samples of the answer whole, then send nothing more (a hung
    engine behind a live API server)."""

    after: int = 0


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with a body that is not a completion (unreadable JSON by default)."""

    body: bytes = b'{"choices": [{"index": 0, "te'


Action = Ok | Status | Drop | Hang | Stall | Malformed


class FakeOpenAI:
    """One fake server. `await start()`, script it, read its counters, `await stop()`."""

    def __init__(
        self,
        name: str = "fake",
        model: str = "fake-model",
        *,
        port: int = 0,
        api_key: str | None = None,
        keep_alive: bool = True,
    ) -> None:
        self.name = name
        self.model = model
        self.port = port  # 0: a free port, chosen at start
        self.api_key = api_key  # when set, other keys get vLLM's 401 {"error": "Unauthorized"}
        # False: every answer says `Connection: close`, so the client keeps no idle connection
        # here (one that would fail as stale, not as refused, once the server is stopped)
        self.keep_alive = keep_alive
        self.counts = dict.fromkeys(ROUTES, 0)  # requests received per route
        self.log: list[str] = []  # the route of every request received, in order
        self.bodies: list[dict[str, Any]] = []  # every completion request's JSON body
        self.headers: list[dict[str, str]] = []  # every completion request's headers
        self.answered = 0  # normal completion answers sent
        self.disconnects = 0  # requests whose client left before their answer was sent
        self.inflight = 0  # completion requests being handled right now
        self._queues: dict[str, deque[Action]] = {r: deque() for r in ROUTES}
        self._defaults: dict[str, Action] = dict.fromkeys(ROUTES, Ok())
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ---- life cycle ----
    async def start(self) -> FakeOpenAI:
        """Listen on 127.0.0.1 (on `port`, or a free one) and return self."""
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/health", self._health)
        # handler_cancellation: a handler whose client has gone is cancelled (vLLM aborts such
        # a request), which is how a hanging answer ends and how a disconnect is counted
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection: the port refuses connections after."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def completions(self) -> int:
        """Completion requests received (answered or not)."""
        return self.counts["completions"]

    @property
    def health(self) -> int:
        """Health checks received."""
        return self.counts["health"]

    @property
    def models(self) -> int:
        """Model listings received: the start-up check and every probe."""
        return self.counts["models"]

    # ---- scripting ----
    def script(self, *actions: Action, route: str = "completions") -> None:
        """What the next requests of `route` get, one action each, in order."""
        self._queues[route].extend(actions)

    def fail(
        self, code: int, times: int = 1, message: str | None = None, route: str = "completions"
    ) -> None:
        """Answer the next `times` requests of `route` with status `code`."""
        self.script(*[Status(code, message)] * times, route=route)

    def set_default(self, action: Action, route: str = "completions") -> None:
        """What requests of `route` get once the script is used up (`Ok()`: answer normally)."""
        self._defaults[route] = action

    def clear(self) -> None:
        """Forget every script and default: answer normally from now on."""
        for route in ROUTES:
            self._queues[route].clear()
            self._defaults[route] = Ok()

    async def wait_for(self, pred: Callable[[FakeOpenAI], bool], timeout: float = 5.0) -> None:
        """Wait until `pred(self)` holds; it is checked whenever a request arrives or a client
        leaves."""

        async def until() -> None:
            while not pred(self):
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    # ---- handlers ----
    def _bump(self) -> None:
        """Wake `wait_for`: a counter changed."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _next(self, route: str) -> Action:
        self.counts[route] += 1
        self.log.append(route)
        self._bump()
        queue = self._queues[route]
        return queue.popleft() if queue else self._defaults[route]

    def _refused_key(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return web.json_response({"error": "Unauthorized"}, status=401)  # what vLLM sends

    async def _models(self, request: web.Request) -> web.StreamResponse:
        action = self._next("models")
        denied = self._refused_key(request)
        if denied is not None:
            return denied
        body = {
            "object": "list",
            "data": [
                {
                    "id": self.model,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "vllm",
                    "root": self.model,
                    "parent": None,
                    "max_model_len": 2048,
                    "permission": [],
                }
            ],
        }
        return await self._act(request, action, body)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, self._next("health"), None)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        self.inflight += 1
        try:
            self.headers.append(dict(request.headers))
            data = await request.json()
            self.bodies.append(data)
            action = self._next("completions")
            denied = self._refused_key(request)
            if denied is not None:
                return denied
            before = isinstance(action, Status | Hang) or action == Drop("before")
            if data.get("stream") and not before:
                return await self._stream(request, data, action)
            return await self._act(request, action, lambda: self._answer(data))
        finally:
            self.inflight -= 1

    async def _act(self, request: web.Request, action: Action, body: Any) -> web.StreamResponse:
        """Carry out `action`; `body` is the normal answer (or makes it, when callable)."""
        if isinstance(action, Drop):
            if action.when == "after_headers":
                resp = web.StreamResponse(headers={"Content-Length": "4096"})
                resp.content_type = "application/json"
                await resp.prepare(request)
                await resp.write(b'{"id": "cmpl-dropped", "choices": [')
            request.transport.close()
            return await self._until_gone()
        if isinstance(action, Hang | Stall):  # a hung engine answers nothing, streamed or not
            return await self._until_gone()
        if isinstance(action, Status):
            error = {"message": action.text(), "type": "Error", "param": None, "code": action.code}
            resp = web.json_response({"error": error}, status=action.code)
        elif isinstance(action, Malformed):
            resp = web.Response(body=action.body, content_type="application/json")
        elif body is None:
            resp = web.Response()
        else:
            resp = web.json_response(body() if callable(body) else body)
        if not self.keep_alive:
            resp.force_close()
        return resp

    async def _until_gone(self) -> web.StreamResponse:
        """Wait until the handler is cancelled (the client left or the server stops)."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.disconnects += 1
            self._bump()
            raise
        raise AssertionError("unreachable")

    async def _stream(
        self, request: web.Request, data: dict[str, Any], action: Action
    ) -> web.StreamResponse:
        """The answer as vLLM streams it: two deltas per sample, the samples interleaved (the
        second delta carries the finish reason), a usage event, `[DONE]`. `Stall` and `Drop`
        stop after some samples; `Malformed` sends its body as the one event."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if not self.keep_alive:
            resp.force_close()
        await resp.prepare(request)
        if isinstance(action, Malformed):
            await resp.write(b"data: " + action.body + b"\n\ndata: [DONE]\n\n")
            await resp.write_eof()
            return resp
        answer = self._answer(data)
        choices = answer["choices"]
        stall_after = {Stall: getattr(action, "after", 0), Drop: 1}.get(type(action))

        async def send(event: dict[str, Any]) -> None:
            await resp.write(b"data: " + json.dumps(event).encode() + b"\n\n")

        order = [c for c in choices if stall_after is None or c["index"] < stall_after]
        for part in (0, 1):
            for c in order:
                cut = len(c["text"]) // 2
                delta = {
                    "index": c["index"],
                    "text": c["text"][cut:] if part else c["text"][:cut],
                    "finish_reason": c["finish_reason"] if part else None,
                }
                if "token_ids" in c:
                    half = len(c["token_ids"]) // 2
                    ids = c["token_ids"]
                    delta["token_ids"] = ids[half:] if part else ids[:half]
                    if not part:
                        delta["prompt_token_ids"] = c["prompt_token_ids"]
                await send({"id": answer["id"], "object": "text_completion", "choices": [delta]})
        if isinstance(action, Drop):
            request.transport.close()
        if stall_after is not None:
            return await self._until_gone()
        if (data.get("stream_options") or {}).get("include_usage"):
            await send({"id": answer["id"], "choices": [], "usage": answer["usage"]})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _answer(self, data: dict[str, Any]) -> dict[str, Any]:
        """A completion in vLLM's shape: `n` choices, `token_ids` when asked for."""
        self.answered += 1
        self._bump()
        n = int(data.get("n", 1))
        serial = f"{self.name}#{self.answered}"
        choices = []
        total = 0
        for i in range(n):
            text = f" answer {serial} sample {i}" + " more" * i  # sample i has 4 + i tokens
            ids = [1000 + k for k in range(4 + i)]
            total += len(ids)
            choice: dict[str, Any] = {
                "index": i,
                "text": text,
                "logprobs": None,
                "finish_reason": "stop" if i % 2 == 0 else "length",
                "stop_reason": None,
                "prompt_logprobs": None,
            }
            if data.get("return_token_ids"):
                choice["token_ids"] = ids
                choice["prompt_token_ids"] = [1, 2, 3]
            choices.append(choice)
        prompt_tokens = len(str(data.get("prompt", "")).split())
        return {
            "id": f"cmpl-{serial}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": data.get("model", self.model),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": total,
                "total_tokens": prompt_tokens + total,
                "prompt_tokens_details": None,
            },
            "kv_transfer_params": None,
        }


@contextlib.contextmanager
def refusing_url() -> Iterator[str]:
    """The URL of a port that refuses connections: bound (so nobody else takes it), never
    listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
