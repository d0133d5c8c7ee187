"""`generate --check` over 200 recipe x env combinations, against the bare floor:
Hydra's compose API + pydantic validation of the same combinations, in the same run.

The combinations are copies of the example recipes with varied values (epochs,
batch sizes, canary steps, replicas) in a temporary project, in the three envs.
`generate --check` is timed cold (MLOPS_NO_CACHE=1: composed, validated and rendered)
and warm (the parse and render caches of the generate before it).
Run: `python bench/generate.py` (or `make bench`). Goals: cold <= 2x the floor and
< 25 ms; warm <= 10 ms per combination.
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
    for example in (folder / "recipes").glob("*.yaml"):  # only the copies below (churn_features would need feature_repo/)
        example.unlink()
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


def generate_check_ms(folder: Path, cold: bool) -> tuple[float, int]:
    from framework import api

    if cold:
        os.environ["MLOPS_NO_CACHE"] = "1"
    try:
        start = time.perf_counter()
        result = api.generate(all_envs=True, check=True, project=folder)
    finally:
        os.environ.pop("MLOPS_NO_CACHE", None)
    return (time.perf_counter() - start) * 1000 / len(result.recipes), len(result.recipes)


def main() -> None:
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = make_project(folder, COMBINATIONS // len(ENVS) + (COMBINATIONS % len(ENVS) > 0))
        os.chdir(folder)
        floor_warm = floor_ms(folder, names[:2])  # imports and first-use costs out of the way
        floor = floor_ms(folder, names)
        from framework import api

        api.generate(all_envs=True, project=folder)  # write once (and fill the caches); the timed runs only check
        cold, count = generate_check_ms(folder, cold=True)
        warm, _ = generate_check_ms(folder, cold=False)
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"combinations: {count} (recipes x envs)")
    print(f"{'floor: hydra.compose + validate':40} {floor:8.1f} ms/combination   (warm-up {floor_warm:.0f} ms)")
    print(f"{'generate --all-envs --check, cold':40} {cold:8.1f} ms/combination   "
          f"{cold / floor:5.2f} x floor (goal <= 2.0 x, < 25 ms)")
    print(f"{'generate --all-envs --check, warm':40} {warm:8.2f} ms/combination   "
          f"{warm / floor:5.3f} x floor, {warm / cold:5.3f} x cold (goal <= 10 ms)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
