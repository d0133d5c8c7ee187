"""`mlops apply` end to end on the churn example, in a copy of the project: the real
data, an embedded Ray, MLflow on sqlite, ONNX Runtime. Slow (about a minute each)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _alias(root: Path, alias: str) -> str | None:
    from framework.runtime.tracking import alias_version

    return alias_version("churn", alias, uri=f"sqlite:///{root / '.mlops' / 'mlflow.db'}")


def _run_tags(root: Path, version: str) -> dict[str, str]:
    from framework.runtime.tracking import client

    store = client(f"sqlite:///{root / '.mlops' / 'mlflow.db'}")
    return store.get_run(store.get_model_version("churn", version).run_id).data.tags


def _data_tags(root: Path, version: str) -> dict[str, str]:
    from framework.runtime.tracking import client

    uri = f"sqlite:///{root / '.mlops' / 'mlflow.db'}"
    tags = client(uri).get_model_version("churn", version).tags
    run_tags = client(uri).get_run(client(uri).get_model_version("churn", version).run_id).data.tags
    data = {k: v for k, v in tags.items() if k.startswith("mlops.data.")}
    assert data == {k: v for k, v in run_tags.items() if k.startswith("mlops.data.")}  # the run says the same
    return data


def test_apply_trains_gates_registers_and_fills_the_model_repository(churn_project: Path) -> None:
    from tests.user_project import git

    first = git(churn_project, "rev-parse", "HEAD")  # the fixture is a user's checkout, committed
    result = run_cli("apply", "churn")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "model version 1 (candidate), gates passed" in result.stdout
    assert (churn_project / "generated" / "churn" / "dev" / "recipe.resolved.yaml").is_file()
    repo = churn_project / ".mlops" / "model_repository" / "churn"
    assert (repo / "config.pbtxt").is_file() and (repo / "1" / "model.onnx").is_file()
    assert _alias(churn_project, "candidate") == "1"
    # No champion yet: the first candidate becomes it without a canary.
    assert "churn (dev): rollout canary: promoted version 1 to champion" in result.stdout
    assert _alias(churn_project, "champion") == "1"
    digest = hashlib.sha256((churn_project / "data" / "churn.csv").read_bytes()).hexdigest()
    assert _data_tags(churn_project, "1") == {"mlops.data.uri": "data/churn.csv", "mlops.data.sha256": digest,
                                              "mlops.data.rev": first}
    assert _run_tags(churn_project, "1")["mlops.git_commit"] == first
    assert git(churn_project, "status", "--porcelain") == ""  # apply's state and logs are ignored, generated/ unchanged

    _unchanged_inputs_reuse_version_1(churn_project)
    (churn_project / "README.md").write_text("# churn\n")
    git(churn_project, "add", "README.md")
    git(churn_project, "commit", "-qm", "a readme")
    second = git(churn_project, "rev-parse", "HEAD")
    again = run_cli("apply", "churn", "--no-cache")  # version 2 goes through the canary against version 1
    assert again.exit_code == 0, again.stderr[-3000:]
    assert "model version 2 (candidate), gates passed" in again.stdout
    assert "churn (dev): rollout canary: promoted version 2 to champion" in again.stdout
    assert "synthetic requests on the embedded server" in again.stdout
    assert _alias(churn_project, "champion") == "2"
    assert _data_tags(churn_project, "2") == {"mlops.data.uri": "data/churn.csv", "mlops.data.sha256": digest,
                                              "mlops.data.rev": first}  # the commit that last changed those bytes
    assert _run_tags(churn_project, "2")["mlops.git_commit"] == second  # the project's HEAD when it trained
    assert again.stdout.rstrip().endswith(
        "serve it: mlops serve churn, then POST http://127.0.0.1:8000/v2/models/churn/infer (KServe v2)"
    )
    commit = first

    lineage = run_cli("lineage", "churn")  # data -> run -> version -> aliases -> where it is served
    assert lineage.exit_code == 0, lineage.stderr[-3000:]
    text = lineage.stdout
    assert text.index("version 2\n") < text.index("version 1\n")  # newest first
    assert text.count(f"  data:    data/churn.csv sha256 {digest} (rev {commit})\n") == 2
    assert "  aliases: champion, candidate" in text and "  served:  champion: answers requests" in text
    assert f"  served:  model file in {churn_project / '.mlops' / 'model_repository' / 'churn' / '1'}" in text
    one = run_cli("lineage", "churn", "--version", "1")
    assert one.exit_code == 0 and "version 2\n" not in one.stdout and "  aliases: none" in one.stdout
    status = run_cli("rollout", "status", "churn")
    assert f"  champion:  version 2 (data data/churn.csv sha256 {digest[:12]}, rev {commit[:12]})\n" in status.stdout
    missing = run_cli("lineage", "churn", "--version", "9")
    assert missing.exit_code == 1 and "--version: version 9 of 'churn' is not in sqlite:///" in missing.stderr


def _unchanged_inputs_reuse_version_1(root: Path) -> None:
    """The step cache: the same recipe keys, data and code reuse the finished run; the dry
    run and plan name the first step whose inputs changed, and what changed."""
    from framework.runtime.tracking import client

    run_id = client(f"sqlite:///{root / '.mlops' / 'mlflow.db'}").get_model_version("churn", "1").run_id
    cached = run_cli("apply", "churn")
    assert cached.exit_code == 0, cached.stderr[-3000:]
    assert f"training job cached (run {run_id[:12]}, model version 1, data sha256 " in cached.stderr
    assert "rollout: cached: version 1 is the champion already" in cached.stderr
    assert "model version 1 (candidate, champion), gates passed: the inputs of a finished run, reused" in cached.stdout
    assert "training on Ray" not in cached.stderr and _alias(root, "champion") == "1"
    assert (root / ".mlops" / "model_repository" / "churn" / "1" / "model.onnx").is_file()

    deploy = root / "recipes" / "env" / "dev.yaml"  # a key the training never reads
    deploy.write_text(deploy.read_text().replace("namespace: ml-dev", "namespace: ml-dev2"))
    dry = run_cli("apply", "churn", "--dry-run")
    assert dry.stdout.count(f"[cached (run {run_id[:12]}, model version 1, data sha256 ") == 7, dry.stdout
    assert "[runs: with the cached version 1]" in dry.stdout
    assert "[cached: version 1 is the champion already]" in dry.stdout

    training = root / "recipes" / "training" / "ray_cpu.yaml"
    original = training.read_text()
    training.write_text(original.replace("epochs: 10", "epochs: 12"))
    dry = run_cli("apply", "churn", "--dry-run")
    assert "train: Ray Train's TorchTrainer" in dry.stdout and "[runs: training.epochs changed (10 -> 12)]" in dry.stdout
    assert "[runs: the job runs as a whole (training.epochs changed (10 -> 12))]" in dry.stdout  # the data step
    plan = run_cli("plan", "churn")
    assert "  apply: training job runs: training.epochs changed (10 -> 12)" in plan.stdout
    training.write_text(original)
    csv = root / "data" / "churn.csv"
    before = hashlib.sha256(csv.read_bytes()).hexdigest()
    rows = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(rows[:-1]))
    after = hashlib.sha256(csv.read_bytes()).hexdigest()
    dry = run_cli("apply", "churn", "--dry-run")
    assert f"[runs: the data changed (sha256 {before[:12]} -> {after[:12]})]" in dry.stdout
    csv.write_text("".join(rows))
    deploy.write_text(deploy.read_text().replace("namespace: ml-dev2", "namespace: ml-dev"))


def test_a_failed_expectation_stops_before_training(churn_project: Path) -> None:
    csv = churn_project / "data" / "churn.csv"
    lines = csv.read_text().splitlines()
    lines[1] = lines[1].replace("month_to_month", "weekly").replace("one_year", "weekly").replace("two_year", "weekly")
    csv.write_text("\n".join(lines) + "\n")
    result = run_cli("apply", "churn")
    assert result.exit_code == 1
    assert "data.expectations.columns.contract.in_set" in result.stderr
    assert "training on Ray" not in result.stderr
    assert not (churn_project / ".mlops" / "ray").exists()


def test_a_failed_gate_registers_nothing(churn_project: Path) -> None:
    gates = churn_project / "recipes" / "evaluation" / "classifier_gates.yaml"
    gates.write_text(gates.read_text().replace("min_accuracy: 0.72", "min_accuracy: 0.99"))
    result = run_cli("apply", "churn")
    assert result.exit_code == 1
    assert "evaluation.gates.min_accuracy: observed" in result.stderr
    assert _alias(churn_project, "candidate") is None
    assert not (churn_project / ".mlops" / "model_repository").exists()
