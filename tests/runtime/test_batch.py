"""`mlops batch` on Ray Data and on Spark: the serving app's predictions offline, every row
once, resumable after a kill, and bad input refused in one line. Slow: a real apply first."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, copy_project, run_cli
from tests.processes import session_members
from tests.user_project import make_user_project

pytestmark = pytest.mark.slow
needs_spark = pytest.mark.skipif(importlib.util.find_spec("pyspark") is None,
                                 reason="the spark extra is not installed (pip install -e '.[dev,spark]')")
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true",
       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """A user's churn checkout (tests/user_project.py) whose version 1 is the champion."""
    root = copy_project(tmp_path_factory.mktemp("batch"), ("recipes", "data"))
    make_user_project(root, generated_from=REPO)
    with (root / ".gitignore").open("a") as ignore:
        ignore.write("scored/\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name, value in ENV.items():
            mp.setenv(name, value)
        result = run_cli("apply", "churn")
        assert result.exit_code == 0, result.stderr[-3000:]
        yield root, mp


@pytest.fixture
def project(applied):
    root, _ = applied
    return root


def validation_rows(root: Path) -> pd.DataFrame:
    from framework import api
    from framework.runtime.training import data, splitting

    recipe = api.load_recipe("churn", project=root).recipe
    return splitting.split(recipe, data.load_table(recipe, root))[1].reset_index(drop=True)


def served_answers(root: Path, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the serving app answers for these rows, sent as curl users send them."""
    import urllib.request

    import orjson

    from framework import api
    from framework.runtime.serving.host import EmbeddedServer, build_app

    recipe = api.load_recipe("churn", project=root).recipe
    features = recipe.data.features
    probabilities, labels = [], []
    with EmbeddedServer(build_app(recipe, None, root / ".mlops", log_sample_rate=0)) as server:
        for start in range(0, len(rows), 32):
            chunk = rows.iloc[start:start + 32][features]
            body = orjson.dumps([{k: (None if pd.isna(v) else v) for k, v in row.items()}
                                 for row in chunk.to_dict(orient="records")])
            request = urllib.request.Request(f"http://{server.url}/v2/models/churn/infer", data=body, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                outputs = {o["name"]: o["data"] for o in orjson.loads(response.read())["outputs"]}
            probabilities.append(np.asarray(outputs["probabilities"], dtype=np.float64).reshape(len(chunk), -1))
            labels += outputs["label"]
    return {"probabilities": np.concatenate(probabilities), "label": np.asarray(labels)}


@pytest.fixture(scope="module")
def served(applied) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The validation rows and what the serving app answers for them, once for the module."""
    root, _ = applied
    rows = validation_rows(root)
    return rows, served_answers(root, rows)


def mixed_inputs(rows: pd.DataFrame, folder: Path) -> Path:
    """The rows as a parquet file (the first 600) and a csv file (the rest) in one folder."""
    folder.mkdir()
    rows.iloc[:600].to_parquet(folder / "a.parquet", index=False)
    rows.iloc[600:].to_csv(folder / "b.csv", index=False)
    return folder


def assert_scored_as_served(folder: Path, rows: pd.DataFrame, answers: dict[str, np.ndarray]) -> None:
    """Every row once, in input order, the serving app's answers, the model in the metadata."""
    import pyarrow.parquet as pq

    scored = read_output(folder)
    assert len(scored) == len(rows) and scored["customer_id"].is_unique
    assert set(scored["customer_id"]) == set(rows["customer_id"])  # none dropped, none twice
    assert scored["customer_id"].tolist() == rows["customer_id"].tolist()  # and in input order
    offline = scored[["probabilities_0", "probabilities_1"]].to_numpy(dtype=np.float64)
    assert np.max(np.abs(offline - answers["probabilities"])) <= 1e-6
    assert scored["label"].tolist() == answers["label"].tolist()
    assert scored["gender"].tolist() == rows["gender"].tolist()  # data.extra_columns passed through
    metadata = pq.ParquetFile(folder / "part-00000.parquet").schema_arrow.metadata
    assert (metadata[b"mlops.model"], metadata[b"mlops.version"]) == (b"churn", b"1")
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest["rows"] == len(rows) and [p["rows"] for p in manifest["parts"]] == [600, len(rows) - 600]
    assert not list(folder.glob(".*"))  # no hidden part left behind


def read_output(folder: Path) -> pd.DataFrame:
    parts = sorted(folder.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def test_offline_scores_equal_the_serving_apps_and_keep_every_row_once(project: Path, served, tmp_path: Path):
    rows, answers = served
    inputs = mixed_inputs(rows, tmp_path / "in")  # csv and parquet in one folder
    result = run_cli("batch", "churn", "--input", str(inputs), "--output", str(tmp_path / "scored"))
    assert result.exit_code == 0, result.stderr[-3000:]
    assert f"{len(rows)} rows scored by churn version 1" in result.stdout
    assert_scored_as_served(tmp_path / "scored", rows, answers)


# `mlops batch` in a process that SIGKILLs its own process group as soon as part KILL_AT
# is in place: a crash at a known point (the Ray engine scores ahead of the parts it writes,
# so a kill timed from outside may come after the last part).
KILLED = """
import os, signal, sys
from framework.runtime.batch import parts
write_parts = parts.write_parts
def crashing(*args, on_part=None, **kwargs):
    def said(done, total, rows):
        if done == int(os.environ["KILL_AT"]):
            os.killpg(0, signal.SIGKILL)
    return write_parts(*args, on_part=said, **kwargs)
parts.write_parts = crashing
from framework.cli import main
sys.argv = ["mlops", *sys.argv[1:]]
main()
"""


def killed_run(project: Path, args: list[str], kill_at: int, tmp: Path) -> None:
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO), "KILL_AT": str(kill_at)}
    if "spark" in args:
        env["TMPDIR"] = str(tmp)  # Spark's log file, which a killed run cannot remove (not Ray's: its socket paths)
    process = subprocess.Popen([sys.executable, "-c", KILLED, "batch", "churn", *args], cwd=project, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=240)
    finally:
        for pid in session_members(process.pid):  # what is left of its session (never `ray stop`: other Rays)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert process.returncode == -signal.SIGKILL




def test_a_killed_run_resumes_where_it_stopped(project: Path, tmp_path: Path):
    rows = validation_rows(project)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(8):
        rows.iloc[index * 125:(index + 1) * 125].to_parquet(inputs / f"{index}.parquet", index=False)
    output = tmp_path / "scored"
    killed_run(project, ["--input", str(inputs), "--output", str(output)], kill_at=2, tmp=tmp_path)
    finished = sorted(p.name for p in output.glob("part-*.parquet"))
    assert finished == ["part-00000.parquet", "part-00001.parquet"] and not (output / "_manifest.json").exists()

    result = run_cli("batch", "churn", "--input", str(inputs), "--output", str(output))
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "(2 part(s) from the earlier run)" in result.stdout
    scored = read_output(output)
    assert scored["customer_id"].tolist() == rows["customer_id"].iloc[:1000].tolist()
    assert not list(output.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--input", "nowhere"], "--input: no such file or folder: nowhere"),
        (["--input", "empty"], "--input: empty holds no .csv or .parquet file"),
        (["--input", "data/churn.csv", "--version", "9"], "--version: no version 9 of 'churn' in sqlite:///"),
        (["--input", "data/churn.csv", "--alias", "rejected"], "--alias: no version of 'churn' has alias rejected"),
        (["--input", "nocontract.csv"], "has no column contract (the model takes tenure_months, monthly_charges"),
        (["--input", "text.csv"], "column tenure_months holds text where the model takes numbers"),
    ],
)
def test_bad_input_is_one_line(project: Path, args: list[str], line: str):
    (project / "empty").mkdir(exist_ok=True)
    frame = pd.read_csv(project / "data" / "churn.csv").head(20)
    frame.drop(columns=["contract"]).to_csv(project / "nocontract.csv", index=False)
    frame.assign(tenure_months="long").to_csv(project / "text.csv", index=False)
    result = run_cli("batch", "churn", *args, "--output", "never")
    assert result.exit_code == 1
    assert line in result.stderr and "Traceback" not in result.stderr
    assert not (project / "never").exists()


def test_an_existing_output_needs_overwrite(project: Path, tmp_path: Path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "report.txt").write_text("someone's")
    result = run_cli("batch", "churn", "--input", "data/churn.csv", "--output", str(tmp_path / "taken"))
    assert result.exit_code == 1
    assert f"--output: {tmp_path / 'taken'} exists: pass --overwrite to replace it" in result.stderr
    result = run_cli("batch", "churn", "--input", "data/churn.csv", "--output", str(tmp_path / "taken"), "--overwrite")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert not (tmp_path / "taken" / "report.txt").exists() and len(read_output(tmp_path / "taken")) == 5000


def test_the_batch_rayjobs_entrypoint_scores_on_a_ray_cluster(project: Path, tmp_path: Path):
    """What ray/batch-rayjob.yaml runs (`python -m framework.runtime.batch`, on the resolved
    recipe) connects to a running cluster laid out like the RayJob's: a head with one CPU
    for Ray Data's reads and a worker node per actor. The actors get the model's bytes,
    not a path on the driver's node; the parts equal an embedded run's."""
    import yaml
    from ray.cluster_utils import Cluster

    from framework.runtime.batch.__main__ import main

    rows = validation_rows(project)
    inputs = tmp_path / "in"
    inputs.mkdir()
    rows.iloc[:700].to_parquet(inputs / "a.parquet", index=False)
    rows.iloc[700:].to_csv(inputs / "b.csv", index=False)
    resolved = yaml.safe_load((project / "generated" / "churn" / "dev" / "recipe.resolved.yaml").read_text())
    resolved["batch"]["actors"] = 2
    (tmp_path / "recipe.resolved.yaml").write_text(yaml.safe_dump(resolved))
    embedded = run_cli("batch", "churn", "--input", str(inputs), "--output", str(tmp_path / "embedded"))
    assert embedded.exit_code == 0, embedded.stderr[-3000:]

    (tmp_path / "scored").mkdir()
    (tmp_path / "scored" / "stale.txt").write_text("the previous run's")  # --overwrite, as the RayJob runs it
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        code = main([str(tmp_path / "recipe.resolved.yaml"), "--input", str(inputs), "--output", str(tmp_path / "scored"),
                     "--alias", "champion", "--overwrite", "--root", str(project), "--state-dir", str(project / ".mlops"),
                     "--ray-address", cluster.address])
    finally:
        cluster.shutdown()
    assert code == 0
    assert not (tmp_path / "scored" / "stale.txt").exists()
    scored, expected = read_output(tmp_path / "scored"), read_output(tmp_path / "embedded")
    assert len(scored) == len(rows) and scored["customer_id"].tolist() == rows["customer_id"].tolist()
    pd.testing.assert_frame_equal(scored, expected)


def test_batch_address_runs_as_a_job_on_a_ray_cluster(project: Path, tmp_path: Path):
    """`mlops batch --address`: the batch job submitted to a real `ray start --head` (one
    that shares this disk: local paths and the embedded store are handed over absolute)."""
    from tests.ray_head import ray_head

    with ray_head() as address:
        result = run_cli("batch", "churn", "--input", "data/churn.csv", "--output", str(tmp_path / "scored"),
                         "--address", address, "--head-shares-disk")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "submitted Ray job raysubmit_" in result.stdout
    assert "5000 rows scored by churn version 1 in " in result.stdout
    assert f"{tmp_path / 'scored'} (1 part(s))" in result.stdout
    scored = read_output(tmp_path / "scored")
    assert len(scored) == 5000 and scored["customer_id"].is_unique


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--input", "data/churn.csv", "--output", "s3://bucket/scored"],
         "--input: data/churn.csv is on this machine, which the job on the Ray cluster at http://127.0.0.1:1 cannot "
         "read: give a URI it reaches (s3://, gs://, ...), or pass --head-shares-disk"),
        (["--input", "s3://bucket/in", "--output", "scored"], "--output: scored is on this machine, which the job"),
        (["--input", "s3://bucket/in", "--output", "s3://bucket/scored"],
         "tracking.uri: the job on the Ray cluster at http://127.0.0.1:1 reads the model from the registry, and cannot "
         "read the embedded store under .mlops/ on this machine: set tracking.uri to an MLflow server it reaches, "
         "or pass --head-shares-disk"),
    ],
)
def test_batch_address_refuses_what_the_cluster_cannot_reach(project: Path, args: list[str], line: str):
    result = run_cli("batch", "churn", *args, "--address", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert line in result.stderr and "Traceback" not in result.stderr


# --- --engine spark (the spark extra) ---------------------------------------------------
# In-process runs share one JVM (pyspark starts its gateway once per process); each run
# starts and stops its own SparkContext on local[2].
@needs_spark
def test_spark_scores_equal_the_serving_apps_and_keep_every_row_once(project: Path, served, tmp_path: Path):
    rows, answers = served
    inputs = mixed_inputs(rows, tmp_path / "in")
    result = run_cli("batch", "churn", "--input", str(inputs), "--output", str(tmp_path / "scored"),
                     "--engine", "spark", "--master", "local[2]")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert f"{len(rows)} rows scored by churn version 1" in result.stdout
    assert "spark on local[2]" in result.stderr and "WARN" not in result.stderr  # Spark's log is not the console's
    assert_scored_as_served(tmp_path / "scored", rows, answers)
    assert not list(project.glob("spark-warehouse")) and not list(project.glob("metastore_db"))


@needs_spark
def test_a_killed_spark_run_resumes_where_it_stopped(project: Path, tmp_path: Path):
    """Killed (the CLI, its JVM and Python workers) after part 0, a torn hidden part 1 left
    behind: the re-run keeps part 0 and scores the rest, every row once, in order."""
    rows = validation_rows(project)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(3):
        rows.iloc[index * 300:(index + 1) * 300].to_parquet(inputs / f"{index}.parquet", index=False)
    output = tmp_path / "scored"
    args = ["--input", str(inputs), "--output", str(output), "--engine", "spark", "--master", "local[2]"]
    killed_run(project, args, kill_at=1, tmp=tmp_path)
    assert sorted(p.name for p in output.glob("part-*.parquet")) == ["part-00000.parquet"]
    assert not (output / "_manifest.json").exists()
    (output / ".part-00001.parquet.tmp").write_bytes(b"torn")
    first = (output / "part-00000.parquet").stat().st_mtime_ns

    result = run_cli("batch", "churn", *args)
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "900 rows scored by churn version 1" in result.stdout and "(1 part(s) from the earlier run)" in result.stdout
    assert (output / "part-00000.parquet").stat().st_mtime_ns == first  # kept, not scored again
    assert read_output(output)["customer_id"].tolist() == rows["customer_id"].iloc[:900].tolist()
    assert [p["rows"] for p in json.loads((output / "_manifest.json").read_text())["parts"]] == [300, 300, 300]
    assert not list(output.glob(".*"))


@pytest.mark.parametrize(
    ("engine", "line"),
    [
        (["--engine", "ray"], "--input: ray failed scoring {file} or a file after it: In CSV column #1: Row #902: "
                              "CSV conversion error to double: invalid value 'long'"),
        pytest.param(["--engine", "spark", "--master", "local[2]"],
                     "--engine: spark failed scoring {file}: data.features: numeric feature 'tenure_months' has a "
                     "non-numeric value", marks=needs_spark),
    ],
)
def test_a_failing_task_is_one_line(project: Path, tmp_path: Path, engine: list[str], line: str):
    """Text deep in a numeric column (past the rows checked up front): the worker's error, one line."""
    frame = pd.read_csv(project / "data" / "churn.csv").head(1000)
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    frame.loc[900, "tenure_months"] = "long"
    frame.to_csv(tmp_path / "late.csv", index=False)
    command = [sys.executable, "-m", "framework.cli", "batch", "churn", "--input", str(tmp_path / "late.csv"),
               "--output", str(tmp_path / "scored"), *engine]  # a process of its own: what a user's terminal shows
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    if "spark" in engine:
        env["TMPDIR"] = str(tmp_path)  # the Spark log file the error names stays for the user: here, in tmp_path
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(line.format(file=tmp_path / "late.csv")), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "scored" / "_manifest.json").exists()


def test_spark_without_the_extra_is_one_line(project: Path):
    """pyspark missing (blocked here): one line naming the extra, exit 1, nothing written."""
    code = ("import sys; sys.modules['pyspark'] = None; from framework.cli import main; "
            "sys.argv = ['mlops', 'batch', 'churn', '--input', 'data/churn.csv', '--output', 'never', '--engine', 'spark']; "
            "main()")
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.strip() == ("--engine: spark needs pyspark, which is not installed: "
                                   "pip install 'mlops-recipes[spark]'")
    assert not (project / "never").exists()


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["--engine", "flink"], 2, "Invalid value for '--engine'"),
        (["--master", "local[2]"], 1, "--master: is Spark's master URL: pass it with --engine spark"),
    ],
)
def test_engine_options_are_checked(project: Path, args: list[str], code: int, line: str):
    result = run_cli("batch", "churn", "--input", "data/churn.csv", "--output", "never", *args)
    assert result.exit_code == code
    assert line in result.stderr and "Traceback" not in result.stderr
    assert not (project / "never").exists()
