"""`mlops validate` and `mlops generate` answered without typer, when their arguments are plain.

Typer takes ~35 ms to import and builds a pydantic TypeAdapter for each option it parses
(pydantic's import, ~60 ms): most of what a warm `validate` may take (0.15 s), where the
parse cache answers in a few milliseconds. These two commands take names, overrides and
the few options below; `answer` reads them when every argument is one of those, and
returns None for anything else (`--help`, an unknown, repeated or attached option, `--`),
which typer then parses and reports as usual. Output and exit codes are core.py's, the
same as typer's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# command -> its flags; both take `--env/-e VALUE` and recipes or overrides as arguments
FLAGS = {"validate": {"--all-envs", "--no-cache", "--strict"}, "generate": {"--all-envs", "--check", "--no-cache", "--strict"}}
ENV_OPTIONS = ("--env", "-e")


def parse(argv: Sequence[str]) -> tuple[str, list[str], set[str], str | None] | None:
    """(command, arguments, flags, env) for a plain command line, else None."""
    if not argv or argv[0] not in FLAGS:
        return None
    command, rest = argv[0], list(argv[1:])
    arguments, flags, env = [], set(), None
    while rest:
        token = rest.pop(0)
        if token.startswith("--env="):
            token, value = "--env", token.removeprefix("--env=")
            rest.insert(0, value)
        if token in ENV_OPTIONS:
            if env is not None or not rest or not rest[0] or rest[0].startswith("-"):
                return None
            env = rest.pop(0)
        elif token in FLAGS[command] and token not in flags:
            flags.add(token)
        elif token.startswith("-"):
            return None
        else:
            arguments.append(token)
    return command, arguments, flags, env


def answer(argv: Sequence[str]) -> int | None:
    """Run a plain `validate` or `generate`; its exit code, or None to leave it to typer."""
    plain = parse(argv)
    if plain is None:
        return None
    command, arguments, flags, env = plain
    from framework.cli import core
    from framework.errors import MlopsError

    if "--no-cache" in flags:
        core.no_cache()
    try:
        return core.emit(_call(command, arguments, flags, env))
    except (MlopsError, KeyboardInterrupt) as error:
        return core.report(error, command)


def _call(command: str, arguments: list[str], flags: set[str], env: str | None) -> Any:
    from framework import api
    from framework.cli.core import split_args

    if command == "validate":
        recipes, overrides = split_args(arguments)
        return api.validate(recipes, env=env, overrides=overrides, all_envs="--all-envs" in flags,
                            strict="--strict" in flags)
    return api.generate(arguments, env=env, all_envs="--all-envs" in flags, check="--check" in flags,
                        strict="--strict" in flags)
