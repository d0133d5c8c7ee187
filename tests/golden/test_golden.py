"""Golden tests: every variant's rendered files equal the copies under tests/golden/.

`pytest tests/golden --update-golden` rewrites them; review the diff like code. The
manifest (framework version, hashes) is left out: volatile facts live only there.
The committed generated/ tree of the examples is checked separately: it must be
exactly what `mlops generate --all-envs` writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from framework import api
from framework.generate import MANIFEST, render_env
from framework.project import Project
from tests.conftest import REPO
from tests.targets.conftest import VARIANTS

GOLDEN = Path(__file__).parent
WORKFLOWS = "_workflows"


def _render(variant: str) -> dict[str, str]:
    recipe, env, overrides = VARIANTS[variant]
    rendered = render_env(Project.discover(REPO), api.load_recipe(recipe, env=env, overrides=overrides, project=REPO))
    files = {rel: text for rel, text in rendered.files.items() if rel != MANIFEST}
    files.update({f"{WORKFLOWS}/{rel}": text for rel, text in rendered.workflows.items()})
    return files


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_output_matches_golden(variant: str, request: pytest.FixtureRequest) -> None:
    files = _render(variant)
    folder = GOLDEN / variant
    if request.config.getoption("--update-golden"):
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
    expected = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(expected), "files differ: run pytest tests/golden --update-golden and review"
    for rel, text in files.items():
        assert text == expected[rel], f"{variant}/{rel} differs: run pytest tests/golden --update-golden and review"


def test_committed_generated_output_is_current() -> None:
    """What CI's mlops-regenerate workflow checks: `mlops generate --all-envs --check`."""
    api.generate(all_envs=True, check=True, project=REPO)
