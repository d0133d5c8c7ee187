"""The API of `mlops apply`: generate, then run the recipe's pipeline on a target.
`apply` loads the recipe, refuses options that do not fit the target, and then either
applies the generated manifests to a Kubernetes cluster (`--target kubernetes`, any
recipe: the objects, in the order framework.runtime.kubernetes.apply gives them, are
both its dry run and what it applies) or runs the pipeline of the recipe's kind on
`local` or `ray` (framework/api/pipelines/, whose dry run lists the very steps it runs).
Returns an `ApplyResult` or raises an `MlopsError`; nothing here prints.
"""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from framework.api.recipes import as_project, load_recipe
from framework.api.results import ApplyResult
from framework.api.steps import ApplyRun
from framework.errors import MlopsError, Problem
from framework.project import Project
from framework.recipe import cache_store

TARGETS = ("local", "ray", "kubernetes")


def apply(
    recipe: str,
    env: str | None = None,
    target: str = "local",
    dry_run: bool = False,
    address: str | None = None,
    project: Project | Path | None = None,
    console: Any = None,
    waits: Any = None,
    register_only: bool = False,
    image_tag: str | None = None,
    skip_training: bool = False,
    training_only: bool = False,
    head_shares_disk: bool = False,
    no_cache: bool = False,
) -> ApplyResult:
    """Generate, then run the recipe: its training job, registry and rollout (a RAG
    recipe: its index, evaluation and service) here on an embedded Ray (`local`), or on
    the Ray cluster at `address` (`ray`); `kubernetes` server-side applies the generated
    manifests to the cluster of the current kubeconfig and waits for the job and the
    serving workloads (`waits`: a framework.runtime.kubernetes.apply.Waits). `dry_run`:
    the steps (for kubernetes the objects, in order), nothing run or written.

    CI options: `register_only` registers the trained version without moving an alias
    (`gate` promotes it); `image_tag` and `skip_training` (kubernetes) run deploy.image
    at the tag the pipeline built and leave the training job out (the pipeline trained
    already; the committed manifests keep the recipe's tag); `training_only`
    (kubernetes) applies only what the training job needs (a PyTorchJob recipe's train
    job) and reports the version it registered.

    A training job whose steps' fingerprints (the recipe keys each step reads, the data's
    sha256, the training code) match a finished run that registered a version does not
    run again: that run's version is reused (`no_cache`: train anyway)."""
    proj = as_project(project)
    with cache_store.read_only() if dry_run else nullcontext():  # a dry run writes nothing
        validated = load_recipe(recipe, env, (), proj)
    if target not in TARGETS:
        raise MlopsError([Problem(None, "--target", f"unknown target '{target}'; use local, ray or kubernetes")])
    _check_ci_options(target, register_only, image_tag, skip_training, training_only)
    if no_cache and target == "kubernetes":
        raise MlopsError([Problem(None, "--no-cache", "the cluster's training job always trains: use it with "
                                  "--target local or ray")])
    if target == "kubernetes":
        from framework.runtime.kubernetes.apply import Selection

        selection = Selection(skip_training, validated.recipe.deploy.image, image_tag, training_only, register_only)
        return _apply_manifests(recipe, env, validated, proj, dry_run, console, waits, selection)
    from framework.api.pipelines import pipeline_for

    run = ApplyRun(recipe, env, validated.recipe, proj, target=target, address=address, console=console,
                   register_only=register_only, head_shares_disk=head_shares_disk, use_cache=not no_cache)
    return pipeline_for(run).apply(run, dry_run)


def _apply_manifests(recipe: str, env: str | None, validated: Any, proj: Project, dry_run: bool, console: Any,
                     waits: Any, selection: Any) -> ApplyResult:
    """`--target kubernetes`: what generate wrote, applied in dependency order."""
    from framework.api.generate import generate
    from framework.runtime.kubernetes import apply as kube

    r = validated.recipe
    resolved = proj.generated_dir / r.name / r.environment / "recipe.resolved.yaml"
    if dry_run:  # the files generate would write, read as apply reads them; nothing written
        from framework.generate import render_env

        steps = kube.plan_steps(render_env(proj, validated).files, waits, selection)
        return ApplyResult(r.name, r.environment, resolved, _feast_step(r) + steps, dry_run=True)
    generate([recipe], env=env, project=proj)
    if _feast_step(r):  # the jobs and the CronJob read the views from the registry: register them first
        from framework.runtime.features.register import register

        done = register(r, proj.root)
        if console is not None:
            console.print(f"feast apply: {done.views} feature view(s) in project {done.project} ({done.registry})")
    started_ms = int(time.time() * 1000)
    outcome = kube.apply_env_dir(resolved.parent, waits, console, selection)
    registered = None
    if selection.training_only and r.training is not None:
        from framework.runtime.registered import registered_since

        registered = registered_since(r, proj.state_dir, started_ms)
        if registered is None:
            message = (f"the training job finished, but no version of '{r.registered_model}' registered since it "
                       "started carries this recipe's hash: did the job write to another tracking.uri?")
            raise MlopsError([Problem(None, "train", message)])
    return ApplyResult(r.name, r.environment, resolved, [], outcome, job_outcome=registered,
                       trained=selection.training_only, report=f"{r.name} ({r.environment}): {kube.summary(outcome)}")


def _feast_step(r: Any) -> list[str]:
    feast = r.data.source.feast if r.data is not None else None
    if feast is None:
        return []
    materialised = ("the cluster's CronJob materialises the view into the online store"
                    if feast.online_store.type != "sqlite" else "`mlops apply` here materialises the sqlite online store")
    return [f"feast apply: register {feast.repo}/ in the registry {feast.registry} ({materialised})"]


_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # the OCI distribution spec's tag


def _check_ci_options(target: str, register_only: bool, image_tag: str | None, skip_training: bool,
                      training_only: bool) -> None:
    problems = []
    if image_tag is not None and target != "kubernetes":
        problems.append(Problem(None, "--image-tag", "sets the image the cluster's manifests run: use it with --target kubernetes"))
    elif image_tag is not None and not _IMAGE_TAG.match(image_tag):
        problems.append(Problem(None, "--image-tag", f"'{image_tag}' is not an image tag (letters, digits, _ . -; at most 128)"))
    for flag, given in (("--skip-training", skip_training), ("--training-only", training_only)):
        if given and target != "kubernetes":
            problems.append(Problem(None, flag, "chooses among the cluster's manifests: use it with --target kubernetes"))
    if skip_training and training_only:
        problems.append(Problem(None, "--training-only", "and --skip-training leave nothing to apply together: use one"))
    if register_only and target == "kubernetes" and not training_only:
        problems.append(Problem(None, "--register-only", "with --target kubernetes applies to the training job alone: "
                                "add --training-only"))
    if problems:
        raise MlopsError(problems)
