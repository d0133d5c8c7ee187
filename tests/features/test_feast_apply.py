"""`mlops apply churn_features` trains from Feast and serves with online lookups: the
point-in-time join, the online store, and the skew test (online features and served
predictions equal the offline ones for the same entities and timestamp). Slow: one
apply through an embedded Ray, shared by the module."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework import api

pytestmark = pytest.mark.slow

FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products", "senior_citizen",
            "contract", "payment_method"]


def _post(url: str, body) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://{url}/v2/models/churn-features/infer", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_apply_registers_materialises_and_trains_from_the_view(applied) -> None:
    root, result = applied
    assert "feast apply: 1 entity and 1 feature view in project churn_features" in result.stderr
    assert "into the sqlite online store" in result.stderr
    assert "churn-features (dev): model version 1 (candidate), gates passed" in result.stdout
    assert (root / "feature_repo" / "data" / "registry.db").is_file()
    assert (root / "feature_repo" / "data" / "online_store.db").is_file()


def test_the_join_is_point_in_time_correct(applied) -> None:
    from framework.runtime.features.join import join_features

    root, _ = applied
    recipe = api.load_recipe("churn_features", project=root).recipe
    labels = pd.read_csv(root / "data" / "churn_labels.csv")
    joined, seconds = join_features(recipe, root, labels)
    assert list(joined["customer_id"]) == list(labels["customer_id"])  # the label rows' order
    current = pd.read_csv(Path(__file__).parents[2] / "data" / "churn.csv")
    # the snapshot of 2026-03-01 (data/churn.csv's rows), never the later one of 2026-06-01
    pd.testing.assert_frame_equal(joined[FEATURES].reset_index(drop=True), current[FEATURES], check_dtype=False)
    assert seconds > 0


def test_online_features_and_served_predictions_equal_the_offline_ones(applied) -> None:
    """The skew test: for the same entities at the same time, the online store's features
    equal the historical join's, and the prediction served from entity ids equals the one
    served from the offline features in the request."""
    from framework.runtime.features.join import join_features
    from framework.runtime.serving.lookup import OnlineLookup
    from framework.runtime.serving.host import EmbeddedServer, build_app

    root, _ = applied
    recipe = api.load_recipe("churn_features", project=root).recipe
    ids = ["C00000", "C00017", "C01234", "C04999", "C02500", "C00042"]
    now = datetime.now(timezone.utc).isoformat()
    offline, _ = join_features(recipe, root, pd.DataFrame({"customer_id": ids, "event_timestamp": now}))
    app = build_app(recipe, None, root / ".mlops", root=root)
    lookup = app.lookups["churn-features"]
    assert isinstance(lookup, OnlineLookup)
    online = lookup.features(np.array(ids, dtype=object).reshape(-1, 1))
    for name in FEATURES:
        expected = offline[name].to_numpy()
        got = online[name].reshape(-1)
        if name in ("contract", "payment_method"):
            assert list(got) == list(expected), name
        else:
            np.testing.assert_allclose(got.astype(float), expected.astype(float), rtol=1e-6, err_msg=name)
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in offline[FEATURES].to_dict("records")]
    with EmbeddedServer(app) as server:
        by_id = _post(server.url, [{"customer_id": i} for i in ids])
        by_features = _post(server.url, rows)
        missing = _post(server.url, {"inputs": [{"name": "customer_id", "shape": [3, 1], "datatype": "BYTES",
                                                 "data": ["C00000", "nobody", "C99999"]}]})
    assert by_id[0] == by_features[0] == 200
    assert by_id[1]["outputs"] == by_features[1]["outputs"]
    assert missing == (404, {"error": "no online features for customer_id nobody, C99999 in feature view "
                                      "'customer_features'"})


def test_a_join_that_matches_nothing_says_how_many_rows(applied) -> None:
    from framework.errors import MlopsError
    from framework.runtime.features.join import join_features

    root, _ = applied
    recipe = api.load_recipe("churn_features", project=root).recipe
    early = pd.DataFrame({"customer_id": ["C00000", "C00001", "C00002"], "event_timestamp": "2020-01-01T00:00:00Z"})
    with pytest.raises(MlopsError) as error:
        join_features(recipe, root, early)
    assert str(error.value.problems[0]) == (
        "data/churn_labels.csv: data.source.feast.feature_view: the point-in-time join is empty: none of the 3 label "
        "rows matched a row of feature view 'customer_features' (same customer_id, at or before its "
        "event_timestamp, within the view's ttl)")


def test_concurrent_lookups_share_reads_and_keep_their_own_404(applied) -> None:
    import asyncio

    from framework.contracts.triton import model_config
    from framework.runtime.serving.lookup import OnlineLookup
    from framework.runtime.serving.protocol import HttpError

    root, _ = applied
    recipe = api.load_recipe("churn_features", project=root).recipe
    lookup = OnlineLookup(recipe, root, model_config(recipe))
    reads: list[int] = []
    fetch = lookup._fetch
    lookup._fetch = lambda keys: (reads.append(len(keys)), fetch(keys))[1]
    ids = [f"C{i:05d}" for i in range(40)] + ["nobody"]

    async def many():
        return await asyncio.gather(*(lookup.lookup(np.array([[i]], dtype=object)) for i in ids),
                                    return_exceptions=True)

    results = asyncio.run(many())
    assert sum(reads) == len(ids) and len(reads) < len(ids)  # shared reads, every id read once
    assert [type(r) for r in results[:-1]] == [dict] * 40
    assert isinstance(results[-1], HttpError) and results[-1].status == 404 and "nobody" in results[-1].message
    one = lookup.features(np.array([["C00007"]], dtype=object))
    assert all(np.array_equal(one[k], results[7][k]) or one[k].dtype.kind == "f" and np.allclose(
        one[k], results[7][k], equal_nan=True) for k in one)


def test_the_run_records_the_view_and_the_joined_tables_hash(applied) -> None:
    import hashlib

    from framework.runtime.tracking import client

    root, _ = applied
    uri = f"sqlite:///{root / '.mlops' / 'mlflow.db'}"
    version = client(uri).get_model_version("churn-features", "1")
    tags = {k: v for k, v in version.tags.items() if k.startswith("mlops.data.")}
    digest = hashlib.sha256((root / "data" / "churn_labels.csv").read_bytes()).hexdigest()
    assert tags["mlops.data.uri"] == "data/churn_labels.csv" and tags["mlops.data.sha256"] == digest
    assert tags["mlops.data.feast"] == "churn_features:customer_features"
    assert len(tags["mlops.data.table_sha256"]) == 64
    run_tags = client(uri).get_run(version.run_id).data.tags
    assert {k: v for k, v in run_tags.items() if k.startswith("mlops.data.")} == tags


def test_lineage_names_the_view_and_the_joined_table(applied) -> None:
    root, _ = applied
    lines = api.lineage("churn_features", project=root).lines()
    features = [line for line in lines if line.startswith("  features: ")]
    assert len(features) == 1 and features[0].startswith(
        "  features: Feast view churn_features:customer_features, joined table sha256 ")
