"""The rollout on an existing Ray cluster (`apply --target ray`, after training): the
recipe's Ray Serve application deployed there, then the same Controller as the local
rollout walks the strategy against it.

What differs from the local rollout is where the router lives. On the cluster every
Serve replica routes with its own router, built from the deployment's user_config
(rollout/live.routing_router); the controller's weight changes, blue/green switch and
decision go to all of them as a new user_config (ServeCluster.deploy waits until it
runs). The evidence comes from the answers: each carries the version that answered
(the mlops-model-version header), so the controller's copy of the recipe's router
counts requests, errors and latency per version, as the replicas' routers would, and
sums them across replicas. A shadow's comparison is made by the client: for
`mirror_percent` of the champion's answers it sends the same request to the candidate
(`/versions/<v>/infer`) and compares the two answers as the app compares a shadow's.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import MlopsError, Problem
from framework.runtime.rollout import state as st
from framework.runtime.rollout.controller import Controller, RolloutResult
from framework.runtime.rollout.local import _record_only, validation_rows
from framework.runtime.serving.live import LivePlan, routing


class ClusterDeployer:
    """Deploys the recipe's application with given versions and routing."""

    def __init__(self, cluster, env_dir: Path, root: Path, package: str, state_dir: Path | None, say=None):
        self.cluster, self.env_dir, self.root, self.package, self.state_dir = cluster, env_dir, root, package, state_dir
        self.say = say or (lambda line: None)
        self.versions: list[str] = []

    def deploy(self, versions: list[str], spec: dict[str, Any]) -> None:
        from framework.runtime.serving.ray_cluster import cluster_config

        began = time.monotonic()
        self.versions = [str(v) for v in versions]
        config = cluster_config(self.env_dir, self.root, self.package, self.versions, spec, self.state_dir)
        self.cluster.deploy(config)
        self.say(f"serve: {_describe(spec)} on {self.cluster.address} ({time.monotonic() - began:.1f} s)")


def _describe(spec: dict[str, Any]) -> str:
    if spec.get("final") is not None:
        return f"every request to version {spec['final']}"
    if spec.get("candidate") is None:
        return f"version {spec.get('champion')} answers"
    plan = LivePlan("", spec.get("champion"), spec.get("candidate"), spec.get("strategy", ""), float(spec.get("weight") or 0))
    return plan.describe() + (" (switched)" if spec.get("switched") else "")


class ClusterRouter:
    """The Controller's router for a rollout on the cluster's replicas: decisions are
    deployed, evidence is observed (`observe_answer`, the traffic's observer) into a
    copy of the recipe's router."""

    def __init__(self, mirror, deployer: ClusterDeployer, plan: LivePlan, url: str, model: str, seed: int = 0):
        self.mirror, self.deployer, self.plan, self.url, self.model = mirror, deployer, plan, url, model
        self.strategy = mirror.strategy
        self.switched = False
        self._lock = threading.Lock()
        self._rng = np.random.default_rng([seed, 7])
        self._local = threading.local()
        if hasattr(mirror, "set_weight"):
            self.set_weight = self._set_weight  # the Controller asks hasattr(router, "set_weight")

    # --- decisions: to every replica -----------------------------------------------------
    def _push(self, final: str | None = None) -> None:
        self.deployer.deploy(self.deployer.versions, routing(self.plan, switched=self.switched, final=final))

    def _set_weight(self, percent: float) -> None:
        with self._lock:
            self.mirror.set_weight(percent)
        self.plan = replace(self.plan, weight=float(percent))
        self._push()

    def switch(self) -> None:
        with self._lock:
            self.mirror.switch()
        self.switched = True
        self._push()

    def finish(self, version: str) -> None:
        with self._lock:
            self.mirror.finish(version)
        self._push(final=str(version))

    # --- evidence: from the answers ---------------------------------------------------
    def observe_answer(self, version: str | None, status: int, latency_s: float, body: bytes, answer: dict,
                       reward: float | None) -> None:
        if version is None:  # no answer at all: which replica routed it where is unknown
            return
        with self._lock:
            self.mirror.observe(self.model, version, status < 500, latency_s)
            if reward is not None and hasattr(self.mirror, "feedback") and self.mirror.takes_feedback(self.model):
                self.mirror.feedback(version, reward)
            mirrored = (self.strategy == "shadow" and status == 200 and version == self.plan.champion
                        and self._rng.random() < self.mirror.mirror)
        if mirrored:
            self._shadow(body, answer)

    def _shadow(self, body: bytes, expected: dict) -> None:
        from framework.runtime.serving.stats import agree

        candidate = self.plan.candidate
        connection = getattr(self._local, "connection", None)
        if connection is None:
            host, _, port = self.url.rpartition(":")
            connection = self._local.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        began = time.perf_counter()
        try:
            connection.request("POST", f"/v2/models/{self.model}/versions/{candidate}/infer", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload, status = response.read(), response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            payload, status = b"", 0
        seconds = time.perf_counter() - began
        with self._lock:
            if status != 200:
                self.mirror.observe(self.model, candidate, False, seconds)
                return
            from framework.runtime.rollout.traffic import _answer

            self.mirror.compare(self.model, self.plan.champion, candidate,
                                agree(_tensors(expected), _tensors(_answer(payload))), 0.0)

    # --- what the Controller reads -------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.mirror.reset()

    def stats(self, version: str):
        with self._lock:
            return self.mirror.stats(version)

    def weights(self, model: str) -> dict[str, float]:
        with self._lock:
            return self.mirror.weights(model)

    def prob_best(self, *args, **kwargs) -> dict[str, float]:
        with self._lock:
            return self.mirror.prob_best(*args, **kwargs)

    def rewards(self):
        with self._lock:
            return self.mirror.rewards()

    def pending(self) -> int:
        return 0  # every observation arrives with its answer


def _tensors(answer: dict) -> dict[str, np.ndarray]:
    """A KServe v2 JSON answer's outputs as arrays, as `agree` compares them."""
    found = {}
    for output in answer.get("outputs") or []:
        data = np.asarray(output.get("data", []))
        shape = output.get("shape") or [len(data)]
        found[output.get("name", "")] = data.reshape(shape) if data.size == int(np.prod(shape)) else data
    return found


def rollout_on_cluster(
    recipe,
    root: Path,
    env_dir: Path,
    state_dir: Path,
    address: str,
    *,
    head_shares_disk: bool = False,
    console=None,
    features=None,
    labels=None,
    concurrency: int = 4,
    seed: int = 0,
    **controller_options,
) -> RolloutResult:
    """Deploy the recipe's Ray Serve application to the cluster at `address` and roll
    the registry's candidate out against its champion there (see the module doc)."""
    from framework.runtime import tracking
    from framework.runtime.serving.routers import make_router
    from framework.runtime.rollout.traffic import SyntheticTraffic
    from framework.runtime.serving.ray_cluster import ServeCluster
    from framework.runtime.submit import UPLOAD_EXCLUDES, snapshot
    from framework.contracts.triton import model_name

    say = (lambda line: console.print(line, markup=False, highlight=False)) if console is not None else None
    state_dir = Path(state_dir).resolve()
    uri = tracking.tracking_uri(recipe, state_dir)
    name, model = recipe.registered_model, model_name(recipe)
    found = st.aliases(name, uri=uri)
    champion, candidate = found[st.ALIAS_CHAMPION], found[st.ALIAS_CANDIDATE]
    if candidate is None:
        raise MlopsError([Problem(None, "rollout", f"no version of '{name}' has alias candidate in {uri}: "
                                                   f"run `mlops apply {recipe.name} --target ray` first")])
    cluster = ServeCluster(address)
    with snapshot(root) as folder:
        package = cluster.upload(folder, UPLOAD_EXCLUDES)
    deployer = ClusterDeployer(cluster, env_dir, root, package, state_dir if head_shares_disk else None, say)
    path = st.state_path(state_dir, recipe.name, recipe.environment)
    port = recipe.serving.port
    if champion is None or champion == candidate:
        deployer.deploy([candidate], routing(LivePlan(model, candidate, None, recipe.rollout.strategy, 0.0)))
        if champion is None:
            st.promote_version(name, candidate, uri=uri)
            result = _record_only(recipe, path, None, candidate, "promoted", "promote",
                                  [f"no champion yet: version {candidate} becomes the champion"], model=model)
        else:
            result = _record_only(recipe, path, champion, candidate, "unchanged", None,
                                  [f"version {candidate} is already the champion"], model=model)
        if say is not None:
            say(f"rollout {result.strategy}: {result.reasons[0]}")
        return result
    plan = LivePlan(model, champion, candidate, recipe.rollout.strategy, 0.0)
    deployer.deploy([champion, candidate], routing(plan))
    url = cluster.url(port)
    router = ClusterRouter(make_router(recipe.rollout, model, champion, candidate, seed=seed), deployer, plan, url,
                           model, seed)
    if recipe.rollout.strategy == "direct":
        traffic = lambda n, h=None: None  # noqa: E731 - direct sends nothing
    else:
        if features is None:
            features, labels = validation_rows(recipe, root)
        scoring = {}
        if getattr(recipe.rollout, "reward", None) == "feedback" and labels is not None:
            from framework.runtime.rollout.traffic import reward_for

            scoring = {"labels": labels, "reward": reward_for(recipe.model.task, labels)}
        traffic = SyntheticTraffic(url, model, features, concurrency=concurrency, seed=seed,
                                   observe=router.observe_answer, **scoring)
    result = Controller(recipe, uri=uri, router=router, traffic=traffic, champion=champion, candidate=candidate,
                        state_path=path, model=model, on_event=say, **controller_options).run()
    result.where = f"Ray cluster at {address}"
    return result


def serve_on_cluster(recipe, root: Path, env_dir: Path, state_dir: Path, address: str, *,
                     head_shares_disk: bool = False, console=None) -> tuple[str, LivePlan]:
    """`mlops serve --address`: the recipe's application on the cluster, serving what a
    local `mlops serve` would (the champion, and the candidate while a rollout is in
    progress, at its recorded weight). Returns the Serve proxy's host:port and the plan."""
    from framework.runtime.serving.live import live_plan
    from framework.runtime.serving.ray_cluster import ServeCluster
    from framework.runtime.submit import UPLOAD_EXCLUDES, snapshot

    say = (lambda line: console.print(line, markup=False, highlight=False)) if console is not None else None
    plan = live_plan(recipe, state_dir)
    if plan.champion is None:
        from framework.runtime import tracking

        raise MlopsError([Problem(None, "serving", f"no version of '{recipe.registered_model}' has alias champion in "
                                  f"{tracking.tracking_uri(recipe, state_dir)}: run `mlops apply {recipe.name} "
                                  "--target ray --address URL` first")])
    cluster = ServeCluster(address)
    with snapshot(root) as folder:
        package = cluster.upload(folder, UPLOAD_EXCLUDES)
    deployer = ClusterDeployer(cluster, env_dir, root, package, Path(state_dir).resolve() if head_shares_disk else None, say)
    deployer.deploy(plan.versions, routing(plan))
    return cluster.url(recipe.serving.port), plan


def cluster_status(recipe, address: str) -> str:
    """One line: the recipe's application on the cluster, its status and its routing."""
    from framework.runtime.serving.ray_cluster import ServeCluster

    details = ServeCluster(address).applications().get(recipe.name)
    if details is None:
        return f"not deployed on the Ray cluster at {address}"
    deployments = (details.get("deployed_app_config") or {}).get("deployments") or [{}]
    spec = (deployments[0].get("user_config") or {}).get("routing")
    how = _describe(spec) if spec else "routing from the registry's aliases"
    return f"{details.get('status', 'unknown')} on the Ray cluster at {address}: {how}"


def cluster_serve_hint(recipe, address: str) -> str:
    from framework.runtime.serving.ray_cluster import serve_url
    from framework.contracts.triton import model_name

    return (f"served on the Ray cluster: POST http://{serve_url(address, recipe.serving.port)}/v2/models/"
            f"{model_name(recipe)}/infer (KServe v2)")


__all__ = ["rollout_on_cluster", "serve_on_cluster", "cluster_status", "cluster_serve_hint", "ClusterRouter", "ClusterDeployer"]
