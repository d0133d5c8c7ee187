"""The Ray a local apply trains on: embedded in the apply's process, started in the
background while the MLflow run opens, and stopped in the background while the model is
exported.

A cold apply of a small recipe is mostly fixed start-up on a 2-core machine: `ray.init`
is 3-4 s of waiting for the head's processes (GCS, raylet, agents), which use the other
core meanwhile, and opening the MLflow run (importing mlflow, creating its sqlite schema)
is 2-3 s of this process's own time: done one after the other, both count. So do the
driver's import of Ray Train and `ray.shutdown` (about 1.4 s, now beside the ONNX
export, gates and registry). A cluster address (the RayJob, `--target ray`) is
connected to in the foreground, as before.

One thread owns the embedded Ray from `ray.init` to `ray.shutdown`: Ray starts its head
processes with PR_SET_PDEATHSIG, which Linux ties to the thread that started them, so
they would be killed the moment a short-lived init thread ended.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# `ray.init` off the main thread cannot install its SIGTERM handler and says so;
# start() installs the same one (exit, so that atexit stops Ray) from the main thread.
_THREAD_WARNING = "SIGTERM handler is not set"


class _DropThreadWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _THREAD_WARNING not in record.getMessage()


def _exit_on_sigterm(signum, frame):  # what ray.init installs in the main thread
    sys.exit(signum)


class RaySession:
    """Ray for one training job. `start()` returns at once; `ready()` waits for Ray
    (raising what `ray.init` raised); `stop()` begins the shutdown of the Ray this session
    started and `close()` waits for it (or stops it, when never stopped: an error,
    Ctrl-C). `embedded`: this process started Ray for the job (a local apply), so Ray
    Train may leave out its cluster-only helpers (embedded_train.py)."""

    def __init__(self, cpus: int, address: str | None = None, warm: str | None = None):
        self.cpus = cpus
        self.address = None if address in (None, "", "local") else address
        self.warm = warm  # a module the driver imports next (the trainer's), imported meanwhile
        self.embedded = False
        self._connected = False  # to a cluster, by this session
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._owner: threading.Thread | None = None

    def start(self) -> RaySession:
        import ray

        if ray.is_initialized():  # a caller's Ray (tests, notebooks): used as it is, never stopped here
            self._ready.set()
            return self
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if self.address is not None:  # a cluster: nothing to overlap, connect now
            ray.init(address=self.address, log_to_driver=False)
            self._connected = True
            self._ready.set()
            return self
        self.embedded = True
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self._owner = threading.Thread(target=self._own, name="mlops-ray", daemon=True)
        self._owner.start()
        return self

    def _own(self) -> None:
        import ray

        # The driver's import of Ray Train (about 1.5 s of CPU) runs while ray.init waits
        # for the head's processes.
        warming = threading.Thread(target=self._warm, name="mlops-ray-import", daemon=True)
        warming.start()
        worker_log = logging.getLogger("ray._private.worker")
        quiet = _DropThreadWarning()
        worker_log.addFilter(quiet)
        try:
            ray.init(address="local", num_cpus=self.cpus, include_dashboard=False, log_to_driver=False)
        except BaseException as error:  # noqa: BLE001 - raised again by ready() in the caller's thread
            self._error = error
        finally:
            worker_log.removeFilter(quiet)
            warming.join()
            self._ready.set()
        self._stopping.wait()
        ray.shutdown()

    def _warm(self) -> None:
        if self.warm:
            import importlib

            try:
                importlib.import_module(self.warm)
            except ImportError:  # the trainer's own import says what is missing
                pass

    def ready(self) -> None:
        while not self._ready.wait(timeout=0.2):  # short waits: Ctrl-C stays deliverable
            pass
        if self._error is not None:
            raise self._error

    @contextmanager
    def running(self) -> Iterator[None]:
        """Ray ready for the block; stopping (see stop) when it ends."""
        self.ready()
        try:
            yield
        finally:
            self.stop()

    def stop(self) -> None:
        """Begin stopping the Ray this session started (embedded: in the background)."""
        if self._owner is not None:
            self._stopping.set()
        elif self._connected:
            import ray

            self._connected = False
            ray.shutdown()

    def close(self) -> None:
        """Ray stopped, whatever happened: waits for the embedded Ray's shutdown."""
        self.stop()
        if self._owner is not None:
            self._owner.join()
