"""Traffic target: how a candidate model version meets live traffic.

* `k8s/istio.yaml`: an Istio VirtualService `<recipe>` (and, where traffic is split
  by subset, a DestinationRule with subsets `stable` and `candidate`) for canary,
  shadow, bandit and blue_green. Every strategy first routes requests carrying the
  candidate header (`rollout.header`, default `x-mlops-candidate: true`) to the
  candidate, so it can be smoke-tested before it takes real traffic.
* `k8s/rollout.yaml` + `k8s/analysistemplate.yaml` for canary and blue_green: an Argo
  Rollout `<recipe>-server` that owns the serving pods through `workloadRef` (the
  Deployment of the kubernetes target stays the one pod template) and an
  AnalysisTemplate that judges the candidate from Prometheus (metrics.py queries).
* `k8s/service-preview.yaml` for blue_green: the preview Service Argo points at the
  new revision.

Subset labels (the contract with the serving pods):
* canary: Argo's subset-level Istio routing injects `rollouts-pod-template-hash` into
  the subsets (`stable`, `candidate`); their static labels are the selector labels.
* shadow, bandit (no Argo): the subsets select `mlops.dev/track: stable|candidate`,
  which the champion's and the candidate's pod templates must carry.
* blue_green: Argo switches the *Services'* selectors (active `<recipe>`, preview
  `<recipe>-preview`), not subsets, so the VirtualService routes by host and no
  DestinationRule is needed.
Argo sets `mlops.dev/track` on the pods it manages (canary/stable and preview/active
metadata), so every serving pod of every strategy carries the track label, which the
ServiceMonitor copies onto its series (see metrics.py).

Ray Serve (backend ray_serve) gets nothing here: KubeRay owns its pods (no Deployment
for Argo to reference, no Service of ours), and the serving app splits traffic
between versions itself (`mlops_rollout_weight`).
"""

from __future__ import annotations

import math
from typing import Any

from framework.recipe.rollout import HeaderOverride
from framework.targets import Artifact, common, metrics

ROUTE_HEADER = "candidate-header"
ROUTE_PRIMARY = "primary"
SUBSET_STABLE, SUBSET_CANDIDATE = metrics.STABLE, metrics.CANDIDATE
TRAFFIC_STRATEGIES = ("canary", "shadow", "bandit", "blue_green")
COMPONENT = "server"

ISTIO_API = "networking.istio.io/v1"
ARGO_API = "argoproj.io/v1alpha1"
# The Deployment is scaled down once the Rollout's pods are healthy: it is only the template.
WORKLOAD_SCALE_DOWN = "onsuccess"
REVISION_HISTORY = 3

# Analysis: after the step's pause, ANALYSIS_COUNT measurements ANALYSIS_INTERVAL apart.
# One failed measurement is tolerated (FAILURE_LIMIT); if every measurement lacks
# rollout.analysis.min_requests the run is Inconclusive and the Rollout pauses for a
# person (`mlops rollout promote|rollback`) instead of deciding on no evidence.
ANALYSIS_INTERVAL = "1m"
ANALYSIS_COUNT = 3
FAILURE_LIMIT = 1
INCONCLUSIVE_LIMIT = ANALYSIS_COUNT - 1


def applies(recipe) -> bool:
    return (
        recipe.deploy.istio
        and recipe.rollout.strategy in TRAFFIC_STRATEGIES
        and not metrics.on_ray(recipe)
    )


def preview_service_name(recipe) -> str:
    return f"{common.names(recipe).service}-preview"


def header(recipe) -> HeaderOverride:
    """The header that sends a request to the candidate (the recipe's for canary)."""
    return getattr(recipe.rollout, "header", None) or HeaderOverride()


def fqdn(recipe, service: str) -> str:
    return f"{service}.{recipe.deploy.namespace}.svc.cluster.local"


def track_labels(recipe, track: str) -> dict[str, str]:
    """Labels of the pods of one track (shadow/bandit Deployments carry them)."""
    return {**common.selector_labels(recipe, COMPONENT), metrics.TRACK_LABEL: track}


# --- Istio -------------------------------------------------------------------------------
def _destination(host: str, subset: str | None = None, weight: int | None = None) -> dict[str, Any]:
    dest: dict[str, Any] = {"host": host}
    if subset:
        dest["subset"] = subset
    return {"destination": dest} if weight is None else {"destination": dest, "weight": weight}


def initial_weights(recipe) -> tuple[int, int]:
    """(stable, candidate) percent of the default route as generated."""
    rollout = recipe.rollout
    if rollout.strategy == "canary":
        candidate = rollout.steps[0]
    elif rollout.strategy == "bandit":
        candidate = min(100, math.ceil(rollout.min_percent))
    else:  # shadow mirrors, blue_green switches: the stable track answers everything
        candidate = 0
    return 100 - candidate, candidate


def virtual_service(recipe) -> dict[str, Any]:
    names = common.names(recipe)
    host = fqdn(recipe, names.service)
    strategy = recipe.rollout.strategy
    h = header(recipe)
    match = [{"headers": {h.name.lower(): {"exact": h.value}}}]
    if strategy == "blue_green":
        candidate = _destination(fqdn(recipe, preview_service_name(recipe)))
        primary: dict[str, Any] = {"name": ROUTE_PRIMARY, "route": [_destination(host)]}
    else:
        candidate = _destination(host, SUBSET_CANDIDATE)
        stable_weight, candidate_weight = initial_weights(recipe)
        if strategy == "shadow":
            primary = {
                "name": ROUTE_PRIMARY,
                "route": [_destination(host, SUBSET_STABLE, 100)],
                "mirror": {"host": host, "subset": SUBSET_CANDIDATE},
                "mirrorPercentage": {"value": float(recipe.rollout.mirror_percent)},
            }
        else:
            # Argo needs both destinations in the routes it manages, even at weight 0.
            primary = {
                "name": ROUTE_PRIMARY,
                "route": [
                    _destination(host, SUBSET_STABLE, stable_weight),
                    _destination(host, SUBSET_CANDIDATE, candidate_weight),
                ],
            }
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": common.metadata(recipe, names.service, COMPONENT),
        "spec": {
            "hosts": [names.service, host],
            "http": [{"name": ROUTE_HEADER, "match": match, "route": [candidate]}, primary],
        },
    }


def destination_rule(recipe) -> dict[str, Any]:
    names = common.names(recipe)
    if common.uses_argo_rollout(recipe):  # Argo adds rollouts-pod-template-hash to each subset
        subsets = [{"name": s, "labels": common.selector_labels(recipe, COMPONENT)} for s in (SUBSET_STABLE, SUBSET_CANDIDATE)]
    else:
        subsets = [{"name": s, "labels": track_labels(recipe, s)} for s in (SUBSET_STABLE, SUBSET_CANDIDATE)]
    return {
        "apiVersion": ISTIO_API,
        "kind": "DestinationRule",
        "metadata": common.metadata(recipe, names.service, COMPONENT),
        "spec": {"host": fqdn(recipe, names.service), "subsets": subsets},
    }


def istio_objects(recipe) -> list[dict[str, Any]]:
    if recipe.rollout.strategy == "blue_green":
        return [virtual_service(recipe)]
    return [virtual_service(recipe), destination_rule(recipe)]


# --- Argo Rollouts -----------------------------------------------------------------------
def _track_metadata(track: str) -> dict[str, Any]:
    return {"labels": {metrics.TRACK_LABEL: track}}


def _analysis_ref(recipe) -> dict[str, Any]:
    return {"templates": [{"templateName": common.names(recipe).analysis_template}]}


def rollout(recipe) -> dict[str, Any]:
    names = common.names(recipe)
    r = recipe.rollout
    if r.strategy == "canary":
        steps: list[dict[str, Any]] = []
        for weight in r.steps:
            steps += [
                {"setWeight": weight},
                {"pause": {"duration": metrics.duration(r.interval)}},
                {"analysis": _analysis_ref(recipe)},
            ]
        strategy = {
            "canary": {
                "stableMetadata": _track_metadata(metrics.STABLE),
                "canaryMetadata": _track_metadata(metrics.CANDIDATE),
                "trafficRouting": {
                    "istio": {
                        "virtualService": {"name": names.service, "routes": [ROUTE_PRIMARY]},
                        "destinationRule": {
                            "name": names.service,
                            "canarySubsetName": SUBSET_CANDIDATE,
                            "stableSubsetName": SUBSET_STABLE,
                        },
                    }
                },
                "steps": steps,
            }
        }
    else:  # blue_green
        strategy = {
            "blueGreen": {
                "activeService": names.service,
                "previewService": preview_service_name(recipe),
                "activeMetadata": _track_metadata(metrics.STABLE),
                "previewMetadata": _track_metadata(metrics.CANDIDATE),
                "autoPromotionEnabled": r.auto_promote,
                "prePromotionAnalysis": _analysis_ref(recipe),
            }
        }
    return {
        "apiVersion": ARGO_API,
        "kind": "Rollout",
        "metadata": common.metadata(recipe, names.server, COMPONENT),
        "spec": {
            # No replicas: the HPA scales the Rollout (common.workload_ref).
            "revisionHistoryLimit": REVISION_HISTORY,
            "selector": {"matchLabels": common.selector_labels(recipe, COMPONENT)},
            "workloadRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": names.server,
                "scaleDown": WORKLOAD_SCALE_DOWN,
            },
            "strategy": strategy,
        },
    }


def analysis_window(recipe) -> str:
    """The range each measurement looks back over: the canary step's pause, or the
    blue/green preview, and never less than the alerts' rate window."""
    r = recipe.rollout
    observed = r.interval if r.strategy == "canary" else r.preview_duration
    return metrics.duration(max(metrics.seconds(observed), metrics.seconds(metrics.rate_window(recipe))))


def analysis_scope(recipe) -> metrics.Scope:
    """The candidate's series: behind the main Service (canary) or the preview one."""
    service = preview_service_name(recipe) if recipe.rollout.strategy == "blue_green" else None
    return metrics.scope(recipe, service=service, track=metrics.CANDIDATE)


def analysis_queries(recipe) -> dict[str, str]:
    """Metric name -> PromQL of the AnalysisTemplate (each guarded by min_requests)."""
    a = recipe.rollout.analysis
    window, s = analysis_window(recipe), analysis_scope(recipe)
    raw = {
        "error-rate": metrics.error_ratio(recipe, window, s),
        "latency-p99": metrics.latency_quantile(recipe, 0.99, window, s),
    }
    return {name: metrics.with_min_requests(q, recipe, window, a.min_requests, s) for name, q in raw.items()}


def _condition(op: str, threshold: float) -> str:
    # An empty result (too few requests) meets neither condition: the measurement is
    # Inconclusive. NaN compares false both ways, which is Inconclusive too.
    return f"len(result) > 0 && result[0] {op} {metrics.number(threshold)}"


def analysis_template(recipe) -> dict[str, Any]:
    names = common.names(recipe)
    a = recipe.rollout.analysis
    thresholds = {"error-rate": a.max_error_rate, "latency-p99": a.max_latency_p99_ms / 1000}
    measured: dict[str, Any] = {
        "interval": ANALYSIS_INTERVAL,
        "count": ANALYSIS_COUNT,
        "failureLimit": FAILURE_LIMIT,
        "inconclusiveLimit": INCONCLUSIVE_LIMIT,
    }
    if recipe.rollout.strategy == "blue_green":
        # The preview takes only header-routed (smoke) traffic: give it the preview time.
        measured["initialDelay"] = metrics.duration(recipe.rollout.preview_duration)
    return {
        "apiVersion": ARGO_API,
        "kind": "AnalysisTemplate",
        "metadata": common.metadata(recipe, names.analysis_template, COMPONENT),
        "spec": {
            "metrics": [
                {
                    "name": name,
                    **measured,
                    "successCondition": _condition("<=", thresholds[name]),
                    "failureCondition": _condition(">", thresholds[name]),
                    "provider": {"prometheus": {"address": metrics.PROMETHEUS_ADDRESS, "query": query}},
                }
                for name, query in analysis_queries(recipe).items()
            ]
        },
    }


# --- the preview Service of blue/green ---------------------------------------------------
def _main_service(recipe) -> dict[str, Any]:
    """The serving Service of the kubernetes target (the preview copies it)."""
    from framework.targets.kubernetes import serving

    server = serving.server_pod(recipe)
    return serving.service(recipe, server)


def preview_service(recipe) -> dict[str, Any]:
    """Like the main Service (same labels, selector and ports, so the ServiceMonitor
    scrapes the preview pods too); Argo adds the preview revision's hash to its selector."""
    main = _main_service(recipe)
    return {
        **main,
        "metadata": {**main["metadata"], "name": preview_service_name(recipe)},
    }


def render(recipe) -> list[Artifact]:
    if not applies(recipe):
        return []
    artifacts = [Artifact("k8s/istio.yaml", common.yaml_text(recipe, *istio_objects(recipe)))]
    if common.uses_argo_rollout(recipe):
        artifacts += [
            Artifact("k8s/rollout.yaml", common.yaml_text(recipe, rollout(recipe))),
            Artifact("k8s/analysistemplate.yaml", common.yaml_text(recipe, analysis_template(recipe))),
        ]
    if recipe.rollout.strategy == "blue_green":
        artifacts.append(Artifact("k8s/service-preview.yaml", common.yaml_text(recipe, preview_service(recipe))))
    return artifacts
