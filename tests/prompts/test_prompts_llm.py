"""LLM prompt writing through the real google-genai and openai SDKs against a loopback server."""
from __future__ import annotations

import json
import logging

import pytest

from pairforge.io.storage import LocalStorage
from pairforge.llm import PermanentLLMError, Request, RetryableLLMError, make_client
from pairforge.llm.secrets import MissingAPIKey
from pairforge.prompts.bank import build_bank, load_or_build_bank
from pairforge.prompts.config import LLMPromptsConfig
from pairforge.prompts.instructions import ScenePromptBatch
from pairforge.prompts.writer import PromptGenerationError


def call_with_retry(client, system, user, schema, seed=None):
    return client.call(Request(user, system, schema=schema, seed=seed)).unwrap()


GKEY = "AIzaSyFAKE-gemini-key-0123456789abcdef"
OKEY = "sk-fake-openai-key-0123456789abcdefXYZ"


def llm_cfg(fake, backend: str, **kw) -> LLMPromptsConfig:
    llm = {"provider": backend, "model": "gemini-2.5-flash" if backend == "gemini" else "qwen3-32b",
           "base_url": fake.url if backend == "gemini" else fake.url + "/v1",
           "retry": {"max_attempts": 3, "initial_wait_s": 0.01, "max_wait_s": 0.05, "timeout_s": 10},
           "concurrency": 2}
    llm.update(kw.pop("llm", {}))
    data = {"kind": "llm", "llm": llm, "per_request": 5, "dedup": {"near": False}}
    data.update(kw)
    return LLMPromptsConfig.model_validate(data)


@pytest.fixture()
def keys(monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", GKEY)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OKEY)


def _all_text(root) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_structured_output_parsed_and_cached(backend, fake_llm, keys, tmp_path):
    cfg = llm_cfg(fake_llm, backend)
    store = LocalStorage(tmp_path / "run")
    bank = load_or_build_bank(cfg, 12, seed=3, storage=store)
    assert len(bank) == 12
    assert all("viewpoint" in p for p in bank.prompts)
    assert bank.origins[0]["request"] == 0 and "theme" in bank.origins[0]
    n_first = len(fake_llm.requests)
    assert n_first >= 3  # 12 prompts x 1.2 overshoot / 5 per request
    body = fake_llm.requests[0]["body"]
    if backend == "gemini":
        gc = body["generationConfig"]
        assert gc["responseMimeType"] == "application/json"
        assert "prompts" in json.dumps(gc.get("responseSchema") or gc.get("responseJsonSchema"))
        assert fake_llm.requests[0]["headers"].get("x-goog-api-key") == GKEY
        assert "identifiable person" in json.dumps(body["systemInstruction"])
    else:
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"]["properties"]["prompts"]
        assert fake_llm.requests[0]["headers"].get("authorization") == f"Bearer {OKEY}"
        assert "identifiable person" in body["messages"][0]["content"]
    # a resumed run (bank deleted, cache kept) makes no request at all and gets the same prompts
    store.delete("prompts/bank.json")
    again = load_or_build_bank(cfg, 12, seed=3, storage=store)
    assert again.prompts == bank.prompts
    assert len(fake_llm.requests) == n_first
    assert again.info["llm_requests_made"] == 0 and again.info["llm_cache_hits"] >= 3


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_rate_limit_then_success_is_retried(backend, fake_llm, keys, caplog):
    fake_llm.script.append(fake_llm.GEMINI_429 if backend == "gemini" else fake_llm.OPENAI_429)
    if backend == "openai":
        fake_llm.script.append(fake_llm.OPENAI_503)
    cfg = llm_cfg(fake_llm, backend)
    client = make_client(cfg.llm)
    with caplog.at_level(logging.DEBUG):
        reply = call_with_retry(client, "sys", "Write 3 different photographic scene descriptions on the theme: "
                                "x.\n(Request 0: ...)", ScenePromptBatch, seed=1)
    assert len(reply.prompts) == 3
    assert len(fake_llm.requests) == (2 if backend == "gemini" else 3)
    assert "429" in caplog.text and "retrying" in caplog.text
    assert GKEY not in caplog.text and OKEY not in caplog.text


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_permanent_failure_is_not_retried_and_recorded(backend, fake_llm, keys, tmp_path, caplog):
    fake_llm.always = fake_llm.GEMINI_401 if backend == "gemini" else fake_llm.OPENAI_401
    cfg = llm_cfg(fake_llm, backend, max_failed_requests=1)
    client = make_client(cfg.llm)
    with pytest.raises(PermanentLLMError) as ei:
        call_with_retry(client, "s", "u", ScenePromptBatch)
    assert ei.value.status == 401 and len(fake_llm.requests) == 1  # 401 is never retried
    store = LocalStorage(tmp_path / "run")
    with caplog.at_level(logging.DEBUG), pytest.raises(PromptGenerationError, match="401"):
        load_or_build_bank(cfg, 10, seed=0, storage=store)
    assert "failed permanently" in caplog.text
    assert GKEY not in caplog.text and OKEY not in caplog.text
    assert not store.exists("prompts/bank.json")  # nothing half-built is committed


def test_some_failed_requests_are_recorded_and_skipped(fake_llm, keys, tmp_path):
    cfg = llm_cfg(fake_llm, "openai", llm={"concurrency": 1}, max_failed_requests=3)
    fake_llm.script.append(fake_llm.OPENAI_401)  # request 0 fails for good; later ones succeed
    store = LocalStorage(tmp_path / "run")
    bank = load_or_build_bank(cfg, 10, seed=0, storage=store)
    assert len(bank) == 10
    errs = bank.info["llm_errors"]
    assert len(errs) == 1 and errs[0]["request"] == 0 and errs[0]["status"] == 401
    assert all(o["request"] != 0 for o in bank.origins)
    info = json.loads(store.read_bytes("prompts/bank.json"))
    assert info["llm_errors"][0]["status"] == 401


def test_schema_ignored_reply_is_validated_and_retried(fake_llm, keys):
    """vLLM >= 0.12 answers 200 with free text when it ignores a structured-output parameter."""
    fake_llm.free_text = 1
    cfg = llm_cfg(fake_llm, "openai", llm={"structured_output": "structured_outputs"})
    client = make_client(cfg.llm)
    reply = call_with_retry(client, "s", "Write 2 different photographic scene descriptions on the theme: y.\n",
                            ScenePromptBatch)
    assert len(reply.prompts) == 2 and len(fake_llm.requests) == 2
    assert "structured_outputs" in fake_llm.requests[0]["body"]
    fake_llm.always = (200, "FREE")
    fake_llm.free_text = 10
    with pytest.raises(RetryableLLMError, match="schema"):
        call_with_retry(make_client(cfg.llm), "s", "Write 2 different x on the theme: y.\n", ScenePromptBatch)


def test_api_key_never_stored_or_logged(fake_llm, keys, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("MY_VLLM_KEY", "vllm-secret-key-987654321")
    cfg = llm_cfg(fake_llm, "openai", llm={"api_key_env": "MY_VLLM_KEY"})
    fake_llm.script.append(fake_llm.OPENAI_429)
    store = LocalStorage(tmp_path / "run")
    with caplog.at_level(logging.DEBUG):
        bank = load_or_build_bank(cfg, 6, seed=0, storage=store)
    assert fake_llm.requests[0]["headers"]["authorization"] == "Bearer vllm-secret-key-987654321"
    text = _all_text(tmp_path / "run") + caplog.text + json.dumps(bank.info) + cfg.model_dump_json()
    for secret in ("vllm-secret-key-987654321", OKEY, GKEY):
        assert secret not in text
    assert "MY_VLLM_KEY" in cfg.model_dump_json()  # only the variable NAME is config


def test_missing_key_names_the_variable(monkeypatch, fake_llm):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    cfg = llm_cfg(fake_llm, "gemini")
    with pytest.raises(MissingAPIKey, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        call_with_retry(make_client(cfg.llm), "s", "u", ScenePromptBatch)


def test_llm_privacy_check_drops_flagged_prompts(fake_llm, keys, tmp_path):
    from pairforge.prompts.config import PrivacyConfig
    from pairforge.prompts.privacy import PrivacyScreen

    pc = PrivacyConfig(llm_check={"provider": "openai", "model": "m", "base_url": fake_llm.url + "/v1",
                                  "retry": {"max_attempts": 2, "initial_wait_s": 0.01}})
    screen = PrivacyScreen(pc, LocalStorage(tmp_path))
    prompts = ["a senator shaking hands at a rally", "a red barn in snow", "contact me at joe@example.com"]
    v = screen.screen(prompts)
    assert [x.passed for x in v] == [False, True, False]
    assert v[0].rule == "llm_check" and "politician" in v[0].reason
    assert v[2].rule == "email"  # the rules decided; the LLM only saw the two others
    sent = fake_llm.requests[0]["body"]["messages"][1]["content"]
    assert "joe@example.com" not in sent and "red barn" in sent
    # cached: a second screen of the same prompts asks nothing
    n = len(fake_llm.requests)
    PrivacyScreen(pc, LocalStorage(tmp_path)).screen(prompts)
    assert len(fake_llm.requests) == n


def test_bank_extension_keeps_existing_prompts(fake_llm, keys, tmp_path):
    cfg = llm_cfg(fake_llm, "gemini")
    store = LocalStorage(tmp_path / "run")
    small = load_or_build_bank(cfg, 7, seed=5, storage=store)
    big = load_or_build_bank(cfg, 20, seed=5, storage=store)
    assert big.prompts[:7] == small.prompts and len(big) == 20
    direct, _ = build_bank(cfg, 20, seed=5, storage=store)
    assert direct.prompts == big.prompts


def test_concurrency_limit_is_respected(fake_llm, keys):
    fake_llm.stall = 0.2
    cfg = llm_cfg(fake_llm, "openai", llm={"concurrency": 3}, per_request=2)
    bank, _ = build_bank(cfg, 20, seed=0)  # 12 requests in the first wave
    assert len(bank) == 20
    assert len(fake_llm.requests) >= 10
    assert 2 <= fake_llm.max_inflight <= 3


def test_prompts_command_reports_requests_tokens_and_cost(fake_llm, keys, tmp_path):
    from pairforge.llm.usage import summarize_usage
    from pairforge.prompts.command import prompts_command

    fake_llm.script.append(fake_llm.OPENAI_429)
    cfg = llm_cfg(fake_llm, "openai", llm={"price_per_million_input_tokens": 1.0,
                                           "price_per_million_output_tokens": 4.0})
    info = prompts_command(cfg, 6, tmp_path / "p.txt")
    u = info["llm_usage"]
    assert u["requests"] == len(fake_llm.requests) and u["input_tokens"] == 10 * (u["requests"] - 1)
    assert u["cost_usd"] == pytest.approx(u["input_tokens"] * 1e-6 + u["output_tokens"] * 4e-6)
    logged = summarize_usage(LocalStorage(tmp_path / "p.txt.cache"), "prompts")
    assert (logged["requests"], logged["retries"], logged["failed_requests"]) == (u["requests"], 1, 1)
