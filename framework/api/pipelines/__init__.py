"""The apply pipelines, one module per kind of recipe, found through a small registry.
`register(kind, module)` names the module of a kind; `pipeline_for(run)` imports it only
when a recipe of that kind is applied (so `mlops --help` and `validate` import no
pipeline) and takes its `PIPELINES[target]`, a framework.api.steps.Pipeline. A recipe's
kind is its model.kind, except that an LLM recipe with a `rag` section is "rag".
`--target kubernetes` is no pipeline of a kind: it applies the generated manifests of
any recipe (framework/api/apply.py).
"""

from __future__ import annotations

import importlib
from typing import Any

from framework.api.steps import ApplyRun, Pipeline
from framework.errors import MlopsError, Problem

# kind -> (module defining PIPELINES, what `apply` calls such recipes)
_KINDS: dict[str, tuple[str, str]] = {}


def register(kind: str, module: str, described: str) -> None:
    """Make `apply` run recipes of `kind` with the PIPELINES of `module` (imported on use)."""
    _KINDS[kind] = (module, described)


register("tabular", "framework.api.pipelines.tabular", "tabular recipes")
register("rag", "framework.api.pipelines.rag", "LLM recipes with a rag section")


def kind_of(recipe: Any) -> str:
    return "rag" if getattr(recipe, "rag", None) is not None else recipe.model.kind


def pipeline_for(run: ApplyRun) -> Pipeline:
    """The Pipeline applying `run.recipe` on `run.target`; MlopsError when there is none."""
    kind, r = kind_of(run.recipe), run.recipe
    if kind not in _KINDS:
        runs = " and ".join(described for _, described in _KINDS.values())
        raise MlopsError([Problem(None, "model.kind", f"apply runs {runs}; {r.name} is {r.model.kind}")])
    module, described = _KINDS[kind]
    pipelines = importlib.import_module(module).PIPELINES
    if run.target not in pipelines:
        targets = ", ".join(sorted([*pipelines, "kubernetes"]))
        raise MlopsError([Problem(None, "--target", f"{described} apply to {targets}, not to {run.target}")])
    return pipelines[run.target]
