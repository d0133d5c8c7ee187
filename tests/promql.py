"""PromQL as the tests read it: the metric names an expression selects."""

from __future__ import annotations

import promql_parser

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def series_names(expr: str) -> set[str]:
    """Every metric name an expression reads; it must parse (Grafana variables aside)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names
