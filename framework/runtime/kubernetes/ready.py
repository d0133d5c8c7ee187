"""When an applied object is done: the training job finished, the serving workloads
ready. Pure readers of an object's live status, and the polling loops over them.

- RayJob: `status.jobDeploymentStatus` Complete with `status.jobStatus` SUCCEEDED;
  Complete with another job status, or Failed (deadline, retries used up), is a failure.
  Anything else (Initializing, Running, Retrying...) is still running.
- PyTorchJob: condition Succeeded or Failed (status True).
- Deployment: the controller observed the generation, every replica updated and
  available (as `kubectl rollout status`); ProgressDeadlineExceeded is a failure.
- Argo Rollout: `status.phase` Healthy (Degraded is a failure).
- RayService: `status.serviceStatus` Running, or condition Ready True.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from framework.runtime.kubernetes.objects import KubeObject

JOB_KINDS = ("RayJob", "PyTorchJob")
WAITED_KINDS = ("Deployment", "Rollout", "RayService")

Get = Callable[[KubeObject], "dict[str, Any] | None"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class State:
    done: bool
    failed: bool
    summary: str


def _running(summary: str) -> State:
    return State(False, False, summary)


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def rayjob_state(live: dict[str, Any]) -> State:
    status = live.get("status") or {}
    deployment, job = status.get("jobDeploymentStatus") or "", status.get("jobStatus") or ""
    if not deployment and not job:
        return _running("no status yet (is the KubeRay operator running?)")
    summary = f"jobDeploymentStatus {deployment or '-'}, jobStatus {job or '-'}"
    summary += f", reason {status['reason']}" if status.get("reason") else ""
    summary += f": {status['message']}" if status.get("message") else ""
    if deployment == "Complete" and job == "SUCCEEDED":
        return State(True, False, summary)
    if deployment in ("Complete", "Failed"):
        return State(False, True, summary)
    return _running(summary)


def pytorchjob_state(live: dict[str, Any]) -> State:
    conditions = [c for c in (live.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    if not conditions:
        return _running("no status yet (is the Kubeflow Training Operator running?)")
    last = conditions[-1]
    summary = f"{last.get('type')}" + (f": {last['message']}" if last.get("message") else "")
    types = {c.get("type") for c in conditions}
    return State("Succeeded" in types, "Failed" in types and "Succeeded" not in types, summary)


def deployment_state(live: dict[str, Any]) -> State:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    generation = (live.get("metadata") or {}).get("generation")
    if generation is not None and (status.get("observedGeneration") or 0) < generation:
        return _running(f"generation {generation} not observed by the deployment controller yet")
    progressing = _conditions(status).get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return State(False, True, f"progress deadline exceeded: {progressing.get('message', '')}".rstrip(": "))
    wanted = spec.get("replicas", 1)
    updated, total, available = (status.get(k) or 0 for k in ("updatedReplicas", "replicas", "availableReplicas"))
    if updated < wanted:
        return _running(f"{updated} of {wanted} replicas updated")
    if total > updated:
        return _running(f"{total - updated} old replicas pending termination")
    if available < updated:
        return _running(f"{available} of {updated} updated replicas available")
    return State(True, False, f"{available} of {wanted} replicas available")


def rollout_state(live: dict[str, Any]) -> State:
    status = live.get("status") or {}
    generation = (live.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and str(observed) != str(generation):
        return _running(f"generation {generation} not observed by the Argo Rollouts controller yet")
    phase = status.get("phase") or ""
    summary = f"phase {phase or '-'}" + (f": {status['message']}" if status.get("message") else "")
    if not phase:
        return _running("no status yet (is the Argo Rollouts controller running?)")
    return State(phase == "Healthy", phase == "Degraded", summary)


def rayservice_state(live: dict[str, Any]) -> State:
    status = live.get("status") or {}
    ready = _conditions(status).get("Ready") or {}
    service = status.get("serviceStatus") or ""
    if service == "Running" or ready.get("status") == "True":
        return State(True, False, "serviceStatus Running" if service == "Running" else "Ready")
    detail = ready.get("message") or ready.get("reason") or ""
    summary = f"serviceStatus {service or '-'}" + (f", not Ready: {detail}" if detail else "")
    return _running(summary if (service or detail) else "no status yet (is the KubeRay operator running?)")


STATES: dict[str, Callable[[dict[str, Any]], State]] = {
    "RayJob": rayjob_state,
    "PyTorchJob": pytorchjob_state,
    "Deployment": deployment_state,
    "Rollout": rollout_state,
    "RayService": rayservice_state,
}


def state_of(obj: KubeObject, live: dict[str, Any] | None) -> State:
    if live is None:
        return State(False, True, "it does not exist any more (deleted while waiting?)")
    return STATES[obj.kind](live)


@dataclass(frozen=True)
class Waited:
    states: dict[KubeObject, State]  # the last state seen of each object
    failed: KubeObject | None = None  # the first to fail: waiting stopped there
    timed_out: bool = False

    @property
    def pending(self) -> list[KubeObject]:
        return [obj for obj, state in self.states.items() if not state.done]


def wait_all(get: Get, objects: list[KubeObject], timeout_s: float, poll_s: float, say: Say) -> Waited:
    """Poll until every object is done, one fails, or the time runs out; says each
    object's status when it changes."""
    deadline = time.monotonic() + timeout_s
    states: dict[KubeObject, State] = {}
    while True:
        for obj in objects:
            if obj in states and states[obj].done:
                continue
            state = state_of(obj, get(obj))
            if obj not in states or states[obj].summary != state.summary:
                say(f"{obj.ref}: {state.summary}")
            states[obj] = state
            if state.failed:
                return Waited(states, failed=obj)
        if all(state.done for state in states.values()):
            return Waited(states)
        if time.monotonic() >= deadline:
            return Waited(states, timed_out=True)
        time.sleep(poll_s)
