"""Any OpenAI-compatible chat server (OpenAI, vLLM, SGLang, llama.cpp server, ...).

vLLM >= 0.12 silently ignores the old ``guided_json`` parameters (HTTP 200, unconstrained text), so the
schema is sent the supported way and every reply is validated again here.
"""
from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from pairforge.prompts.config import LLMConfig
from pairforge.prompts.llm.base import LLMClient, PermanentLLMError, RetryableLLMError, is_transport_error, \
    json_schema_for, parse_reply, status_error
from pairforge.prompts.secrets import redact, resolve_api_key

T = TypeVar("T", bound=BaseModel)


class OpenAICompatClient(LLMClient):
    def __init__(self, config: LLMConfig):
        super().__init__(config)
        import openai

        # a local vLLM server usually needs no key: only an explicitly named variable is required
        key = resolve_api_key("openai", config.api_key_env,
                              required=config.api_key_env is not None or config.base_url is None)
        self._secrets = (key,) if key else ()
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=key or "EMPTY",
            max_retries=0,  # one retry policy: ours (call_with_retry)
            timeout=config.retry.timeout_s,
        )

    def complete(self, system: str, user: str, schema: type[T], seed: int | None = None) -> T:
        import openai

        js = json_schema_for(schema)
        kwargs: dict = {}
        if self.config.structured_output == "response_format":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": js, "strict": True},
            }
        else:
            kwargs["extra_body"] = {"structured_outputs": {"json": js}}
        try:
            resp = self._client.chat.completions.create(
                model=self.config.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                temperature=self.config.temperature,
                max_tokens=self.config.max_output_tokens,
                seed=seed,
                **kwargs,
            )
        except openai.APIStatusError as e:
            raise status_error(e.status_code, e.message, self._secrets) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as e:
            raise RetryableLLMError(redact(f"{type(e).__name__}: {e}", self._secrets)) from None
        except Exception as e:  # noqa: BLE001
            if is_transport_error(e):
                raise RetryableLLMError(redact(f"{type(e).__name__}: {e}", self._secrets)) from None
            raise PermanentLLMError(redact(f"{type(e).__name__}: {e}", self._secrets)) from None
        if not resp.choices:
            raise RetryableLLMError("reply has no choices")
        choice = resp.choices[0]
        if getattr(choice.message, "refusal", None):
            raise PermanentLLMError(redact(f"model refused: {choice.message.refusal}", self._secrets))
        return parse_reply(choice.message.content, schema)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001
            pass
