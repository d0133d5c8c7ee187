"""A real Ray head for tests (`ray start --head` on 127.0.0.1), stopped by killing only
its own processes: `ray stop --force` would kill every Ray on the machine, other tests'
embedded ones included. Its processes are the ones that name its --temp-dir or keep a
file open under it (logs)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_of(temp: str) -> list[int]:
    """Processes naming `temp` on their command line or holding a file under it open (Ray's
    agents retitle themselves, but every Ray process keeps its log files open there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if temp in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore"):
                found.append(int(entry.name))
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd).startswith(temp):
                    found.append(int(entry.name))
                    break
        except OSError:
            continue
    return found


def free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together while picked, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _node_ports(ports: list[int]) -> list[str]:
    """Ports of a node's own servers, free ones: Ray's fixed defaults (the dashboard
    agent's 52365, ...) collide between nodes on one machine and with other tests' Rays,
    and a node whose agent cannot bind has no job agent ("No available agent")."""
    names = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
             "metrics-export-port", "node-manager-port", "object-manager-port")
    return [f"--{name}={ports.pop()}" for name in names]


@contextlib.contextmanager
def ray_head(*, num_cpus: int = 2, hide: Path | None = None, worker_nodes: int = 0) -> Iterator[str]:
    """The dashboard URL of a head started for the test (and `worker_nodes` more nodes of
    `num_cpus` joined to it). `hide`: a folder the cluster must not see (a tmpfs over it in
    the cluster's own mount namespace, `unshare --mount`), as a remote cluster cannot see
    the client's disk."""
    for attempt in (1, 2):  # a port picked free can be taken before Ray binds it: once more, on new ports
        temp = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's socket paths live under it
        start, dashboard = _start_command(temp, num_cpus, hide, worker_nodes)
        done = subprocess.run(start, env=_env(), capture_output=True, text=True, timeout=180)
        if done.returncode == 0:
            break
        stop_processes_under(temp)
        if attempt == 2:
            raise RuntimeError(f"ray start failed twice: {done.stdout[-2000:]}{done.stderr[-3000:]}")
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        stop_processes_under(temp)


def _env() -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _start_command(temp: str, num_cpus: int, hide: Path | None, worker_nodes: int) -> tuple[list[str], int]:
    ports = free_ports(9 + 6 * worker_nodes)
    dashboard, gcs, client = ports.pop(), ports.pop(), ports.pop()
    head = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}", f"--num-cpus={num_cpus}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
            "--disable-usage-stats", f"--temp-dir={temp}", f"--ray-client-server-port={client}", *_node_ports(ports)]
    # Each node its own temp dir, as each machine of a cluster has its own disk: nodes sharing
    # one extract the same runtime_env packages and delete them under each other's jobs.
    nodes = [[RAY, "start", f"--address=127.0.0.1:{gcs}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}",
              "--disable-usage-stats", f"--temp-dir={temp}/node{n}", *_node_ports(ports)] for n in range(worker_nodes)]
    script = " && ".join(shlex.join(command) for command in [head, *nodes])
    if hide is None:
        return ["sh", "-c", script], dashboard
    script = f"mount -t tmpfs tmpfs {shlex.quote(str(hide))} && test -z \"$(ls -A {shlex.quote(str(hide))})\" && {script}"
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script], dashboard


def stop_processes_under(temp: str) -> None:
    """Kill the Ray whose --temp-dir is `temp`, and only it (not `ray stop --force`)."""
    for _ in range(3):  # workers may be starting while the first pass runs
        for pid in _processes_of(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    shutil.rmtree(temp, ignore_errors=True)
