"""The smoke client sends once more on a new connection when the server closed the
kept-alive one while it was idle (uvicorn does after 5 s), as HTTP clients do."""

from __future__ import annotations

import socket
import threading

from framework.runtime.pipeline.smoke import Endpoint


def test_a_connection_closed_while_idle_is_opened_again() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    answered: list[int] = []

    def serve() -> None:
        for _ in range(2):  # each connection: one answer (kept alive by its headers), then closed silently
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            answered.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    endpoint = Endpoint(f"http://127.0.0.1:{listener.getsockname()[1]}")
    assert endpoint.call("GET", "/v2/health/ready")[0] == 200
    assert endpoint.call("POST", "/v2/models/m/infer", {"inputs": []})[0] == 200  # on a second connection
    thread.join(timeout=10)
    endpoint.close()
    listener.close()
    assert len(answered) == 2
