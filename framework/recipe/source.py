"""Where a recipe lives: its file and the Hydra config dir (its folder) holding its groups.

Apart from compose.py so that finding a recipe imports neither YAML nor Hydra: the parse
cache answers from here when nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from framework.errors import Location, Problem, RecipeError
from framework.project import Project, display_path
from framework.recipe.suggest import did_you_mean, one_of


@dataclass(frozen=True)
class RecipeSource:
    """A recipe file and the Hydra config dir (its folder) that holds its groups."""

    name: str
    file: Path
    config_dir: Path

    def groups(self) -> list[str]:
        return sorted(p.name for p in self.config_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))

    def options(self, group: str) -> list[str]:
        folder = self.config_dir / group
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def locate(project: Project, recipe: str) -> RecipeSource:
    """A recipe given by name (`churn`) or by path (`recipes/churn.yaml`)."""
    if recipe.endswith((".yaml", ".yml")) or "/" in recipe or "\\" in recipe:
        file = Path(recipe)
        if not file.is_file():
            raise RecipeError([Problem(Location(recipe), "", "recipe file not found")])
        file = file.resolve()
        return RecipeSource(file.stem, file, file.parent)
    file = project.recipes_dir / f"{recipe}.yaml"
    if recipe and not file.is_file():  # by its name: `support-assistant` is support_assistant.yaml
        file = project.recipes_dir / f"{recipe.replace('-', '_')}.yaml"
    if not recipe or not file.is_file():
        known = project.recipe_names()
        raise RecipeError(
            [
                Problem(
                    Location(display_path(project.recipes_dir)),
                    "",
                    f"unknown recipe '{recipe}'{did_you_mean(recipe, known)}; recipes: {one_of(known)}",
                )
            ]
        )
    return RecipeSource(file.stem, file, project.recipes_dir)
