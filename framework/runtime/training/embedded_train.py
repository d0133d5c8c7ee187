"""Ray Train on the Ray a local apply embeds (embedded_ray.py): the same TorchTrainer,
controller, worker group, process group and DDP as on a cluster, without the controller's
helpers that serve a shared, long-lived cluster. Each of them is an actor, so a Python
process that imports Ray Train: about 1.3 s of CPU apiece, which on 2 cores competes
with the training workers' own start (measured in bench/train.py):

- the autoscaling coordinator, which asks a cluster's autoscaler for the workers'
  resources: an embedded Ray has no autoscaler and its CPUs are all there;
- the placement-group cleaner, which removes the workers' placement group if the
  controller dies: the apply's `ray.shutdown` ends everything, crashed or not;
- the dataset manager, which shards Ray Datasets: the trainer passes none (the arrays
  travel as one object);
- the preemption watcher, which relays spot nodes' drain notices: there are none.

The rest is Ray Train's own: a cluster (the RayJob, `--target ray`) runs it unchanged.

This module is imported by Ray Train's controller too (it unpickles the scaling policy).
"""

from __future__ import annotations

import os

from ray.train.v2._internal.callbacks import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy

# Read by the controller (Ray Train forwards variables set in the driver).
PREEMPTION_WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
_LEFT_OUT = (DatasetsCallback, PlacementGroupCleanerCallback)


class FixedWithoutAutoscaler(FixedScalingPolicy):
    """The fixed worker count, without resource requests to an autoscaler (and so
    without the coordinator actor that would relay them)."""

    def after_controller_start(self, train_run_context) -> None:
        pass

    def _maybe_send_resource_request(self) -> None:
        pass

    def _send_resource_request(self) -> None:
        pass

    def _cancel_resource_request(self) -> None:
        pass


def trainer_class(base):
    """A trainer for the embedded Ray: Ray Train's `base` (TorchTrainer, LightGBMTrainer),
    less the helpers above."""

    class Embedded(base):
        def _create_default_callbacks(self):
            return [c for c in super()._create_default_callbacks() if not isinstance(c, _LEFT_OUT)]

        def _initialize_and_run_controller(self, **controller_init_kwargs):
            if not self.scaling_config.elasticity_enabled:
                controller_init_kwargs["scaling_policy"] = FixedWithoutAutoscaler(self.scaling_config)
            # Read from this process's environment when the controller starts; set for this
            # fit only, so that a later cluster fit in the same process keeps its watcher.
            ours = PREEMPTION_WATCHER not in os.environ
            os.environ.setdefault(PREEMPTION_WATCHER, "0")
            try:
                return super()._initialize_and_run_controller(**controller_init_kwargs)
            finally:
                if ours:
                    os.environ.pop(PREEMPTION_WATCHER, None)

    Embedded.__name__ = Embedded.__qualname__ = f"Embedded{base.__name__}"
    return Embedded
