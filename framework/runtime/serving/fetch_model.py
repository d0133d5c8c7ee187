"""Fill a model repository from the MLflow registry: the init container of the
generated Triton server pod (`python -m framework.runtime.serving.fetch_model RESOLVED DEST`).

Writes Triton's layout, `DEST/<model>/config.pbtxt` (the one `mlops generate` renders
for the recipe) and `DEST/<model>/<version>/<model file>`, for the version an alias of
the recipe's registered model points at. Which alias (`--alias`, or MLOPS_MODEL_ALIAS):
by default the `candidate` unless a rollout rejected it, else the `champion`. A pod
started for a new recipe revision (the canary ReplicaSet of the generated Argo Rollout)
serves the version that revision registered; after a rollback, new pods serve the
champion again. A comma-separated list (`champion,candidate`) takes the first alias set.

Files land under hidden names and are renamed into place, so Triton never loads half a
model; a version already present is not downloaded again. Errors are one line and exit 1:
a tracking server that can't be reached (after MLflow's retries, MLFLOW_HTTP_REQUEST_MAX_RETRIES)
or that refuses the credentials (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD, from deploy.secrets) included.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION, ALIAS_REJECTED, ROLLOUT_ALIASES
from framework.errors import MlopsError, Problem

AUTO = "auto"


def choose_version(aliases: dict[str, str | None], wanted: str = AUTO) -> tuple[str, str] | None:
    """(alias, version) to serve, from {alias: version or None}; None when none is set."""
    if wanted == AUTO:
        candidate = aliases.get(ALIAS_CANDIDATE)
        if candidate is not None and candidate != aliases.get(ALIAS_REJECTED):
            return ALIAS_CANDIDATE, candidate
        order = [ALIAS_CHAMPION]
    else:
        order = [a.strip() for a in wanted.split(",") if a.strip()]
    for alias in order:
        if aliases.get(alias) is not None:
            return alias, aliases[alias]
    return None


def fetch(recipe, dest: Path, *, state_dir: Path, alias: str = AUTO) -> tuple[str, str, Path]:
    """Fill `dest`; returns (alias, version, model folder)."""
    from framework.contracts.triton import model_file, model_name
    from framework.runtime import tracking
    from framework.runtime.tracking import aliases
    from framework.runtime.serving.model_config import write_config
    from framework.runtime.serving.registry_source import fetch_version, server_errors

    uri = tracking.tracking_uri(recipe, state_dir)
    with server_errors(uri, "registry"):
        found = aliases(recipe.registered_model, uri=uri)
        if alias != AUTO:
            extra = [a for a in alias.split(",") if a.strip() and a.strip() not in ROLLOUT_ALIASES]
            for name in extra:
                found[name.strip()] = tracking.alias_version(recipe.registered_model, name.strip(), uri=uri)
        chosen = choose_version(found, alias)
        if chosen is None:
            wanted = "candidate or champion" if alias == AUTO else alias
            message = f"no version of '{recipe.registered_model}' has alias {wanted} in {uri}: train and register one first (mlops apply {recipe.name})"
            raise MlopsError([Problem(None, "registry", message)])
        chosen_alias, version = chosen
        model_dir = Path(dest) / model_name(recipe)
        fetch_version(tracking.client(uri), uri, recipe.registered_model, version, model_file(recipe), model_dir / version)
    if recipe.serving.backend == "triton":  # the config.pbtxt generate renders
        write_config(model_dir, recipe)
    return chosen_alias, version, model_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework.runtime.serving.fetch_model", description=__doc__.splitlines()[0])
    parser.add_argument("resolved", type=Path, help="recipe.resolved.yaml written by `mlops generate`")
    parser.add_argument("dest", type=Path, help="the model repository to fill (Triton's --model-repository)")
    parser.add_argument("--alias", default=os.environ.get("MLOPS_MODEL_ALIAS", AUTO),
                        help="registry alias(es) to serve, first set wins; default: candidate unless rejected, else champion")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("MLOPS_STATE_DIR", ".mlops")),
                        help="where the embedded MLflow store lives when the recipe names no tracking.uri")
    args = parser.parse_args(argv)
    from framework.runtime.resolved import load_resolved, run_entrypoint

    def body() -> int:
        recipe = load_resolved(args.resolved)[0]
        alias, version, model_dir = fetch(recipe, args.dest, state_dir=args.state_dir, alias=args.alias)
        print(f"fetch_model: {recipe.registered_model} version {version} ({alias}) -> {model_dir}")
        return 0

    return run_entrypoint(body, prefix="fetch_model: ")


if __name__ == "__main__":
    sys.exit(main())
