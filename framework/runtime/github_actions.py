"""What a command run by a GitHub Actions job hands on: step outputs (`$GITHUB_OUTPUT`,
read by later jobs as `needs.<job>.outputs.<name>`) and the job summary
(`$GITHUB_STEP_SUMMARY`, markdown shown on the run's page).

Outside Actions (the variables unset) both are no-ops, so commands call them always.
The harness in tests/pipeline/ sets the same variables to files, as a runner does.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def write_outputs(outputs: Mapping[str, object]) -> bool:
    """Append `name=value` lines (a heredoc for multi-line values) to $GITHUB_OUTPUT."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return False
    lines = []
    for name, value in outputs.items():
        text = "" if value is None else str(value)
        if "\n" in text:
            marker = f"EOF_{uuid.uuid4().hex}"
            lines.append(f"{name}<<{marker}\n{text}\n{marker}")
        else:
            lines.append(f"{name}={text}")
    with Path(target).open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return True


def append_summary(markdown: str) -> bool:
    """Append markdown to the job summary ($GITHUB_STEP_SUMMARY)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with Path(target).open("a", encoding="utf-8") as out:
        out.write(markdown.rstrip("\n") + "\n\n")
    return True


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(map(_cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


__all__ = ["write_outputs", "append_summary", "markdown_table"]
