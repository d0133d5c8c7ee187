"""Feast definitions of the churn features: the `customer` entity and the
`customer_features` view over feature_repo/data/customer_features.parquet (built by
data/make_churn_features.py). `mlops apply churn_features` registers them (`feast
apply`) and materialises the view into the online store; the store's settings per
environment come from the recipe (generated/<recipe>/<env>/feast/feature_store.yaml)."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64, String

customer = Entity(name="customer", join_keys=["customer_id"], description="A customer of the service.")

customer_source = FileSource(
    name="customer_source",
    path="data/customer_features.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

customer_features = FeatureView(
    name="customer_features",
    entities=[customer],
    ttl=timedelta(days=365),
    schema=[
        Field(name="tenure_months", dtype=Int64),
        Field(name="monthly_charges", dtype=Float64),
        Field(name="total_charges", dtype=Float64),
        Field(name="support_calls", dtype=Int64),
        Field(name="num_products", dtype=Int64),
        Field(name="senior_citizen", dtype=Int64),
        Field(name="contract", dtype=String),
        Field(name="payment_method", dtype=String),
    ],
    online=True,
    source=customer_source,
)
