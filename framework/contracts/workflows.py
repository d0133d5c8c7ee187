"""The GitHub Actions workflow files: connects generate (framework/targets/github.py
writes `.github/workflows/mlops-<recipe>.yml`, and framework/generate.py owns, and
deletes when stale, every `mlops-*.yml` there) and the runtime (the drift monitor's
`on_drift: retrain` dispatches the recipe's workflow by its file name).
"""

from __future__ import annotations

from framework.contracts import feast

WORKFLOW_PREFIX = "mlops-"  # the workflow files generate owns
REGENERATE_FILE = f"{WORKFLOW_PREFIX}regenerate.yml"  # the same for every recipe: checks generated/ is current


def workflow_file(recipe) -> str:
    """The recipe's pipeline workflow (train, gate, deploy; `workflow_dispatch` retrains)."""
    return f"{WORKFLOW_PREFIX}{recipe.name}.yml"


__all__ = ["WORKFLOW_PREFIX", "REGENERATE_FILE", "install_extras", "workflow_file"]


def install_extras(recipe) -> tuple[str, ...]:
    """The project's extras a recipe's jobs import (`pip install -e '.[...]'`): DVC for
    data.version, Feast for data.source.feast, wandb for tracking.backends."""
    data = recipe.data
    extras = []
    if data is not None and data.version is not None:
        extras.append("dvc")
    if feast.enabled(recipe):
        extras.append("feast")
    if "wandb" in recipe.tracking.backends:
        extras.append("wandb")
    return tuple(extras)
