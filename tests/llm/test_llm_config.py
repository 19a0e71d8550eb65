"""One LLM vocabulary for prompts and the judge; both old spellings keep loading with a warning that
names the new one; a run directory whose run.json was written with the old spelling still resumes."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from pairforge.config import config_to_dict, parse_config
from pairforge.filters.config import JudgeFilterConfig
from pairforge.llm import ConfigDeprecationWarning, LLMConfig
from pairforge.llm.errors import parse_retry_after
from pairforge.llm.secrets import redact
from pairforge.prompts.config import LLMPromptsConfig

OLD_RUN_CONFIG = Path(__file__).parent / "data" / "run_config_before_provider_rename.json"


def test_prompts_old_backend_key_migrates_with_a_warning_naming_provider():
    with pytest.warns(ConfigDeprecationWarning, match="provider: transformers"):
        c = LLMConfig.model_validate({"backend": "transformers", "model": "/m"})
    assert c.provider == "transformers"
    with pytest.raises(ValidationError, match="give provider"):
        LLMConfig.model_validate({"backend": "gemini", "provider": "gemini", "model": "m"})


def test_judge_old_layout_migrates_every_key():
    old = {"backend": {"type": "local", "model": "/m", "max_new_tokens": 64, "generate_batch_size": 2,
                       "local_files_only": True},
           "max_attempts": 3, "backoff_initial_s": 0.5, "backoff_max_s": 4, "timeout_s": 9, "retry_malformed": False,
           "max_concurrency": 2, "price_per_million_input_tokens": 1.5}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = JudgeFilterConfig.model_validate(old)
    said = " | ".join(str(x.message) for x in w)
    assert "judge.llm: {provider: transformers" in said and "judge.llm.retry.max_attempts" in said
    assert (c.llm.provider, c.llm.model, c.llm.max_output_tokens, c.llm.generate_batch_size) == ("transformers", "/m", 64, 2)
    r = c.llm.retry
    assert (r.max_attempts, r.initial_wait_s, r.max_wait_s, r.timeout_s, r.retry_malformed) == (3, 0.5, 4, 9, False)
    assert c.llm.concurrency == 2 and c.llm.price_per_million_input_tokens == 1.5
    # the judge's own defaults where nothing is said: deterministic, its old retry budget
    new = JudgeFilterConfig.model_validate({"llm": {"provider": "gemini"}})
    assert (new.llm.model, new.llm.temperature, new.llm.retry.max_attempts, new.llm.retry.timeout_s) == (
        "gemini-2.5-flash", 0.0, 5, 60.0)
    assert new == JudgeFilterConfig.model_validate(new.model_dump())  # a dump re-reads to itself


def test_judge_old_openai_default_key_variable_stays_optional_and_downloads_are_refused():
    with pytest.warns(ConfigDeprecationWarning):
        c = JudgeFilterConfig.model_validate({"backend": {"type": "openai", "model": "m", "base_url": "http://h/v1",
                                                          "api_key_env": "OPENAI_API_KEY"}})
    assert c.llm.api_key_env is None  # the old default meant "a key if set": none is required
    with pytest.raises(ValidationError, match="models pull"):
        JudgeFilterConfig.model_validate({"backend": {"type": "local", "model": "m", "local_files_only": False}})
    with pytest.raises(ValidationError, match="not both"):
        JudgeFilterConfig.model_validate({"backend": {"type": "gemini"}, "llm": {"provider": "gemini"}})


def test_old_and_new_spellings_parse_to_the_same_run_config():
    stored = json.loads(OLD_RUN_CONFIG.read_text())
    with pytest.warns(ConfigDeprecationWarning):
        old = parse_config(stored)
    new = config_to_dict(old)
    assert new["source"]["prompts"]["llm"]["provider"] == "openai"
    assert new["filters"][0]["llm"]["retry"]["max_attempts"] == 3 and new["filters"][0]["llm"]["concurrency"] == 2
    assert new["filters"][1]["judge"]["llm"]["provider"] == "transformers"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigDeprecationWarning)  # the new spelling warns about nothing
        assert config_to_dict(parse_config(new)) == new


def test_resume_of_a_run_whose_run_json_has_the_old_spelling(tmp_path):
    from pairforge.io.storage import LocalStorage
    from pairforge.pipeline import ledger

    stored = json.loads(OLD_RUN_CONFIG.read_text())
    storage = LocalStorage(tmp_path)
    storage.write_bytes("run.json", json.dumps({"pairforge_run": 1, "config": stored, "plan": {}}).encode())
    with pytest.warns(ConfigDeprecationWarning):
        current = config_to_dict(parse_config(stored))
    info = ledger.start_run(storage, current, {})  # no ResumeConflict
    assert len(info["resumes"]) == 1
    changed = json.loads(json.dumps(current))
    changed["filters"][0]["llm"]["model"] = "another-model"
    with pytest.raises(ledger.ResumeConflict, match="another-model"):
        ledger.start_run(storage, changed, {})


def test_prompt_bank_fingerprint_is_unchanged_by_the_rename():
    """A bank built before the rename (fingerprint recorded by that version) still matches."""
    from pairforge.prompts.bank import fingerprint

    data = {"kind": "llm", "llm": {"provider": "openai", "model": "qwen3-32b", "base_url": "http://127.0.0.1:9/v1",
                                   "concurrency": 2, "price_per_million_input_tokens": 3.0},
            "per_request": 5,
            "privacy": {"llm_check": {"provider": "gemini", "model": "gemini-2.5-flash", "temperature": 0.0}}}
    assert fingerprint(LLMPromptsConfig.model_validate(data), 3) == "891d86694b6b8e4e57bd5042"


def test_retry_after_header_forms():
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0) == 5.0
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


def test_redactor_scrubs_keys_found_in_the_environment(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-env-key-123456")
    assert redact("server said: bad key AIza-env-key-123456") == "server said: bad key ***"
    assert redact("token sk-given-0000", ["sk-given-0000"]) == "token ***"


def test_models_pull_lists_local_judges_and_llms():
    from pairforge.synthesis.models import required_models

    cfg = parse_config({"filters": [
        {"kind": "judge", "llm": {"provider": "transformers", "model": "Qwen/Qwen2.5-VL-3B-Instruct",
                                  "revision": "abc123", "cache_dir": "/cache"}},
        {"kind": "privacy", "judge": {"llm": {"provider": "transformers", "model": "acme/vlm"}}},
        {"kind": "judge", "name": "remote", "llm": {"provider": "gemini"}},
    ]})
    reqs = [(r.what, r.id, r.revision, r.used_by) for r in required_models(cfg)]
    assert reqs == [("transformers", "Qwen/Qwen2.5-VL-3B-Instruct", "abc123", "filters[0].llm"),
                    ("transformers", "acme/vlm", None, "filters[1].judge.llm")]
