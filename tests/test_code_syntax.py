"""Answers in programming syntax: what the reader turns into LaTeX, what it refuses, and that
nothing in a hostile answer is ever run (docs/grading.md, "Programming syntax")."""

from __future__ import annotations

import pytest

from dartmath.grading.code_syntax import MAX_DEPTH, code_to_latex
from dartmath.grading.equivalence import is_equivalent
from dartmath.grading.grade import grade_response


@pytest.mark.parametrize(
    "code, latex",
    [
        ("5*k**3 + 215*k - 85", r"5 * k^{3} + 215 * k - 85"),
        ("x**(13/5)", r"x^{\left(\frac{13}{5}\right)}"),
        ("sqrt(2)/2", r"\frac{\sqrt{2}}{2}"),
        ("2*pi", r"2 * \pi"),
        ("-x**2", "-x^{2}"),  # Python's precedence: -(x**2)
        ("2**3**2", "2^{3^{2}}"),  # right-associative
        ("x**-2", "x^{-2}"),
        ("(u + 1)**2", r"\left(u + 1\right)^{2}"),
        ("sqrt(3)**2", r"\left(\sqrt{3}\right)^{2}"),
        ("3*I + E", r"3 * i + e"),
        ("1880*d*n", "1880 * d * n"),
        ("x1*x2", r"x_{1} * x_{2}"),
        ("(1, sqrt(2))", r"\left(1, \sqrt{2}\right)"),
        ("-3, 5*pi", r"-3, 5 * \pi"),
        ("y = 2*x + 1", r"y = 2 * x + 1"),
        ("x <= 2*pi", r"x \le 2 * \pi"),
        ("exp(-t)*Abs(t)", r"e^{-t} * \left|t\right|"),
        ("log(2)", r"\ln\left(2\right)"),
        ("pi/4", r"\frac{\pi}{4}"),
    ],
)
def test_programming_syntax_becomes_the_latex_it_stands_for(code, latex):
    assert code_to_latex(code) == latex


@pytest.mark.parametrize(
    "text",
    [
        "12",  # no marker: not programming syntax
        "x/2",
        "E",  # a choice letter
        "I",
        "x^2*y",  # LaTeX: left to the LaTeX reader
        r"\frac{1}{2}*x",
        "2*abc",  # a name outside the whitelist
        "2*",  # incomplete
        "(2*x",
        "2*x)",
        "sqrt 2*x",
        "sqrt(1, 2)*x",
        "2 * [1, 2]",
        "x**",
        "2*x if x else 3",
    ],
)
def test_what_is_not_programming_syntax_is_left_alone(text):
    assert code_to_latex(text) is None


INJECTIONS = [
    "__import__('os').system('touch {p}')",
    '__import__("os").system("touch {p}")*2',
    "exec(\"open('{p}', 'w')\")*x",
    'eval(\'open("{p}", "w")\')**2',
    "(lambda: open('{p}', 'w'))()*pi",
    "x.__class__.__base__.__subclasses__()*2",
    "().__class__*sqrt(2)",
    "open('{p}', 'w')*1",
    "sqrt(__import__('os').system('touch {p}'))",
    "globals()['__builtins__']*2",
    "Symbol('x')*2",
    "Function('f')(x)*2",
    "x*y; import os",
    "2*x\nimport os",
]


@pytest.mark.parametrize("template", INJECTIONS)
def test_code_in_an_answer_or_a_reference_never_runs_and_is_never_correct(template, tmp_path):
    sentinel = tmp_path / "ran"
    text = template.format(p=sentinel)
    assert code_to_latex(text) is None
    for ref, resp in ((text, "The answer is 5"), ("5", f"\\boxed{{{text}}}")):
        assert grade_response(ref, resp).correct is False
    assert is_equivalent(text, "0") is False and is_equivalent("2", text) is False
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "text", ["2**10**10**10", "10**100000000", "sqrt(2)**(10**9)", "E**(10**20)*x", "9**9**9**9"]
)
def test_huge_exponents_are_graded_false_not_computed(text):
    assert code_to_latex(text) is not None
    assert grade_response("5", f"\\boxed{{{text}}}").correct is False
    assert is_equivalent(text, "7") is False


def test_nesting_deeper_than_the_limit_is_not_read():
    deep = "(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5) + "*2"
    assert code_to_latex(deep) is None
    shallow = "(" * 5 + "x" + ")" * 5 + "*2"
    assert code_to_latex(shallow) is not None
