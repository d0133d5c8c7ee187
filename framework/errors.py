"""One error hierarchy; `exit_code_for` is the only place errors become exit codes."""

from __future__ import annotations

from dataclasses import dataclass

OVERRIDE_SOURCE = "<override>"


@dataclass(frozen=True)
class Location:
    """Where a value came from: a file and line, or the command line."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Problem:
    """One finding, printed as `file:line: key.path: message`; a warning (severity
    "warning": deprecated, still valid) as `file:line: key.path: warning: message`."""

    location: Location | None
    key: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        parts = [str(self.location)] if self.location else []
        if self.key:
            parts.append(self.key)
        if self.severity == "warning":
            parts.append("warning")
        parts.append(self.message)
        return ": ".join(parts)


class MlopsError(Exception):
    """Base of every error the framework reports to a user (exit 1, no traceback)."""

    exit_code = 1

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(None, "", problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RecipeError(MlopsError):
    """A recipe could not be composed or did not validate."""


class ProjectError(MlopsError):
    """The project layout or its settings are unusable."""


class DriftError(MlopsError):
    """Committed output differs from what the recipes produce (exit 2)."""

    exit_code = 2


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, MlopsError):
        return error.exit_code
    return 1
