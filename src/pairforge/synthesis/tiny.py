"""Tiny, randomly initialised Flux and SDXL pipelines built entirely in code (no hub, no download).

They exercise the real diffusers code paths (``save_pretrained`` -> ``from_pretrained`` -> denoising loop ->
VAE decode) in seconds on a CPU, so offline smoke tests and CI can run a whole synthesis pipeline. The
images are noise-like, not photographs.

    python -m pairforge.synthesis.tiny --family flux --out /tmp/tiny-flux
    python -m pairforge.synthesis.tiny --family sdxl --out /tmp/tiny-sdxl
"""
from __future__ import annotations

import argparse
import string
from pathlib import Path

#: hidden sizes of the two tiny SDXL text encoders (different on purpose, like clip_l 768 / clip_g 1280,
#: so that an embedding loaded into the wrong encoder fails loudly)
SDXL_TINY_CLIP_L = 32
SDXL_TINY_CLIP_G = 48
FLUX_TINY_CLIP = 32

_CHARS = string.ascii_lowercase + string.digits + ",.!?'-:;()/&"


def tiny_clip_tokenizer():
    """A character-level CLIP BPE tokenizer (no merges): every lowercase word becomes its letters."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in _CHARS:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_t5_tokenizer():
    """A character-level T5 (Unigram) tokenizer."""
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(ch, -3.0) for ch in _CHARS]
    pieces += [("▁" + ch, -3.5) for ch in _CHARS]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=512)


def _clip_config(hidden: int, vocab_size: int, projection_dim: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=hidden,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        hidden_act="gelu",
        projection_dim=projection_dim,
        max_position_embeddings=77,
    )


def build_tiny_flux(guidance_embeds: bool = True, seed: int = 0):
    """A FluxPipeline with ~100k random parameters (``guidance_embeds=False`` imitates schnell)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tok = tiny_clip_tokenizer()
    tok2 = tiny_t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=FLUX_TINY_CLIP,
        axes_dims_rope=[4, 4, 8],
        guidance_embeds=guidance_embeds,
    )
    text_encoder = CLIPTextModel(_clip_config(FLUX_TINY_CLIP, len(tok) + 8))
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=max(256, len(tok2) + 8),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            decoder_start_token_id=0,
        )
    )
    vae = AutoencoderKL(
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        sample_size=32,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tok,
        text_encoder_2=t5.eval(),
        tokenizer_2=tok2,
        transformer=transformer.eval(),
    )
    return pipe


def build_tiny_sdxl(seed: int = 0):
    """A StableDiffusionXLPipeline with a tiny UNet and two text encoders of different widths."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tok = tiny_clip_tokenizer()
    tok2 = tiny_clip_tokenizer()
    proj = 32
    time_dim = 8
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * time_dim + proj,
        cross_attention_dim=SDXL_TINY_CLIP_L + SDXL_TINY_CLIP_G,
        norm_num_groups=1,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=1,
        sample_size=64,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    te = CLIPTextModel(_clip_config(SDXL_TINY_CLIP_L, len(tok) + 8))
    te2 = CLIPTextModelWithProjection(_clip_config(SDXL_TINY_CLIP_G, len(tok2) + 8, projection_dim=proj))
    return StableDiffusionXLPipeline(
        vae=vae.eval(),
        text_encoder=te.eval(),
        text_encoder_2=te2.eval(),
        tokenizer=tok,
        tokenizer_2=tok2,
        unet=unet.eval(),
        scheduler=scheduler,
    )


def save_tiny(family: str, out: str | Path, seed: int = 0) -> Path:
    """Build a tiny pipeline of ``family`` (flux, flux-schnell, sdxl) and save it in diffusers layout."""
    if family == "flux":
        pipe = build_tiny_flux(guidance_embeds=True, seed=seed)
    elif family == "flux-schnell":
        pipe = build_tiny_flux(guidance_embeds=False, seed=seed)
    elif family == "sdxl":
        pipe = build_tiny_sdxl(seed=seed)
    else:
        raise ValueError(f"unknown family {family!r}; allowed: flux, flux-schnell, sdxl")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write a tiny random diffusers pipeline for offline smoke tests.")
    p.add_argument("--family", default="flux", choices=["flux", "flux-schnell", "sdxl"])
    p.add_argument("--out", required=True, help="directory to write the pipeline to")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    path = save_tiny(a.family, a.out, seed=a.seed)
    print(path)


if __name__ == "__main__":
    main()
