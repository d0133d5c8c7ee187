"""The kubernetes target: real validators (kubernetes-validate strict, the PyTorchJob
CRD schema, checkov) and structural checks, over every variant of conftest.VARIANTS."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from framework.contracts import feast
from framework.recipe.training import Toleration
from framework.recipe.types import duration_seconds
from framework.targets import common, kubernetes, metrics, render_all
from tests.conftest import REPO
from tests.targets import k8s_checks as k8s
from tests.targets.conftest import CHECKOV, CRD_SCHEMAS, VARIANTS, load_variant, require

# The checkov checks the manifests skip (in `checkov.io/skip<N>` annotations, with reasons).
ALLOWED_CHECKOV_SKIPS = {"CKV_K8S_43", "CKV_K8S_35", "CKV_K8S_40"}


@lru_cache(maxsize=None)
def _variant(name: str):
    return load_variant(name)


@pytest.fixture(params=sorted(VARIANTS))
def recipe(request: pytest.FixtureRequest):
    """conftest's `recipe` (same variants), composed once per variant for this module's
    30-odd tests: Recipes are frozen, and composing is most of a test's time."""
    return _variant(request.param)


_DOCS: dict[str, list] = {}


def docs_of(recipe):
    """The rendered documents, parsed once per distinct recipe (tests only read them)."""
    key = recipe.model_dump_json()
    if key not in _DOCS:
        _DOCS[key] = k8s.documents(kubernetes.render(recipe))
    return _DOCS[key]


def serves_in_deployment(recipe) -> bool:
    return recipe.serving.backend in ("triton", "vllm", "sglang", "tgi")


def server_template(docs):
    return k8s.one(docs, "Deployment")["spec"]["template"]


_CORE: dict[str, list] = {}


def core_docs_of(recipe):
    """The core objects of every target's manifests (this target's, traffic's Services,
    rag's PVC, ...), rendered and parsed once per distinct recipe."""
    key = recipe.model_dump_json()
    if key not in _CORE:
        manifests = [a for a in render_all(recipe) if a.scope == "env" and a.path.endswith(".yaml")]
        _CORE[key] = [doc for _, doc in k8s.documents(manifests) if "apiVersion" in doc and k8s.is_core(doc)]
    return _CORE[key]


# --- real validators ---------------------------------------------------------------------
@pytest.mark.parametrize("version", k8s.K8S_VERSIONS)
def test_core_kinds_pass_kubernetes_validate_strict(recipe, version: str):
    core = core_docs_of(recipe)
    assert core, "no core objects rendered"
    problems = [p for doc in core for p in k8s.validate_core(doc, [version])]
    assert problems == []


def test_strict_validation_covers_each_minor():
    """Each minor reads its own schema: a rule that changed between minors shows up
    (onPodConditions[].status: required up to 1.34, optional since 1.35)."""
    (cronjob,) = [doc for doc in core_docs_of(_variant("churn-dev")) if doc["kind"] == "CronJob"]
    broken = json.loads(json.dumps(cronjob))
    rules = broken["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    del next(r for r in rules if "onPodConditions" in r)["onPodConditions"][0]["status"]
    failing = {p.split()[0] for p in k8s.validate_core(broken)}
    assert failing == {"1.31", "1.32", "1.33", "1.34"}


def test_pytorchjob_matches_its_crd_schema(recipe):
    jobs = k8s.of_kind(docs_of(recipe), "PyTorchJob")
    if recipe.training is None or recipe.training.engine != "pytorchjob":
        assert jobs == []
        return
    assert len(jobs) == 1
    assert k8s.validate_crd(jobs[0], CRD_SCHEMAS) == []


def test_only_known_kinds_are_rendered(recipe):
    """Every document is a core kind (validated above) or a PyTorchJob (validated against its CRD)."""
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in docs_of(recipe) if not k8s.is_core(doc)}
    assert kinds <= {("kubeflow.org/v1", "PyTorchJob")}


def test_checkov_finds_no_failed_check(tmp_path: Path):
    """One checkov run over every variant's manifests (a folder each): zero failures.
    Its graph check CKV2_K8S_6 (pods need a NetworkPolicy) then sees every variant at
    once; test_serving_objects_fit_together checks each variant's own policy selects its pods."""
    checkov = require(CHECKOV)
    for variant in sorted(VARIANTS):
        for artifact in kubernetes.render(_variant(variant)):
            path = tmp_path / variant / artifact.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(artifact.text)
    report = k8s.run_checkov(checkov, tmp_path)
    assert k8s.checkov_failures(report) == []
    assert report["exit_code"] == 0
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0 and summary["resource_count"] >= len(VARIANTS) * 2
    # Skips are only those annotated (test_checkov_skips_carry_reasons checks the ids):
    # each annotated workload skips each of its checks once per container.
    assert 0 < summary["skipped"]


def test_checkov_skips_carry_reasons(recipe):
    for _, doc in docs_of(recipe):
        for check, reason in k8s.checkov_skip_annotations(doc).items():
            assert check in ALLOWED_CHECKOV_SKIPS
            assert len(reason.split()) >= 5, f"{check}: give a reason"


# --- structure ---------------------------------------------------------------------------
def test_names_are_dns_labels_and_unique(recipe):
    docs = docs_of(recipe)
    assert [p for _, doc in docs for p in k8s.check_names(doc)] == []
    keys = [(doc["kind"], doc["metadata"]["name"]) for _, doc in docs]
    assert len(keys) == len(set(keys))
    assert {doc["metadata"]["namespace"] for _, doc in docs} == {recipe.deploy.namespace}
    paths = [artifact.path for artifact in kubernetes.render(recipe)]
    assert all(path.startswith("k8s/") for path in paths) and len(paths) == len(set(paths))


def test_every_object_carries_the_recipe_labels(recipe):
    for _, doc in docs_of(recipe):
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == recipe.name
        assert labels["app.kubernetes.io/managed-by"] == "mlops"
        assert labels["mlops.dev/environment"] == recipe.environment


def test_every_container_is_secure_and_resourced(recipe):
    docs = docs_of(recipe)
    problems = []
    for _, doc in docs:
        for where, pod in k8s.pod_specs(doc):
            problems += [f"{doc['kind']}/{doc['metadata']['name']} {where}: {p}" for p in k8s.check_pod(pod)]
    assert problems == []


def test_read_only_root_has_writable_scratch(recipe):
    """Every container writes only to emptyDirs: /tmp everywhere, caches per server."""
    for _, doc in docs_of(recipe):
        for _, pod in k8s.pod_specs(doc):
            for container in k8s.containers(pod):
                assert "/tmp" in k8s.writable_paths(container, pod), container["name"]
    caches = {
        "vllm": ("HOME", "HF_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"),
        "tgi": ("HOME", "HF_HOME", "HUGGINGFACE_HUB_CACHE", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"),
        "sglang": ("HOME", "XDG_CACHE_HOME", "HF_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"),
    }
    if recipe.serving.backend in caches:
        pod = server_template(docs_of(recipe))["spec"]
        (server,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in server["env"]}
        writable = k8s.writable_paths(server, pod)
        for var in caches[recipe.serving.backend]:
            assert any(env[var].startswith(path) for path in writable), var
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory" and "/dev/shm" in writable


def test_references_are_generated_or_declared(recipe):
    """ConfigMaps and the ServiceAccount the pods use are rendered here; Secrets are the
    recipe's (deploy.secrets, model.token or the Feast online store's), with the key it names."""
    docs = docs_of(recipe)
    configmaps = {doc["metadata"]["name"] for doc in k8s.of_kind(docs, "ConfigMap")}
    accounts = {doc["metadata"]["name"] for doc in k8s.of_kind(docs, "ServiceAccount")}
    declared = {(ref.name, ref.key) for ref in recipe.deploy.secrets.values()}
    token = getattr(recipe.model, "token", None)
    if token is not None:
        declared.add((token.name, token.key))
    store = feast.secret_env(recipe) if feast.enabled(recipe) else {}
    declared |= {(ref.name, ref.key) for ref in store.values()}
    for _, doc in docs:
        for where, pod in k8s.pod_specs(doc):
            assert k8s.referenced_configmaps(pod) <= configmaps, where
            assert pod["serviceAccountName"] in accounts, where
            assert k8s.referenced_secrets(pod) <= declared, where
    names = common.names(recipe)
    scheduled = recipe.batch.schedule is not None and recipe.batch.on_cluster  # the batch launcher's own
    assert accounts == {recipe.deploy.service_account} | ({names.batch_launcher} if scheduled else set())
    materialized = feast.enabled(recipe) and bool(store)  # a Redis or PostgreSQL online store
    assert configmaps == ({names.recipe_configmap} | ({names.batch_rayjob_configmap} if scheduled else set())
                          | ({names.feast_configmap} if materialized else set()))


def test_configmap_holds_the_resolved_recipe_bytes(recipe):
    (configmap,) = [d for d in k8s.of_kind(docs_of(recipe), "ConfigMap")
                    if d["metadata"]["name"] == common.names(recipe).recipe_configmap]
    assert configmap["data"] == {common.RECIPE_FILE: common.resolved_recipe_yaml(recipe)}
    for account in k8s.of_kind(docs_of(recipe), "ServiceAccount"):  # the pods' (and the batch launcher's)
        assert account["automountServiceAccountToken"] is False


def test_serving_objects_fit_together(recipe):
    docs = docs_of(recipe)
    serving_kinds = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}
    rendered = {doc["kind"] for _, doc in docs}
    if not serves_in_deployment(recipe):  # ray_serve: the RayService owns pods and Service
        assert rendered & serving_kinds == set()
        return
    assert serving_kinds <= rendered
    names = common.names(recipe)
    deployment = k8s.one(docs, "Deployment")
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert deployment["metadata"]["name"] == names.server
    # An Argo Rollout (canary, blue/green) scales the pods; the Deployment keeps the template.
    expected_replicas = 0 if common.uses_argo_rollout(recipe) else recipe.serving.replicas.min
    assert deployment["spec"]["replicas"] == expected_replicas
    # The champion's pods carry the stable track unless Argo manages tracks (traffic, metrics).
    track = {} if common.uses_argo_rollout(recipe) else {metrics.TRACK_LABEL: metrics.STABLE}
    assert labels == {**common.labels(recipe, "server"), **track}
    assert k8s.selects(deployment["spec"]["selector"], labels)
    assert deployment["spec"]["selector"]["matchLabels"] == common.selector_labels(recipe, "server")

    service = k8s.one(docs, "Service")
    assert service["metadata"]["name"] == names.service and service["spec"]["type"] == "ClusterIP"
    assert k8s.check_service_targets(service, template) == []

    hpa = k8s.one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == common.workload_ref(recipe)
    expected_kind = "Rollout" if common.uses_argo_rollout(recipe) else "Deployment"
    assert hpa["spec"]["scaleTargetRef"]["kind"] == expected_kind
    assert hpa["spec"]["scaleTargetRef"]["name"] == names.server
    assert hpa["spec"]["minReplicas"] == max(1, recipe.serving.replicas.min)
    assert hpa["spec"]["maxReplicas"] == recipe.serving.replicas.max
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == recipe.serving.replicas.target_utilization

    pdb = k8s.one(docs, "PodDisruptionBudget")
    assert k8s.selects(pdb["spec"]["selector"], labels)
    expected = {"minAvailable": 1} if recipe.serving.replicas.min > 1 else {"maxUnavailable": 1}
    assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == expected

    policy = k8s.one(docs, "NetworkPolicy")
    assert k8s.selects(policy["spec"]["podSelector"], labels)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    port_names = k8s.container_port_names(template["spec"])
    for rule in policy["spec"]["ingress"]:
        assert {p["port"] for p in rule["ports"]} <= port_names
    by_source = {
        rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: {p["port"] for p in rule["ports"]}
        for rule in policy["spec"]["ingress"]
    }
    metrics_port = "metrics" if "metrics" in port_names else "http"
    assert by_source["monitoring"] == {metrics_port}
    client_ports = {"http", "grpc"} & port_names
    assert client_ports <= {p["port"] for rule in policy["spec"]["ingress"]
                            for peer in rule["from"] for p in rule["ports"]
                            if peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == recipe.deploy.namespace}

    spread = template["spec"].get("topologySpreadConstraints", [])
    assert bool(spread) == (recipe.serving.replicas.max > 1)
    assert all(k8s.selects(c["labelSelector"], labels) for c in spread)


def test_gpu_pods_are_scheduled_on_gpu_nodes(recipe):
    docs = docs_of(recipe)
    for _, doc in docs:
        if doc["kind"] == "Deployment":
            gpu_type = recipe.serving.resources.gpu_type
        elif doc["kind"] == "PyTorchJob":
            gpu_type = recipe.training.gpu_type
        else:
            gpu_type = None
        for where, pod in k8s.pod_specs(doc):
            assert k8s.check_gpu_scheduling(pod, gpu_type) == [], where
    if serves_in_deployment(recipe):
        (server,) = server_template(docs)["spec"]["containers"]
        llm = recipe.serving.backend in ("vllm", "sglang", "tgi")  # one GPU per tensor-parallel rank
        expected = recipe.serving.tensor_parallel_size if llm else recipe.serving.resources.gpu
        assert k8s.gpus(server) == expected


def test_rendering_is_deterministic(recipe):
    first = kubernetes.render(recipe)
    assert first == kubernetes.render(recipe)
    assert all(a.text.startswith("# Generated by mlops") for a in first)
    assert [a.path for a in first] == sorted(a.path for a in first)


# --- backends ----------------------------------------------------------------------------
VLLM_PROD_ARGS = [
    "--model", "Qwen/Qwen2.5-1.5B-Instruct",
    "--tensor-parallel-size", "1",
    "--gpu-memory-utilization", "0.9",
    "--max-model-len", "8192",
    "--served-model-name", "support-assistant",
    "--port", "8000",
    "--dtype", "bfloat16",
    "--max-num-seqs", "128",
]
VLLM_AWQ_TP2_ARGS = [
    "--model", "Qwen/Qwen2.5-7B-Instruct-AWQ",
    "--tensor-parallel-size", "2",
    "--gpu-memory-utilization", "0.9",
    "--max-model-len", "8192",
    "--served-model-name", "support-assistant",
    "--port", "8000",
    "--dtype", "float16",
    "--max-num-seqs", "128",
    "--quantization", "awq",
]


@pytest.mark.parametrize(("variant", "args", "gpus"), [
    ("support-prod", VLLM_PROD_ARGS, 1),
    ("support-awq-tp2", VLLM_AWQ_TP2_ARGS, 2),
])
def test_vllm_server(variant, args, gpus):
    recipe = _variant(variant)
    pod = server_template(docs_of(recipe))["spec"]
    (vllm,) = pod["containers"]
    assert vllm["image"] == recipe.serving.image == "vllm/vllm-openai:v0.33.0"
    assert vllm["args"] == args and "command" not in vllm
    assert k8s.gpus(vllm) == gpus and vllm["resources"]["requests"]["nvidia.com/gpu"] == str(gpus)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "nvidia-h100-80gb"}
    assert vllm["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = vllm["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    env = {e["name"]: e for e in vllm["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "huggingface", "key": "token"}}
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-credentials"
    assert "initContainers" not in pod


def test_vllm_optional_args():
    recipe = _variant("support-dev")
    model = recipe.model.model_copy(update={"revision": "abc123", "trust_remote_code": True, "token": None})
    serving = recipe.serving.model_copy(update={"served_model_name": "assistant", "max_model_len": None})
    recipe = recipe.model_copy(update={"model": model, "serving": serving})
    (vllm,) = server_template(docs_of(recipe))["spec"]["containers"]
    assert vllm["args"][vllm["args"].index("--served-model-name") + 1] == "assistant"
    assert vllm["args"][vllm["args"].index("--max-model-len") + 1] == "8192"  # model.max_model_len
    assert vllm["args"][-3:] == ["--revision", "abc123", "--trust-remote-code"]
    assert "--quantization" not in vllm["args"]
    assert "HF_TOKEN" not in {e["name"] for e in vllm["env"]}


TGI_PROD_ARGS = [
    "--model-id", "Qwen/Qwen2.5-1.5B-Instruct",
    "--num-shard", "1",
    "--max-input-length", "6144",
    "--max-total-tokens", "8192",
    "--max-concurrent-requests", "128",
    "--hostname", "0.0.0.0",
    "--port", "8000",
    "--usage-stats", "off",
    "--dtype", "bfloat16",
]


def test_tgi_server():
    recipe = _variant("support-tgi")
    pod = server_template(docs_of(recipe))["spec"]
    (tgi,) = pod["containers"]
    assert tgi["image"] == recipe.serving.image == "ghcr.io/huggingface/text-generation-inference:3.3.5"
    assert tgi["args"] == TGI_PROD_ARGS and "command" not in tgi
    assert k8s.gpus(tgi) == 1 and pod["nodeSelector"] == {"nvidia.com/gpu.product": "nvidia-h100-80gb"}
    assert tgi["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert tgi[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = tgi["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    env = {e["name"]: e for e in tgi["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "huggingface", "key": "token"}}
    assert env["HF_HOME"]["value"] == "/cache/huggingface"  # the image's /data is read-only here
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"


def test_tgi_quantized_sharded_and_defaults():
    recipe = _variant("support-tgi")
    model = recipe.model.model_copy(update={"quantization": "awq", "dtype": "float16", "revision": "abc123",
                                            "trust_remote_code": True, "max_model_len": 4096})
    serving = recipe.serving.model_copy(update={"tensor_parallel_size": 2, "max_input_length": None,
                                                "max_total_tokens": None})
    recipe = recipe.model_copy(update={"model": model, "serving": serving})
    (tgi,) = server_template(docs_of(recipe))["spec"]["containers"]
    args = tgi["args"]
    assert args[args.index("--num-shard") + 1] == "2" and k8s.gpus(tgi) == 2
    assert args[args.index("--max-total-tokens") + 1] == "4096"  # model.max_model_len
    assert args[args.index("--max-input-length") + 1] == "4095"  # TGI's default: all but one token
    assert args[-5:] == ["--quantize", "awq", "--revision", "abc123", "--trust-remote-code"]
    assert "--dtype" not in args  # TGI refuses --dtype with --quantize


SGLANG_PROD_ARGS = [
    "--model-path", "Qwen/Qwen2.5-1.5B-Instruct",
    "--tp-size", "1",
    "--mem-fraction-static", "0.85",
    "--context-length", "8192",
    "--served-model-name", "support-assistant",
    "--host", "0.0.0.0",
    "--port", "8000",
    "--dtype", "bfloat16",
    "--max-running-requests", "128",
    "--enable-metrics",
]


def test_sglang_server():
    """The same pod as vLLM's (GPUs, probes, caches, shared memory, secrets), running
    `python3 -m sglang.launch_server` with metrics on."""
    recipe = _variant("support-sglang")
    pod = server_template(docs_of(recipe))["spec"]
    (sglang,) = pod["containers"]
    assert sglang["image"] == recipe.serving.image == "lmsysorg/sglang:v0.5.9-cu129-amd64-runtime"
    assert sglang["command"] == ["python3", "-m", "sglang.launch_server"] and sglang["args"] == SGLANG_PROD_ARGS
    assert k8s.gpus(sglang) == 1 and pod["nodeSelector"] == {"nvidia.com/gpu.product": "nvidia-h100-80gb"}
    assert sglang["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert sglang[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = sglang["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    env = {e["name"]: e for e in sglang["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "huggingface", "key": "token"}}
    assert env["XDG_CACHE_HOME"]["value"] == "/cache"  # FlashInfer's JIT kernels under ~/.cache
    vllm_pod = server_template(docs_of(_variant("support-prod")))["spec"]
    assert {v["name"] for v in pod["volumes"]} == {v["name"] for v in vllm_pod["volumes"]}
    assert pod["securityContext"] == vllm_pod["securityContext"]
    assert sglang["securityContext"] == vllm_pod["containers"][0]["securityContext"]


def test_sglang_quantized_sharded_and_optional_args():
    recipe = _variant("support-sglang-awq-tp2")
    (sglang,) = server_template(docs_of(recipe))["spec"]["containers"]
    args = sglang["args"]
    assert args[args.index("--tp-size") + 1] == "2" and k8s.gpus(sglang) == 2
    assert args[args.index("--context-length") + 1] == "8192"  # serving.context_length
    assert args[-2:] == ["--quantization", "awq"] and "--load-format" not in args
    model = recipe.model.model_copy(update={"quantization": "bitsandbytes", "revision": "abc123", "trust_remote_code": True})
    serving = recipe.serving.model_copy(update={"context_length": None, "served_model_name": "assistant"})
    (sglang,) = server_template(docs_of(recipe.model_copy(update={"model": model, "serving": serving})))["spec"]["containers"]
    args = sglang["args"]
    assert args[args.index("--context-length") + 1] == "16384"  # model.max_model_len
    assert args[args.index("--served-model-name") + 1] == "assistant"
    assert args[-7:] == ["--quantization", "bitsandbytes", "--load-format", "bitsandbytes", "--revision", "abc123",
                         "--trust-remote-code"]


def test_triton_server_fetches_the_champion():
    recipe = _variant("churn-prod")
    pod = server_template(docs_of(recipe))["spec"]
    (triton,) = pod["containers"]
    assert triton["image"] == recipe.serving.image
    assert triton["args"] == [
        "tritonserver",
        "--model-repository=/models",
        "--http-port=8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
        "--metrics-config=summary_latencies=true",
    ]
    assert {p["name"]: p["containerPort"] for p in triton["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    startup = triton["startupProbe"]
    assert startup["httpGet"]["port"] == "http" and startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert k8s.gpus(triton) == 0 and "nodeSelector" not in pod
    (fetch,) = pod["initContainers"]
    assert fetch["image"] == recipe.deploy.image
    assert fetch["command"] == [
        "python", "-m", "framework.runtime.serving.fetch_model", "/etc/mlops/recipe.resolved.yaml", "/models",
    ]
    assert "/models" in k8s.writable_paths(fetch, pod)
    assert "/models" not in k8s.writable_paths(triton, pod)  # the server only reads it


def test_triton_remote_repository_needs_no_fetch():
    recipe = _variant("churn-dev")
    recipe = recipe.model_copy(update={"serving": recipe.serving.model_copy(update={"model_repository": "s3://models/churn"})})
    pod = server_template(docs_of(recipe))["spec"]
    assert "initContainers" not in pod
    assert "--model-repository=s3://models/churn" in pod["containers"][0]["args"]
    assert "models" not in {v["name"] for v in pod["volumes"]}


def test_triton_gpu_instances_get_a_gpu():
    recipe = _variant("churn-torchscript-gpu")
    pod = server_template(docs_of(recipe))["spec"]
    assert k8s.gpus(pod["containers"][0]) == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_serving_changes_roll_the_pods_and_other_edits_do_not():
    recipe = _variant("churn-dev")

    def template_annotations(r):
        return server_template(docs_of(r))["metadata"]["annotations"]

    base = template_annotations(recipe)
    alerts = recipe.monitoring.alerts.model_copy(update={"severity": "critical"})
    quiet = recipe.model_copy(update={"monitoring": recipe.monitoring.model_copy(update={"alerts": alerts})})
    batched = recipe.model_copy(update={"serving": recipe.serving.model_copy(update={"max_batch_size": 64})})
    assert template_annotations(quiet) == base
    assert template_annotations(batched) != base


def test_canary_hpa_follows_the_rollout_and_direct_the_deployment():
    canary = k8s.one(docs_of(_variant("churn-dev")), "HorizontalPodAutoscaler")
    direct = k8s.one(docs_of(_variant("churn-direct")), "HorizontalPodAutoscaler")
    assert canary["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "churn-server"}
    assert direct["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-server"}


def test_ray_serve_renders_only_shared_objects():
    paths = [a.path for a in kubernetes.render(_variant("churn-ray-serve"))]
    assert paths == ["k8s/configmap.yaml", "k8s/drift-cronjob.yaml", "k8s/serviceaccount.yaml"]


# --- jobs --------------------------------------------------------------------------------
def test_pytorchjob():
    recipe = _variant("churn-pytorchjob")
    job = k8s.one(docs_of(recipe), "PyTorchJob")
    training = recipe.training
    assert job["metadata"]["name"] == common.names(recipe).train_job
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] == training.workers - 1
    for spec in specs.values():
        assert spec["restartPolicy"] == "OnFailure"
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch" and container["image"] == recipe.deploy.image
        assert container["command"] == ["python", "-m", "framework.runtime.training", "/etc/mlops/recipe.resolved.yaml"]
        amounts = {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
        assert container["resources"] == {"requests": amounts, "limits": amounts}
        assert pod["nodeSelector"]["nvidia.com/gpu.product"] == training.gpu_type == "nvidia-h100-80gb"
    assert job["spec"]["runPolicy"] == {
        "backoffLimit": 0,
        "activeDeadlineSeconds": int(duration_seconds(training.timeout)),
        "ttlSecondsAfterFinished": 86400,
        "cleanPodPolicy": "None",
    }


def test_pytorchjob_single_worker_on_spot():
    recipe = _variant("churn-pytorchjob")
    spot = recipe.training.spot.model_copy(update={
        "enabled": True, "max_retries": 4, "node_selector": {"cloud.google.com/gke-spot": "true"},
        "tolerations": [Toleration(key="cloud.google.com/gke-spot", operator="Equal", value="true", effect="NoSchedule")],
    })
    training = recipe.training.model_copy(update={"workers": 1, "spot": spot})
    recipe = recipe.model_copy(update={"training": training})
    job = k8s.one(docs_of(recipe), "PyTorchJob")
    assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Master"]
    assert job["spec"]["runPolicy"]["backoffLimit"] == 4
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert pod["nodeSelector"]["cloud.google.com/gke-spot"] == "true"
    assert {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
    assert k8s.validate_crd(job, CRD_SCHEMAS) == []


def test_drift_cronjob(recipe):
    cronjobs = [d for d in k8s.of_kind(docs_of(recipe), "CronJob")
                if d["metadata"]["name"] == common.names(recipe).drift_cronjob]
    drift = recipe.monitoring.drift
    if drift is None:
        assert cronjobs == []
        return
    (cronjob,) = cronjobs
    spec = cronjob["spec"]
    assert cronjob["metadata"]["name"] == common.names(recipe).drift_cronjob
    assert spec["schedule"] == drift.schedule and spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job["activeDeadlineSeconds"] > 0
    (rule, disruption) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [3]  # drift: no retry
    # An evicted or preempted pod is retried without counting against backoffLimit.
    assert disruption == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    (container,) = job["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "framework.runtime.monitor", "/etc/mlops/recipe.resolved.yaml"]


# --- the module itself -------------------------------------------------------------------
def test_import_is_light():
    code = (
        "import sys, framework.targets.kubernetes\n"
        "heavy = {'torch', 'ray', 'mlflow', 'evidently', 'onnx', 'pandas', 'kubernetes_validate'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
