"""churn's generated workflow, run end to end by the harness (harness.py) on a push:
every `run:` step of every job, against a real Ray head, a real MLflow server, the
fake Kubernetes API (staging and production) and `mlops serve` as staging's endpoint.

The staging data is a fresh table (another seed than the committed example) at an
absolute path outside the checkout, as on a volume the runner and the cluster mount.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.mlflow_server import unique_name, wait_for
from tests.pipeline.conftest import commit, free_port, make_checkout, step_venv
from tests.pipeline.harness import Harness

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

WORKFLOW = ".github/workflows/mlops-churn.yml"
IMAGE = "ghcr.io/example/mlops-runtime"
DEPLOYED = ["build-image", "validate-data", "train", "evaluate", "quality-gate", "deploy-staging", "smoke-test",
            "deploy-production"]


def write_data(path: Path, seed: int, flip_labels: bool = False) -> Path:
    """A churn table from data/make_churn.py; `flip_labels`: every label wrong."""
    import pandas as pd

    from tests.conftest import REPO

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(REPO / "data" / "make_churn.py"), str(path), "--seed", str(seed)], check=True,
                   capture_output=True, timeout=120)
    if flip_labels:
        frame = pd.read_csv(path)
        frame["churned"] = 1 - frame["churned"]
        frame.to_csv(path, index=False)
    return path


def point_staging_data(checkout: Path, data: Path) -> None:
    location = checkout / "recipes" / "data" / "location" / "churn_staging.yaml"
    text = location.read_text(encoding="utf-8")
    location.write_text(text.replace("s3://example-ml-data/churn/staging/churn.csv", str(data)), encoding="utf-8")
    assert str(data) in location.read_text(encoding="utf-8")


class Staging:
    """Staging's endpoint: `mlops serve` of the checkout, started once deploy-staging ran
    (what the cluster's pods would then serve: the registry's candidate)."""

    def __init__(self, checkout: Path, bin_dir: Path, env: dict[str, str], log: Path):
        self.checkout, self.bin_dir, self.env, self.log = checkout, bin_dir, env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def after_job(self, job_id: str, result) -> None:
        if job_id == "deploy-staging" and result.result == "success":
            with self.log.open("w") as out:
                self.process = subprocess.Popen(
                    [str(self.bin_dir / "mlops"), "serve", "churn", "--env", "staging", "--port", str(self.port)],
                    cwd=self.checkout, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )
            wait_for(f"{self.url}/v2/health/ready", 180, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def pipeline_env(tmp_path_factory, mlflow_server, ray_cluster, clusters):
    """A checkout, the steps' venv, and what the runner's environment holds."""
    from tests.runtime.fake_kube_api import write_kubeconfig

    work = tmp_path_factory.mktemp("pipeline")
    checkout = make_checkout(work / "checkout")
    model = own_registry(checkout)
    point_staging_data(checkout, write_data(work / "volume" / "churn-staging.csv", seed=314))
    bin_dir = step_venv(work / "venv")
    address, token = ray_cluster
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "MLFLOW_", "GITHUB_", "KUBECONFIG", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "HOME": str(home),
                "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0"})
    kubeconfig = write_kubeconfig(work / "kubeconfig", clusters.url).read_text(encoding="utf-8")
    return {"work": work, "checkout": checkout, "bin": bin_dir, "env": env, "address": address, "token": token,
            "kubeconfig": kubeconfig, "mlflow": mlflow_server, "clusters": clusters, "model": model}


def own_registry(checkout: Path) -> str:
    """The recipe's registered model and experiment, this module's alone on the shared
    server (run_pipeline commits the change); the name."""
    name = unique_name("churn")
    recipe = checkout / "recipes" / "churn.yaml"
    recipe.write_text(f"{recipe.read_text(encoding='utf-8')}tracking:\n  registered_model: {name}\n  experiment: {name}\n",
                      encoding="utf-8")
    return name


def run_pipeline(p: dict, name: str) -> tuple[dict, Staging]:
    checkout = p["checkout"]
    sha = commit(checkout, f"pipeline run {name}")
    serve_env = {**p["env"], "MLFLOW_TRACKING_URI": p["mlflow"]}
    staging = Staging(checkout, p["bin"], serve_env, p["work"] / f"{name}-serve.log")
    harness = Harness(
        checkout / WORKFLOW, checkout, p["work"] / name, event="push", sha=sha, env=p["env"],
        variables={"RAY_ADDRESS": p["address"], "MLFLOW_TRACKING_URI": p["mlflow"], "MLOPS_STAGING_ENDPOINT": staging.url},
        secrets={"RAY_AUTH_TOKEN": p["token"], "KUBECONFIG": p["kubeconfig"], "MLFLOW_TRACKING_TOKEN": "",
                 "GITHUB_TOKEN": "unused"},
        after_job=staging.after_job,
    )
    try:
        return harness.run(), staging
    finally:
        staging.stop()


def explain(results: dict) -> str:
    lines = []
    for job_id, result in results.items():
        lines.append(f"{job_id}: {result.result} ({result.seconds:.0f}s)")
        failed = result.failed_step()
        if failed is not None:
            lines.append(f"  step '{failed.name}' exited {failed.returncode}:\n{failed.log[-3000:]}")
    return "\n".join(lines)


def test_churn_pipeline_runs_end_to_end(pipeline_env):
    p = pipeline_env
    results, staging = run_pipeline(p, "green")
    print(explain(results))  # per-job wall times (pytest -s)
    assert [r.result for r in results.values()] == ["success"] * len(DEPLOYED), explain(results)
    assert list(results) == DEPLOYED

    # outputs feed inputs: the version train registered is the one evaluated, gated, smoke-tested
    version = results["train"].outputs["model-version"]
    assert version.isdigit() and len(results["train"].outputs["run-id"]) == 32  # 2 after the failed-gate test
    tag = results["build-image"].outputs["tag"]
    assert "Data report" in results["validate-data"].summary and "passed" in results["validate-data"].summary
    assert (p["checkout"] / "mlops-reports" / "data" / "data_report.json").is_file()
    assert f"Evaluation of churn version {version}" in results["evaluate"].summary
    assert f"Quality gates of version {version}: all passed" in results["quality-gate"].summary
    assert "Smoke test: passed" in results["smoke-test"].summary
    assert f"answered by version {version}:" in results["smoke-test"].summary

    from mlflow import MlflowClient

    client = MlflowClient(p["mlflow"], p["mlflow"])
    model = client.get_model_version(p["model"], version)
    assert model.tags["mlops.gate"] == "pass"
    assert client.get_model_version_by_alias(p["model"], "candidate").version == version
    evaluation = client.get_run(model.tags["mlops.evaluation_run"])
    assert evaluation.data.tags["mlops.kind"] == "evaluate" and evaluation.data.tags["mlops.model_version"] == version
    assert evaluation.data.metrics["accuracy"] > 0.6
    assert client.get_run(model.run_id).data.tags["mlops.environment"] == "staging"

    # both deploys applied the serving side at the built tag, and no training job
    patches = p["clusters"].patches()
    paths = [r.path for r in patches]
    assert any("/namespaces/ml-staging/" in path for path in paths) and any("/namespaces/ml-prod/" in path for path in paths)
    assert not any("/rayjobs/" in path for path in paths)
    images = p["clusters"].applied_images()
    assert f"{IMAGE}:{tag}" in images and f"{IMAGE}:0.1.0" not in images
    assert tag == subprocess.run(["git", "rev-parse", "HEAD"], cwd=p["checkout"], capture_output=True, text=True).stdout.strip()


def test_a_failed_gate_stops_the_pipeline_before_deploy(pipeline_env):
    """Same pipeline, with evaluation.dataset pointing at held-out rows whose labels are
    all wrong: training passes its own gates, the evaluation of the version fails them."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    p = pipeline_env
    client = MlflowClient(p["mlflow"], p["mlflow"])

    def candidate() -> str | None:  # none when this test runs first
        try:
            return client.get_model_version_by_alias(p["model"], "candidate").version
        except MlflowException:
            return None

    before = candidate()
    p["clusters"].requests.clear()
    holdout = write_data(p["work"] / "volume" / "churn-holdout.csv", seed=2718, flip_labels=True)
    gates = p["checkout"] / "recipes" / "evaluation" / "classifier_gates.yaml"
    original = gates.read_text(encoding="utf-8")
    spec = yaml.safe_load(original)
    spec["dataset"] = {"uri": str(holdout), "format": "csv"}
    gates.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    try:
        results, _ = run_pipeline(p, "broken-gate")
    finally:
        gates.write_text(original, encoding="utf-8")  # the module's other pipeline runs keep the real gates

    verdicts = {job_id: r.result for job_id, r in results.items()}
    assert verdicts == {"build-image": "success", "validate-data": "success", "train": "success", "evaluate": "success",
                        "quality-gate": "failure", "deploy-staging": "skipped", "smoke-test": "skipped",
                        "deploy-production": "skipped"}, explain(results)
    failed = results["quality-gate"].failed_step()
    assert "evaluation.gates.min_accuracy: observed" in failed.log and "no alias moved" in failed.log
    assert p["clusters"].patches() == []  # nothing reached a cluster
    version = results["train"].outputs["model-version"]
    assert client.get_model_version(p["model"], version).tags["mlops.gate"] == "fail"
    assert candidate() == before != version  # no alias moved
