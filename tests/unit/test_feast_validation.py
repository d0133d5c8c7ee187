"""`data.source.feast` checked against the feature repository at validate time, without
importing Feast: the view, its features, its entity, and `data.features`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework import api
from framework.errors import RecipeError
from framework.recipe.feast_catalog import read_repo
from tests.conftest import REPO


def messages(*overrides: str, project: Path = REPO) -> list[str]:
    try:
        api.load_recipe("churn_features", overrides=list(overrides), project=project)
    except RecipeError as error:
        return [f"{p.key}: {p.message}" for p in error.problems]
    return []


def test_the_example_validates_in_every_env() -> None:
    for env in ("dev", "staging", "prod"):
        assert messages(f"env={env}") == []


def test_reads_the_repository_without_importing_feast() -> None:
    catalog = read_repo(REPO / "feature_repo")
    view = catalog.views["customer_features"]
    assert catalog.complete and view.join_keys == ("customer_id",)
    assert view.features == ("tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products",
                             "senior_citizen", "contract", "payment_method")


def test_an_unknown_view_says_which_it_meant() -> None:
    assert messages("data.source.feast.feature_view=customer_feature") == [
        "data.source.feast.feature_view: no feature view 'customer_feature' in feature_repo (did you mean "
        "'customer_features'?); it defines: customer_features"]


def test_an_unknown_feature_says_which_it_meant() -> None:
    assert messages("data.source.feast.features=[tenure_months,monthly_charge]") == [
        "data.source.feast.features: feature 'monthly_charge' is not in feature view 'customer_features' (did you "
        "mean 'monthly_charges'?); it has: tenure_months, monthly_charges, total_charges, support_calls, "
        "num_products, senior_citizen, contract, payment_method"]


def test_the_features_read_are_the_models_features() -> None:
    assert messages("data.source.feast.features=[tenure_months,monthly_charges,total_charges,support_calls,"
                    "num_products,senior_citizen,contract]") == [
        "data.features: payment_method is not read from feature view 'customer_features': the features come from data.source.feast.features (contract, monthly_charges, "
        "num_products, senior_citizen, support_calls, tenure_months, total_charges)"]


def test_a_missing_repository_is_named() -> None:
    assert messages("data.source.feast.repo=feature_rep") == [
        "data.source.feast.repo: no Feast repository at feature_rep (did you mean 'feature_repo'?): give the folder "
        "holding the feature definitions (.py files)"]


def test_an_entity_key_the_view_has_not() -> None:
    assert messages("+data.source.feast.entity_key=customer") == [
        "data.source.feast.entity_key: 'customer' is not a join key of feature view 'customer_features' (did you "
        "mean 'customer_id'?); its entities join on: customer_id"]


def test_the_timestamp_is_not_a_feature() -> None:
    found = messages("data.source.feast.timestamp_column=tenure_months")
    assert found == ["data.source.feast.timestamp_column: data.source.feast.timestamp_column 'tenure_months' is a "
                     "column of the entity rows, not a feature: remove it from data.features"]


def test_clusters_need_a_shared_registry_and_online_store() -> None:
    assert messages("env=staging", "data.source.feast.registry=data/registry.db",
                    "data.source.feast.online_store.type=sqlite",
                    "~data.source.feast.online_store.connection_string") == [
        "data.source.feast.registry: data.source.feast.registry 'data/registry.db' is a file in the checkout, which "
        "the jobs and serving pods of environment staging cannot see: use an s3:// or gs:// URI (or an absolute "
        "path on a shared volume)",
        "data.source.feast.online_store.type: an sqlite online store is a file on one machine, which the serving "
        "pods of environment staging cannot share: use type redis or postgres"]


def test_a_secret_is_never_a_value() -> None:
    found = messages("env=staging", "data.source.feast.online_store.connection_string='redis:6379,password=x'")
    assert len(found) == 1 and "never a literal value" in found[0]


def _project_with(tmp_path: Path, definitions: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(REPO / "recipes", project / "recipes")
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / "feature_repo").mkdir()
    (project / "feature_repo" / "defs.py").write_text(textwrap.dedent(definitions))
    return project


def test_a_view_without_entity(tmp_path: Path) -> None:
    project = _project_with(tmp_path, """
        from feast import FeatureView, Field
        from feast.types import Int64
        customer_features = FeatureView(name="customer_features", entities=[], schema=[Field(name="x", dtype=Int64)])
    """)
    assert messages("data.features=[x]", "data.categorical=[]", "~data.expectations", project=project) == [
        "data.source.feast.feature_view: feature view 'customer_features' has no entity, so its rows cannot be "
        "joined onto entity rows: give it entities=[...]"]


def test_views_named_at_run_time_are_left_to_apply(tmp_path: Path) -> None:
    project = _project_with(tmp_path, """
        import os
        from feast import Entity, FeatureView
        customer = Entity(name="customer", join_keys=["customer_id"])
        view = FeatureView(name=os.environ["VIEW"], entities=[customer])
    """)
    assert messages(project=project) == []


def test_validate_never_imports_feast() -> None:
    """An ast read keeps validate as fast as any recipe's; a Feast import would not."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from framework import api
        from framework.recipe.feast_catalog import read_repo
        read_repo(Path("feature_repo"))
        api.load_recipe("churn_features", project=Path.cwd())
        print(sorted(m for m in sys.modules if m.split(".")[0] == "feast"))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
