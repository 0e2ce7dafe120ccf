"""Is an extracted answer equivalent to the reference? (rules: docs/grading.md, section 3)

Pure and deterministic. It may be slow or hang on hostile input (sympy can spin inside C
code), so the pipeline calls it only inside worker processes with a hard time limit
(`dartmath.grading.grader`).
"""

from __future__ import annotations

import re

import sympy

from dartmath.grading.answer import (
    Equation,
    MatrixNode,
    Node,
    Percent,
    RealSet,
    Seq,
    Text,
    Value,
    _as_open_interval,
    read,
)
from dartmath.grading.extract import OR_WORD
from dartmath.grading.normalize import lone_letters, normalize
from dartmath.grading.scalar import ParseFailure, Scalar, values_equal

MAX_PARSE_LEN = 1000
# A choice reference: the letter alone, the letter and its option (`B. y = 7`, `(B) 7`), or
# the letter, a space and the option's text as a capitalised word (`C Cecile`).
_CHOICE_REF = re.compile(
    r"^\(?\s*([A-E])\s*\)?$|^\(\s*([a-e])\s*\)$"
    r"|^\(?([A-E])(?:\)|\s*[.:)])\s+\S.*$|^([A-E])\s+[A-Z][a-z].*$",
    re.DOTALL,
)
# Without a mark after the letter (`C Cecile`) the reference might not be a choice at all
# (`A Major`): only the bare letter answers it.
_BARE_LETTER = re.compile(r"^\(?\s*[A-Ea-e]\s*\)?\.?$")
# What may follow an answer's option letter: punctuation or a space.
_AFTER_LETTER = r"[\s.:),;。，、：]"
# An answer starting with a letter, then nothing, punctuation, a space or CJK text.
_CHOICE_ANS = re.compile(
    rf"^\(?\s*([A-Ea-e])\s*\)?(?=$|{_AFTER_LETTER}|[\u4e00-\u9fff])", re.DOTALL
)
# ... after which another letter offered as an alternative (`A or B`, `(B) and (C)`, `A, B`)
# makes it a hedge, not an answer. ("D, it can't be A or B" still answers D.)
_OTHER_CHOICE = re.compile(
    rf"{_AFTER_LETTER}*(?:{OR_WORD}\s*)?(?:\(\s*[A-Ea-e]\s*\)|[A-E](?![A-Za-z]))"
)
_TEXT = re.compile(r"^[A-Za-z][A-Za-z '\-.]*[A-Za-z.]$")
_NON_WORD_MATH = {
    "pi",
    "sqrt",
    "infty",
    "frac",
    "cdot",
    "times",
    "sin",
    "cos",
    "tan",
    "log",
    "ln",
    "exp",
}


# Yes/no answers: "true" and "false" are their synonyms.
_BOOLEAN = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}


def _choice(s: str) -> tuple[str, bool] | None:
    """(letter, whether only the bare letter answers it) for a choice reference, else None."""
    m = _CHOICE_REF.match(s)
    if m is None:
        return None
    return next(g for g in m.groups() if g).upper(), m.group(4) is not None


# A decimal comma (`1,22`, `1000,99`, `0,111`): the whole answer is digits, one comma, digits,
# and it is not digit grouping (normalize has already read `1,000` as 1000).
_COMMA_DECIMAL = re.compile(r"^([+-]?\d+),(\d+)$")
_POINT_DECIMAL = re.compile(r"^([+-]?\d+)\.(\d+)$")


def _decimal_comma(a: str, b: str) -> bool:
    """`a` is `b` written with a decimal comma: the same digits on both sides of the mark.

    A lone `1,22` could be the list 1, 22; only against a decimal with exactly these digits
    (`1.22`) is the decimal reading the one that fits, in either direction.
    """
    m, n = _COMMA_DECIMAL.match(a), _POINT_DECIMAL.match(b)
    return bool(m and n and m.groups() == n.groups())


def answer_letter(s: str) -> str | None:
    """The option letter an answer starts with (`(B)`, `D, since ...`), or None; None also
    when another letter follows as an alternative (`A or B`)."""
    m = _CHOICE_ANS.match(s)
    if m is None or _OTHER_CHOICE.match(s, m.end()):
        return None
    return m.group(1).upper()


def _is_text(s: str) -> bool:
    if not _TEXT.match(s):
        return False
    words = re.findall(r"[A-Za-z]+", s)
    return any(len(w) >= 3 and w.lower() not in _NON_WORD_MATH for w in words)


def _compact(s: str) -> str:
    """Without spaces, except one between two digits (`1 4` is not `14`, nor `1\n4`)."""
    s = re.sub(r"(?<=\d)\s*\n\s*(?=\d)", "\x01", s)
    return re.sub(r"\s+", "", re.sub(r"(?<=\d)\s+(?=\d)", "\x00", s))


def _percent_matches_value(pct: Percent, val: Value, *, percent_is_ref: bool) -> bool:
    """`50` for `50\\%` (the number asked for), or `0.5` for `50\\%` (the same value).

    A reference written as a fraction or an expression (`\\frac{40}{9}`) is a ratio, not a
    percentage with its sign dropped: a percent answer must then have the same value
    (`4\\frac{4}{9}\\%` is 40/900, not 40/9).
    """
    as_fraction = pct.scalar.__class__(pct.scalar.text, pct.scalar.value / 100)
    readings = [as_fraction]
    if percent_is_ref or _PLAIN_NUMBER.match(re.sub(r"[\s,{}]", "", val.scalar.text)):
        readings.insert(0, pct.scalar)
    for p in readings:
        # values_equal reads its first argument as the reference (the rounding rule differs)
        if values_equal(p, val.scalar) if percent_is_ref else values_equal(val.scalar, p):
            return True
    return False


_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")


def _canon_text(s: str) -> str:
    """Lower case without spaces and punctuation; primes stay (`B'` is not `B`)."""
    return re.sub(r"[^a-z0-9']", "", s.lower())


def is_equivalent(ref: str, ans: str) -> bool:
    """True when `ans` (extracted from a response) has the same value as the reference `ref`."""
    if ans is None:
        return False
    nref, nans = normalize(ref), normalize(ans)
    ref_vars, ans_vars = lone_letters(nref), lone_letters(nans)
    if ans_vars:  # a letter that is a variable on one side is no unit on the other
        nref = normalize(ref, ans_vars)
    if ref_vars:
        nans = normalize(ans, ref_vars)
    if _compact(nref) == _compact(nans):
        return bool(nref)
    if _decimal_comma(nref, nans) or _decimal_comma(nans, nref):
        return True
    choice = _choice(nref)
    if choice is not None:
        letter, bare_only = choice
        if bare_only and not _BARE_LETTER.match(nans):
            return False
        return answer_letter(nans) == letter
    cref = _canon_text(nref)
    if cref in _BOOLEAN:
        return _BOOLEAN[cref] == _BOOLEAN.get(_canon_text(nans))
    if _is_text(nref):
        return cref == _canon_text(nans)
    if len(nans) > MAX_PARSE_LEN or len(nref) > MAX_PARSE_LEN:
        return False
    try:
        ref_node = read(nref)
        ans_node = read(nans)
    except ParseFailure:
        return False
    try:
        return bool(nodes_equal(ref_node, ans_node))
    except ParseFailure:
        return False
    except Exception:  # sympy failing on a comparison proves nothing: not equivalent
        return False


def _unwrap_assignment(node: Node, other: Node) -> Node:
    """`x = 5` stands for `5` when the other side is not an equation."""
    if (
        isinstance(node, Equation)
        and not isinstance(other, Equation)
        and (node.lhs_is_symbol or node.names_value)
    ):
        return node.rhs
    return node


def _single(node: Node) -> Node:
    if isinstance(node, Seq) and len(node.items) == 1:
        return node.items[0]
    return node


def nodes_equal(ref: Node, ans: Node) -> bool:
    """Equality of two read answers by kind (see the table in docs/grading.md)."""
    ans = _unwrap_assignment(ans, ref)
    ref = _unwrap_assignment(ref, ans)
    ref, ans = _single(ref), _single(ans)

    if isinstance(ref, Text):
        return isinstance(ans, Text) and ans.text == ref.text
    if isinstance(ref, Value):
        if isinstance(ans, Value):
            return values_equal(ref.scalar, ans.scalar)
        if isinstance(ans, Percent):
            return _percent_matches_value(ans, ref, percent_is_ref=False)
        return False
    if isinstance(ref, Percent):
        if isinstance(ans, Percent):
            return values_equal(ref.scalar, ans.scalar)
        if isinstance(ans, Value):
            return _percent_matches_value(ref, ans, percent_is_ref=True)
        return False
    if isinstance(ref, Equation):
        return isinstance(ans, Equation) and _equations_equal(ref, ans)
    if isinstance(ref, RealSet):
        if isinstance(ans, Seq) and ans.maybe_open_interval:
            try:
                ans = _as_open_interval(ans)
            except ParseFailure:
                return False
        if not isinstance(ans, RealSet):
            return False
        if ans.from_inequality and not ref.from_inequality:
            return False  # an interval was asked for: an inequality does not answer it
        return _real_sets_equal(ref, ans)
    if isinstance(ref, Seq):
        if isinstance(ans, MatrixNode):
            ans = _vector_as_seq(ans)
        if not isinstance(ans, Seq):
            return False
        if ref.ordered or ans.ordered:
            # a tuple against a bare list (`(12, 34)` / `12, 34`): equal in the same order
            if not (ref.ordered and ans.ordered) and (ref.braced or ans.braced):
                return False
            return _ordered_equal(ref.items, ans.items)
        return _unordered_equal(ref.items, ans.items)
    if isinstance(ref, MatrixNode):
        if isinstance(ans, Seq) and (ans.ordered or not ans.braced):
            vec = _vector_as_seq(ref)
            return vec is not None and _ordered_equal(vec.items, ans.items)
        return (
            isinstance(ans, MatrixNode)
            and len(ref.rows) == len(ans.rows)
            and all(_ordered_equal(r, a) for r, a in zip(ref.rows, ans.rows, strict=True))
        )
    return False


def _vector_as_seq(node: MatrixNode) -> Seq | None:
    if len(node.rows) == 1:
        return Seq(node.rows[0], ordered=True)
    if all(len(r) == 1 for r in node.rows):
        return Seq(tuple(r[0] for r in node.rows), ordered=True)
    return None


def _ordered_equal(a: tuple[Node, ...], b: tuple[Node, ...]) -> bool:
    return len(a) == len(b) and all(nodes_equal(x, y) for x, y in zip(a, b, strict=True))


def _unordered_equal(ref: tuple[Node, ...], ans: tuple[Node, ...]) -> bool:
    return all(any(nodes_equal(r, a) for a in ans) for r in ref) and all(
        any(nodes_equal(r, a) for r in ref) for a in ans
    )


def _equations_equal(ref: Equation, ans: Equation) -> bool:
    if (
        ref.lhs_is_symbol
        and ans.lhs_is_symbol
        and ref.lhs_text.replace(" ", "") == ans.lhs_text.replace(" ", "")
    ):
        return nodes_equal(ref.rhs, ans.rhs)
    d1, d2 = ref.difference, ans.difference
    if d1 is None or d2 is None or d2 == 0 or d1 == 0:
        return False
    ratio = sympy.simplify(d1 / d2)
    return bool(ratio.is_number and not ratio.free_symbols and ratio != 0 and ratio.is_finite)


def _intervals(s: sympy.Set) -> list[sympy.Interval] | None:
    parts = list(s.args) if isinstance(s, sympy.Union) else [s]
    if not all(isinstance(p, sympy.Interval) for p in parts):
        return None
    return sorted(
        parts,
        key=lambda iv: (
            sympy.N(iv.start)
            if iv.start.is_finite
            else (-1e308 if iv.start == -sympy.oo else 1e308)
        ),
    )


def _written(x: sympy.Basic, decimals: tuple[Scalar, ...]) -> Scalar:
    """The endpoint `x` as written: its decimal form when it was written as a decimal."""
    return next((d for d in decimals if d.value == x), Scalar(str(x), x))


def _real_sets_equal(ref: RealSet, ans: RealSet) -> bool:
    a, b = ref.value, ans.value
    if a == b:
        return True
    ia, ib = _intervals(a), _intervals(b)
    if ia is None or ib is None or len(ia) != len(ib):
        return False

    def same_end(x: sympy.Basic, y: sympy.Basic) -> bool:
        if not (x.is_finite and y.is_finite):
            return x == y
        # the same comparison as for single values, so the decimal rule applies to every end
        return values_equal(_written(x, ref.decimals), _written(y, ans.decimals))

    return all(
        p.left_open == q.left_open
        and p.right_open == q.right_open
        and same_end(p.start, q.start)
        and same_end(p.end, q.end)
        for p, q in zip(ia, ib, strict=True)
    )
