"""What an export did, as figures (the dataset card renders the same ones) and as the text the
CLI prints: inputs, models, templates, strategies and targets, the selection rules, records per
source and per level, the queries left with no record and why, and every response left out and
why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dartmath.export.inputs import Input, holders
from dartmath.export.scan import QueryTally, Scan
from dartmath.export.select import Kept, SelectOptions

# Why a response of the inputs is not in the training set, in the order the rules apply.
LEFT_OUT = {
    "incorrect": "incorrect",
    "pass_rate": "query outside the pass-rate range",
    "over_target": "past the query's target",
    "duplicates": "duplicate of a kept response",
    "over_max": "past --max-per-query",
}


@dataclass
class Group:
    """Queries, queries with records, and records of one source or level."""

    queries: int = 0
    with_records: int = 0
    records: int = 0


@dataclass
class InputSummary:
    """One input: what it is and holds, and what its run directory says."""

    name: str
    kind: str
    lines: int
    queries: int
    strategy: str | None = None
    targets: str | None = None  # e.g. `4,500 over 100 queries (1 to 192)`
    unfinished: int = 0
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, inp: Input, lines: int, queries: int) -> InputSummary:
        targets = None
        if inp.targets:
            values = inp.targets.values()
            targets = (
                f"{sum(values):,} over {len(values):,} queries ({min(values)} to {max(values)})"
            )
        return cls(
            name=inp.name,
            kind=inp.kind,
            lines=lines,
            queries=queries,
            strategy=inp.strategy,
            targets=targets,
            unfinished=inp.unfinished,
            notes=list(inp.notes),
        )


def level_label(level: Any) -> str:
    return "-" if level is None else str(level)


def _level_order(label: str) -> tuple[int, float, str]:
    """Numeric levels first, in order; then the others by name; `-` (none) last."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (2 if label == "-" else 1, 0.0, label)


@dataclass
class ExportReport:
    """The figures of one export; `add_query` adds each query's selection."""

    output: str
    fmt: str
    layout: str
    with_meta: bool = False
    prompt_template: str | None = None
    options: SelectOptions = field(default_factory=SelectOptions)
    inputs: list[InputSummary] = field(default_factory=list)
    models: dict[str, list[str]] = field(default_factory=dict)  # value -> inputs with it
    templates: dict[str, list[str]] = field(default_factory=dict)
    lines: int = 0
    records: int = 0
    queries: int = 0
    with_records: int = 0
    unsolved: int = 0  # queries with no correct response
    filtered: int = 0  # queries with correct responses, outside the pass-rate range
    left_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEFT_OUT, 0))
    by_source: dict[str, Group] = field(default_factory=dict)
    by_level: dict[str, Group] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        output: str,
        fmt: str,
        layout: str,
        inputs: Sequence[Input],
        scan: Scan,
        **settings: Any,
    ) -> ExportReport:
        """A report of the inputs, before any query is added."""
        report = cls(output=output, fmt=fmt, layout=layout, **settings)
        report.inputs = [
            InputSummary.of(inp, n, len(local))
            for inp, n, local in zip(inputs, scan.lines, scan.local, strict=True)
        ]
        report.models = holders(inputs, "models")
        report.templates = holders(inputs, "templates")
        report.lines = scan.n_lines
        return report

    @property
    def unfinished(self) -> int:
        return sum(i.unfinished for i in self.inputs)

    def add_query(self, tally: QueryTally, kept: Kept) -> None:
        n = len(kept.places)
        self.queries += 1
        self.records += n
        self.with_records += n > 0
        self.unsolved += tally.n_correct == 0
        self.filtered += kept.filtered > 0
        self.left_out["incorrect"] += tally.n_samples - tally.n_correct
        self.left_out["pass_rate"] += kept.filtered
        self.left_out["over_target"] += kept.over_target
        self.left_out["duplicates"] += kept.duplicates
        self.left_out["over_max"] += kept.over_max
        for groups, label in (
            (self.by_source, "-" if tally.source is None else tally.source),
            (self.by_level, level_label(tally.level)),
        ):
            group = groups.setdefault(label, Group())
            group.queries += 1
            group.with_records += n > 0
            group.records += n

    def levels(self) -> list[tuple[str, Group]]:
        """The per-level groups in level order."""
        return sorted(self.by_level.items(), key=lambda kv: _level_order(kv[0]))

    def setting(self, what: str) -> str:
        """`model` or `prompt template`: the one value, `mixed: ...` or `unknown`."""
        values = self.models if what == "model" else self.templates
        known = {name for names in values.values() for name in names}
        unknown = [i.name for i in self.inputs if i.name not in known]
        if not values:
            return "unknown"
        if len(values) == 1:
            text = next(iter(values))
        else:
            text = "mixed: " + "; ".join(f"{v} ({', '.join(n)})" for v, n in values.items())
        return text + (f" (unknown for {', '.join(unknown)})" if unknown else "")

    def selection(self) -> str:
        """The selection rules used, in one line."""
        o = self.options
        return "; ".join(
            [
                "correct responses only",
                "all past the target kept" if o.keep_over_target else "capped at targets",
                f"dedup {o.dedup}",
                f"max per query {o.max_per_query or '-'}",
                f"pass rate {o.min_pass_rate:g} to {o.max_pass_rate:g}",
            ]
        )

    def format(self) -> str:
        """The report as text."""
        layout = self.layout + (", with meta" if self.with_meta else "")
        if self.prompt_template:
            layout += f", prompt template {self.prompt_template}"
        n = len(self.inputs)
        lines = [f"export: {n} input{'s' * (n != 1)} -> {self.output} ({self.fmt}; {layout})"]
        for i in self.inputs:
            lines.append(f"  {i.name}: {i.kind}, {i.lines:,} lines, {i.queries:,} queries")
            if i.strategy:
                lines.append(f"    strategy {i.strategy}")
            if i.targets:
                lines.append(f"    targets {i.targets}")
            if i.unfinished:
                lines.append(f"    unfinished queries {i.unfinished:,} (--allow-unfinished)")
            lines += [f"    note: {note}" for note in i.notes]
        missing = self.queries - self.with_records
        lines += [
            f"model            {self.setting('model')}",
            f"prompt template  {self.setting('prompt template')}",
            f"selection        {self.selection()}",
            f"records          {self.records:>10,}   from {self.with_records:,} of "
            f"{self.queries:,} queries",
            f"no record        {missing:>10,}   queries: {self.unsolved:,} with no correct "
            f"response, {self.filtered:,} outside the pass-rate range",
            f"left out         {sum(self.left_out.values()):>10,}   of {self.lines:,} responses:",
        ]
        lines += [f"  {LEFT_OUT[k]:<34} {v:>10,}" for k, v in self.left_out.items()]
        for title, groups in (("source", list(self.by_source.items())), ("level", self.levels())):
            if len(groups) > 1 or (groups and groups[0][0] != "-"):
                lines += ["", *_group_table(title, groups)]
        return "\n".join(lines)


def _group_table(title: str, groups: list[tuple[str, Group]]) -> list[str]:
    w = max(len(title), *(len(name) for name, _ in groups))
    out = [f"by {title}:", f"  {title:<{w}}  {'queries':>9}  {'with records':>12}  {'records':>10}"]
    out += [
        f"  {name:<{w}}  {g.queries:>9,}  {g.with_records:>12,}  {g.records:>10,}"
        for name, g in groups
    ]
    return out
