"""Which inference server gets the next request, and when a failing one is tried again (pure).

A fleet is a list of OpenAI-compatible servers. Requests go to the server with the fewest
outstanding samples relative to its limit, so a fast server takes more work and a slow one
is not buried. A server that fails (refused connection, timeout, 429, 5xx) is set aside for a
cool-down that doubles with each further failure, and comes back once a probe succeeds. A
server that holds samples of ours and has sent nothing for a while is stalled (a hung engine, a
wedged GPU, a dead connection): a healthy one always streams tokens of some request, even when
others wait in its queue. All of it is driven by an injected clock, so it is tested without
sleeping.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Endpoint:
    """One server of the fleet and what the client knows about it."""

    url: str  # base URL, e.g. http://10.0.0.5:8000 (without /v1)
    limit: int  # samples allowed in flight here
    outstanding: int = 0  # samples sent and not yet answered
    healthy: bool = True
    consecutive_failures: int = 0
    down_until: float = 0.0  # while set aside: not before this time is it probed
    cooldown: float = 0.0  # the current set-aside period
    last_error: str | None = None
    last_heard: float = 0.0  # when it last sent a byte (or was given work while it had none)
    stalled: bool = False  # set aside for a stall: a probe must get a completion through
    engine_dead: bool = False  # set aside with its engine dead (/health)
    # accounting for the run summary
    requests: int = 0
    samples: int = 0
    failures: int = 0
    set_asides: int = 0
    stalls: int = 0
    engine_deaths: int = 0

    def room(self) -> int:
        return self.limit - self.outstanding

    def summary(self) -> dict[str, object]:
        return {
            "url": self.url,
            "requests": self.requests,
            "samples": self.samples,
            "failures": self.failures,
            "set_asides": self.set_asides,
            "stalls": self.stalls,
            "engine_deaths": self.engine_deaths,
            "healthy": self.healthy,
            "last_error": self.last_error,
        }


@dataclass
class RetryPolicy:
    """Backoff with full jitter between attempts of one request; cool-downs of a server."""

    base: float = 0.5  # first retry waits up to this many seconds
    cap: float = 30.0  # no retry waits longer
    failures_to_set_aside: int = 3  # consecutive failures (refused connections: at once)
    cooldown_min: float = 2.0  # first set-aside period
    cooldown_max: float = 15.0  # a probe is one GET: a dead server costs little

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait before retry number `attempt` (1, 2, ...): uniform in [0, min(cap, base*2^k)]."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


@dataclass
class Fleet:
    """The balancing and health state of all endpoints (no I/O)."""

    endpoints: list[Endpoint]
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def pick(self, n: int, avoid: Endpoint | None = None) -> Endpoint | None:
        """The healthy endpoint with the lowest load that has room for `n` samples.

        An endpoint with no samples outstanding always has room, so a request larger than a
        limit is still served. `avoid` (the endpoint that just failed this request) is taken
        only when no other endpoint can take it.
        """
        best: Endpoint | None = None
        best_key: tuple[bool, float] | None = None
        for ep in self.endpoints:
            if not ep.healthy or (ep.outstanding and ep.room() < n):
                continue
            key = (ep is avoid, ep.outstanding / ep.limit)
            if best_key is None or key < best_key:
                best, best_key = ep, key
        return best

    def acquire(self, ep: Endpoint, n: int, now: float) -> None:
        if not ep.outstanding:
            ep.last_heard = now  # its silence counts from the moment it has work
        ep.outstanding += n
        ep.requests += 1

    def on_sample(self, ep: Endpoint) -> None:
        """One of the samples sent to `ep` finished."""
        ep.outstanding -= 1
        ep.samples += 1

    def release(self, ep: Endpoint, n: int) -> None:
        """`n` samples sent to `ep` will not finish there (the request ended or was given up)."""
        ep.outstanding -= n

    def on_success(self, ep: Endpoint) -> None:
        ep.consecutive_failures = 0
        ep.cooldown = 0.0

    def stalled(self, now: float, idle: float) -> list[Endpoint]:
        """Healthy endpoints that hold samples and have sent nothing for `idle` seconds."""
        return [
            ep
            for ep in self.endpoints
            if ep.healthy and ep.outstanding and now - ep.last_heard >= idle
        ]

    def on_stall(self, ep: Endpoint, error: str, now: float) -> None:
        """Set a stalled endpoint aside at once; its probe must then get a completion through."""
        ep.stalls += 1
        ep.stalled = True
        ep.last_error = error
        if ep.healthy:
            self._set_aside(ep, now)

    def on_engine_dead(self, ep: Endpoint, error: str, now: float) -> bool:
        """The endpoint says its engine is dead: set it aside. True when this is news."""
        ep.last_error = error
        news = not ep.engine_dead
        if news:
            ep.engine_dead = True
            ep.engine_deaths += 1
        if ep.healthy:
            self._set_aside(ep, now)
        return news

    def on_failure(self, ep: Endpoint, error: str, now: float, *, at_once: bool = False) -> bool:
        """Record a failed request; set the endpoint aside when it keeps failing (or at once,
        for a refused connection). Returns True when this call set it aside."""
        ep.failures += 1
        ep.consecutive_failures += 1
        ep.last_error = error
        if not ep.healthy:
            return False
        if at_once or ep.consecutive_failures >= self.policy.failures_to_set_aside:
            self._set_aside(ep, now)
            return True
        return False

    def _set_aside(self, ep: Endpoint, now: float) -> None:
        ep.healthy = False
        ep.set_asides += 1
        self._back_off(ep, now)

    def probe_failed(self, ep: Endpoint, error: str, now: float) -> None:
        """A probe of a set-aside endpoint failed: wait twice as long before the next one."""
        ep.last_error = error
        self._back_off(ep, now)

    def _back_off(self, ep: Endpoint, now: float) -> None:
        p = self.policy
        ep.cooldown = min(p.cooldown_max, max(p.cooldown_min, ep.cooldown * 2))
        ep.down_until = now + ep.cooldown

    def probe_succeeded(self, ep: Endpoint) -> None:
        ep.healthy = True
        ep.consecutive_failures = 0
        ep.stalled = False
        ep.engine_dead = False

    def due_for_probe(self, now: float) -> list[Endpoint]:
        return [ep for ep in self.endpoints if not ep.healthy and ep.down_until <= now]

    def probe_started(self, ep: Endpoint) -> None:
        """A probe of `ep` is under way: it is not due again until that probe has failed."""
        ep.down_until = math.inf

    def next_probe_at(self) -> float | None:
        times = [ep.down_until for ep in self.endpoints if not ep.healthy]
        soonest = min(times, default=math.inf)
        return None if soonest == math.inf else soonest

    def all_down(self) -> bool:
        return not any(ep.healthy for ep in self.endpoints)

    @property
    def capacity(self) -> int:
        return sum(ep.limit for ep in self.endpoints)
