"""Bracket depth along a string: the one walker behind box matching, `\\cmd{...}` unwrapping
and top-level splitting (linear in the length of the string: responses may be huge)."""

from __future__ import annotations

from collections.abc import Iterator


def depths(
    s: str, start: int = 0, *, pairs: str = "{}", skip_escaped: bool = False
) -> Iterator[tuple[int, int]]:
    """(index, depth after it) of each bracket in `s[start:]`, the depth counted from 0.

    `pairs` lists the brackets as opening-closing pairs (`"{}"`, `"()[]{}"`); any closing one
    closes any opening one. With `skip_escaped` a backslash and the character after it are
    skipped, so `\\{` is no bracket; without, a backslash is an ordinary character.
    """
    opening, closing = pairs[0::2], pairs[1::2]
    depth, i, n = 0, start, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and skip_escaped:
            i += 2
            continue
        if c in opening:
            depth += 1
            yield i, depth
        elif c in closing:
            depth -= 1
            yield i, depth
        i += 1


def closing_brace(s: str, open_pos: int, *, skip_escaped: bool = False) -> int | None:
    """Index of the `}` closing the `{` at `open_pos`, or None when it is never closed."""
    for i, depth in depths(s, open_pos, skip_escaped=skip_escaped):
        if depth == 0:
            return i
    return None
