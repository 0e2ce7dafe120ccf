"""The worker pool and the caching grader, in real worker processes."""

import random

import pytest

from dartmath.grading.grade import NO_ANSWER, grade_response
from dartmath.grading.grader import TIMEOUT, Grader
from judges import misbehaving_judge


def _dars_like_items() -> list[tuple[str, str]]:
    rng = random.Random(7)
    refs = {
        "\\frac{3}{4}": ["0.75", "\\frac34", "\\frac{2}{3}", "3/4"],
        "(2,-1)": ["(2, -1)", "(-1, 2)", "x = 2"],
        "[1,3)": ["[1,3)", "(1,3)", "[1, 3)"],
    }
    items = []
    for ref, answers in refs.items():
        for _ in range(20):
            ans = rng.choice(answers)
            style = rng.random()
            if style < 0.1:
                items.append((ref, "I am not sure."))
            elif style < 0.55:
                items.append((ref, f"Some steps.\nThe answer is: ${ans}$"))
            else:
                items.append((ref, f"So the result is $\\boxed{{{ans}}}$."))
    return items


def test_verdicts_match_in_process_grading_in_order_and_come_from_cache():
    items = _dars_like_items()
    expected = [grade_response(ref, resp) for ref, resp in items]
    with Grader(workers=2, timeout=10) as grader:
        got = list(grader.grade_many(items))
        stats = grader.stats
    assert got == expected
    n_no_answer = sum(v.error == NO_ANSWER for v in expected)
    distinct = {(ref, v.ans) for (ref, _), v in zip(items, expected, strict=True) if v.ans}
    assert stats.judged == len(distinct)
    assert stats.cache_hits == len(items) - n_no_answer - len(distinct)
    assert stats.no_answer == n_no_answer


HOSTILE = {
    "power tower": "\\boxed{10^{10^{10^{10}}}}",
    "huge factorial": "\\boxed{(10^{10})!}",
    "5000 nested braces": "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "unclosed braces": "\\boxed{" + "{" * 5000,
    "a megabyte of digits": "\\boxed{" + "7" * 1_000_000 + "}",
    "a megabyte after the answer phrase": "The answer is " + "9" * 1_000_000,
    "random bytes": bytes(random.Random(1).randrange(256) for _ in range(20_000)).decode("latin-1"),
    "random bytes boxed": "\\boxed{"
    + bytes(random.Random(2).randrange(256) for _ in range(2_000)).decode("latin-1")
    + "}",
    "deep fractions": "\\boxed{" + "\\frac{1}{" * 60 + "2" + "}" * 60 + "}",
    "surrogates": "\\boxed{\ud800\udfff}",
    # Shapes that make backtracking regexes quadratic; extraction must stay linear.
    "repeated phrase": "The answer is " * 100_000,
    "repeated stated answer": "7 is the answer " * 50_000,
    "a megabyte of dollars": "$" * 1_000_000,
    "open math delimiters": "\\(" * 300_000,
    "numbers and spaces": "1 " * 500_000,
    "final answer headings": "Final Answer:\n" * 100_000,
    # Programming syntax: read by a whitelist parser, never run (tests/test_code_syntax.py)
    "code injection": "\\boxed{__import__('os').system('true')*2}",
    "code power tower": "\\boxed{2**10**10**10*x}",
    "code nested calls": "\\boxed{" + "sqrt(" * 5000 + "2" + ")" * 5000 + "*x}",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_answers_are_graded_false_without_hanging(name):
    with Grader(workers=1, timeout=5) as grader:
        (verdict,) = grader.grade_many([("5", HOSTILE[name])])
    assert verdict.correct is False
    # graded within the timeout: a quadratic extraction would show up here as TIMEOUT
    assert verdict.error in (None, NO_ANSWER)


def test_stuck_dead_and_failing_workers_are_replaced_and_the_rest_is_graded():
    items = [
        ("a", "\\boxed{a}"),
        ("b", "\\boxed{spin}"),
        ("c", "\\boxed{c}"),
        ("d", "\\boxed{die}"),
        ("e", "\\boxed{raise}"),
        ("f", "\\boxed{x}"),
        ("g", "\\boxed{g}"),
    ]
    with Grader(workers=1, timeout=1.0, judge=misbehaving_judge) as grader:
        got = list(grader.grade_many(items))
        stats = grader.stats
    assert [v.ans for v in got] == ["a", "spin", "c", "die", "raise", "x", "g"]
    assert [v.correct for v in got] == [True, False, True, False, False, False, True]
    assert got[1].error == TIMEOUT
    assert got[3].error.startswith("error: grader worker died")
    assert got[4].error == "error: RuntimeError: judge failed on purpose"
    assert [v.error for i, v in enumerate(got) if i not in (1, 3, 4)] == [None] * 4
    assert stats.worker_restarts == 2
    assert (stats.timeouts, stats.errors) == (1, 2)


def test_a_stuck_item_does_not_hold_up_the_other_worker():
    items = [("x", "\\boxed{spin}")] + [(str(i), f"\\boxed{{{i}}}") for i in range(50)]
    with Grader(workers=2, timeout=1.0, judge=misbehaving_judge) as grader:
        got = list(grader.grade_many(items))
    assert got[0].error == TIMEOUT
    assert all(v.correct for v in got[1:])


def test_timeouts_are_cached_so_a_repeated_hostile_answer_costs_one_timeout():
    with Grader(workers=1, timeout=0.5, judge=misbehaving_judge) as grader:
        first = list(grader.grade_many([("x", "\\boxed{spin}"), ("y", "\\boxed{y}")]))
        assert grader.pool.restarts == 1  # the stuck worker was replaced once
        again = list(grader.grade_many([("x", "\\boxed{spin}")] * 3))
        assert grader.pool.restarts == 1  # the repeats came from the cache, not a worker
    assert [v.error for v in first] == [TIMEOUT, None]
    assert [v.error for v in again] == [TIMEOUT] * 3


def test_workers_that_cannot_start_stop_the_run_with_a_clear_error(monkeypatch):
    import broken_judge_module
    from dartmath.errors import GraderStartError

    monkeypatch.setenv("DART_TEST_BREAK_WORKERS", "1")  # inherited by the spawned workers
    with (
        pytest.raises(GraderStartError, match="exit before they are ready"),
        Grader(workers=1, timeout=5, judge=broken_judge_module.judge) as grader,
    ):
        list(grader.grade_many([("1", "\\boxed{1}")]))
