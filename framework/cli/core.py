"""What the commands share that needs no typer: splitting recipes from overrides, showing a
result (`emit`) and reporting an error (`report`). common.py wraps these for typer; fast.py
calls them directly, so a warm `validate` loads neither typer nor pydantic.
"""

from __future__ import annotations

import os
import sys
from typing import Any


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


def emit(result: Any, console: Any = None) -> int:
    """Show a framework.api result; the exit code it asks for.

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
    return code


def report(error: BaseException, command: str) -> int:
    """An MlopsError as its `file:line: key.path: message` lines, Ctrl-C as one line; the exit code."""
    from framework.errors import MlopsError, exit_code_for

    if isinstance(error, KeyboardInterrupt):
        print(f"interrupted: {error.args[0] if error.args else command + ' stopped'}", file=sys.stderr)
        return 130
    assert isinstance(error, MlopsError)
    for problem in error.problems:
        print(problem, file=sys.stderr)
    return exit_code_for(error)


def no_cache() -> None:
    """`--no-cache`: this process neither reads nor writes the parse cache."""
    from framework.recipe.cache_store import ENV_SWITCH

    os.environ[ENV_SWITCH] = "1"
