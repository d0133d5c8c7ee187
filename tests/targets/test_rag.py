"""The rag target (recipes with a `rag` section): the index RayJob, the RAG service's Ray
Serve config and RayService, and the vector store's PersistentVolumeClaim (kubernetes
target), checked against the KubeRay CRD schemas, Ray Serve's own schema,
kubernetes-validate and the runtime entrypoints they name."""

from __future__ import annotations

import json
import posixpath
import re
import subprocess
import sys

import pytest
import yaml

from framework import api
from framework.contracts.ray import RAG_DEPLOYMENT, RAG_MAX_ONGOING_REQUESTS
from framework.errors import MlopsError
from framework.recipe.types import RECIPE_NAME_MAX
from framework.targets import common, kubernetes, rag
from framework.targets import ray as ray_target
from tests.conftest import REPO
from tests.targets import k8s_checks as k8s
from tests.targets.conftest import load_variant
from tests.targets.test_ray import _crd_errors, _ray_serve_verdicts

RAG_VARIANTS = ("support-dev", "support-staging", "support-prod", "support-awq-tp2", "support-sglang", "support-sglang-awq-tp2", "support-tgi",
                "support-ray-serve-llm")
STORE = "/app/.mlops/vectors/support-assistant"  # project_docs' .mlops/vectors/support-assistant under /app
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# KubeRay names the cluster of a RayJob or RayService `<name>-raycluster-xxxxx` and its
# head Service `<cluster>-head-svc` (GenerateRayClusterName, GenerateHeadServiceName).
KUBERAY_HEAD_SVC_SUFFIX = len("-raycluster-xxxxx-head-svc")


def _render(recipe) -> dict[str, str]:
    return {a.path: a.text for a in rag.render(recipe)}


def _docs(recipe) -> tuple[dict, dict, dict]:
    files = _render(recipe)
    return (yaml.safe_load(files[rag.INDEX_RAYJOB]), yaml.safe_load(files[rag.SERVE_CONFIG]),
            yaml.safe_load(files[rag.RAYSERVICE]))


def _pvc(recipe) -> dict:
    return kubernetes.objects(recipe)[rag.VECTORS_PVC]


def _mounts(template: dict) -> dict[str, dict]:
    """mountPath -> volume of the template's only container."""
    (container,) = template["spec"]["containers"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}


def _with(recipe, **rag_update):
    section = recipe.rag.model_copy(update=rag_update)
    return recipe.model_copy(update={"rag": section})


def _with_store(recipe, path: str):
    return _with(recipe, vector_store=recipe.rag.vector_store.model_copy(update={"path": path}))


@pytest.fixture(params=RAG_VARIANTS)
def rag_recipe(request: pytest.FixtureRequest):
    return load_variant(request.param)


# --- which artifacts ---------------------------------------------------------------------


def test_renders_for_rag_recipes_only(recipe):
    files = _render(recipe)
    pvc = rag.VECTORS_PVC in kubernetes.objects(recipe)
    if recipe.rag is None:
        assert files == {} and not pvc
        return
    assert sorted(files) == ["ray/rag-index-rayjob.yaml", "ray/rag-rayservice.yaml", "ray/rag_serve_config.yaml"]
    assert all(text.startswith(common.header(recipe)) for text in files.values())
    assert pvc


def test_every_rag_variant_is_tested():
    from tests.targets.conftest import VARIANTS

    assert {v for v in VARIANTS if load_variant(v).rag is not None} == set(RAG_VARIANTS)


# --- real validators ---------------------------------------------------------------------


def test_custom_resources_match_the_kuberay_crds(rag_recipe):
    job, _, service = _docs(rag_recipe)
    assert (job["apiVersion"], job["kind"], service["apiVersion"], service["kind"]) == (
        "ray.io/v1", "RayJob", "ray.io/v1", "RayService")
    assert _crd_errors(job) == []
    assert _crd_errors(service) == []


def test_the_crd_schema_catches_a_misspelled_volume_field():
    job, _, _ = _docs(load_variant("support-dev"))
    job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaims"] = {}
    assert any("persistentVolumeClaims" in e for e in _crd_errors(job))


def test_pvc_passes_kubernetes_validate_strict(rag_recipe):
    assert k8s.validate_core(_pvc(rag_recipe)) == []


def test_serve_config_is_accepted_by_ray_serve():
    configs = [_docs(load_variant(v))[1] for v in RAG_VARIANTS]
    typo = json.loads(json.dumps(configs[0]))
    typo["applications"][0]["deployments"][0]["max_ongoing_request"] = 8
    verdicts = _ray_serve_verdicts(configs + [typo])
    assert verdicts[:-1] == ["ok"] * len(configs)
    assert verdicts[-1] == "unknown keys: ['max_ongoing_request']"  # the control: Ray's schema is really applied


_RAG_SERVER_CHECK = r"""
import inspect, json
from framework.runtime.rag import ray_host
server = ray_host.RagServer
# serve.ingress wraps the class; the constructor is the one written in ray_host.py
(init,) = [c.__dict__["__init__"] for c in server.func_or_class.__mro__
           if getattr(getattr(c.__dict__.get("__init__"), "__code__", None), "co_filename", None) == ray_host.__file__]
print(json.dumps({
    "deployment": server.name,
    "init": list(inspect.signature(init).parameters)[1:],
    "builder": list(inspect.signature(ray_host.app).parameters),
}))
"""


def test_the_import_path_and_deployment_are_the_runtimes():
    """Serve imports `framework.runtime.rag.ray_host:app` (a builder taking `args`) and
    refuses options for a deployment the application does not have: it is RagServer,
    whose constructor takes the args the config passes."""
    module, _, attribute = rag.SERVICE_IMPORT_PATH.partition(":")
    assert (module, attribute) == ("framework.runtime.rag.ray_host", "app")
    done = subprocess.run([sys.executable, "-c", _RAG_SERVER_CHECK], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["deployment"] == RAG_DEPLOYMENT == "RagServer"
    assert found["builder"] == ["args"]
    (app,) = _docs(load_variant("support-dev"))[1]["applications"]
    assert found["init"] == ["recipe", "root", "llm_endpoint"] and set(app["args"]) == set(found["init"])


def test_the_index_entrypoint_module_runs_the_resolved_recipe(tmp_path):
    module = rag.index_entrypoint().split()[2]
    assert module == "framework.runtime.rag.index"
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and "recipe.resolved.yaml" in done.stdout
    assert "--root" in done.stdout and "--state-dir" in done.stdout
    bad = tmp_path / "recipe.resolved.yaml"
    bad.write_text("name: x\n")
    done = subprocess.run([sys.executable, "-m", module, str(bad)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1
    assert f"{bad}: model: required key missing" in done.stderr and "Traceback" not in done.stderr


# --- the index RayJob ----------------------------------------------------------------------


def test_index_rayjob(rag_recipe):
    job, _, _ = _docs(rag_recipe)
    spec = job["spec"]
    assert job["metadata"] == common.metadata(rag_recipe, f"{rag_recipe.name}-index", "rag-index")
    assert spec["entrypoint"] == (
        "python -m framework.runtime.rag.index /etc/mlops/recipe.resolved.yaml --root /app --state-dir /app/.mlops")
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == ray_target.RAYJOB_TTL_SECONDS
    assert spec["activeDeadlineSeconds"] > 0 and spec["backoffLimit"] == rag.INDEX_RETRIES
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env["MLOPS_RECIPE"] == "/etc/mlops/recipe.resolved.yaml" and env["OMP_NUM_THREADS"] == "2"

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray_target.RAY_VERSION
    assert "workerGroupSpecs" not in cluster  # the driver (the indexer) runs on the head
    head = cluster["headGroupSpec"]["template"]
    (container,) = head["spec"]["containers"]
    assert container["image"] == rag_recipe.deploy.image
    assert container["resources"] == common.resources(*rag.INDEX_HEAD_RESOURCES)
    mounts = _mounts(head)
    assert mounts[STORE] == {"name": "rag-vectors", "persistentVolumeClaim": {"claimName": "support-assistant-rag-vectors"}}
    assert mounts["/app/.mlops"] == {"name": "mlops-state", "emptyDir": {"sizeLimit": rag.STATE_SIZE_LIMIT}}
    assert mounts["/etc/mlops"] == common.recipe_volume(rag_recipe)[0]
    assert mounts["/tmp"] == {"name": "tmp", "emptyDir": {}}
    submitter = spec["submitterPodTemplate"]
    assert set(_mounts(submitter)) == {"/tmp"}  # only the job's driver opens the store
    assert submitter["metadata"]["labels"]["app.kubernetes.io/component"] == "rag-index"


# --- the RAG service -----------------------------------------------------------------------


def test_serve_config(rag_recipe):
    _, config, _ = _docs(rag_recipe)
    serving = rag_recipe.serving
    assert config["http_options"] == {"host": "0.0.0.0", "port": serving.port}
    (app,) = config["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == (
        "support-assistant-rag", "/", "framework.runtime.rag.ray_host:app")
    assert app["args"]["recipe"] == "/etc/mlops/recipe.resolved.yaml" and app["args"]["root"] == "/app"
    assert app["runtime_env"]["env_vars"]["MLOPS_RECIPE"] == "/etc/mlops/recipe.resolved.yaml"
    (deployment,) = app["deployments"]
    assert deployment["name"] == "RagServer" and deployment["max_ongoing_requests"] == RAG_MAX_ONGOING_REQUESTS
    autoscaling = deployment["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (serving.replicas.min, serving.replicas.max)
    assert 1 <= autoscaling["target_ongoing_requests"] <= RAG_MAX_ONGOING_REQUESTS
    assert deployment["ray_actor_options"] == {"num_cpus": 2.0} and deployment["max_replicas_per_node"] == 1


def test_the_llm_endpoint_is_the_recipes_generation_server(rag_recipe):
    """vLLM and TGI: the Deployment's Service (rendered by the kubernetes target, on
    serving.port); Ray Serve LLM: KubeRay's serve Service of the RayService (whose
    serve port is serving.port)."""
    url = _docs(rag_recipe)[1]["applications"][0]["args"]["llm_endpoint"]
    match = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:([0-9]+)", url)
    assert match, url
    host, namespace, port = match.group(1), match.group(2), int(match.group(3))
    assert namespace == rag_recipe.deploy.namespace and port == rag_recipe.serving.port
    if rag_recipe.serving.backend == "ray_serve_llm":
        service = yaml.safe_load(ray_target.render(rag_recipe)[1].text)  # ray/rayservice.yaml
        assert service["kind"] == "RayService" and host == f"{service['metadata']['name']}-serve-svc"
        head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        assert {"name": "serve", "containerPort": port} in head["ports"]
    else:
        service = kubernetes.objects(rag_recipe)["service.yaml"]
        assert host == service["metadata"]["name"] == common.names(rag_recipe).service
        assert port in [p["port"] for p in service["spec"]["ports"]]


def test_rag_llm_endpoint_wins():
    recipe = _with(load_variant("support-dev"), llm_endpoint="ollama://ollama.tools:11434")
    assert rag.serve_config(recipe)["applications"][0]["args"]["llm_endpoint"] == "ollama://ollama.tools:11434"


def test_rayservice_embeds_the_config_and_mounts_the_store_in_its_workers(rag_recipe):
    files = _render(rag_recipe)
    _, config, service = _docs(rag_recipe)
    assert service["metadata"] == common.metadata(rag_recipe, "support-assistant-rag", "rag")
    assert service["spec"]["serveConfigV2"] == files[rag.SERVE_CONFIG]
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == config
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert STORE not in _mounts(head["template"])  # replicas never run on the head
    (workers,) = cluster["workerGroupSpecs"]
    replicas = rag_recipe.serving.replicas
    assert (workers["replicas"], workers["minReplicas"], workers["maxReplicas"]) == (replicas.min, replicas.min, replicas.max)
    assert workers["rayStartParams"] == {}
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["image"] == rag_recipe.deploy.image
    assert worker["resources"] == common.resources(*rag.REPLICA_RESOURCES)
    assert {"name": "serve", "containerPort": rag_recipe.serving.port} in worker["ports"]
    assert {"name": "metrics", "containerPort": 8080} in worker["ports"]  # ray_mlops_* (see metrics.py)
    mounts = _mounts(workers["template"])
    assert mounts[STORE]["persistentVolumeClaim"]["claimName"] == _pvc(rag_recipe)["metadata"]["name"]
    assert "emptyDir" in mounts["/app/.mlops"]
    assert "nodeSelector" not in workers["template"]["spec"] and "tolerations" not in workers["template"]["spec"]


def test_cpu_only_and_locked_down(rag_recipe):
    job, _, service = _docs(rag_recipe)
    for doc in (job, service):
        text = json.dumps(doc)
        assert "nvidia.com/gpu" not in text and "/dev/shm" not in text
        assert "HF_TOKEN" not in text, "the RAG pods download nothing: no hub token"
        for where, pod in k8s.pod_specs(doc["spec"]):
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            for container in pod["containers"]:
                assert k8s.check_container(container, pod) == [], where
                assert "/tmp" in k8s.writable_paths(container, pod), where
    options = service["spec"]["rayClusterConfig"]["autoscalerOptions"]
    assert options["securityContext"] == common.container_security_context(read_only_root=True)


# --- the store's volume and paths ----------------------------------------------------------


def test_pvc(rag_recipe):
    pvc = _pvc(rag_recipe)
    assert pvc["metadata"] == common.metadata(rag_recipe, "support-assistant-rag-vectors", "rag")
    assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem",
                           "resources": {"requests": {"storage": rag.VECTORS_SIZE}}}


@pytest.mark.parametrize("path, store", [
    (".mlops/vectors/support-assistant", STORE),
    ("data/../vectors", "/app/vectors"),
    ("/var/lib/vectors", "/var/lib/vectors"),
    ("~/vectors", "/tmp/vectors"),
])
def test_the_store_is_mounted_where_the_runtime_opens_it(path, store):
    """The runtime opens `rag.vector_store.path` under the root it is given (store.store_path)."""
    from framework.runtime.rag.store import store_path

    recipe = _with_store(load_variant("support-dev"), path)
    assert rag.store_path_in_pod(recipe) == store
    if not path.startswith("~"):
        assert posixpath.normpath(str(store_path(recipe.rag, common.PROJECT_ROOT_IN_POD))) == store
    job = rag.index_rayjob(recipe)
    assert store in _mounts(job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"])


def test_a_store_covering_the_state_dir_replaces_it():
    recipe = _with_store(load_variant("support-dev"), ".mlops")
    mounts = _mounts(rag.index_rayjob(recipe)["spec"]["rayClusterSpec"]["headGroupSpec"]["template"])
    assert "persistentVolumeClaim" in mounts["/app/.mlops"] and "mlops-state" not in json.dumps(mounts)


@pytest.mark.parametrize("path, covered", [(".", "/app"), ("..", "/app"), ("/tmp", "/tmp"), ("/etc", "/etc/mlops")])
def test_a_store_that_would_cover_the_project_or_a_mount_is_refused(path, covered):
    recipe = _with_store(load_variant("support-dev"), path)
    with pytest.raises(MlopsError) as caught:
        rag.render(recipe)
    message = str(caught.value)
    assert message.startswith("rag.vector_store.path: ") and f"would cover {covered}" in message


# --- names and determinism ---------------------------------------------------------------


def test_names_fit_with_the_longest_recipe_name():
    longest = "r" * RECIPE_NAME_MAX
    recipe = api.load_recipe("support_assistant", overrides=[f"name={longest}"], project=REPO).recipe
    job, config, service = _docs(recipe)
    pvc = _pvc(recipe)
    for doc in (job, service):
        assert len(doc["metadata"]["name"]) + KUBERAY_HEAD_SVC_SUFFIX <= 63, doc["metadata"]["name"]
    assert len(f"{service['metadata']['name']}-serve-svc") <= 63
    for name in (job["metadata"]["name"], service["metadata"]["name"], pvc["metadata"]["name"],
                 config["applications"][0]["name"]):
        assert len(name) <= 63 and DNS1123_LABEL.match(name), name
    assert {job["metadata"]["name"], service["metadata"]["name"], pvc["metadata"]["name"]} == {
        f"{longest}-index", f"{longest}-rag", f"{longest}-rag-vectors"}


def test_rendering_is_deterministic(rag_recipe):
    assert _render(rag_recipe) == _render(rag_recipe.model_copy(deep=True))
