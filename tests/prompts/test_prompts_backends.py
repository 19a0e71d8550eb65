"""Reply validation, timeouts, and the local transformers backend on a tiny random model."""
from __future__ import annotations

import pytest

from pairforge.llm import LLMConfig, Request, RetryableLLMError, make_client
from pairforge.llm.replies import parse_json_reply as parse_reply
from pairforge.prompts.instructions import ScenePromptBatch


def call_with_retry(client, system, user, schema, seed=None):
    return client.call(Request(user, system, schema=schema, seed=seed)).unwrap()


def test_parse_reply_accepts_wrapped_json_and_rejects_wrong_shapes():
    fenced = 'Here you go:\n```json\n{"prompts": ["a barn at dawn"]}\n```'
    assert parse_reply(fenced, ScenePromptBatch).prompts == ["a barn at dawn"]
    for bad in ("", "no json here", '{"prompts": []}', '{"prompts": ["x"], "extra": 1}', '{"scenes": ["x"]}'):
        with pytest.raises(RetryableLLMError):
            parse_reply(bad, ScenePromptBatch)


def test_timeout_is_retried(fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-timeout-key")
    fake_llm.delays = [2.0]
    cfg = LLMConfig(provider="openai", model="m", base_url=fake_llm.url + "/v1",
                    retry={"max_attempts": 3, "initial_wait_s": 0.01, "timeout_s": 0.5})
    reply = call_with_retry(make_client(cfg), "s", "Write 2 different scenes on the theme: z.\n", ScenePromptBatch)
    assert len(reply.prompts) == 2 and len(fake_llm.requests) == 2


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    """A random 1-layer GPT-2 with a character tokenizer, saved like a hub checkpoint."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from pairforge.synthesis.tiny import tiny_clip_tokenizer

    tok = tiny_clip_tokenizer()
    tok.model_max_length = 8192
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(tok), n_positions=8192,
                                       bos_token_id=0, eos_token_id=1)).eval()
    out = tmp_path_factory.mktemp("tiny-lm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def test_local_transformers_backend_runs_and_validates(tiny_causal_lm):
    cfg = LLMConfig(provider="transformers", model=tiny_causal_lm, device="cpu", dtype="float32",
                    max_output_tokens=16, retry={"max_attempts": 2, "initial_wait_s": 0.0})
    client = make_client(cfg)
    # a random model cannot write valid JSON: the reply is generated, decoded, validated and refused
    with pytest.raises(RetryableLLMError, match="schema|empty"):
        call_with_retry(client, "write scenes", "Write 2 different scenes on the theme: z.\n", ScenePromptBatch,
                        seed=3)
    assert client._model is not None  # loaded once, from the local directory


def test_local_backend_missing_model_is_permanent(tmp_path):
    from pairforge.llm import PermanentLLMError

    cfg = LLMConfig(provider="transformers", model="acme/not-pulled", cache_dir=str(tmp_path),
                    retry={"max_attempts": 3, "initial_wait_s": 0.0})
    with pytest.raises(PermanentLLMError, match="models pull") as ei:
        call_with_retry(make_client(cfg), "s", "u", ScenePromptBatch)
    assert ei.value.kind == "model_load"
