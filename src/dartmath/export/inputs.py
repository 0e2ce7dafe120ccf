"""The inputs of `dart export`: run directories and graded pool files, what each says about how
its responses were made (model, prompt template, strategy, per-query targets), and the checks
that refuse an input before anything is written.

A run directory is read through its `config.yaml` (model, `prompt.template`, strategy; optional:
without it these are unknown and no target applies) and its `query_info.jsonl` (each query's
`target` and `stop_reason`; required). A run that a `dart synth` still holds, or one with
unfinished queries (`stop_reason: null`, an interrupted run) unless allowed, is refused. A pool
file says only what its lines say: `model` and `prompt_template` where they have them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dartmath.errors import DartError, InputError
from dartmath.io.jsonl import iter_jsonl, whole_size
from dartmath.record import query_id_of
from dartmath.stats import pool_path
from dartmath.synth.store import CONFIG, QUERY_INFO, RunStore, read_run_config
from dartmath.synth.strategies import PARAMS, counts_correct


@dataclass
class Input:
    """One input as given on the command line, and what its run directory (if it is one) says.

    `models` and `templates` start with the config's values; reading the pool adds those of its
    lines (a run resumed with `--force` under another model shows as mixed)."""

    name: str  # as given
    pool: Path
    run_dir: Path | None = None
    limit: int | None = None  # a run's pool is read up to its last newline (`whole_size`)
    config_model: str | None = None  # for lines that do not name their model
    strategy: str | None = None  # described, e.g. `prop2diff(k_p=192); max_raw=2048`
    targets: dict[str, int] = field(default_factory=dict)  # query_id -> target (correct counts)
    unfinished: int = 0  # queries with stop_reason null (exported with allow_unfinished)
    run_queries: int = 0  # queries in query_info.jsonl
    notes: list[str] = field(default_factory=list)
    models: set[str] = field(default_factory=set)
    templates: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return "run directory" if self.run_dir is not None else "pool"


def open_input(path: str | os.PathLike, allow_unfinished: bool = False) -> Input:
    """Open a run directory or a graded pool file; InputError (naming the file) when it is not
    one, when a `dart synth` holds it, or when it has unfinished queries and not
    `allow_unfinished`."""
    pool = pool_path(path)
    inp = Input(name=str(path), pool=pool)
    if not Path(path).is_dir():
        return inp
    run_dir = Path(path)
    inp.run_dir = run_dir
    holder = RunStore(run_dir).lock_holder()
    if holder is not None:
        raise InputError(
            run_dir, None, f"in use by dart synth (pid {holder or '?'}): wait for it to end"
        )
    inp.limit = whole_size(pool)
    torn = pool.stat().st_size - inp.limit
    if torn:
        inp.notes.append(
            f"its last line is cut off ({torn} bytes: the run was killed while writing it): "
            "left out, as dart synth cuts it when it resumes"
        )
    config = read_run_config(run_dir / CONFIG)
    targets_count_correct = False
    if config is None:
        inp.notes.append(f"no {CONFIG}: model, template and strategy unknown, no target cap")
    else:
        inp.config_model = _text(config.get("model"))
        prompt = config.get("prompt")
        template = _text(prompt.get("template")) if isinstance(prompt, dict) else None
        inp.models.update(v for v in (inp.config_model,) if v is not None)
        inp.templates.update(v for v in (template,) if v is not None)
        strategy = config.get("strategy")
        if isinstance(strategy, dict) and isinstance(strategy.get("name"), str):
            inp.strategy = describe_strategy(strategy)
            targets_count_correct = counts_correct(strategy["name"])
        else:
            inp.notes.append(f"{run_dir / CONFIG} names no strategy: no target cap")
    _read_query_info(inp, run_dir / QUERY_INFO, targets_count_correct)
    if inp.unfinished and not allow_unfinished:
        raise InputError(
            run_dir / QUERY_INFO,
            None,
            f"{inp.unfinished} of {inp.run_queries} queries are unfinished (stop_reason null): "
            "the run was interrupted; resume it with dart synth, or export what it has with "
            "--allow-unfinished",
        )
    return inp


def describe_strategy(strategy: dict[str, Any]) -> str:
    """`prop2diff(k_p=192, n_probe=8); max_raw=2048; budget=1000000` (unset values left out)."""
    name = strategy["name"]
    params = ", ".join(
        f"{p}={strategy[p]}" for p in PARAMS.get(name, ()) if strategy.get(p) is not None
    )
    caps = [f"{cap}={strategy[cap]}" for cap in ("max_raw", "budget") if strategy.get(cap)]
    return "; ".join([f"{name}({params})", *caps])


def check_distinct(inputs: Sequence[Input], output: Path) -> None:
    """DartError when one pool is given twice, or the output would replace an input."""
    seen: dict[Path, str] = {}
    out = output.resolve()
    for inp in inputs:
        real = inp.pool.resolve()
        if real in seen:
            raise DartError(f"{inp.name} and {seen[real]} are the same pool: give it once")
        if out == real or (inp.run_dir is not None and out == inp.run_dir.resolve()):
            raise DartError(f"--output {output} would replace the input {inp.name}")
        seen[real] = inp.name


def holders(inputs: Sequence[Input], attr: str) -> dict[str, list[str]]:
    """Each value of the inputs' `models` or `templates` and the inputs that have it."""
    out: dict[str, list[str]] = {}
    for inp in inputs:
        for value in sorted(getattr(inp, attr)):
            out.setdefault(value, []).append(inp.name)
    return out


def check_agreement(inputs: Sequence[Input], allow_mixed: bool) -> None:
    """DartError listing which input has which model or template when they differ, unless
    `allow_mixed`. Inputs that record none do not conflict."""
    lines = [
        f"  {what} {value!r}: {', '.join(names)}"
        for what, attr in (("model", "models"), ("prompt_template", "templates"))
        if len(values := holders(inputs, attr)) > 1
        for value, names in values.items()
    ]
    if not lines or allow_mixed:
        return
    raise DartError(
        "the inputs were made with different settings:\n"
        + "\n".join(lines)
        + "\nExport them separately, or mix them on purpose with --allow-mixed."
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _read_query_info(inp: Input, path: Path, targets_count_correct: bool) -> None:
    """Each query's target (kept when the strategy's targets count correct responses) and the
    number of unfinished queries; InputError naming the line and field of a bad row."""
    if not path.is_file():
        raise InputError(
            path.parent,
            None,
            f"no {QUERY_INFO}: not a run directory of dart synth (give its pool.jsonl to export "
            "the pool without targets)",
        )
    for lineno, rec in iter_jsonl(path):
        qid = query_id_of(rec, path, lineno)
        target = rec.get("target")
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise InputError(path, lineno, f"expected an integer or null, got {target!r}", "target")
        if targets_count_correct and target is not None:
            if target < 1:
                raise InputError(path, lineno, f"expected at least 1, got {target}", "target")
            inp.targets[qid] = target
        reason = rec.get("stop_reason")
        if reason is not None and not isinstance(reason, str):
            raise InputError(
                path, lineno, f"expected a string or null, got {reason!r}", "stop_reason"
            )
        inp.unfinished += reason is None
        inp.run_queries += 1
