"""Single values: parse to exact sympy objects and compare them (docs/grading.md, sec. 3).

Plain numbers never touch the LaTeX parser (a fast path that most answers take); everything
else goes through latex2sympy2_extended. Decimals are read as exact rationals, so that the one
tolerance in the grader is the documented decimal rule, not float noise.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

import sympy
from sympy import Rational

# Sizes past which a value is compared by its form only, never evaluated.
_MAX_INT_DIGITS = 4000
_MAX_EXPONENT = 10_000
_MAX_FACTORIAL = 5_000
_EVAL_DIGITS = 50
_CONFIRM_DIGITS = 300
_REL_TOL = sympy.Float(10) ** -40
_N_POINTS = 5

_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)$")
_FRAC = re.compile(r"^(?P<sign>[+-])?\\frac\{(?P<p>[+-]?\d+)\}\{(?P<q>\d+)\}$")
_FRAC_SHORT = re.compile(r"^(?P<sign>[+-])?\\frac(?P<p>\d)(?P<q>\d)$")
_SLASH = re.compile(r"^(?P<sign>[+-])?(?P<p>\d+)\s*/\s*(?P<q>\d+)$")
_SCI = re.compile(
    r"^(?P<m>[+-]?(?:\d+\.?\d*|\.\d+))\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*"
    r"(?:\{\s*(?P<e1>[+-]?\d+)\s*\}|(?P<e2>[+-]?\d))$"
)
_E_NOTATION = re.compile(r"^(?P<m>[+-]?(?:\d+\.?\d*|\.\d+))[eE](?P<e>[+-]?\d+)$")
_DECIMAL_IN_TEXT = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])")
# A mixed number: `7 3/4`, `54\frac{1}{4}` (the fraction proper: numerator < denominator).
# The whole part may be written in space-separated thousands (`1 000 4/9`); a zero numerator
# is allowed (`4 0/9` is 4). Only spaces may separate the parts, never a line break.
_MIXED = re.compile(
    r"^(?P<sign>[+-])?(?P<w>\d{1,3}(?: \d{3})+|\d+)[ \t]*(?:[ \t](?P<p1>\d+)[ \t]*/[ \t]*(?P<q1>\d+)"
    r"|\\frac\{(?P<p2>\d+)\}\{(?P<q2>\d+)\})$"
)
# Numerals on separate lines (`11\n5/6`): two numbers, not one (normalize keeps that break).
_LINE_BREAK = re.compile(r"\d\s*\n\s*[\d.+-]")
# Digit groups separated by single spaces (`1 000 000`, from `1\,000\,000`).
_SPACE_GROUPS = re.compile(r"^[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_DIGIT_SPACE_DIGIT = re.compile(r"^[+-]?[\d.]+(?:\s+[\d.]+)+$")
# Marks that the LaTeX parser would silently drop or misread: primes (`B'`, `g'(x)`) and
# colons (`10:00`, `2:5`). Answers holding them are compared as strings only.
_UNPARSABLE = re.compile(r"'|\\prime(?![a-zA-Z])|(?<!\\):|\\colon(?![a-zA-Z])")


class ParseFailure(ValueError):
    """The text could not be read as a value."""


@dataclass(frozen=True)
class Scalar:
    """One value: its exact sympy form and whether it was written as a plain decimal."""

    text: str
    value: sympy.Basic
    decimal_places: int | None = None  # set when written as a plain decimal like 0.667


def _too_big(expr: sympy.Basic) -> bool:
    """True for values whose evaluation could take unbounded time or memory.

    Checked bottom-up, so that an exponent or factorial argument is only evaluated (to a
    float) once everything inside it is known to be small: `10^{10^{10^{10}}}` is caught
    without computing any of its levels.
    """
    if isinstance(expr, sympy.Integer):
        return abs(expr) > 10**_MAX_INT_DIGITS
    if any(_too_big(arg) for arg in expr.args):
        return True
    if isinstance(expr, sympy.Pow):
        base, exp = expr.args
        if base in (0, 1, -1) or exp.free_symbols:
            return False
        return _exceeds(exp, _MAX_EXPONENT)
    if isinstance(expr, sympy.factorial | sympy.factorial2 | sympy.gamma):
        arg = expr.args[0]
        return bool(arg.free_symbols) or _exceeds(arg, _MAX_FACTORIAL)
    return False


def _exceeds(value: sympy.Basic, limit: int) -> bool:
    """Whether a constant is larger than `limit` in absolute value (unknown counts as larger)."""
    try:
        magnitude = abs(complex(sympy.N(value, 15)))
    except (TypeError, ValueError, OverflowError):
        return True
    return not magnitude <= limit


def _fast_number(text: str) -> Scalar | None:
    """Plain numerals, without the LaTeX parser."""
    t = text.strip()
    if _LINE_BREAK.search(t):
        raise ParseFailure("numerals on separate lines")
    m = _MIXED.match(t)
    if m:
        p = int(m.group("p1") or m.group("p2"))
        q = int(m.group("q1") or m.group("q2"))
        if not 0 <= p < q:
            raise ParseFailure("a mixed number needs a proper fraction")
        v = int(m.group("w").replace(" ", "")) + Rational(p, q)
        return Scalar(text, -v if m.group("sign") == "-" else v)
    if _SPACE_GROUPS.match(t):
        t = t.replace(" ", "")
    elif _DIGIT_SPACE_DIGIT.match(t):
        raise ParseFailure("two numerals side by side")  # `12 34` is neither 1234 nor 12*34
    t = t.replace(" ", "")
    if _INT.match(t):
        if len(t) > _MAX_INT_DIGITS:
            raise ParseFailure("integer too long")
        return Scalar(text, sympy.Integer(t))
    if _DEC.match(t):
        if len(t) > _MAX_INT_DIGITS:
            raise ParseFailure("decimal too long")
        places = len(t.split(".")[1])
        return Scalar(
            text, Rational(t.rstrip(".") if t.endswith(".") else t), decimal_places=places
        )
    for pat in (_FRAC, _FRAC_SHORT, _SLASH):
        m = pat.match(t)
        if m:
            q = int(m.group("q"))
            if q == 0:
                raise ParseFailure("division by zero")
            v = Rational(int(m.group("p")), q)
            return Scalar(text, -v if m.group("sign") == "-" else v)
    m = _SCI.match(t) or _E_NOTATION.match(t)
    if m:
        exp = int(m.groupdict().get("e") or m.groupdict().get("e1") or m.groupdict().get("e2"))
        if abs(exp) > _MAX_EXPONENT:
            raise ParseFailure("exponent too large")
        return Scalar(text, Rational(m.group("m")) * Rational(10) ** exp)
    return None


@functools.lru_cache(maxsize=1)
def _latex_parser():
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    norm = NormalizationConfig(
        basic_latex=True,
        units=False,
        malformed_operators=True,
        nits=False,
        boxed="none",
        equations=False,
    )
    conv = ConversionConfig(
        interpret_as_mixed_fractions=True,
        interpret_simple_eq_as_assignment=False,
        lowercase_symbols=False,
    )
    return functools.partial(latex2sympy, normalization_config=norm, conversion_config=conv)


def _exactify(expr: sympy.Basic) -> sympy.Basic:
    """Replace floats by exact rationals and the symbol `i` by the imaginary unit."""
    floats = {f: Rational(str(f)) for f in expr.atoms(sympy.Float)}
    if floats:
        expr = expr.xreplace(floats)
    subs = {}
    for s in expr.free_symbols:
        if s.name == "i":
            subs[s] = sympy.I
        elif s.name == "e":
            subs[s] = sympy.E
    return expr.xreplace(subs) if subs else expr


@functools.lru_cache(maxsize=50_000)
def parse_scalar(text: str) -> Scalar:
    """Read one value (number or expression); raise ParseFailure when it is not one."""
    fast = _fast_number(text)
    if fast is not None:
        return fast
    if _UNPARSABLE.search(text):
        raise ParseFailure("primes and colons are compared as text")
    latex = _DECIMAL_IN_TEXT.sub(
        lambda m: f"({m.group(1)}{m.group(2)}/1{'0' * len(m.group(2))})", text
    )
    try:
        value = _latex_parser()(latex)
    except Exception as e:  # the parser raises many kinds on bad input
        raise ParseFailure(f"cannot parse {text[:60]!r}: {type(e).__name__}") from None
    if isinstance(value, list | tuple):
        raise ParseFailure("several values where one was expected")
    if not isinstance(value, sympy.Basic) or isinstance(value, sympy.Set | sympy.MatrixBase):
        raise ParseFailure(f"not a single value: {type(value).__name__}")
    if isinstance(value, sympy.logic.boolalg.Boolean) and not isinstance(value, sympy.Expr):
        raise ParseFailure("a relation, not a value")
    try:
        value = _exactify(value)
    except Exception as e:  # sympy may raise anything on odd trees
        raise ParseFailure(f"cannot read {text[:60]!r}: {type(e).__name__}") from None
    if value.has(sympy.zoo, sympy.nan):
        raise ParseFailure("undefined value")
    return Scalar(text, value)


def _finite_decimal(v: Rational) -> bool:
    q = int(v.q)
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def _significant_digits(text: str) -> int:
    digits = re.sub(r"\D", "", text).lstrip("0")
    return len(digits)


def _decimal_rule(exact: sympy.Basic, dec: Scalar) -> bool | None:
    """The documented decimal tolerance; None when it does not apply.

    `dec` is the side written as a plain decimal, `exact` the other side's value; the rule
    applies when `exact` has no finite decimal form (it is the same in both directions).
    """
    if dec.decimal_places is None:
        return None
    if isinstance(exact, Rational) and _finite_decimal(exact):
        return None  # exact comparison applies
    if not (exact.is_real and exact.is_number):
        return None
    if _significant_digits(dec.text) < 3:
        return False
    k = dec.decimal_places
    half_ulp = Rational(1, 2 * 10**k)
    if isinstance(exact, Rational):
        return bool(abs(exact - dec.value) <= half_ulp)
    approx = sympy.N(exact, k + 30)
    return bool(abs(approx - dec.value) <= half_ulp)


def _numbers_equal(a: sympy.Basic, b: sympy.Basic) -> bool:
    """Exact equality of two constant values (rationals exactly, others to 50 digits)."""
    if a == b:
        return True
    a, b = _evaluate(a), _evaluate(b)
    if isinstance(a, Rational) and isinstance(b, Rational):
        return a == b
    va = sympy.N(a, _EVAL_DIGITS)
    vb = sympy.N(b, _EVAL_DIGITS)
    if (
        not (va.is_number and vb.is_number)
        or va.has(sympy.nan, sympy.zoo)
        or vb.has(sympy.nan, sympy.zoo)
    ):
        return False
    if va.has(sympy.oo, -sympy.oo) or vb.has(sympy.oo, -sympy.oo):
        return va == vb
    scale = max(abs(va), abs(vb))
    if scale == 0:
        return True
    if va == 0 or vb == 0:
        return sympy.simplify(a - b) == 0
    if abs(va - vb) > _REL_TOL * scale:
        return False
    # Close at 50 digits: confirm far beyond (10**60 + 1 is not 10**60).
    va, vb = sympy.N(a, _CONFIRM_DIGITS), sympy.N(b, _CONFIRM_DIGITS)
    return bool(
        abs(va - vb)
        <= sympy.Float(10, _CONFIRM_DIGITS) ** -(_CONFIRM_DIGITS - 20) * max(abs(va), abs(vb))
    )


def _evaluate(v: sympy.Basic) -> sympy.Basic:
    """Carry out unevaluated arithmetic (the parser keeps some), exactly."""
    try:
        return v.doit()
    except Exception:
        return v


def _random_points_equal(a: sympy.Basic, b: sympy.Basic, symbols: set) -> bool:
    rng = random.Random(1234)
    syms = sorted(symbols, key=lambda s: s.name)
    for _ in range(_N_POINTS):
        point = {s: Rational(rng.choice([-1, 1]) * rng.randint(11, 307), 97) for s in syms}
        va = sympy.N(a.subs(point), 30)
        vb = sympy.N(b.subs(point), 30)
        if (
            not (va.is_number and vb.is_number)
            or va.has(sympy.nan, sympy.zoo, sympy.oo)
            or vb.has(sympy.nan, sympy.zoo, sympy.oo)
        ):
            return False
        scale = max(abs(va), abs(vb), 1)
        if abs(va - vb) > sympy.Float(10) ** -20 * scale:
            return False
    return True


def values_equal(ref: Scalar, ans: Scalar) -> bool:
    """Whether an answer value equals a reference value by the rules of docs/grading.md."""
    a, b = ref.value, ans.value
    if _too_big(a) or _too_big(b):
        return a == b
    free = a.free_symbols | b.free_symbols
    if not free:
        if ans.decimal_places is not None and ref.decimal_places is not None:
            return a == b  # decimal against decimal: exact
        a, b = _evaluate(a), _evaluate(b)  # `10^{-3}` is the rational 1/1000
        rule = _decimal_rule(a, ans)
        if rule is None:
            rule = _decimal_rule(b, ref)
        if rule is not None:
            return rule
        return _numbers_equal(a, b)
    if a.free_symbols != b.free_symbols:
        # x + y - y style answers aside, different variables mean different answers.
        diff = sympy.simplify(a - b)
        return diff == 0
    diff = sympy.expand(a - b)
    if diff == 0:
        return True
    diff = sympy.simplify(diff)
    if diff == 0:
        return True
    if not diff.free_symbols:
        return _numbers_equal(diff, sympy.Integer(0)) if diff.is_number else False
    return _random_points_equal(a, b, free)
