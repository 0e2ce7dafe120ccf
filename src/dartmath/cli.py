"""The `dart` command line: option parsing and printing only; the work is in library modules."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import click

from dartmath import __version__
from dartmath.errors import EXIT_FAILURE, DartError

EXIT_INTERRUPTED = 130


def _fail(command: str, error: DartError, *notes: str) -> NoReturn:
    """Print a user-facing error (and notes) and exit with its code."""
    click.echo(f"dart {command}: error: {error}", err=True)
    for note in notes:
        click.echo(note, err=True)
    sys.exit(error.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dart")
def main() -> None:
    """dartmath: Difficulty-Aware Rejection Sampling for math instruction data."""


@main.command()
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Pool JSONL to grade (needs `gt_ans` and `resp` on every line).",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the graded pool (may equal --input).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Grader worker processes.",
)
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Hard time limit per item, in seconds; a stuck worker is killed.",
)
@click.option(
    "--query-info",
    "query_info_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the per-query file recomputed from the graded pool.",
)
@click.option(
    "--skip-bad",
    is_flag=True,
    help="Count, report and leave out bad lines instead of stopping at the first.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def grade(
    input_path: str,
    output_path: str,
    workers: int,
    timeout: float,
    query_info_path: str | None,
    skip_bad: bool,
    no_progress: bool,
) -> None:
    """Re-grade every response of a pool against its reference answer."""
    from dartmath.grading.grade_file import grade_file

    try:
        summary = grade_file(
            input_path,
            output_path,
            workers=workers,
            timeout=timeout,
            skip_bad=skip_bad,
            query_info_path=query_info_path,
            progress=not no_progress,
        )
    except DartError as e:
        _fail("grade", e, "Nothing was written.")
    click.echo(summary.format())
    click.echo(f"wrote {output_path}")
    if query_info_path:
        click.echo(f"wrote {query_info_path}")


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a PNG: responses per query by difficulty, and a pass-rate histogram.",
)
@click.option(
    "--top",
    default=20,
    show_default=True,
    type=click.IntRange(0),
    help="How many per-query rows to print (hardest first); 0 for all.",
)
def stats(path: str, as_json: bool, plot_path: str | None, top: int) -> None:
    """Per-query raw/correct counts and pass rates of a pool file or run directory; per source
    when there are several, and (run directory) the queries a cap cut short."""
    from dartmath import stats as stats_mod

    try:
        report = stats_mod.load_report(path)
    except DartError as e:
        _fail("stats", e)
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(report.format(top=top))
    if plot_path:
        from dartmath.plot import plot_report

        plot_report(report, plot_path)
        click.echo(f"wrote {plot_path}", err=as_json)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(),
    help="OUT.jsonl, OUT.parquet, or a folder for datasets' save_to_disk.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "parquet", "datasets", "messages"]),
    default=None,
    help="File format (default: from OUT's name); `messages` = --layout messages, the file "
    "format from OUT's name.",
)
@click.option(
    "--layout",
    type=click.Choice(["query-response", "messages"]),
    default=None,
    help="Records of `query`, `response` (default), or chat `messages`.",
)
@click.option(
    "--with-meta",
    is_flag=True,
    help="Add query_id, source, the query's metadata, sample_idx, pass_rate and model.",
)
@click.option(
    "--prompt-template",
    default=None,
    help="Render the query (user turn) with this sampling template (alpaca, deepseekmath, "
    "qwen-boxed).",
)
@click.option(
    "--max-per-query",
    type=click.IntRange(1),
    default=None,
    help="Keep at most K responses per query, the first in sample order.",
)
@click.option(
    "--dedup",
    type=click.Choice(["none", "exact", "normalized"]),
    default="none",
    show_default=True,
    help="Drop a query's repeated responses (normalized: whitespace and case).",
)
@click.option(
    "--min-pass-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Keep only queries whose pass rate is at least this.",
)
@click.option(
    "--max-pass-rate",
    type=click.FloatRange(0, 1),
    default=1.0,
    help="Keep only queries whose pass rate is at most this.",
)
@click.option(
    "--keep-over-target",
    is_flag=True,
    help="Keep correct responses past a query's target (a Prop2Diff probe's extra ones).",
)
@click.option("--allow-mixed", is_flag=True, help="Merge inputs of different models/templates.")
@click.option(
    "--allow-unfinished", is_flag=True, help="Export an interrupted run's unfinished queries too."
)
@click.option(
    "--card",
    "card_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the dataset card here (default: README.md in the folder of OUT, or inside it).",
)
@click.option("--no-card", is_flag=True, help="Write no dataset card.")
def export(
    inputs: tuple[str, ...],
    output: str,
    fmt: str | None,
    layout: str | None,
    with_meta: bool,
    prompt_template: str | None,
    max_per_query: int | None,
    dedup: str,
    min_pass_rate: float,
    max_pass_rate: float,
    keep_over_target: bool,
    allow_mixed: bool,
    allow_unfinished: bool,
    card_path: str | None,
    no_card: bool,
) -> None:
    """Write the training set of run directories or graded pools: one record per kept correct
    response, with a dataset card."""
    from dartmath.export import ExportOptions, SelectOptions, export_training_set

    if fmt == "messages":
        if layout == "query-response":
            raise click.UsageError("--format messages and --layout query-response disagree")
        fmt, layout = None, "messages"
    if no_card and card_path:
        raise click.UsageError("--card and --no-card disagree")
    try:
        select = SelectOptions(
            keep_over_target=keep_over_target,
            dedup=dedup,
            max_per_query=max_per_query,
            min_pass_rate=min_pass_rate,
            max_pass_rate=max_pass_rate,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    options = ExportOptions(
        fmt=fmt,
        layout=layout or "query-response",
        with_meta=with_meta,
        prompt_template=prompt_template,
        select=select,
        allow_mixed=allow_mixed,
        allow_unfinished=allow_unfinished,
        card=card_path,
        write_card=not no_card,
    )
    try:
        report = export_training_set(inputs, output, options)
    except DartError as e:
        _fail("export", e, "Nothing was written.")
    click.echo(report.format())
    for path in report.written:
        click.echo(f"wrote {path}")


# Named options of `dart synth`: each is a shortcut for one dotted config key.
_SYNTH_SHORTCUTS = {
    "strategy": "strategy.name",
    "model": "model",
    "queries": "queries.source",
    "preset": "queries.preset",
    "run_dir": "run.dir",
    "k_u": "strategy.k_u",
    "k_p": "strategy.k_p",
    "n_probe": "strategy.n_probe",
    "n_vrt": "strategy.n_vrt",
    "max_raw": "strategy.max_raw",
    "budget": "strategy.budget",
    "stop": "run.stop",
    "template": "prompt.template",
    "limit": "queries.limit",
    "backend": "backend.name",
    "endpoints_file": "backend.endpoints_file",
    "served_model_name": "backend.served_model_name",
    "api_key_env": "backend.api_key_env",
}


_RUN_CONFIG_OPTIONS = [
    click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), help="YAML run config."
    ),
    click.option(
        "--strategy", type=click.Choice(["uniform", "prop2diff", "vrt"]), help="strategy.name"
    ),
    click.option("--model", help="Hub name, local folder, or embedded:smollm2-135m (model)."),
    click.option("--queries", help="Query file or datasets name (queries.source)."),
    click.option("--preset", type=click.Choice(["math", "gsm8k"]), help="queries.preset"),
    click.option("--limit", type=int, help="Use the first N queries (queries.limit)."),
    click.option("--run-dir", help="Run directory (run.dir); an existing one is resumed."),
    click.option("--template", help="Prompt template (prompt.template)."),
    click.option("--k-u", type=int, help="Uniform: correct responses per query."),
    click.option("--k-p", type=int, help="Prop2Diff: target of the hardest queries."),
    click.option(
        "--n-probe",
        type=int,
        help="Prop2Diff: probe samples per query (the queries a prior lacks).",
    ),
    click.option(
        "--difficulty-from",
        "difficulty_from",
        multiple=True,
        metavar="PRIOR",
        help="Prop2Diff: a query-info file or dataset with pass_rate (repeatable: several priors).",
    ),
    click.option("--n-vrt", type=int, help="VRT: raw samples per query."),
    click.option("--max-raw", type=int, help="Per-query cap on raw samples."),
    click.option("--budget", type=int, help="Global cap on raw samples."),
    click.option(
        "--stop",
        type=click.Choice(["submission-order", "first-finished"]),
        help="Which correct responses a query keeps: its first in submission order (the default) "
        "or the first to finish (run.stop).",
    ),
    click.option(
        "--backend",
        type=click.Choice(["vllm", "openai"]),
        help="vllm: the engine in this process; openai: OpenAI-compatible servers (backend.name).",
    ),
    click.option(
        "--endpoint",
        "endpoints",
        multiple=True,
        metavar="URL",
        help="A server of the openai backend, e.g. http://node1:8000 (repeatable).",
    ),
    click.option("--endpoints-file", help="A file listing servers, one URL per line."),
    click.option("--served-model-name", help="The model name the servers serve it under."),
    click.option("--api-key-env", help="Environment variable holding the servers' API key."),
    click.option(
        "--set",
        "-o",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override any config key, e.g. -o sampling.temperature=0.8 -o engine.max_num_seqs=64.",
    ),
]


def _run_config_options(command: Callable) -> Callable:
    """The options that say which run: the config, its named shortcuts and `--set` overrides
    (`dart synth` and `dart plan` take the same)."""
    for option in reversed(_RUN_CONFIG_OPTIONS):
        command = option(command)
    return command


@main.command()
@_run_config_options
@click.option("--force", is_flag=True, help="Resume even if the config changes the run's meaning.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True, help="Show vLLM's own log.")
def synth(
    config_path: str | None,
    endpoints: tuple[str, ...],
    difficulty_from: tuple[str, ...],
    overrides: tuple[str, ...],
    force: bool,
    no_progress: bool,
    verbose: bool,
    **shortcuts: object,
) -> None:
    """Sample responses with vLLM and keep each query until its target is met (DARS)."""
    from dartmath.synth.config import resolve_config

    _set_log_levels(verbose)
    try:
        values = _config_values(shortcuts, endpoints, overrides)
        if difficulty_from:  # one prior stays a string, as every earlier version wrote it
            values["strategy.difficulty_from"] = (
                difficulty_from[0] if len(difficulty_from) == 1 else list(difficulty_from)
            )
        cfg, notes = resolve_config(config_path, values)
    except DartError as e:
        _fail("synth", e)
    for note in notes:
        click.echo(f"dart synth: note: {note}", err=True)

    from dartmath.synth.outcome import format_outcome
    from dartmath.synth.run import run_synth

    try:
        outcome = run_synth(
            cfg,
            force=force,
            progress=not no_progress,
            note=lambda text: click.echo(f"dart synth: note: {text}", err=True),
        )
    except DartError as e:
        if e.exit_code == EXIT_FAILURE:  # failed while running: what is written is kept
            _fail(
                "synth",
                e,
                f"Every graded response is kept; once fixed, resume with: {_resume_command()}",
            )
        _fail("synth", e)
    except KeyboardInterrupt:
        click.echo(f"\ndart synth: interrupted. Resume with: {_resume_command()}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(format_outcome(outcome))
    if outcome.outcome == "interrupted":
        click.echo(f"Interrupted. Resume with: {_resume_command()}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _config_values(
    shortcuts: dict[str, object], endpoints: tuple[str, ...], overrides: tuple[str, ...]
) -> dict[str, object]:
    """Dotted config keys and values from the named options and `--set` overrides."""
    from dartmath.synth.config import parse_override

    values: dict[str, object] = {}
    for name, value in shortcuts.items():
        if value is not None:
            values[_SYNTH_SHORTCUTS[name]] = value
    if endpoints:
        values["backend.endpoints"] = list(endpoints)
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    return values


@main.command()
@_run_config_options
@click.option(
    "--tokens-per-response",
    type=click.FloatRange(min=0, min_open=True),
    help="Generated tokens per response (default: measured in the run's pool, --tokens-from, "
    "or the pool beside a prior's query_info.jsonl).",
)
@click.option(
    "--tokens-from",
    type=click.Path(exists=True),
    help="A pool or run directory to measure tokens per response in.",
)
@click.option(
    "--tokens-per-s",
    type=float,
    help="Generated tokens/s of one replica on your hardware (bench/README.md says how to "
    "measure it).",
)
@click.option(
    "--replicas", default=1, show_default=True, type=click.IntRange(1), help="Engines at once."
)
@click.option(
    "--gpus-per-replica",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="GPUs per engine (tensor parallelism), for GPU-hours.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Write a PNG: expected samples per query by difficulty (and per source).",
)
def plan(
    config_path: str | None,
    endpoints: tuple[str, ...],
    difficulty_from: tuple[str, ...],
    overrides: tuple[str, ...],
    tokens_per_response: float | None,
    tokens_from: str | None,
    tokens_per_s: float | None,
    replicas: int,
    gpus_per_replica: int,
    as_json: bool,
    plot_path: str | None,
    **shortcuts: object,
) -> None:
    """Predict a synth run's raw samples, kept responses, tokens and GPU-hours before it starts
    (or what is left of it), from the pass rates of a prior or of the run's own pool. Prop2Diff
    takes --difficulty-from as its prior; the other strategies read it for pass rates only."""
    from dartmath.plan.build import TokenRate, plan_config, plan_run, throughput_of

    def note(text: str) -> None:
        click.echo(f"dart plan: note: {text}", err=True)

    try:
        values = _config_values(shortcuts, endpoints, overrides)
        cfg, notes, rates_from = plan_config(config_path, values, list(difficulty_from))
        for text in notes:
            note(text)
        report = plan_run(
            cfg,
            rates_from=rates_from,
            tokens=None if tokens_per_response is None else TokenRate(tokens_per_response, "given"),
            tokens_from=tokens_from,
            throughput=throughput_of(tokens_per_s, replicas, gpus_per_replica),
            config_path=config_path,
            note=note,
        )
    except DartError as e:
        _fail("plan", e)
    click.echo(report.to_json() if as_json else report.format())
    if plot_path:
        from dartmath.plan.plot import plot_plan

        plot_plan(report, plot_path)
        click.echo(f"wrote {plot_path}", err=as_json)


def _resume_command() -> str:
    import shlex

    return "dart " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _set_log_levels(verbose: bool) -> None:
    """Our log at INFO with -v, else WARNING. Without -v the libraries' start-up chatter (vLLM's
    log, torch's C++ warnings, Python warnings, the hub's and transformers' progress bars) is
    kept to errors; the environment carries this to vLLM's worker processes."""
    import logging
    import os
    import warnings

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if verbose else "ERROR")
    if verbose:
        return
    logging.getLogger("vllm").setLevel(logging.ERROR)  # it logs at import, before its own setup
    for name, value in {
        "TORCH_CPP_LOG_LEVEL": "ERROR",
        "PYTHONWARNINGS": "ignore",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }.items():
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")


if __name__ == "__main__":
    main()
