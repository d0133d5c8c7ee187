"""The project on disk: where recipes, generated output, workflows and schemas live.

Settings come from `[tool.mlops]` in the nearest pyproject.toml (searching upwards
from the working directory); without one, the working directory is the project.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from framework.errors import ProjectError

_SETTINGS = ("recipes_dir", "generated_dir", "workflows_dir", "schemas_dir", "state_dir")
_DEFAULTS = {
    "recipes_dir": "recipes",
    "generated_dir": "generated",
    "workflows_dir": ".github/workflows",
    "schemas_dir": "schemas",
    "state_dir": ".mlops",
}


@dataclass(frozen=True)
class Project:
    root: Path
    recipes_dir: Path
    generated_dir: Path
    workflows_dir: Path
    schemas_dir: Path
    state_dir: Path

    @classmethod
    def at(cls, root: Path, **settings: str) -> "Project":
        root = root.resolve()
        values = {**_DEFAULTS, **settings}
        return cls(root=root, **{k: (root / values[k]).resolve() for k in _SETTINGS})

    @classmethod
    def discover(cls, start: Path | None = None) -> "Project":
        start = (start or Path.cwd()).resolve()
        for folder in (start, *start.parents):
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file():
                settings = _read_settings(pyproject)
                if settings is not None:
                    return cls.at(folder, **settings)
        return cls.at(start)

    def recipe_names(self) -> list[str]:
        """Top-level YAML files of the recipes dir are recipes; folders are groups."""
        if not self.recipes_dir.is_dir():
            return []
        return sorted(p.stem for p in self.recipes_dir.glob("*.yaml") if p.is_file())


def _read_settings(pyproject: Path) -> dict[str, str] | None:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"{pyproject}: cannot read [tool.mlops]: {exc}") from None
    section = data.get("tool", {}).get("mlops")
    if section is None:
        return None
    unknown = sorted(set(section) - set(_SETTINGS))
    if unknown:
        raise ProjectError(
            f"{pyproject}: tool.mlops: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(_SETTINGS)}"
        )
    return {k: str(v) for k, v in section.items()}


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
