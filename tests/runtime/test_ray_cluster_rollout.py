"""`apply --target ray` goes on after training: the recipe's Ray Serve application is
deployed to the cluster through Serve's REST API, and the rollout runs against it.

A real head in its own mount namespace (it cannot see the project) and a real `mlflow
server`: the replicas load their versions from the registry and the routing from the
deployment's user_config (one replica on each of the cluster's two nodes); the first apply makes version 1 the champion, the second
rolls version 2 out by canary across the cluster's replicas and promotes it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.mlflow_server import unique_name
from tests.ray_head import free_port, ray_head

pytestmark = pytest.mark.slow
MLOPS = str(Path(sys.executable).with_name("mlops"))


def test_serve_address_needs_a_ray_serve_recipe(churn_project: Path) -> None:
    done = subprocess.run([MLOPS, "serve", "churn", "--address", "http://127.0.0.1:1"], cwd=churn_project,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("serving.backend: --address deploys the recipe's Ray Serve application; churn "
                                        "is served by triton (serving.backend ray_serve, or apply --target kubernetes)")


def _apply(root: Path, address: str, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([MLOPS, "apply", "churn", "--target", "ray", "--address", address, *options], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def _infer(url: str, rows: list[dict]) -> dict:
    request = urllib.request.Request(f"http://{url}/v2/models/churn/infer", data=orjson.dumps(rows),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return {"version": response.headers["mlops-model-version"], **orjson.loads(response.read())}


def test_apply_on_a_ray_cluster_trains_serves_and_rolls_out(churn_project: Path, mlflow_server: str) -> None:
    import mlflow

    port = free_port()
    recipe = churn_project / "recipes" / "churn.yaml"
    text = recipe.read_text().replace("  - serving: triton\n", "  - serving: ray_serve\n")
    name = unique_name("churn")  # the server is shared: this test's own model and experiment
    recipe.write_text(text + f"tracking:\n  uri: {mlflow_server}\n  registered_model: {name}\n  experiment: {name}\n"
                      "training:\n  epochs: 3\n"
                      f"serving:\n  port: {port}\n  replicas: {{min: 2, max: 2}}\n  resources: {{cpu: '0.5'}}\n"
                      "rollout:\n  steps: [50, 100]\n  analysis: {min_requests: 60, max_latency_p99_ms: 5000}\n")
    with ray_head(num_cpus=2, hide=churn_project, worker_nodes=1) as address:  # a replica per node  # a replica per node
        first = _apply(churn_project, address)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "rollout canary: no champion yet: version 1 becomes the champion" in first.stdout + first.stderr
        url = f"127.0.0.1:{port}"
        row = {"tenure_months": 8, "monthly_charges": 80.83, "total_charges": 674.44, "support_calls": 1, "num_products": 2,
               "senior_citizen": 0, "contract": "month_to_month", "payment_method": "bank_transfer"}
        answer = _infer(url, [row])
        assert answer["version"] == "1" and answer["model_version"] == "1"

        second = _apply(churn_project, address, "--no-cache")  # the same inputs: trains only when told to
        output = second.stdout + second.stderr
        assert second.returncode == 0, output[-4000:]
        assert "rollout step 1/2 (50%): passed" in output and "rollout step 2/2 (100%): passed" in output
        assert "rollout canary: promoted version 2 to champion" in output
        assert f"synthetic requests on the Ray cluster at {address}" in output
        assert f"served on the Ray cluster: POST http://127.0.0.1:{port}/v2/models/churn/infer" in output
        answered = {_infer(url, [row])["version"] for _ in range(20)}
        assert answered == {"2"}  # every replica was told the decision

        status = subprocess.run([MLOPS, "rollout", "status", "churn", "--address", address], cwd=churn_project,
                                capture_output=True, text=True, timeout=120)
        assert f"serving:   RUNNING on the Ray cluster at {address}: every request to version 2" in status.stdout

        served = subprocess.run([MLOPS, "serve", "churn", "--address", address], cwd=churn_project,
                                capture_output=True, text=True, timeout=600)
        assert served.returncode == 0, served.stderr[-3000:]
        assert f"serving churn (versions 2) on the Ray cluster at http://{url}/v2/models/churn" in served.stdout
        assert "requests without a version: champion version 2 answers" in served.stdout
        assert _infer(url, [row])["version"] == "2"

    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    record = orjson.loads((churn_project / ".mlops" / "rollouts" / "churn" / "dev.json").read_bytes())
    assert record["decision"] == "promote" and [v["weight"] for v in record["verdicts"]] == [50.0, 100.0]
    assert all(v["candidate"]["requests"] >= 60 for v in record["verdicts"])
