"""The MLLM judge against loopback HTTP servers through the real SDKs (google-genai, openai): verdict
parsing, malformed replies, 429/5xx then success, timeouts, permanent failures, the failure policy,
concurrency limits, usage accounting, and API keys that never reach any output."""
import json
import logging
import pickle

import pytest
from conftest import gemini_reply, openai_reply, photo

from pairforge.batch import new_batch
from pairforge.filters.config import JudgeFilterConfig
from pairforge.io.storage import LocalStorage
from pairforge.llm.secrets import MissingAPIKey
from pairforge.llm.usage import summarize_usage
from pairforge.stage import RunContext
from pairforge.stages.filters import JudgeStage

KEY = "sk-test-DO-NOT-LEAK-9f8e7d6c"
PASS = '{"passed": true, "reasons": [], "scores": [{"name": "quality", "value": 8}]}'
FAIL = '{"passed": false, "reasons": ["the hand has six fingers"], "categories": ["anomalies"]}'


@pytest.fixture(autouse=True)
def api_keys(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def gem_error(code, status):
    return {"error": {"code": code, "message": f"test {status}", "status": status}}


def oai_error(code, message="test error"):
    return {"error": {"message": message, "type": "test", "code": code}}


RETRY_KEYS = ("max_attempts", "timeout_s", "retry_malformed", "retry_after_max_s")
LLM_KEYS = ("concurrency", "price_per_million_input_tokens", "price_per_million_output_tokens", "structured_output")


def config(backend: str, url: str, **over):
    llm = {"provider": "gemini", "base_url": url, "model": "gemini-test"} if backend == "gemini" else {
        "provider": "openai", "base_url": url + "/v1", "model": "test-vlm"}
    llm["retry"] = {"initial_wait_s": 0.01, "max_wait_s": 0.02, "max_attempts": 3, "timeout_s": 2.0}
    llm["concurrency"] = 1
    for k in RETRY_KEYS:
        if k in over:
            llm["retry"][k] = over.pop(k)
    for k in LLM_KEYS:
        if k in over:
            llm[k] = over.pop(k)
    return JudgeFilterConfig(llm=llm, **over)


def run_stage(cfg, n=1, run_url=None):
    b = new_batch(list(range(n)))
    b["hq"] = [photo(name, 64) for name in ["coffee", "rocket", "chelsea", "camera"] * (n // 4 + 1)][:n]
    return JudgeStage(cfg, RunContext(run_url=run_url))(b)


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_pass_and_fail_verdicts_are_parsed_recorded_and_applied(backend, scripted_server):
    reply = gemini_reply if backend == "gemini" else openai_reply
    srv = scripted_server([(200, reply(PASS), 0), (200, reply(FAIL), 0)])
    out = run_stage(config(backend, srv.url), n=2)
    ok, bad = out["meta"][0]["filters"]["judge"], out["meta"][1]["filters"]["judge"]
    assert out["reject"][0] is None and ok["passed"] is True and ok["scores"] == [{"name": "quality", "value": 8.0}]
    assert ok["provider"] == backend and ok["attempts"] == 1 and ok["usage"]["input_tokens"] > 0
    r = out["reject"][1]
    assert (r["stage"], r["rule"], r["value"]) == ("judge", "anomalies", ["anomalies"])
    assert "six fingers" in r["reason"] and bad["passed"] is False
    body = srv.requests[0]["body"].decode()
    assert "anomalies" in body and "privacy" in body  # the GenIR checks are in the instructions
    if backend == "openai":
        assert json.loads(body)["response_format"]["type"] == "json_schema"
        assert json.loads(body)["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_rate_limit_and_server_errors_are_retried_then_succeed_and_are_counted(backend, scripted_server, tmp_path):
    if backend == "gemini":
        script = [(429, gem_error(429, "RESOURCE_EXHAUSTED"), 0), (503, gem_error(503, "UNAVAILABLE"), 0), (200, gemini_reply(PASS, 1000, 50), 0)]
    else:
        script = [(429, oai_error(429), 0), (500, oai_error(500), 0), (200, openai_reply(PASS, 1000, 50), 0)]
    srv = scripted_server(script)
    cfg = config(backend, srv.url, price_per_million_input_tokens=2.0, price_per_million_output_tokens=10.0)
    out = run_stage(cfg, run_url=str(tmp_path / "run"))
    rec = out["meta"][0]["filters"]["judge"]
    assert out["reject"][0] is None and rec["attempts"] == 3 and len(srv.requests) == 3
    assert rec["usage"] == {"requests": 3, "input_tokens": 1000, "output_tokens": 50, "cost_usd": pytest.approx(0.0025)}
    total = summarize_usage(LocalStorage(tmp_path / "run"), "judge")
    assert (total["calls"], total["requests"], total["retries"], total["failed_calls"]) == (1, 3, 2, 0)
    assert total["failed_requests"] == 2 and total["interrupted"] == 0
    assert total["cost_usd"] == pytest.approx(0.0025)


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_timeouts_exhaust_attempts_and_reject_with_judge_error(backend, scripted_server):
    reply = gemini_reply if backend == "gemini" else openai_reply
    srv = scripted_server([(200, reply(PASS), 1.5)])
    out = run_stage(config(backend, srv.url, timeout_s=0.3, max_attempts=2))
    r = out["reject"][0]
    assert (r["stage"], r["rule"], r["value"]) == ("judge", "judge_error", "timeout")
    assert "2 attempt" in r["reason"]
    assert out["meta"][0]["filters"]["judge"]["passed"] is None
    assert len(srv.requests) == 2


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_permanent_failure_is_not_retried_and_is_recorded(backend, scripted_server):
    body = gem_error(400, "INVALID_ARGUMENT") if backend == "gemini" else oai_error(400)
    srv = scripted_server([(400, body, 0)])
    out = run_stage(config(backend, srv.url))
    r = out["reject"][0]
    assert r["rule"] == "judge_error" and r["value"] == "http_400" and len(srv.requests) == 1


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_malformed_replies_never_pass(backend, scripted_server):
    reply = gemini_reply if backend == "gemini" else openai_reply
    bad = ['{"passed": tru', '{"reasons": ["no passed field"]}', '{"passed": "maybe"}', "Sure! The image looks fine."]
    for text in bad:
        srv = scripted_server([(200, reply(text), 0)])
        out = run_stage(config(backend, srv.url, max_attempts=2))
        r = out["reject"][0]
        assert r["rule"] == "judge_error" and r["value"] == "malformed", text
        assert len(srv.requests) == 2  # malformed replies are retried (retry_malformed)
    srv = scripted_server([(200, reply("not json"), 0)])
    out = run_stage(config(backend, srv.url, retry_malformed=False))
    assert out["reject"][0]["value"] == "malformed" and len(srv.requests) == 1
    srv = scripted_server([(200, reply("garbage"), 0), (200, reply("```json\n" + PASS + "\n```"), 0)])
    out = run_stage(config(backend, srv.url))
    assert out["reject"][0] is None and out["meta"][0]["filters"]["judge"]["attempts"] == 2


def test_gemini_safety_block_is_a_failed_verdict(scripted_server):
    srv = scripted_server([(200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}, 0)])
    out = run_stage(config("gemini", srv.url))
    r = out["reject"][0]
    assert r["rule"] == "unsafe" and "SAFETY" in r["reason"]


def test_failure_policy_accept_and_raise(scripted_server):
    srv = scripted_server([(500, gem_error(500, "INTERNAL"), 0)])
    out = run_stage(config("gemini", srv.url, on_error="accept", max_attempts=2))
    rec = out["meta"][0]["filters"]["judge"]
    assert out["reject"][0] is None and rec["unjudged"] is True and rec["passed"] is None and rec["error_type"] == "server"
    with pytest.raises(RuntimeError, match="judgement of sample"):
        run_stage(config("gemini", srv.url, on_error="raise", max_attempts=1))


def test_concurrency_limit_holds(scripted_server):
    srv = scripted_server([(200, openai_reply(PASS), 0.15)])
    out = run_stage(config("openai", srv.url, concurrency=3), n=9)
    assert out["reject"] == [None] * 9 and len(srv.requests) == 9
    assert 1 < srv.max_active <= 3


def test_structured_outputs_mode_sends_vllm_extra_body(scripted_server):
    srv = scripted_server([(200, openai_reply(PASS), 0)])
    run_stage(config("openai", srv.url, structured_output="structured_outputs"))
    body = json.loads(srv.requests[0]["body"])
    assert body["structured_outputs"]["json"]["required"] == ["passed"] and "response_format" not in body


def test_api_key_never_reaches_outputs_logs_or_pickles(scripted_server, tmp_path, caplog):
    leak = {"error": {"code": 400, "message": f"API key not valid: {KEY}", "status": "INVALID_ARGUMENT"}}
    srv = scripted_server([(400, leak, 0)])
    caplog.set_level(logging.DEBUG)
    cfg = config("gemini", srv.url)
    st = JudgeStage(cfg, RunContext(run_url=str(tmp_path / "run")))
    b = new_batch([0])
    b["hq"] = [photo("coffee", 64)]
    out = st(b)
    assert srv.requests[0]["headers"].get("x-goog-api-key") == KEY  # it was used...
    assert out["reject"][0]["rule"] == "judge_error" and "***" in out["reject"][0]["reason"]
    everything = json.dumps([out["meta"], out["reject"]]) + caplog.text + cfg.model_dump_json()
    for p in (tmp_path / "run").rglob("*"):
        if p.is_file():
            everything += p.read_text()
    assert KEY not in everything  # ...and never written anywhere
    assert KEY.encode() not in pickle.dumps(st)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(MissingAPIKey, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        run_stage(config("gemini", "http://127.0.0.1:9"))


def test_privacy_filter_asks_the_mllm_privacy_question_after_face_detection(scripted_server, tmp_path):
    from pairforge.filters.config import PrivacyFilterConfig
    from pairforge.stages.filters import PrivacyStage

    verdict = '{"passed": false, "reasons": ["a readable license plate"], "categories": ["privacy"]}'
    srv = scripted_server([(200, openai_reply(verdict), 0)])
    cfg = PrivacyFilterConfig(
        judge={"llm": {"provider": "openai", "base_url": srv.url + "/v1", "model": "test-vlm", "concurrency": 1}},
    )
    b = new_batch([0, 1])
    b["hq"] = [photo("astronaut", None), photo("rocket", 128)]
    out = PrivacyStage(cfg, RunContext(run_url=str(tmp_path / "run")))(b)
    assert out["reject"][0]["rule"] == "faces"  # the detector answered; the MLLM is not asked about it
    assert len(srv.requests) == 1
    prompt = json.loads(srv.requests[0]["body"])["messages"][0]["content"][1]["text"]
    assert "privacy" in prompt and "anomalies" not in prompt
    r = out["reject"][1]
    assert (r["stage"], r["rule"]) == ("privacy", "privacy") and "license plate" in r["reason"]
    rec = out["meta"][1]["filters"]["privacy"]
    assert rec["faces"] == 0 and rec["judge"]["passed"] is False and rec["judge"]["usage"]["requests"] == 1
    assert summarize_usage(LocalStorage(tmp_path / "run"), "privacy")["requests"] == 1
