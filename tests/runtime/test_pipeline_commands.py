"""The commands a CI pipeline chains, on one real training (`apply --register-only` on
the embedded default): check-data, evaluate --version, gate, smoke, with the
$GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY files a runner gives them; and their bad input."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, copy_project, run_cli
from tests.user_project import make_user_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A churn project whose version 1 was trained and registered without aliases."""
    root = copy_project(tmp_path_factory.mktemp("ci"), ("recipes", "data"))
    make_user_project(root, generated_from=REPO)  # CI's checkout: git, .gitignore, committed generated/
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                            "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
            mp.setenv(name, value)
        mp.setenv("GITHUB_OUTPUT", str(root / "github_output"))
        mp.setenv("GITHUB_STEP_SUMMARY", str(root / "github_summary"))
        result = run_cli("apply", "churn", "--register-only")
        assert result.exit_code == 0, result.stdout + result.stderr
        yield root


def _client(root: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / '.mlops' / 'mlflow.db'}"
    return MlflowClient(uri, uri)


def _alias(root: Path, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(root).get_model_version_by_alias("churn", alias).version)
    except MlflowException:
        return None


def test_register_only_hands_on_the_version_and_moves_no_alias(trained):
    outputs = dict(line.split("=", 1) for line in (trained / "github_output").read_text().splitlines())
    assert outputs["model-version"] == "1" and len(outputs["run-id"]) == 32
    assert "model version **1**" in (trained / "github_summary").read_text()
    assert _alias(trained, "candidate") is None and _alias(trained, "champion") is None
    assert not (trained / ".mlops" / "rollouts").exists()  # no rollout either


def test_the_run_records_each_features_nulls_and_their_fill(trained):
    from mlflow.artifacts import download_artifacts

    outputs = dict(line.split("=", 1) for line in (trained / "github_output").read_text().splitlines())
    run = _client(trained).get_run(outputs["run-id"])
    assert run.data.metrics["data.null_count.total_charges"] == 16 and run.data.metrics["data.null_count.contract"] == 0
    path = download_artifacts(run_id=run.info.run_id, artifact_path="data/missing.json",
                              tracking_uri=f"sqlite:///{trained / '.mlops' / 'mlflow.db'}")
    filled = json.loads(Path(path).read_text())["columns"]["total_charges"]
    assert (filled["nulls"], filled["read_from_text"], filled["filled_with"]) == (
        16, {"": 16}, "median of the training split")
    assert filled["fill_value"] > 0  # the training split's median


def test_check_data_passes_and_reports(trained, tmp_path):
    summary = tmp_path / "summary.md"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GITHUB_STEP_SUMMARY", str(summary))
        result = run_cli("check-data", "churn", "--report-dir", str(tmp_path / "report"))
    assert result.exit_code == 0, result.stderr
    assert "churn (dev): data passed its checks" in result.stdout
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert report["passed"] and report["rows"] == 5000
    assert (tmp_path / "report" / "data_report.html").is_file()
    text = summary.read_text()
    assert text.startswith("### Data report: `data/churn.csv`") and "| `data.expectations.table.min_rows` |" in text


def test_check_data_fails_on_a_broken_expectation(trained, tmp_path):
    frame = pd.read_csv(trained / "data" / "churn.csv")
    frame.loc[:9, "tenure_months"] = -5
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = run_cli("check-data", str(_recipe_pointing_at(trained, bad, tmp_path)), "--report-dir", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert f"{bad}: data.expectations.columns.tenure_months.min: expected >= 0, observed min -5 < 0 (10 rows)\n" in result.stderr
    assert not json.loads((tmp_path / "r" / "data_report.json").read_text())["passed"]


def _recipe_pointing_at(root: Path, data: Path, tmp_path: Path) -> Path:
    """A recipe file next to churn's that reads `data` (CLI recipes may be paths)."""
    path = root / "recipes" / f"churn_{tmp_path.name[-8:].replace('-', '_')}.yaml"
    path.write_text((root / "recipes" / "churn.yaml").read_text() + f"data:\n  source:\n    uri: {data}\n")
    return path


def test_check_data_of_a_missing_file_is_one_line(trained, tmp_path):
    result = run_cli("check-data", str(_recipe_pointing_at(trained, tmp_path / "nope.csv", tmp_path)))
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"{tmp_path / 'nope.csv'}: data.source.uri: no such file: {tmp_path / 'nope.csv'}"


def test_evaluate_rescores_the_registered_version(trained, tmp_path):
    summary = tmp_path / "summary.md"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GITHUB_STEP_SUMMARY", str(summary))
        result = run_cli("evaluate", "churn", "--version", "1")
    assert result.exit_code == 0, result.stderr
    assert "churn (dev): version 1 on 1000 rows of data/churn.csv (validation split)" in result.stdout
    client = _client(trained)
    version = client.get_model_version("churn", "1")
    evaluation = client.get_run(version.tags["mlops.evaluation_run"])
    training = client.get_run(version.run_id)
    assert evaluation.data.tags["mlops.kind"] == "evaluate" and evaluation.data.tags["mlops.model_version"] == "1"
    for metric in ("accuracy", "f1", "roc_auc"):  # the same rows and model as training's validation: the same numbers
        assert evaluation.data.metrics[metric] == pytest.approx(training.data.metrics[f"val_{metric}"], abs=1e-6)
    assert 0 < evaluation.data.metrics["model_size_mb"] < 5 and evaluation.data.metrics["latency_p95_ms"] > 0
    assert "### Evaluation of churn version 1" in summary.read_text()


def test_evaluate_on_an_evaluation_dataset(trained, tmp_path):
    frame = pd.read_csv(trained / "data" / "churn.csv").sample(700, random_state=3)
    held_out = tmp_path / "held_out.parquet"
    frame.to_parquet(held_out)
    recipe = _recipe_pointing_at(trained, trained / "data" / "churn.csv", tmp_path)
    recipe.write_text(recipe.read_text() + f"evaluation:\n  dataset:\n    uri: {held_out}\n    format: parquet\n")
    result = run_cli("evaluate", str(recipe), "--version", "1")
    assert result.exit_code == 0, result.stderr
    assert f"version 1 on 700 rows of {held_out}" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["evaluate", "churn", "--version", "9"], "--version: no version 9 of 'churn' in sqlite:///"),
    (["evaluate", "churn", "--version", "x1"], "--version: 'x1' is not a version number (1, 2, ...)"),
    (["evaluate", "churn"], "--version: which registered version to evaluate: e.g. --version 3 (the train job's output)"),
    (["gate", "churn", "--version", "9"], "--version: no version 9 of 'churn' in sqlite:///"),
    (["gate", "churn"], "--version: which registered version to gate: e.g. --version 3 (the train job's output)"),
    (["smoke", "churn"], "--url: no URL given: set ci.environments[].endpoint in the recipe"),
    (["smoke", "churn", "--url", "ftp://x"], "--url: 'ftp://x' is not an http(s) URL"),
    (["smoke", "churn", "--url", "http://127.0.0.1:9"], "--url: cannot reach http://127.0.0.1:9: ConnectionRefusedError"),
])
def test_bad_input_is_one_line(trained, args, message):
    result = run_cli(*args)
    assert result.exit_code == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_gate_passes_and_promotes_only_when_asked(trained):
    checked = run_cli("gate", "churn", "--version", "1")
    assert checked.exit_code == 0, checked.stderr
    assert "gates passed: version 1 passed (no alias moved without --promote)" in checked.stdout
    assert _alias(trained, "candidate") is None
    promoted = run_cli("gate", "churn", "--version", "1", "--promote")
    try:
        assert promoted.exit_code == 0 and "gates passed: version 1 is now candidate" in promoted.stdout
        assert _alias(trained, "candidate") == "1"
        assert _client(trained).get_model_version("churn", "1").tags["mlops.gate"] == "pass"
    finally:  # the module's other tests see the registry as --register-only left it
        _client(trained).delete_registered_model_alias("churn", "candidate")


def test_a_failed_gate_exits_1_and_moves_no_alias(trained, tmp_path):
    recipe = _recipe_pointing_at(trained, trained / "data" / "churn.csv", tmp_path)
    recipe.write_text(recipe.read_text() + "evaluation:\n  gates:\n    min_accuracy: 0.99\n")
    before = _alias(trained, "candidate")
    result = run_cli("gate", str(recipe), "--version", "1", "--promote")
    assert result.exit_code == 1
    assert "evaluation.gates.min_accuracy: observed 0.7" in result.stderr and "must be at least 0.99" in result.stderr
    assert "gate: version 1 failed 1 gate(s); no alias moved" in result.stderr
    assert _alias(trained, "candidate") == before
    assert _client(trained).get_model_version("churn", "1").tags["mlops.gate"] == "fail"


def test_a_version_without_recorded_metrics_cannot_be_gated(trained, tmp_path):
    client = _client(trained)
    experiment = client.get_experiment_by_name("churn").experiment_id
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version("churn", f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version
    result = run_cli("gate", "churn", "--version", str(version))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"--version: version {version} of 'churn' has no recorded metrics (run {run.info.run_id} logged none): "
        f"run `mlops evaluate churn --version {version}` first")


# --- smoke --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def staging(trained):
    """The serving app of the trained project, on the embedded host (what `mlops serve` runs)."""
    from framework import api
    from framework.runtime.serving.host import EmbeddedServer, build_app

    recipe = api.load_recipe("churn", project=trained).recipe
    with EmbeddedServer(build_app(recipe, None, trained / ".mlops")) as server:
        yield f"http://{server.url}"


def test_smoke_against_the_served_model(trained, staging, tmp_path):
    summary = tmp_path / "summary.md"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GITHUB_STEP_SUMMARY", str(summary))
        result = run_cli("smoke", "churn", "--url", staging, "--requests", "20", "--version", "1")
    assert result.exit_code == 0, result.stderr
    assert "20/20 requests ok" in result.stdout and "answered by version 1: 20" in result.stdout
    assert summary.read_text().startswith("### Smoke test: passed")


class _WrongServer:
    """A KServe v2 endpoint that answers with the right shape but the wrong numbers,
    or with the wrong shape."""

    def __init__(self, shape_ok: bool):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._send({"ready": True})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                rows = body["inputs"][0]["shape"][0]
                shape = [rows, 2] if outer.shape_ok else [rows, 3]
                data = [0.5] * (shape[0] * shape[1])
                self._send({"model_name": "churn", "model_version": "1",
                            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": shape, "data": data}]})

            def _send(self, payload):
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.shape_ok = shape_ok
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.mark.parametrize(("shape_ok", "message"), [
    (True, "smoke: request 1: version 1 answered [0.5, 0.5, 0.5, 0.5], its registered model gives"),
    (False, "smoke: request 1: output 'probabilities' has shape [4, 3], expected [4, 2]"),
])
def test_smoke_catches_a_server_that_disagrees(trained, shape_ok, message):
    wrong = _WrongServer(shape_ok)
    try:
        result = run_cli("smoke", "churn", "--url", wrong.url, "--requests", "3", "--version", "1")
    finally:
        wrong.server.shutdown()
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr


def test_smoke_fails_when_p99_is_over_the_alert(trained, staging, tmp_path):
    recipe = _recipe_pointing_at(trained, trained / "data" / "churn.csv", tmp_path)
    recipe.write_text(recipe.read_text() + "monitoring:\n  alerts:\n    max_latency_p99_ms: 0.001\n")
    result = run_cli("smoke", str(recipe), "--url", staging, "--requests", "5", "--version", "1")
    assert result.exit_code == 1
    assert "is over monitoring.alerts.max_latency_p99_ms (0.001 ms)" in result.stderr
