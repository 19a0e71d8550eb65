"""A local transformers VLM (Qwen2-VL / Qwen2.5-VL class) as the judge, batched on GPU or CPU.

Loaded with ``AutoModelForImageTextToText`` + ``AutoProcessor`` (transformers 5; AutoModelForVision2Seq
is gone) from a local directory or the local hub cache only. Greedy decoding, left padding. The reply
is parsed and validated like any remote reply; a model that does not answer in the schema produces
judge errors (handled by the failure policy), never passes. ``generate_kwargs`` lets library callers
add constrained decoding (a logits processor, ``prefix_allowed_tokens_fn``).
"""
from __future__ import annotations

from pairforge.filters.config import LocalVLMBackendConfig
from pairforge.filters.judge.base import EncodedImage, JudgeBackend, Reply


class LocalVLMBackend(JudgeBackend):
    name = "local"
    batched = True

    def __init__(self, config: LocalVLMBackendConfig, device: str = "cpu", generate_kwargs: dict | None = None):
        super().__init__()
        self.config = config
        self.device = device
        self.generate_kwargs = dict(generate_kwargs or {})
        self._model = None
        self._processor = None

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_model"] = None
        d["_processor"] = None
        return d

    def _dtype(self):
        import torch

        if self.config.dtype == "auto":
            return torch.bfloat16 if str(self.device).startswith("cuda") else torch.float32
        return getattr(torch, self.config.dtype)

    def setup(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        try:
            self._processor = AutoProcessor.from_pretrained(self.config.model, local_files_only=self.config.local_files_only)
            model = AutoModelForImageTextToText.from_pretrained(
                self.config.model, dtype=self._dtype(), local_files_only=self.config.local_files_only
            )
        except OSError as e:
            raise RuntimeError(
                f"could not load the local judge model {self.config.model!r} ({e}); weights must be present "
                "offline (see `pairforge models pull`)"
            ) from e
        self._model = model.to(self.device).eval()
        tok = getattr(self._processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token

    def ask_batch(self, images: list[EncodedImage], instructions: str) -> list[Reply]:
        import torch
        from PIL import Image

        if self._model is None:
            self.setup()
        proc = self._processor
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instructions}]}]
        prompt = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        pil = [Image.fromarray(im.array) for im in images]
        inputs = proc(text=[prompt] * len(pil), images=pil, return_tensors="pt", padding=True).to(self.device)
        kwargs = {"max_new_tokens": self.config.max_new_tokens, "do_sample": False, **self.generate_kwargs}
        with torch.inference_mode():
            out = self._model.generate(**inputs, **kwargs)
        n_in = inputs["input_ids"].shape[1]
        new = out[:, n_in:]
        texts = proc.batch_decode(new, skip_special_tokens=True)
        stop = {t for t in (self._model.generation_config.eos_token_id, self._model.generation_config.pad_token_id) if t is not None}
        stop = {s for t in stop for s in (t if isinstance(t, list) else [t])}
        replies = []
        for i, text in enumerate(texts):
            ids = new[i].tolist()
            n_out = next((k + 1 for k, t in enumerate(ids) if t in stop), len(ids))
            replies.append(Reply(text, int(inputs["attention_mask"][i].sum()), n_out))
        return replies

    def classify_error(self, exc: BaseException) -> tuple[str, bool]:
        name = type(exc).__name__
        if "OutOfMemory" in name:
            return "out_of_memory", False
        return "error", False
