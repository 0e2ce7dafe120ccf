"""AsyncGrader: verdicts come back to the event loop as futures, out of order, without blocking."""

from __future__ import annotations

import asyncio

from dartmath.grading.async_grader import AsyncGrader


def test_verdicts_arrive_as_futures_and_match_the_sync_grader():
    async def main():
        g = AsyncGrader(workers=1, timeout=10)
        try:
            items = [
                ("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$"),
                ("\\frac{1}{2}", "The answer is: 1/3"),
                ("7", "no final answer here"),
                ("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$"),  # cache hit
                ("(1, 2)", "\\boxed{(1,2)}"),
            ]
            futs = [g.grade(ref, resp) for ref, resp in items]
            return await asyncio.gather(*futs), g.stats
        finally:
            g.close()

    verdicts, stats = asyncio.run(main())
    assert [v.correct for v in verdicts] == [True, False, False, True, True]
    assert verdicts[2].ans is None and verdicts[2].error == "no_answer"
    assert stats.items == 5 and stats.no_answer == 1
    assert stats.cache_hits >= 1


def test_loop_keeps_running_while_an_item_is_judged():
    """A slow item must not block the loop: a timer set after submitting fires first."""

    async def main():
        g = AsyncGrader(workers=1, timeout=2)
        try:
            fut = g.grade("x", "\\boxed{(10^{10})! - (10^{10})!}")
            fired = []
            asyncio.get_running_loop().call_soon(fired.append, "tick")
            await asyncio.sleep(0)
            assert fired == ["tick"]
            v = await fut
            return v
        finally:
            g.close()

    v = asyncio.run(main())
    assert v.correct is False


def test_many_concurrent_items_all_resolve():
    async def main():
        g = AsyncGrader(workers=2, timeout=10)
        try:
            futs = [g.grade(str(i % 7), f"The answer is {i % 5}") for i in range(300)]
            return await asyncio.gather(*futs)
        finally:
            g.close()

    verdicts = asyncio.run(main())
    assert [v.correct for v in verdicts] == [(i % 7) == (i % 5) for i in range(300)]
