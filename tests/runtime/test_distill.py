"""Knowledge distillation: the loss, loading teachers from a real MLflow store, and a
student that learns from a teacher.

One sqlite store serves the module (building its schema takes ~2 s). Teachers in it:
  - `churn-large`: a churn model trained here, logged exactly as train.py logs one
    (model/model.onnx + model/feature_pipeline.json, Tracker, tracking.register);
    version 1 (ONNX) has alias champion, version 2 (TorchScript model.pt) alias torchscript.
    Both take the raw columns (framework/signature.py), so they run on the student's
    rows as request tensors (`raw=`, FeaturePipeline.raw_inputs);
  - `churn-matrix`: the same network as a model registered before the raw-column
    contract: one `features` input [rows, 13] (the encoded matrix) and `probabilities`,
    with its feature_pipeline.json; it runs on the student's encoded matrix;
  - `blobs-teacher`: an MLP on synthetic 3-class data, logged with mlflow.pytorch.log_model
    (an MLflow flavour model that outputs logits), alias champion;
  - `blobs-softmax`: the same MLP with a softmax head (a flavour model that outputs
    probabilities), version 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from framework.errors import MlopsError
from framework.recipe.training import Distillation
from framework.runtime import tracking
from framework.runtime.training.distill import Distiller, distillation_loss, recipe_teacher_logits, teacher_logits
from framework.runtime.training.export import export_onnx, export_torchscript
from framework.runtime.training.features import FeaturePipeline
from framework.runtime.training.model import build_model, predict
from tests.conftest import REPO

# MLflow 3.17's sqlalchemy store configures a loader SQLAlchemy 2.1 deprecates; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

KEY = "training.distillation.teacher"


# --- fixtures -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uri(recipe, state) -> str:
    return tracking.tracking_uri(recipe, state)


@pytest.fixture(scope="module")
def churn(recipe):
    """(pipeline, x_train, y_train, x_val, raw_val): the validation rows both as the
    encoded matrix and as request tensors, a few with nulls and unseen categories."""
    frame = pd.read_csv(REPO / "data" / "churn.csv")
    order = np.random.default_rng(3).permutation(len(frame))
    train, val = frame.iloc[order[1000:]], frame.iloc[order[:1000]].reset_index(drop=True)
    val.loc[:9, "total_charges"] = np.nan
    val.loc[10:19, "contract"] = "weekly"
    val.loc[20:29, "payment_method"] = None
    pipeline = FeaturePipeline.fit(recipe, train)
    return pipeline, pipeline.transform(train), pipeline.targets(train), pipeline.transform(val), pipeline.raw_inputs(val)


@pytest.fixture(scope="module")
def churn_teacher(recipe, state, churn, tmp_path_factory):
    """A churn model registered the way train.py registers one; (model, run id)."""
    pipeline, x, y, _, _ = churn
    model = build_model(recipe, pipeline)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for batch in torch.randperm(len(xt), generator=generator).split(256):
            optimizer.zero_grad()
            F.cross_entropy(model.logits(xt[batch]), yt[batch]).backward()
            optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp("churn-teacher")
    onnx_path = export_onnx(model, recipe, pipeline, folder / "onnx" / "model.onnx")
    script_path = export_torchscript(model, pipeline, folder / "ts" / "model.pt")
    matrix_path = _matrix_onnx(model, pipeline.width, folder / "matrix" / "model.onnx")
    run_ids = []
    for served, name, alias in ((onnx_path, "churn-large", "champion"), (script_path, "churn-large", "torchscript"),
                                (matrix_path, "churn-matrix", "champion")):
        with tracking.Tracker(recipe, state, run_name="teacher") as run:
            run.log_dict(pipeline.to_dict(), "model/feature_pipeline.json")
            run.log_artifact_file(served, "model")
        run_ids.append(run.id)
        version = tracking.register(run, "model", name)
        tracking.set_alias(name, alias, version, uri=run.uri)
    return model, run_ids[0]


def _matrix_onnx(model, width: int, path: Path) -> Path:
    """The network alone, as models were exported before the raw-column contract: input
    `features` [rows, width] (the encoded matrix), output `probabilities`."""
    import warnings

    path.parent.mkdir(parents=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the exporter's pytree deprecations, not ours
        torch.onnx.export(model.eval(), (torch.zeros(2, width),), str(path), input_names=["features"],
                          output_names=["probabilities"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                          external_data=False, dynamo=True, verbose=False)
    return path


def _blobs(seed: int, rows: int):
    """3 classes by the angle of a noisy 2-D point, plus 4 distractor columns."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, rows)
    radius = rng.uniform(0.5, 2.0, rows)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x = np.concatenate([points + rng.normal(0, 0.15, (rows, 2)), rng.normal(0, 1, (rows, 4))], axis=1)
    y = (angle // (2 * np.pi / 3)).astype(np.int64)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def blobs():
    x, y = _blobs(0, 1500)
    x_val, y_val = _blobs(1, 1000)
    return x, y, x_val, y_val


@pytest.fixture(scope="module")
def blobs_teacher(blobs, uri, state, churn_teacher):
    """An MLP on the blobs logged with mlflow.pytorch.log_model (logits out), alias
    champion of `blobs-teacher`; the same with a softmax head as `blobs-softmax` v1."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    x, y, _, _ = blobs
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(net(xt), yt).backward()
        optimizer.step()
    net.eval()
    softmax_net = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
    experiment = tracking.ensure_experiment(tracking.client(uri), "teachers", uri, state)
    with _use_tracking_uri(uri):  # the fluent API of log_model; restored on exit
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.pytorch.log_model(net, name="teacher", input_example=x[:2], pip_requirements=["torch"])
            soft = mlflow.pytorch.log_model(softmax_net, name="softmax", input_example=x[:2], pip_requirements=["torch"])
        mlflow.register_model(info.model_uri, "blobs-teacher")
        mlflow.register_model(soft.model_uri, "blobs-softmax")
    tracking.set_alias("blobs-teacher", "champion", "1", uri=uri)
    return net, run.info.run_id


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _run_artifacts_dir(uri: str, run_id: str) -> str:
    """The local directory of a run's artifacts (a file URI in the embedded store)."""
    from urllib.parse import urlparse

    return urlparse(tracking.client(uri).get_run(run_id).info.artifact_uri).path


def _error(excinfo) -> str:
    return str(excinfo.value)


# --- the loss -------------------------------------------------------------------------
STUDENT = [[1.0, -0.5, 0.3], [0.2, 0.1, -1.2], [-0.7, 2.0, 0.4], [0.0, 0.0, 0.0]]
TEACHER = [[2.5, -1.0, 0.1], [-0.3, 1.5, -2.0], [-1.0, 3.0, 1.0], [0.5, -0.5, 1.0]]
LABELS = [0, 1, 1, 2]


def _hand_loss(temperature: float, alpha: float) -> float:
    s, t, y = np.array(STUDENT), np.array(TEACHER), np.array(LABELS)
    p_teacher = _softmax(t / temperature)
    log_q = np.log(_softmax(s / temperature))
    kl = np.sum(p_teacher * (np.log(p_teacher) - log_q)) / len(s)  # batchmean: sum / rows
    ce = -np.mean(np.log(_softmax(s))[np.arange(len(s)), y])
    return alpha * kl * temperature**2 + (1 - alpha) * ce


@pytest.mark.parametrize(("temperature", "alpha"), [(2.0, 0.5), (1.0, 0.3), (4.0, 0.9), (0.5, 0.7)])
def test_loss_equals_a_hand_computation(temperature, alpha):
    loss = distillation_loss(torch.tensor(STUDENT), torch.tensor(LABELS), torch.tensor(TEACHER), temperature, alpha)
    assert loss.shape == ()
    assert float(loss) == pytest.approx(_hand_loss(temperature, alpha), rel=1e-5)


def test_alpha_zero_is_plain_cross_entropy():
    student, labels = torch.tensor(STUDENT), torch.tensor(LABELS)
    loss = distillation_loss(student, labels, torch.tensor(TEACHER), 3.0, 0.0)
    assert float(loss) == pytest.approx(float(F.cross_entropy(student, labels)), rel=1e-6)
    # the teacher does not matter at all
    assert float(distillation_loss(student, labels, torch.randn(4, 3), 3.0, 0.0)) == pytest.approx(float(loss))


def test_alpha_one_is_pure_kd():
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    loss = distillation_loss(student, torch.tensor(LABELS), teacher, 2.0, 1.0)
    kd = F.kl_div(F.log_softmax(student / 2.0, dim=1), F.softmax(teacher / 2.0, dim=1), reduction="batchmean") * 4.0
    assert float(loss) == pytest.approx(float(kd), rel=1e-6)
    assert float(loss) == pytest.approx(_hand_loss(2.0, 1.0), rel=1e-5)
    # the labels do not matter at all
    assert float(distillation_loss(student, torch.tensor([2, 2, 0, 1]), teacher, 2.0, 1.0)) == pytest.approx(float(loss))
    # a student equal to its teacher has nothing left to learn
    assert float(distillation_loss(teacher, torch.tensor(LABELS), teacher, 2.0, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_gradients_flow_to_the_student_only():
    student = torch.tensor(STUDENT, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    distillation_loss(student, torch.tensor(LABELS), teacher, 2.0, 0.5).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert teacher.grad is None  # the teacher is a constant target
    # analytic gradients match finite differences (float64)
    s64 = torch.tensor(STUDENT, dtype=torch.float64, requires_grad=True)
    t64 = torch.tensor(TEACHER, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: distillation_loss(s, torch.tensor(LABELS), t64, 3.0, 0.6), (s64,))


def test_distiller_is_the_per_batch_helper(recipe):
    with_kd = recipe.model_copy(update={"training": recipe.training.model_copy(
        update={"distillation": Distillation(teacher="models:/churn-large@champion", temperature=3.0, alpha=0.25)})})
    distiller = Distiller.from_recipe(with_kd)
    assert distiller == Distiller(3.0, 0.25)
    student, labels, teacher = torch.tensor(STUDENT), torch.tensor(LABELS), torch.tensor(TEACHER)
    assert float(distiller(student, labels, teacher)) == pytest.approx(_hand_loss(3.0, 0.25), rel=1e-5)
    assert float(Distiller.hard_loss(student, labels)) == pytest.approx(float(F.cross_entropy(student, labels)))
    assert Distiller.from_recipe(recipe) is None  # no training.distillation: the plain loss


def test_distillation_refuses_regression(recipe):
    from types import SimpleNamespace

    regression = SimpleNamespace(
        model=SimpleNamespace(task="regression"),
        training=SimpleNamespace(distillation=Distillation(teacher="models:/big@champion")),
    )
    with pytest.raises(MlopsError) as excinfo:
        Distiller.from_recipe(regression)
    assert _error(excinfo) == (
        "training.distillation: distillation needs a classifier (soft targets are class distributions) "
        "but model.task is regression: remove training.distillation or train a classifier"
    )


def test_loss_errors_name_the_problem():
    student, labels = torch.tensor(STUDENT), torch.tensor(LABELS)
    with pytest.raises(MlopsError) as excinfo:
        distillation_loss(student, labels, torch.zeros(4, 2), 2.0, 0.5)
    assert _error(excinfo) == (
        "training.distillation.teacher: teacher logits of shape (4, 2) do not match the student's (4, 3): "
        "the teacher must output the student's classes for the same rows"
    )
    with pytest.raises(MlopsError, match=r"^training.distillation.temperature: temperature must be a number > 0, got 0"):
        distillation_loss(student, labels, torch.tensor(TEACHER), 0.0, 0.5)
    with pytest.raises(MlopsError, match=r"^training.distillation.alpha: alpha must be between 0 and 1, got 1.5"):
        Distiller(2.0, 1.5)


def test_importing_the_module_stays_light():
    code = ("import sys, framework.runtime.training.distill; "
            "print(sorted(m for m in ('torch', 'mlflow', 'onnxruntime', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


# --- loading framework teachers -------------------------------------------------------
@pytest.mark.parametrize("which", ["alias", "version", "run", "artifact"])
def test_framework_teacher_logits_give_its_probabilities(which, churn, churn_teacher, uri):
    pipeline, _, _, x_val, raw_val = churn
    model, run_id = churn_teacher
    teacher = {
        "alias": "models:/churn-large@champion",
        "version": "models:/churn-large/1",
        "run": f"runs:/{run_id}/model",
        "artifact": tracking.client(uri).get_model_version("churn-large", "1").source,
    }[which]
    logits = teacher_logits(teacher, x_val, tracking_uri=uri, expected_features=list(pipeline.columns), num_classes=2,
                            raw=raw_val)
    assert logits.dtype == np.float32 and logits.shape == (len(x_val), 2)
    probabilities = predict(model, x_val)  # torch on the encoded matrix; the teacher encoded the raw rows itself
    np.testing.assert_allclose(_softmax(logits), probabilities, atol=1e-5)
    # softmax(log p / T) is softmax(z / T): the soft targets are those of the teacher's own logits
    z = model.logits(torch.from_numpy(x_val)).detach().numpy()
    np.testing.assert_allclose(_softmax(logits / 3.0), _softmax(z / 3.0), atol=1e-5)


def test_torchscript_teacher(churn, churn_teacher, uri):
    pipeline, _, _, x_val, raw_val = churn
    logits = teacher_logits("models:/churn-large@torchscript", x_val, tracking_uri=uri,
                            expected_features=list(pipeline.columns), num_classes=2, raw=raw_val)
    np.testing.assert_allclose(_softmax(logits), predict(churn_teacher[0], x_val), atol=1e-6)


def test_a_teacher_registered_before_raw_columns_runs_on_the_matrix(churn, churn_teacher, uri):
    """A `features` [rows, width] teacher (registered before the contract changed) still
    runs, on the student's encoded matrix, checked against its feature_pipeline.json."""
    pipeline, _, _, x_val, raw_val = churn
    logits = teacher_logits("models:/churn-matrix@champion", x_val, tracking_uri=uri,
                            expected_features=list(pipeline.columns), num_classes=2, raw=raw_val)
    np.testing.assert_allclose(_softmax(logits), predict(churn_teacher[0], x_val), atol=1e-5)
    raw_teacher = teacher_logits("models:/churn-large@champion", x_val, tracking_uri=uri, raw=raw_val)
    np.testing.assert_allclose(_softmax(logits), _softmax(raw_teacher), atol=1e-5)


def test_recipe_teacher_logits(recipe, churn, churn_teacher, uri):
    from framework.runtime.serving.protocol import take_rows

    pipeline, _, _, x_val, raw_val = churn
    with_kd = recipe.model_copy(update={"training": recipe.training.model_copy(
        update={"distillation": Distillation(teacher="models:/churn-large@champion")})})
    logits = recipe_teacher_logits(with_kd, pipeline, x_val[:50], tracking_uri=uri, raw=take_rows(raw_val, slice(0, 50)))
    np.testing.assert_allclose(_softmax(logits), predict(churn_teacher[0], x_val[:50]), atol=1e-5)


def test_columns_and_classes_in_another_order_are_reordered(churn, churn_teacher, uri):
    pipeline, _, _, x_val, raw_val = churn
    reference = teacher_logits("models:/churn-large/1", x_val, tracking_uri=uri, raw=raw_val)
    # a raw-column teacher takes its columns by name: the student's order does not matter
    shuffled = {name: raw_val[name] for name in reversed(list(raw_val))}
    reordered = teacher_logits("models:/churn-large/1", x_val[:, ::-1], tracking_uri=uri, raw=shuffled,
                               expected_classes=list(pipeline.classes)[::-1])
    np.testing.assert_allclose(reordered, reference[:, ::-1], atol=1e-6)
    # a matrix teacher gets the student's columns in its own layout
    reference = teacher_logits("models:/churn-matrix@champion", x_val, tracking_uri=uri)
    columns = list(pipeline.columns)[::-1]
    reordered = teacher_logits("models:/churn-matrix@champion", x_val[:, ::-1], tracking_uri=uri, expected_features=columns,
                               expected_classes=list(pipeline.classes)[::-1])
    np.testing.assert_allclose(reordered, reference[:, ::-1], atol=1e-6)


def test_a_raw_column_teacher_needs_the_students_raw_rows(churn, churn_teacher, uri):
    pipeline, _, _, x_val, raw_val = churn
    teacher = "models:/churn-large@champion"
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(teacher, x_val, tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: {teacher}: the teacher takes raw columns ({', '.join(pipeline.features)}); pass the student's rows as raw="
    )
    lacking = {name: array for name, array in raw_val.items() if name != "contract"}
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(teacher, x_val, tracking_uri=uri, raw=lacking)
    assert _error(excinfo) == (
        f"{KEY}: {teacher}: the teacher takes column(s) contract that the student's data.features lack: "
        "distil from a teacher trained on the same features"
    )
    # a column the teacher does not take is left out
    extra = {**raw_val, "gender": np.full((len(x_val), 1), "female", dtype=object)}
    np.testing.assert_allclose(teacher_logits(teacher, x_val, tracking_uri=uri, raw=extra),
                               teacher_logits(teacher, x_val, tracking_uri=uri, raw=raw_val), atol=1e-7)
    # a category the student has as a number: the teacher's own error, on the key
    numeric = {**raw_val, "contract": np.zeros((len(x_val), 1), dtype=np.float32)}
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(teacher, x_val, tracking_uri=uri, raw=numeric)
    assert _error(excinfo).startswith(f"{KEY}: {teacher}: the teacher failed on the student's rows: ")


# --- MLflow flavour teachers ----------------------------------------------------------
def test_pytorch_flavour_teacher_logits_are_its_logits(blobs, blobs_teacher, uri):
    _, _, x_val, _ = blobs
    net, run_id = blobs_teacher
    expected = net(torch.from_numpy(x_val)).detach().numpy()
    logged_model = tracking.client(uri).get_model_version("blobs-teacher", "1").source  # models:/m-<id>
    assert logged_model.startswith("models:/m-")
    for teacher in ("models:/blobs-teacher@champion", f"runs:/{run_id}/teacher", logged_model):
        logits = teacher_logits(teacher, x_val, tracking_uri=uri, num_classes=3)
        np.testing.assert_allclose(logits, expected, atol=1e-5)  # negative scores: logits as they are


def test_pytorch_flavour_teacher_with_probabilities(blobs, blobs_teacher, uri):
    _, _, x_val, _ = blobs
    net, _ = blobs_teacher
    logits = teacher_logits("models:/blobs-softmax/1", x_val, tracking_uri=uri, num_classes=3)
    expected = torch.softmax(net(torch.from_numpy(x_val)), dim=1).detach().numpy()
    np.testing.assert_allclose(_softmax(logits), expected, atol=1e-5)  # rows sum to 1: log-probabilities


# --- errors ---------------------------------------------------------------------------
def test_unknown_alias(churn, churn_teacher, uri):
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/churn-large@production", churn[3], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: models:/churn-large@production: no model version 'churn-large' with alias 'production' in {uri} "
        "(aliases: champion -> 1, torchscript -> 2): register the teacher first or fix the URI"
    )


def test_unknown_model(churn, churn_teacher, uri):
    for teacher in ("models:/churn-xl@champion", "models:/churn-xl/1"):
        with pytest.raises(MlopsError) as excinfo:
            teacher_logits(teacher, churn[3], tracking_uri=uri)
        assert _error(excinfo) == (
            f"{KEY}: {teacher}: no registered model 'churn-xl' in {uri}: register the teacher first or fix the URI"
        )


def test_unknown_version(churn, churn_teacher, uri):
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/churn-large/7", churn[3], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: models:/churn-large/7: no version 7 of model 'churn-large' in {uri} (versions: 1, 2): "
        "register the teacher first or fix the URI"
    )


def test_unknown_run(churn, uri, churn_teacher):
    teacher = "runs:/0123456789abcdef0123456789abcdef/model"
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(teacher, churn[3], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: {teacher}: no run '0123456789abcdef0123456789abcdef' in {uri}: "
        "check the run id (runs:/<run id>/<artifact path>)"
    )
    teacher = f"runs:/{churn_teacher[1]}/teacher"
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(teacher, churn[3], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: {teacher}: cannot download the teacher from {uri}: The following failures occurred while "
        f"downloading one or more artifacts from {Path(_run_artifacts_dir(uri, churn_teacher[1])).as_uri()}: "
        "No such artifact: 'teacher': check the run id and the artifact path (this framework logs its model under 'model')"
    )


def test_artifacts_that_are_not_a_model(churn, churn_teacher, uri):
    teacher = f"runs:/{churn_teacher[1]}/recipe.resolved.yaml"
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(teacher, churn[3], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: {teacher}: 'recipe.resolved.yaml' is not a model: point the URI at the model directory "
        "(with model.onnx, model.pt or an MLflow MLmodel)"
    )


def test_width_mismatch(churn, churn_teacher, uri):
    x_val = churn[3]
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/churn-matrix@champion", x_val[:, :-1], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: models:/churn-matrix@champion: the student's rows have {x_val.shape[1] - 1} features but the "
        f"teacher takes {x_val.shape[1]}: distil from a teacher trained on the same features"
    )


def test_width_mismatch_of_a_flavour_teacher(blobs, blobs_teacher, uri):
    x_val = blobs[2]
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/blobs-teacher@champion", x_val[:, :5], tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: models:/blobs-teacher@champion: the student's rows have 5 features but the teacher takes 6: "
        "distil from a teacher trained on the same features"
    )


def test_feature_name_mismatch(churn, churn_teacher, uri):
    pipeline, _, _, x_val, _ = churn
    student = list(pipeline.columns)
    dropped, renamed = student[0], student[1]
    student[0] = "days_since_signup"
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/churn-matrix@champion", x_val, tracking_uri=uri, expected_features=student)
    assert _error(excinfo) == (
        f"{KEY}: models:/churn-matrix@champion: the teacher was trained on other features than the student "
        f"(the teacher lacks days_since_signup; only the teacher has {dropped}): train the teacher on the "
        "student's data.features (and in_set categories) or pick another teacher"
    )
    assert renamed in student  # the others were fine


def test_class_count_mismatch(churn, churn_teacher, blobs, blobs_teacher, uri):
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/churn-large@champion", churn[3], tracking_uri=uri, num_classes=3, raw=churn[4])
    classes = ", ".join(str(c) for c in churn[0].classes)
    assert _error(excinfo) == (
        f"{KEY}: models:/churn-large@champion: the teacher outputs 2 classes ({classes}) but the student has 3 "
        "(model.num_classes): distil from a teacher trained on the same classes"
    )
    with pytest.raises(MlopsError) as excinfo:  # no pipeline: the output decides
        teacher_logits("models:/blobs-teacher@champion", blobs[2], tracking_uri=uri, num_classes=2)
    assert _error(excinfo) == (
        f"{KEY}: models:/blobs-teacher@champion: the teacher outputs 3 classes but the student has 2 "
        "(model.num_classes): distil from a teacher trained on the same classes"
    )


def test_other_classes(churn, churn_teacher, uri):
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits("models:/churn-large@champion", churn[3], tracking_uri=uri, expected_classes=["stay", "leave"],
                       raw=churn[4])
    classes = ", ".join(str(c) for c in churn[0].classes)
    assert _error(excinfo) == (
        f"{KEY}: models:/churn-large@champion: the teacher's classes ({classes}) are not the student's "
        "(stay, leave): distil from a teacher trained on the same target"
    )


# --- a student learns from its teacher ------------------------------------------------
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_a_distilled_student_learns(alpha, blobs, blobs_teacher, uri):
    """A small student trained on the teacher's logits (alpha 1: on nothing else, no
    labels) reaches the teacher's accuracy and agrees with it."""
    x, y, x_val, y_val = blobs
    net, _ = blobs_teacher
    soft = torch.from_numpy(teacher_logits("models:/blobs-teacher@champion", x, tracking_uri=uri, num_classes=3))
    distiller = Distiller(temperature=2.0, alpha=alpha)
    torch.manual_seed(1)
    student = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        for batch in torch.randperm(len(xt), generator=generator).split(128):
            optimizer.zero_grad()
            distiller(student(xt[batch]), yt[batch], soft[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        predicted = student(torch.from_numpy(x_val)).argmax(1).numpy()
        teacher_predicted = net(torch.from_numpy(x_val)).argmax(1).numpy()
    teacher_accuracy = float((teacher_predicted == y_val).mean())
    accuracy = float((predicted == y_val).mean())
    assert teacher_accuracy > 0.9
    assert accuracy > 0.9 and accuracy > teacher_accuracy - 0.04
    assert float((predicted == teacher_predicted).mean()) > 0.93


def test_nothing_lands_in_the_working_directory(env, churn_teacher, blobs_teacher):
    """Every MLflow call went to the store of tracking_uri: MLflow 3's defaults would
    create ./mlflow.db (registry) or ./mlruns in the working directory."""
    assert sorted(p.name for p in env.iterdir()) == []


# --- a pyfunc teacher with named input columns, from a plain artifact URI --------------
def _column_teacher_class():
    """A custom mlflow.pyfunc model: three scores from the named columns a and b."""
    import mlflow.pyfunc

    class ColumnTeacher(mlflow.pyfunc.PythonModel):
        def __init__(self, labels_only: bool = False):
            self.labels_only = labels_only

        def predict(self, context, model_input: pd.DataFrame, params=None):
            scores = np.stack([model_input["a"] - model_input["b"], model_input["b"] * 2.0, -model_input["a"]], axis=1)
            return scores.argmax(axis=1) if self.labels_only else scores

    return ColumnTeacher


@pytest.fixture(scope="module")
def column_teachers(env, tmp_path_factory):
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    folder = tmp_path_factory.mktemp("pyfunc")
    example = pd.DataFrame({"a": np.array([0.5, -1.0], dtype=np.float32), "b": np.array([1.0, 2.0], dtype=np.float32)})
    uris = {}
    cls = _column_teacher_class()
    for kind, labels_only in (("scores", False), ("labels", True)):
        path = folder / kind
        mlflow.pyfunc.save_model(str(path), python_model=cls(labels_only), signature=infer_signature(example),
                                 input_example=example, pip_requirements=["numpy"])
        uris[kind] = path.as_uri()
    return uris


def test_column_based_pyfunc_teacher_from_an_artifact_uri(column_teachers, uri):
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]], dtype=np.float32)
    expected = np.stack([x[:, 0] - x[:, 1], x[:, 1] * 2.0, -x[:, 0]], axis=1)
    logits = teacher_logits(column_teachers["scores"], x, tracking_uri=uri, expected_features=["a", "b"], num_classes=3)
    np.testing.assert_allclose(logits, expected, atol=1e-6)
    # the student's columns in another order are fed to the teacher by name
    swapped = teacher_logits(column_teachers["scores"], x[:, ::-1], tracking_uri=uri, expected_features=["b", "a"])
    np.testing.assert_allclose(swapped, expected, atol=1e-6)
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(column_teachers["scores"], x, tracking_uri=uri, expected_features=["a", "c"])
    assert _error(excinfo) == (
        f"{KEY}: {column_teachers['scores']}: the teacher was trained on other features than the student "
        "(the teacher lacks c; only the teacher has b): train the teacher on the student's data.features "
        "(and in_set categories) or pick another teacher"
    )


def test_a_teacher_that_returns_labels_is_refused(column_teachers, uri):
    x = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(MlopsError) as excinfo:
        teacher_logits(column_teachers["labels"], x, tracking_uri=uri)
    assert _error(excinfo) == (
        f"{KEY}: {column_teachers['labels']}: the teacher returns shape (4,), not [rows, classes] (class labels or "
        "one score per row?): log a model that outputs class probabilities or logits "
        "(sklearn: pyfunc_predict_fn='predict_proba')"
    )
