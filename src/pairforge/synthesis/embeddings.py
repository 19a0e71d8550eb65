"""Learned prompt tokens (textual inversion) for the dual-prompt scheme of GenIR: M positive and N negative
tokens, loaded into every CLIP text encoder of the pipeline (SDXL: both; Flux: its CLIP, T5 untouched)."""
from __future__ import annotations

from pathlib import Path

from pairforge.errors import UserError
from pairforge.synthesis.config import LearnedTokensConfig
from pairforge.synthesis.models import MissingModelError


class TokenFileError(UserError):
    """A learned-token file that does not fit the pipeline (a missing encoder's tensor, a wrong width)."""

#: file keys accepted for each encoder (the common SDXL embedding layout and diffusers' component names)
ENCODER_KEYS = {
    "text_encoder": ("clip_l", "text_encoder"),
    "text_encoder_2": ("clip_g", "text_encoder_2"),
}


def load_embedding_file(path: str) -> dict:
    """A dict of tensors from a .safetensors or .pt file (pickles are refused: weights_only)."""
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingModelError(f"learned-token embedding file {path!r} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    obj = torch.load(str(p), map_location="cpu", weights_only=True)
    if isinstance(obj, torch.Tensor):
        return {"clip_l": obj}
    if not isinstance(obj, dict):
        raise TokenFileError(f"{path}: expected a tensor or a dict of tensors, got {type(obj).__name__}")
    return obj


def load_learned_tokens(pipe, cfg: LearnedTokensConfig, family: str) -> dict:
    """Add ``cfg.token`` to each text encoder of ``pipe``; returns provenance (token, vectors, encoders)."""
    import torch

    state = load_embedding_file(cfg.path)
    from pairforge.synthesis.config import diffusion_family

    encoders = diffusion_family(family).text_encoders
    loaded = {}
    for comp in encoders:
        enc = getattr(pipe, comp)
        tok = getattr(pipe, "tokenizer" if comp == "text_encoder" else "tokenizer_2")
        key = next((k for k in ENCODER_KEYS[comp] if k in state), None)
        if key is None:
            raise TokenFileError(
                f"learned-token file {cfg.path} (token {cfg.token}) has no {ENCODER_KEYS[comp][0]} tensor for "
                f"the {family} pipeline's {comp} (found {sorted(state)}); SDXL needs clip_l and clip_g: "
                "learn both with `pairforge learn-tokens`")
        emb = state[key]
        if emb.ndim == 1:
            emb = emb[None]
        dim = enc.get_input_embeddings().weight.shape[1]
        if emb.ndim != 2 or emb.shape[1] != dim:
            raise TokenFileError(f"learned-token file {cfg.path}: {key} has shape {tuple(emb.shape)} but the "
                                 f"pipeline's {comp} embeds in {dim} dims (a file for another model?)")
        pipe.load_textual_inversion(emb.to(torch.float32), token=cfg.token, text_encoder=enc, tokenizer=tok)
        loaded[comp] = {"key": key, "vectors": int(emb.shape[0]), "dim": int(dim)}
    return {"token": cfg.token, "path": str(cfg.path), "encoders": loaded}
