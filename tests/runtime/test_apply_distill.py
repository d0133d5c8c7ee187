"""`mlops apply` with `training.distillation`: a small student learns from the soft
targets of a registered teacher (the churn model), named by an MLflow model URI. Slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_a_student_distils_from_the_registered_teacher(churn_project: Path) -> None:
    import mlflow

    recipes = churn_project / "recipes"
    teacher = (recipes / "churn.yaml").read_text()
    (recipes / "churn.yaml").write_text(teacher + "training:\n  epochs: 2\n")
    assert run_cli("apply", "churn").exit_code == 0

    student = teacher.replace("name: churn\n", "name: churn-student\n") + (
        "model:\n  hidden_sizes: [16]\n"
        "training:\n  epochs: 6\n  distillation:\n    teacher: models:/churn@candidate\n    temperature: 3.0\n    alpha: 0.7\n"
    )
    (recipes / "churn_student.yaml").write_text(student)
    result = run_cli("apply", "churn-student")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "distillation: soft targets from models:/churn@candidate" in result.stderr
    assert "churn-student (dev): model version 1 (candidate), gates passed" in result.stdout

    client = mlflow.MlflowClient(f"sqlite:///{churn_project / '.mlops' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("churn-student").experiment_id])
    assert run.data.tags["mlops.teacher"] == "models:/churn@candidate"
    assert run.data.params["training.distillation.alpha"] == "0.7"

    # teacher and student are both raw-column models (the teacher ran on the student's raw
    # rows): the same named columns in, and the student mostly answers as its teacher does
    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    from framework import api
    from framework.runtime.training.features import FeaturePipeline

    recipe = api.load_recipe("churn", project=churn_project).recipe
    repository = churn_project / ".mlops" / "model_repository"
    sessions = [ort.InferenceSession(str(repository / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
                for name in ("churn", "churn-student")]
    for session in sessions:
        assert [i.name for i in session.get_inputs()] == list(recipe.data.features)
        assert [o.name for o in session.get_outputs()] == ["probabilities", "label"]
    frame = pd.read_csv(churn_project / "data" / "churn.csv").head(500)
    rows = FeaturePipeline.fit(recipe, frame).raw_inputs(frame)
    teacher_labels, student_labels = (session.run(["label"], rows)[0] for session in sessions)
    assert float(np.mean(teacher_labels == student_labels)) > 0.8


def test_an_unknown_teacher_stops_before_training_and_says_what_to_do(churn_project: Path) -> None:
    recipe = churn_project / "recipes" / "churn.yaml"
    recipe.write_text(recipe.read_text() + "training:\n  distillation:\n    teacher: models:/nope@champion\n")
    result = run_cli("apply", "churn")
    assert result.exit_code == 1
    assert "training.distillation.teacher: models:/nope@champion: " in result.stderr
    assert "register the teacher first or fix the URI" in result.stderr
    assert "training on Ray" not in result.stderr
