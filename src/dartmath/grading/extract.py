"""Find the final answer in a model response (rules in docs/grading.md, section 1).

Everything here is linear in the response length: responses are untrusted and may be huge.
"""

from __future__ import annotations

import re

from dartmath.grading.brackets import closing_brace
from dartmath.grading.normalize import BOLD, MATH_DELIMITERS, strip_full_stop

_BOX_CMDS = ("\\boxed", "\\fbox")
# "The answer is X", "final answer is X", "Answer: X"; the last one in the response wins.
# The same in French, Spanish, Portuguese, German, Italian, Russian and Chinese.
_ANSWER_IS = re.compile(
    r"(?:\b(?:answer|réponse|respuesta|resposta|antwort|risposta)(?:\s+(?:is|est|es|é|ist|è)(?!\w)\s*:?"
    r"|\s*:)|\bответ(?:\s*:|\s+—)|答案\s*(?:是|为|[:：]))[ \t]*(?P<x>[^\n]*)",
    re.IGNORECASE,
)
# A heading "Answer" / "Final Answer" (optionally bold or with `#`) at the start of a line,
# followed directly by display or inline math: "Answer \[ 9 \]", "**Final Answer**\n$$9$$".
_ANSWER_HEADING = re.compile(
    r"(?im)^[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:final[ \t]+)?answer(?:\*\*)?[ \t]*:?[ \t]*(?:\*\*)?"
    r"\s*(?=\$|\\\[|\\\()"
)
# "final answer is X" / "Final Answer: X": outranks a box written before it.
_FINAL_ANSWER = re.compile(r"\bfinal\s+answer(?:\s+is\s*:?|\s*:)", re.IGNORECASE)
# "$6$ is our answer", "12 is the final answer".
_STATED_PHRASE = re.compile(r"(?<!\s)\s+is\s+(?:our|the)\s+(?:final\s+)?answer\b", re.IGNORECASE)
# What stands before the phrase: one `$...$` segment or one token (searched in a bounded window,
# so that a megabyte without spaces costs linear time).
_STATED_X = re.compile(r"(?:\$(?P<m>[^$\n]{1,200})\$|(?P<t>[^\s$]{1,200}))$")
_PRONOUNS = frozenset({"this", "that", "it", "which", "what", "here", "there", "above", "below"})
# Unclosed boxes are skipped; bounding the tries keeps a hostile response linear.
_MAX_BOX_TRIES = 8
# How many boxes at the end of a response may be joined into one list.
_MAX_JOINED_BOXES = 8
_TOKEN = re.compile(r"[^\s$]+")
_GSM8K = re.compile(r"####[ \t]*(?P<x>[^\n]*)")
# What may stand between two boxes that are joined into a list: spacing, punctuation, math
# delimiters, and the words "and" / "or" (bare or in \text{}).
_BOX_GAP = re.compile(
    r"^(?:\s|[,;.]|\$|\\[()\[\]]|\\q?quad(?![a-zA-Z])|\\[,;:! ]|~|\band\b|\bor\b"
    r"|\\(?:text|mbox|textnormal)\{\s*(?:and|or|,)?\s*\})*$",
    re.IGNORECASE,
)
# A box that ends a display-math block (`$$\boxed{20}$$ \boxed{143}`) is not joined with a
# box after it unless a list connective stands between them: a comma, a semicolon, "and" /
# "or", or `\quad`. The later box replaces it.
_BOX_CONNECTIVE = re.compile(
    r"[,;]|\band\b|\bor\b|\\q?quad(?![a-zA-Z])|\\(?:text|mbox|textnormal)\{\s*,", re.IGNORECASE
)
_DISPLAY_END = re.compile(r"\$\$|\\\]")
# A label right before a box: `y_2 = \\boxed{...}` (a letter or command, optional subscript).
_BOX_LABEL = re.compile(
    r"(?:^|(?<=[\s$(,]))(?P<lbl>(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?)"
    r"\s*=\s*$"
)
# Chat-template tokens (`<|im_start|>user`) end the response; what follows is not part of it.
_SPECIAL_TOKEN = re.compile(r"<\|[a-z_]+\|>|</?s>", re.IGNORECASE)
# Stock closing sentences that carry no answer (searched in the last 100 characters only).
_BOILERPLATE = re.compile(r"I hope (?:it|this) is correct\s*[.!]?$", re.IGNORECASE)
# Past this length an inline answer is only stripped of its delimiters: the finer cleaning runs
# regexes whose cost on hostile text would grow faster than the length.
_MAX_CLEAN_LEN = 2000
# What a phrase can hold that states no answer at all: an empty box, bare quotes or punctuation.
_NOTHING_STATED = re.compile(r"\\(?:boxed|fbox)\s*\{\s*\}|[\"'`.,:;\s]*")
# Math segments for the last-resort rule.
_MATH_SEGMENT = re.compile(
    r"\$\$(?P<a>.+?)\$\$|\\\[(?P<b>.+?)\\\]|\\\((?P<c>.+?)\\\)"
    r"|(?<![\\$])\$(?P<d>(?:\\.|[^$\\])+?)\$",
    re.DOTALL,
)
# What may follow the final math segment of a response for it to count as the answer.
_CLOSING = re.compile(
    r"^\s*(?:(?:is|are)\s+(?:the|our)\s+(?:final\s+)?(?:answer|solution|result)s?\s*)?[.!]?\s*$",
    re.IGNORECASE,
)
# A final sentence that ends "... is 2/3." or "... = 360": the number is the answer.
_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?%?"
# (CJK: after 为 / 是 / 等于 "is", and a CJK unit of up to three characters may follow.)
# (French / Spanish / Portuguese / Italian / German / Russian "is" too, `est de 25%`; Arabic:
# after هو / هي "is"; the number may be in **bold**; a currency sign or a unit such as
# `m²` may follow.)
_FINAL_NUMBER = re.compile(
    r"(?P<c>\b(?:is|are|was|equals|it's|(?:est|es|sont|son|é|è)(?:\s+de)?|ist|sind|равно)|(?<!\S)(?:هو|هي)|=|:|为|是|等于)[ \t]*(?:\*\*)?"
    r"(?P<x>" + _NUMBER + r")(?:\*\*)?"
    r"[ \t]*(?:[\u4e00-\u9fff]{1,3}|[€£¥]|[a-zA-Z]{1,3}[²³])?(?:\*\*)?[ \t]*[.!。]?\s*$",
    re.IGNORECASE,
)
# A line that lists an option ("C. x = 42") states no answer.
_OPTION_LINE = re.compile(r"^\s*\(?[A-E][.)]\s")
# Left of a final `= NUMBER`: a lone symbol (`so x = 5`, `f(x) = 5`) after a word, or arithmetic
# on numbers.
_ASSIGNED_SYMBOL = re.compile(
    r"(?<![A-Za-z\\])(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z]\))?\s*$"
)
_LEFT_TOKEN = re.compile(r"\\[A-Za-z]+|[A-Za-z]+|\\.|\s+|.", re.DOTALL)
_ARITH_CMDS = {"\\cdot", "\\times", "\\div", "\\frac", "\\dfrac", "\\tfrac", "\\sqrt"}
_ARITH_CMDS |= {"\\left", "\\right", "\\pi", "\\%", "\\,", "\\;", "\\!", "\\ "}
_ARITH_CHARS = set("0123456789+-*/×÷·−^().,[]{}%!|")
# Inside an "answer is X" phrase: prose ending "... is X" gives X.
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[A-Za-z]{3,}\b")
_TAIL_IS = re.compile(r"^.*\b(?:is|are|equals)\s+(?P<x>\S.*)$", re.IGNORECASE | re.DOTALL)
# A number in prose: `12`, `12,000`, `2.5`, `2/3`, `100%` (not part of an ASCII word or formula;
# CJK text may touch it: `300分钟`).
_PROSE_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.,/^])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?%?"
    r"(?![A-Za-z0-9_/^]|[.,]\d)"
)
# The last sentence of a response: after the last sentence end (`.`, `!`, `?` before a space,
# or a CJK full stop).
# (Also the Devanagari danda `।` and the Arabic question mark; and, since CJK, Arabic and Hindi
# responses often run sentences together with a space, before a concluding word of theirs.)
_SENTENCE_END = re.compile(
    r"[.!?](?=\s)|[。！？।؟]|(?<=\s)(?=因此|所以|综上|結論|结论|لذا|لذلك|إذن|इसलिए|अतः)"
)
# A concluding sentence: "Therefore, ...", "Thus ...", "Donc, ...", "因此，..." and the like
# (optionally bold or after a list number: "2. **结论**：...").
_CONCLUSION = re.compile(
    r"^\s*(?:\*\*|#+\s*)?(?:therefore|thus|hence|so|in\s+conclusion|donc|ainsi|en\s+conclusion"
    r"|por\s+lo\s+tanto|así\s+que|daher|somit|also|quindi|portanto|поэтому|итак|следовательно"
    r"|因此|所以|故|综上|結論|结论|لذا|لذلك|إذن|इसलिए|अतः)(?![A-Za-z])",
    re.IGNORECASE,
)
# An option letter stated as the answer: "for sure D", "option (B).", "D, it can't be A or B".
_FILLER = r"(?i:for\s+sure|surely|definitely|clearly|certainly|obviously|option|choice)"
_LETTER_PHRASE = re.compile(
    rf"^(?:(?:{_FILLER}\s+)+\(?(?P<a>[A-E])\)?(?=[.!,;]?\s|[.!]?$)"
    r"|\(?(?P<b>[A-E])\)?,\s+(?!(?:or|and)\b)(?=[a-z]))"
)
# A word that offers a second option letter beside the first (`A or B`, `A/B`, `A 或 B`); also
# used for extracted answers in `equivalence`.
OR_WORD = r"(?:or|and|&|/|或|和)"
# A letter offered as an alternative right after the first (`A or B`, `A, B`): a hedge.
_OTHER_LETTER = re.compile(rf"[\s.,;:)。，、]*(?:{OR_WORD}\s*)?\(?[A-E](?![A-Za-z])")
# A response that opens with the letter: "B. ...", "B。不是 A", "(C) because ...".
_LEADING_LETTER = re.compile(
    r"^\s*(?:\((?P<a>[A-E])\)(?=\s|$|[.。,，、]|[\u4e00-\u9fff])"
    r"|(?P<b>[A-E])(?:[.。)、，,](?!\d)|(?=[\u4e00-\u9fff])|\s*$))"
)
_OPTION_LABEL_LINE = re.compile(r"\n[ \t]*\(?[A-E][.)。]")
# A final sentence "... therefore I think it's B".
_CONCLUDING_LETTER = re.compile(
    r"\b(?:therefore|thus|hence|so)\b[^.!?\n]{0,80}?\b(?:is|it's|be)\s+\(?(?P<x>[A-E])\)?"
    r"\s*[.!]?\s*$",
    re.IGNORECASE,
)


def _boxed_span(text: str, start: int) -> tuple[str, int] | None:
    """(content, end) of the box command whose name ends at `start`, or None if incomplete."""
    i = start
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] == "{":
        end = closing_brace(text, i, skip_escaped=True)
        return None if end is None else (text[i + 1 : end], end + 1)
    if text[start] not in " \t":
        return None  # `\boxeds...`: another command, not a box
    # `\boxed 5`: the next whitespace- or `$`-delimited token.
    m = _TOKEN.match(text, i)
    return (m.group(0), m.end()) if m else None


def _boxes_from_end(text: str) -> list[tuple[int, int, str]]:
    """Complete boxes (start, end, content), last first, as far back as joining may reach."""
    out: list[tuple[int, int, str]] = []
    pos = len(text)
    for _ in range(_MAX_BOX_TRIES + _MAX_JOINED_BOXES):
        hit = max(text.rfind(cmd, 0, pos) for cmd in _BOX_CMDS)
        if hit < 0:
            break
        cmd_len = len("\\boxed") if text.startswith("\\boxed", hit) else len("\\fbox")
        span = _boxed_span(text, hit + cmd_len)
        pos = hit
        if span is None:
            if out:
                break  # an unclosed box between complete ones: stop joining there
            continue
        content, end = span
        if out and end > out[-1][0]:
            continue  # a box nested in the one found before it
        out.append((hit, end, content.strip()))
        if len(out) > _MAX_JOINED_BOXES:
            break
    return out


def _split_label(before: str) -> tuple[str, str | None]:
    """`(text, label)` when `before` ends with a label such as `y_2 =` written before a box."""
    start = max(0, len(before) - 80)  # a label stands right before its box
    m = _BOX_LABEL.search(before, start)
    if m is None:
        return before, None
    return before[: m.start("lbl")], m.group("lbl")


def extract_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{...}` / `\\fbox{...}`, or None.

    Boxes at the end of the response separated only by spacing, punctuation, math delimiters
    and "and" / "or" are joined into one list: `\\boxed{-2} and \\boxed{1}` gives `-2, 1`;
    a label written just before a joined box is kept (`y_1 = \\boxed{2}, y_2 = \\boxed{3}`).
    """
    boxes = _boxes_from_end(text)
    if not boxes:
        return None
    joined = [boxes[0]]
    labels: list[str | None] = []
    for box in boxes[1:_MAX_JOINED_BOXES]:
        rest, label = _split_label(text[box[1] : joined[-1][0]])
        if not _BOX_GAP.match(rest) or (
            _DISPLAY_END.search(rest) and not (label or _BOX_CONNECTIVE.search(rest))
        ):
            break
        labels.append(label)
        joined.append(box)
    if len(joined) == 1:
        return boxes[0][2] or None
    first = joined[-1][0]
    labels.append(_split_label(text[max(0, first - 80) : first])[1])
    contents = [
        f"{label} = {c}" if label else c
        for (_, _, c), label in zip(joined, labels, strict=True)
        if c
    ]
    # the same box repeated is one answer (dict keeps the first occurrence, in order)
    return ", ".join(dict.fromkeys(reversed(contents))) or None


def _cut_sentence(x: str) -> str:
    """Cut an inline answer at the end of its sentence (outside math and brackets)."""
    depth = 0
    in_math = False
    i, n = 0, len(x)
    while i < n:
        c = x[i]
        if c == "\\" and i + 1 < n:
            if x[i + 1] in "([":
                in_math = True
            elif x[i + 1] in ")]":
                in_math = False
            i += 2
            continue
        if c == "$":
            in_math = not in_math
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c in ".!?" and not in_math and depth <= 0 and i + 1 < n and x[i + 1] in " \t":
            j = i + 1
            while j < n and x[j] in " \t":
                j += 1
            if j == n or x[j].isupper() or x[j] == "<":
                return x[:i]
        i += 1
    return x


def _clean_tail(text: str) -> str:
    """The response without chat-template tokens and what follows them, or stock closings."""
    m = _SPECIAL_TOKEN.search(text)
    if m:
        text = text[: m.start()]
    text = text.rstrip()
    tail = len(text) - 100
    m = _BOILERPLATE.search(text, max(0, tail))
    return text[: m.start()].rstrip() if m else text


def _segment_math(m: re.Match[str]) -> str:
    """The math inside a `_MATH_SEGMENT` match, without its delimiters."""
    return next(g for g in m.groups() if g is not None).strip()


def _clean_inline_answer(x: str) -> str:
    """An answer written inline, without what surrounds it: bold marks, quotes, math delimiters
    (the math of `$12$ and $13$` joined into one list) and a trailing full stop."""
    x = x.strip()
    m = BOLD.match(x)
    if m:
        x = m.group("x").strip()
    x = strip_full_stop(x, canonical=False)
    for quote in ('\\"', '"'):  # a quoted answer (`\\"` is an escaping artefact)
        if len(x) > 2 * len(quote) and x.startswith(quote) and x.endswith(quote):
            x = x[len(quote) : -len(quote)].strip()
            break
    segments = list(_MATH_SEGMENT.finditer(x)) if len(x) <= _MAX_CLEAN_LEN else []
    if (
        len(segments) > 1
        and segments[0].start() == 0
        and all(
            _BOX_GAP.match(x[a.end() : b.start()])
            for a, b in zip(segments, segments[1:], strict=False)
        )
    ):
        # "$12$ and $13$": the math of every segment, joined into one list
        x = ", ".join(_segment_math(m) for m in segments)
    for left, right in MATH_DELIMITERS:
        if x.startswith(left):
            end = x.find(right, len(left))
            if end >= 0:
                x = x[len(left) : end]
                break
    x = strip_full_stop(x, canonical=False)
    if x.endswith("$"):
        x = x.rstrip("$").strip()
    m = BOLD.match(x)
    if m:
        x = m.group("x").strip()
    return x


_CJK_RUN_START = re.compile(r"^[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")
_CJK_RUN_END = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]{1,4}$")
_CJK_CHAR = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _cjk_prose_value(x: str) -> str:
    """Chinese prose around one math expression, "每份应该是 (\\frac{2}{5}) 吨。", gives the
    expression; anything else (two expressions, no number) is returned unchanged."""
    head = _CJK_RUN_START.match(x)
    if head is None:
        return x
    body = x[head.end() :]
    tail = _CJK_RUN_END.search(body)
    if tail:
        body = body[: tail.start()]
    body = body.strip()
    if not body or _CJK_CHAR.search(body) or not re.search(r"\d", body):
        return x
    return body


def _phrase_value(x: str) -> str:
    """The answer in the text after "the answer is": cut to its sentence; prose "... is X" → X."""
    x = _clean_tail(_cut_sentence(x.strip()))
    if len(x) > _MAX_CLEAN_LEN:
        return _clean_inline_answer(x)
    # "Final Answer: The final answer is X": the innermost phrase holds the answer.
    for _ in range(3):
        inner = None
        for m in _ANSWER_IS.finditer(x):
            inner = m
        if inner is None or not inner.group("x").strip():
            break
        x = _clean_tail(_cut_sentence(inner.group("x").strip()))
    x = _cjk_prose_value(x)
    m = _LETTER_PHRASE.match(x)
    if m and not _OTHER_LETTER.match(x, m.end()):
        return m.group("a") or m.group("b")
    if _PROSE_WORD.search(_MATH_SEGMENT.sub(" ", x)):
        m = _TAIL_IS.match(x)
        if m and not _PROSE_WORD.search(_MATH_SEGMENT.sub(" ", m.group("x"))):
            x = m.group("x")
        elif x[:1].isalpha() and not _MATH_SEGMENT.search(x):
            # a sentence holding one number: "Maria needs 5 more boxes"
            numbers = _PROSE_NUMBER.findall(x)
            if len(numbers) == 1:
                x = numbers[0]
    return _clean_inline_answer(x)


def _last_phrase_answer(text: str) -> str | None:
    last = None
    for m in _ANSWER_IS.finditer(text):
        last = m
    if last is None:
        return None
    x = last.group("x").strip()
    if not x:  # the answer sits on the next non-empty line
        for line in text[last.end() :].split("\n"):
            if line.strip():
                x = line.strip()
                break
    x = _phrase_value(x)
    if _NOTHING_STATED.fullmatch(x):
        return None  # "the answer is \\boxed{}." / an echoed instruction's quote mark
    return x or None


def _heading_answer(text: str) -> str | None:
    """ "Answer \\[ 9 \\]": a line-initial Answer heading followed directly by math."""
    last = None
    for m in _ANSWER_HEADING.finditer(text):
        last = m
    if last is None:
        return None
    seg = _MATH_SEGMENT.match(text, last.end())
    if seg is None:
        return None
    x = _segment_math(seg)
    return x or None


def _gsm8k_answer(text: str) -> str | None:
    last = None
    for m in _GSM8K.finditer(text):
        last = m
    if last is None:
        return None
    x = _clean_inline_answer(last.group("x"))
    return x or None


def _final_math_answer(text: str) -> str | None:
    """Last resort: the response ends with a math segment ("... is $(7, 6)$.")."""
    text = _clean_tail(text)
    tail = text[-2000:]
    last = None
    for m in _MATH_SEGMENT.finditer(tail):
        last = m
    if last is None or not _CLOSING.match(tail[last.end() :]):
        return None
    x = _segment_math(last)
    x = strip_full_stop(x, canonical=False)
    return x or None


def _numeric_left_side(before: str, truncated: bool) -> bool:
    """Whether what stands left of a final `= NUMBER` lets the number be the answer.

    Yes for a lone symbol after a word (`so x = 5`, an assignment) and for arithmetic on
    numbers (`4 \\cdot 5 = 20`, `158 - 66 = 92`); no for anything holding a variable
    (`2x+4y-3=0`, `x^2+y^2=1`: an equation, not its right-hand side) or a bare name.
    """
    m = _ASSIGNED_SYMBOL.search(before)
    if m and m.group(0).strip() not in _ARITH_CMDS:
        pre = before[: m.start()].rstrip()
        word = re.search(r"(?<![\\A-Za-z])[A-Za-z]{2,}$", pre)
        if "=" in pre and re.search(r"(?:\b(?:and|or)|[,;])$", pre):
            return False  # `x = 1 or x = -1`: the last of several solutions is not the answer
        if (pre == "" and not truncated) or word or pre.endswith((":", ",")):
            return True
    tokens = _LEFT_TOKEN.findall(before)
    has_digit = False
    for k in range(len(tokens) - 1, -1, -1):
        tok = tokens[k]
        if tok.isspace():
            continue
        if tok in _ARITH_CHARS or tok in _ARITH_CMDS:
            has_digit = has_digit or tok.isdigit()
            continue
        if tok.isalpha() and tok.isascii():
            # a word before the formula ends it ("is 3 + 4"); a letter in it is a variable
            # (`2x`, `x + 3`, `xy + 1`)
            after = tokens[k + 1] if k + 1 < len(tokens) else ""
            nxt = next((t for t in tokens[k + 1 :] if not t.isspace() and t not in ",;"), "")
            if len(tok) == 1 or not (after.isspace() or after in (",", ";")):
                return False
            return has_digit and (nxt.isdigit() or nxt in ("(", "-"))
        return has_digit  # `:`, `$`, CJK text ... end the formula
    return has_digit and not truncated


# A whole response that is only a number: sign, digits (thousands grouped or not), decimals, or
# a fraction; a currency sign before or after, a percent sign or word after.
_ONLY_NUMBER = re.compile(
    r"^(?:\\\$|[$€£¥])?\s*[+-]?"
    r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+|\d+\s*/\s*\d+)"
    r"\s*(?:%|\\%|percent|[€£¥])?$",
    re.IGNORECASE,
)
_MAX_ONLY_ANSWER = 60
_ONLY_BOOLEAN = re.compile(r"^(?:\\text\{\s*)?(?:yes|no|true|false)\s*\}?$", re.IGNORECASE)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD_IN_MATH = re.compile(r"(?<![A-Za-z])(?!(?:and|or)(?![A-Za-z]))[A-Za-z]{2,}")


def _greek(c: str) -> bool:
    return "\u0370" <= c <= "\u03ff"


def _only_an_answer(text: str) -> str | None:
    """Last resort: a short one-line response that is only an answer: a number (with a currency
    sign, thousands separators, math delimiters, a percent sign or word), yes / no / true /
    false, or math with no word in it (LaTeX commands, one-letter names, digits; "and" / "or"
    between values)."""
    text = _clean_tail(text).strip()
    if len(text) > _MAX_ONLY_ANSWER or "\n" in text:
        return None
    x = _clean_inline_answer(text)
    if x.startswith("$"):  # a stray delimiter, or a dollar sign
        x = x[1:].strip()
    if _ONLY_NUMBER.match(x) or _ONLY_BOOLEAN.match(x):
        return x
    if x.startswith("~") or any(c.isalpha() and not c.isascii() and not _greek(c) for c in x):
        return None  # "about 12"; a word in another script
    words = _WORD_IN_MATH.search(_LATEX_COMMAND.sub(" ", x.replace("\\text{", "{")))
    if words is None and re.search(r"\d|\\[A-Za-z]", x):
        return x
    return None


def _final_number_answer(text: str) -> str | None:
    """Last resort: the final sentence ends "... is 2/3." or "... = 360"."""
    text = _clean_tail(text)
    tail = text[-300:]
    m = _FINAL_NUMBER.search(tail)
    if m is None:
        return None
    head = tail[: m.start()]
    truncated = len(text) > len(tail) and "\n" not in head
    line = head.rsplit("\n", 1)[-1]
    if _OPTION_LINE.match(line):
        return None
    connector = m.group("c")
    if connector == "=" and not _numeric_left_side(line, truncated):
        return None
    if connector == ":" and line.rstrip()[-1:].isdigit():
        return None  # a ratio or a time (`3:4`, `10:30`), not "label: number"
    return m.group("x").replace(" ", "")


def _stated_answer(text: str) -> tuple[int, str] | None:
    """(position, X) of the last "X is our answer" / "X is the final answer"."""
    last = None
    for m in _STATED_PHRASE.finditer(text):
        last = m
    if last is None:
        return None
    window = text[max(0, last.start() - 202) : last.start()]
    x_match = _STATED_X.search(window)
    if x_match is None:
        return None
    x = x_match.group("m") if x_match.group("m") is not None else x_match.group("t")
    if x_match.group("m") is None and x.lower() in _PRONOUNS:
        return None  # "This is the final answer." points at an answer; it is not one
    x = _clean_inline_answer(x)
    return (last.start() - len(window) + x_match.start(), x) if x else None


def _final_answer_after_boxes(text: str) -> str | None:
    """An explicit final statement that comes after the last box: "the final answer is X",
    "Final Answer: X", "X is our answer" (the last of them)."""
    last = None
    for m in _FINAL_ANSWER.finditer(text):
        last = m
    stated = _stated_answer(text)
    start = max(last.start() if last else -1, stated[0] if stated else -1)
    if start < 0:
        return None
    boxes = _boxes_from_end(text)
    if boxes and boxes[0][1] > start:
        return None
    if stated and stated[0] == start:
        return stated[1]
    return _last_phrase_answer(text[start:])


def _stated_phrase_answer(text: str) -> str | None:
    stated = _stated_answer(text)
    return stated[1] if stated else None


def _conclusion_number_answer(text: str) -> str | None:
    """Last resort: the final sentence concludes ("Therefore, ...") and holds one number."""
    text = _clean_tail(text)[-600:].rstrip()
    while text and text[-1] in ".!?。！？।":
        text = text[:-1].rstrip()
    cut = 0
    for m in _SENTENCE_END.finditer(text):
        cut = m.end()
    for mark in ("$", "\\]", "\\)"):  # the sentence starts after the last math
        at = text.rfind(mark)
        if at >= 0:
            cut = max(cut, at + len(mark))
    sentence = text[cut:]
    if not _CONCLUSION.match(sentence) or "\\" in sentence:
        return None
    numbers = _PROSE_NUMBER.findall(sentence)
    if len(numbers) != 1 or len(re.findall(r"\d+", sentence)) != len(
        re.findall(r"\d+", numbers[0])
    ):
        return None
    return numbers[0]


def _letter_answer(text: str) -> str | None:
    """Last resort for multiple choice: a response that opens with the option letter
    ("B. ...", "B。不是 A") or whose final sentence concludes "so it's B"."""
    m = _LEADING_LETTER.match(text)
    if m and not _OPTION_LABEL_LINE.search(text, m.end()):  # not a listing of the options
        letter = m.group("a") or m.group("b")
        return None if _OTHER_LETTER.match(text, m.end()) else letter
    m = _CONCLUDING_LETTER.search(_clean_tail(text)[-200:])
    return m.group("x").upper() if m and m.group("x").isupper() else None


def extract_answer(resp: str) -> str | None:
    """The final answer of a response by the rules of docs/grading.md, or None if none is found."""
    if not resp:
        return None
    for rule in (
        _final_answer_after_boxes,
        extract_boxed,
        _last_phrase_answer,
        _stated_phrase_answer,
        _heading_answer,
        _gsm8k_answer,
        _final_math_answer,
        _only_an_answer,
        _final_number_answer,
        _conclusion_number_answer,
        _letter_answer,
    ):
        ans = rule(resp)
        if ans:
            return ans
    return None
