"""The Python API of the framework; the CLI only calls these functions.
One module per command or family: recipes.py (load_recipe, validate, show, plan, the
schemas), generate.py, apply.py (with steps.py and the pipelines of each model kind in
pipelines/), serve.py, monitor.py, rollout.py, pipeline.py (check-data, evaluate, gate,
smoke), lineage.py and batch.py; results.py and results_ci.py hold what they return. Each returns a
`Result` (its text and exit code) or raises an `MlopsError` (see errors.py); nothing here
prints. The import-light core: no torch, ray, mlflow, evidently or onnx at import.

Names load with their module on first use (`api.validate` imports recipes.py only), so a
command pays for the modules it calls and no others.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# Public name -> the module under framework.api that defines it.
_EXPORTS = {
    "recipes": ("load_recipe", "parse_recipe", "validate", "show", "write_schemas", "check_schemas", "recipe_envs",
                "plan"),
    "generate": ("generate",),
    "apply": ("apply",),
    "serve": ("serve",),
    "monitor": ("monitor",),
    "batch": ("batch",),
    "lineage": ("LineageResult", "lineage"),
    "pipeline": ("check_data", "evaluate", "evaluate_recipe", "evaluate_version", "gate", "smoke"),
    "rollout": ("rollout_promote", "rollout_rollback", "rollout_status"),
    "results": ("Result", "Err", "Handover", "RecipeStatus", "ValidateResult", "ShowResult", "Leaf", "SchemaResult",
                "GenerateResult", "PlanResult", "ApplyResult", "ServeResult", "serving_lines", "RolloutStatus",
                "RolloutChange"),
    "results_ci": ("BatchRun", "DataCheck", "EvaluateResult", "GateDecision", "MonitorRun", "RetrievalResult",
                   "SmokeResult"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'framework.api' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"framework.api.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


class _Api(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule binds it on this package; where it shares its name with the
        # function it exports (generate, apply, serve...), the name stays the function's.
        if isinstance(value, types.ModuleType) and _MODULE_OF.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Api

