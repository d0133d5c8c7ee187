"""SGLang's own metrics (backend sglang), as the pinned release exposes them with
`--enable-metrics` on its API port (`http`, path /metrics), and the PromQL over them
that metrics.py (requests, errors, latency: the alerts, the rollout analysis) and the
dashboard (monitoring.py) use. Names are those of python/sglang/srt/metrics/collector.py
and srt/utils/common.py of the release (tests/targets/test_llm_servers.py reads them
from its source):

* `sglang:http_responses_total{endpoint,status_code,method}`: every HTTP response by
  route template (the OpenAI routes are `/v1/...`); 5xx are errors. (The engine's
  `sglang:num_requests_total` counts finished requests only, never the failed ones.)
* `sglang:e2e_request_latency_seconds` and `sglang:time_to_first_token_seconds`:
  histograms (seconds, label model_name).
* gauges of the scheduler (labels model_name and the ranks): `sglang:num_running_reqs`,
  `sglang:num_queue_reqs`, `sglang:gen_throughput` (tokens/s), `sglang:token_usage`
  (the share of the KV cache pool in use).

Like vLLM, no model-version label: traffic per version uses the pods' track. Each
function takes the recipe's `metrics.Scope` and a window already checked by metrics.py
(this module imports nothing of the framework, so metrics.py can import it).
"""

from __future__ import annotations

HTTP_RESPONSES = "sglang:http_responses_total"
API_ENDPOINTS = "/v1/.+"  # the OpenAI routes (health, metrics and the like excluded)
ERROR_STATUS = "5.."
E2E_LATENCY = "sglang:e2e_request_latency_seconds"  # histogram, seconds
TIME_TO_FIRST_TOKEN = "sglang:time_to_first_token_seconds"  # histogram, seconds
RUNNING = "sglang:num_running_reqs"
QUEUED = "sglang:num_queue_reqs"
GEN_THROUGHPUT = "sglang:gen_throughput"  # tokens per second
TOKEN_USAGE = "sglang:token_usage"  # share of the KV cache pool in use, 0..1

# The series the queries read (a histogram by its buckets).
SERIES = (HTTP_RESPONSES, f"{E2E_LATENCY}_bucket", f"{TIME_TO_FIRST_TOKEN}_bucket", RUNNING, QUEUED, GEN_THROUGHPUT,
          TOKEN_USAGE)


def responses(s, errors: bool = False) -> str:
    """The OpenAI routes' responses (`errors`: the 5xx ones) of the scope's pods."""
    extra = [("endpoint", "=~", API_ENDPOINTS)] + ([("status_code", "=~", ERROR_STATUS)] if errors else [])
    return s.selector(HTTP_RESPONSES, *extra)


def time_to_first_token(s, quantile: float, window: str) -> str:
    """The `quantile` of the time to the first token, in seconds."""
    return f"histogram_quantile({quantile!r}, sum by (le) (rate({s.selector(TIME_TO_FIRST_TOKEN + '_bucket')}[{window}])))"


def running(s) -> str:
    """Requests each pod decodes now."""
    return f"sum by (pod) ({s.selector(RUNNING)})"


def queued(s) -> str:
    """Requests waiting in each pod's queue."""
    return f"sum by (pod) ({s.selector(QUEUED)})"


def throughput(s) -> str:
    """Tokens each pod generates per second."""
    return f"sum by (pod) ({s.selector(GEN_THROUGHPUT)})"


def token_usage(s) -> str:
    """The share of each pod's KV cache pool in use (the fullest rank's)."""
    return f"max by (pod) ({s.selector(TOKEN_USAGE)})"
