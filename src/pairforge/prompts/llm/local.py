"""A local causal LM through transformers (no server, no key): for air-gapped clusters.

Structured decoding is not enforced here, so the reply is parsed and validated like any other; an
invalid reply is a retryable failure (sampling again usually fixes it).
"""
from __future__ import annotations

import threading
from typing import TypeVar

from pydantic import BaseModel

from pairforge.prompts.config import LLMConfig
from pairforge.prompts.llm.base import LLMClient, PermanentLLMError, json_schema_for, parse_reply

T = TypeVar("T", bound=BaseModel)


class TransformersClient(LLMClient):
    """Loads the model once; requests are serialised (one model, one device)."""

    def __init__(self, config: LLMConfig):
        super().__init__(config)
        self._lock = threading.Lock()
        self._model = None
        self._tok = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from pairforge.synthesis.models import resolve_model_dir

        path, _rev = resolve_model_dir(self.config.model, self.config.revision, self.config.cache_dir)
        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = {"auto": "auto", "bfloat16": torch.bfloat16, "float16": torch.float16,
                 "float32": torch.float32}[self.config.dtype]
        self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True).to(device).eval()
        self._device = device

    def _prompt_text(self, system: str, user: str) -> str:
        tok = self._tok
        if getattr(tok, "chat_template", None):
            msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return f"{system}\n\n{user}\n\nJSON:\n"

    def complete(self, system: str, user: str, schema: type[T], seed: int | None = None) -> T:
        import json

        import torch

        user = f"{user}\n\nAnswer with JSON only, matching this schema:\n{json.dumps(json_schema_for(schema))}"
        with self._lock:
            if self._model is None:
                try:
                    self._load()
                except Exception as e:  # a missing model is not going to appear by retrying
                    raise PermanentLLMError(f"cannot load local LLM {self.config.model!r}: {e}") from None
            text = self._prompt_text(system, user)
            enc = self._tok(text, return_tensors="pt").to(self._device)
            sample = self.config.temperature > 0
            gen_kwargs = {"max_new_tokens": self.config.max_output_tokens, "do_sample": sample}
            if sample:
                gen_kwargs["temperature"] = self.config.temperature
            if self._tok.pad_token_id is None:
                gen_kwargs["pad_token_id"] = self._tok.eos_token_id
            devices = [torch.device(self._device)] if str(self._device).startswith("cuda") else []
            # seed this request's sampling without disturbing anyone else's global RNG
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                if seed is not None:
                    torch.manual_seed(int(seed) % (2**63))
                out = self._model.generate(**enc, **gen_kwargs)
            reply = self._tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return parse_reply(reply, schema)

    def describe(self) -> dict:
        d = super().describe()
        d["revision"] = self.config.revision
        return d

    def close(self) -> None:
        self._model = None
