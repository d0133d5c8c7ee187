"""Training through apply's Ray Train path against a hand-written torch loop: the same
model, data, optimizer, batch size and epochs, all measured in this run.

Both sides train the churn recipe's MLP (`framework.runtime.training.model.build_model`, with the
trainer's optimizer and loss factories) on the same feature arrays, made the way apply
makes them: `data.load_and_check` on `data/churn.csv`, enlarged here to `--rows` rows by
resampling with a little noise on the numeric columns (labels kept; preparation is not
timed), then `splitting.split` and a `FeaturePipeline` fitted on the training split.
Resampled rows land in both splits, so validation scores are optimistic: they only
compare the two sides.

- baseline, `hand loop`: one process, `torch.set_num_threads(2)`, the trainer's loop for
  one worker written out in plain torch: same seed, same per-epoch permutation, same
  batches, and after each epoch the same validation (loss and the recipe's metrics on
  the whole validation split); no Ray, no checkpoints.
- candidate, `ray train, N workers`: what `mlops apply` runs, the embedded Ray of
  `framework.runtime.training.embedded_ray.RaySession` (`ray.init(address="local", ...)`
  in the background, as apply starts it), then
  `framework.runtime.training.trainer.train_on_ray(recipe, pipeline, arrays, storage, run_name,
  on_epoch=..., embedded=True)` (Ray Train without its cluster-only helpers,
  embedded_train.py), then the session's `ray.shutdown()`; for `training.workers` 1 and 2
  (the recipe's default is 2 x 1 CPU, DDP over gloo; `batch_size` is per worker, as in
  the trainer, so 2 workers take half the optimizer steps of twice the global batch).
  With `--cluster-too`, also `ray train, N workers, cluster`: a plain `ray.init` and
  Ray Train's TorchTrainer as it comes, what a RayJob on a cluster runs.

How the time is split. The trainer is neither patched nor instrumented; the epoch ends
come from what it already exposes:
- on_epoch: the driver-side callback rank 0 feeds after each epoch's validation (the
  time it arrives here), or, with a trainer without it,
- checkpoints: rank 0 reports a checkpoint at the end of every epoch
  (`checkpoint.every_epochs: 1`) named `checkpoint_<local time, us>` when
  `ray.train.report` is called; a thread here lists the run folder every 20 ms and keeps
  the names (with `keep: 2` each outlives two epochs).
Epoch e ends at T_e. Epochs 1.. last T_e - T_(e-1), per-epoch costs included (checkpoint
write, report); epoch 0 has no start mark and is taken to last the median of the others.
- total: wall time from before `ray.init` to after `ray.shutdown` (hand loop: from
  building the model to the last validation).
- compute: T_last - T_0 + median (hand loop: the sum of its timed epochs).
- startup: T_0 - median - start, the fixed time before the first step: ray.init, the
  Ray Train controller and its actors, the worker processes and their imports, the
  process group, `ray.get` of the arrays, building the model and optimizer (the first
  optimizer step imports torch._dynamo, about 1.1 s here, which the hand loop pays as
  well; so does DDP's constructor with 2 workers). In apply, ray.init overlaps opening
  the MLflow run; here nothing overlaps it.
- teardown: end - T_last (the controller noticing the end, the final checkpoint read
  back, `ray.shutdown`).
- ratio: total / hand-loop total, the issue's figure; `compute x` is compute / hand
  compute.
- others: CPU cores used meanwhile by processes outside this benchmark and its Ray
  (from /proc); on a shared machine the figures are flagged as unreliable.

Then, unless `--apply-runs 0`, a cold `mlops apply churn` (the recipe as it is: 5,000
rows, 10 epochs, 2 workers) in a fresh copy of the project (recipes, data, pyproject;
no .mlops/, so a new MLflow store and a new Ray), wall time of the command.

Goals (issue 17): with one worker, ratio <= 1.3 for a job with >= 60 s of compute and
startup <= 6 s; a cold `mlops apply churn` <= 15 s.
The defaults (1,200,000 rows, 10 epochs) give the hand loop >= 60 s on 2 cores.
`--ray-env KEY=VALUE` (repeatable) adds, for each worker count, a run with those
environment variables set, to measure a Ray setting against the default in one run.
Run: `python bench/train.py` (about 5 minutes on 2 cores, 8 with `--cluster-too --apply-runs 3`)
or `python bench/train.py --quick` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2  # the hand loop's torch threads: this machine's cores, what the 2 Ray CPUs get
RATIO_GOAL, STARTUP_GOAL, MIN_COMPUTE, APPLY_GOAL = 1.3, 6.0, 60.0, 15.0
VAL_LOSS_MARGIN = 0.02  # final validation losses this close (absolute) count as comparable


# ---------------------------------------------------------------------------- data
def load_recipe(epochs: int, workers: int, batch_size: int | None):
    from framework import api

    overrides = [f"training.epochs={epochs}", f"training.workers={workers}"]
    if batch_size:
        overrides.append(f"training.batch_size={batch_size}")
    return api.load_recipe("churn", env="dev", overrides=overrides, project=ROOT).recipe


def enlarge(frame, rows: int, seed: int, numeric: list[str]):
    """`rows` rows resampled from `frame`, numeric features jittered by 5% of their std
    (integers stay integers, values stay inside the column's observed range)."""
    rng = np.random.default_rng(seed)
    big = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    for name in numeric:
        values = big[name].to_numpy(dtype=np.float64, na_value=np.nan)
        observed = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = observed[np.isfinite(observed)]
        jittered = values + rng.normal(0.0, 0.05 * float(finite.std()), rows)
        if np.all(finite == np.round(finite)):
            jittered = np.round(jittered)
        big[name] = np.clip(jittered, finite.min(), finite.max())  # NaN stays NaN
    if "customer_id" in big.columns:
        big["customer_id"] = [f"B{i:08d}" for i in range(rows)]
    return big


def prepare(recipe, rows: int):
    """apply's data steps (train._train_evaluate_register) on the enlarged table."""
    from framework.runtime.training import data, splitting
    from framework.runtime.training.features import FeaturePipeline

    frame, _ = data.load_and_check(recipe, ROOT)
    numeric = [f for f in recipe.data.features if f not in set(recipe.data.categorical)]
    frame = enlarge(frame, rows, recipe.training.seed, numeric)
    train_df, val_df = (part.reset_index(drop=True) for part in splitting.split(recipe, frame))
    pipeline = FeaturePipeline.fit(recipe, train_df)
    arrays = {
        "x_train": pipeline.transform(train_df), "y_train": pipeline.targets(train_df),
        "x_val": pipeline.transform(val_df), "y_val": pipeline.targets(val_df),
    }
    return pipeline, arrays


# ---------------------------------------------------------------------------- the machine
class OtherLoad(threading.Thread):
    """CPU seconds used by processes that are not this one or its descendants (Ray's
    processes are), sampled from /proc every half second: a shared machine shows here."""

    def __init__(self, every: float = 0.5):
        super().__init__(daemon=True)
        self.every, self.seconds, self.seen = every, 0.0, {}
        self.stopped = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.sample(count=False)

    def __enter__(self) -> OtherLoad:
        self.began = time.perf_counter()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.join()
        self.wall = time.perf_counter() - self.began

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.sample()
        self.sample()

    def sample(self, count: bool = True) -> None:
        parents, cpu = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / self.tick
        ours = {os.getpid()}
        changed = True  # grow the tree until stable (a child may have a lower pid than its parent)
        while changed:
            changed = False
            for pid, parent in parents.items():
                if parent in ours and pid not in ours:
                    ours.add(pid)
                    changed = True
        for pid, seconds in cpu.items():
            if count and pid not in ours:
                self.seconds += max(seconds - self.seen.get(pid, 0.0), 0.0)
            self.seen[pid] = seconds

    @property
    def cores(self) -> float:
        return self.seconds / max(self.wall, 1e-9)


# ---------------------------------------------------------------------------- baseline
def _optimizer_and_loss():
    """The trainer's optimizer and loss factories (framework.runtime.training.epochs, or the
    trainer's own helpers in the version before it), so both sides build the same."""
    try:
        from framework.runtime.training.epochs import make_loss, make_optimizer
    except ImportError:
        from framework.runtime.training.trainer import _loss as make_loss, _optimizer as make_optimizer
    return make_optimizer, make_loss


def hand_loop(recipe, pipeline, arrays, threads: int = THREADS) -> dict:
    """The trainer's loop for one worker, in plain torch, in this process."""
    import torch

    from framework.runtime.training.metrics_eval import evaluate
    from framework.runtime.training.model import build_model

    make_optimizer, make_loss = _optimizer_and_loss()
    torch.set_num_threads(threads)
    training = recipe.training
    start = time.perf_counter()
    torch.manual_seed(training.seed)
    model = build_model(recipe, pipeline)
    optimizer = make_optimizer(training.optimizer, model.parameters())
    loss_fn = make_loss(recipe, model) if len(inspect.signature(make_loss).parameters) > 1 else make_loss(recipe)
    x_train, y_train = torch.from_numpy(arrays["x_train"]), torch.from_numpy(arrays["y_train"])
    x_val, y_val = torch.from_numpy(arrays["x_val"]), torch.from_numpy(arrays["y_val"])
    history, epoch_seconds = [], []
    first_step = time.perf_counter()
    for epoch in range(training.epochs):
        began = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(training.seed + epoch))
        total, seen = 0.0, 0
        for offset in range(0, len(order), training.batch_size):
            batch = order[offset:offset + training.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model.logits(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
            seen += len(batch)
        # The trainer's per-epoch validation: loss and the recipe's metrics on the whole split.
        model.eval()
        with torch.no_grad():
            logits = model.logits(x_val)
            metrics = {"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": float(loss_fn(logits, y_val))}
            if recipe.model.task == "classification":
                logits = torch.softmax(logits, dim=-1)
            metrics.update({f"val_{k}": v for k, v in evaluate(recipe, logits.numpy(), arrays["y_val"]).items()})
        history.append(metrics)
        epoch_seconds.append(time.perf_counter() - began)
    end = time.perf_counter()
    return {"total": end - start, "compute": sum(epoch_seconds), "startup": first_step - start,
            "teardown": 0.0, "history": history, "state": model.state_dict(), "epoch_seconds": epoch_seconds,
            "timing": "measured"}


# ---------------------------------------------------------------------------- candidate
class CheckpointWatch(threading.Thread):
    """Collects the names of `checkpoint_<time>` folders as Ray Train writes them."""

    def __init__(self, folder: Path, every: float = 0.02):
        super().__init__(daemon=True)
        self.folder, self.every, self.names = folder, every, set()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.look()
            self.stopped.wait(self.every)
        self.look()

    def look(self) -> None:
        try:
            self.names.update(p.name for p in self.folder.iterdir() if p.name.startswith("checkpoint_"))
        except FileNotFoundError:
            pass

    def times(self) -> list[float]:
        """Epoch-end times (time.time() seconds), oldest first."""
        stamps = [datetime.strptime(n.removeprefix("checkpoint_"), "%Y-%m-%d_%H-%M-%S.%f").timestamp()
                  for n in self.names]
        return sorted(stamps)


class _PlainRay:
    """ray.init in the foreground and Ray Train as it comes (a cluster's path; apply before
    embedded_ray.py)."""

    embedded = False

    def __init__(self, cpus: int):
        self.cpus = cpus

    def start(self):
        import ray

        ray.init(address="local", num_cpus=self.cpus, include_dashboard=False, log_to_driver=False)
        return self

    def ready(self) -> None:
        pass

    def close(self) -> None:
        import ray

        ray.shutdown()


def ray_path(recipe, pipeline, arrays, storage: Path, run_name: str, cluster: bool = False) -> dict:
    """`framework.runtime.training.run._train`, timed: the embedded Ray started, train_on_ray, stopped."""
    from framework.runtime.training.trainer import train_on_ray

    try:
        from framework.runtime.training.embedded_ray import RaySession
    except ImportError:  # a version before it: apply called ray.init itself
        RaySession = None  # noqa: N806
    watch = CheckpointWatch(storage / run_name)
    watch.start()
    reported: list[float] = []
    extra = {}
    parameters = inspect.signature(train_on_ray).parameters
    if "on_epoch" in parameters:  # apply passes it (progress bar, MLflow)
        extra["on_epoch"] = lambda metrics: reported.append(time.time())
    wall_start, start = time.time(), time.perf_counter()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cpus = max(2, int(recipe.training.workers * recipe.training.cpus_per_worker))
    if cluster or RaySession is None:
        session = _PlainRay(cpus).start()
    else:
        session = RaySession(cpus, None, warm="ray.train.torch").start()
    if "embedded" in parameters:
        extra["embedded"] = session.embedded
    try:
        session.ready()
        ray_init = time.perf_counter() - start
        result = train_on_ray(recipe.model_dump(mode="json"), pipeline.to_dict(), arrays, storage, run_name, **extra)
    finally:
        session.close()
    total = time.perf_counter() - start
    wall_end = wall_start + total
    watch.stopped.set()
    watch.join()
    epochs = recipe.training.epochs
    ends, timing = (reported, "on_epoch") if len(reported) == epochs else (watch.times(), "checkpoints")
    if not ends:
        raise SystemExit(f"no epoch ends seen for {run_name} (no on_epoch calls, no checkpoints in {storage})")
    if len(ends) != epochs:
        print(f"  warning: saw {len(ends)} epoch ends of {epochs}; the split below is rough", file=sys.stderr)
    gaps = np.diff(ends)
    per_epoch = float(statistics.median(gaps)) if len(gaps) else (ends[0] - wall_start) / 2
    startup = ends[0] - per_epoch - wall_start
    return {"total": total, "compute": ends[-1] - ends[0] + per_epoch, "startup": startup,
            "teardown": wall_end - ends[-1], "ray_init": ray_init, "history": result.history,
            "state": result.state_dict, "epoch_seconds": [per_epoch, *gaps.tolist()],
            "timing": timing}


# ---------------------------------------------------------------------------- report
def quality(recipe, pipeline, arrays, state) -> dict[str, float]:
    from framework.runtime.training import metrics_eval
    from framework.runtime.training.model import build_model, predict

    model = build_model(recipe, pipeline)
    model.load_state_dict(state)
    return metrics_eval.evaluate(recipe, predict(model, arrays["x_val"]), arrays["y_val"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_200_000, help="rows after enlarging data/churn.csv")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's training.batch_size")
    parser.add_argument("--workers", default="1,2", help="Ray Train worker counts to run, comma-separated")
    parser.add_argument("--hand-threads", type=int, default=THREADS, help="torch threads of the hand loop")
    parser.add_argument("--ray-env", action="append", default=[], metavar="KEY=VALUE",
                        help="also run each worker count with these environment variables set for Ray (repeatable)")
    parser.add_argument("--cluster-too", action="store_true",
                        help="also run each worker count on a plain ray.init with Ray Train as it comes (a cluster's path)")
    parser.add_argument("--apply-runs", type=int, default=1,
                        help="cold `mlops apply churn` runs in fresh project copies (0: none)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 20,000 rows, 3 epochs (a few seconds of training; "
                        "the run takes a minute or two, Ray's fixed start and stop and the cold apply)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.epochs = 20_000, 3
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if any("=" not in item for item in args.ray_env):
        parser.error("--ray-env takes KEY=VALUE")
    ray_env = dict(item.split("=", 1) for item in args.ray_env)
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")

    recipe = load_recipe(args.epochs, 1, args.batch_size)
    prep = time.perf_counter()
    pipeline, arrays = prepare(recipe, args.rows)
    t = recipe.training
    print(f"churn MLP {recipe.model.hidden_sizes}, {pipeline.width} inputs; {t.optimizer.name} lr {t.optimizer.lr}, "
          f"batch {t.batch_size} (per worker), {t.epochs} epochs")
    print(f"data: data/churn.csv enlarged to {args.rows:,} rows -> {len(arrays['x_train']):,} train, "
          f"{len(arrays['x_val']):,} validation ({time.perf_counter() - prep:.1f} s to prepare, not timed)")
    print(f"machine: {os.cpu_count()} cores, torch {__import__('torch').__version__}, "
          f"ray {__import__('ray').__version__}")
    if ray_env:
        print(f"'+env' variants: {' '.join(f'{k}={v}' for k, v in ray_env.items())}")
    print()

    runs: dict[str, tuple[object, dict]] = {}
    with OtherLoad() as load:
        run = hand_loop(recipe, pipeline, arrays, args.hand_threads)
    runs[f"hand loop (torch, {args.hand_threads} thr)"] = (recipe, {**run, "others": load.cores})
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for workers in worker_counts:
            variant = load_recipe(args.epochs, workers, args.batch_size)
            paths = [(env, False) for env in (({}, ray_env) if ray_env else ({},))]
            for env, cluster in paths + ([({}, True)] if args.cluster_too else []):
                name = (f"ray train, {workers} worker{'s' if workers > 1 else ''}{' +env' if env else ''}"
                        f"{', cluster' if cluster else ''}")
                with OtherLoad() as load, environment(env):
                    run = ray_path(variant, pipeline, arrays, Path(tmp).resolve(), f"bench-{len(runs)}", cluster)
                runs[name] = (variant, {**run, "others": load.cores})

    base = next(iter(runs.values()))[1]
    header = (f"{'variant':36} {'total s':>7} {'compute s':>9} {'startup s':>9} {'teardown s':>10} "
              f"{'ratio':>6} {'compute x':>9} {'s/epoch':>7} {'val loss':>8} {'accuracy':>8} {'roc_auc':>7} "
              f"{'others':>6}")
    print(header)
    print("-" * len(header))
    for name, (variant, run) in runs.items():
        scores = quality(variant, pipeline, arrays, run["state"])
        run["val_loss"] = run["history"][-1]["val_loss"]
        per_epoch = statistics.median(run["epoch_seconds"][1:] or run["epoch_seconds"])
        print(f"{name:36} {run['total']:7.1f} {run['compute']:9.1f} {run['startup']:9.1f} {run['teardown']:10.1f} "
              f"{run['total'] / base['total']:6.2f} {run['compute'] / base['compute']:9.2f} {per_epoch:7.2f} "
              f"{run['val_loss']:8.4f} {scores.get('accuracy', float('nan')):8.4f} "
              f"{scores.get('roc_auc', float('nan')):7.4f} {run['others']:6.2f}")
    print("ratio: total / hand-loop total; compute x: compute / hand-loop compute; others: cores used meanwhile by")
    print("processes outside this benchmark (about 0 on a quiet machine)")
    busy = [name for name, (_, run) in runs.items() if run["others"] > 0.1]
    if busy:
        print(f"WARNING: the machine was shared during: {'; '.join(busy)}. Those figures are not reliable.")
    print()
    enough = base["compute"] >= MIN_COMPUTE
    print(f"hand loop compute {base['compute']:.1f} s (the goals need a job of >= {MIN_COMPUTE:.0f} s: "
          f"{'yes' if enough else 'no, so the ratio below is indicative only'})")
    for name, (variant, run) in list(runs.items())[1:]:
        ratio = run["total"] / base["total"]
        close = abs(run["val_loss"] - base["val_loss"]) <= VAL_LOSS_MARGIN
        goals = variant.training.workers == 1 and "cluster" not in name  # the goals: apply, one worker
        print(f"{name}: ratio {ratio:.2f}{_goal(ratio, RATIO_GOAL, goals)}; startup {run['startup']:.1f} s, "
              f"of which ray.init {run['ray_init']:.1f} s{_goal(run['startup'], STARTUP_GOAL, goals, ' s')}; "
              f"final val loss {run['val_loss']:.4f} vs {base['val_loss']:.4f}: "
              f"{'comparable' if close else 'NOT comparable'} (margin {VAL_LOSS_MARGIN}); "
              f"epoch ends from {run['timing']}")
    if args.apply_runs > 0:
        print()
        cold_apply(args.apply_runs)
    return 0


def _goal(value: float, goal: float, applies: bool, unit: str = "") -> str:
    if not applies:
        return ""
    return f" (goal <= {goal:g}{unit}: {'met' if value <= goal else 'NOT met'})"


def cold_apply(runs: int) -> None:
    """`mlops apply churn` as a user runs it the first time: a fresh copy of the project (no
    .mlops/: a new MLflow store, a new embedded Ray), the command's wall time."""
    walls = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp:
            root = Path(tmp) / "proj"
            shutil.copytree(ROOT / "recipes", root / "recipes", ignore=shutil.ignore_patterns("__pycache__"))
            (root / "data").mkdir()
            shutil.copy(ROOT / "data" / "churn.csv", root / "data")
            shutil.copy(ROOT / "pyproject.toml", root)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
            with OtherLoad() as load:
                began = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "framework.cli", "apply", "churn"], cwd=root, env=env,
                                      capture_output=True, text=True)
                wall = time.perf_counter() - began
            if done.returncode != 0:
                raise SystemExit(f"mlops apply churn failed ({done.returncode}):\n{done.stderr[-3000:]}")
            walls.append(wall)
            print(f"cold `mlops apply churn`: {wall:.1f} s wall (others {load.cores:.2f} cores meanwhile)", flush=True)
    wall = statistics.median(walls)
    print(f"cold `mlops apply churn`{f', median of {runs}' if runs > 1 else ''}: {wall:.1f} s"
          f"{_goal(wall, APPLY_GOAL, True, ' s')}")


@contextmanager
def environment(values: dict[str, str]):
    """Environment variables for one variant: Ray's processes inherit them from ray.init."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
