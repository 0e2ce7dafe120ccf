"""Which inference server gets the next request, and when a failing one is tried again (pure).

A fleet is a list of OpenAI-compatible servers. Requests go to the server with the fewest
outstanding samples relative to its limit, so a fast server takes more work and a slow one
is not buried. A server that fails (refused connection, timeout, 429, 5xx) is set aside for a
cool-down that doubles with each further failure, and comes back once a probe succeeds. All
of it is driven by an injected clock, so it is tested without sleeping.
"""

from __future__ import annotations

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
    # accounting for the run summary
    requests: int = 0
    samples: int = 0
    failures: int = 0
    set_asides: int = 0

    def room(self) -> int:
        return self.limit - self.outstanding

    def summary(self) -> dict[str, object]:
        return {
            "url": self.url,
            "requests": self.requests,
            "samples": self.samples,
            "failures": self.failures,
            "set_asides": self.set_asides,
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

    def acquire(self, ep: Endpoint, n: int) -> None:
        ep.outstanding += n
        ep.requests += 1

    def release(self, ep: Endpoint, n: int) -> None:
        ep.outstanding -= n

    def on_success(self, ep: Endpoint, n: int) -> None:
        ep.samples += n
        ep.consecutive_failures = 0
        ep.cooldown = 0.0

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

    def due_for_probe(self, now: float) -> list[Endpoint]:
        return [ep for ep in self.endpoints if not ep.healthy and ep.down_until <= now]

    def next_probe_at(self) -> float | None:
        times = [ep.down_until for ep in self.endpoints if not ep.healthy]
        return min(times) if times else None

    def all_down(self) -> bool:
        return not any(ep.healthy for ep in self.endpoints)

    @property
    def capacity(self) -> int:
        return sum(ep.limit for ep in self.endpoints)
