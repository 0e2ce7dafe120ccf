"""The fleet's balancing and health rules, as pure functions of an injected clock."""

from __future__ import annotations

import random

from dartmath.sampling.endpoints import Endpoint, Fleet, RetryPolicy
from dartmath.sampling.openai_http import normalise_endpoint


def _fleet(*limits: int, **policy) -> Fleet:
    return Fleet(
        [Endpoint(f"http://h{i}:8000", lim) for i, lim in enumerate(limits)],
        policy=RetryPolicy(**policy),
    )


def test_pick_balances_by_outstanding_samples_relative_to_limit():
    fleet = _fleet(100, 100)
    a, b = fleet.endpoints
    fleet.acquire(a, 10, now=0.0)
    assert fleet.pick(4) is b
    fleet.acquire(b, 30, now=0.0)
    assert fleet.pick(4) is a
    # a bigger server takes proportionally more
    big = _fleet(300, 100)
    x, y = big.endpoints
    big.acquire(x, 60, now=0.0)  # 20% loaded
    big.acquire(y, 30, now=0.0)  # 30% loaded
    assert big.pick(1) is x


def test_pick_respects_the_per_endpoint_limit_but_never_starves_a_large_request():
    fleet = _fleet(8, 8)
    a, b = fleet.endpoints
    fleet.acquire(a, 6, now=0.0)
    fleet.acquire(b, 7, now=0.0)
    assert fleet.pick(4) is None  # neither has room for 4
    assert fleet.pick(2) is a
    fleet.release(a, 6)
    assert fleet.pick(20) is a  # an idle endpoint takes a request larger than its limit


def test_the_endpoint_that_just_failed_is_avoided_while_another_can_serve():
    fleet = _fleet(10, 10)
    a, b = fleet.endpoints
    fleet.acquire(b, 5, now=0.0)
    assert fleet.pick(1) is a
    assert fleet.pick(1, avoid=a) is b
    fleet.acquire(b, 5, now=0.0)  # b is full: a is taken even though it just failed
    assert fleet.pick(1, avoid=a) is a


def test_refused_connection_sets_aside_at_once_other_failures_after_a_streak():
    fleet = _fleet(10, 10, failures_to_set_aside=3)
    a, b = fleet.endpoints
    assert fleet.on_failure(a, "cannot connect", now=0.0, at_once=True)
    assert not a.healthy and fleet.pick(1) is b
    assert not fleet.on_failure(b, "HTTP 503", now=0.0)
    assert not fleet.on_failure(b, "HTTP 503", now=0.0)
    fleet.on_success(b)  # a success resets the streak
    assert not fleet.on_failure(b, "HTTP 503", now=0.0)
    assert not fleet.on_failure(b, "HTTP 503", now=0.0)
    assert fleet.on_failure(b, "HTTP 503", now=0.0)
    assert fleet.all_down() and fleet.pick(1) is None


def test_set_aside_endpoints_are_probed_after_a_cooldown_that_doubles():
    fleet = _fleet(10, cooldown_min=2.0, cooldown_max=10.0)
    (a,) = fleet.endpoints
    fleet.on_failure(a, "refused", now=100.0, at_once=True)
    assert fleet.next_probe_at() == 102.0
    assert fleet.due_for_probe(101.9) == []
    assert fleet.due_for_probe(102.0) == [a]
    fleet.probe_failed(a, "refused", now=102.0)
    assert fleet.next_probe_at() == 106.0
    fleet.probe_failed(a, "refused", now=106.0)
    fleet.probe_failed(a, "refused", now=114.0)
    assert a.cooldown == 10.0  # capped
    fleet.probe_started(a)  # a probe under way: not due again until it has failed
    assert fleet.due_for_probe(1e9) == [] and fleet.next_probe_at() is None
    fleet.probe_failed(a, "refused", now=120.0)
    assert fleet.next_probe_at() == 130.0
    fleet.probe_succeeded(a)
    assert a.healthy and fleet.pick(1) is a and fleet.next_probe_at() is None
    assert a.set_asides == 1 and a.failures == 1


def test_backoff_has_full_jitter_and_a_cap():
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(0)
    for attempt, bound in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > 0.8 * bound  # spread over the whole range, not a fixed step
        assert min(delays) < 0.2 * bound


def test_endpoint_urls_are_normalised():
    assert normalise_endpoint("node1:8000") == "http://node1:8000"
    assert normalise_endpoint("http://node1:8000/v1/") == "http://node1:8000"
    assert normalise_endpoint(" https://x.example/api ") == "https://x.example/api"


def test_error_messages_are_read_from_an_openai_error_body_or_shown_raw():
    from dartmath.sampling.openai_http import _error_message

    assert _error_message(b'{"error": {"message": "prompt too long", "code": 400}}') == (
        "prompt too long"
    )
    assert _error_message(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"


def test_a_stalled_endpoint_is_one_holding_samples_that_sent_nothing_for_the_idle_limit():
    fleet = _fleet(10, 10)
    a, b = fleet.endpoints
    assert fleet.stalled(now=1000.0, idle=30.0) == []  # no work: silence is no stall
    fleet.acquire(a, 4, now=100.0)  # its silence counts from here
    fleet.acquire(b, 4, now=100.0)
    b.last_heard = 125.0  # b streams; a says nothing
    assert fleet.stalled(now=129.9, idle=30.0) == []
    assert fleet.stalled(now=130.0, idle=30.0) == [a]
    fleet.acquire(a, 2, now=140.0)  # more work for a silent server does not reset its clock
    assert fleet.stalled(now=140.0, idle=30.0) == [a]
    fleet.on_stall(a, "stalled: nothing for 40 s", now=140.0)
    assert not a.healthy and a.stalled and a.stalls == 1 and a.set_asides == 1
    assert fleet.stalled(now=200.0, idle=30.0) == [b]  # set aside: found once, not again
    fleet.probe_succeeded(a)
    assert a.healthy and not a.stalled


def test_samples_finish_one_by_one_and_the_rest_is_released():
    fleet = _fleet(10)
    (a,) = fleet.endpoints
    fleet.acquire(a, 4, now=0.0)
    fleet.on_sample(a)
    fleet.on_sample(a)
    assert a.outstanding == 2 and a.samples == 2
    fleet.release(a, 2)  # the attempt ended with two samples missing
    assert a.outstanding == 0 and a.samples == 2 and a.requests == 1


def test_a_dead_engine_is_counted_once_per_episode():
    fleet = _fleet(10, 10)
    a, _ = fleet.endpoints
    assert fleet.on_engine_dead(a, "engine dead", now=0.0)
    assert not a.healthy and a.engine_deaths == 1 and a.set_asides == 1
    assert not fleet.on_engine_dead(a, "engine dead", now=5.0)  # a probe sees it again
    assert a.engine_deaths == 1 and a.set_asides == 1
    fleet.probe_succeeded(a)  # restarted
    assert fleet.on_engine_dead(a, "engine dead", now=50.0)
    assert a.engine_deaths == 2 and a.set_asides == 2
    assert a.summary()["engine_deaths"] == 2 and a.summary()["stalls"] == 0


def test_endpoints_file_skips_comments_and_blank_lines(tmp_path):
    import pytest

    from dartmath.errors import InputError
    from dartmath.sampling.backends import read_endpoints_file

    f = tmp_path / "eps.txt"
    f.write_text("# servers\nhttp://a:8000\n\n  b:8000  # second\n")
    assert read_endpoints_file(str(f)) == ["http://a:8000", "b:8000"]
    f.write_text("# none\n")
    with pytest.raises(InputError, match=r"eps\.txt: no endpoints listed"):
        read_endpoints_file(str(f))
    with pytest.raises(InputError, match="cannot read the endpoints file"):
        read_endpoints_file(str(tmp_path / "missing.txt"))
