"""What every `mlops` command shares: the typer app, the common options, the error
wrapper, and `finish`, the one place a command's result becomes output and an exit code.
A command parses its options, calls framework.api, and hands the returned result to
`finish`, which shows its tables on stderr, hands its outputs and summary on to a
GitHub Actions job, prints its lines (stdout, or stderr for the lines marked `Err`) and
exits with the result's code. `reports_errors` turns an `MlopsError` into its problem
lines and the exit code framework.errors.exit_code_for gives it, and Ctrl-C into 130.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Callable, Optional

import typer

from framework.cli.core import emit, report, split_args, stderr_console  # noqa: F401  (the commands import them from here)

app = typer.Typer(
    name="mlops",
    help="Turn recipes into running ML systems: validate, explain, generate and plan recipes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EnvOption = Annotated[Optional[str], typer.Option("--env", "-e", help="Env overlay to compose with (dev, staging, prod).")]
RecipeArgument = Annotated[str, typer.Argument(help="Recipe name or path.")]
VersionOption = Annotated[Optional[str], typer.Option("--version", help="Registered model version (1, 2, ...).")]


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print MlopsErrors as `file:line: key.path: message` lines; exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from framework.errors import MlopsError

        try:
            return command(*args, **kwargs)
        except (MlopsError, KeyboardInterrupt) as error:
            raise typer.Exit(report(error, command.__name__)) from None

    return wrapper


def finish(result: Any, console: Any = None) -> None:
    """Show a framework.api result (core.emit) and exit with its code (0: return normally)."""
    code = emit(result, console)
    if code:
        raise typer.Exit(code)
