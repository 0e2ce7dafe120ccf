"""A fleet of OpenAI-compatible inference servers (vLLM, SGLang, ...) as one sampler.

Each request is one streamed `/v1/completions` call with `n` samples; each sample is handed on
as soon as it finishes, as in process. The prompt is rendered here, by the same template code as
the in-process engine, so a config gives the same prompts on either backend. Requests go to the
server with the fewest outstanding samples for its limit (`endpoints.Fleet`). Timeouts, refused
connections, 429 and 5xx answers are retried with jittered backoff, on another server where
there is one; a server that keeps failing is set aside and probed until it answers again; with
every server down, requests wait (and the progress bar says so). A retry asks only for the
samples still missing, so a failed attempt loses nothing and a retried one duplicates nothing.

A server that holds samples of ours and sends nothing for `idle_timeout` seconds is stalled: its
requests are given up and move to other servers at once, and it is set aside until a probe gets
a completion through. A server whose `/health` answers 503 (vLLM: its engine is dead) is set
aside the same way and reported as such.

A cancelled request closes its connection; vLLM's server aborts a request whose client has
gone, so a query that met its target stops costing server time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from dartmath.errors import BackendError
from dartmath.sampling.base import Completion
from dartmath.sampling.completion_stream import CompletionStream, StreamError
from dartmath.sampling.endpoints import Endpoint, Fleet, RetryPolicy
from dartmath.sampling.event_loop import poll_interval

log = logging.getLogger(__name__)

# Statuses worth another attempt: the server is busy, restarting or behind a failing proxy.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


# vLLM's `/health` status when its engine has died (the API server may answer for a while)
ENGINE_DEAD_STATUS = 503


class _Transient(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, message: str, *, refused: bool = False, given_up: bool = False) -> None:
        super().__init__(message)
        self.refused = refused  # nobody listens there: set the endpoint aside at once
        self.given_up = given_up  # its server is set aside already: retry elsewhere at once


class _Attempt:
    """One try of a request on one endpoint, and how a stall, a dead engine or
    request_timeout interrupts it wherever it waits: while the response headers are awaited
    its timeout fires at once; afterwards its connection is closed, so that the next read
    fails (the samples already read are kept)."""

    __slots__ = ("ep", "reason", "resp", "headers_wait")

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.reason: _Transient | None = None  # why it was interrupted
        self.resp: Any = None
        self.headers_wait: asyncio.Timeout | None = None

    def interrupt(self, reason: _Transient) -> None:
        if self.reason is not None:
            return  # interrupted already (a stall, then its request_timeout)
        self.reason = reason
        if self.resp is not None:
            self.resp.close()
        elif self.headers_wait is not None:
            self.headers_wait.reschedule(asyncio.get_running_loop().time())


@dataclass
class HTTPOptions:
    """What the fleet client needs besides the endpoints themselves."""

    served_model_name: str | None = None  # None: the one model every endpoint serves
    api_key: str | None = None
    limit_per_endpoint: int = 256  # samples in flight per server
    connect_timeout: float = 10.0
    request_timeout: float = 1800.0  # one whole completion request, queueing included
    # A server holding samples of ours that sends nothing for this long is stalled
    # (None: no stall detection; a request then waits up to request_timeout).
    idle_timeout: float | None = 30.0
    stream_interval: int = 16  # tokens per streamed delta (vLLM; fewer events, less client CPU)
    startup_timeout: float = 600.0  # wait this long for a first endpoint to answer
    token_ids: bool = True  # ask vLLM for the generated token ids (exact n_tokens per sample)
    # A random seed per request. Off by default: vLLM's CPU build kills its engine on a seeded
    # request under load ("CPU Generator does not use offset"), and on GPUs per-request
    # generators make vLLM fall back from its fast sampler kernels to a per-request loop.
    request_seed: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)
    policy: RetryPolicy = field(default_factory=RetryPolicy)


def normalise_endpoint(url: str) -> str:
    """`host:port`, `http://host:port/`, `http://host:port/v1` -> `http://host:port`."""
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("an empty endpoint URL")
    if "://" not in url:
        url = "http://" + url
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


class OpenAISampler:
    """Sample from OpenAI-compatible servers. Create with `await OpenAISampler.start(...)`."""

    def __init__(
        self,
        fleet: Fleet,
        session: Any,
        options: HTTPOptions,
        model_name: str,
        body: dict[str, Any],
        rng: random.Random,
        tokenizer_source: str | None,
    ) -> None:
        self.fleet = fleet
        self._session = session
        self._options = options
        self.model_name = model_name
        self._body = body
        self._rng = rng
        self._tokenizer_source = tokenizer_source
        self._tokenizer: Any = None
        self._changed = asyncio.Event()
        self._probe_wake = asyncio.Event()
        self._background: list[asyncio.Task] = []
        self._health_checks: dict[str, asyncio.Task] = {}
        self._probes: dict[str, asyncio.Task] = {}
        # the attempts in flight, per endpoint URL: how a stall gives them up
        self._attempts: defaultdict[str, set[_Attempt]] = defaultdict(set)
        self._all_down_since: float | None = None
        self.capacity = fleet.capacity
        self.seed = None
        self.retries = 0
        # how often the loop it runs on looks at idle sockets: recorded in the run summary
        self.poll_interval = poll_interval(asyncio.get_running_loop())

    @classmethod
    async def start(
        cls,
        endpoints: list[str],
        sampling: dict[str, Any],
        options: HTTPOptions | None = None,
        *,
        add_special_tokens: bool = True,
        tokenizer_source: str | None = None,
        capacity: int | None = None,
    ) -> OpenAISampler:
        """Connect to the fleet: find the served model, set aside endpoints that do not
        answer (they are probed again later), and wait up to `startup_timeout` for a first one.

        `sampling` holds temperature, top_p, max_tokens and stop, as for the in-process engine.
        """
        options = options or HTTPOptions()
        urls = list(dict.fromkeys(normalise_endpoint(u) for u in endpoints))
        if not urls:
            raise ValueError("backend openai: no endpoints given")
        fleet = Fleet(
            [Endpoint(u, options.limit_per_endpoint) for u in urls], policy=options.policy
        )
        headers = {"Content-Type": "application/json"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        session = aiohttp.ClientSession(
            headers=headers,
            # uvicorn (vLLM's server) drops idle connections after 5 s: reusing one it has
            # just closed fails the request, so let them go sooner here
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=3.0),
            # a request's own limits (request_timeout, idle_timeout) are kept by the sampler
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=options.connect_timeout),
        )
        try:
            served = await _wait_for_fleet(session, fleet, options)
            model_name = _choose_model(served, options.served_model_name)
        except BaseException:
            await session.close()
            raise
        body: dict[str, Any] = {
            "model": model_name,
            **sampling,
            "stream": True,
            "stream_interval": options.stream_interval,
        }
        if body.get("stop") is None:
            body.pop("stop", None)
        if not add_special_tokens:
            body["add_special_tokens"] = False  # the chat template already holds the BOS
        if options.token_ids:
            body["return_token_ids"] = True
        body.update(options.extra_body)
        sampler = cls(fleet, session, options, model_name, body, random.Random(), tokenizer_source)
        if capacity is not None:
            sampler.capacity = capacity
        sampler._background.append(asyncio.create_task(sampler._probe_loop()))
        if options.idle_timeout is not None:
            sampler._background.append(
                asyncio.create_task(sampler._watch_loop(options.idle_timeout))
            )
        up = [ep.url for ep in fleet.endpoints if ep.healthy]
        log.info("openai backend: model %s on %d of %d endpoints", model_name, len(up), len(urls))
        return sampler

    # ---- the Sampler interface ----
    async def sample(self, request_id: str, prompt: str, n: int) -> AsyncIterator[Completion]:
        todo = list(range(n))  # the request's samples not finished yet
        payload = self._payload(prompt, n)
        tries = 0
        avoid: Endpoint | None = None
        while True:
            k = len(todo)
            ep = self.fleet.pick(k, avoid)
            if ep is None:
                self._note_all_down()
                await self._wait_for_change()
                continue
            self.fleet.acquire(ep, k, time.monotonic())
            attempt = _Attempt(ep)
            self._attempts[ep.url].add(attempt)
            loop = asyncio.get_running_loop()
            timer = loop.call_at(loop.time() + self._options.request_timeout, self._late, attempt)
            done: set[int] = set()
            failure: _Transient | None = None
            try:
                async with contextlib.aclosing(self._stream(attempt, payload, todo)) as samples:
                    async for comp in samples:
                        self.fleet.on_sample(ep)
                        done.add(comp.index)
                        yield comp
            except _Transient as e:
                failure = e
            finally:
                timer.cancel()
                self._attempts[ep.url].discard(attempt)
                self.fleet.release(ep, k - len(done))  # a waiting request holds no slot
                if failure is not None:
                    self._on_failure(ep, failure)
                self._notify()
            if failure is None:
                self.fleet.on_success(ep)
                self._note_up()
                return
            if done:  # ask only for the samples still missing
                todo = [i for i in todo if i not in done]
                payload = self._payload(prompt, len(todo))
            tries += 1
            self.retries += 1
            avoid = ep
            if failure.given_up:
                log.debug("%s: %s; retrying elsewhere", request_id, failure)
                continue
            delay = self.fleet.policy.delay(tries, self._rng)
            log.debug("%s: %s; retry %d in %.1f s", request_id, failure, tries, delay)
            await asyncio.sleep(delay)

    def _payload(self, prompt: str, n: int) -> bytes:
        body = dict(self._body, prompt=prompt, n=n)
        if n == 1:
            # the usage event gives a lone sample its token count on a server that sends no
            # token ids; for more samples it has only their sum: not worth an event
            body["stream_options"] = {"include_usage": True}
        if self._options.request_seed:
            # vLLM seeds sample i of a request with seed + i: draw from a wide range so that
            # two requests of one query practically never overlap
            body["seed"] = self._rng.randrange(1 << 62)
        return orjson.dumps(body)

    def tokenizer(self) -> Any:
        """The model's tokenizer, for the `chat` template (loaded on first use)."""
        if self._tokenizer is None and self._tokenizer_source:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_source)
        return self._tokenizer

    def status(self) -> str | None:
        """A short note for the progress bar while no endpoint is up."""
        if self._all_down_since is None:
            return None
        waited = time.monotonic() - self._all_down_since
        return f"all {len(self.fleet.endpoints)} endpoints down, waiting {waited:.0f} s"

    def stats(self) -> dict[str, Any]:
        return {
            "poll_interval": self.poll_interval,
            "retries": self.retries,
            "endpoints": [ep.summary() for ep in self.fleet.endpoints],
        }

    async def aclose(self) -> None:
        tasks = [*self._background, *self._health_checks.values(), *self._probes.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._session.close()

    # ---- one attempt ----
    async def _stream(
        self, attempt: _Attempt, payload: bytes, numbers: list[int]
    ) -> AsyncIterator[Completion]:
        """The attempt's samples as they finish, under their sample `numbers`; what fails is
        raised as `_Transient` (retry) or `BackendError` (stop the run)."""
        ep = attempt.ep
        stream = CompletionStream(len(numbers), numbers)
        try:
            # no timeout may span a `yield`: it would fire in whatever the consumer awaits
            async with asyncio.timeout(None) as attempt.headers_wait:
                if attempt.reason is not None:
                    raise attempt.reason
                resp = await self._session.post(f"{ep.url}/v1/completions", data=payload)
            attempt.headers_wait = None
            attempt.resp = resp
            try:
                if resp.status != 200:
                    raise _refusal(ep, resp.status, await resp.read())
                if resp.content_type != "text/event-stream":
                    raise BackendError(
                        f"{ep.url}/v1/completions answered {resp.content_type} to a streamed "
                        "request (stream: true): dart needs a server that streams completions"
                    )
                async for data in resp.content.iter_any():
                    ep.last_heard = time.monotonic()
                    for comp in stream.feed(data):
                        yield comp
                for comp in stream.end():
                    yield comp
            finally:
                resp.release()  # closes the connection unless the answer is whole: vLLM aborts
        except aiohttp.ClientConnectorError as e:
            raise attempt.reason or _Transient(
                f"{ep.url}: cannot connect: {_os_reason(e)}", refused=True
            ) from None
        except (aiohttp.ClientError, OSError) as e:  # OSError holds TimeoutError
            raise attempt.reason or _Transient(f"{ep.url}: {_describe(e)}") from None
        except StreamError as e:
            if e.code is not None and 400 <= e.code < 500 and e.code not in RETRY_STATUSES:
                raise BackendError(f"{ep.url}/v1/completions: {e} (HTTP {e.code})") from None
            raise _Transient(f"{ep.url}: an error in the answer: {e}") from None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise _Transient(f"{ep.url}: unreadable answer ({e})") from None

    def _late(self, attempt: _Attempt) -> None:
        limit = self._options.request_timeout
        attempt.interrupt(
            _Transient(
                f"{attempt.ep.url}: no whole answer within {limit:g} s (backend.request_timeout)"
            )
        )

    def _on_failure(self, ep: Endpoint, failure: _Transient) -> None:
        error = str(failure)
        if self.fleet.on_failure(ep, error, time.monotonic(), at_once=failure.refused):
            log.warning(
                "endpoint %s set aside after %s; probing it again in %.0f s",
                ep.url,
                error,
                ep.cooldown,
            )
            self._probe_wake.set()
        if not failure.refused:
            self._check_health(ep)  # a dead engine is told apart from a passing fault

    def _give_up(self, ep: Endpoint, reason: str) -> None:
        """Give up every attempt in flight on `ep` (set aside already): they retry elsewhere."""
        for attempt in list(self._attempts.get(ep.url, ())):
            attempt.interrupt(_Transient(f"{ep.url}: {reason}", given_up=True))
        self._probe_wake.set()
        self._notify()

    async def _watch_loop(self, idle: float) -> None:
        """Find stalled endpoints: samples outstanding and no byte for `idle` seconds."""
        while True:
            await asyncio.sleep(idle / 4)
            now = time.monotonic()
            for ep in self.fleet.stalled(now, idle):
                error = (
                    f"stalled: nothing received for {now - ep.last_heard:.0f} s "
                    f"with {ep.outstanding} samples outstanding"
                )
                self.fleet.on_stall(ep, error, now)
                log.warning(
                    "endpoint %s %s; its requests go to other endpoints; probing it again "
                    "in %.0f s",
                    ep.url,
                    error,
                    ep.cooldown,
                )
                self._give_up(ep, error)
                self._check_health(ep)

    def _check_health(self, ep: Endpoint) -> None:
        """Ask the endpoint's `/health` in the background (one question at a time)."""
        if ep.url not in self._health_checks:
            self._health_checks[ep.url] = asyncio.create_task(self._health_check(ep))

    async def _health_check(self, ep: Endpoint) -> None:
        try:
            status = await _health_status(self._session, ep, self._options.connect_timeout)
            if status == ENGINE_DEAD_STATUS:
                self._on_engine_dead(ep)
        finally:
            del self._health_checks[ep.url]

    def _on_engine_dead(self, ep: Endpoint) -> None:
        error = f"engine dead: GET /health answers HTTP {ENGINE_DEAD_STATUS}"
        if self.fleet.on_engine_dead(ep, error, time.monotonic()):
            log.warning(
                "endpoint %s: its engine is dead (GET /health answers HTTP %d); set aside, "
                "its requests go to other endpoints; probing it again in %.0f s",
                ep.url,
                ENGINE_DEAD_STATUS,
                ep.cooldown,
            )
            self._give_up(ep, error)

    # ---- health ----
    async def _probe_loop(self) -> None:
        """Probe set-aside endpoints when their cool-down ends (each in a task of its own: a
        stalled server's probe takes up to idle_timeout); bring back those that answer."""
        while True:
            for ep in self.fleet.due_for_probe(time.monotonic()):
                self.fleet.probe_started(ep)
                self._probes[ep.url] = asyncio.create_task(self._probe_once(ep))
            next_at = self.fleet.next_probe_at()
            self._probe_wake.clear()
            timeout = None if next_at is None else max(0.05, next_at - time.monotonic())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._probe_wake.wait(), timeout)

    async def _probe_once(self, ep: Endpoint) -> None:
        try:
            try:
                error = await self._probe(ep)
            except BackendError as e:
                error = str(e)
            if error is None:
                self.fleet.probe_succeeded(ep)
                log.warning("endpoint %s is back", ep.url)
                self._notify()
            else:
                self.fleet.probe_failed(ep, error, time.monotonic())
        finally:
            del self._probes[ep.url]
            self._probe_wake.set()

    async def _probe(self, ep: Endpoint) -> str | None:
        """None when the endpoint can take work again, else why not: its `/health` (a server
        without one passes), its model list, and after a stall a 1-token completion."""
        timeout = self._options.connect_timeout
        status = await _health_status(self._session, ep, timeout)
        if status == ENGINE_DEAD_STATUS:
            self._on_engine_dead(ep)
            return ep.last_error
        if isinstance(status, str):
            return status
        if status >= 500:
            return f"GET /health answers HTTP {status}"
        _, error = await _list_models(self._session, ep, timeout)
        if error is None and ep.stalled:
            error = await self._completes(ep)
        return error

    async def _completes(self, ep: Endpoint) -> str | None:
        """A 1-token completion within idle_timeout: None when it comes, else why not."""
        limit = self._options.idle_timeout or self._options.connect_timeout
        body = orjson.dumps({"model": self.model_name, "prompt": "1", "max_tokens": 1})
        answer = await _fetch(self._session, "POST", f"{ep.url}/v1/completions", limit, body)
        if isinstance(answer, str):
            return f"still stalled: a 1-token completion: {answer}"
        return None if answer[0] == 200 else f"a 1-token completion answered HTTP {answer[0]}"

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_for_change(self) -> None:
        await self._changed.wait()

    def _note_all_down(self) -> None:
        if self.fleet.all_down() and self._all_down_since is None:
            self._all_down_since = time.monotonic()
            errors = "; ".join(f"{ep.url}: {ep.last_error}" for ep in self.fleet.endpoints)
            log.warning("all endpoints are down (%s); waiting for one to come back", errors)

    def _note_up(self) -> None:
        if self._all_down_since is not None:
            log.warning("an endpoint is back after %.0f s", time.monotonic() - self._all_down_since)
            self._all_down_since = None


def _refusal(ep: Endpoint, status: int, raw: bytes) -> Exception:
    """What a completion answered with an error status means: retry, or stop the run."""
    if status in RETRY_STATUSES:
        return _Transient(f"{ep.url}: HTTP {status}: {_error_message(raw)}")
    return BackendError(
        f"{ep.url}/v1/completions answered HTTP {status}: {_error_message(raw)}"
        + (" (check the API key)" if status in (401, 403) else "")
    )


async def _fetch(
    session: Any, method: str, url: str, timeout: float, body: bytes | None = None
) -> tuple[int, bytes] | str:
    """A small request's (status, body) within `timeout` seconds, or why there is none."""
    try:
        async with session.request(
            method, url, data=body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            return resp.status, await resp.read()
    except aiohttp.ClientConnectorError as e:
        return f"cannot connect: {_os_reason(e)}"
    except (aiohttp.ClientError, OSError) as e:  # OSError holds TimeoutError
        return _describe(e)


async def _health_status(session: Any, ep: Endpoint, timeout: float) -> int | str:
    """The HTTP status of `GET /health`, or why there is none."""
    answer = await _fetch(session, "GET", f"{ep.url}/health", timeout)
    return f"GET /health: {answer}" if isinstance(answer, str) else answer[0]


async def _list_models(session: Any, ep: Endpoint, timeout: float) -> tuple[list[str], str | None]:
    answer = await _fetch(session, "GET", f"{ep.url}/v1/models", timeout)
    if isinstance(answer, str):
        return [], answer
    status, raw = answer
    if status in (401, 403):
        raise BackendError(
            f"{ep.url}/v1/models answered HTTP {status}: {_error_message(raw)} "
            "(check the API key: backend.api_key_env names the variable that holds it)"
        )
    if status != 200:
        return [], f"HTTP {status}: {_error_message(raw)}"
    try:
        return [m["id"] for m in orjson.loads(raw).get("data", [])], None
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return [], "not an OpenAI-compatible server (unreadable /v1/models)"


async def _wait_for_fleet(session: Any, fleet: Fleet, options: HTTPOptions) -> dict[str, list]:
    """Models served per reachable endpoint; waits (saying so) until at least one answers."""
    deadline = time.monotonic() + options.startup_timeout
    said = False
    while True:
        results = await asyncio.gather(
            *(_list_models(session, ep, options.connect_timeout) for ep in fleet.endpoints)
        )
        served = {}
        for ep, (models, error) in zip(fleet.endpoints, results, strict=True):
            if error is None:
                served[ep.url] = models
            else:
                ep.last_error = error
        if served:
            now = time.monotonic()
            for ep in fleet.endpoints:
                if ep.url not in served:
                    log.warning(
                        "endpoint %s does not answer (%s); it will be probed again",
                        ep.url,
                        ep.last_error,
                    )
                    fleet.on_failure(ep, ep.last_error or "unreachable", now, at_once=True)
            return served
        errors = "; ".join(f"{ep.url}: {ep.last_error}" for ep in fleet.endpoints)
        left = deadline - time.monotonic()
        if left <= 0:
            raise BackendError(
                f"no endpoint answered within {options.startup_timeout:g} s "
                f"(backend.startup_timeout): {errors}"
            )
        if not said:
            log.warning("no endpoint answers yet (%s); waiting up to %.0f s", errors, left)
            said = True
        await asyncio.sleep(min(2.0, left))


def _choose_model(served: dict[str, list[str]], wanted: str | None) -> str:
    if wanted is not None:
        for url, models in served.items():
            if wanted not in models:
                raise BackendError(
                    f"{url} does not serve model {wanted!r} (it serves: {', '.join(models)}); "
                    "set backend.served_model_name to the server's --served-model-name"
                )
        return wanted
    names = {m for models in served.values() for m in models}
    if len(names) == 1 and all(len(m) == 1 for m in served.values()):
        return names.pop()
    listing = "; ".join(f"{u}: {', '.join(m) or 'none'}" for u, m in served.items())
    raise BackendError(
        f"set backend.served_model_name: the endpoints do not serve one single model ({listing})"
    )


def _error_message(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:300].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:500]
        if "message" in data:
            return str(data["message"])[:500]
    return raw[:300].decode("utf-8", "replace")


def _os_reason(e: Any) -> str:
    os_error = getattr(e, "os_error", None)
    return getattr(os_error, "strerror", None) or str(os_error or e)


def _describe(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
