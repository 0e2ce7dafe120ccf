"""The errors a user can cause and fix, as one family: the CLI prints their message and exits
with their code; anything else that escapes is a bug and shows its traceback.

Exit codes: 2 for what the command was given (a bad input file, config, option or run
directory; an extra that is not installed), 1 for what failed while it ran (servers, the
engine, the grader's workers, the disk), 130 for an interrupted run (the CLI's own).
"""

from __future__ import annotations

import os

EXIT_INPUT = 2
EXIT_FAILURE = 1


class DartError(Exception):
    """A user-facing error: its message says what is wrong and how to fix it."""

    exit_code = EXIT_INPUT


class InputError(DartError):
    """A bad input: carries the file, line and field it concerns."""

    def __init__(
        self, path: str | os.PathLike, line: int | None, message: str, field: str | None = None
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


class ConfigError(DartError):
    """A config file, option or override that cannot be used; names the file and key."""


class ResumeRefused(DartError):
    """The run directory holds a run with another meaning (model, queries, prompt...), or
    another `dart synth` is using it."""


class MissingDependency(DartError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class RunDirError(DartError):
    """The run directory cannot be created or written (permissions, full disk)."""

    exit_code = EXIT_FAILURE


class BackendError(DartError):
    """The sampling backend failed in a way another attempt will not fix (a bad request, a
    wrong model name, a refused key, no server reachable)."""

    exit_code = EXIT_FAILURE


class EmbeddedModelError(DartError):
    """The embedded model cannot be provided; the message says what to install or fix."""

    exit_code = EXIT_FAILURE


class GraderStartError(DartError):
    """Grader workers die before they can take work: a broken install, not a bad item."""

    exit_code = EXIT_FAILURE


def require(module: str, what: str, extras: tuple[str, ...]) -> None:
    """Import `module`, or raise MissingDependency naming the extras of dartmath that bring it
    (`what`: the feature that needs it, e.g. "the in-process vLLM backend")."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but cannot import one of its own: a broken install
        hint = " or ".join(f"pip install 'dartmath[{x}]'" for x in extras)
        raise MissingDependency(
            f"{what} needs the `{module}` package, which is not installed: {hint}"
        ) from None
