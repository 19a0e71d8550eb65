"""A local model through transformers (no server, no key): text LLMs for prompts, VLMs for the judge.

Weights are resolved offline only (:func:`pairforge.synthesis.models.resolve_model_dir`: a local
directory, or a hub id with ``revision`` in ``cache_dir`` as left by ``pairforge models pull --cache DIR``).
Requests with images load ``AutoProcessor`` + ``AutoModelForImageTextToText`` (Qwen2-VL class); text-only
requests ``AutoTokenizer`` + ``AutoModelForCausalLM``. Requests are generated in batches (left padding);
the first attempt decodes greedily at temperature 0, a retry samples (seeded), since greedy decoding
would repeat the same malformed reply. Structured decoding is not enforced: replies are validated like
any other. ``generate_kwargs`` lets library callers add constrained decoding (a logits processor).
"""
from __future__ import annotations

import json
import threading

from pairforge.devices import resolve_device
from pairforge.errors import ModelLoadError
from pairforge.llm.client import LLMClient, Reply, Request
from pairforge.llm.errors import PermanentLLMError


class TransformersClient(LLMClient):
    """Loads the model once per process; generation is serialised (one model, one device)."""

    batched = True

    def __init__(self, config, device: str | None = None, generate_kwargs: dict | None = None, **kw):
        super().__init__(config, **kw)
        self.device_request = device or config.device
        self.generate_kwargs = dict(generate_kwargs or {})
        self._lock = threading.Lock()
        self._model = None
        self._proc = None  # a processor (VLM) or a tokenizer (text LLM)
        self._vision: bool | None = None
        self.device: str | None = None

    def _transient(self) -> tuple[str, ...]:
        return ("_model", "_proc", "_lock")

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def load(self, vision: bool) -> None:
        """Load weights now (stage setup); raises :class:`ModelLoadError` naming the model and the fix."""
        with self._lock:
            self._load(vision)

    def _load(self, vision: bool) -> None:
        if self._model is not None:
            return
        import torch

        from pairforge.synthesis.models import MissingModelError, resolve_model_dir

        c = self.config
        try:
            path, _rev = resolve_model_dir(c.model, c.revision, c.cache_dir)
            device = resolve_device(self.device_request)
            dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(
                c.dtype, torch.bfloat16 if device.startswith("cuda") else torch.float32)
            if vision:
                from transformers import AutoModelForImageTextToText, AutoProcessor

                proc = AutoProcessor.from_pretrained(path, local_files_only=True)
                model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, local_files_only=True)
                tok = getattr(proc, "tokenizer", None)
            else:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                proc = tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
        except MissingModelError as e:
            raise ModelLoadError(f"cannot load the local model {c.model!r}: {e}") from None
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot load the local model {c.model!r} ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0][:300]}); weights must be present offline: "
                                 "`pairforge models pull CONFIG --cache DIR`, then llm.cache_dir: DIR") from None
        if tok is not None:
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
        self._model, self._proc, self._vision, self.device = model.to(device).eval(), proc, vision, device

    def _text(self, r: Request) -> str:
        proc = self._proc
        if self._vision:
            content = [{"type": "image"} for _ in r.images] + [{"type": "text", "text": r.user}]
            msgs = ([{"role": "system", "content": r.system}] if r.system else []) + [{"role": "user", "content": content}]
            return proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        user = r.user
        if r.schema is not None:
            user += f"\n\nAnswer with JSON only, matching this schema:\n{json.dumps(r.schema.model_json_schema())}"
        if getattr(proc, "chat_template", None):
            msgs = ([{"role": "system", "content": r.system}] if r.system else []) + [{"role": "user", "content": user}]
            return proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return f"{r.system or ''}\n\n{user}\n\nJSON:\n"

    def send_batch(self, requests: list[Request]) -> list[Reply]:
        import torch

        vision = any(r.images for r in requests)
        with self._lock:
            if self._model is None:
                try:
                    self._load(vision)
                except ModelLoadError as e:  # a missing model is not going to appear by retrying
                    raise PermanentLLMError(str(e), kind="model_load") from None
            texts = [self._text(r) for r in requests]
            if self._vision:
                from PIL import Image

                images = [Image.fromarray(im.array) for r in requests for im in r.images]
                enc = self._proc(text=texts, images=images or None, return_tensors="pt", padding=True)
            else:
                enc = self._proc(texts, return_tensors="pt", padding=True)
            enc = enc.to(self.device)
            attempt = max(r.attempt for r in requests)
            sample = self.config.temperature > 0 or attempt > 1
            kwargs = {"max_new_tokens": self.config.max_output_tokens, "do_sample": sample}
            if sample:
                kwargs["temperature"] = self.config.temperature or 1.0
            tok = getattr(self._proc, "tokenizer", self._proc)
            if tok.pad_token_id is not None:
                kwargs["pad_token_id"] = tok.pad_token_id
            kwargs.update(self.generate_kwargs)
            seed = (requests[0].seed or 0) + 1_000_003 * (attempt - 1)
            devices = [torch.device(self.device)] if str(self.device).startswith("cuda") else []
            try:
                # seed this request's sampling without disturbing anyone else's global RNG
                with torch.random.fork_rng(devices=devices), torch.inference_mode():
                    torch.manual_seed(int(seed) % (2**63))
                    out = self._model.generate(**enc, **kwargs)
            except torch.OutOfMemoryError as e:
                raise PermanentLLMError(f"out of memory generating {len(requests)} replies: "
                                        f"{str(e).splitlines()[0][:200]}", kind="out_of_memory") from None
            n_in = enc["input_ids"].shape[1]
            new = out[:, n_in:]
            gc = self._model.generation_config
            stop = {t for t in (gc.eos_token_id, gc.pad_token_id, tok.eos_token_id) if t is not None}
            stop = {s for t in stop for s in (t if isinstance(t, list) else [t])}
            replies = []
            for i in range(len(requests)):
                ids = new[i].tolist()
                n_out = next((k + 1 for k, t in enumerate(ids) if t in stop), len(ids))
                text = tok.decode(ids[:n_out], skip_special_tokens=True)
                replies.append(Reply(text, int(enc["attention_mask"][i].sum()), n_out))
        return replies

    def close(self) -> None:
        self._model = None
        self._proc = None
        super().close()
