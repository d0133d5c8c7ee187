"""What the framework tells SGLang exists in the release it runs (the `sglang` extra's
pin, whose image the Deployment runs): every flag of the generated container, the
ServerArgs field behind it, every quantization, dtype and load format it passes, the
quantization table of the recipe rules, the metric names of the PrometheusRule and the
dashboard, and the routes the probes and the OpenAI clients call. Read from SGLang's
source without importing it: see tests/targets/sglang_source.py for where the files
come from."""

from __future__ import annotations

import re

import pytest

from framework.contracts.llm import SGLANG_LOAD_FORMATS, SGLANG_MODULE
from framework.recipe.checks import QUANTIZATION_BY_BACKEND
from framework.recipe.serving import SGLANG_IMAGE, SglangServing
from framework.targets import metrics, metrics_sglang, monitoring
from framework.targets.kubernetes import sglang
from tests.targets import sglang_source
from tests.targets.conftest import VARIANTS, load_variant


@pytest.fixture(scope="module")
def release() -> sglang_source.SglangSource:
    try:
        return sglang_source.source(sglang_source.pin())
    except sglang_source.Unreachable as error:
        pytest.skip(f"the SGLang source is not cached in .tools/ and {error} (run `make tools` online)")


def _recipes() -> list:
    """The sglang variants, and the first with every optional argument once per quantization."""
    recipes = [load_variant(v) for v in sorted(VARIANTS) if load_variant(v).serving.backend == "sglang"]
    assert recipes
    first = recipes[0]
    for quantization in sorted(QUANTIZATION_BY_BACKEND["sglang"] - {"none"}):
        source = "/models/qwen.Q4_K_M.gguf" if quantization == "gguf" else first.model.source
        model = first.model.model_copy(update={"revision": "abc123", "trust_remote_code": True,
                                               "quantization": quantization, "source": source})
        serving = first.serving.model_copy(update={"served_model_name": "assistant"})
        recipes.append(first.model_copy(update={"model": model, "serving": serving}))
    return recipes


def _flags(args: list[str]) -> list[str]:
    return [a for a in args if a.startswith("-")]


def _value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def test_the_reader_finds_sglangs_arguments(release):
    flags = sglang_source.server_flags(release)
    assert len(flags) > 200, "too few flags: the reader no longer finds SGLang's arguments"
    assert {"--model-path", "--tp-size", "--mem-fraction-static", "--context-length", "--enable-metrics"} <= flags
    assert "--tensor-parallel" not in flags and "--max-model-len" not in flags
    assert sglang_source.flag_fields(release)["--tp-size"] == "tp_size"
    assert {"awq", "gptq", "fp8"} <= sglang_source.choices(release, "--quantization")
    assert "sglang:num_running_reqs" in sglang_source.metric_names(release)


def test_the_pin_is_the_images():
    """The default image is the pinned release's (pyproject's `sglang` extra)."""
    version = sglang_source.pin()
    assert SGLANG_IMAGE.startswith(f"lmsysorg/sglang:v{version}-cu")
    assert SglangServing.model_fields["image"].default == SGLANG_IMAGE


def test_every_flag_and_value_exists_in_the_pinned_sglang(release):
    flags, fields = sglang_source.server_flags(release), sglang_source.flag_fields(release)
    quantizations = sglang_source.choices(release, "--quantization")
    dtypes = sglang_source.choices(release, "--dtype")
    load_formats = sglang_source.choices(release, "--load-format")
    recipes = _recipes()
    for recipe in recipes:
        args = sglang.args(recipe)
        emitted = set(_flags(args))
        assert emitted <= flags, f"not an sglang {release.version} flag: {emitted - flags}"
        assert all(flag in fields for flag in emitted), f"no ServerArgs field behind {emitted - set(fields)}"
        assert _value(args, "--dtype") in dtypes
        assert _value(args, "--quantization") in quantizations | {None}
        assert _value(args, "--load-format") in load_formats | {None}
    every = set(_flags(sglang.args(recipes[-1])))
    assert {"--revision", "--trust-remote-code", "--quantization", "--enable-metrics", "--host"} <= every
    assert set(SGLANG_LOAD_FORMATS) <= load_formats


def test_quantizations_allowed_are_sglangs(release):
    """The rules' table: every method but none is one of SGLang's --quantization choices;
    the recipe's dtypes are all SGLang's."""
    assert QUANTIZATION_BY_BACKEND["sglang"] - {"none"} <= sglang_source.choices(release, "--quantization")
    assert set(SglangServing.dtypes) <= sglang_source.choices(release, "--dtype")


def test_the_container_runs_the_launch_server_module(release):
    assert sglang_source.LAUNCH_SERVER == SGLANG_MODULE.replace(".", "/") + ".py"
    assert "__main__" in release.files[sglang_source.LAUNCH_SERVER]
    pod = sglang.server(load_variant("support-sglang"))
    (container,) = pod.containers
    assert container["command"] == ["python3", "-m", SGLANG_MODULE]
    assert container["args"] == sglang.args(load_variant("support-sglang"))
    assert {"/health", "/v1/chat/completions", "/v1/completions", "/v1/models"} <= sglang_source.routes(release)
    assert container["startupProbe"]["httpGet"]["path"] == "/health"


def test_the_metrics_queried_are_sglangs(release):
    """Every `sglang:` series the PrometheusRule and the dashboard read is one the release
    registers (a histogram by its buckets), and they read only those."""
    known = sglang_source.metric_names(release)
    for series in metrics_sglang.SERIES:
        assert series.removesuffix("_bucket") in known, series
    recipe = load_variant("support-sglang")
    rule = str(monitoring.prometheus_rule(recipe))
    board = str(monitoring.dashboard(recipe))
    alerted, used = set(re.findall(r"sglang:[a-z0-9_]+", rule)), set(re.findall(r"sglang:[a-z0-9_]+", rule + board))
    assert {"sglang:http_responses_total", "sglang:e2e_request_latency_seconds_bucket"} <= alerted
    assert {"sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:gen_throughput", "sglang:token_usage",
            "sglang:time_to_first_token_seconds_bucket"} <= used
    assert used <= set(metrics.SERIES_NAMES)
    assert "vllm:" not in rule + board and "tgi_" not in rule + board
