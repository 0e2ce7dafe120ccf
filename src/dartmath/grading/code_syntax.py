"""Answers written in programming syntax (`5*k**3 + 215*k - 85`, `x**(13/5)`, `sqrt(2)/2`,
`2*pi`), as generated and converted datasets write them, rewritten as the LaTeX they stand for,
so that both sides are read by the one LaTeX path and compared by its rules.

Nothing is evaluated: the text is cut into tokens from a whitelist (numbers, one-letter names
with optional digits, a few function and constant names, `+ - * / ** ( ) ,` and relations) and
rebuilt by a recursive-descent parser into LaTeX text. Anything else (another name, an attribute,
a string, a bracket, a keyword, a lambda, a dunder) means the text is not programming syntax
and is left as it is; no `eval`, no `sympify`, no `parse_expr`.
"""

from __future__ import annotations

import re

MAX_LEN = 500  # longer answers are left as they are
MAX_DEPTH = 40  # nesting of parentheses and operators

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+)|(?P<name>[A-Za-z]\w*)"
    r"|(?P<op>\*\*|<=|>=|==|!=|[-+*/(),=<>]))"
)
_FUNCTIONS = {
    "sqrt": r"\sqrt{{{0}}}",
    "exp": r"e^{{{0}}}",
    "log": r"\ln\left({0}\right)",
    "sin": r"\sin\left({0}\right)",
    "cos": r"\cos\left({0}\right)",
    "tan": r"\tan\left({0}\right)",
    "Abs": r"\left|{0}\right|",
}
_CONSTANTS = {"pi": r"\pi", "oo": r"\infty", "E": "e", "I": "i"}
# Names that mark a text as programming syntax by themselves (`E` and `I` alone do not: a
# choice letter, a pronoun).
_MARKER_NAMES = (set(_FUNCTIONS) | set(_CONSTANTS)) - {"E", "I"}
_RELATIONS = {"=": "=", "==": "=", "<": "<", ">": ">", "<=": r"\le", ">=": r"\ge", "!=": r"\ne"}
_INDEXED = re.compile(r"^([A-Za-z])(\d+)$")
# A cheap first look: a star, or a marker name as a whole word; no LaTeX.
_MAYBE = re.compile(r"\*|\b(?:" + "|".join(sorted(_MARKER_NAMES)) + r")\b")


class _NotCode(Exception):
    """The text is not programming syntax (as far as this reader goes)."""


def code_to_latex(text: str) -> str | None:
    """The LaTeX form of `text` when it is a whole answer in programming syntax; else None."""
    if len(text) > MAX_LEN or not _MAYBE.search(text) or any(c in text for c in "\\{}$^"):
        return None
    try:
        tokens = _tokens(text)
    except _NotCode:
        return None
    if not any(t == "*" or t == "**" or t in _MARKER_NAMES for _, t in tokens):
        return None
    parser = _Parser(tokens)
    try:
        latex = parser.items()
        if parser.pos != len(tokens):
            raise _NotCode
    except _NotCode:
        return None
    return latex


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _NotCode
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        if kind == "name" and not (
            value in _FUNCTIONS or value in _CONSTANTS or _INDEXED.match(value) or len(value) == 1
        ):
            raise _NotCode
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    """items := relation (',' relation)*; relation := sum (relop sum)?;
    sum := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
    factor := ('-'|'+') factor | power; power := atom ('**' factor)?;
    atom := number | name | function '(' sum ')' | '(' items ')'  (Python's precedence)."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens) or (value is not None and self._peek() != value):
            raise _NotCode
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _NotCode

    def items(self) -> str:
        parts = [self.relation()]
        while self._peek() == ",":
            self._take()
            parts.append(self.relation())
        return ", ".join(parts)

    def relation(self) -> str:
        left = self.sum()
        op = self._peek()
        if op in _RELATIONS:
            self._take()
            return f"{left} {_RELATIONS[op]} {self.sum()}"
        return left

    def sum(self) -> str:
        out = self.term()
        while self._peek() in ("+", "-"):
            op = self._take()[1]
            out = f"{out} {op} {self.term()}"
        return out

    def term(self) -> str:
        out = self.factor()
        while self._peek() in ("*", "/"):
            op = self._take()[1]
            right = self.factor()
            # `*`, not `\cdot`: the LaTeX reader takes `d \cdot n` for a symbol `dcdot`
            out = rf"\frac{{{out}}}{{{right}}}" if op == "/" else f"{out} * {right}"
        return out

    def factor(self) -> str:
        self._enter()
        try:
            if self._peek() in ("-", "+"):
                op = self._take()[1]
                inner = self.factor()
                return f"-{inner}" if op == "-" else inner
            return self.power()
        finally:
            self.depth -= 1

    def power(self) -> str:
        base, simple = self.atom()
        if self._peek() != "**":
            return base
        self._take()
        exponent = self.factor()
        base = base if simple else rf"\left({base}\right)"
        return f"{base}^{{{exponent}}}"

    def atom(self) -> tuple[str, bool]:
        """LaTeX of an atom, and whether it can take an exponent without parentheses."""
        kind, value = self._take()
        if kind == "num":
            return value, True
        if kind == "name":
            if value in _FUNCTIONS:
                self._take("(")
                self._enter()
                arg = self.sum()
                self.depth -= 1
                self._take(")")
                return _FUNCTIONS[value].format(arg), False
            if value in _CONSTANTS:
                return _CONSTANTS[value], True
            m = _INDEXED.match(value)
            return (f"{m.group(1)}_{{{m.group(2)}}}" if m else value), True
        if value == "(":
            self._enter()
            inner = self.items()
            self.depth -= 1
            self._take(")")
            return rf"\left({inner}\right)", True  # takes an exponent as it is
        raise _NotCode
