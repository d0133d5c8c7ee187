"""`data.source.feast`: the model's features read from a Feast feature view.

The rows of `data.source.uri` are the entity/label rows (entity key, event timestamp,
target, extra columns); training joins the view's features onto them point-in-time
correct (`get_historical_features`), and the serving app can look them up in the online
store by entity id. The store's settings per environment (registry, online store) live
here, so `generate` writes one `feature_store.yaml` per env; secrets are references."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from framework.recipe.base import Section
from framework.recipe.types import Cron, SecretRef

Column = Annotated[str, Field(min_length=1, max_length=128)]


class SqliteOnlineStore(Section):
    type: Literal["sqlite"] = Field(description="An sqlite file: the embedded default, for dev.")
    path: str = Field(default="data/online_store.db", min_length=1,
                      description="The sqlite file, relative to the feature repository (or absolute).")


class RedisOnlineStore(Section):
    type: Literal["redis"] = Field(description="A Redis server or cluster.")
    redis_type: Literal["redis", "redis_cluster"] = Field(default="redis", description="One server or a cluster.")
    connection_string: SecretRef = Field(
        description="Secret holding Feast's connection string (host:port,password=...)."
    )


class PostgresOnlineStore(Section):
    type: Literal["postgres"] = Field(description="A PostgreSQL database.")
    host: str = Field(min_length=1, description="Database host.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(default=5432, description="Database port.")
    database: str = Field(min_length=1, description="Database name.")
    db_schema: str = Field(default="public", min_length=1, description="Schema of the feature tables.")
    user: str = Field(min_length=1, description="Database user.")
    password: SecretRef = Field(description="Secret holding the user's password.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        default="require", description="libpq sslmode."
    )


OnlineStore = Annotated[SqliteOnlineStore | RedisOnlineStore | PostgresOnlineStore, Field(discriminator="type")]


class FeastSource(Section):
    repo: str = Field(default="feature_repo", min_length=1,
                      description="The Feast feature repository (its Python definitions), relative to the project.")
    feature_view: str = Field(min_length=1, description="The feature view the features are read from.")
    features: list[Column] | Literal["all"] = Field(
        default="all",
        description="The view's features the model reads (they must be data.features), or all of the view's.",
    )
    entity_key: Column | None = Field(
        default=None, description="Join key of the view's entity in the entity rows; default the entity's own."
    )
    timestamp_column: Column = Field(
        default="event_timestamp",
        description="Column of the entity rows holding when each label was observed (the join's point in time).",
    )
    project: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_]*$")] | None = Field(
        default=None, description="Feast project (letters, digits, _); default the recipe name with _ for -."
    )
    registry: str = Field(
        default="data/registry.db", min_length=1,
        description="Feast registry: a path relative to the repository, or an s3:// or gs:// URI the jobs reach.",
    )
    online_store: OnlineStore = Field(
        default_factory=lambda: SqliteOnlineStore(type="sqlite"),
        description="Where the serving app looks features up: sqlite (dev), redis or postgres.",
    )
    materialize_schedule: Cron = Field(
        default="0 * * * *", description="When the CronJob materialises new feature rows into the online store."
    )

    @model_validator(mode="after")
    def _features_once(self) -> "FeastSource":
        if isinstance(self.features, list):
            repeated = sorted({f for f in self.features if self.features.count(f) > 1})
            if repeated:
                raise ValueError(f"features lists {', '.join(repeated)} more than once")
            if not self.features:
                raise ValueError("features is empty: name the view's features, or write all")
        return self
