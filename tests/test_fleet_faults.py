"""The `openai` backend's retry and error paths, against in-process fake servers (fast: no
vLLM, no real inference server).

Each test scripts what the fake servers answer (error statuses, dropped connections, silence),
drives `OpenAISampler` in the same event loop, and checks what was yielded (exactly n samples,
from one answer) and what the fleet recorded (retries, failures, set-asides, health).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from dartmath.errors import BackendError
from dartmath.sampling.base import Completion
from dartmath.sampling.endpoints import RetryPolicy
from dartmath.sampling.event_loop import PacedEventLoop
from dartmath.sampling.openai_http import HTTPOptions, OpenAISampler
from dartmath.synth.config import BackendConfig
from fake_openai import Drop, FakeOpenAI, Hang, Malformed, Stall, Status, refusing_url

SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "stop": None}
TEST_TIMEOUT = 15.0  # a guard: every test takes well under a second


def _options(**overrides: Any) -> HTTPOptions:
    """Fast retries and cool-downs, short timeouts."""
    opts: dict[str, Any] = {
        "policy": RetryPolicy(base=0.01, cap=0.05, cooldown_min=0.05, cooldown_max=0.2),
        "connect_timeout": 1.0,
        "request_timeout": 5.0,
        "startup_timeout": 2.0,
    }
    opts.update(overrides)
    return HTTPOptions(**opts)


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    # the loop `dart synth` runs this backend on
    "paced": lambda: PacedEventLoop(BackendConfig().poll_interval),
}
_loop: list[Callable[[], asyncio.AbstractEventLoop] | None] = [None]


@pytest.fixture(autouse=True, params=list(LOOPS))
def _event_loop(request: pytest.FixtureRequest) -> None:
    """Every test on both loops: the paced one of `dart synth`, asyncio's plain one
    (`backend.poll_interval: 0`)."""
    _loop[0] = LOOPS[request.param]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a test's coroutine in a fresh event loop, failing it if it hangs."""
    with asyncio.Runner(loop_factory=_loop[0]) as runner:
        return runner.run(asyncio.wait_for(coro, TEST_TIMEOUT))


@contextlib.asynccontextmanager
async def serving(*names: str, **kwargs: Any) -> AsyncIterator[list[FakeOpenAI]]:
    """Fake servers, one per name, stopped on exit."""
    servers: list[FakeOpenAI] = []
    try:
        for name in names:
            servers.append(await FakeOpenAI(name, **kwargs).start())
        yield servers
    finally:
        for server in servers:
            await server.stop()


@contextlib.asynccontextmanager
async def connected(urls: list[str], **options: Any) -> AsyncIterator[OpenAISampler]:
    """A started sampler over `urls` (fast options, with `options` on top), closed on exit."""
    sampler = await OpenAISampler.start(urls, SAMPLING, _options(**options))
    try:
        yield sampler
    finally:
        await sampler.aclose()


async def collect(sampler: OpenAISampler, n: int, request_id: str = "q0") -> list[Completion]:
    """Everything one request yields."""
    return [c async for c in sampler.sample(request_id, "What is 1 + 1?", n)]


def one_answer(comps: list[Completion], n: int) -> str:
    """Check `comps` are the n samples of a single server answer; return that answer's id
    (`<server>#<k>`: the k-th normal answer of that server)."""
    assert sorted(c.index for c in comps) == list(range(n))
    answers = {c.text.split()[1] for c in comps}
    assert len(answers) == 1, answers
    for c in comps:
        assert c.n_tokens == 4 + c.index  # from the choice's token_ids
        assert c.finish_reason == ("stop" if c.index % 2 == 0 else "length")
    return answers.pop()


def sources(comps: list[Completion], n: int) -> dict[int, tuple[str, int]]:
    """Check `comps` are n distinct samples; map each index to the (answer id, sample of that
    answer) it came from. A retry asks only for the samples still missing, so one request's
    samples may come from several answers."""
    assert sorted(c.index for c in comps) == list(range(n))
    out = {}
    for c in comps:
        _, answer, _, j, *_ = c.text.split()
        out[c.index] = (answer, int(j))
        assert c.n_tokens == 4 + int(j)  # from the streamed token_ids of that sample
    return out


async def eventually(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait, bounded, for a change of the sampler's own state, which has no event to wait on."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


def test_a_normal_request_sends_the_key_the_model_and_asks_for_token_ids():
    """The baseline the fault tests build on: one request, one answer, nothing retried."""

    async def main() -> None:
        server = await FakeOpenAI("a", api_key="sekrit").start()
        try:
            async with connected([server.url], api_key="sekrit") as sampler:
                comps = await collect(sampler, 3)
                assert one_answer(comps, 3) == "a#1"
                (body,) = server.bodies
                assert body["model"] == "fake-model" and body["n"] == 3
                assert body["return_token_ids"] is True and "stop" not in body
                assert server.headers[0]["Authorization"] == "Bearer sekrit"
                assert sampler.retries == 0
                (ep,) = sampler.fleet.endpoints
                assert (ep.requests, ep.samples, ep.failures, ep.outstanding) == (1, 3, 0, 0)
        finally:
            await server.stop()

    run(main())


@pytest.mark.parametrize("code", [429, 500, 502, 503])
def test_a_retryable_status_is_retried_on_the_other_server(code):
    async def main() -> None:
        async with serving("a", "b") as (a, b):
            a.fail(code, message=f"busy, code {code}")
            async with connected([a.url, b.url]) as sampler:
                ea, eb = sampler.fleet.endpoints
                comps = await collect(sampler, 4)
                assert one_answer(comps, 4) == "b#1"
                assert (a.completions, b.completions) == (1, 1)
                assert sampler.retries == 1
                assert (ea.failures, ea.consecutive_failures, eb.failures) == (1, 1, 0)
                assert ea.last_error is not None
                assert f"HTTP {code}" in ea.last_error and f"busy, code {code}" in ea.last_error
                assert ea.healthy and ea.set_asides == 0  # one failure does not set aside
                assert (ea.samples, eb.samples, ea.outstanding, eb.outstanding) == (0, 4, 0, 0)

    run(main())


@pytest.mark.parametrize(("code", "failures"), [(503, 2), (429, 3), (500, 3)])
def test_failures_on_a_lone_server_are_retried_there_and_three_set_it_aside(code, failures):
    """Fewer than 3 failures in a row: retried at once. Three: the endpoint is set aside, and
    only a successful probe (here the second: the first is answered 503) brings it back."""

    async def main() -> None:
        async with serving("a") as (a,), connected([a.url]) as sampler:
            (ep,) = sampler.fleet.endpoints
            a.fail(code, times=failures)
            a.fail(503, message="still loading", route="models")  # the first probe fails
            comps = await collect(sampler, 5)
            assert one_answer(comps, 5) == "a#1"
            assert a.completions == failures + 1
            assert sampler.retries == failures == ep.failures
            assert ep.healthy and ep.consecutive_failures == 0 and ep.samples == 5
            if failures >= 3:
                assert ep.set_asides == 1
                # start-up check, a failed probe, a good one; then the 4th attempt (health
                # checks, after each failure and in each probe, aside)
                first, probes, last = ["models"], ["models"] * 2, ["completions"]
                seen = [route for route in a.log if route != "health"]
                assert seen == first + ["completions"] * 3 + probes + last
                assert a.health >= 2  # each probe asks /health first
                assert ep.last_error is not None and "HTTP 503: still loading" in ep.last_error
            else:
                assert ep.set_asides == 0 and a.models == 1  # never probed

    run(main())


@pytest.mark.parametrize(
    ("code", "message", "key_hint"),
    [
        (400, "This model's maximum context length is 2048 tokens", False),
        (401, "Invalid API key", True),
        (403, "Forbidden for this key", True),
        (404, "The model `fake-model` does not exist.", False),
    ],
)
def test_a_client_error_raises_backend_error_and_is_not_retried(code, message, key_hint):
    async def main() -> None:
        async with serving("a", "b") as (a, b):
            a.fail(code, message=message)
            async with connected([a.url, b.url]) as sampler:
                ea, eb = sampler.fleet.endpoints
                with pytest.raises(BackendError) as info:
                    await collect(sampler, 2)
                text = str(info.value)
                assert message in text and f"HTTP {code}" in text and a.url in text
                assert ("check the API key" in text) is key_hint
                assert (a.completions, b.completions) == (1, 0)
                assert sampler.retries == 0 and ea.failures == 0 and ea.healthy
                assert ea.outstanding == 0  # its slots were given back
                # the sampler still works for the next request
                assert one_answer(await collect(sampler, 2), 2) == "a#1"

    run(main())


def test_a_wrong_api_key_fails_the_start_with_a_hint():
    async def main() -> None:
        server = await FakeOpenAI("a", api_key="right").start()
        try:
            with pytest.raises(BackendError, match="check the API key") as info:
                await OpenAISampler.start([server.url], SAMPLING, _options(api_key="wrong"))
            assert "HTTP 401" in str(info.value) and "Unauthorized" in str(info.value)
            assert server.models == 1
        finally:
            await server.stop()

    run(main())


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (Drop("before"), "ServerDisconnectedError"),
        (Malformed(), "unreadable answer"),
        (
            Malformed(b'{"choices": [{"index": 0, "text": "x", "finish_reason": null}]}'),
            "ended with 0 of 3 samples finished",
        ),
    ],
    ids=["dropped-before-any-byte", "bad-json", "ended-early"],
)
def test_a_broken_answer_is_retried_and_nothing_of_it_is_yielded(action, error):
    async def main() -> None:
        async with serving("a") as (a,), connected([a.url]) as sampler:
            (ep,) = sampler.fleet.endpoints
            a.script(action)
            comps = await collect(sampler, 3)
            assert len(comps) == 3 and one_answer(comps, 3) == "a#1"
            assert a.completions == 2 and sampler.retries == 1 == ep.failures
            assert ep.last_error is not None and error in ep.last_error
            if isinstance(action, Drop):
                assert a.disconnects == 1

    run(main())


def test_a_stream_cut_off_keeps_its_finished_samples_and_asks_only_for_the_rest():
    async def main() -> None:
        async with serving("a") as (a,), connected([a.url]) as sampler:
            (ep,) = sampler.fleet.endpoints
            a.script(Drop("after_headers"))  # sample 0 streams whole, then the line drops
            comps = await collect(sampler, 3)
            # index 0 from the cut answer; indices 1 and 2 from the retry's samples 0 and 1
            assert sources(comps, 3) == {0: ("a#1", 0), 1: ("a#2", 0), 2: ("a#2", 1)}
            assert [b["n"] for b in a.bodies] == [3, 2]
            assert "ClientPayloadError" in (ep.last_error or "")
            assert sampler.retries == 1 and ep.samples == 3 and ep.outstanding == 0

    run(main())


def test_a_request_past_request_timeout_goes_to_the_other_server():
    async def main() -> None:
        async with serving("a", "b") as (a, b):
            a.script(Hang())
            async with connected([a.url, b.url], request_timeout=0.3, idle_timeout=None) as sampler:
                ea, eb = sampler.fleet.endpoints
                comps = await collect(sampler, 2)
                assert one_answer(comps, 2) == "b#1"
                assert sampler.retries == 1 and ea.failures == 1
                assert "no whole answer within 0.3 s (backend.request_timeout)" in (
                    ea.last_error or ""
                )
                assert ea.healthy and ea.stalls == 0  # one slow request is no stall
                await a.wait_for(lambda s: s.disconnects == 1)  # the client hung up on it

    run(main())


@pytest.mark.parametrize(
    "action", [Hang(), Stall(0), Stall(1)], ids=["no-headers", "headers-only", "one-sample"]
)
def test_a_stalled_server_is_set_aside_and_its_requests_move_at_once(action):
    """A server that takes requests and then sends nothing: every request there moves to the
    other server after idle_timeout (not request_timeout), the samples it did finish are
    kept, and the server stays aside while a 1-token completion cannot get through."""

    async def main() -> None:
        async with serving("a", "b") as (a, b):
            a.set_default(action)
            async with connected([a.url, b.url], idle_timeout=0.3, request_timeout=60.0) as sampler:
                ea, eb = sampler.fleet.endpoints
                t0 = time.monotonic()
                results = await asyncio.gather(*(collect(sampler, 3, f"q{i}") for i in range(6)))
                assert time.monotonic() - t0 < 5.0  # seconds, not the request timeout
                seen = [src for comps in results for src in sources(comps, 3).values()]
                assert len(set(seen)) == len(seen) == 18  # nothing lost, nothing twice
                from_a = [answer for answer, _ in seen if answer.startswith("a#")]
                # 3 of the 6 requests went to a; each keeps what a finished before it stalled
                assert len(from_a) == (3 * action.after if isinstance(action, Stall) else 0)
                assert ea.stalls == 1 and not ea.healthy and ea.stalled
                assert ea.last_error is not None and "stalled" in ea.last_error
                assert eb.healthy and eb.failures == 0 and ea.outstanding == 0
                # its probes reach the 1-token completion, which hangs too: it stays aside
                await a.wait_for(lambda s: any(b.get("max_tokens") == 1 for b in s.bodies))
                assert not ea.healthy and ea.set_asides == 1
                summary = {e["url"]: e for e in sampler.stats()["endpoints"]}
                assert summary[a.url]["stalls"] == 1 and summary[a.url]["healthy"] is False

    run(main())


def test_a_stalled_server_comes_back_once_a_completion_gets_through():
    async def main() -> None:
        async with serving("a", "b") as (a, b):
            a.script(Stall(0))
            async with connected([a.url, b.url], idle_timeout=0.2) as sampler:
                ea, _ = sampler.fleet.endpoints
                comps = await collect(sampler, 2)
                assert {s[0] for s in sources(comps, 2).values()} == {"b#1"}
                assert ea.stalls == 1
                await eventually(lambda: ea.healthy)  # the probe's completion went through
                assert not ea.stalled and a.bodies[-1]["max_tokens"] == 1
                comps = await collect(sampler, 2, "q1")  # a is idle, b has none: either
                assert len(comps) == 2

    run(main())


def test_a_dead_engine_is_recognised_by_health_and_its_requests_move():
    """vLLM after its engine process died: /v1/models still answers, /health says 503, a stream
    in flight ends with an error event, another one hangs."""
    died = b'{"error": {"message": "EngineCore encountered an issue", "code": 500}}'

    async def main() -> None:
        async with (
            serving("a", "b") as (a, b),
            connected([a.url, b.url], request_timeout=60.0) as sampler,
        ):
            ea, eb = sampler.fleet.endpoints
            a.script(Malformed(died))  # q0's stream ends with the engine's error ...
            a.set_default(Stall(0))  # ... q2's hangs
            a.set_default(Status(503), route="health")
            t0 = time.monotonic()
            results = await asyncio.gather(*(collect(sampler, 3, f"q{i}") for i in range(3)))
            # q0's failure asked /health: the engine is dead, so q2 moved at once too
            assert time.monotonic() - t0 < 5.0
            # q0 and q2 went to a (q2 may be given up before a has read its body)
            assert ea.requests == 2 and a.completions in (1, 2)
            sent = a.completions
            for comps in results:
                assert {s[0][0] for s in sources(comps, 3).values()} == {"b"}
            assert ea.engine_deaths == 1 and not ea.healthy and ea.stalls == 0
            assert "engine dead" in (ea.last_error or "")
            await a.wait_for(lambda s: s.health >= 2)  # a probe: still dead, stays aside
            assert not ea.healthy and ea.engine_deaths == 1 and a.completions == sent
            summary = {e["url"]: e for e in sampler.stats()["endpoints"]}
            assert summary[a.url]["engine_deaths"] == 1

    run(main())


def test_a_refused_endpoint_is_set_aside_at_start_and_all_work_goes_to_the_healthy_one():
    async def main() -> None:
        with refusing_url() as dead:
            async with serving("b") as (b,), connected([dead, b.url]) as sampler:
                ed, eb = sampler.fleet.endpoints
                assert not ed.healthy and ed.set_asides == 1
                assert ed.last_error is not None and "cannot connect" in ed.last_error
                results = await asyncio.gather(*(collect(sampler, 2, f"q{i}") for i in range(6)))
                answers = {one_answer(comps, 2) for comps in results}
                assert answers == {f"b#{k}" for k in range(1, 7)}
                assert ed.requests == 0 and eb.samples == 12 and sampler.retries == 0
                assert not ed.healthy  # its probes keep failing

    run(main())


def test_a_server_gone_mid_run_is_set_aside_at_its_first_refusal():
    """Server a stops after the start; it kept no idle connection of the client (with one, the
    first attempt fails on that stale connection instead, a failure that is not a refusal)."""

    async def main() -> None:
        async with (
            serving("a", keep_alive=False) as (a,),
            serving("b") as (b,),
            connected([a.url, b.url]) as sampler,
        ):
            ea, eb = sampler.fleet.endpoints
            await a.stop()
            comps = await collect(sampler, 2, "first")  # both idle: a is tried first
            assert one_answer(comps, 2) == "b#1"
            assert sampler.retries == 1 and ea.failures == 1 and a.completions == 0
            assert not ea.healthy and ea.set_asides == 1
            assert ea.last_error is not None and "cannot connect" in ea.last_error
            for i in range(4):
                one_answer(await collect(sampler, 2, f"q{i}"), 2)
            assert ea.requests == 1 and eb.requests == 5 and sampler.retries == 1

    run(main())


def test_every_server_refusing_then_one_restarting():
    """Both servers stop: the request is refused by each, waits (status says so), and is
    answered by the first server to come back on its port. (No keep-alive: a stale idle
    connection would make a first failure that is not a refusal.)"""

    async def main() -> None:
        async with (
            serving("a", "b", keep_alive=False) as (a, b),
            connected([a.url, b.url]) as sampler,
        ):
            ea, eb = sampler.fleet.endpoints
            await a.stop()
            await b.stop()
            task = asyncio.create_task(collect(sampler, 3))
            await eventually(lambda: sampler.status() is not None)
            assert sampler.status().startswith("all 2 endpoints down")
            assert not task.done() and sampler.retries == 2
            assert (ea.set_asides, eb.set_asides) == (1, 1)
            back = await FakeOpenAI("b2", port=b.port).start()
            try:
                assert one_answer(await task, 3) == "b2#1"
                assert sampler.status() is None
                assert eb.healthy and not ea.healthy
                assert back.models >= 1  # it was probed before being used
                assert back.log.index("models") < back.log.index("completions")
            finally:
                await back.stop()

    run(main())


def test_every_server_failing_then_one_recovering():
    """Both servers answer 503 to everything: three failures in a row set each aside, the
    request waits while the probes keep failing, and completes once one server recovers."""

    async def main() -> None:
        async with serving("a", "b") as (a, b), connected([a.url, b.url]) as sampler:
            ea, eb = sampler.fleet.endpoints
            for server in (a, b):
                server.set_default(Status(503))
                server.set_default(Status(503), route="models")
            task = asyncio.create_task(collect(sampler, 3))
            await eventually(lambda: sampler.status() is not None)
            assert sampler.status().startswith("all 2 endpoints down")
            # the attempts alternate a, b, a, b, a (set aside), b (set aside)
            assert (a.completions, b.completions, sampler.retries) == (3, 3, 6)
            assert (ea.set_asides, eb.set_asides) == (1, 1)
            probes = b.models
            await b.wait_for(lambda s: s.models > probes)  # probing goes on, failing
            assert not task.done() and not eb.healthy
            b.clear()
            assert one_answer(await task, 3) == "b#1"
            assert sampler.status() is None and eb.healthy and not ea.healthy
            assert b.completions == 4 and sampler.retries == 6

    run(main())


def test_start_fails_naming_every_endpoint_when_none_answers():
    async def main() -> None:
        with refusing_url() as dead:
            async with serving("silent") as (silent,):
                silent.set_default(Hang(), route="models")
                # a refusal is seen up to a poll interval (0.05 s) late: more than that to connect
                opts = _options(startup_timeout=0.3, connect_timeout=0.15)
                started = time.monotonic()
                with pytest.raises(BackendError) as info:
                    await OpenAISampler.start([dead, silent.url], SAMPLING, opts)
                assert time.monotonic() - started >= 0.3  # it did wait startup_timeout
                text = str(info.value)
                assert "startup_timeout" in text
                assert f"{dead}: cannot connect" in text
                assert f"{silent.url}: timed out" in text
                assert silent.models >= 2  # asked again while waiting

    run(main())


def test_a_cancelled_request_hangs_up_and_gives_back_its_slots():
    """Cancelling a request (its query met its target) closes the connection, so the server
    can abort it, and counts as no failure."""

    async def main() -> None:
        async with serving("a") as (a,):
            a.script(Hang())
            async with connected([a.url]) as sampler:
                (ep,) = sampler.fleet.endpoints
                task = asyncio.create_task(collect(sampler, 4))
                await a.wait_for(lambda s: s.completions == 1)
                assert ep.outstanding == 4
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await a.wait_for(lambda s: s.disconnects == 1)
                assert ep.outstanding == 0 and ep.failures == 0 and sampler.retries == 0

    run(main())


class _SlowRetry(RetryPolicy):
    """A fixed backoff, long enough to look at the fleet while a request sits in it."""

    def delay(self, attempt: int, rng: Any) -> float:
        return 3.0


def test_a_request_in_its_backoff_holds_no_slots():
    """A failed attempt has been answered: while it waits to retry, its samples should not
    count against the endpoint, so another request can use the idle server meanwhile."""

    async def main() -> None:
        async with (
            serving("a") as (a,),
            connected([a.url], policy=_SlowRetry(), limit_per_endpoint=4) as sampler,
        ):
            (ep,) = sampler.fleet.endpoints
            a.fail(503)
            first = asyncio.create_task(collect(sampler, 4, "first"))
            try:
                await eventually(lambda: ep.failures == 1)  # `first` is in its 3 s backoff
                assert ep.outstanding == 0
                second = await asyncio.wait_for(collect(sampler, 4, "second"), 1.0)
                assert one_answer(second, 4) == "a#1"
            finally:
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first

    run(main())


def test_concurrent_requests_through_faults_lose_and_duplicate_nothing():
    async def main() -> None:
        async with serving("a", "b") as (a, b):
            a.script(Status(503), Drop("before"), Status(429), Malformed())
            b.script(Status(500), Drop("after_headers"))
            async with connected([a.url, b.url]) as sampler:
                results = await asyncio.gather(*(collect(sampler, 3, f"q{i}") for i in range(12)))
                seen = [src for comps in results for src in sources(comps, 3).values()]
                assert len(set(seen)) == len(seen) == 36  # no sample handed on twice
                assert a.answered + b.answered == 13  # 12, and the one cut after a sample
                eps = sampler.fleet.endpoints
                assert sum(ep.samples for ep in eps) == 36
                assert sampler.retries == 6 == sum(ep.failures for ep in eps)
                assert all(ep.outstanding == 0 for ep in eps)

    run(main())
