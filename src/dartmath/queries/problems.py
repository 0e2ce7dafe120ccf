"""What is wrong with an input: one problem per record and field, collected so that every
problem of an input is reported at once (up to `MAX_REPORTED`) instead of the first alone."""

from __future__ import annotations

from dataclasses import dataclass

from dartmath.errors import InputError

MAX_REPORTED = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input record: where (file:line or row), which field, what."""

    location: str
    field: str | None
    message: str

    def __str__(self) -> str:
        what = f"field '{self.field}': {self.message}" if self.field else self.message
        return f"{self.location}: {what}"


class QueryInputError(InputError):
    """Every problem found in one input, reported together; nothing was loaded."""

    def __init__(self, source: str, problems: list[Problem], total: int) -> None:
        self.problems = problems
        self.total = total
        shown = "\n".join(f"  {p}" for p in problems)
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        noun = "problem" if total == 1 else "problems"
        super().__init__(
            source, None, f"{total} {noun} in the input, nothing loaded:\n{shown}{more}"
        )


class Problems:
    """Collects problems, keeping the first MAX_REPORTED and counting the rest."""

    def __init__(self) -> None:
        self.shown: list[Problem] = []
        self.total = 0

    def add(self, location: str, fld: str | None, message: str) -> None:
        """Record one problem (kept for the report while fewer than MAX_REPORTED are)."""
        self.total += 1
        if len(self.shown) < MAX_REPORTED:
            self.shown.append(Problem(location, fld, message))

    def raise_if_any(self, source: str) -> None:
        """Raise QueryInputError naming `source` if any problem was recorded."""
        if self.total:
            raise QueryInputError(source, self.shown, self.total)
