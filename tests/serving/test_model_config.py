"""The typed Triton config (framework/contracts/triton.py) says what its config.pbtxt
says, read by Triton's own ModelConfig proto; the runtime serves with that object and
writes the same text."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from framework import api
from framework.contracts.resolved import header
from framework.contracts.triton import (
    DynamicBatching,
    InstanceGroup,
    ModelConfig,
    ModelTensor,
    ModelWarmup,
    VersionPolicy,
    WarmupInput,
    config_text,
    model_config,
    render,
)
from framework.signature import model_signature
from framework.targets import triton
from tests.conftest import REPO

CONFIG_FILES = sorted(REPO.glob("generated/*/*/triton/*/config.pbtxt")) + sorted(REPO.glob("tests/golden/*/triton/*/config.pbtxt"))
VARIANTS = {
    "default": [],
    "no-batching": ["serving.max_batch_size=0", "serving.dynamic_batching=null"],
    "specific-versions": ["serving.version_policy.latest=null", "+serving.version_policy.specific=[3,1]"],
    "all-versions": ["serving.version_policy.latest=null"],
    "no-warmup-no-preferred": ["serving.warmup=false", "serving.dynamic_batching.preferred_batch_sizes=[]"],
    "torchscript": ["serving.format=torchscript"],
    "model-name": ["+serving.model_name=churn-mlp"],
    "gpu-instances": ["serving.instances.kind=gpu", "serving.instances.count=3", "+serving.resources.gpu=1"],
}


def recipe_of(overrides: list[str]):
    return api.load_recipe("churn", overrides=overrides, project=REPO).recipe


def from_proto(text: str) -> ModelConfig:
    """The facts of a config.pbtxt, read through protobuf's strict text_format.Parse."""
    proto = text_format.Parse(text, mc.ModelConfig())

    def tensors(items) -> tuple[ModelTensor, ...]:
        return tuple(ModelTensor(t.name, mc.DataType.Name(t.data_type), tuple(t.dims)) for t in items)

    choice = proto.version_policy.WhichOneof("policy_choice") or "latest"
    policy = {
        "latest": VersionPolicy("latest", num_versions=proto.version_policy.latest.num_versions or 1),
        "specific": VersionPolicy("specific", versions=tuple(proto.version_policy.specific.versions)),
        "all": VersionPolicy("all"),
    }[choice]
    batching = None
    if proto.HasField("dynamic_batching"):
        d = proto.dynamic_batching
        batching = DynamicBatching(tuple(d.preferred_batch_size), d.max_queue_delay_microseconds)
    warmups = []
    for w in proto.model_warmup:
        assert set(w.inputs) <= {t.name for t in proto.input}
        inputs = tuple(
            (t.name, WarmupInput(mc.DataType.Name(w.inputs[t.name].data_type), tuple(w.inputs[t.name].dims),
                                 w.inputs[t.name].zero_data))
            for t in proto.input if t.name in w.inputs  # a map: in the order of the inputs
        )
        warmups.append(ModelWarmup(w.name, w.batch_size, inputs))
    return ModelConfig(
        name=proto.name,
        platform=proto.platform,
        max_batch_size=proto.max_batch_size,
        input=tensors(proto.input),
        output=tensors(proto.output),
        default_model_filename=proto.default_model_filename,
        dynamic_batching=batching,
        instance_group=tuple(InstanceGroup(g.count, mc.ModelInstanceGroup.Kind.Name(g.kind)) for g in proto.instance_group),
        version_policy=policy,
        model_warmup=tuple(warmups),
    )


def header_of(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))])


def test_there_are_config_files_to_check():
    assert len(CONFIG_FILES) >= 10


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_config_is_its_typed_config_rendered(path: Path):
    """Read back through Triton's proto, each committed file renders to its own bytes: the
    typed config carries everything config.pbtxt says."""
    text = path.read_text(encoding="utf-8")
    assert render(from_proto(text), header_of(text)) == text


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_builder_and_its_text_agree(variant: str):
    recipe = recipe_of(VARIANTS[variant])
    config = model_config(recipe)
    (artifact,) = triton.render(recipe)
    assert artifact.text == config_text(recipe) == render(config, header(recipe))
    assert config == from_proto(artifact.text)
    # the raw-column contract: one [1]-wide input per feature, BYTES for a category
    signature = model_signature(recipe)
    assert [(t.name, t.datatype, t.dims) for t in config.input] == [
        (t.name, t.dtype, (1,) if config.batching else (-1, 1)) for t in signature.inputs
    ]
    assert [(t.name, t.datatype) for t in config.input][-2:] == [("contract", "BYTES"), ("payment_method", "BYTES")]
    assert [(t.name, t.datatype) for t in config.output] == [
        ("probabilities" if recipe.serving.format == "onnx" else "probabilities__0", "FP32"),
        ("label" if recipe.serving.format == "onnx" else "label__1", "BYTES"),
    ]
    assert "TYPE_STRING" in artifact.text and "TYPE_BYTES" not in artifact.text


def test_what_the_variants_say():
    assert model_config(recipe_of([])).version_policy == VersionPolicy("latest", num_versions=2)
    assert model_config(recipe_of(VARIANTS["specific-versions"])).version_policy == VersionPolicy("specific", versions=(1, 3))
    assert model_config(recipe_of(VARIANTS["all-versions"])).version_policy == VersionPolicy("all")
    unbatched = model_config(recipe_of(VARIANTS["no-batching"]))
    assert not unbatched.batching and unbatched.dynamic_batching is None
    assert unbatched.model_warmup[0].inputs[0][1].dims == (1, 1) and unbatched.full_shape(unbatched.input[0]) == [-1, 1]
    assert model_config(recipe_of(VARIANTS["no-warmup-no-preferred"])).model_warmup == ()
    torchscript = model_config(recipe_of(VARIANTS["torchscript"]))
    assert (torchscript.platform, torchscript.default_model_filename) == ("pytorch_libtorch", "model.pt")
    assert model_config(recipe_of(VARIANTS["model-name"])).name == "churn-mlp"
    gpu = model_config(recipe_of(VARIANTS["gpu-instances"]))
    assert gpu.instance_group == (InstanceGroup(3, "KIND_GPU"),) and gpu.instance_count == 3


def test_a_ray_serve_recipe_gets_the_same_model_and_the_registrys_two_versions():
    """No config.pbtxt is generated for it; the app serves it with the same object."""
    triton_recipe, ray_recipe = recipe_of([]), recipe_of(["serving=ray_serve"])
    assert triton.render(ray_recipe) == []
    served, reference = model_config(ray_recipe), model_config(triton_recipe)
    assert (served.name, served.platform, served.default_model_filename, served.input, served.output) == (
        reference.name, reference.platform, reference.default_model_filename, reference.input, reference.output
    )
    assert served.version_policy == VersionPolicy("latest", num_versions=2)  # champion and candidate
    assert served.model_warmup == ()  # the app warms every version up with one zero row anyway


def test_serving_exactly_some_versions():
    recipe = recipe_of([])
    config = model_config(recipe, ["3", "1", "3"])
    assert config.version_policy == VersionPolicy("specific", versions=(1, 3))
    assert from_proto(config_text(recipe, [3, 1])).version_policy == config.version_policy
    assert "specific { versions: [ 1, 3 ] }" in config_text(recipe, ["1", "3"])


def test_datatypes_as_clients_and_triton_name_them():
    assert ModelTensor("x", "TYPE_STRING", (1,)).datatype == "BYTES"
    assert ModelTensor("x", "TYPE_FP32", (1,)).datatype == "FP32"


def test_the_runtime_writes_what_generate_renders(tmp_path):
    from framework.runtime.serving.model_config import write_config

    recipe = recipe_of([])
    path = write_config(tmp_path / "churn", recipe)
    assert path.read_text(encoding="utf-8") == triton.render(recipe)[0].text
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.pbtxt"]  # no partial left
    write_config(tmp_path / "churn", recipe, ["2", "5"])
    assert from_proto(path.read_text(encoding="utf-8")).version_policy == VersionPolicy("specific", versions=(2, 5))
