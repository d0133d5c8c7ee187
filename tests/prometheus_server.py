"""A real Prometheus and Pushgateway for tests: Debian's `prometheus` (2.42) and
`prometheus-pushgateway` (1.5), which `make tools` installs. Each listens on a free
port of 127.0.0.1 with its data in a temporary folder, runs in its own session, and is
stopped (with anything it started) on exit. `Prometheus.query` asks the HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

PROMETHEUS = shutil.which("prometheus")
PUSHGATEWAY = shutil.which("prometheus-pushgateway")
MISSING = [name for name, path in (("prometheus", PROMETHEUS), ("prometheus-pushgateway", PUSHGATEWAY)) if path is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


class _Process:
    """A binary in its own session, its output in `log`; ready once `ready_path` says 200."""

    ready_path = "/-/ready"

    def __init__(self, argv: list[str], port: int, workdir: Path):
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{Path(argv[0]).name}.log"
        self._log_file = open(self.log, "wb")
        # No proxy: every URL here is 127.0.0.1.
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        self.process = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if get(self.url + self.ready_path, timeout=1)[0] == 200:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.log.stem} not ready in {timeout:.0f} s (exit {self.process.returncode}):\n"
                           + self.log.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log_file.close()

    def __enter__(self):
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()


class Pushgateway(_Process):
    def __init__(self, workdir: Path):
        port = free_port()
        super().__init__([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], port, workdir)


class Prometheus(_Process):
    """Prometheus with `config` (scrape_configs and the rest, a dict) and `rule_groups`
    (PrometheusRule spec.groups) loaded from files in `workdir`; TSDB in workdir/data."""

    def __init__(self, workdir: Path, config: dict, rule_groups: list[dict] = ()):
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = dict(config)
        if rule_groups:
            (workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": list(rule_groups)}), encoding="utf-8")
            config["rule_files"] = ["rules.yaml"]
        (workdir / "prometheus.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        super().__init__([
            PROMETHEUS, f"--config.file={workdir / 'prometheus.yaml'}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ], port, workdir)

    def api(self, path: str, **params: str) -> dict:
        status, body = get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10)
        answer = json.loads(body or b"{}")
        if status != 200 or answer.get("status") != "success":
            raise AssertionError(f"{path} {params}: HTTP {status}: {body[:2000]!r}")
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        """The instant vector `expr` gives now: [{metric: {labels}, value: [t, "v"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return data["result"]
