"""Traffic target: Istio VirtualService/DestinationRule, Argo Rollout and AnalysisTemplate,
blue/green's preview Service. Custom resources are validated against their CRD schemas."""

from __future__ import annotations

import math
import re

import pytest

from framework.targets import common, kubernetes, metrics, traffic
from tests.targets.conftest import CRD_SCHEMAS, load_variant
from tests.targets.k8s_checks import documents, of_kind, one, validate_core, validate_crd
from tests.targets.test_monitoring import check_promql, recipe_with

CRD_KINDS = {"VirtualService", "DestinationRule", "Rollout", "AnalysisTemplate"}


def docs_of(recipe):
    return documents(traffic.render(recipe))


def expected_paths(recipe) -> list[str]:
    if recipe.rollout.strategy == "direct" or metrics.on_ray(recipe):
        return []
    paths = ["k8s/istio.yaml"]
    if recipe.rollout.strategy in ("canary", "blue_green"):
        paths += ["k8s/rollout.yaml", "k8s/analysistemplate.yaml"]
    if recipe.rollout.strategy == "blue_green":
        paths.append("k8s/service-preview.yaml")
    return paths


def primary_route(vs) -> dict:
    return next(r for r in vs["spec"]["http"] if r["name"] == traffic.ROUTE_PRIMARY)


def weights(vs) -> dict[str, int]:
    return {d["destination"].get("subset", d["destination"]["host"]): d.get("weight") for d in primary_route(vs)["route"]}


# --- every variant ----------------------------------------------------------------------
def test_renders_what_the_strategy_needs(recipe):
    assert [a.path for a in traffic.render(recipe)] == expected_paths(recipe)


def test_objects_match_their_schemas(recipe):
    for _, doc in docs_of(recipe):
        if doc["kind"] in CRD_KINDS:
            assert validate_crd(doc, CRD_SCHEMAS) == []
        else:
            assert doc["kind"] == "Service"
            assert validate_core(doc) == []
        assert doc["metadata"]["namespace"] == recipe.deploy.namespace
        assert doc["metadata"]["labels"] == common.labels(recipe, "server")


def test_virtual_service_routes(recipe):
    docs = docs_of(recipe)
    if not docs:
        return
    names = common.names(recipe)
    fqdn = f"{names.service}.{recipe.deploy.namespace}.svc.cluster.local"
    vs = one(docs, "VirtualService")
    assert vs["metadata"]["name"] == names.service
    assert vs["spec"]["hosts"] == [names.service, fqdn]
    header, primary = vs["spec"]["http"]  # the header route comes first
    h = traffic.header(recipe)
    assert header["match"] == [{"headers": {h.name.lower(): {"exact": h.value}}}]
    (candidate,) = header["route"]
    if recipe.rollout.strategy == "blue_green":
        assert candidate["destination"] == {"host": f"{names.service}-preview.{recipe.deploy.namespace}.svc.cluster.local"}
        assert primary["route"] == [{"destination": {"host": fqdn}}]
    else:
        assert candidate["destination"] == {"host": fqdn, "subset": "candidate"}
        total = sum(d.get("weight", 0) for d in primary["route"])
        assert total == 100  # Istio's rule (a CEL check the JSON schema cannot express)
        rule = one(docs, "DestinationRule")
        assert rule["spec"]["host"] == fqdn
        assert [s["name"] for s in rule["spec"]["subsets"]] == ["stable", "candidate"]
        used = {d["destination"]["subset"] for d in primary["route"] + header["route"]}
        assert used <= {s["name"] for s in rule["spec"]["subsets"]}


def test_subsets_select_the_serving_pods(recipe):
    """Subset labels are labels the serving pods carry (or, for the track label, that the
    contract gives the champion's and candidate's pods)."""
    docs = docs_of(recipe)
    rules = of_kind(docs, "DestinationRule")
    if not rules:
        return
    deployment = one(documents(kubernetes.render(recipe)), "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for subset in rules[0]["spec"]["subsets"]:
        labels = dict(subset["labels"])
        if common.uses_argo_rollout(recipe):
            assert metrics.TRACK_LABEL not in labels  # Argo injects rollouts-pod-template-hash
        else:
            assert labels.pop(metrics.TRACK_LABEL) == subset["name"]
        assert labels.items() <= pod_labels.items()


@pytest.mark.parametrize("variant", ["churn-shadow", "churn-bandit", "support-dev"])
def test_champion_pods_carry_the_stable_track(variant):
    recipe = load_variant(variant)
    deployment = one(documents(kubernetes.render(recipe)), "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"].get(metrics.TRACK_LABEL) == metrics.STABLE


def test_rollout_owns_the_deployment(recipe):
    docs = docs_of(recipe)
    rollouts = of_kind(docs, "Rollout")
    assert bool(rollouts) == (common.uses_argo_rollout(recipe) and not metrics.on_ray(recipe))
    if not rollouts:
        return
    (rollout,) = rollouts
    names = common.names(recipe)
    deployment = one(documents(kubernetes.render(recipe)), "Deployment")
    ref = rollout["spec"]["workloadRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", deployment["metadata"]["name"])
    assert ref["scaleDown"] in ("never", "onsuccess", "progressively")
    assert rollout["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert "replicas" not in rollout["spec"]  # the HPA scales it
    assert common.workload_ref(recipe) == {
        "apiVersion": rollout["apiVersion"], "kind": "Rollout", "name": rollout["metadata"]["name"]
    }
    template = one(docs, "AnalysisTemplate")
    assert template["metadata"]["name"] == names.analysis_template
    strategy = rollout["spec"]["strategy"]
    if recipe.rollout.strategy == "canary":
        istio = strategy["canary"]["trafficRouting"]["istio"]
        vs, rule = one(docs, "VirtualService"), one(docs, "DestinationRule")
        assert istio["virtualService"]["name"] == vs["metadata"]["name"]
        assert set(istio["virtualService"]["routes"]) <= {r["name"] for r in vs["spec"]["http"]}
        assert traffic.ROUTE_HEADER not in istio["virtualService"]["routes"]  # Argo leaves it alone
        assert istio["destinationRule"] == {
            "name": rule["metadata"]["name"], "canarySubsetName": "candidate", "stableSubsetName": "stable"
        }
        assert strategy["canary"]["canaryMetadata"] == {"labels": {metrics.TRACK_LABEL: "candidate"}}
        assert strategy["canary"]["stableMetadata"] == {"labels": {metrics.TRACK_LABEL: "stable"}}
        analyses = [s["analysis"] for s in strategy["canary"]["steps"] if "analysis" in s]
    else:
        analyses = [strategy["blueGreen"]["prePromotionAnalysis"]]
    assert analyses and all(a == {"templates": [{"templateName": names.analysis_template}]} for a in analyses)


def test_analysis_queries_come_from_metrics_and_parse(recipe):
    templates = of_kind(docs_of(recipe), "AnalysisTemplate")
    if not templates:
        return
    a = recipe.rollout.analysis
    window, scope = traffic.analysis_window(recipe), traffic.analysis_scope(recipe)
    expected = {
        "error-rate": metrics.with_min_requests(metrics.error_ratio(recipe, window, scope), recipe, window, a.min_requests, scope),
        "latency-p99": metrics.with_min_requests(
            metrics.latency_quantile(recipe, 0.99, window, scope), recipe, window, a.min_requests, scope
        ),
    }
    queries = {m["name"]: m["provider"]["prometheus"]["query"] for m in templates[0]["spec"]["metrics"]}
    assert queries == expected
    check_promql(list(queries.values()))
    for query in queries.values():
        assert f'{metrics.TRACK}="candidate"' in query  # judges the candidate alone
        assert query.endswith(f">= {a.min_requests})")


def test_rendering_twice_is_byte_identical(recipe):
    first, second = traffic.render(recipe), traffic.render(recipe)
    assert [(a.path, a.text) for a in first] == [(a.path, a.text) for a in second]


# --- strategies -------------------------------------------------------------------------
def test_canary_starts_at_the_first_step_with_the_header_route_first():
    recipe = load_variant("churn-dev")
    vs = one(docs_of(recipe), "VirtualService")
    assert vs["spec"]["http"][0]["name"] == traffic.ROUTE_HEADER
    assert vs["spec"]["http"][0]["match"] == [{"headers": {"x-mlops-candidate": {"exact": "true"}}}]
    assert weights(vs) == {"stable": 90, "candidate": 10}


def test_canary_header_override_is_lowercased():
    recipe = recipe_with("rollout.header.name=X-Canary", "rollout.header.value=yes")
    vs = one(docs_of(recipe), "VirtualService")
    assert vs["spec"]["http"][0]["match"] == [{"headers": {"x-canary": {"exact": "yes"}}}]


@pytest.mark.parametrize(
    "overrides, steps, pause",
    [
        ([], [10, 25, 50, 100], "5m"),
        (["rollout.steps=[20,100]", "rollout.interval=90s"], [20, 100], "1m30s"),
        (["rollout.steps=[5,30,100]", "rollout.interval=1d"], [5, 30, 100], "24h"),
    ],
)
def test_rollout_steps_mirror_the_recipe(overrides, steps, pause):
    recipe = recipe_with(*overrides)
    docs = docs_of(recipe)
    rollout = one(docs, "Rollout")
    expected = []
    for weight in steps:
        expected += [
            {"setWeight": weight},
            {"pause": {"duration": pause}},
            {"analysis": {"templates": [{"templateName": common.names(recipe).analysis_template}]}},
        ]
    assert rollout["spec"]["strategy"]["canary"]["steps"] == expected
    assert weights(one(docs, "VirtualService")) == {"stable": 100 - steps[0], "candidate": steps[0]}
    assert validate_crd(rollout, CRD_SCHEMAS) == []


def number_in(condition: str) -> float:
    return float(re.search(r"result\[0\] (<=|>) ([0-9.e+-]+)$", condition).group(2))


@pytest.mark.parametrize("variant", ["churn-dev", "churn-blue-green"])
def test_analysis_thresholds_are_the_recipes(variant):
    recipe = load_variant(variant)
    a = recipe.rollout.analysis
    template = one(docs_of(recipe), "AnalysisTemplate")
    by_name = {m["name"]: m for m in template["spec"]["metrics"]}
    assert set(by_name) == {"error-rate", "latency-p99"}
    limits = {"error-rate": a.max_error_rate, "latency-p99": a.max_latency_p99_ms / 1000}  # latency in seconds
    for name, metric in by_name.items():
        assert metric["successCondition"].startswith("len(result) > 0 && result[0] <= ")
        assert metric["failureCondition"].startswith("len(result) > 0 && result[0] > ")
        assert number_in(metric["successCondition"]) == number_in(metric["failureCondition"]) == limits[name]
        assert metric["provider"]["prometheus"]["address"] == metrics.PROMETHEUS_ADDRESS
        assert metric["count"] == traffic.ANALYSIS_COUNT and metric["interval"] == traffic.ANALYSIS_INTERVAL
        assert 0 <= metric["failureLimit"] < metric["count"]
        assert metric["inconclusiveLimit"] < metric["count"]  # too little traffic throughout: inconclusive
        assert f">= {a.min_requests})" in metric["provider"]["prometheus"]["query"]
    if recipe.rollout.strategy == "blue_green":
        assert by_name["error-rate"]["initialDelay"] == metrics.duration(recipe.rollout.preview_duration)
        assert 'service="churn-preview"' in by_name["error-rate"]["provider"]["prometheus"]["query"]


def test_analysis_thresholds_follow_overrides():
    recipe = recipe_with("rollout.analysis.max_error_rate=0.05", "rollout.analysis.max_latency_p99_ms=1500",
                         "rollout.analysis.min_requests=1000")
    by_name = {m["name"]: m for m in one(docs_of(recipe), "AnalysisTemplate")["spec"]["metrics"]}
    assert number_in(by_name["error-rate"]["successCondition"]) == 0.05
    assert number_in(by_name["latency-p99"]["successCondition"]) == 1.5
    assert by_name["latency-p99"]["provider"]["prometheus"]["query"].endswith(">= 1000)")


@pytest.mark.parametrize("mirror", [None, 25.0, 0.5])
def test_shadow_mirrors_the_candidate(mirror):
    recipe = recipe_with("rollout=shadow", *([f"rollout.mirror_percent={mirror}"] if mirror else []))
    docs = docs_of(recipe)
    assert [doc["kind"] for _, doc in docs] == ["VirtualService", "DestinationRule"]
    primary = primary_route(one(docs, "VirtualService"))
    fqdn = "churn.ml-dev.svc.cluster.local"
    assert primary["route"] == [{"destination": {"host": fqdn, "subset": "stable"}, "weight": 100}]
    assert primary["mirror"] == {"host": fqdn, "subset": "candidate"}
    assert primary["mirrorPercentage"] == {"value": mirror or 100.0}


def test_llm_shadow():
    recipe = load_variant("support-dev")
    primary = primary_route(one(docs_of(recipe), "VirtualService"))
    assert primary["mirrorPercentage"]["value"] == recipe.rollout.mirror_percent
    assert traffic.render(recipe)[0].path == "k8s/istio.yaml" and len(traffic.render(recipe)) == 1


@pytest.mark.parametrize("min_percent", [5.0, 12.5, 0.0])
def test_bandit_starts_the_candidate_at_min_percent(min_percent):
    recipe = recipe_with("rollout=bandit", f"rollout.min_percent={min_percent}")
    vs = one(docs_of(recipe), "VirtualService")
    candidate = math.ceil(min_percent)
    assert weights(vs) == {"stable": 100 - candidate, "candidate": candidate}
    assert validate_crd(vs, CRD_SCHEMAS) == []


def test_blue_green_preview_service_matches_the_main_one():
    recipe = load_variant("churn-blue-green")
    main = one(documents(kubernetes.render(recipe)), "Service")
    preview = one(docs_of(recipe), "Service")
    assert preview["metadata"]["name"] == f"{main['metadata']['name']}-preview"
    assert preview["metadata"]["labels"] == main["metadata"]["labels"]
    assert preview["spec"] == main["spec"]  # same selector and ports
    rollout = one(docs_of(recipe), "Rollout")
    blue_green = rollout["spec"]["strategy"]["blueGreen"]
    assert blue_green["activeService"] == main["metadata"]["name"]
    assert blue_green["previewService"] == preview["metadata"]["name"]
    assert blue_green["autoPromotionEnabled"] is True
    assert blue_green["previewMetadata"] == {"labels": {metrics.TRACK_LABEL: "candidate"}}
    assert of_kind(docs_of(recipe), "DestinationRule") == []  # Argo switches Services, not subsets


def test_blue_green_manual_promotion():
    recipe = recipe_with("rollout=blue_green", "rollout.auto_promote=false")
    blue_green = one(docs_of(recipe), "Rollout")["spec"]["strategy"]["blueGreen"]
    assert blue_green["autoPromotionEnabled"] is False


def test_nothing_for_direct_or_ray_serve():
    assert traffic.render(load_variant("churn-direct")) == []
    assert traffic.render(load_variant("churn-ray-serve")) == []  # the serving app splits traffic itself
    assert traffic.render(load_variant("support-ray-serve-llm")) == []  # direct only (a checked rule)


@pytest.mark.parametrize("backend", ["tgi", "sglang"])
def test_tgi_and_sglang_are_routed_like_vllm(backend):
    """TGI and SGLang run in the same Deployment shape as vLLM: shadow mirrors to the candidate pods."""
    recipe = recipe_with(f"serving={backend}", name="support_assistant")
    assert recipe.rollout.strategy == "shadow"
    assert [a.path for a in traffic.render(recipe)] == ["k8s/istio.yaml"]
