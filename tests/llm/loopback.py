"""A loopback HTTP server for the provider layer's tests: answers POSTs from a script of replies (status,
body, headers, how to send it), counts every request it receives, and can hold one request open until
released (to kill a client while it waits). The real openai / google-genai SDKs talk to it."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: object = None  # dict (sent as JSON) or raw bytes
    headers: dict = field(default_factory=dict)
    cut: bool = False  # announce the full length but send only half of the body, then close


def openai_chat(text: str, tin: int = 90, tout: int = 15) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}}


def gemini_content(text: str, tin: int = 100, tout: int = 20) -> dict:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": tin, "candidatesTokenCount": tout, "totalTokenCount": tin + tout},
            "modelVersion": "test"}


def error_body(provider: str, status: int) -> dict:
    if provider == "gemini":
        return {"error": {"code": status, "message": f"test {status}", "status": "RESOURCE_EXHAUSTED"}}
    return {"error": {"message": f"test {status}", "type": "test", "code": status}}


class Loopback:
    """``script``: answers in order; ``default(request_body) -> Answer`` afterwards."""

    def __init__(self, script: list[Answer] | None = None, default=None):
        self.script = list(script or [])
        self.default = default
        self.lock = threading.Lock()
        self.count = 0
        self.ok_tokens = [0, 0]  # input/output tokens of 200 replies actually sent to a waiting client
        self.hold_at: int | None = None  # the request number (1-based) to hold open
        self.held = threading.Event()  # set when the held request has arrived
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with outer.lock:
                    outer.count += 1
                    n = outer.count
                    ans = outer.script.pop(0) if outer.script else outer.default(body)
                held = n == outer.hold_at
                if held:
                    outer.held.set()
                    outer.release.wait(120)
                data = ans.body if isinstance(ans.body, bytes) else json.dumps(ans.body).encode()
                try:
                    self.send_response(ans.status)
                    self.send_header("Content-Type", "application/json")
                    for k, v in ans.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2] if ans.cut else data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                if ans.cut:
                    self.close_connection = True
                    return
                if ans.status == 200 and not held and isinstance(ans.body, dict):
                    u = ans.body.get("usage") or {}
                    um = ans.body.get("usageMetadata") or {}
                    with outer.lock:
                        outer.ok_tokens[0] += u.get("prompt_tokens", 0) + um.get("promptTokenCount", 0)
                        outer.ok_tokens[1] += u.get("completion_tokens", 0) + um.get("candidatesTokenCount", 0)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
