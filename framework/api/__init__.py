"""The Python API of the framework; the CLI only calls these functions.
One module per command or family: recipes.py (load_recipe, validate, show, plan, the
schemas), generate.py, apply.py (with steps.py and the pipelines of each model kind in
pipelines/), serve.py, monitor.py, rollout.py, pipeline.py (check-data, evaluate, gate,
smoke), lineage.py and batch.py; results.py and results_ci.py hold what they return. Each returns a
`Result` (its text and exit code) or raises an `MlopsError` (see errors.py); nothing here
prints. The import-light core: no torch, ray, mlflow, evidently or onnx at import.
"""

from __future__ import annotations

from framework.api.apply import apply
from framework.api.batch import batch
from framework.api.generate import generate
from framework.api.lineage import LineageResult, lineage
from framework.api.monitor import monitor
from framework.api.pipeline import check_data, evaluate, evaluate_recipe, evaluate_version, gate, smoke
from framework.api.recipes import check_schemas, load_recipe, plan, recipe_envs, show, validate, write_schemas
from framework.api.results import (
    ApplyResult, Err, GenerateResult, Handover, Leaf, PlanResult, RecipeStatus, Result, RolloutChange, RolloutStatus,
    SchemaResult, ServeResult, ShowResult, ValidateResult, serving_lines,
)
from framework.api.results_ci import (
    BatchRun, DataCheck, EvaluateResult, GateDecision, MonitorRun, RetrievalResult, SmokeResult,
)
from framework.api.rollout import rollout_promote, rollout_rollback, rollout_status
from framework.api.serve import serve

__all__ = [
    "Result", "Err", "Handover",
    "RecipeStatus", "ValidateResult", "ShowResult", "Leaf", "SchemaResult",
    "load_recipe", "validate", "show", "write_schemas", "check_schemas", "recipe_envs",
    "GenerateResult", "generate", "PlanResult", "plan", "ApplyResult", "apply", "ServeResult", "serve", "serving_lines",
    "monitor", "MonitorRun",
    "RolloutStatus", "RolloutChange", "rollout_status", "rollout_promote", "rollout_rollback",
    "LineageResult", "lineage",
    "DataCheck", "check_data", "EvaluateResult", "evaluate_version", "RetrievalResult", "evaluate", "evaluate_recipe",
    "GateDecision", "gate", "SmokeResult", "smoke", "BatchRun", "batch",
]
