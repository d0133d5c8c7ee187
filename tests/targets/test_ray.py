"""The KubeRay target: RayJob, Ray Serve config and RayService, checked against the
KubeRay CRD schemas, Ray Serve's own config schema and the recipe they come from."""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import subprocess
import sys

import yaml
from jsonschema import validators

from framework import api
from framework.recipe.types import RECIPE_NAME_MAX, duration_seconds, quantity_value
from framework.targets import Artifact, common
from framework.targets import ray as ray_target
from tests.conftest import REPO
from tests.targets.conftest import CRD_SCHEMAS, load_variant

RAYJOB = "ray/rayjob.yaml"
SERVE_CONFIG = "ray/serve_config.yaml"
RAYSERVICE = "ray/rayservice.yaml"
ENTRYPOINT = "python -m framework.runtime.training /etc/mlops/recipe.resolved.yaml"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SPOT_TOLERATION = {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _render(recipe) -> dict[str, Artifact]:
    artifacts = ray_target.render(recipe)
    by_path = {a.path: a for a in artifacts}
    assert len(by_path) == len(artifacts), "two artifacts share a path"
    return by_path


def _doc(artifacts: dict[str, Artifact], path: str) -> dict:
    return yaml.safe_load(artifacts[path].text)


def _has_ray_training(recipe) -> bool:
    return recipe.training is not None and recipe.training.engine == "ray"


def _serves_on_ray(recipe) -> bool:
    return recipe.serving.backend in ("ray_serve", "ray_serve_llm")


@functools.cache
def _crd_validator(kind: str):
    schema = json.loads((CRD_SCHEMAS / "ray.io" / f"{kind.lower()}_v1.json").read_text())
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _crd_errors(doc: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _crd_validator(doc["kind"]).iter_errors(doc)]


def _cluster(doc: dict) -> dict:
    return doc["spec"]["rayClusterSpec" if doc["kind"] == "RayJob" else "rayClusterConfig"]


def _pod_templates(doc: dict) -> list[dict]:
    cluster = _cluster(doc)
    templates = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    if "submitterPodTemplate" in doc["spec"]:
        templates.append(doc["spec"]["submitterPodTemplate"])
    return templates


def _volume_at(template: dict, path: str) -> dict:
    (container,) = template["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == mount["name"]]
    return volume


# --- which artifacts ------------------------------------------------------------------


def test_renders_the_ray_artifacts_the_recipe_needs(recipe):
    artifacts = _render(recipe)
    expected = {RAYJOB} if _has_ray_training(recipe) else set()
    if _serves_on_ray(recipe):
        expected |= {SERVE_CONFIG, RAYSERVICE}
    assert set(artifacts) == expected
    for artifact in artifacts.values():
        assert artifact.scope == "env"
        assert artifact.text.startswith(common.header(recipe))


def test_no_rayjob_without_ray_training():
    support, pytorchjob, churn = load_variant("support-dev"), load_variant("churn-pytorchjob"), load_variant("churn-dev")
    assert support.training is None and _render(support) == {}
    assert pytorchjob.training.engine == "pytorchjob" and RAYJOB not in _render(pytorchjob)
    assert _render(churn).keys() == {RAYJOB}


# --- schemas ----------------------------------------------------------------------------


def test_custom_resources_match_the_kuberay_crds(recipe):
    docs = [yaml.safe_load(a.text) for p, a in _render(recipe).items() if p != SERVE_CONFIG]
    assert sorted(d["kind"] for d in docs) == sorted(
        (["RayJob"] if _has_ray_training(recipe) else []) + (["RayService"] if _serves_on_ray(recipe) else [])
    )
    for doc in docs:
        assert doc["apiVersion"] == "ray.io/v1"
        assert _crd_errors(doc) == []


def test_crd_schema_rejects_a_misspelled_field():
    job = _doc(_render(load_variant("churn-dev")), RAYJOB)
    broken = copy.deepcopy(job)
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["imagee"] = "x:1"
    assert _crd_errors(job) == []
    assert any("imagee" in e for e in _crd_errors(broken))


# Ray Serve's schemas (ServeDeploySchema and the models under it) validated in a child
# process, so importing ray.serve leaves this one alone. Serve ignores unknown keys
# (forward compatibility), so the child also lists keys Ray does not know. Ray Serve
# LLM's application args: each LLMConfig through Ray's own model (importable without
# vLLM, unlike ray.serve.llm), its deployment_config as a Serve deployment's options.
_RAY_SERVE_CHECK = r"""
import json, sys
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema, HTTPOptionsSchema, RayActorOptionsSchema, ServeApplicationSchema, ServeDeploySchema,
)

def unknown(data, model):
    return sorted(set(data) - set(model.model_fields))

def check_deployment(deployment, extra):
    DeploymentSchema.model_validate({"name": "x", **deployment})
    AutoscalingConfig.model_validate(deployment["autoscaling_config"])
    extra += unknown(deployment, DeploymentSchema)
    extra += unknown(deployment["autoscaling_config"], AutoscalingConfig)
    extra += unknown(deployment.get("ray_actor_options", {}), RayActorOptionsSchema)

results = []
for config in json.load(sys.stdin):
    try:
        ServeDeploySchema.model_validate(config)
        extra = unknown(config, ServeDeploySchema) + unknown(config["http_options"], HTTPOptionsSchema)
        for app in config["applications"]:
            extra += unknown(app, ServeApplicationSchema)
            for deployment in app.get("deployments", []):
                check_deployment(deployment, extra)
            if app["import_path"] == "ray.serve.llm:build_openai_app":
                from ray.llm._internal.serve.core.configs.llm_config import LLMConfig
                extra += sorted(set(app["args"]) - {"llm_configs", "ingress_cls_config", "ingress_deployment_config"})
                for llm in app["args"]["llm_configs"]:
                    LLMConfig.model_validate(llm)
                    check_deployment(llm["deployment_config"], extra)
        results.append("unknown keys: %s" % extra if extra else "ok")
    except Exception as exc:
        results.append("%s: %s" % (type(exc).__name__, exc))
print(json.dumps(results))
"""


def _ray_serve_verdicts(configs: list[dict]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _RAY_SERVE_CHECK], input=json.dumps(configs), capture_output=True, text=True,
        cwd=REPO, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_serve_config_is_accepted_by_ray_serve():
    config = _doc(_render(load_variant("churn-ray-serve")), SERVE_CONFIG)
    too_few = copy.deepcopy(config)  # controls: Ray must reject these
    too_few["applications"][0]["deployments"][0]["autoscaling_config"]["max_replicas"] = 0
    typo = copy.deepcopy(config)
    typo["applications"][0]["deployments"][0]["max_ongoing_request"] = 8
    llm = _doc(_render(load_variant("support-ray-serve-llm")), SERVE_CONFIG)
    llm_typo = copy.deepcopy(llm)
    llm_typo["applications"][0]["args"]["llm_configs"][0]["engine_kwarg"] = {}
    llm_deployment_typo = copy.deepcopy(llm)
    llm_deployment_typo["applications"][0]["args"]["llm_configs"][0]["deployment_config"]["max_ongoing_request"] = 8
    good, bad, misspelled, llm_good, llm_bad, llm_misspelled = _ray_serve_verdicts(
        [config, too_few, typo, llm, llm_typo, llm_deployment_typo]
    )
    assert good == "ok" and llm_good == "ok"
    assert bad.startswith("ValidationError") and "max_replicas" in bad
    assert misspelled == "unknown keys: ['max_ongoing_request']"
    assert llm_bad.startswith("ValidationError") and "engine_kwarg" in llm_bad
    assert llm_misspelled == "unknown keys: ['max_ongoing_request']"


# --- RayJob -------------------------------------------------------------------------------


def test_rayjob_follows_the_training_section(recipe):
    artifacts = _render(recipe)
    if not _has_ray_training(recipe):
        assert RAYJOB not in artifacts
        return
    training, deploy = recipe.training, recipe.deploy
    job = _doc(artifacts, RAYJOB)
    spec = job["spec"]
    assert job["metadata"] == common.metadata(recipe, common.names(recipe).train_job, "training")
    assert spec["entrypoint"] == ENTRYPOINT
    assert spec["activeDeadlineSeconds"] == int(duration_seconds(training.timeout)) > 0
    assert spec["backoffLimit"] == (training.spot.max_retries if training.spot.enabled else 0)
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0

    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env["MLOPS_RECIPE"] == "/etc/mlops/recipe.resolved.yaml"
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env.get("MLFLOW_TRACKING_URI") == recipe.tracking.uri
    assert all(isinstance(v, str) for v in env.values())

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0"
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    (head_container,) = head["template"]["spec"]["containers"]
    assert head_container["image"] == deploy.image
    assert head_container["resources"] == common.resources(training.head.cpu, training.head.memory)
    assert head["template"]["spec"]["serviceAccountName"] == deploy.service_account
    assert _volume_at(head["template"], "/etc/mlops") == common.recipe_volume(recipe)[0]
    for secret in common.secret_env(recipe):
        assert secret in head_container["env"]

    (workers,) = cluster["workerGroupSpecs"]
    assert workers["groupName"] == "workers"
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == training.workers
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["image"] == deploy.image
    assert quantity_value(worker["resources"]["limits"]["cpu"]) == training.cpus_per_worker
    assert worker["resources"]["limits"]["memory"] == training.memory_per_worker
    gpus = worker["resources"]["limits"].get("nvidia.com/gpu")
    assert gpus == (str(math.ceil(training.gpus_per_worker)) if training.gpus_per_worker else None)
    assert workers["rayStartParams"].get("num-gpus") == gpus
    tolerations = workers["template"]["spec"].get("tolerations", [])
    assert (GPU_TOLERATION in tolerations) == bool(training.gpus_per_worker)
    for toleration in training.spot.tolerations if training.spot.enabled else []:
        assert common.toleration(toleration) in tolerations


def test_rayjob_for_spot_gpu_training():
    recipe = load_variant("churn-ray-gpu")
    spec = _doc(_render(recipe), RAYJOB)["spec"]
    assert spec["backoffLimit"] == 5
    assert spec["activeDeadlineSeconds"] == 4 * 3600
    (workers,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert (workers["replicas"], workers["minReplicas"], workers["maxReplicas"]) == (2, 2, 2)
    assert workers["rayStartParams"] == {"num-gpus": "1"}
    pod = workers["template"]["spec"]
    amounts = {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert pod["containers"][0]["resources"] == {"requests": amounts, "limits": amounts}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "nvidia-h100-80gb", "cloud.google.com/gke-spot": "true"}
    assert pod["tolerations"] == [GPU_TOLERATION, SPOT_TOLERATION]
    # the head is neither on GPU nor on spot nodes: losing it loses the job
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert "nodeSelector" not in head and "tolerations" not in head
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]


def test_rayjob_for_cpu_training_has_no_gpu_nor_spot():
    spec = _doc(_render(load_variant("churn-dev")), RAYJOB)["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 3600
    (workers,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert workers["rayStartParams"] == {}
    pod = workers["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "MLFLOW_TRACKING_URI" not in spec["runtimeEnvYAML"]


def test_cpu_quantity():
    assert [ray_target.cpu_quantity(c) for c in (1.0, 4, 0.5, 2.25)] == ["1", "4", "500m", "2250m"]


# --- security -------------------------------------------------------------------------------


def test_every_ray_pod_is_locked_down(recipe):
    docs = [yaml.safe_load(a.text) for p, a in _render(recipe).items() if p != SERVE_CONFIG]
    assert len(docs) == _has_ray_training(recipe) + _serves_on_ray(recipe)
    for doc in docs:
        templates = _pod_templates(doc)
        assert len(templates) == (3 if doc["kind"] == "RayJob" else 2)
        for template in templates:
            pod = template["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert _volume_at(template, "/tmp") == {"name": "tmp", "emptyDir": {}}
            for container in pod["containers"]:
                assert container["securityContext"] == common.container_security_context(read_only_root=True)
                assert container["resources"]["requests"] == container["resources"]["limits"]
        for template in _pod_templates(doc)[:2]:  # head and workers export Ray's metrics
            assert {"name": "metrics", "containerPort": 8080} in template["spec"]["containers"][0]["ports"]
        if doc["kind"] == "RayService":  # KubeRay's autoscaler sidecar, too
            options = _cluster(doc)["autoscalerOptions"]
            assert options["securityContext"] == common.container_security_context(read_only_root=True)
            assert {"name": "tmp", "mountPath": "/tmp"} in options["volumeMounts"]
        submitter = doc["spec"].get("submitterPodTemplate")
        if submitter:
            assert submitter["spec"]["restartPolicy"] == "Never"
            assert "valueFrom" not in json.dumps(submitter), "the submitter needs no secrets"


# --- Ray Serve ------------------------------------------------------------------------------


def test_serve_config_follows_the_serving_section():
    recipe = load_variant("churn-ray-serve")
    serving = recipe.serving
    config = _doc(_render(recipe), SERVE_CONFIG)
    assert config["http_options"] == {"host": "0.0.0.0", "port": serving.port}
    (app,) = config["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == ("churn", "/", "framework.runtime.serving.ray_host:app")
    assert app["args"] == {"recipe": "/etc/mlops/recipe.resolved.yaml"}
    assert app["runtime_env"]["env_vars"]["MLOPS_RECIPE"] == "/etc/mlops/recipe.resolved.yaml"
    (deployment,) = app["deployments"]
    assert deployment["name"] == ray_target.SERVE_DEPLOYMENT
    assert deployment["max_ongoing_requests"] == serving.max_ongoing_requests == 128
    assert deployment["max_ongoing_requests"] >= serving.max_batch_size
    autoscaling = deployment["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (serving.replicas.min, serving.replicas.max)
    assert autoscaling["target_ongoing_requests"] == 81  # 64% of 128
    assert deployment["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0, "memory": 2 * 2**30}


def test_rayservice_embeds_the_serve_config_and_sizes_workers():
    recipe = load_variant("churn-ray-serve")
    serving = recipe.serving
    artifacts = _render(recipe)
    service = _doc(artifacts, RAYSERVICE)
    assert service["metadata"]["name"] == common.names(recipe).ray_service == "churn-serve"
    assert service["spec"]["serveConfigV2"] == artifacts[SERVE_CONFIG].text
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == _doc(artifacts, SERVE_CONFIG)

    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    (head_container,) = head["template"]["spec"]["containers"]
    assert {"name": "serve", "containerPort": serving.port} in head_container["ports"]
    (workers,) = cluster["workerGroupSpecs"]
    assert (workers["replicas"], workers["minReplicas"], workers["maxReplicas"]) == (
        serving.replicas.min, serving.replicas.min, serving.replicas.max,
    )
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["image"] == head_container["image"] == serving.image
    assert worker["resources"] == common.resources(serving.resources.cpu, serving.resources.memory)
    for template in (head["template"], workers["template"]):
        assert _volume_at(template, "/etc/mlops") == common.recipe_volume(recipe)[0]


def test_rayservice_runs_serves_high_throughput_mode_on_every_pod():
    """HAProxy on the serve port of every pod, forwarding to the replicas' own HTTP servers
    (Ray reads the variables when its processes start: the pod env, not the app's
    runtime_env); the ingress deployment writes no access log line per request."""
    from framework.contracts.ray import SERVE_ENV, SERVE_LOGGING

    artifacts = _render(load_variant("churn-ray-serve"))
    cluster = _doc(artifacts, RAYSERVICE)["spec"]["rayClusterConfig"]
    (head,) = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    (workers,) = cluster["workerGroupSpecs"]
    (worker,) = workers["template"]["spec"]["containers"]
    assert SERVE_ENV == {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
    for container in (head, worker):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {name: env.get(name) for name in SERVE_ENV} == SERVE_ENV
    (deployment,) = _doc(artifacts, SERVE_CONFIG)["applications"][0]["deployments"]
    assert deployment["logging_config"] == SERVE_LOGGING == {"enable_access_log": False, "log_level": "WARNING"}
    # Ray Serve LLM's own app keeps Serve's defaults
    llm = _doc(_render(load_variant("support-ray-serve-llm")), RAYSERVICE)["spec"]["rayClusterConfig"]
    (llm_worker,) = llm["workerGroupSpecs"][0]["template"]["spec"]["containers"]
    assert not {e["name"] for e in llm_worker["env"]} & set(SERVE_ENV)


def test_ray_serve_llm_serves_the_model_with_its_engine():
    recipe = load_variant("support-ray-serve-llm")
    serving, model = recipe.serving, recipe.model
    artifacts = _render(recipe)
    config = _doc(artifacts, SERVE_CONFIG)
    assert config["http_options"] == {"host": "0.0.0.0", "port": serving.port}
    (app,) = config["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == (
        "support-assistant", "/", "ray.serve.llm:build_openai_app",
    )
    (llm,) = app["args"]["llm_configs"]
    assert llm["model_loading_config"] == {"model_id": "support-assistant", "model_source": model.source}
    assert llm["engine_kwargs"] == {
        "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9, "max_model_len": 8192, "max_num_seqs": 128,
        "dtype": "bfloat16",
    }
    deployment = llm["deployment_config"]
    assert deployment["max_ongoing_requests"] == serving.max_ongoing_requests == 128
    autoscaling = deployment["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (serving.replicas.min, serving.replicas.max)
    assert autoscaling["target_ongoing_requests"] == 102  # 80% of 128

    service = _doc(artifacts, RAYSERVICE)
    assert service["spec"]["serveConfigV2"] == artifacts[SERVE_CONFIG].text
    cluster = service["spec"]["rayClusterConfig"]
    (workers,) = cluster["workerGroupSpecs"]
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["image"] == serving.image == "rayproject/ray-llm:2.60.0-py311-cu128"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1" and workers["rayStartParams"] == {"num-gpus": "1"}
    assert workers["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "nvidia-h100-80gb"}
    assert _volume_at(workers["template"], "/dev/shm")["emptyDir"]["medium"] == "Memory"
    env = {e["name"]: e for e in worker["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "huggingface", "key": "token"}}


def test_ray_serve_llm_optional_engine_arguments():
    recipe = load_variant("support-ray-serve-llm")
    model = recipe.model.model_copy(update={"quantization": "awq", "revision": "abc123", "trust_remote_code": True})
    serving = recipe.serving.model_copy(update={"served_model_name": "assistant", "max_model_len": None,
                                                "tensor_parallel_size": 2})
    llm = ray_target.llm_config(recipe.model_copy(update={"model": model, "serving": serving}))
    assert llm["model_loading_config"]["model_id"] == "assistant"
    kwargs = llm["engine_kwargs"]
    assert (kwargs["quantization"], kwargs["revision"], kwargs["trust_remote_code"]) == ("awq", "abc123", True)
    assert kwargs["max_model_len"] == model.max_model_len and kwargs["tensor_parallel_size"] == 2


def test_ray_llm_vllm_version_is_the_one_ray_pins():
    from tests.targets.vllm_source import ray_llm_pin

    assert ray_target.RAY_LLM_VLLM_VERSION == ray_llm_pin()
    assert ray_target.RAY_VERSION in load_variant("support-ray-serve-llm").serving.image


# --- names and determinism ----------------------------------------------------------------


def _names_in(node, key_path=()):
    """(where, name) of every object, container, volume, port and group name; env
    entries are skipped (variable names, not DNS names)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("name", "groupName") and isinstance(value, str):
                yield ".".join(key_path + (key,)), value
            elif key != "env":
                yield from _names_in(value, key_path + (key,))
    elif isinstance(node, list):
        for item in node:
            yield from _names_in(item, key_path)


def _assert_names_fit(recipe):
    docs = [yaml.safe_load(a.text) for p, a in _render(recipe).items() if p != SERVE_CONFIG]
    for doc in docs:
        found = list(_names_in(doc))
        assert ("metadata.name", doc["metadata"]["name"]) in found
        assert any(where.endswith("containers.name") for where, _ in found)
        for where, name in found:
            if where.endswith("ports.name"):
                assert len(name) <= 15 and IANA_SVC_NAME.match(name), (where, name)
            else:
                assert len(name) <= 63 and DNS1123_LABEL.match(name), (where, name)
        for labels in [doc["metadata"]["labels"]] + [t["metadata"]["labels"] for t in _pod_templates(doc)]:
            assert all(len(v) <= 63 for v in labels.values())
    return docs


def test_object_names_fit_kubernetes(recipe):
    docs = _assert_names_fit(recipe)
    assert len(docs) == _has_ray_training(recipe) + _serves_on_ray(recipe)


def test_names_fit_with_the_longest_recipe_name():
    longest = "r" * RECIPE_NAME_MAX
    recipe = api.load_recipe("churn", overrides=[f"name={longest}", "serving=ray_serve"], project=REPO).recipe
    docs = _assert_names_fit(recipe)
    assert {d["metadata"]["name"] for d in docs} == {f"{longest}-train", f"{longest}-serve"}


def test_rendering_is_deterministic(recipe):
    first = ray_target.render(recipe)
    again = ray_target.render(recipe.model_copy(deep=True))
    assert [(a.path, a.text.encode()) for a in first] == [(a.path, a.text.encode()) for a in again]


def test_module_imports_no_ray():
    code = "import sys, framework.targets.ray; print(sorted(m for m in ('ray', 'torch', 'mlflow') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_entrypoint_module_exists_and_runs_the_resolved_recipe(tmp_path):
    """The RayJob's entrypoint is a real module whose CLI takes the resolved recipe."""
    import importlib.util

    module = ENTRYPOINT.split()[2]
    assert importlib.util.find_spec(module) is not None
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and "recipe.resolved.yaml" in done.stdout
    bad = tmp_path / "recipe.resolved.yaml"
    bad.write_text("name: x\n")
    done = subprocess.run([sys.executable, "-m", module, str(bad)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1
    assert f"{bad}: model: required key missing" in done.stderr and "Traceback" not in done.stderr
