"""Model quality with default recipes against scikit-learn, on data sets nobody here wrote.

scikit-learn ships small data sets inside its wheel (read offline, `as_frame=True`):
  diabetes       regression, 442 rows x 10 numeric features, metric r2 (rmse shown too)
  breast_cancer  2 classes, 569 rows x 30 numeric features, metric accuracy
  wine           3 classes, 178 rows x 13 numeric features, metric accuracy

For each, in a fresh temporary project (this project's `recipes/` tree copied in, so the
recipe groups resolve, with a `pyproject.toml` `[tool.mlops]` and a `.gitignore` like a
real project's), the data set is written to `data/<name>.csv` and a recipe
`recipes/<name>.yaml` with default settings:
  - `model: mlp` (the group churn uses) or `model: lightgbm`, only `task` and `num_classes`
    set per data set;
  - training written out as `engine: ray, workers: 2` and nothing else, so the
    framework's own defaults apply (epochs, early stopping, optimizer, batch size). The
    `ray_cpu` group is not used: its `epochs: 10` etc. are churn's choices, not defaults;
  - `data`: every column a feature, the default split (validation 0.2, seed 42,
    stratified for classifiers), no expectations;
  - `evaluation`: the metrics above, one gate (`max_latency_p95_ms: 50`);
  - `rollout: direct`, `env: dev`, and churn's serving/monitoring/ci/deploy groups.
Then `framework.api.apply(<name>)` runs it (Ray Train on an embedded Ray, evaluation on
the validation split, ONNX export, gates, registry, rollout) and the validation metric
is read from its outcome (`ApplyResult.outcome.metrics`, what the CLI prints).

Baseline, measured in the same run on the very same rows: the split comes from
`framework.runtime.training.splitting.split(recipe, frame)` on the table `data.load_table` reads,
as apply makes it. scikit-learn fits on the training rows and scores the validation rows:
  - linear: StandardScaler + LinearRegression / LogisticRegression(max_iter=5000);
  - HGB: HistGradientBoostingRegressor / Classifier(random_state=0);
  - best sklearn: the better of the two.
diff: mlops - best sklearn in points (100 x the metric's difference; positive is better
than scikit-learn). The issue's goal: within 2 points of scikit-learn's best with the
default recipe and no tuning (diff >= -2).

Rows per data set: `mlops MLP` (`model.architecture: mlp`) and `mlops boosted trees`
(`model.architecture: lightgbm` or `xgboost`, whichever the recipe schema accepts; until
one does, the row prints "n/a (not built yet)" and nothing is trained for it).

Caveat: early stopping keeps the weights of the epoch with the best validation loss, on
the same validation rows the metric is computed on, so the mlops figures lean slightly
optimistic; scikit-learn never sees the validation rows.

Run: `.venv/bin/python bench/quality.py` (about 3-5 minutes on 2 cores; most of it is
Ray's start and stop and the per-epoch cost of the small Ray Train runs), or
`--datasets wine,diabetes` for a subset, `--keep DIR` to keep the projects.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import tempfile
import time
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_POINTS = 2.0
TREE_ARCHITECTURES = ("lightgbm", "xgboost")
NOT_BUILT = "n/a (not built yet)"


@dataclass(frozen=True)
class Dataset:
    name: str
    loader: str  # sklearn.datasets function
    task: str  # classification | regression
    num_classes: int | None
    metric: str  # the compared metric (higher is better)
    metrics: tuple[str, ...]  # evaluation.metrics of the recipe


DATASETS = (
    Dataset("diabetes", "load_diabetes", "regression", None, "r2", ("r2", "rmse")),
    Dataset("breast_cancer", "load_breast_cancer", "classification", 2, "accuracy", ("accuracy",)),
    Dataset("wine", "load_wine", "classification", 3, "accuracy", ("accuracy",)),
)


@dataclass
class MlopsRun:
    label: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    epochs: str = ""
    error: str = ""  # why there is no figure (not built, or the error apply raised)


# ---------------------------------------------------------------------------- project
GITIGNORE = ".mlops/\n.venv/\n__pycache__/\n*.pyc\n"


def load_frame(ds: Dataset):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, ds.loader)(as_frame=True)
    frame = bunch.frame.copy()  # features then `target`
    target = "target"
    features = [c for c in frame.columns if c != target]
    return frame, features, target


def recipe_text(ds: Dataset, features: list[str], target: str, architecture: str = "mlp") -> str:
    """The recipe a new user would write: groups for the plumbing, no training knobs."""
    import yaml

    model = {"task": ds.task}
    if ds.num_classes is not None:
        model["num_classes"] = ds.num_classes
    body = {
        "name": ds.name.replace("_", "-"),
        "description": f"scikit-learn's {ds.name} data set, default settings (bench/quality.py)",
        "owner": "bench@example.com",
        "data": {
            "source": {"uri": f"data/{ds.name}.csv", "format": "csv"},
            "target": target,
            "features": features,
        },
        "model": model,
        "training": {"engine": "ray", "workers": 2},
        "evaluation": {"metrics": list(ds.metrics), "gates": {"max_latency_p95_ms": 50}},
    }
    defaults = (f"defaults:\n  - model: {architecture}\n  - serving: triton\n  - rollout: direct\n  - monitoring: standard\n"
                "  - ci: github\n  - deploy: k8s\n  - env: dev\n  - _self_\n")
    return defaults + yaml.safe_dump(body, sort_keys=False, width=1000)


def make_project(folder: Path, ds: Dataset, architecture: str) -> tuple[Path, str]:
    """A fresh project holding the data set and its recipe; (project root, recipe file stem)."""
    shutil.copytree(ROOT / "recipes", folder / "recipes")
    for example in ("churn.yaml", "support_assistant.yaml"):
        (folder / "recipes" / example).unlink(missing_ok=True)
    (folder / "pyproject.toml").write_text('[tool.mlops]\nrecipes_dir = "recipes"\n')
    (folder / ".gitignore").write_text(GITIGNORE)
    (folder / "data").mkdir()
    frame, features, target = load_frame(ds)
    frame.to_csv(folder / "data" / f"{ds.name}.csv", index=False)
    (folder / "recipes" / f"{ds.name}.yaml").write_text(recipe_text(ds, features, target, architecture))
    return folder, ds.name


# ---------------------------------------------------------------------------- mlops
def tree_architecture() -> str | None:
    """The boosted-tree architecture the recipe schema accepts, if any."""
    from framework.recipe.model import TabularModel

    allowed = set(typing.get_args(TabularModel.model_fields["architecture"].annotation))
    return next((a for a in TREE_ARCHITECTURES if a in allowed), None)


def run_apply(project: Path, recipe: str, label: str) -> MlopsRun:
    """`mlops apply <recipe>` through the Python API; its output is captured, not shown."""
    from rich.console import Console

    from framework import api
    from framework.errors import MlopsError

    log = io.StringIO()
    console = Console(file=log, width=200, force_terminal=False, color_system=None)
    run = MlopsRun(label)
    start = time.perf_counter()
    try:
        result = api.apply(recipe, project=project, console=console)
        run.metrics = dict(result.outcome.metrics)
    except (MlopsError, Exception) as exc:  # a figure-less row says why; the run goes on
        text = str(exc).strip().splitlines()
        run.error = f"{type(exc).__name__}: {text[0] if text else ''}"[:160]
        print(f"  {label}: apply failed: {exc}\n  last output:\n    "
              + "\n    ".join(log.getvalue().strip().splitlines()[-15:]), file=sys.stderr)
    run.seconds = time.perf_counter() - start
    text = log.getvalue()
    stopped = re.search(r"early stopping after epoch (\d+)", text)
    kept = re.search(r"kept the weights of epoch (\d+)", text)
    if stopped or kept:
        run.epochs = f"{stopped.group(1) if stopped else 'all'}/best {kept.group(1) if kept else '?'}"
    return run


def validation_split(project: Path, recipe: str):
    """(recipe, train rows, validation rows) exactly as apply splits them."""
    from framework import api
    from framework.runtime.training import data, splitting

    r = api.load_recipe(recipe, project=project).recipe
    frame = data.load_table(r, project)
    train_df, val_df = (part.reset_index(drop=True) for part in splitting.split(r, frame))
    return r, train_df, val_df


# ---------------------------------------------------------------------------- sklearn
def sklearn_scores(ds: Dataset, r, train_df, val_df) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = train_df[r.data.features], train_df[r.data.target]
    x_val, y_val = val_df[r.data.features], val_df[r.data.target]
    if ds.task == "regression":
        models = {"linear": make_pipeline(StandardScaler(), LinearRegression()),
                  "hgb": HistGradientBoostingRegressor(random_state=0)}
        score = r2_score
    else:
        models = {"linear": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                  "hgb": HistGradientBoostingClassifier(random_state=0)}
        score = accuracy_score
    assert ds.metric in ("r2", "accuracy")
    return {name: float(score(y_val, model.fit(x_train, y_train).predict(x_val))) for name, model in models.items()}


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(d.name for d in DATASETS),
                        help="comma-separated subset of " + ", ".join(d.name for d in DATASETS))
    parser.add_argument("--keep", type=Path, default=None, help="build the projects under DIR and keep them")
    args = parser.parse_args(argv)
    chosen = [d for d in DATASETS if d.name in {n.strip() for n in args.datasets.split(",")}]
    if not chosen:
        parser.error(f"--datasets: none of {args.datasets!r} is known")
    warnings.filterwarnings("ignore")
    import sklearn
    import torch

    trees = tree_architecture()
    load = os.getloadavg()
    print(f"bench/quality.py: {os.cpu_count()} CPUs, load average {load[0]:.2f} at start; "
          f"scikit-learn {sklearn.__version__}, torch {torch.__version__}; boosted trees: "
          f"{trees or 'no tree architecture in the schema yet'}", flush=True)
    began = time.monotonic()
    results = []
    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        for ds in chosen:
            variants = [("mlops MLP", "mlp"), ("mlops boosted trees", trees)]
            runs, sk = [], None
            for label, architecture in variants:
                if architecture is None:
                    runs.append(MlopsRun(label, error=NOT_BUILT))
                    continue
                folder = base / f"{ds.name}-{architecture}"
                if folder.exists():
                    shutil.rmtree(folder)
                folder.mkdir(parents=True)
                project, recipe = make_project(folder, ds, architecture)
                r, train_df, val_df = validation_split(project, recipe)
                if sk is None:
                    sk = sklearn_scores(ds, r, train_df, val_df)
                    print(f"[{ds.name}] {len(train_df)} train / {len(val_df)} validation rows; sklearn linear "
                          f"{sk['linear']:.4f}, HGB {sk['hgb']:.4f}", flush=True)
                run = run_apply(project, recipe, label)
                runs.append(run)
                figure = f"{run.metrics.get(ds.metric, float('nan')):.4f}" if run.metrics else run.error
                print(f"[{ds.name}] {label}: {ds.metric} {figure} ({run.seconds:.0f} s; epochs {run.epochs or '?'})",
                      flush=True)
            results.append((ds, sk, runs))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    elapsed = time.monotonic() - began
    load = os.getloadavg()
    print(f"\nresults ({elapsed:.0f} s; load average {load[0]:.2f} at the end); validation split 0.2, seed 42")
    header = (f"{'data set':14} {'metric':8} {'mlops model':20} {'mlops':>20} {'sk linear':>9} {'sk HGB':>7} "
              f"{'best sk':>7} {'diff pts':>8}  {'within 2 pts?':13} {'epochs (stop/best)':18} {'apply s':>7}")
    print(header)
    print("-" * len(header))
    goals = []
    for ds, sk, runs in results:
        best = max(sk.values()) if sk else float("nan")
        for run in runs:
            value = run.metrics.get(ds.metric)
            if value is None:
                figure, diff, within = run.error or "n/a", "", ""
            else:
                points = 100.0 * (value - best)
                figure, diff, within = f"{value:.4f}", f"{points:+.1f}", "yes" if points >= -GOAL_POINTS else "NO"
                goals.append((ds.name, run.label, points))
            sk_lin = f"{sk['linear']:.4f}" if sk else ""
            sk_hgb = f"{sk['hgb']:.4f}" if sk else ""
            print(f"{ds.name:14} {ds.metric:8} {run.label:20} {figure:>20} {sk_lin:>9} {sk_hgb:>7} "
                  f"{best:7.4f} {diff:>8}  {within:13} {run.epochs:18} "
                  f"{f'{run.seconds:.0f}' if run.seconds else '':>7}")
        extra = [f"{k} {v:.4f}" for run in runs for k, v in run.metrics.items() if k != ds.metric]
        if extra:
            print(f"{'':14} (mlops also: {', '.join(extra)})")
    print("diff pts: 100 x (mlops - best sklearn); epochs: early stopping's last epoch / the epoch whose weights "
          "were kept ('all': ran training.epochs)")
    print("\ngoal (issue 13): within 2 points of scikit-learn's best, default recipe, no tuning")
    for ds, _, runs in results:
        for run in runs:
            hit = next((p for n, label, p in goals if n == ds.name and label == run.label), None)
            state = NOT_BUILT if run.error == NOT_BUILT else "not measured" if hit is None else \
                "MET" if hit >= -GOAL_POINTS else "NOT MET"
            print(f"  [{state}] {ds.name}, {run.label}" + (f": {hit:+.1f} points" if hit is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
