"""What the framework tells the LLM servers exists in the releases it runs.

vLLM: every flag of the generated Deployment, and the engine arguments of the Ray
Serve LLM config, are read from the source of the vLLM release that runs them (the
`llm` extra's pin for the Deployment, Ray's own pin for Ray Serve LLM), without
importing vLLM: see tests/targets/vllm_source.py for where the files come from. The
quantization table of the recipe rules is checked against the same source. TGI has no
Python distribution to read: its flags are checked against the launcher reference.
"""

from __future__ import annotations

import tomllib

import pytest

from framework.recipe.checks import QUANTIZATION_BY_BACKEND, VLLM_PLUGIN_QUANTIZATIONS
from framework.targets import ray as ray_target
from framework.targets.kubernetes import tgi, vllm
from tests.targets import vllm_source
from tests.targets.conftest import VARIANTS, load_variant

# Ray Serve LLM sets these itself and refuses them in engine_kwargs.
RAY_OWNED_ENGINE_ARGS = {"model", "served_model_name", "distributed_executor_backend"}


@pytest.fixture(scope="module")
def deployment_vllm() -> vllm_source.VllmSource:
    return _source(vllm_source.llm_pin)


@pytest.fixture(scope="module")
def ray_vllm() -> vllm_source.VllmSource:
    return _source(vllm_source.ray_llm_pin)


def _source(pin) -> vllm_source.VllmSource:
    try:
        return vllm_source.source(pin())
    except vllm_source.Unreachable as error:
        pytest.skip(f"the vLLM source is not cached in .tools/ and {error} (run `make tools` online)")


def _variants(backend: str) -> list:
    return [load_variant(v) for v in sorted(VARIANTS) if load_variant(v).serving.backend == backend]


def _with_every_option(recipe, quantization: str):
    """The recipe with every optional argument switched on."""
    model = recipe.model.model_copy(update={"revision": "abc123", "trust_remote_code": True, "quantization": quantization})
    serving = recipe.serving.model_copy(update={"served_model_name": "assistant"})
    return recipe.model_copy(update={"model": model, "serving": serving})


def _flags(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("-")]


def _value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


# --- the source reader itself ----------------------------------------------------------
def test_the_flags_read_are_vllms(deployment_vllm):
    flags = vllm_source.serve_flags(deployment_vllm)
    assert len(flags) > 150, "too few flags: the reader no longer finds vLLM's arguments"
    assert {"--model", "--tensor-parallel-size", "--port", "--served-model-name", "--max-model-len"} <= flags
    assert "--tensor-parallel" not in flags and "--max-num-seq" not in flags
    assert {"awq", "gptq", "fp8"} <= vllm_source.quantization_methods(deployment_vllm)
    assert {"auto", "float16", "bfloat16", "float32"} <= vllm_source.dtypes(deployment_vllm)


def test_the_pins_are_the_projects(deployment_vllm, ray_vllm):
    assert deployment_vllm.version.startswith("0.33.")  # the llm extra: vllm==0.33.*
    assert ray_vllm.version == ray_target.RAY_LLM_VLLM_VERSION


# --- the vLLM Deployment -----------------------------------------------------------------
def test_every_vllm_flag_exists_in_the_pinned_vllm(deployment_vllm):
    flags = vllm_source.serve_flags(deployment_vllm)
    methods = vllm_source.quantization_methods(deployment_vllm) | set(VLLM_PLUGIN_QUANTIZATIONS)
    recipes = _variants("vllm")
    assert recipes
    recipes += [_with_every_option(recipes[0], q) for q in sorted(QUANTIZATION_BY_BACKEND["vllm"] - {"none"})]
    for recipe in recipes:
        args = vllm.args(recipe)
        assert set(_flags(args)) <= flags, f"not a vllm {deployment_vllm.version} flag: {set(_flags(args)) - flags}"
        assert _value(args, "--dtype") in vllm_source.dtypes(deployment_vllm)
        assert _value(args, "--quantization") in methods | {None}
    # the optional ones were emitted (else the loop above checked nothing of them)
    every = vllm.args(recipes[-1])
    assert {"--revision", "--trust-remote-code", "--quantization"} <= set(every)


def test_the_local_launcher_module_is_in_the_pinned_vllm(deployment_vllm):
    """The module a local apply starts (and the vLLM stand-in of tests/rag imitates) is,
    in the release the Deployment runs, a runnable module and the `vllm` console script
    that the image's `vllm serve` entrypoint runs."""
    from framework.contracts.llm import VLLM_MODULE

    assert vllm_source.LAUNCHER == VLLM_MODULE.replace(".", "/") + ".py"
    assert 'if __name__ == "__main__":\n    main()' in deployment_vllm.files[vllm_source.LAUNCHER]
    scripts = tomllib.loads(deployment_vllm.files[vllm_source.PROJECT])["project"]["scripts"]
    assert scripts["vllm"] == f"{VLLM_MODULE}:main"
    assert vllm_source.openai_image_entrypoint(deployment_vllm) == ["vllm", "serve"]


def test_vllm_image_is_the_pinned_release(deployment_vllm):
    """The default image is the pinned release's, whose entrypoint is `vllm serve`: the
    generated args are the whole command line after it."""
    (recipe, *_) = _variants("vllm")
    assert recipe.serving.image == f"vllm/vllm-openai:v{deployment_vllm.version}"
    entrypoint = vllm_source.openai_image_entrypoint(deployment_vllm)
    if entrypoint is None:
        pytest.skip("vLLM installed without its sdist: no Dockerfile to read")
    assert entrypoint == ["vllm", "serve"]


@pytest.mark.parametrize(("backend", "source"), [("vllm", "deployment_vllm"), ("ray_serve_llm", "ray_vllm")])
def test_quantizations_allowed_are_vllms(backend, source, request):
    """The rules' table: what vLLM builds in, and the plugin methods it does not."""
    src = request.getfixturevalue(source)
    built_in = vllm_source.quantization_methods(src)
    allowed = QUANTIZATION_BY_BACKEND[backend] - {"none"}
    plugins = set(VLLM_PLUGIN_QUANTIZATIONS)
    assert allowed - plugins <= built_in, f"vllm {src.version} lacks {allowed - plugins - built_in}"
    assert not plugins & built_in, f"vllm {src.version} builds {plugins & built_in} in again: drop the plugin rule"


# --- Ray Serve LLM ------------------------------------------------------------------------
def test_every_ray_serve_llm_engine_argument_exists_in_rays_vllm(ray_vllm):
    known = vllm_source.engine_kwargs(ray_vllm)
    assert {"tensor_parallel_size", "max_model_len", "quantization"} <= known and "tensor_parallel" not in known
    methods = vllm_source.quantization_methods(ray_vllm) | set(VLLM_PLUGIN_QUANTIZATIONS)
    recipes = _variants("ray_serve_llm")
    assert recipes
    recipes += [_with_every_option(recipes[0], q) for q in sorted(QUANTIZATION_BY_BACKEND["ray_serve_llm"] - {"none"})]
    for recipe in recipes:
        kwargs = ray_target.llm_engine_kwargs(recipe)
        assert set(kwargs) <= known, f"not an engine argument of vllm {ray_vllm.version}: {set(kwargs) - known}"
        assert not set(kwargs) & RAY_OWNED_ENGINE_ARGS
        assert kwargs["dtype"] in vllm_source.dtypes(ray_vllm)
        assert kwargs.get("quantization") in methods | {None}
    assert {"revision", "trust_remote_code", "quantization"} <= set(ray_target.llm_engine_kwargs(recipes[-1]))


# --- TGI ------------------------------------------------------------------------------------
# `text-generation-launcher --help` of TGI 3.x, as docs/source/reference/launcher.md of
# huggingface/text-generation-inference lists it (TGI is not a Python distribution the
# tests could read): the flags the generator may use, and --quantize's values.
TGI_LAUNCHER_FLAGS = {
    "--model-id", "--revision", "--validation-workers", "--sharded", "--num-shard", "--quantize", "--speculate",
    "--dtype", "--kv-cache-dtype", "--trust-remote-code", "--max-concurrent-requests", "--max-best-of",
    "--max-stop-sequences", "--max-top-n-tokens", "--max-input-tokens", "--max-input-length", "--max-total-tokens",
    "--waiting-served-ratio", "--max-batch-prefill-tokens", "--max-batch-total-tokens", "--max-waiting-tokens",
    "--max-batch-size", "--cuda-graphs", "--hostname", "--port", "--shard-uds-path", "--master-addr",
    "--master-port", "--huggingface-hub-cache", "--weights-cache-override", "--disable-custom-kernels",
    "--cuda-memory-fraction", "--rope-scaling", "--rope-factor", "--json-output", "--otlp-endpoint",
    "--otlp-service-name", "--cors-allow-origin", "--api-key", "--watermark-gamma", "--watermark-delta",
    "--tokenizer-config-path", "--disable-grammar-support", "--max-client-batch-size", "--lora-adapters",
    "--usage-stats", "--payload-limit", "--enable-prefill-logprobs",
}
TGI_QUANTIZE = {"awq", "compressed-tensors", "eetq", "exl2", "gptq", "marlin", "bitsandbytes", "bitsandbytes-nf4",
                "bitsandbytes-fp4", "fp8"}
TGI_DTYPES = {"float16", "bfloat16"}


def test_every_tgi_flag_is_a_launcher_flag():
    assert QUANTIZATION_BY_BACKEND["tgi"] - {"none"} <= TGI_QUANTIZE
    recipes = _variants("tgi")
    assert recipes
    recipes += [_with_every_option(recipes[0], q) for q in sorted(QUANTIZATION_BY_BACKEND["tgi"] - {"none"})]
    for recipe in recipes:
        args = tgi.args(recipe)
        assert set(_flags(args)) <= TGI_LAUNCHER_FLAGS, set(_flags(args)) - TGI_LAUNCHER_FLAGS
        assert _value(args, "--quantize") in TGI_QUANTIZE | {None}
        assert _value(args, "--dtype") in TGI_DTYPES | {None}
        assert not ("--quantize" in args and "--dtype" in args)  # the launcher refuses both
        assert {"--model-id", "--max-input-length", "--max-total-tokens", "--port"} <= set(args)
