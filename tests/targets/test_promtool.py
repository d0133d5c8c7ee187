"""Every generated PrometheusRule checked by Prometheus' own `promtool`: `check rules` on
the rule groups of every file generate writes and every golden variant, and `test
rules` with input series on each side of the thresholds, so each alert fires above and
stays quiet below. `make test` installs promtool (Debian's `prometheus` package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PROMTOOL = shutil.which("promtool")
# CI installs it (`make tools`): missing there is a failure, not a skip.
pytestmark = pytest.mark.skipif(PROMTOOL is None and os.environ.get("CI") != "true",
                                reason="promtool missing: `make tools` installs it (apt prometheus)")


def _rule_files() -> list[Path]:
    return sorted(p for root in (REPO / "generated", REPO / "tests" / "golden") for p in root.rglob("*.yaml")
                  if "kind: PrometheusRule" in p.read_text(encoding="utf-8"))


def _groups(path: Path) -> dict:
    (rule,) = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d and d.get("kind") == "PrometheusRule"]
    return {"groups": rule["spec"]["groups"]}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_there_are_rules_to_check():
    assert len(_rule_files()) >= 20


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_promtool_accepts_the_rule_groups(path, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_groups(path)), encoding="utf-8")
    done = _promtool("check", "rules", str(rules), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


SERVING_RUNBOOK = ("Check `mlops rollout status churn --env dev`; if a candidate is rolling out, `mlops rollout rollback "
                   "churn`; else look at the serving pods' logs and the dashboard.")
DRIFT_RUNBOOK = ("Run `mlops monitor churn` to see the drifted features; if the change is real, retrain (`mlops apply "
                 "churn --env dev`).")
# Series on both sides of churn's (dev) thresholds, as Triton and `mlops monitor` expose them:
# 5% errors, 250 ms p99, PSI 0.2.
TRITON = 'namespace="ml-dev",service="churn"'
DRIFT = 'namespace="ml-dev",model="churn"'
CHURN_DEV_TESTS = [
    {  # 10 failures and 90 successes a minute: 10% > 5%
        "interval": "1m",
        "input_series": [{"series": f"nv_inference_request_failure{{{TRITON}}}", "values": "0+10x20"},
                         {"series": f"nv_inference_request_success{{{TRITON}}}", "values": "0+90x20"}],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "ModelServingHighErrorRate", "exp_alerts": [{
            "exp_labels": {"severity": "warning", "recipe": "churn", "environment": "dev", "namespace": "ml-dev"},
            "exp_annotations": {"description": "10% of requests failed over the last 5m (threshold 5%).",
                                "summary": "churn (dev, namespace ml-dev): more than 5% of requests fail",
                                "runbook": SERVING_RUNBOOK}}]}],
    },
    {  # 2 failures and 98 successes: 2%, quiet
        "interval": "1m",
        "input_series": [{"series": f"nv_inference_request_failure{{{TRITON}}}", "values": "0+2x20"},
                         {"series": f"nv_inference_request_success{{{TRITON}}}", "values": "0+98x20"}],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "ModelServingHighErrorRate", "exp_alerts": []}],
    },
    {  # no failure counter at all (Triton exports none before the first failure): quiet
        "interval": "1m",
        "input_series": [{"series": f"nv_inference_request_success{{{TRITON}}}", "values": "0+98x20"}],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "ModelServingHighErrorRate", "exp_alerts": []}],
    },
    {  # p99 300 ms fires, 200 ms stays quiet (the summary is in microseconds)
        "interval": "1m",
        "input_series": [{"series": f'nv_inference_request_summary_us{{{TRITON},quantile="0.99",pod="a"}}',
                          "values": "300000x20"},
                         {"series": f'nv_inference_request_summary_us{{namespace="ml-dev",service="other",quantile="0.99"}}',
                          "values": "900000x20"}],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "ModelServingHighLatencyP99", "exp_alerts": [{
            "exp_labels": {"severity": "warning", "recipe": "churn", "environment": "dev", "namespace": "ml-dev"},
            "exp_annotations": {"description": "p99 latency is 300ms over the last 5m (threshold 250 ms).",
                                "summary": "churn (dev, namespace ml-dev): p99 latency above 250 ms",
                                "runbook": SERVING_RUNBOOK}}]}],
    },
    {
        "interval": "1m",
        "input_series": [{"series": f'nv_inference_request_summary_us{{{TRITON},quantile="0.99",pod="a"}}',
                          "values": "200000x20"}],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "ModelServingHighLatencyP99", "exp_alerts": []}],
    },
    {  # one feature's PSI above 0.2 fires for that feature only
        "interval": "1m",
        "input_series": [{"series": f'model_drift_score{{{DRIFT},feature="tenure_months"}}', "values": "0.35x5"},
                         {"series": f'model_drift_score{{{DRIFT},feature="contract"}}', "values": "0.1x5"}],
        "alert_rule_test": [{"eval_time": "2m", "alertname": "ModelDriftDetected", "exp_alerts": [{
            "exp_labels": {"severity": "warning", "recipe": "churn", "environment": "dev", "namespace": "ml-dev",
                           "on_drift": "alert", "feature": "tenure_months"},
            "exp_annotations": {"description": "psi drift score 0.35 of feature tenure_months over the last 24h of "
                                               "served traffic exceeds 0.2.",
                                "summary": "churn (dev): feature tenure_months drifted", "runbook": DRIFT_RUNBOOK}}]}],
    },
]


def test_churns_alerts_fire_above_their_thresholds_and_stay_quiet_below(tmp_path):
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(_groups(REPO / "generated" / "churn" / "dev" / "k8s" / "prometheusrule.yaml")), encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
                                                         "tests": CHURN_DEV_TESTS}), encoding="utf-8")
    done = _promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
