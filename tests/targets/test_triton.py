"""Triton's config.pbtxt: parsed strictly by Triton's own ModelConfig message."""

from __future__ import annotations

import subprocess
import sys

import jinja2
import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from jinja2.sandbox import SandboxedEnvironment
from tritonclient.grpc import model_config_pb2 as mc

from framework import api
from framework.contracts import triton as contract
from framework.signature import model_signature
from framework.targets import triton
from framework.targets.common import header
from tests.conftest import REPO
from tests.targets.conftest import TRITON_PROTO, load_variant

# Every config.pbtxt the project writes: the committed examples and each golden variant.
CONFIG_FILES = sorted(REPO.glob("generated/**/config.pbtxt")) + sorted(REPO.glob("tests/golden/*/triton/**/config.pbtxt"))


def parse(text: str) -> mc.ModelConfig:
    # Parse, not Merge: unknown or repeated scalar fields are errors.
    return text_format.Parse(text, mc.ModelConfig())


def only_config(recipe) -> tuple[str, mc.ModelConfig]:
    artifacts = triton.render(recipe)
    assert len(artifacts) == 1
    (artifact,) = artifacts
    assert artifact.path == f"triton/{recipe.serving.model_name or recipe.name}/config.pbtxt"
    assert artifact.scope == "env"
    return artifact.text, parse(artifact.text)


def test_every_variant(recipe):
    if recipe.serving.backend != "triton":
        assert triton.render(recipe) == []
        return
    text, config = only_config(recipe)
    assert text.startswith(header(recipe)) and text.endswith("\n")
    signature = model_signature(recipe)
    serving = recipe.serving
    assert config.name == recipe.name
    assert config.platform == contract.PLATFORMS[serving.format]
    assert config.max_batch_size == serving.max_batch_size > 0
    types = {"FP32": mc.DataType.TYPE_FP32, "BYTES": mc.DataType.TYPE_STRING}
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        (t.name, types[t.dtype], [1]) for t in signature.inputs
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        (t.name, types[t.dtype], [t.width]) for t in signature.outputs
    ]
    kind = {"cpu": mc.ModelInstanceGroup.KIND_CPU, "gpu": mc.ModelInstanceGroup.KIND_GPU}[serving.instances.kind]
    assert [(g.count, g.kind) for g in config.instance_group] == [(serving.instances.count, kind)]
    assert config.HasField("dynamic_batching")
    assert list(config.dynamic_batching.preferred_batch_size) == serving.dynamic_batching.preferred_batch_sizes
    assert len(config.model_warmup) == int(serving.warmup)


def test_churn():
    recipe = load_variant("churn-dev")
    _, config = only_config(recipe)
    assert config.name == "churn"
    assert config.platform == "onnxruntime_onnx"
    assert config.default_model_filename == "model.onnx"
    assert config.max_batch_size == 32
    fp32, text = mc.DataType.TYPE_FP32, mc.DataType.TYPE_STRING
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("tenure_months", fp32, [1]), ("monthly_charges", fp32, [1]), ("total_charges", fp32, [1]),
        ("support_calls", fp32, [1]), ("num_products", fp32, [1]), ("senior_citizen", fp32, [1]),
        ("contract", text, [1]), ("payment_method", text, [1]),
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        ("probabilities", fp32, [2]), ("label", text, [1]),
    ]
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    (group,) = config.instance_group
    assert (group.count, group.kind) == (2, mc.ModelInstanceGroup.KIND_CPU)
    assert config.version_policy.WhichOneof("policy_choice") == "latest"
    assert config.version_policy.latest.num_versions == 2
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 1
    assert sorted(warmup.inputs) == sorted(t.name for t in config.input)  # every input, zeros or ""
    samples = [(warmup.inputs[t.name].data_type, list(warmup.inputs[t.name].dims), warmup.inputs[t.name].zero_data)
               for t in config.input]
    assert samples == [(t.data_type, [1], True) for t in config.input]


def test_churn_inputs_are_the_data_files_feature_columns():
    data = yaml.safe_load((REPO / "recipes" / "data" / "churn_csv.yaml").read_text())
    _, config = only_config(load_variant("churn-dev"))
    assert [t.name for t in config.input] == data["features"]
    text = [t.name for t in config.input if t.data_type == mc.DataType.TYPE_STRING]
    assert text == data["categorical"]


def test_torchscript_gpu():
    _, config = only_config(load_variant("churn-torchscript-gpu"))
    assert config.platform == "pytorch_libtorch"
    assert config.default_model_filename == "model.pt"
    assert [t.name for t in config.input][:2] == ["tenure_months", "monthly_charges"]  # forward()'s arguments
    assert [(t.name, list(t.dims)) for t in config.output] == [("probabilities__0", [2]), ("label__1", [1])]
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    assert len(config.model_warmup[0].inputs) == 8


@pytest.mark.parametrize("variant", ["support-dev", "support-prod", "churn-ray-serve"])
def test_nothing_for_other_backends(variant: str):
    recipe = load_variant(variant)
    assert recipe.serving.backend != "triton"
    assert triton.render(recipe) == []


def test_model_name_names_directory_and_config():
    recipe = api.load_recipe("churn", overrides=["+serving.model_name=churn-mlp"], project=REPO).recipe
    (artifact,) = triton.render(recipe)
    assert artifact.path == "triton/churn-mlp/config.pbtxt"
    assert parse(artifact.text).name == "churn-mlp"


def test_without_batching_dims_are_full_shapes_and_no_batcher():
    overrides = ["serving.max_batch_size=0", "serving.dynamic_batching=null"]
    recipe = api.load_recipe("churn", overrides=overrides, project=REPO).recipe
    _, config = only_config(recipe)
    assert config.max_batch_size == 0
    assert {tuple(t.dims) for t in config.input} == {(-1, 1)}
    assert [list(t.dims) for t in config.output] == [[-1, 2], [-1, 1]]
    assert not config.HasField("dynamic_batching")
    assert list(config.model_warmup[0].inputs["contract"].dims) == [1, 1]


def test_regression_specific_versions_no_warmup():
    overrides = [
        "model.task=regression",
        "~data.expectations.table.min_class_fraction",
        "evaluation.metrics=[rmse]",
        "~evaluation.gates.min_accuracy",
        "~evaluation.gates.min_roc_auc",
        "+serving.version_policy.specific=[3,1,3]",
        "serving.version_policy.latest=null",
        "serving.warmup=false",
        "serving.dynamic_batching.preferred_batch_sizes=[]",
    ]
    recipe = api.load_recipe("churn", overrides=overrides, project=REPO).recipe
    text, config = only_config(recipe)
    assert [(t.name, list(t.dims)) for t in config.output] == [("prediction", [1])]
    assert config.version_policy.WhichOneof("policy_choice") == "specific"
    assert list(config.version_policy.specific.versions) == [1, 3]
    assert len(config.model_warmup) == 0 and "model_warmup" not in text
    assert config.HasField("dynamic_batching") and list(config.dynamic_batching.preferred_batch_size) == []


def test_no_version_limit_serves_all_versions():
    recipe = api.load_recipe("churn", overrides=["serving.version_policy.latest=null"], project=REPO).recipe
    _, config = only_config(recipe)
    assert config.version_policy.WhichOneof("policy_choice") == "all"


def test_parsing_is_strict():
    """The checks above would catch a misspelled field: Parse refuses what ModelConfig lacks."""
    text, _ = only_config(load_variant("churn-dev"))
    with pytest.raises(text_format.ParseError, match="max_batch_sizes"):
        parse(text.replace("max_batch_size:", "max_batch_sizes:"))


def test_deterministic():
    first = triton.render(load_variant("churn-prod"))
    second = triton.render(load_variant("churn-prod"))
    assert first == second
    assert first[0].text.encode() == second[0].text.encode()


@pytest.mark.parametrize(
    "value", ['plain', 'quote " and \\ backslash', "new\nline\ttab\rreturn 'single'", "é ü 模型", "\x00\x7f"]
)
def test_strings_are_escaped(value: str):
    config = parse(f"name: {contract.pb_string(value)}\n")
    assert config.name == value


def test_environment_is_sandboxed_and_strict():
    env = contract.environment()
    assert isinstance(env, SandboxedEnvironment)
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string("{{ name.__class__.__mro__ }}").render(name="x")


def test_template_typo_raises_instead_of_rendering_empty():
    recipe = load_variant("churn-dev")
    template = contract.environment().get_template(contract.TEMPLATE)
    context = {"header": header(recipe), "config": contract.model_config(recipe)}
    assert parse(template.render(context))  # the complete context renders
    # Every key is read by the template, and a missing one is an error, not "".
    for key in context:
        partial = {k: v for k, v in context.items() if k != key}
        with pytest.raises(jinja2.UndefinedError, match=key):
            template.render(partial)
    # Same for a misspelled attribute inside the template.
    with pytest.raises(jinja2.UndefinedError, match="nmae"):
        contract.environment().from_string("name: {{ config.input[0].nmae | pbstr }}").render(context)


# --- the vendored upstream proto -----------------------------------------------------------
@pytest.fixture(scope="module")
def vendored_model_config(tmp_path_factory: pytest.TempPathFactory):
    """inference.ModelConfig compiled now from vendor/triton/model_config.proto by protoc
    (grpcio-tools), not tritonclient's bundled copy. A descriptor set loaded into a private
    pool keeps it apart from that copy, which registers the same file name and package in
    protobuf's default pool (where a generated _pb2 module would go too)."""
    out = tmp_path_factory.mktemp("triton-proto") / "model_config.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{TRITON_PROTO.parent}", f"--descriptor_set_out={out}",
         str(TRITON_PROTO)],
        check=True, capture_output=True, text=True,
    )
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


def test_there_are_config_files_to_check():
    assert len(CONFIG_FILES) >= 10


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_parses_with_the_vendored_proto(path, vendored_model_config):
    text = path.read_text(encoding="utf-8")
    config = text_format.Parse(text, vendored_model_config())  # strict: unknown fields fail
    assert config.name and config.input and config.output
    # Same field numbers and values as the bundled message the tests above read.
    assert config.SerializeToString(deterministic=True) == parse(text).SerializeToString(deterministic=True)


def test_vendored_proto_parsing_is_strict(vendored_model_config):
    text, _ = only_config(load_variant("churn-dev"))
    with pytest.raises(text_format.ParseError, match="max_batch_sizes"):
        text_format.Parse(text.replace("max_batch_size:", "max_batch_sizes:"), vendored_model_config())
    with pytest.raises(text_format.ParseError, match="KIND_TPU"):
        text_format.Parse(text.replace("KIND_CPU", "KIND_TPU"), vendored_model_config())
