"""A loopback HTTP server that speaks the Gemini (generateContent) and OpenAI (chat/completions) wire
formats, so the real google-genai and openai SDKs can be exercised offline.

The server writes scene prompts derived from the request (theme, count, request number), or follows a
script of failures queued by a test (e.g. one 429 before success). Every request is recorded.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ADJ = ["misty", "golden", "quiet", "weathered", "bright", "frozen", "crowded", "ancient", "lush", "stormy",
       "sunlit", "rustic", "windswept", "glowing", "shadowy", "colorful"]
NOUN = ["harbor", "orchard", "canyon", "bazaar", "glacier", "vineyard", "lighthouse", "monastery", "marsh",
        "railway yard", "bamboo grove", "fjord", "tea plantation", "salt flat", "boathouse", "observatory"]
LIGHT = ["at dawn", "under an overcast sky", "at golden hour", "in blue hour light", "at noon", "by lantern light",
         "after a rain shower", "in thick fog"]


def scene_prompts(text: str) -> list[str]:
    """Prompts a stand-in LLM would write for a scene request (distinct per request and item)."""
    n = int(re.search(r"Write (\d+) different", text).group(1))
    theme = re.search(r"on the theme: (.*?)\.\n", text)
    theme = theme.group(1) if theme else "anything"
    req = re.search(r"\(Request (\d+):", text)
    req = int(req.group(1)) if req else 0
    out = []
    for i in range(n):
        h = int(hashlib.sha1(f"{req}-{i}".encode()).hexdigest(), 16)
        out.append(f"a {ADJ[h % 16]} {NOUN[(h >> 4) % 16]} {LIGHT[(h >> 8) % 8]}, seen from a "
                   f"{['low', 'high', 'wide', 'close'][(h >> 12) % 4]} viewpoint, about {theme}, "
                   f"variation {req}-{i}")
    return out


def privacy_verdicts(text: str) -> dict:
    """Fail prompts mentioning 'senator' (something the rules do not catch), pass the rest."""
    results = []
    for line in text.splitlines():
        m = re.match(r"(\d+): (.*)", line)
        if m:
            bad = "senator" in m.group(2).lower()
            results.append({"id": int(m.group(1)), "passed": not bad,
                            "reason": "depicts an identifiable politician" if bad else "ok"})
    return {"results": results}


GEMINI_429 = (429, {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                              "status": "RESOURCE_EXHAUSTED"}})
GEMINI_401 = (401, {"error": {"code": 401, "message": "API key not valid.", "status": "UNAUTHENTICATED"}})
OPENAI_429 = (429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit"}})
OPENAI_503 = (503, {"error": {"message": "Service unavailable", "type": "server_error", "code": None}})
OPENAI_401 = (401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                              "code": "invalid_api_key"}})


class FakeLLM:
    GEMINI_429, GEMINI_401, OPENAI_429, OPENAI_503, OPENAI_401 = GEMINI_429, GEMINI_401, OPENAI_429, OPENAI_503, OPENAI_401

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict | str]] = []  # queued (status, body) answered before the default
        self.lock = threading.Lock()
        self.always: tuple[int, dict] | None = None  # answer every request with this (permanent failure)
        self.free_text = 0  # answer the next N requests with prose instead of JSON (vLLM ignoring schema)
        self.delays: list[float] = []  # seconds to stall before answering the next requests (timeouts)
        self.stall = 0.0  # seconds every request takes (to observe concurrency)
        self.inflight = 0
        self.max_inflight = 0
        self.server = None
        self.url = ""

    def reply_text(self, user: str) -> str:
        if "Prompts to screen" in user:
            return json.dumps(privacy_verdicts(user))
        return json.dumps({"prompts": scene_prompts(user)})

    def next_action(self):
        with self.lock:
            if self.always is not None:
                return self.always
            if self.script:
                return self.script.pop(0)
            if self.free_text > 0:
                self.free_text -= 1
                return (200, "FREE")
        return None


def _handler(fake: FakeLLM):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):  # keep test output clean
            pass

        def _send(self, status: int, body: dict):
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left (the timeout test)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with fake.lock:
                fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            gemini = ":generateContent" in self.path
            if gemini:
                user = body["contents"][0]["parts"][0]["text"]
            else:
                user = [m for m in body["messages"] if m["role"] == "user"][0]["content"]
            with fake.lock:
                delay = fake.delays.pop(0) if fake.delays else fake.stall
                fake.inflight += 1
                fake.max_inflight = max(fake.max_inflight, fake.inflight)
            if delay:
                import time

                time.sleep(delay)
            with fake.lock:
                fake.inflight -= 1
            action = fake.next_action()
            if action is not None and action[1] != "FREE":
                status, err = action
                return self._send(status, err)
            text = fake.reply_text(user)
            if action is not None:  # FREE: prose, as a server that ignored the schema would answer
                text = "Sure! Here are some lovely scenes: a beach, a forest."
            if gemini:
                return self._send(200, {
                    "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                                    "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20},
                    "modelVersion": "fake",
                })
            return self._send(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            })

    return H


@pytest.fixture()
def fake_llm():
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    fake.server = server
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


