"""Gradient-boosted trees (`model.architecture: lightgbm`) on the same path as the MLP.

Why LightGBM rather than XGBoost: its wheel is 3.5 MB and CPU-only (XGBoost's is 130 MB
and pulls NCCL), it grows leaf-wise trees that do well on the small tables this project
is tried on, Ray Train ships a trainer for it (`ray.train.lightgbm.LightGBMTrainer`:
data-parallel workers joined by LightGBM's own socket network), and onnxmltools converts
its boosters to ONNX's TreeEnsemble ops, which ONNX Runtime and Triton's onnxruntime
backend run.

The trees learn on the FeaturePipeline's encoded matrix (imputed numbers, one-hot
categories), the very matrix the MLP trains on; export wraps the converted booster in
the raw-column preprocessing (onnx_columns.wrap_network), so serving, Triton, parity,
gates, rollout, drift and evaluation see the same contract whatever the model family.
`training.early_stopping.patience` counts boosting rounds here (LightGBM's
early_stopping callback on the validation loss), and the best round's trees are kept.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

MODEL_FILE = "model.txt"
LOG_EVERY = 10  # rounds between history entries (a thousand rounds need not be a thousand MLflow steps)
TREE_OPSET = 15  # the highest onnxmltools 1.16 converts LightGBM to; wrap_network raises the graph's to 19


@dataclass
class BoostResult:
    model_text: str  # the booster, LightGBM's text format
    history: list[dict[str, float]] = field(default_factory=list)  # {"epoch": round, "val_loss": ...}
    best_iteration: int = 0
    rounds: int = 0
    started_at_epoch: int = 0  # trees train in one go: no resume (train.py reads it of every result)

    def booster(self):
        import lightgbm as lgb

        return lgb.Booster(model_str=self.model_text)


def params(recipe, threads: int) -> dict[str, Any]:
    """LightGBM's parameters for the recipe (its objective from model.task)."""
    boosting, model = recipe.model.trees, recipe.model
    if model.task == "regression":
        objective = {"objective": "regression", "metric": "l2"}
    elif model.num_classes == 2:
        objective = {"objective": "binary", "metric": "binary_logloss"}
    else:
        objective = {"objective": "multiclass", "num_class": model.num_classes, "metric": "multi_logloss"}
    out = {
        **objective,
        "learning_rate": boosting.learning_rate,
        "num_leaves": boosting.num_leaves,
        "max_depth": boosting.max_depth,
        "min_child_samples": boosting.min_child_samples,
        "feature_fraction": boosting.feature_fraction,
        "bagging_fraction": boosting.bagging_fraction,
        "bagging_freq": 1 if boosting.bagging_fraction < 1.0 else 0,
        "lambda_l2": boosting.lambda_l2,
        "seed": recipe.training.seed,
        "deterministic": True,
        "num_threads": max(1, threads),
        "verbosity": -1,
    }
    return out


def fit(recipe, arrays: dict[str, np.ndarray], *, rank: int = 0, world: int = 1, network: dict | None = None) -> BoostResult:
    """Grow the trees on this worker's shard (rows rank::world) with the full validation
    split for early stopping; every worker sees the same validation loss, so all stop at
    the same round."""
    import lightgbm as lgb

    training = recipe.training
    options = params(recipe, int(training.cpus_per_worker))
    if network:
        options.update({**network, "tree_learner": "data", "pre_partition": True})
    x, y = arrays["x_train"][rank::world], arrays["y_train"][rank::world]
    train_set = lgb.Dataset(np.ascontiguousarray(x), label=y, free_raw_data=False)
    valid_set = lgb.Dataset(np.ascontiguousarray(arrays["x_val"]), label=arrays["y_val"], reference=train_set)
    evals: dict[str, dict[str, list[float]]] = {}
    callbacks = [lgb.record_evaluation(evals)]
    if training.early_stopping is not None:
        callbacks.append(lgb.early_stopping(training.early_stopping.patience, first_metric_only=True,
                                            min_delta=training.early_stopping.min_delta, verbose=False))
    booster = lgb.train(options, train_set, num_boost_round=recipe.model.trees.num_boost_round,
                        valid_sets=[valid_set], valid_names=["val"], callbacks=callbacks)
    losses = next(iter(evals.get("val", {}).values()), [])
    best = booster.best_iteration or len(losses)
    history = [{"epoch": i, "val_loss": float(loss)} for i, loss in enumerate(losses)
               if i % LOG_EVERY == 0 or i == best - 1 or i == len(losses) - 1]
    text = booster.model_to_string(num_iteration=best)  # the best round's trees only
    return BoostResult(text, history, best, len(losses))


def predict(booster, x: np.ndarray, task: str) -> np.ndarray:
    """Scores as the contract has them: probabilities [n, classes] or predictions [n, 1]."""
    raw = np.asarray(booster.predict(np.ascontiguousarray(x, dtype=np.float64)), dtype=np.float32)
    if task == "regression":
        return raw.reshape(-1, 1)
    if raw.ndim == 1:  # binary: the positive class's probability
        return np.stack([1.0 - raw, raw], axis=1)
    return raw


def export_onnx(booster, recipe, pipeline, path: str | Path) -> Path:
    """The served ONNX file: the raw-column preprocessing, the trees (ONNX's
    TreeEnsemble ops, converted by onnxmltools), and the outputs."""
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from framework.runtime.training.export import NETWORK_INPUT, save_served
    from framework.runtime.training.onnx_columns import wrap_network
    from framework.signature import model_signature

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = model_signature(recipe)
    converted = convert_lightgbm(booster, initial_types=[(NETWORK_INPUT, FloatTensorType([None, pipeline.width]))],
                                 zipmap=False, target_opset=TREE_OPSET)
    scores = "variable" if recipe.model.task == "regression" else "probabilities"
    # Keep the scores only: the converter's own label output is a class index, the
    # contract's label is the class name (wrap_network adds it).
    network = onnx.utils.Extractor(converted).extract_model([NETWORK_INPUT], [scores])
    return save_served(wrap_network(network, pipeline, signature, recipe.name), signature, path)



def parity(booster, pipeline, onnx_path: str | Path, frame) -> float:
    """export.parity for trees: the booster on training's encoding against the ONNX file
    on the raw rows."""
    from framework.runtime.training.export import scores_parity

    return scores_parity(lambda x: predict(booster, x, pipeline.task), pipeline, onnx_path, frame)


# --- Ray Train --------------------------------------------------------------------------
def train_on_ray(recipe, arrays: dict[str, np.ndarray], storage: Path, run_name: str,
                 on_round: Callable[[dict[str, float]], None] | None = None, embedded: bool = False) -> BoostResult:
    """Ray Train's LightGBMTrainer with the recipe's workers; the caller initialised Ray
    (embedded locally, or the cluster's address; `embedded`: see trainer.train_on_ray)."""
    import ray
    import ray.train
    from ray.train.lightgbm import LightGBMTrainer

    from framework.runtime.training.trainer import trainer_for

    training = recipe.training
    trainer = trainer_for(LightGBMTrainer, embedded)(
        _train_loop,
        train_loop_config={"recipe": recipe.model_dump(mode="json"), "arrays": ray.put(arrays)},
        scaling_config=ray.train.ScalingConfig(
            num_workers=int(training.workers), resources_per_worker={"CPU": float(training.cpus_per_worker)},
        ),
        run_config=ray.train.RunConfig(name=run_name, storage_path=str(Path(storage).resolve()),
                                       failure_config=ray.train.FailureConfig(max_failures=0)),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError("LightGBM training finished without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        saved = json.loads((Path(folder) / "result.json").read_text(encoding="utf-8"))
        text = (Path(folder) / MODEL_FILE).read_text(encoding="utf-8")
    boosted = BoostResult(text, saved["history"], saved["best_iteration"], saved["rounds"])
    if on_round is not None:
        for entry in boosted.history:
            on_round(entry)
    return boosted


def _train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: LightGBM's network joins them (data parallel)."""
    import ray
    import ray.train
    from ray.train.lightgbm import get_network_params

    from framework.recipe.recipe import Recipe

    recipe = Recipe.model_validate(config["recipe"])
    arrays = config["arrays"]
    arrays = ray.get(arrays) if isinstance(arrays, ray.ObjectRef) else arrays
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    boosted = fit(recipe, arrays, rank=rank, world=world, network=get_network_params() if world > 1 else None)
    metrics = {"rounds": boosted.rounds, "best_iteration": boosted.best_iteration}
    if rank == 0:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / MODEL_FILE).write_text(boosted.model_text, encoding="utf-8")
            (Path(folder) / "result.json").write_text(json.dumps({
                "history": boosted.history, "best_iteration": boosted.best_iteration, "rounds": boosted.rounds,
            }), encoding="utf-8")
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
    else:
        ray.train.report(metrics)


__all__ = ["BoostResult", "fit", "predict", "export_onnx", "parity", "train_on_ray", "params"]
