"""The presets of known datasets (`math`, `gsm8k`): which fields they read, how they find the
reference answer in a solution and which metadata they keep; and the hint that names the
preset, or the field mapping, that would read a record lacking a reference answer.

The published DART-Math MATH query-info dataset appears to key queries by MATH file paths
(`MATH/train/algebra/1.json`, see the README), which is why the `math` preset also turns a
MATH-style `unique_id` (`train/algebra/1.json`, as in PRM800K and MATH-500) into one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dartmath.grading.extract import extract_boxed

_MATH_PATH = re.compile(r"^(?:MATH/)?(?:train|test)/[A-Za-z_]+/\d+\.json$")
_GSM8K_FINAL = re.compile(r"####[ \t]*(?P<x>[^\n]*)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def math_reference(solution: str) -> str | None:
    """The reference answer of a MATH solution: its last `\\boxed{}` / `\\fbox{}`.

    Boxes that end the solution separated only by punctuation or "and" are read as one list,
    the rule the grader applies to responses (so that reference and response agree).
    """
    return extract_boxed(solution)


def gsm8k_reference(answer: str) -> str | None:
    """The reference answer of a GSM8K solution: the text after its last `####`, without
    thousands separators (`1,200` -> `1200`)."""
    last = None
    for m in _GSM8K_FINAL.finditer(answer):
        last = m
    if last is None:
        return None
    x = _THOUSANDS.sub("", last.group("x").strip())
    return x or None


def _math_meta(rec: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    level = rec.get("level")
    if isinstance(level, str):
        token = level.split(" ")[-1]
        meta["level"] = int(token) if token.isdigit() else None  # "Level ?" -> unknown
    elif isinstance(level, int) and not isinstance(level, bool):
        meta["level"] = level
    domain = rec.get("type", rec.get("subject"))
    if isinstance(domain, str):
        meta["domain"] = domain.replace(" ", "")  # DART-Math's spelling: "Counting&Probability"
    return meta


def _math_query_id(qid: str) -> str:
    """A MATH path without its `MATH/` (`train/algebra/1.json`) gets it back."""
    if _MATH_PATH.match(qid) and not qid.startswith("MATH/"):
        return "MATH/" + qid
    return qid


@dataclass(frozen=True)
class Preset:
    """How to read the records of one known dataset."""

    looks_like: str  # the dataset's name, for hints
    marks: tuple[str, ...]  # what its solutions hold and others' rarely do, for hints
    fields: dict[str, str]
    reference: Callable[[str], str | None]
    no_reference: str
    meta: Callable[[Mapping[str, Any]], dict[str, Any]]
    consumed: frozenset[str]  # input fields replaced by what `meta` returns
    query_id: Callable[[str], str]  # turns an input query_id into ours


PRESETS: dict[str, Preset] = {
    "math": Preset(
        looks_like="MATH",
        marks=("\\boxed", "\\fbox"),
        fields={"query": "problem", "gt_ans": "solution"},
        reference=math_reference,
        no_reference="no \\boxed{} answer in the solution",
        meta=_math_meta,
        consumed=frozenset({"level", "type", "subject"}),
        query_id=_math_query_id,
    ),
    "gsm8k": Preset(
        looks_like="GSM8K",
        marks=("####",),
        fields={"query": "question", "gt_ans": "answer"},
        reference=gsm8k_reference,
        no_reference="no final answer after '####' in the solution",
        meta=lambda rec: {},
        consumed=frozenset(),
        query_id=lambda qid: qid,
    ),
}


def hint(rec: Mapping[str, Any]) -> str:
    """What would read a record that lacks a reference answer, as a suffix to "missing": the
    preset of the dataset whose kind of solution the record holds (a `\\boxed{}`, a `####`),
    else a mapping of its `problem` or `question` and its `answer`; "" when neither fits.
    A preset is named only for its own kind of solution: on any other it finds no reference."""
    for name, preset in PRESETS.items():
        query, solution = preset.fields["query"], preset.fields["gt_ans"]
        text = rec.get(solution)
        if query in rec and isinstance(text, str) and any(m in text for m in preset.marks):
            return f" (this looks like {preset.looks_like}: use preset '{name}')"
    for query in ("problem", "question"):
        if query in rec and "answer" in rec:
            mapping = f"{{query: {query}, gt_ans: answer}}"
            return (
                f" (map the fields: fields: {mapping} in the queries section of the config,"
                f" or -o queries.fields='{mapping}')"
            )
    return ""
