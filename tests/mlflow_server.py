"""The team's tracking server, for tests: a real `mlflow server` on 127.0.0.1 (a sqlite
backend, artifacts proxied by the server: what staging and prod run), and a proxy in
front of it that wants credentials, to see what a client sends.

One server serves the whole session (the `mlflow_server` fixture of tests/conftest.py),
so a test names its own experiments and registered models (`unique_name`) and never
assumes the server is empty.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.ray_head import free_port

BIN = Path(sys.executable).parent


def unique_name(prefix: str) -> str:
    """An experiment or registered-model name no other test (nor a rerun) uses; a
    DNS-1123 label, as tracking.registered_model wants."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def server_overrides(url: str, name: str) -> list[str]:
    """Recipe overrides: track to the server at url, in an experiment and a registered
    model named `name`."""
    return [f"tracking.uri={url}", f"+tracking.registered_model={name}", f"+tracking.experiment={name}"]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Until url answers 200; fails early when `process` exits (its log in the error)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited {process.returncode}: {log.read_text()[-2000:] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not up after {seconds}s: {log.read_text()[-2000:] if log else ''}")


@contextlib.contextmanager
def running_mlflow_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 storing under `folder`: its URL while it runs."""
    port = free_port()
    log = folder / "server.log"
    # No job runner: its seven huey workers serve GenAI jobs, never the registry.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts"),
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", 120, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


class AuthProxy:
    """A gateway in front of `upstream`, as a team puts one before its server: 401 unless a
    request's Authorization header is one of `accepted`, else forwarded. `seen` lists each
    request's (method, path, Authorization header or None)."""

    def __init__(self, upstream: str, *accepted: str):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.accepted = set(accepted)
        self.seen: list[tuple[str, str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> AuthProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # the test reads `seen`, not stderr
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                body = self._body()
                given = self.headers.get("Authorization")
                proxy.seen.append((self.command, self.path, given))
                if given not in proxy.accepted:
                    self._reply(401, [("Content-Type", "text/plain")], b"Unauthorized")
                    return
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "transfer-encoding")}
                    headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    self._reply(response.status, response.getheaders(), response.read())
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler
