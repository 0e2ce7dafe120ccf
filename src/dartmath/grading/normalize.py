"""String normalisation of answers: remove what never changes a value (docs/grading.md, sec. 2).

Pure string work, linear time; applied to both the reference and the extracted answer.
"""

from __future__ import annotations

import re

from dartmath.grading.brackets import closing_brace
from dartmath.grading.code_syntax import code_to_latex

_SPACING = re.compile(r"(?<!\\)\\[!,;:> ]|\\q?quad|\\(?:display|text|script)style\b|~")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![a-zA-Z])\.?")
_DEGREES = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|\\circ\b|°|\\degree\b|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}"
)
_WRAPPERS = (
    "\\mathrm",
    "\\textbf",
    "\\mathbf",
    "\\textit",
    "\\mathit",
    "\\boldsymbol",
    "\\textrm",
    "\\mathsf",
    "\\mathcal",
    "\\mathscr",
    "\\mathfrak",
    "\\mathbb",
    "\\mathnormal",
    "\\textsf",
    "\\texttt",
    "\\textup",
    "\\emph",
    "\\bf",
    "\\rm",
)
_TEXT_CMDS = ("\\text", "\\mbox", "\\textnormal")
_CONNECTIVE = re.compile(
    r"\\(?:text|mbox)\{\s*(?:or|and|,)\s*\}|\s+(?:or|and)\s+"
    r"|(?<=[)\]])\s*(?:or|and)\s*(?=[(\[])",
    re.IGNORECASE,
)
# Thousands separators: a leading group of 1-3 digits that is not 0, then groups of three.
_THOUSANDS = re.compile(r"^[+-]?(?!0,)\d{1,3}(?:,\d{3})+(?:\.\d+)?%?$")
# `,\!` is only ever typeset as a digit-group separator (also Indian 2-digit groups).
_COMMA_BANG = re.compile(r"(?<=\d),\s*\\!\s*(?=\d)")
# `{,}` between digits: a thousands separator when every later group has three digits.
_BRACE_COMMA_NUMBER = re.compile(r"(?<!\d)\d+(?:\{,\}\d+)+")
# Control characters left where `\f`, `\b`, `\a`, `\v`, `\r` lost their backslash to a
# string escape (`\frac` written in a non-raw string becomes form feed + "rac").
_MANGLED = {"\x0c": "\\f", "\x08": "\\b", "\x07": "\\a", "\x0b": "\\v", "\r": "\\r"}
_MANGLED_RE = re.compile("([\x0c\x08\x07\x0b\r])(?=[a-z])")
# A doubled backslash before a command name (an escaping artefact): `\\frac` → `\frac`.
_COMMANDS = (
    "frac|dfrac|tfrac|sqrt|left|right|pi|cdot|times|div|infty|text|mathrm|mathbf|le|leq|"
    "ge|geq|lt|gt|ne|neq|pm|mp|cup|cap|in|approx|circ|angle|alpha|beta|gamma|delta|"
    "theta|lambda|mu|sigma|omega|phi|varphi|ln|log|sin|cos|tan|sec|csc|cot|exp|"
    "boxed|dots|ldots|cdots|binom|overline|mathcal|emptyset|varnothing|prime"
)
_DOUBLED = re.compile(r"(?<!\\)\\\\(?=(?:" + _COMMANDS + r")(?![a-zA-Z]))")
_PERCENT_WORD = re.compile(
    r"(?<=[\d}$])\s*(?:\\(?:text|mbox|textnormal)\s*\{\s*)?"
    r"(?:percent(?:age)?|pct)\b\.?(?:\s*\})?",
    re.IGNORECASE,
)
# The whole answer "all reals": `\mathbb{R}`, `\R`, `ℝ`, "all real numbers" (also after `x \in`).
_ALL_REALS = re.compile(
    r"^\s*(?:[a-zA-Z]\s*\\in\s*)?(?:\\mathbb\s*\{\s*R\s*\}|\\mathbb\s+R|\\R|ℝ"
    r"|(?:\\text\{\s*)?all\s+real\s+numbers\s*\}?)\s*$",
    re.IGNORECASE,
)
_EMPTY_SET = re.compile(r"\\\{\s*\\\}")
_AM_PM = re.compile(r"\{\s*[ap]\.?\s*m\b\.?\s*\}", re.IGNORECASE)
# A whole answer in bold: `**12**`.
BOLD = re.compile(r"^\*\*(?P<x>.+)\*\*$", re.DOTALL)
# Math delimiters (left, right), `$$` tried before `$`.
MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_NOT_EQUAL = re.compile(r"\\neq?(?![a-zA-Z])\s*|!=\s*|≠\s*")
_APPROX = re.compile(r"\\approx(?![a-zA-Z])|≈")
_BARE_SYMBOL = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?$")
# Words that are mathematics, never a unit to drop.
_MATH_WORDS = {
    "am",  # `3:45 PM` is not `3:45 AM`: the half of the day is no unit (nor is "pm")
    "pi",
    "i",
    "e",
    "x",
    "y",
    "z",
    "n",
    "k",
    "sqrt",
    "infty",
    "inf",
    "infinity",
    "or",
    "and",
    "mod",
    "in",
    "cup",
    "cap",
    "pm",
    "mp",
    "cdot",
    "times",
    "frac",
    "ln",
    "log",
    "sin",
    "cos",
    "tan",
    "sec",
    "csc",
    "cot",
    "a",
    "b",
    "c",
    "d",
    "t",
    "u",
    "v",
    "w",
}
_ONE_LETTER_UNITS = {"m", "g", "s", "h", "l", "L", "K"}
_TRAILING_WORDS = re.compile(
    r"^(?P<head>.*?[\d}.])\s*(?P<words>[A-Za-z]+(?:[\s\-]+[A-Za-z]+)*)"
    r"(?:\s*\^\s*\{?[23]\}?|[²³])?\s*$",
    re.DOTALL,
)
# A CJK unit after a number (`3页`, `8722美元`, `5 个`); numeral characters (`5万` is 50000,
# `3亿`) are no unit.
_TRAILING_CJK = re.compile(r"^(?P<head>[^\u4e00-\u9fff]*[\d}%])\s*[\u4e00-\u9fff]{1,4}$")
_CJK_NUMERALS = re.compile(r"[十百千万萬亿億兆]")
_CURRENCY = re.compile(r"[€£¥]")
_TRAILING_TEXT = re.compile(
    r"^(?P<head>.*?\S)\s*\\(?:text|mbox|textnormal)\s*\{[^{}]*\}"
    r"(?:\s*\^\s*\{?[23]\}?)?\s*$",
    re.DOTALL,
)
_VAR_IN = re.compile(r"^\s*[a-zA-Z]\s*\\in\s*")
_WS = re.compile(r"\s+")
# The LaTeX reader takes a lone `d` before a space and a letter, `\cdot` or `\times` for a
# differential (`d n` becomes the symbol `dn`); braces keep it a variable.
_LONE_D = re.compile(r"(?<![\\A-Za-z])d(?=\s+[A-Za-z]|\s*\\(?:cdot|times)(?![A-Za-z]))")
_LONE_LETTER = re.compile(r"(?<![\\A-Za-z])[A-Za-z](?![A-Za-z])")
# A line break between two numerals is kept (as one `\n`): `11\n5/6` is two numbers, never
# the mixed number 11 5/6.
_DIGIT_BREAK = re.compile(r"(?<=\d)[ \t]*[\r\n]\s*(?=[\d.+-])")
# Longer answers are compared as whitespace-normalised strings only (docs/grading.md, sec. 4).
MAX_NORMALIZE_LEN = 1000


# A list that ends in an ellipsis (`1, 2, 3, ...`, `1, 2, 3\ldots`) goes on: the ellipsis is
# part of the answer, not a full stop.
_LIST_ELLIPSIS = re.compile(r",?\s*(?:\.{3,}|…|\\[lc]?dots(?![a-zA-Z]))\s*\.?\s*$")


def strip_full_stop(s: str, *, canonical: bool = True) -> str:
    """`s` without a trailing full stop; an ellipsis ending a list is kept (rewritten as
    `, \\dots` when `canonical`), so that `1, 2, 3, ...` is not the list `1, 2, 3`."""
    s = s.rstrip()
    m = _LIST_ELLIPSIS.search(s, max(0, len(s) - 40))  # bounded: a run of dots stays linear
    if m and "," in s[: m.start()]:
        return s[: m.start()].rstrip(" ,") + ", \\dots" if canonical else s
    return s.rstrip(".").rstrip()


def _unwrap(s: str, cmds: tuple[str, ...]) -> str:
    """Replace `\\cmd{X}` by `X` for each command (matched braces, any nesting)."""
    for cmd in cmds:
        start = 0
        while True:
            i = s.find(cmd + "{", start)
            if i < 0:
                i = s.find(cmd + " {", start)
                if i < 0:
                    break
            brace = s.index("{", i)
            j = closing_brace(s, brace)
            if j is None:
                break  # unbalanced: leave it to the parser to refuse
            s = s[:i] + s[brace + 1 : j] + s[j + 1 :]
            start = i
    return s


def strip_delimiters(s: str) -> str:
    """Remove surrounding `$...$`, `\\(...\\)`, `\\[...\\]`."""
    s = s.strip()
    changed = True
    while changed and s:
        changed = False
        for left, right in MATH_DELIMITERS:
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
                changed = True
    return s


def _drop_units(s: str, variables: frozenset[str] = frozenset()) -> str:
    """Drop a trailing unit after a number: `5 \\text{ cm}`, `12 inches`, `3 sq units`; not a
    letter that is one of `variables` (`192 m` against a reference `192*m`)."""
    if not re.search(r"\d", s):
        return s
    m = _TRAILING_CJK.match(s)
    if m and not _CJK_NUMERALS.search(s, m.end("head")):
        s = m.group("head").strip()
    m = _TRAILING_TEXT.match(s)
    if m and re.search(r"\d", m.group("head")) and not _AM_PM.search(s[len(m.group("head")) :]):
        s = m.group("head").strip()
    m = _TRAILING_WORDS.match(s)
    if m:
        words = m.group("words").split()
        if (
            all(w.lower() not in _MATH_WORDS for w in words)
            and (len(words) > 1 or len(words[0]) > 1 or words[0] in _ONE_LETTER_UNITS)
            and not any(w in variables for w in words)
        ):
            head = m.group("head").strip()
            if re.search(r"\d", head) and not head.endswith("\\"):
                s = head
    return s


def _brace_comma(m: re.Match) -> str:
    groups = m.group(0).split("{,}")
    if len(groups[0]) <= 3 and groups[0] != "0" and all(len(g) == 3 for g in groups[1:]):
        return "".join(groups)
    return ",".join(groups)


def _before_approx(s: str) -> str:
    """`a \\approx b`: keep `a` (the exact value); `x \\approx 11` reads as `x = 11`."""
    parts = _APPROX.split(s)
    if len(parts) == 1:
        return s
    head = parts[0].strip()
    if not head or _BARE_SYMBOL.match(head.replace(" ", "")):
        tail = parts[1].strip()
        return f"{head} = {tail}" if head else tail
    return head


def lone_letters(s: str) -> frozenset[str]:
    """The one-letter names standing alone in a normalised answer (`2 f^{2} - 508 f j`: f, j)."""
    return frozenset(_LONE_LETTER.findall(s))


def normalize(s: str, variables: frozenset[str] = frozenset()) -> str:
    """Canonical string form of an answer; equal forms mean equal answers. A one-letter word
    after a number is a unit (`12 m`) unless it is one of `variables`, the other side's."""
    if len(s) > MAX_NORMALIZE_LEN:  # huge untrusted text: whitespace only, in linear time
        return _WS.sub(" ", s).strip()
    s = _MANGLED_RE.sub(lambda m: _MANGLED[m.group(1)], s)
    if "\\begin" not in s:
        s = _DOUBLED.sub(r"\\", s)
    s = strip_delimiters(s)
    m = BOLD.match(s)
    if m:
        s = strip_delimiters(m.group("x"))
    s = s.replace("\\$", "").replace("$", "")
    s = _CURRENCY.sub("", s) if re.search(r"\d", s) else s
    s = code_to_latex(s.strip()) or s
    s = _NOT_EQUAL.sub(r"\\ne ", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\bmod", "\\mod")
    s = _COMMA_BANG.sub("", s)
    s = _BRACE_COMMA_NUMBER.sub(_brace_comma, s)
    s = s.replace("{,}", ",").replace("\\%", "%")
    s = _PERCENT_WORD.sub("%", s)
    s = _LEFT_RIGHT.sub("", s)
    s = _SPACING.sub(" ", s)
    s = _DEGREES.sub("", s)
    s = s.replace("∞", "\\infty ").replace("\\varnothing", "\\emptyset")
    if _ALL_REALS.match(s):
        s = "(-\\infty, \\infty)"
    s = _EMPTY_SET.sub(lambda _: "\\emptyset", s)
    s = _unwrap(s, _WRAPPERS)
    s = _CONNECTIVE.sub(", ", s)
    if not re.search(r"\d", s):
        s = _unwrap(s, _TEXT_CMDS)
    else:
        s = _drop_units(s, variables)
        s = _unwrap(s, _TEXT_CMDS)
    s = _VAR_IN.sub("", s)
    s = _DIGIT_BREAK.sub("\x00", s)
    s = _WS.sub(" ", s).strip().replace("\x00", "\n")
    s = strip_full_stop(s)
    if s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1].rstrip()  # a stray trailing backslash
    s = _before_approx(s)
    s = re.sub(r"\s*(dollars?|cents?)$", "", s, flags=re.IGNORECASE) if re.search(r"\d", s) else s
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if "\\int" not in s:
        s = _LONE_D.sub("{d}", s)
    return s
