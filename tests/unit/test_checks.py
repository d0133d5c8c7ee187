"""Cross-field rules: each fires on its case, stays quiet on the examples, and names
every key involved in its message."""

from __future__ import annotations

import pytest

from framework import api
from framework.recipe.checks import CHECKS, run_checks
from framework.recipe.compose import compose_recipe
from framework.recipe.recipe import Recipe
from framework.project import Project
from tests.conftest import REPO

HPO = "+training.hpo={metric: %s, search_space: {%s: {type: float, low: 0.0001, high: 0.1}}}"
TRIGGERS = {
    "tabular_needs_data_and_training": ("churn", ["~training"]),
    "backend_matches_model_kind": ("churn", ["serving=vllm"]),
    "backend_is_maintained": ("support_assistant", ["serving=tgi"]),
    "rag_needs_llm": ("churn", ["+rag=project_docs"]),
    "quantization_fits_backend": ("support_assistant", ["model.quantization=gguf", "serving=tgi"]),
    "quantization_plugin_in_image": ("support_assistant", ["model.quantization=bitsandbytes"]),
    "gguf_names_one_file": ("support_assistant", ["model.quantization=gguf"]),
    "exl2_is_not_sharded": ("support_assistant", ["serving=tgi", "model.quantization=exl2", "serving.tensor_parallel_size=2",
                                                  "serving.resources.gpu=2"]),
    "dtype_fits_backend": ("support_assistant", ["serving=tgi", "model.dtype=float32"]),
    "prompt_leaves_room_to_answer": ("support_assistant", ["serving=tgi", "serving.max_input_length=8192"]),
    "ray_serve_llm_rolls_out_directly": ("support_assistant", ["serving=ray_serve_llm"]),
    "batch_sizes_fit": ("churn", ["serving.max_batch_size=4"]),
    "batching_needs_batches": ("churn", ["serving.max_batch_size=0"]),
    "gpu_instances_need_gpus": ("churn", ["serving.instances.kind=gpu"]),
    "tensor_parallel_fits_gpus": ("support_assistant", ["serving.tensor_parallel_size=2"]),
    "served_context_fits_model": ("support_assistant", ["serving.max_model_len=100000"]),
    "replicas_ordered": ("churn", ["serving.replicas.min=5", "serving.replicas.max=2"]),
    "ray_serve_accepts_a_batch": ("churn", ["serving=ray_serve", "serving.max_ongoing_requests=4"]),
    "triton_port_is_free": ("churn", ["+serving.port=8002"]),
    "whole_gpus_for_pytorchjob": ("churn", ["training=pytorchjob_gpu", "training.gpus_per_worker=0.5"]),
    "torchscript_only_on_triton": ("churn", ["serving=ray_serve", "serving.format=torchscript"]),
    "canary_steps_rise_to_100": ("churn", ["rollout.steps=[10,50]"]),
    "analysis_needs_metrics": ("churn", ["monitoring.metrics.enabled=false"]),
    "traffic_routing_needs_istio": ("churn", ["deploy.istio=false"]),
    "target_not_a_feature": ("churn", ["data.target=tenure_months"]),
    "columns_unique": ("churn", ["data.features=[tenure_months,tenure_months]", "data.categorical=[]"]),
    "categorical_are_features": ("churn", ["data.categorical=[region]"]),
    "data_sources_that_are_read": ("churn", ["+data.source.feast={feature_view: customers}", "+data.version={rev: v1}",
                                             "data.source.uri=s3://bucket/churn.csv"]),
    "boosting_needs_lightgbm": ("churn", ["+model.boosting={num_leaves: 15}"]),
    "lightgbm_trains_where_it_can": ("churn", ["model=lightgbm", "serving.format=torchscript"]),
    "network_keys_need_hidden_layers": ("churn", ["model.architecture=lightgbm"]),
    "features_are_not_outputs": ("churn", ["data.features=[tenure_months,label]", "data.categorical=[]",
                                           "data.expectations.columns={}"]),
    "torchscript_inputs_are_identifiers": ("churn", ["serving.format=torchscript", "data.features=[tenure_months,'monthly charges']",
                                                     "data.categorical=[]", "data.expectations.columns={}"]),
    "expectations_name_columns": ("churn", ["+data.expectations.columns.regoin={not_null: true}"]),
    "class_fraction_needs_classes": ("churn", ["model.task=regression", "evaluation.metrics=[mae]", "evaluation.gates={}"]),
    "metrics_fit_task": ("churn", ["evaluation.metrics=[accuracy,mrr]"]),
    "gates_name_metrics": ("churn", ["+evaluation.gates.min_f2=0.5"]),
    "hpo_metric_is_evaluated": ("churn", [HPO % ("f2", "training.optimizer.lr")]),
    "hpo_keys_exist": ("churn", [HPO % ("f1", "training.optimizer.lrr")]),
    "fairness_attribute_is_a_column": ("churn", ["evaluation.gates.fairness.attribute=region"]),
    "retrieval_eval_needs_rag": ("support_assistant", ["evaluation.retrieval.k=50"]),
    "evaluation_dataset_needs_data": ("support_assistant", ["+evaluation.dataset={uri: held_out.csv}"]),
    "cluster_jobs_read_reachable_data": ("churn", ["env=staging", "data.source.uri=data/churn.csv"]),
    "batch_job_needs_input_and_output": ("churn", ["+batch.schedule='0 3 * * *'"]),
    "batch_job_scores_tabular_models": ("support_assistant", ["+batch.input=s3://b/in", "+batch.output=s3://b/out"]),
    "batch_job_scores_onnx": ("churn", ["env=prod", "serving.format=torchscript"]),
    "batch_job_reaches_its_data": ("churn", ["env=staging", "batch.input=data/in.csv", "batch.output=scores"]),
    "batch_output_apart_from_input": ("churn", ["env=staging", "batch.output=s3://example-ml-data/churn/staging/customers/scores"]),
    "distillation_needs_tabular": ("support_assistant", ["+training=ray_cpu", "+training.distillation={teacher: 'models:/big@champion'}"]),
    "checkpoints_within_epochs": ("churn", ["training.epochs=1", "training.checkpoint.every_epochs=2"]),
    "chunks_overlap_less_than_size": ("support_assistant", ["rag.chunking.overlap=900"]),
    "mmr_fetches_enough": ("support_assistant", ["rag.retriever.fetch_k=2"]),
    "prompt_has_placeholders": ("support_assistant", ["+rag.prompt='Answer: {question}'"]),
    "wandb_settings_need_the_backend": ("churn", ["+tracking.wandb.project=churn-runs"]),
    "wandb_key_exactly_online": ("churn", ["+tracking.backends=[mlflow,wandb]", "+tracking.wandb.mode=online"]),
    "wandb_offline_only_in_dev": ("churn", ["env=staging", "+tracking.backends=[mlflow,wandb]"]),
}


def test_every_rule_has_a_trigger() -> None:
    assert sorted(rule.__name__ for rule in CHECKS) == sorted(TRIGGERS)


@pytest.mark.parametrize("rule", CHECKS, ids=[rule.__name__ for rule in CHECKS])
def test_rule_fires_and_names_every_key(rule) -> None:
    recipe_name, overrides = TRIGGERS[rule.__name__]
    composed = compose_recipe(Project.discover(REPO), recipe_name, overrides=overrides)
    recipe = Recipe.model_validate(composed.config)
    violations = list(rule(recipe))
    assert violations, f"{rule.__name__} did not fire on {overrides}"
    for violation in violations:
        for key in violation.keys:
            assert key in violation.message, f"{key!r} not named in {violation.message!r}"


@pytest.mark.parametrize("recipe", ["churn", "support_assistant"])
def test_examples_break_no_rule(recipe: str) -> None:
    assert run_checks(api.load_recipe(recipe, project=REPO).recipe) == []


LLM_SERVERS = {"vllm": [], "sglang": ["serving=sglang"], "tgi": ["serving=tgi"],
               "ray_serve_llm": ["serving=ray_serve_llm", "rollout=direct"]}


def _errors(recipe) -> list:
    """The violations that make a recipe invalid (warnings left out: tgi's deprecation)."""
    from framework.recipe.checks import ERROR

    return [v for v in run_checks(recipe) if v.severity == ERROR]


@pytest.mark.parametrize("backend", sorted(LLM_SERVERS))
def test_each_llm_server_takes_what_it_loads(backend: str) -> None:
    """The example on each LLM server breaks no rule, nor with any quantization the server
    loads (the vLLM plugin ones given an image that has the plugin, gguf a GGUF source);
    every other quantization is refused by quantization_fits_backend."""
    from framework.recipe.checks import QUANTIZATION_BY_BACKEND
    from framework.recipe.model import QUANTIZATIONS

    base = api.load_recipe("support_assistant", overrides=LLM_SERVERS[backend], project=REPO).recipe
    assert _errors(base) == []
    serving = base.serving.model_copy(update={"image": "registry.example/llm-server-with-plugins:1"})
    gguf = "unsloth/Qwen3-0.6B-GGUF:Q4_K_M" if base.serving.gguf_from_hub else "/models/qwen3-0.6b.Q4_K_M.gguf"
    for quantization in QUANTIZATIONS:
        source = gguf if quantization == "gguf" else base.model.source
        model = base.model.model_copy(update={"quantization": quantization, "source": source, "dtype": "auto"})
        found = _errors(base.model_copy(update={"model": model, "serving": serving}))
        if quantization in QUANTIZATION_BY_BACKEND[backend]:
            assert found == [], (quantization, found)
        else:
            assert [v.keys for v in found] == [("model.quantization", "serving.backend")], (quantization, found)


def test_a_deprecated_backend_is_a_warning_not_an_error() -> None:
    from framework.recipe.checks import WARNING

    tgi = api.load_recipe("support_assistant", overrides=["serving=tgi"], project=REPO)
    (found,) = run_checks(tgi.recipe)
    assert found.severity == WARNING and found.keys == ("serving.backend",)
    assert [w.message for w in tgi.warnings] == [found.message]
    for backend, overrides in LLM_SERVERS.items():
        if backend != "tgi":
            assert run_checks(api.load_recipe("support_assistant", overrides=overrides, project=REPO).recipe) == []


def test_image_repository() -> None:
    from framework.recipe.checks import image_repository

    assert image_repository("vllm/vllm-openai:v0.33.0") == "vllm/vllm-openai"
    assert image_repository("docker.io/vllm/vllm-openai@sha256:" + "0" * 64) == "vllm/vllm-openai"
    assert image_repository("registry.example:5000/team/vllm-openai:1") == "registry.example:5000/team/vllm-openai"


def test_a_data_version_reads_a_project_file() -> None:
    from framework.errors import RecipeError

    with pytest.raises(RecipeError, match=r"data\.version: data\.version reads a file of the project's git repository "
                                          r"at a revision \(DVC\), but data\.source\.uri is s3://b/c\.csv"):
        api.load_recipe("churn", overrides=["+data.version={rev: v2}", "data.source.uri=s3://b/c.csv"], project=REPO)
    assert api.load_recipe("churn", overrides=["+data.version={rev: v2}"], project=REPO).recipe.data.version.rev == "v2"
