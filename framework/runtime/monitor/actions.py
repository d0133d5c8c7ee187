"""`monitoring.drift.on_drift: retrain`: train again on the recipe's data with the
labelled current rows appended.

* In GitHub Actions (GITHUB_ACTIONS=true with GITHUB_TOKEN and GITHUB_REPOSITORY):
  dispatch the recipe's generated workflow (`workflow_dispatch` of
  `.github/workflows/mlops-<recipe>.yml`), whose train job runs the same apply.
* Elsewhere: the same training entrypoint apply runs (`framework.runtime.training`) on a
  resolved recipe whose `data.source` is the combined table written under
  `<state_dir>/retrain/<recipe>/<env>/<stamp>/`, then the local rollout against the
  champion. `generated/` is left alone: the committed artifacts still describe the
  recipe, and the combined data is this machine's.
Current data without the target column (served traffic) adds nothing to learn from:
the retraining then uses the recipe's data alone, and says so.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from framework.errors import MlopsError, Problem


def retrain(recipe, state_dir: Path, root: Path, current, console=None) -> tuple[str, list[str]]:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return "dispatched", dispatch(recipe)
    return "retrained", retrain_locally(recipe, state_dir, root, current, console)


def dispatch(recipe) -> list[str]:
    """POST /repos/{repo}/actions/workflows/{file}/dispatches (204 when accepted)."""
    from framework.contracts.workflows import workflow_file

    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise MlopsError([Problem(None, "monitoring.drift.on_drift", (
            "retrain in GitHub Actions needs GITHUB_TOKEN (with actions: write) and GITHUB_REPOSITORY in the environment"))])
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    ref = os.environ.get("GITHUB_REF_NAME") or "main"
    url = f"{api}/repos/{repository}/actions/workflows/{workflow_file(recipe)}/dispatches"
    request = urllib.request.Request(
        url, data=json.dumps({"ref": ref}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        message = _github_message(error)
        raise MlopsError([Problem(None, "monitoring.drift.on_drift", _refusal(error.code, message, workflow_file(recipe),
                                                                               repository, ref))]) from None
    except OSError as error:
        raise MlopsError([Problem(None, "monitoring.drift.on_drift", f"cannot reach {api}: {error}")]) from None
    return [f"dispatched workflow {workflow_file(recipe)} on {ref} in {repository} (HTTP {status})"]


def _github_message(error: urllib.error.HTTPError) -> str:
    """GitHub's errors are JSON with a `message`; anything else, its first 300 characters."""
    text = error.read().decode("utf-8", "replace")
    try:
        return " ".join(str(json.loads(text)["message"]).split())
    except (ValueError, KeyError, TypeError):
        return " ".join(text.split())[:300] or error.reason


def _refusal(code: int, message: str, workflow: str, repository: str, ref: str) -> str:
    """What to do about each answer GitHub gives a dispatch."""
    hints = {
        401: "GITHUB_TOKEN is not a valid token",
        403: "GITHUB_TOKEN may not dispatch workflows: give the job `permissions: actions: write`",
        404: f"no workflow {workflow} in {repository} that this token can see: commit the generated workflow "
             "(`mlops generate`) and check GITHUB_REPOSITORY",
        422: f"{workflow} on {ref} cannot be dispatched: it needs an `on: workflow_dispatch` trigger and the ref must exist",
    }
    hint = hints.get(code, f"GitHub refused the dispatch of {workflow}")
    return f"{hint} (HTTP {code}: {message})"


def retrain_locally(recipe, state_dir: Path, root: Path, current, console=None) -> list[str]:
    from framework.runtime.training import data
    from framework.runtime.rollout.local import rollout_local
    from framework.runtime.rollout.controller import summary as rollout_summary
    from framework.contracts.resolved import RECIPE_FILE, resolved_recipe_yaml
    from framework.runtime.training.run import run_training

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(state_dir) / "retrain" / recipe.name / recipe.environment / stamp
    folder.mkdir(parents=True, exist_ok=True)
    base = data.load_table(recipe, Path(root))
    lines = []
    if current is not None and current.rows is not None and len(current.rows):
        rows = current.rows[[c for c in base.columns if c in current.rows.columns]]
        appended = rows.astype({c: base[c].dtype for c in rows.columns}, errors="ignore")
        combined = pd.concat([base, appended], ignore_index=True)
        lines.append(f"training data: {len(base)} rows of {recipe.data.source.uri} + {len(appended)} labelled current rows")
    else:
        combined = base
        lines.append(f"the current data has no '{recipe.data.target}' labels: retraining on {recipe.data.source.uri} alone")
    table = folder / "data.parquet"
    combined.to_parquet(table, index=False)
    source = recipe.data.source.model_copy(update={"uri": str(table.resolve()), "format": "parquet"})
    retrained = recipe.model_copy(update={"data": recipe.data.model_copy(update={"source": source})})
    resolved = folder / RECIPE_FILE
    resolved.write_text(resolved_recipe_yaml(retrained), encoding="utf-8")
    outcome = run_training(resolved, Path(root), Path(state_dir), None, console)
    lines.append(f"trained version {outcome.model_version} (MLflow run {outcome.run_id})")
    rolled = rollout_local(retrained, Path(state_dir), Path(root), console=console)
    lines += rollout_summary(rolled).splitlines()
    if rolled.decision == "rolled_back":
        raise MlopsError([Problem(None, "monitoring.drift.on_drift",
                                  f"the retrained version {rolled.candidate} was rolled back; the champion stays version {rolled.champion}")])
    return lines


__all__ = ["retrain", "dispatch", "retrain_locally"]
