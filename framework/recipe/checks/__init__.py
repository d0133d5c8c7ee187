"""Cross-field rules, checked after the models validated each section on its own.

Each rule is a small function registered with `check` (base.py) yielding `Violation`s; a
violation names every key involved, in its `keys` (the first locates it) and in its
message. The rules live in one module per recipe section they are mainly about (model,
serving, rollout, data, batch, evaluation, training, rag, tracking); what a rule needs to
know of a serving backend it asks the serving variant (framework/recipe/serving.py). `RUN_ORDER`
fixes the order in which the rules run, and so the order of the errors a user reads,
whatever the order in which the modules were imported.
"""

from __future__ import annotations

from framework.recipe.checks import batch, data, evaluation, model, rag, rollout, serving, tracking, training
from framework.recipe.checks.base import CHECKS, ERROR, WARNING, Check, Violation, check, run_checks
from framework.recipe.checks.data import is_relative_uri, is_remote_uri
from framework.recipe.checks.serving import QUANTIZATION_BY_BACKEND, VLLM_PLUGIN_QUANTIZATIONS, image_repository

__all__ = [
    "CHECKS", "ERROR", "WARNING", "Check", "QUANTIZATION_BY_BACKEND", "RUN_ORDER", "VLLM_PLUGIN_QUANTIZATIONS", "Violation",
    "check", "image_repository", "is_relative_uri", "is_remote_uri", "run_checks",
]

RUN_ORDER = (
    # the sections a model needs, and the server it needs
    "tabular_needs_data_and_training", "backend_matches_model_kind", "backend_is_maintained", "rag_needs_llm",
    "quantization_fits_backend", "quantization_plugin_in_image", "gguf_names_one_file",
    # serving
    "batch_sizes_fit", "batching_needs_batches", "gpu_instances_need_gpus", "tensor_parallel_fits_gpus",
    "exl2_is_not_sharded", "dtype_fits_backend", "served_context_fits_model", "prompt_leaves_room_to_answer",
    "replicas_ordered", "ray_serve_accepts_a_batch", "triton_port_is_free", "whole_gpus_for_pytorchjob",
    "torchscript_only_on_triton",
    # rollout
    "canary_steps_rise_to_100", "analysis_needs_metrics", "traffic_routing_needs_istio",
    "ray_serve_llm_rolls_out_directly",
    # data, and what the tabular architectures make of it
    "target_not_a_feature", "columns_unique", "categorical_are_features", "features_are_not_outputs",
    "boosting_needs_lightgbm", "network_keys_need_hidden_layers", "lightgbm_trains_where_it_can",
    "torchscript_inputs_are_identifiers", "expectations_name_columns", "class_fraction_needs_classes",
    "cluster_jobs_read_reachable_data", "data_sources_that_are_read",
    # the batch RayJob
    "batch_job_needs_input_and_output", "batch_job_scores_tabular_models", "batch_job_scores_onnx",
    "batch_job_reaches_its_data", "batch_output_apart_from_input",
    # evaluation, and the search that optimises one of its metrics
    "metrics_fit_task", "gates_name_metrics", "hpo_metric_is_evaluated", "hpo_keys_exist",
    "fairness_attribute_is_a_column", "evaluation_dataset_needs_data", "retrieval_eval_needs_rag",
    # training
    "distillation_needs_tabular", "checkpoints_within_epochs",
    # rag
    "chunks_overlap_less_than_size", "mmr_fetches_enough", "prompt_has_placeholders",
    # tracking
    "wandb_settings_need_the_backend", "wandb_key_exactly_online", "wandb_offline_only_in_dev",
)


def _put_in_run_order() -> None:
    registered = {rule.__name__: rule for rule in CHECKS}
    stray = sorted(set(registered) ^ set(RUN_ORDER))
    if stray or len(registered) != len(CHECKS):  # a rule not in RUN_ORDER, or two of one name
        raise RuntimeError(f"framework.recipe.checks: RUN_ORDER and the registered rules differ: {stray or 'a name twice'}")
    CHECKS[:] = [registered[name] for name in RUN_ORDER]


_put_in_run_order()
