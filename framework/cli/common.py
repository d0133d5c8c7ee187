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
import os
import sys
from typing import Annotated, Any, Callable, Optional

import typer

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
        from framework.errors import MlopsError, exit_code_for

        try:
            return command(*args, **kwargs)
        except MlopsError as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            raise typer.Exit(exit_code_for(error)) from None
        except KeyboardInterrupt as interrupt:
            print(f"interrupted: {interrupt.args[0] if interrupt.args else command.__name__ + ' stopped'}", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def split_args(args: list[str] | None) -> tuple[list[str], list[str]]:
    """Recipes are names or paths; overrides are Hydra `key=value`, `+key=v`, `~key`."""
    recipes, overrides = [], []
    for arg in args or []:
        (overrides if "=" in arg or arg.startswith("~") else recipes).append(arg)
    return recipes, overrides


def stderr_console(width: int = 120) -> Any:
    """A rich console on stderr: the terminal's width, else `width` (logs, CI)."""
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else width)


def finish(result: Any, console: Any = None) -> None:
    """Show a framework.api result and exit with its code (0: return normally).

    Its tables go to stderr (on `console` when given), its hand-over to the GitHub
    Actions job (step outputs, job summary; outputs a later job needs but the result
    lacks fail the command under Actions), then its lines: stdout, `Err` lines stderr."""
    from framework.api import Err

    tables = result.tables()
    if tables:
        console = console or stderr_console()
        for table in tables:
            console.print(table)
    code = result.exit_code
    handover = result.handover()
    if handover is not None:
        from framework.runtime.github_actions import append_summary, write_outputs

        if handover.missing and os.environ.get("GITHUB_OUTPUT"):  # later jobs need them: say why they are missing
            print(handover.missing, file=sys.stderr)
            code = code or 1
        if handover.outputs:
            write_outputs(handover.outputs)
        if handover.summary:
            append_summary(handover.summary)
    for line in result.lines():
        print(line, file=sys.stderr if isinstance(line, Err) else sys.stdout, flush=True)
    if code:
        raise typer.Exit(code)
