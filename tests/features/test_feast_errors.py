"""Feast's bad input, each one line naming the key or file, exit 1, no traceback: the
extra not installed, definitions Feast cannot import, a view named only at run time
that is not there, a view not registered yet, entity rows without the entity column, an
online store never materialised."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from framework import api
from framework.errors import MlopsError
from tests.conftest import run_cli
from tests.features.conftest import feast_project


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = feast_project(tmp_path / "proj")
    monkeypatch.chdir(project)
    return project


def _recipe(root: Path, *overrides: str):
    return api.load_recipe("churn_features", overrides=list(overrides), project=root).recipe


def _one_line(error: pytest.ExceptionInfo) -> str:
    assert len(error.value.problems) == 1
    return str(error.value.problems[0])


def test_without_the_extra_apply_names_it(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "feast", None)  # what `import feast` does when it is not installed
    result = run_cli("apply", "churn_features")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "data.source.feast: reading a Feast feature view needs the feast extra: pip install -e '.[feast]'")
    assert "Traceback" not in result.stderr


def test_definitions_feast_cannot_import(root: Path) -> None:
    from framework.runtime.features.register import register

    (root / "feature_repo" / "broken.py").write_text("from feast import Entity\nEntity(name=\n")
    with pytest.raises(MlopsError) as error:
        register(_recipe(root), root)
    assert _one_line(error).startswith(f"{(root / 'feature_repo').resolve()}: data.source.feast.repo: Feast could "
                                       "not read the definitions: SyntaxError:")


def test_a_view_named_at_run_time_is_checked_by_apply(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.runtime.features.register import register

    definitions = root / "feature_repo" / "features.py"
    definitions.write_text("import os\n" + definitions.read_text().replace(
        'name="customer_features"', 'name=os.environ["VIEW_NAME"]'))
    monkeypatch.setenv("VIEW_NAME", "customer_feature")
    recipe = _recipe(root)  # validate cannot know the name, so it leaves it to apply
    with pytest.raises(MlopsError) as error:
        register(recipe, root)
    assert _one_line(error) == (
        f"data.source.feast.feature_view: no feature view 'customer_features' in {(root / 'feature_repo').resolve()} "
        "(did you mean 'customer_feature'?); it defines: customer_feature")


def test_training_before_apply_registered_the_view(root: Path) -> None:
    from framework.runtime.features.join import join_features

    with pytest.raises(MlopsError) as error:
        join_features(_recipe(root), root, pd.read_csv(root / "data" / "churn_labels.csv"))
    assert _one_line(error) == (
        f"data.source.feast.feature_view: feature view 'customer_features' is not in the Feast registry "
        f"data/registry.db of {root / 'feature_repo'}: run `mlops apply` (its feast-apply step registers it)")


def test_entity_rows_without_the_entity_column(root: Path) -> None:
    from framework.runtime.features.join import join_features
    from framework.runtime.features.register import register

    recipe = _recipe(root)
    register(recipe, root)
    rows = pd.read_csv(root / "data" / "churn_labels.csv").rename(columns={"customer_id": "customer"})
    with pytest.raises(MlopsError) as error:
        join_features(recipe, root, rows)
    assert _one_line(error) == (
        "data/churn_labels.csv: data.source.feast.entity_key: the entity rows have no column 'customer_id' (did you "
        "mean 'customer'?); they have: customer, event_timestamp, churned, gender")


def test_serving_from_a_store_never_materialised(root: Path) -> None:
    from framework.contracts.triton import model_config
    from framework.runtime.serving.lookup import OnlineLookup
    from framework.runtime.features.register import register

    recipe = _recipe(root)
    register(recipe, root)
    with pytest.raises(MlopsError) as error:
        OnlineLookup(recipe, root, model_config(recipe))
    assert _one_line(error) == (
        "data.source.feast.online_store: feature view 'customer_features' was never materialised into the sqlite "
        "online store, so no entity can be looked up: run `mlops apply` (its materialize step) first")


def test_an_unset_secret_variable_is_named(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.runtime.features.store import open_store

    monkeypatch.delenv("FEAST_REDIS_CONNECTION_STRING", raising=False)
    with pytest.raises(MlopsError) as error:
        open_store(_recipe(root, "env=staging"), root)
    assert _one_line(error) == (
        "data.source.feast.online_store: the environment variable FEAST_REDIS_CONNECTION_STRING is not set: it holds "
        "the online store's secret (from the Kubernetes Secret the recipe names)")


def test_staging_registers_into_its_own_registry_without_reaching_redis(root: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`apply --target kubernetes` registers the definitions before the manifests (the
    RayJob and the CronJob read the registry); here the staging registry is a shared path."""
    from framework.runtime.features.register import register

    registry = tmp_path / "team-volume" / "registry.db"
    monkeypatch.setenv("FEAST_REDIS_CONNECTION_STRING", "redis.invalid:6379")
    result = api.apply("churn_features", env="staging", target="kubernetes", dry_run=True, project=root)
    assert result.steps[0] == ("feast apply: register feature_repo/ in the registry s3://example-ml-data/feast/staging/"
                               "registry.db (the cluster's CronJob materialises the view into the online store)")
    done = register(_recipe(root, "env=staging", f"data.source.feast.registry={registry}"), root)
    assert (done.project, done.views, done.entities) == ("churn_features", 1, 1) and registry.is_file()


def test_a_cluster_job_gets_devs_registry_in_its_upload(root: Path) -> None:
    """Ray's upload of the project honours .gitignore, which keeps feature_repo/data/*.db
    out: the submitter carries the registry in, and the job's join reads it there."""
    from framework.runtime.features.join import join_features
    from framework.runtime.features.register import carry_registry, register
    from framework.runtime.submit import snapshot

    recipe = _recipe(root)
    register(recipe, root)
    with snapshot(root) as upload:
        assert not (upload / "feature_repo" / "data" / "registry.db").exists()
        assert carry_registry(recipe, root, upload) == upload / "feature_repo" / "data" / "registry.db"
        joined, _ = join_features(recipe, upload, pd.read_csv(upload / "data" / "churn_labels.csv"))
    assert len(joined) == 5000 and joined["tenure_months"].notna().all()
    assert carry_registry(_recipe(root, "env=staging"), root, upload) is None  # the shared registry stays put


def test_importing_feast_leaves_prometheus_in_process_mode() -> None:
    """feast.metrics sets PROMETHEUS_MULTIPROC_DIR at import: the serving app's metrics and
    every Ray process an apply starts afterwards would inherit multiprocess mode (and a
    folder Feast deletes at exit). The runtime imports Feast without that."""
    import subprocess

    code = ("import os; from framework.runtime.features.store import import_feast; import_feast(); "
            "import prometheus_client.values as v; "
            "print(sorted(k for k in os.environ if k.startswith('PROMETHEUS_MULTIPROC')), v.ValueClass.__name__)")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PROMETHEUS_MULTIPROC")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).parents[2]).stdout.strip().splitlines()[-1]
    assert out == "[] MutexValue"
