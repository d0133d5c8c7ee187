"""The script of a stand-in LLM server package (vLLM's or SGLang's module, no GPU): it
parses the flags the real server takes (unknown ones fail, as the real parser does),
records its argv beside itself (`<script>.args`), and answers /health and
/v1/chat/completions with "<name> says <model>"."""

from __future__ import annotations

SCRIPT = '''
import argparse, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
{positional}for flag in {flags!r}:
    parser.add_argument(flag)
for flag in {switches!r}:
    parser.add_argument(flag, action="store_true")
options = parser.parse_args()
with open(sys.argv[0] + ".args", "w") as f:
    json.dump(sys.argv[1:], f)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = {{"choices": [{{"message": {{"role": "assistant", "content": "{name} says " + body["model"]}}}}]}}
        data = json.dumps(answer).encode()
        self.send_response(200 if self.path == "/v1/chat/completions" else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass

HTTPServer((options.host, int(options.port)), Handler).serve_forever()
'''


def stand_in(name: str, flags: tuple[str, ...], switches: tuple[str, ...], command: str | None = None) -> str:
    """The server's script; `command`: a first argument it must get (`vllm serve`)."""
    positional = (f'assert sys.argv[1] == {command!r}, sys.argv\nparser.add_argument("command")\n' if command else "")
    return SCRIPT.format(name=name, flags=flags, switches=switches, positional=positional)
