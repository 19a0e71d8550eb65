"""Retry-After on 429/503 is honoured (capped, configurable) and a 200 with a truncated body is retried, in
the prompt source and in the judge, through the real openai and google-genai SDKs against a loopback
server. Waits are observed through the client's sleep function, never timed."""
from __future__ import annotations

import json

import numpy as np
import pytest
from loopback import Answer, Loopback, error_body, gemini_content, openai_chat

from pairforge.filters.config import JudgeFilterConfig
from pairforge.filters.judge import make_judge
from pairforge.io.storage import LocalStorage
from pairforge.llm import make_client
from pairforge.llm.usage import summarize_usage
from pairforge.prompts.config import LLMPromptsConfig
from pairforge.prompts.writer import LLMWriter

SCENES = json.dumps({"prompts": ["a red barn at dawn", "a quiet harbor at noon"]})
PASS = json.dumps({"passed": True, "reasons": []})


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test-key-0000")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")


@pytest.fixture()
def server():
    made = []

    def make(script, text):
        def default(body):
            return Answer(200, gemini_content(text) if "contents" in body else openai_chat(text))

        s = Loopback(script, default)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _llm(provider: str, url: str, **retry) -> dict:
    return {"provider": provider, "model": "m", "base_url": url if provider == "gemini" else url + "/v1",
            "concurrency": 1, "retry": {"max_attempts": 4, "initial_wait_s": 0.01, "max_wait_s": 0.05,
                                        "timeout_s": 10, **retry}}


def ask(component: str, provider: str, url: str, tmp_path, **retry) -> tuple[bool, list[float]]:
    """One prompt request (through the prompt source's writer) or one judged image; returns (ok, sleeps)."""
    sleeps: list[float] = []
    storage = LocalStorage(tmp_path)
    if component == "prompts":
        cfg = LLMPromptsConfig.model_validate({"kind": "llm", "llm": _llm(provider, url, **retry), "per_request": 2})
        client = make_client(cfg.llm, sleep=sleeps.append)
        writer = LLMWriter(cfg, seed=0, storage=None, client=client)
        ok = "error" not in writer.fetch(0)
    else:
        judge = make_judge(JudgeFilterConfig(llm=_llm(provider, url, **retry)), storage=storage, sleep=sleeps.append)
        ok = judge.judge_images([np.full((32, 32, 3), 128, np.uint8)])[0].ok
        judge.close()
    return ok, sleeps


@pytest.mark.parametrize("component", ["prompts", "judge"])
@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_retry_after_on_429_and_503_is_honoured_and_capped(component, provider, server, tmp_path):
    text = SCENES if component == "prompts" else PASS
    srv = server([Answer(429, error_body(provider, 429), {"Retry-After": "3"}),
                  Answer(503, error_body(provider, 503), {"Retry-After": "2"})], text)
    ok, sleeps = ask(component, provider, srv.url, tmp_path / "a")
    assert ok and srv.count == 3
    assert sleeps == [3.0, 2.0]  # the server's waits, not the 0.01-0.05 s backoff
    # a long Retry-After is capped at retry_after_max_s; 0 ignores the header
    srv = server([Answer(429, error_body(provider, 429), {"Retry-After": "1000"})], text)
    ok, sleeps = ask(component, provider, srv.url, tmp_path / "b", retry_after_max_s=5)
    assert ok and sleeps == [5.0]
    srv = server([Answer(429, error_body(provider, 429), {"retry-after-ms": "4000"})], text)
    ok, sleeps = ask(component, provider, srv.url, tmp_path / "c", retry_after_max_s=0)
    assert ok and len(sleeps) == 1 and sleeps[0] < 0.1


@pytest.mark.parametrize("component", ["prompts", "judge"])
@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_200_with_a_truncated_body_is_retried(component, provider, server, tmp_path):
    text = SCENES if component == "prompts" else PASS
    full = json.dumps(gemini_content(text) if provider == "gemini" else openai_chat(text)).encode()
    srv = server([Answer(200, full[: len(full) // 2]),  # a complete response whose JSON body is cut off
                  Answer(200, full, cut=True)],  # a body shorter than its Content-Length, then a closed socket
                 text)
    ok, sleeps = ask(component, provider, srv.url, tmp_path)
    assert ok and srv.count == 3 and len(sleeps) == 2
    if component == "judge":  # and each attempt is in the usage log
        u = summarize_usage(LocalStorage(tmp_path), "judge")
        assert (u["requests"], u["failed_requests"], u["calls"], u["failed_calls"]) == (3, 2, 1, 0)


def test_the_truncated_body_is_classified(server, tmp_path):
    """The error kind of a cut-off 200 is ``truncated`` (recorded per request in the usage log)."""
    full = json.dumps(openai_chat(PASS)).encode()
    srv = server([Answer(200, full[:40])], PASS)
    judge = make_judge(JudgeFilterConfig(llm=_llm("openai", srv.url, max_attempts=1)), storage=LocalStorage(tmp_path))
    j = judge.judge_images([np.full((32, 32, 3), 128, np.uint8)])[0]
    judge.close()
    assert not j.ok and j.error_type == "truncated"
    lines = [json.loads(x) for p in (tmp_path / "usage" / "judge").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert [x.get("kind") for x in lines if x["e"] == "end"] == ["truncated"]
