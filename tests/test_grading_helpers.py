"""The grader's small helpers: the bracket walker and the call sites built on it."""

import pytest

from dartmath.grading.answer import _balanced, _mask_groups, split_top
from dartmath.grading.brackets import closing_brace, depths
from dartmath.grading.extract import _clean_inline_answer, extract_boxed
from dartmath.grading.normalize import _unwrap


def test_depths_counts_the_given_pairs_and_any_close_closes_any_open():
    assert list(depths("a{b}c")) == [(1, 1), (3, 0)]
    assert list(depths("(x]{", pairs="()[]{}")) == [(0, 1), (2, 0), (3, 1)]
    assert list(depths("(x)")) == []  # only braces by default
    assert list(depths("{a}{b}", 3)) == [(3, 1), (5, 0)]


def test_skip_escaped_steps_over_a_backslash_and_the_character_after_it():
    s = "{a\\}b}"
    assert closing_brace(s, 0, skip_escaped=True) == 5
    assert closing_brace(s, 0) == 3  # without: `\}` closes like `}`
    assert closing_brace("{a\\\\}", 0, skip_escaped=True) == 4  # `\\` is one escape
    assert closing_brace("{a{b}", 0) is None


def test_boxes_skip_escaped_braces():
    assert extract_boxed("so \\boxed{\\{1, 2\\}}.") == "\\{1, 2\\}"
    assert extract_boxed("\\boxed{a \\} b") is None


@pytest.mark.parametrize(
    "s, sep, parts",
    [
        ("\\{1, 2\\}, 3", ",", ["\\{1, 2\\}", "3"]),
        ("f(a, b) = [1, 2]", "=", ["f(a, b)", "[1, 2]"]),
        ("(0, 1) \\cup (2, 3)", "\\cup", ["(0, 1)", "(2, 3)"]),
        ("1), 2", ",", ["1), 2"]),  # past a stray `)` no bracket level is the top
        ("a,,b", ",", ["a", "", "b"]),
    ],
)
def test_split_top(s, sep, parts):
    assert split_top(s, sep) == parts


def test_balanced_and_masked_groups():
    assert _balanced("(\\{1\\})") and not _balanced("(1))(") and not _balanced("((")
    assert _mask_groups("\\sum_{k=0}^{n} k = 5") == "\\sum_     ^    k = 5"
    assert _mask_groups("}{=") == " {="  # a `{` that only undoes a stray `}` stays


def test_unwrap_keeps_nested_groups():
    assert _unwrap("\\text{\\{1, {2}\\}} cm", ("\\text",)) == "\\{1, {2}\\} cm"
    assert _unwrap("\\mathrm {x", ("\\mathrm",)) == "\\mathrm {x"  # unclosed: left alone


def test_clean_inline_answer():
    assert _clean_inline_answer("**$12$ and $13$.**") == "12, 13"
    assert _clean_inline_answer('"\\(x = 2\\)".') == "x = 2"
