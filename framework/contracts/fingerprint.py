"""Fingerprints of the training job's steps: what each step reads, hashed.

Each step's fingerprint chains the one before it with the resolved recipe keys the step
reads (STEPS), so a step's fingerprint changes when anything upstream changes. The
data step also hashes the bytes it trains on, and every step the code that runs it
(the framework's training and contract sources, its version, and the versions of the
libraries that shape a model). Keys the job never reads (IGNORED: deploy, ci, serving
other than its format, ...) change artifacts, not models, and are left out; a key in
neither list counts as read by `train`, so a new recipe key can never be cached past.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import framework
from framework.contracts.params import flatten

# step -> the key prefixes it reads, in the order the job runs them (first match wins).
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("data", ("data",)),
    ("teacher", ("training.distillation",)),
    ("hpo", ("training.hpo",)),
    ("train", ("model", "training")),
    ("track", ("tracking",)),
    ("evaluate", ("evaluation.metrics", "evaluation.dataset", "serving.format")),
    ("drift reference", ()),
    ("gates", ("evaluation",)),
    ("register", ("name", "environment")),
)
IGNORED = ("description", "owner", "deploy", "ci", "batch", "monitoring", "serving", "rollout", "rag")
CATCH_ALL = "train"
# Libraries whose version changes what a training run produces.
LIBRARIES = ("torch", "numpy", "pandas", "scikit-learn", "lightgbm", "onnx", "onnxruntime", "ray")
CODE_DIRS = ("runtime/training", "contracts")

TAG = "mlops.fingerprint"  # the job's (the last step's) fingerprint: what a lookup searches
STEP_TAG = "mlops.fingerprint."  # + step: one per step, to say which step changed
CODE_TAG = "mlops.code_sha256"


@dataclass(frozen=True)
class Fingerprints:
    steps: dict[str, str]  # step -> fingerprint, in job order
    data: dict[str, str]  # the data identity the data step hashed
    code: str  # sha256 of the training code, its version and library versions
    params: dict[str, str] = field(default_factory=dict)  # the recipe as MLflow params

    @property
    def job(self) -> str:
        return list(self.steps.values())[-1]

    def tags(self) -> dict[str, str]:
        tags = {f"{STEP_TAG}{step.replace(' ', '_')}": value for step, value in self.steps.items()}
        return {**tags, TAG: self.job, CODE_TAG: self.code}


def step_of(key: str) -> str | None:
    """The step that reads a flattened recipe key; None for a key the job never reads."""
    for step, prefixes in STEPS:
        if any(_under(key, prefix) for prefix in prefixes):
            return step
    if any(_under(key, prefix) for prefix in IGNORED):
        return None
    return CATCH_ALL


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def fingerprints(recipe: Any, data: dict[str, str], extra: dict[str, dict[str, str]] | None = None) -> Fingerprints:
    """The steps' fingerprints of `recipe` trained on `data` (data_identity); `extra`:
    per step, inputs read from elsewhere (the teacher version an alias points at)."""
    params = flatten(recipe.model_dump(mode="json"))
    read: dict[str, dict[str, str]] = {step: {} for step, _ in STEPS}
    for key, value in params.items():
        step = step_of(key)
        if step is not None:
            read[step][key] = value
    read["data"]["@data"] = json.dumps(data, sort_keys=True)
    for step, inputs in (extra or {}).items():
        read[step].update({f"@{k}": v for k, v in inputs.items()})
    code = code_identity()
    chained, steps = code, {}
    for step, _ in STEPS:
        chained = _sha256(json.dumps([chained, read[step]], sort_keys=True))
        steps[step] = chained
    return Fingerprints(steps, data, code, params)


@lru_cache(maxsize=1)
def code_identity() -> str:
    """sha256 of the training and contract sources, the framework's version and the
    libraries' versions (a new torch may train differently)."""
    digest = hashlib.sha256(framework.__version__.encode())
    package = Path(framework.__file__).parent
    for folder in CODE_DIRS:
        for path in sorted((package / folder).rglob("*.py")):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    for name in LIBRARIES:
        digest.update(f"{name}=={_version(name)}".encode())
    return digest.hexdigest()


def identity(version: Any) -> dict[str, str]:
    """What identifies the data a job trains on: its bytes (and a Feast join's table)."""
    data = {"sha256": version.sha256}
    if version.table_sha256:
        data["table_sha256"] = version.table_sha256
    return data


def teacher_inputs(recipe: Any, version_of) -> dict[str, dict[str, str]]:
    """A teacher named by alias is the version the alias points at now
    (`version_of(name, alias)`)."""
    distillation = recipe.training.distillation if recipe.training is not None else None
    teacher = distillation.teacher if distillation is not None else None
    if not teacher or not teacher.startswith("models:/") or "@" not in teacher:
        return {}
    name, alias = teacher.removeprefix("models:/").split("@", 1)
    return {"teacher": {"teacher_version": version_of(name, alias) or "-"}}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
