"""Labelled cases for the answer grader (docs/grading.md).

The cases live in tests/data/*.jsonl, one JSON object per line; the test ids are
`<kind>-L<line>` for equivalence, `extract-L<line>` for extraction and `answer_only-L<line>`
for whole responses graded end to end, so a failure points straight at the line to read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
EQUIVALENCE_FILE = DATA / "equivalence_cases.jsonl"
EXTRACTION_FILE = DATA / "extraction_cases.jsonl"
RESPONSE_FILE = DATA / "response_cases.jsonl"

KINDS = (
    "integer",
    "thousands",
    "decimal",
    "fraction",
    "percent",
    "radical_pi",
    "scientific",
    "units_text",
    "assignment",
    "equation",
    "tuple",
    "set_list",
    "interval_union",
    "inequality",
    "matrix_vector",
    "pm",
    "complex",
    "choice",
    "text_word",
    "expression",
    "decimal_rule",
    "factorial_large",
    "hostile_format",
    "code_syntax",
    "boolean",
)

# Kinds of whole-response cases (response_cases.jsonl), graded by extraction and comparison.
RESPONSE_KINDS = ("answer_only",)

MIN_EQUIVALENCE_CASES = 300
MIN_EXTRACTION_CASES = 40
MIN_CASES_PER_KIND = 15
MIN_RESPONSE_CASES = 50

# A generous per-case bound: grading one pair should take well under a second.
CASE_TIMEOUT_S = 60


def _load(path: Path) -> list[tuple[int, dict]]:
    """(line number, parsed object) for every non-blank line."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                rows.append((lineno, json.loads(line)))
    return rows


EQUIVALENCE_ROWS = _load(EQUIVALENCE_FILE)
EXTRACTION_ROWS = _load(EXTRACTION_FILE)
RESPONSE_ROWS = _load(RESPONSE_FILE)


def _eq_params() -> list:
    return [
        pytest.param(row, id=f"{row.get('kind', 'nokind')}-L{lineno}")
        for lineno, row in EQUIVALENCE_ROWS
    ]


def _ex_params() -> list:
    return [pytest.param(row, id=f"extract-L{lineno}") for lineno, row in EXTRACTION_ROWS]


def _resp_params() -> list:
    return [
        pytest.param(row, id=f"{row.get('kind', 'nokind')}-L{lineno}")
        for lineno, row in RESPONSE_ROWS
    ]


# --- the data files themselves ----------------------------------------------------


def test_equivalence_schema() -> None:
    expected_keys = {"ref", "ans", "expected", "kind", "why"}
    for lineno, row in EQUIVALENCE_ROWS:
        where = f"{EQUIVALENCE_FILE.name}:{lineno}"
        assert isinstance(row, dict), where
        assert set(row) == expected_keys, f"{where}: keys {sorted(row)}"
        assert isinstance(row["ref"], str) and row["ref"].strip(), where
        assert isinstance(row["ans"], str) and row["ans"].strip(), where
        assert isinstance(row["expected"], bool), where
        assert row["kind"] in KINDS, f"{where}: unknown kind {row['kind']!r}"
        assert isinstance(row["why"], str) and row["why"].strip(), where


def test_equivalence_no_duplicates() -> None:
    seen: dict[tuple[str, str], int] = {}
    for lineno, row in EQUIVALENCE_ROWS:
        key = (row["ref"], row["ans"])
        assert key not in seen, f"line {lineno} duplicates line {seen[key]}: {key}"
        seen[key] = lineno


def test_extraction_schema() -> None:
    for lineno, row in EXTRACTION_ROWS:
        where = f"{EXTRACTION_FILE.name}:{lineno}"
        assert isinstance(row, dict), where
        assert set(row) == {"resp", "ans", "why"}, f"{where}: keys {sorted(row)}"
        assert isinstance(row["resp"], str), where
        assert row["ans"] is None or (isinstance(row["ans"], str) and row["ans"]), where
        if row["ans"] is not None:
            assert row["ans"] == row["ans"].strip(), f"{where}: ans must be stripped"
        assert isinstance(row["why"], str) and row["why"].strip(), where


def test_response_schema() -> None:
    expected_keys = {"resp", "ref", "expected", "kind", "why"}
    for lineno, row in RESPONSE_ROWS:
        where = f"{RESPONSE_FILE.name}:{lineno}"
        assert isinstance(row, dict), where
        assert set(row) == expected_keys, f"{where}: keys {sorted(row)}"
        assert isinstance(row["resp"], str), where
        assert isinstance(row["ref"], str) and row["ref"].strip(), where
        assert isinstance(row["expected"], bool), where
        assert row["kind"] in RESPONSE_KINDS, f"{where}: unknown kind {row['kind']!r}"
        assert isinstance(row["why"], str) and row["why"].strip(), where


def test_response_no_duplicates() -> None:
    seen: dict[tuple[str, str], int] = {}
    for lineno, row in RESPONSE_ROWS:
        key = (row["resp"], row["ref"])
        assert key not in seen, f"line {lineno} duplicates line {seen[key]}: {key}"
        seen[key] = lineno


def test_suite_size() -> None:
    """The suite must not silently shrink or drift towards one label."""
    rows = [row for _, row in EQUIVALENCE_ROWS]
    assert len(rows) >= MIN_EQUIVALENCE_CASES, len(rows)

    per_kind = {kind: 0 for kind in KINDS}
    for row in rows:
        per_kind[row["kind"]] += 1
    missing = [kind for kind, n in per_kind.items() if n == 0]
    assert not missing, f"kinds with no cases: {missing}"
    thin = {kind: n for kind, n in per_kind.items() if n < MIN_CASES_PER_KIND}
    assert not thin, f"kinds with fewer than {MIN_CASES_PER_KIND} cases: {thin}"

    false_share = sum(not row["expected"] for row in rows) / len(rows)
    assert 0.40 <= false_share <= 0.60, f"false share {false_share:.1%}"

    assert len(EXTRACTION_ROWS) >= MIN_EXTRACTION_CASES, len(EXTRACTION_ROWS)
    assert any(row["ans"] is None for _, row in EXTRACTION_ROWS), "no null-answer case"

    responses = [row for _, row in RESPONSE_ROWS]
    assert len(responses) >= MIN_RESPONSE_CASES, len(responses)
    response_false_share = sum(not row["expected"] for row in responses) / len(responses)
    assert 0.40 <= response_false_share <= 0.60, f"response false share {response_false_share:.1%}"


# --- the grader against the cases -------------------------------------------------


@pytest.mark.timeout(CASE_TIMEOUT_S)
@pytest.mark.parametrize("case", _eq_params())
def test_equivalence_case(case: dict) -> None:
    from dartmath.grading.equivalence import is_equivalent

    got = is_equivalent(case["ref"], case["ans"])
    assert bool(got) is case["expected"], (
        f"ref={case['ref']!r} ans={case['ans']!r} expected={case['expected']} "
        f"got={got} ({case['why']})"
    )
    # The verdict is right; it must also be a plain bool (not e.g. sympy's BooleanTrue).
    assert type(got) is bool, f"is_equivalent returned {type(got).__name__}, not bool"


@pytest.mark.timeout(CASE_TIMEOUT_S)
@pytest.mark.parametrize("case", _ex_params())
def test_extraction_case(case: dict) -> None:
    from dartmath.grading.extract import extract_answer

    got = extract_answer(case["resp"])
    assert got == case["ans"], (
        f"resp={case['resp']!r} expected={case['ans']!r} got={got!r} ({case['why']})"
    )


@pytest.mark.timeout(CASE_TIMEOUT_S)
@pytest.mark.parametrize("case", _resp_params())
def test_response_case(case: dict) -> None:
    from dartmath.grading.grade import grade_response

    verdict = grade_response(case["ref"], case["resp"])
    assert verdict.correct is case["expected"], (
        f"resp={case['resp']!r} ref={case['ref']!r} expected={case['expected']} "
        f"got={verdict.correct} (ans={verdict.ans!r}, error={verdict.error!r}) ({case['why']})"
    )
