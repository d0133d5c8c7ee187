"""The CUDA paths of training, run where a CUDA GPU is (marked `gpu`: skipped and counted
elsewhere). One worker on one GPU trains churn through the same apply: Ray Train places
the worker on the GPU and DDP runs over nccl (framework/runtime/training/trainer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.gpu]


def test_churn_trains_on_one_gpu_over_nccl(churn_project: Path) -> None:
    import torch

    recipe = churn_project / "recipes" / "churn.yaml"
    recipe.write_text(recipe.read_text().replace("training: ray_cpu", "training: ray_gpu"))
    gpu = churn_project / "recipes" / "training" / "ray_gpu.yaml"
    gpu.write_text(gpu.read_text().replace("workers: 2", "workers: 1").replace("cpus_per_worker: 4", "cpus_per_worker: 1")
                   .replace("epochs: 20", "epochs: 2"))
    result = run_cli("apply", "churn")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "(1 workers)" in run_cli("apply", "churn", "--dry-run").stdout
    assert "model version 1 (candidate, champion), gates passed" in result.stdout
    assert torch.cuda.is_available() and torch.distributed.is_nccl_available()
