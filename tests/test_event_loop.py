"""The paced event loop of the fleet client: an idle loop gathers arrivals for up to its
interval before it looks, a loop with work ready never waits, and timers are not delayed."""

from __future__ import annotations

import asyncio
import socket
import time

from dartmath.sampling.event_loop import PacedEventLoop, PacedSelector, poll_interval


class Clock:
    """A clock that moves only when the selector sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_poll_soon_after_the_last_waits_out_the_interval_and_a_look_never_waits():
    clock = Clock()
    sel = PacedSelector(0.05, clock=lambda: clock.now, sleep=clock.sleep)
    try:
        sel.select(0.5)  # the first poll: nothing to wait for
        assert clock.sleeps == []
        clock.now += 0.01
        sel.select(0)  # work is ready: the loop only looks
        assert clock.sleeps == []
        clock.now += 0.01
        sel.select(0.5)  # about to block 10 ms after the last poll: wait the other 40
        assert len(clock.sleeps) == 1 and abs(clock.sleeps[0] - 0.04) < 1e-9
        clock.now += 0.2
        sel.select(0.5)  # the last poll was long ago: no wait
        assert len(clock.sleeps) == 1
    finally:
        sel.close()


def test_a_timer_due_before_the_interval_ends_cuts_the_wait_short():
    clock = Clock()
    sel = PacedSelector(0.05, clock=lambda: clock.now, sleep=clock.sleep)
    try:
        sel.select(0)
        sel.select(0.02)  # a timer is due in 20 ms
        assert clock.sleeps == [0.02]
    finally:
        sel.close()


def test_pieces_that_arrive_while_the_loop_waits_are_read_after_one_wake_up():
    ours, peer = socket.socketpair()
    later = [b"two ", b"three"]

    def peer_sends_meanwhile(seconds: float) -> None:
        while later:  # each piece its own send, as a server writes its events
            peer.send(later.pop(0))
        time.sleep(seconds)

    loop = asyncio.SelectorEventLoop(PacedSelector(0.2, sleep=peer_sends_meanwhile))
    reads: list[bytes] = []

    async def main() -> None:
        done = loop.create_future()

        class Reader(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                reads.append(data)
                if b"".join(reads) == b"one two three":
                    done.set_result(None)

        await loop.connect_accepted_socket(Reader, ours)
        peer.send(b"one ")
        await asyncio.wait_for(done, 10)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        peer.close()
    assert later == []  # the loop waited before it looked
    assert reads in ([b"one ", b"two three"], [b"one two three"])  # not one read per piece


def test_callbacks_ready_to_run_never_wait():
    clock = Clock()
    loop = asyncio.SelectorEventLoop(PacedSelector(10.0, sleep=clock.sleep))

    async def hops(n: int) -> int:
        for _ in range(n):
            await asyncio.sleep(0)  # each one a new pass of the loop
        return n

    try:
        assert loop.run_until_complete(hops(1000)) == 1000
    finally:
        loop.close()
    assert clock.sleeps == []


def test_timers_fire_on_time_on_a_paced_loop():
    loop = PacedEventLoop(10.0)
    try:
        assert poll_interval(loop) == 10.0
        t0 = time.monotonic()
        for _ in range(3):  # each a wait right after a poll: bounded by the timer, not 10 s
            loop.run_until_complete(asyncio.sleep(0.02))
        assert time.monotonic() - t0 < 5.0
    finally:
        loop.close()
    plain = asyncio.new_event_loop()
    try:
        assert poll_interval(plain) is None
    finally:
        plain.close()
