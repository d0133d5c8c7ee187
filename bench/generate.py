"""`generate --check` over 200 recipe x env combinations, against the bare floor:
Hydra's compose API + pydantic validation of the same combinations, in the same run.

The combinations are copies of the example recipes with varied values (epochs,
batch sizes, canary steps, replicas) in a temporary project, in the three envs.
Run: `python bench/generate.py` (or `make bench`). Goals: <= 2x the floor, < 25 ms.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMBINATIONS = 200
ENVS = ("dev", "staging", "prod")


def make_project(folder: Path, recipes: int) -> list[str]:
    shutil.copytree(ROOT / "recipes", folder / "recipes")
    (folder / "pyproject.toml").write_text('[tool.mlops]\nrecipes_dir = "recipes"\n')
    churn = (ROOT / "recipes" / "churn.yaml").read_text()
    support = (ROOT / "recipes" / "support_assistant.yaml").read_text()
    names = []
    for i in range(recipes):
        if i % 4 == 3:
            text = support.replace("name: support-assistant", f"name: assistant-{i}")
            text += f"serving:\n  max_num_seqs: {64 + i}\n"
        else:
            text = churn.replace("name: churn", f"name: churn-{i}")
            text += (f"training:\n  epochs: {5 + i % 20}\n  batch_size: {64 * (1 + i % 4)}\n"
                     f"serving:\n  max_batch_size: {32 + i % 3 * 16}\n"
                     f"rollout:\n  steps: [{5 + i % 10}, 50, 100]\n")
        name = text.split("name: ", 1)[1].split("\n", 1)[0]
        (folder / "recipes" / f"{name.replace('-', '_')}.yaml").write_text(text)
        names.append(name.replace("-", "_"))
    for example in ("churn.yaml", "support_assistant.yaml"):
        (folder / "recipes" / example).unlink()
    return names


def floor_ms(folder: Path, names: list[str]) -> float:
    """Hydra's public compose API + OmegaConf resolve + pydantic validation."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from framework.recipe.recipe import Recipe

    start = time.perf_counter()
    count = 0
    with initialize_config_dir(config_dir=str(folder / "recipes"), version_base="1.3"):
        for name in names:
            for env in ENVS:
                Recipe.model_validate(OmegaConf.to_container(compose(name, [f"env={env}"]), resolve=True))
                count += 1
    return (time.perf_counter() - start) * 1000 / count


def generate_check_ms(folder: Path) -> tuple[float, int]:
    from framework import api

    api.generate(all_envs=True, project=folder)  # write once; the timed run only checks
    start = time.perf_counter()
    result = api.generate(all_envs=True, check=True, project=folder)
    return (time.perf_counter() - start) * 1000 / len(result.recipes), len(result.recipes)


def main() -> None:
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = make_project(folder, COMBINATIONS // len(ENVS) + (COMBINATIONS % len(ENVS) > 0))
        os.chdir(folder)
        floor_warm = floor_ms(folder, names[:2])  # imports and first-use costs out of the way
        floor = floor_ms(folder, names)
        check, count = generate_check_ms(folder)
    print(f"combinations: {count} (recipes x envs)")
    print(f"{'floor: hydra.compose + validate':40} {floor:8.1f} ms/combination   (warm-up {floor_warm:.0f} ms)")
    print(f"{'mlops generate --all-envs --check':40} {check:8.1f} ms/combination")
    print(f"{'ratio to floor':40} {check / floor:8.2f} x   (goal <= 2.0; goal < 25 ms/combination)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
