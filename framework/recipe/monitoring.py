"""`monitoring`: Prometheus metrics, drift detection, alerts and the Grafana dashboard."""


from typing import Annotated, Literal

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import Cron, Duration, Fraction, PositiveInt


class Metrics(Section):
    enabled: bool = Field(default=True, description="Expose /metrics and create a ServiceMonitor.")
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_-]*$")] = Field(default="/metrics", description="Scrape path.")
    scrape_interval: Duration = Field(default="30s", description="How often Prometheus scrapes.")
    log_sample_rate: Fraction = Field(
        default=0.1, description="Share of requests whose inputs and outputs are logged for drift checks."
    )


class Drift(Section):
    method: Literal["evidently", "psi"] = Field(default="psi", description="Drift test.")
    threshold: Annotated[float, Field(gt=0, le=10)] = Field(
        default=0.2, description="Score above which a feature drifts (PSI or evidently drift score)."
    )
    schedule: Cron = Field(default="0 * * * *", description="When the drift check runs (cron).")
    window: Duration = Field(default="24h", description="Served traffic compared with the reference.")
    min_rows: PositiveInt = Field(default=500, description="Fewest current rows a decision needs.")
    on_drift: Literal["alert", "retrain"] = Field(default="alert", description="What drift triggers.")


class Alerts(Section):
    max_error_rate: Fraction = Field(default=0.05, description="Alert when the error rate exceeds this.")
    max_latency_p99_ms: Annotated[float, Field(gt=0)] = Field(default=500.0, description="Alert when p99 latency exceeds this.")
    duration: Duration = Field(default="5m", description="How long a condition holds before the alert fires.")
    severity: Literal["info", "warning", "critical"] = Field(default="warning", description="Severity label.")


class Dashboard(Section):
    enabled: bool = Field(default=True, description="Generate a Grafana dashboard.")
    refresh: Duration = Field(default="30s", description="Dashboard refresh interval.")


class Monitoring(Section):
    metrics: Metrics = Field(default_factory=Metrics, description="Prometheus metrics of the serving app.")
    drift: Drift | None = Field(default_factory=Drift, description="Drift detection; null disables it.")
    alerts: Alerts = Field(default_factory=Alerts, description="PrometheusRule alerts.")
    dashboard: Dashboard = Field(default_factory=Dashboard, description="Grafana dashboard.")
