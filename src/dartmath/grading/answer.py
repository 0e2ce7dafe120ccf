"""Read a normalised answer string into its kind: value, equation, set of reals, sequence, matrix.

The kinds and their rules are in docs/grading.md, section 3. Splitting on commas, brackets and
relation signs is done here at the top level only (brackets are balanced first); the values
inside are read by `scalar.parse_scalar`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import sympy
from sympy.core.function import AppliedUndef

from dartmath.grading.brackets import depths
from dartmath.grading.scalar import _UNPARSABLE, ParseFailure, Scalar, parse_scalar, values_equal

_PAIRS = "()[]{}"
_RELATIONS = re.compile(
    r"\\(?:leq?slant|geq?slant|leq?|geq?|neq?|lt|gt)(?![a-zA-Z])|<=|>=|!=|[<>=]"
)
_REL_OPS = {
    "\\le": "<=",
    "\\leq": "<=",
    "\\leqslant": "<=",
    "\\ge": ">=",
    "\\geq": ">=",
    "\\geqslant": ">=",
    "\\lt": "<",
    "\\gt": ">",
    "\\ne": "!=",
    "\\neq": "!=",
    "<=": "<=",
    ">=": ">=",
    "!=": "!=",
    "<": "<",
    ">": ">",
    "=": "=",
}
_MATRIX_BEGIN = re.compile(r"\\begin\{(?P<env>[pbBvV]?matrix|array|smallmatrix)\}(?:\{[^{}]*\})?")
# Between literal matrices of a sum or product: `+`, `-`, a product sign or nothing, and an
# optional constant factor (`2\begin{pmatrix}..`, `A - \frac12 B`).
_MATRIX_GLUE = re.compile(r"^\s*(?P<op>[+-]|\\cdot|\\times|\*)?\s*(?P<factor>[^+\-]*?)\s*$")
_INFINITY = re.compile(r"^[+-]?\s*(?:\\infty|\\inf|infinity|oo|∞)$")
_PLUS_MINUS = re.compile(r"\\(?:pm|mp)(?![a-zA-Z])")
_SYMBOL = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z]\))?$")
_SYMBOL_TUPLE = re.compile(
    r"^\((?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?"
    r"(?:,(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?)+\)$"
)
# The name of a geometric quantity: a letter or 2-4 capitals (a segment, a polygon), with an
# optional subscript, optionally in `|...|`; or a ratio of such names (`P:Q`, `\frac{PA}{PB}`).
_NAME = r"(?:[A-Za-z]|[A-Z]{2,4}|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?"
_NAME_TERM = rf"(?:{_NAME}|\|{_NAME}\||\\(?:overline|angle)\{{?{_NAME}\}}?)"
_QUANTITY_NAME = re.compile(
    rf"^(?:{_NAME_TERM}(?::{_NAME_TERM})*|\\frac\{{{_NAME_TERM}\}}"
    rf"\{{{_NAME_TERM}\}}|{_NAME_TERM}/{_NAME_TERM})$"
)


@dataclass(frozen=True)
class Value:
    """A single number or expression."""

    scalar: Scalar


@dataclass(frozen=True)
class Percent:
    """A value written with a percent sign; `scalar` is the number before the sign."""

    scalar: Scalar


@dataclass(frozen=True)
class Text:
    """An answer compared as its normalised string only (times `10:00`, ratios, primes)."""

    text: str


@dataclass(frozen=True)
class Equation:
    """`lhs = rhs` (a chain `a = b = c` keeps its first and last sides).

    `lhs_is_symbol` marks an assignment such as `x = 5` or `(m, n) = (5, 1)`; `names_value`
    marks an equation that only names a constant (`|AB| = 1`, `2 + 3 = 5`); both stand for
    their right-hand side when the other answer is not an equation.
    """

    lhs_text: str
    rhs: Node
    difference: sympy.Basic | None
    lhs_is_symbol: bool
    names_value: bool


@dataclass(frozen=True)
class RealSet:
    """A set of real numbers: an interval, a union of them, or what an inequality describes."""

    value: sympy.Set
    from_inequality: bool = False
    # endpoints written as plain decimals (`2.6667`): compared by the decimal rule
    decimals: tuple[Scalar, ...] = ()


@dataclass(frozen=True)
class Seq:
    """A tuple (ordered) or a set / list of solutions (unordered)."""

    items: tuple[Node, ...]
    ordered: bool
    maybe_open_interval: bool = False  # `(a, b)`: a point, or the open interval
    braced: bool = False  # written as a set `\{...\}`, not as a bare list `1, 2`


@dataclass(frozen=True)
class MatrixNode:
    """A matrix or vector, row by row."""

    rows: tuple[tuple[Node, ...], ...]


Node = Value | Percent | Text | Equation | RealSet | Seq | MatrixNode


def split_top(s: str, sep: str) -> list[str]:
    """Split on `sep` (which holds no bracket) where no `(`, `[` or `{` is open; `\\{` counts
    as `{`."""
    parts, start, pos, depth = [], 0, 0, 0
    # between two brackets the depth is the same: look for `sep` in each stretch at depth 0
    for end, after in (*depths(s, pairs=_PAIRS), (len(s), 0)):
        if depth == 0:
            i = s.find(sep, pos, end)
            while i >= 0:
                parts.append(s[start:i])
                start = i + len(sep)
                i = s.find(sep, start, end)
        pos, depth = end + 1, after
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _wrapped(s: str) -> tuple[str, str, str] | None:
    """(open, close, inner) when one bracket pair encloses the whole string."""
    for left, right in (("\\{", "\\}"), ("\\langle", "\\rangle")):
        if s.startswith(left) and s.endswith(right):
            inner = s[len(left) : len(s) - len(right)]
            if _balanced(inner):
                return left, right, inner
    if len(s) >= 2 and s[0] == "{" and s[-1] == "}" and _balanced(s[1:-1]):
        return "{", "}", s[1:-1]  # `{1, 2}` renders as the bare list `1, 2`
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        inner = s[1:-1]
        if _balanced(inner):
            return s[0], s[-1], inner
    return None


def _balanced(s: str) -> bool:
    depth = 0
    for _, depth in depths(s, pairs=_PAIRS):
        if depth < 0:
            return False
    return depth == 0


def _endpoint(text: str) -> sympy.Basic:
    t = text.replace(" ", "")
    if _INFINITY.match(t):
        return -sympy.oo if t.startswith("-") else sympy.oo
    v = parse_scalar(text).value
    if not (v.is_number and v.is_real is not False):
        raise ParseFailure("interval endpoint is not a real number")
    return v


def _written_decimals(texts: list[str]) -> tuple[Scalar, ...]:
    """The endpoints among `texts` written as plain decimals (for the decimal rule)."""
    out = []
    for t in texts:
        if not _INFINITY.match(t.replace(" ", "")):
            scalar = parse_scalar(t)
            if scalar.decimal_places is not None:
                out.append(scalar)
    return tuple(out)


def _interval(left: str, a: str, b: str, right: str) -> RealSet:
    lo, hi = _endpoint(a), _endpoint(b)
    return RealSet(
        sympy.Interval(lo, hi, left_open=left == "(", right_open=right == ")"),
        decimals=_written_decimals([a, b]),
    )


def _inequality(s: str) -> RealSet:
    """The set of reals described by `x > 3` or `-1 \\le x < 2` (one variable)."""
    pieces = re.split(f"({_RELATIONS.pattern})", s)
    terms = [p.strip() for p in pieces[0::2]]
    ops = [_REL_OPS[p] for p in pieces[1::2]]
    if any(not t for t in terms) or "=" in ops or ("!=" in ops and len(ops) > 1):
        raise ParseFailure("not an inequality")
    values = [
        _endpoint(t) if _INFINITY.match(t.replace(" ", "")) else parse_scalar(t).value
        for t in terms
    ]
    # `0 < f(x) < 1`: the unknown is the value f(x), one function applied to one argument.
    applied = set().union(*(v.atoms(AppliedUndef) for v in values))
    if len(applied) == 1:
        x = sympy.Dummy("u", real=True)
        values = [v.xreplace({next(iter(applied)): x}) for v in values]
    symbols = set().union(*(v.free_symbols for v in values))
    if len(symbols) != 1:
        raise ParseFailure("an inequality in one variable was expected")
    (x,) = symbols
    result = sympy.S.Reals
    if ops == ["!="]:  # `x \\ne 3`: the reals but the solutions of `x = 3`
        points = sympy.solveset(sympy.Eq(values[0], values[1]), x, domain=sympy.S.Reals)
        if not isinstance(points, sympy.FiniteSet):
            raise ParseFailure("not a finite set of excluded points")
        return RealSet(
            sympy.Complement(sympy.S.Reals, points),
            from_inequality=True,
            decimals=_written_decimals(terms),
        )
    for lhs, op, rhs in zip(values, ops, values[1:], strict=False):
        rel = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge}[op](lhs, rhs)
        part = sympy.solve_univariate_inequality(rel, x, relational=False, domain=sympy.S.Reals)
        result = sympy.Intersection(result, part)
    return RealSet(result, from_inequality=True, decimals=_written_decimals(terms))


def _is_constant(node: Node) -> bool:
    if isinstance(node, Value | Percent):
        return not node.scalar.value.free_symbols
    if isinstance(node, Text):
        return True
    if isinstance(node, Seq):
        return all(_is_constant(item) for item in node.items)
    return False


def _equation(parts: list[str]) -> Equation:
    lhs_text, rhs_text = parts[0], parts[-1]
    if not lhs_text or not rhs_text:
        raise ParseFailure("empty side of an equation")
    rhs = read(rhs_text)
    difference = None
    lhs_scalar = None
    try:
        lhs_scalar = parse_scalar(lhs_text)
        if isinstance(rhs, Value):
            difference = lhs_scalar.value - rhs.scalar.value
    except ParseFailure:
        pass
    compact = lhs_text.replace(" ", "")
    is_symbol = bool(_SYMBOL.match(compact) or _SYMBOL_TUPLE.match(compact))
    if lhs_scalar is not None and not lhs_scalar.value.free_symbols:
        # `\\sqrt{4} = 2` names the value 2; `3 = \\frac{10}{9}` is false and names nothing
        names_value = (
            isinstance(rhs, Value)
            and not rhs.scalar.value.free_symbols
            and values_equal(rhs.scalar, lhs_scalar)
        )
    else:
        names_value = bool(_QUANTITY_NAME.match(compact)) and _is_constant(rhs)
    return Equation(lhs_text, rhs, difference, is_symbol, names_value)


def _matrix_literals(s: str) -> list[tuple[int, int, str]] | None:
    """(start, end, body) of each `\\begin{env}...\\end{env}` at the top level of `s`, in order;
    None when an environment is not closed. `|` around a matrix (a determinant) is not a
    matrix, so only what the caller accepts between the literals decides what `s` is."""
    out, pos = [], 0
    while True:
        m = _MATRIX_BEGIN.search(s, pos)
        if m is None:
            return out
        begin, end = f"\\begin{{{m.group('env')}}}", f"\\end{{{m.group('env')}}}"
        depth, i = 1, m.end()
        while depth:
            nb, ne = s.find(begin, i), s.find(end, i)
            if ne < 0:
                return None
            if 0 <= nb < ne:
                depth, i = depth + 1, nb + len(begin)
            else:
                depth, i = depth - 1, ne + len(end)
        out.append((m.start(), i, s[m.end() : i - len(end)]))
        pos = i


def _matrix_expression(s: str) -> MatrixNode | None:
    """A matrix literal, one in `(...)` / `[...]`, or a sum / product of literal matrices with
    constant factors (evaluated: `\\begin{pmatrix}1\\\\2\\end{pmatrix} + ...`); None when `s`
    is not one."""
    if "\\begin" not in s:
        return None
    literals = _matrix_literals(s)
    if not literals:
        return None
    head, tail = s[: literals[0][0]].strip(), s[literals[-1][1] :].strip()
    if (head, tail) in (("(", ")"), ("[", "]")):
        head = tail = ""  # `(\begin{pmatrix}..\end{pmatrix})`: brackets around the matrix
    if tail:
        return None
    if len(literals) == 1 and not head:
        return _matrix(literals[0][2])
    total, term = None, None  # products bind tighter than sums: total + term
    glues = [head] + [s[a[1] : b[0]] for a, b in zip(literals, literals[1:], strict=False)]
    for glue, (_, _, body) in zip(glues, literals, strict=True):
        g = _MATRIX_GLUE.match(glue)
        if g is None:
            return None
        op, factor = g.group("op"), g.group("factor")
        value = _matrix_value(_matrix(body))
        if factor:
            try:
                c = parse_scalar(factor).value
            except ParseFailure:
                return None  # `M = ...`, `..., ...`: not arithmetic on matrices
            if c.free_symbols:
                return None
            value = c * value
        if term is None:
            if op not in (None, "+", "-"):
                return None
            term = -value if op == "-" else value
        elif op in ("+", "-"):
            total = term if total is None else total + term
            term = -value if op == "-" else value
        else:
            term = term * value  # juxtaposition, `\cdot`, `\times`, `*`: matrix product
    result = term if total is None else total + term
    rows = tuple(tuple(Value(Scalar(str(v), v)) for v in result.row(r)) for r in range(result.rows))
    return MatrixNode(rows)


def _matrix_value(node: MatrixNode) -> sympy.Matrix:
    if not all(isinstance(c, Value) for row in node.rows for c in row):
        raise ParseFailure("matrix arithmetic on entries that are not values")
    return sympy.Matrix([[c.scalar.value for c in row] for row in node.rows])


def _matrix(body: str) -> MatrixNode:
    rows = [r for r in re.split(r"\\\\", body) if r.strip() and r.strip() != "\\hline"]
    parsed = tuple(tuple(read(c) for c in split_top(r, "&")) for r in rows)
    if not parsed or len({len(r) for r in parsed}) != 1:
        raise ParseFailure("ragged or empty matrix")
    return MatrixNode(parsed)


@functools.lru_cache(maxsize=50_000)
def read(s: str) -> Node:
    """Read a normalised answer into a Node; raise ParseFailure when it cannot be read."""
    try:
        return _read(s)
    except ParseFailure:
        raise
    except RecursionError:
        raise ParseFailure("too deeply nested") from None
    except Exception as e:  # sympy raises many kinds (NotImplementedError, TypeError, ...)
        raise ParseFailure(f"cannot read {s[:60]!r}: {type(e).__name__}") from None


def _read(s: str) -> Node:
    s = s.strip()
    if not s:
        raise ParseFailure("empty")
    matrix = _matrix_expression(s)
    if matrix is not None:
        return matrix
    unions = split_top(s, "\\cup")
    if len(unions) > 1:
        sets = [read(u) for u in unions]
        if all(isinstance(n, Seq) and not n.ordered for n in sets):
            # `\{1, 3\} \cup \{2, 4\}`: a union of finite sets is the set of all elements
            return Seq(tuple(item for n in sets for item in n.items), ordered=False, braced=True)
        out, decimals = [], []
        for node in sets:
            if isinstance(node, Seq) and node.maybe_open_interval:
                node = _as_open_interval(node)
            if not isinstance(node, RealSet):
                raise ParseFailure("union of things that are not sets of reals")
            out.append(node.value)
            decimals.extend(node.decimals)
        return RealSet(sympy.Union(*out), decimals=tuple(decimals))
    wrapped = _wrapped(s)
    if (
        wrapped
        and wrapped[0] == "("
        and wrapped[1] == ")"
        and len(split_top(wrapped[2], "=")) > 1
        and len(_split_list(wrapped[2])) == 1
    ):
        return read(wrapped[2])  # `(20 + 25 = 45)`: brackets around a whole equation
    if wrapped:
        left, right, inner = wrapped
        parts = _split_list(inner)
        if left in ("\\{", "{"):
            return Seq(tuple(read(p) for p in parts if p), ordered=False, braced=left == "\\{")
        if left == "\\langle":
            return Seq(tuple(read(p) for p in parts), ordered=True)
        if len(parts) == 2:
            infinite = any(_INFINITY.match(p.replace(" ", "")) for p in parts)
            if infinite or (left, right) != ("(", ")"):
                return _interval(left, parts[0], parts[1], right)
            return Seq((read(parts[0]), read(parts[1])), ordered=True, maybe_open_interval=True)
        if len(parts) > 2:
            return Seq(tuple(read(p) for p in parts), ordered=True)
    parts = _split_list(s)
    if len(parts) > 1:
        groups = _assignment_groups(parts)
        if groups:
            return Seq(tuple(read(g) for g in groups), ordered=False)
        return Seq(tuple(read(p) for p in parts if p), ordered=False)
    pm = _PLUS_MINUS.findall(s)
    if len(pm) == 1:
        first, second = ("+", "-") if pm[0] == "\\pm" else ("-", "+")
        return Seq(
            (read(_PLUS_MINUS.sub(first, s)), read(_PLUS_MINUS.sub(second, s))), ordered=False
        )
    if _RELATIONS.search(_mask_groups(s)):
        eq = split_top(s, "=")
        if len(eq) > 1 and not re.search(r"[<>]|\\(?:le|ge|lt|gt|ne)", s):
            return _equation(eq)
        return _inequality(s)
    if _UNPARSABLE.search(s):
        return Text(s.replace(" ", ""))
    if s.endswith("%"):
        return Percent(parse_scalar(s[:-1].strip()))
    return Value(parse_scalar(s))


def _assignment_groups(parts: list[str]) -> list[str] | None:
    """`p = 5, q = 2, p = 7, q = 2` (the same variables assigned again and again, as after
    "p = 5, q = 2 and p = 7, q = 2"): the solution groups `p = 5, q = 2` and `p = 7, q = 2`."""
    names = []
    for p in parts:
        sides = split_top(p, "=")
        if len(sides) != 2 or not _SYMBOL.match(sides[0].replace(" ", "")):
            return None
        names.append(sides[0].replace(" ", ""))
    k = len(set(names))
    if k < 2 or len(names) % k or len(names) == k:
        return None
    if any(names[i] != names[i % k] for i in range(len(names))):
        return None
    return [", ".join(parts[i : i + k]) for i in range(0, len(parts), k)]


def _mask_groups(s: str) -> str:
    """`s` with the content of `{...}` groups blanked: `\\sum_{k=0}` holds no relation."""
    out, pos, depth = [], 0, 0
    for i, after in depths(s):
        out.append(s[pos:i] if depth <= 0 else " " * (i - pos))
        out.append("{" if s[i] == "{" and after <= 0 else " ")  # kept only past a stray `}`
        pos, depth = i + 1, after
    out.append(s[pos:] if depth <= 0 else " " * (len(s) - pos))
    return "".join(out)


def _split_list(s: str) -> list[str]:
    """Split a list on top-level `;` (groups such as `p=5,q=2;p=7,q=2`), else on commas."""
    parts = split_top(s, ";")
    if len(parts) == 1:
        parts = split_top(s, ",")
    return parts


def _as_open_interval(node: Seq) -> RealSet:
    a, b = node.items
    if not (isinstance(a, Value) and isinstance(b, Value)):
        raise ParseFailure("not an interval")
    lo, hi = a.scalar.value, b.scalar.value
    if not (lo.is_real and hi.is_real):
        raise ParseFailure("not an interval")
    decimals = tuple(x.scalar for x in (a, b) if x.scalar.decimal_places is not None)
    return RealSet(sympy.Interval.open(lo, hi), decimals=decimals)
