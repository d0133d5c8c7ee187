"""`mlops apply RECIPE --target kubernetes`: the manifests generate wrote for one env,
server-side applied to the cluster of the current kubeconfig, in dependency order,
with waits between the phases.

1. config: Namespace, ServiceAccount, RBAC, ConfigMap, Secret, NetworkPolicy, PVCs;
2. jobs: the training RayJob or PyTorchJob, and the RAG index RayJob (which fills the
   vector store's volume before the RAG RayService opens it), each waited for until it
   finishes (by default its own activeDeadlineSeconds, e.g. `training.timeout`, plus a
   grace period). A job that
   finished in an earlier apply is deleted first: a job runs once, and applying the
   same object again would run nothing;
3. serving: Service, Deployment, AnalysisTemplate, DestinationRule, VirtualService,
   Rollout, RayService, HPA, PDB, ServiceMonitor, PrometheusRule, CronJob (then kinds
   not in the table), then wait until Deployments, Rollouts and RayServices are ready.

The first failure stops everything: nothing after it is applied, and the error names
the step. Order: `k8s_objects`; REST paths: `k8s_rest`; requests: `k8s_client`;
readiness: `k8s_ready`; messages: `k8s_errors`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.project import display_path
from framework.runtime.kubernetes import errors as errors
from framework.runtime.kubernetes.client import FIELD_MANAGER, Kube, KubeApiError, KubeUnreachable, load_configuration
from framework.runtime.kubernetes.objects import (
    CONFIG, PHASES, SERVING, TRAINING, KubeObject, is_training_job, ordered, parse, read_env_dir, retagged,
    with_register_only,
)
from framework.runtime.kubernetes.ready import JOB_KINDS, WAITED_KINDS, Waited, state_of, wait_all
from framework.runtime.kubernetes.rest import Resource, object_path

JOB_GRACE_S = 300.0  # past the job's own deadline: time for the operator to mark it failed
DEFAULT_JOB_S = 7200.0  # a job without activeDeadlineSeconds


@dataclass(frozen=True)
class Waits:
    """How long to wait, per phase, and how often to look."""

    job_s: float | None = None  # None: the job's activeDeadlineSeconds + JOB_GRACE_S
    serving_s: float = 600.0
    poll_s: float = 2.0
    delete_s: float = 300.0  # for a finished job of an earlier apply to go


@dataclass
class KubeOutcome:
    server: str
    applied: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # "RayJob/x in ns: <final status>"
    ready: list[str] = field(default_factory=list)


def job_timeout(job: KubeObject, waits: Waits) -> float:
    if waits.job_s is not None:
        return waits.job_s
    spec = job.body.get("spec") or {}
    deadline = spec.get("activeDeadlineSeconds") or (spec.get("runPolicy") or {}).get("activeDeadlineSeconds")
    return float(deadline) + JOB_GRACE_S if deadline else DEFAULT_JOB_S


@dataclass(frozen=True)
class Selection:
    """What a CI pipeline's job applies: the deploy jobs leave the training job out (the
    model is already registered by the train job) and run the build job's image tag; the
    train job of a PyTorchJob recipe applies only what training needs and registers
    without aliases (`mlops gate --promote` moves them)."""

    skip_training: bool = False
    image: str | None = None  # the recipe's deploy.image ...
    image_tag: str | None = None  # ... run at this tag instead
    training_only: bool = False
    register_only: bool = False

    def apply(self, objects: list[KubeObject]) -> list[KubeObject]:
        if self.skip_training:
            objects = [obj for obj in objects if not is_training_job(obj)]
        if self.training_only:
            objects = [obj for obj in objects if obj.phase == CONFIG or is_training_job(obj)]
        if self.register_only:
            objects = [with_register_only(obj) if is_training_job(obj) else obj for obj in objects]
        if self.image and self.image_tag:
            objects = retagged(objects, self.image, self.image_tag)
        return objects


def plan_steps(files: Mapping[str, str], waits: Waits | None = None, selection: Selection | None = None) -> list[str]:
    """What apply would do, in order: one line per object, and the waits."""
    waits = waits or Waits()
    objects = (selection or Selection()).apply(ordered(parse(files)))
    steps = []
    for phase in PHASES:
        batch = [obj for obj in objects if obj.phase == phase]
        for obj in batch:
            steps.append(f"apply {obj.ref}" + ("" if obj.known else " (kind not in the order table: last, not waited for)"))
            if obj.kind in JOB_KINDS:
                steps.append(f"wait until {obj.ref} succeeds (up to {seconds(job_timeout(obj, waits))})")
        waited = [obj.ref for obj in batch if obj.kind in WAITED_KINDS]
        if phase == SERVING and waited:
            steps.append(f"wait until ready (up to {seconds(waits.serving_s)}): {', '.join(waited)}")
    return steps


def apply_env_dir(env_dir: Path, waits: Waits | None = None, console: Any = None,
                  selection: Selection | None = None) -> KubeOutcome:
    """Apply the manifests of generated/<recipe>/<env>/ and wait; raises MlopsError."""
    waits = waits or Waits()
    say = _sayer(console)
    objects = (selection or Selection()).apply(ordered(parse(read_env_dir(env_dir), where=env_dir)))
    if not objects:
        raise errors.failure("apply", f"no Kubernetes manifests under {display_path(env_dir)}")
    for obj in objects:
        if not obj.known:
            say(f"warning: kind {obj.kind} ({obj.ref}) is not in the order table: applied last, not waited for")
    kube = Kube(load_configuration())
    try:
        return _Run(kube, waits, say).run(objects)
    finally:
        kube.close()


class _Run:
    def __init__(self, kube: Kube, waits: Waits, say):
        self.kube, self.waits, self.say = kube, waits, say
        self.outcome = KubeOutcome(kube.host)
        self.paths: dict[KubeObject, str] = {}
        self.resources: dict[KubeObject, Resource] = {}

    def run(self, objects: list[KubeObject]) -> KubeOutcome:
        self.say(f"applying {len(objects)} objects to {self.kube.host} (server-side apply, field manager {FIELD_MANAGER})")
        for phase in PHASES:
            batch = [obj for obj in objects if obj.phase == phase]
            for obj in batch:
                if phase == TRAINING:
                    self._clear_finished(obj)
                self._apply(obj)
                if phase == TRAINING:
                    self._wait_job(obj)
            if phase == SERVING:
                self._wait_serving([obj for obj in batch if obj.kind in WAITED_KINDS])
        return self.outcome

    def _path(self, obj: KubeObject, step: str, verb: str) -> str:
        if obj not in self.paths:
            resource = self._call(step, obj, verb, lambda: self.kube.resource(obj))
            if resource is None:
                raise errors.not_served(step, obj)
            self.paths[obj] = object_path(resource, obj)
            self.resources[obj] = resource
        return self.paths[obj]

    def _call(self, step: str, obj: KubeObject, verb: str, request):
        """The request's answer; a failed request becomes the step's MlopsError."""
        try:
            return request()
        except (KubeApiError, KubeUnreachable) as exc:
            resource = self.resources.get(obj)
            raise errors.request_failed(step, exc, obj, resource, verb, self._served(exc, resource)) from None

    def _served(self, exc: Exception, resource: Resource | None) -> list[str] | None:
        """After a 404 of the resource itself (no object or namespace named in it): the
        versions the cluster serves it at, as a CRD not installed and a version not served
        both answer that 404."""
        if not isinstance(exc, KubeApiError) or exc.status != 404 or exc.details or resource is None:
            return None
        try:
            return self.kube.served_versions(resource.group, resource.plural)
        except (KubeApiError, KubeUnreachable):
            return None

    def _apply(self, obj: KubeObject) -> None:
        step = f"apply {obj.ref}"
        path = self._path(obj, step, "patch")
        self._call(step, obj, "patch", lambda: self.kube.apply(path, obj.body))
        self.outcome.applied.append(obj.ref)
        self.say(f"applied {obj.ref}")

    def _get(self, step: str, verb: str = "get"):
        def get(obj: KubeObject) -> dict[str, Any] | None:
            path = self._path(obj, step, verb)
            return self._call(step, obj, verb, lambda: self.kube.get(path))
        return get

    def _clear_finished(self, job: KubeObject) -> None:
        """A finished job of an earlier apply is deleted, so that this apply runs it."""
        step = f"apply {job.ref}"
        live = self._get(step)(job)
        state = state_of(job, live) if live is not None else None
        if state is None or not (state.done or state.failed):
            return  # new, or still running (then this apply waits for that run)
        self.say(f"deleting {job.ref}, finished in an earlier apply ({state.summary}), to run it again")
        path = self._path(job, step, "delete")
        self._call(f"delete {job.ref}", job, "delete", lambda: self.kube.delete(path))
        get = self._get(f"delete {job.ref}")
        waited = _until_gone(get, job, self.waits)
        if not waited:
            raise errors.failure(f"delete {job.ref}", (
                f"still there {seconds(self.waits.delete_s)} after deleting it (finalizers?); "
                f"see `kubectl describe {job.kind.lower()} {job.name} -n {job.namespace or 'default'}`"))

    def _wait_job(self, job: KubeObject) -> None:
        timeout = job_timeout(job, self.waits)
        waited = wait_all(self._get(f"wait for {job.ref}"), [job], timeout, self.waits.poll_s, self.say)
        state = waited.states[job]
        how = _how_to_look(job)
        if waited.failed:
            raise errors.failure(f"wait for {job.ref}", f"the job failed ({state.summary}); nothing after it was applied; {how}")
        if waited.timed_out:
            raise errors.failure(f"wait for {job.ref}", (
                f"not finished after {seconds(timeout)} (last status: {state.summary}); nothing after it was applied; "
                f"it may still be running in the cluster; {how}"))
        self.outcome.jobs.append(f"{job.ref}: {state.summary}")

    def _wait_serving(self, objects: list[KubeObject]) -> None:
        if not objects:
            return
        waited: Waited = wait_all(self._get("wait for serving"), objects, self.waits.serving_s, self.waits.poll_s, self.say)
        if waited.failed:
            obj = waited.failed
            raise errors.failure("wait for serving", f"{obj.ref} failed: {waited.states[obj].summary}")
        if waited.timed_out:
            raise errors.failures("wait for serving", [
                f"{obj.ref} not ready after {seconds(self.waits.serving_s)} (last status: {waited.states[obj].summary})"
                for obj in waited.pending
            ])
        self.outcome.ready = [obj.ref for obj in objects]


def _until_gone(get, job: KubeObject, waits: Waits) -> bool:
    deadline = time.monotonic() + waits.delete_s
    while get(job) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(waits.poll_s)
    return True


def seconds(value: float) -> str:
    return f"{int(value)}s" if value == int(value) else f"{value:.1f}s"


def _how_to_look(job: KubeObject) -> str:
    ns = job.namespace or "default"
    if job.kind == "RayJob":  # KubeRay's submitter is a Job named after the RayJob
        return f"see its logs with `kubectl logs -n {ns} job/{job.name}` or `kubectl describe rayjob {job.name} -n {ns}`"
    return f"see its logs with `kubectl logs -n {ns} {job.name}-master-0` or `kubectl describe pytorchjob {job.name} -n {ns}`"


def _sayer(console: Any):
    if console is None:
        return lambda line: None
    return lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)


def summary(outcome: KubeOutcome) -> str:
    lines = [f"applied {len(outcome.applied)} objects to {outcome.server}"]
    lines += [f"  {job}" for job in outcome.jobs]
    if outcome.ready:
        lines.append(f"  ready: {', '.join(outcome.ready)}")
    return "\n".join(lines)
