"""A stand-in for GitHub's REST API endpoint that dispatches workflows
(POST /repos/{owner}/{repo}/actions/workflows/{file}/dispatches), answering as GitHub
does: 204 with no body when accepted, else its JSON error body (`message`,
`documentation_url`, `status`). It checks what GitHub checks: the bearer token, the
token's permission, the repository and workflow, the workflow's trigger and the ref;
and records every request with its headers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"


@dataclass
class Repository:
    workflows: dict[str, bool]  # file -> has a workflow_dispatch trigger
    refs: set[str] = field(default_factory=lambda: {"main"})


@dataclass
class FakeGitHub:
    tokens: dict[str, bool]  # token -> may write actions
    repositories: dict[str, Repository]
    requests: list[dict] = field(default_factory=list)

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict | None]:
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 7 or parts[0] != "repos" or parts[3:5] != ["actions", "workflows"] \
                or parts[6] != "dispatches":
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
        repository, workflow = self.repositories.get(f"{parts[1]}/{parts[2]}"), parts[5]
        if repository is None or workflow not in repository.workflows:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        if not self.tokens[token]:
            return 403, {"message": "Resource not accessible by integration", "documentation_url": DOCS, "status": "403"}
        if not repository.workflows[workflow]:
            return 422, {"message": "Workflow does not have 'workflow_dispatch' trigger", "documentation_url": DOCS,
                         "status": "422"}
        try:
            ref = json.loads(body)["ref"]
        except (ValueError, KeyError, TypeError):
            return 422, {"message": "Invalid request.\n\n\"ref\" wasn't supplied.", "documentation_url": DOCS,
                         "status": "422"}
        if ref not in repository.refs:
            return 422, {"message": f"No ref found for: {ref}", "documentation_url": DOCS, "status": "422"}
        return 204, None


def serve(github: FakeGitHub):
    """Start it on 127.0.0.1; returns (url, stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self._answer("POST")

        def do_GET(self):
            self._answer("GET")

        def _answer(self, method: str):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = github.answer(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop
