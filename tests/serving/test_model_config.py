"""The dependency-free config.pbtxt parser agrees with Triton's own ModelConfig proto."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from framework import api
from framework.runtime.serving.model_config import (
    Batching,
    ConfigError,
    ModelConfig,
    TensorSpec,
    config_from_recipe,
    parse_config,
    parse_text,
)
from framework.signature import model_signature
from framework.targets import triton
from tests.conftest import REPO

CONFIG_FILES = sorted(REPO.glob("generated/*/*/triton/*/config.pbtxt")) + sorted(REPO.glob("tests/golden/*/triton/*/config.pbtxt"))
VARIANTS = {
    "no-batching": ["serving.max_batch_size=0", "serving.dynamic_batching=null"],
    "specific-versions": ["serving.version_policy.latest=null", "+serving.version_policy.specific=[3,1]"],
    "no-warmup-no-preferred": ["serving.warmup=false", "serving.dynamic_batching.preferred_batch_sizes=[]"],
    "torchscript": ["serving.format=torchscript"],
    "model-name": ["+serving.model_name=churn-mlp"],
}


def expected(text: str) -> ModelConfig:
    """The same facts, read through protobuf's strict text_format.Parse."""
    proto = text_format.Parse(text, mc.ModelConfig())

    def datatype(enum: int) -> str:  # KServe's name of Triton's TYPE_STRING is BYTES
        name = mc.DataType.Name(enum).removeprefix("TYPE_")
        return "BYTES" if name == "STRING" else name

    def tensors(items) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t.name, datatype(t.data_type), tuple(t.dims)) for t in items)

    kind = proto.version_policy.WhichOneof("policy_choice") or "latest"
    policy = {
        "latest": ("latest", (proto.version_policy.latest.num_versions or 1,)),
        "specific": ("specific", tuple(proto.version_policy.specific.versions)),
        "all": ("all", ()),
    }[kind]
    batching = None
    if proto.HasField("dynamic_batching"):
        d = proto.dynamic_batching
        batching = Batching(tuple(d.preferred_batch_size), d.max_queue_delay_microseconds)
    return ModelConfig(
        name=proto.name,
        platform=proto.platform,
        max_batch_size=proto.max_batch_size,
        inputs=tensors(proto.input),
        outputs=tensors(proto.output),
        default_model_filename=proto.default_model_filename,
        dynamic_batching=batching,
        instance_count=sum(g.count for g in proto.instance_group) or 1,
        version_policy=policy,
        warmup_batch_sizes=tuple(w.batch_size for w in proto.model_warmup),
    )


def test_there_are_config_files_to_check():
    assert len(CONFIG_FILES) >= 10


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_config(path: Path):
    text = path.read_text(encoding="utf-8")
    assert parse_config(text, str(path)) == expected(text)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_variants(variant: str):
    recipe = api.load_recipe("churn", overrides=VARIANTS[variant], project=REPO).recipe
    (artifact,) = triton.render(recipe)
    parsed = parse_config(artifact.text)
    assert parsed == expected(artifact.text)
    # The recipe-derived config (Ray Serve recipes, which get no config.pbtxt) says the same.
    derived = config_from_recipe(recipe)
    assert (derived.name, derived.platform, derived.max_batch_size, derived.inputs, derived.outputs) == (
        parsed.name, parsed.platform, parsed.max_batch_size, parsed.inputs, parsed.outputs
    )
    assert (derived.dynamic_batching, derived.instance_count, derived.version_policy) == (
        parsed.dynamic_batching, parsed.instance_count, parsed.version_policy
    )
    # the raw-column contract: one [1]-wide input per feature, BYTES for a category
    signature = model_signature(recipe)
    assert parsed.inputs == tuple(TensorSpec(t.name, t.dtype, (1,) if parsed.batching else (-1, 1)) for t in signature.inputs)
    assert [(t.name, t.datatype) for t in parsed.inputs][-2:] == [("contract", "BYTES"), ("payment_method", "BYTES")]
    assert [(t.name, t.datatype) for t in parsed.outputs] == [
        ("probabilities" if recipe.serving.format == "onnx" else "probabilities__0", "FP32"),
        ("label" if recipe.serving.format == "onnx" else "label__1", "BYTES"),
    ]
    assert "TYPE_STRING" in artifact.text and "TYPE_BYTES" not in artifact.text


def test_every_committed_config_takes_raw_columns():
    """The committed configs are the new contract (regenerated): no `features` tensor."""
    for path in CONFIG_FILES:
        parsed = parse_config(path.read_text(encoding="utf-8"), str(path))
        assert "features" not in [t.name for t in parsed.inputs], path
        assert all(t.dims[-1] == 1 and t.datatype in ("FP32", "BYTES") for t in parsed.inputs), path


def test_strings_escapes_and_syntax_forms():
    tree = parse_text(
        'name: "a\\"b\\\\c\\303\\251\\x41" # comment\n'
        "max_batch_size: 8, dims: [ -1, 0x10 ] opt < a: 1.5e3 >\n"
        'l [ { v: true }, { v: 2 } ] s: "x" "y"\n'
    )
    assert tree["name"] == ['a"b\\cé' + "A"]
    assert tree["dims"] == [-1, 16]
    assert tree["opt"][0]["a"] == [1500.0]
    assert [item["v"] for item in tree["l"]] == [["true"], [2]]
    assert tree["s"] == ["xy"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name: "m"\nmax_batch_sise: 4\n', r"config.pbtxt:2: max_batch_sise: unknown field \(this message has: .*max_batch_size"),
        ('max_batch_size: 4\nmax_batch_size: 8\n', r"config.pbtxt:1: max_batch_size: set more than once"),
        ('input [ { name: "x" data_type: FP32 dims: [ 1 ] } ]', r"input.data_type: expected an enum value TYPE_\.\.\., got 'FP32'"),
        ('name: m', r"name: expected a quoted string, got 'm'"),
        ('max_batch_size: "8"', r"max_batch_size: expected an integer, got '8'"),
        ('dynamic_batching { max_queue_delay_microseconds: 5', r"config.pbtxt:1: unexpected end of file, expected '}'"),
        ('name: "m"\n\n  $', r"config.pbtxt:3: unexpected character '\$'"),
        ('version_policy { latest { num_versions: 1 } all { } }', r"version_policy: set exactly one of latest, all, specific"),
        ('input [ { name: "x" data_type: TYPE_FP32 } ]', r"input.x: dims must not be empty"),
    ],
)
def test_errors_name_file_line_and_field(text: str, message: str):
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "config.pbtxt")
