"""SDXL backend on a tiny pipeline: CFG with negative prompts and learned tokens in both encoders."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from pairforge.synthesis.backend import DiffusionBackend, GenRequest, compose_prompts
from pairforge.synthesis.config import GenerationConfig, ModelConfig
from pairforge.synthesis.embeddings import TokenFileError
from pairforge.synthesis.tiny import SDXL_TINY_CLIP_G, SDXL_TINY_CLIP_L

GEN = dict(steps=2, sizes=[[32, 32]], guidance_scale=5.0)


def emb_file(path, n: int, seed: int, dims=(SDXL_TINY_CLIP_L, SDXL_TINY_CLIP_G)) -> str:
    g = torch.Generator().manual_seed(seed)
    save_file({"clip_l": torch.randn(n, dims[0], generator=g), "clip_g": torch.randn(n, dims[1], generator=g)},
              str(path))
    return str(path)


def sdxl(path, pos=None, neg=None, **gen) -> DiffusionBackend:
    model = ModelConfig(family="sdxl", id=path, positive_embedding=pos, negative_embedding=neg)
    b = DiffusionBackend(model, GenerationConfig(**{**GEN, **gen}), device="cpu")
    b.load()
    return b


def test_negative_prompt_and_seed_per_sample(tiny_sdxl_dir):
    b = sdxl(tiny_sdxl_dir)
    r = [GenRequest("a barn", "blurry", 5, 32, 32), GenRequest("a barn", "cartoon", 5, 32, 32),
         GenRequest("a barn", "blurry", 6, 32, 32)]
    a, c, d = b.generate(r)
    assert np.abs(a - c).max() > 1e-3 and np.abs(a - d).max() > 1e-3
    assert np.array_equal(b.generate([r[0]])[0], a)
    info = b.sample_info(r[0])
    assert info["family"] == "sdxl" and info["guidance_scale"] == 5.0 and info["negative_prompt_used"]
    assert info["scheduler"] == "EulerDiscreteScheduler" and info["size"] == [32, 32]


def test_learned_tokens_load_into_both_encoders_and_change_output(tiny_sdxl_dir, tmp_path):
    pos1 = {"path": emb_file(tmp_path / "pos1.safetensors", 3, seed=1), "token": "<pos>"}
    pos2 = {"path": emb_file(tmp_path / "pos2.safetensors", 3, seed=2), "token": "<pos>"}
    neg = {"path": emb_file(tmp_path / "neg.safetensors", 2, seed=3), "token": "<neg>"}
    b1 = sdxl(tiny_sdxl_dir, pos=pos1, neg=neg, prompt_template="A {pos} image. {prompt}",
              negative_prompt="{neg}, low quality")
    pipe = b1.pipe
    for enc, tok, key in ((pipe.text_encoder, pipe.tokenizer, "clip_l"), (pipe.text_encoder_2, pipe.tokenizer_2, "clip_g")):
        ids = tok.convert_tokens_to_ids(["<pos>", "<pos>_1", "<pos>_2", "<neg>", "<neg>_1"])
        assert tok.unk_token_id not in ids
        from safetensors.torch import load_file

        want = load_file(pos1["path"])[key]
        got = enc.get_input_embeddings().weight[ids[:3]].detach()
        assert torch.allclose(got, want)
    info = b1.info["learned_tokens"]
    assert info["positive"]["encoders"]["text_encoder"]["vectors"] == 3
    assert info["positive"]["encoders"]["text_encoder_2"]["dim"] == SDXL_TINY_CLIP_G
    text, negative = compose_prompts("a barn", b1.gen, b1.tokens)
    assert text == "A <pos> image. a barn" and negative == "<neg>, low quality"
    r = GenRequest(text, negative, 9, 32, 32)
    b2 = sdxl(tiny_sdxl_dir, pos=pos2, neg=neg, prompt_template="A {pos} image. {prompt}",
              negative_prompt="{neg}, low quality")
    assert np.abs(b1.generate([r])[0] - b2.generate([r])[0]).max() > 1e-4


def test_embedding_of_wrong_width_is_refused(tiny_sdxl_dir, tmp_path):
    bad = {"path": emb_file(tmp_path / "bad.safetensors", 1, 0, dims=(SDXL_TINY_CLIP_G, SDXL_TINY_CLIP_L)),
           "token": "<pos>"}
    with pytest.raises(TokenFileError, match="embeds in"):
        sdxl(tiny_sdxl_dir, pos=bad, prompt_template="{pos} {prompt}")
    only_l = tmp_path / "l.safetensors"
    save_file({"clip_l": torch.zeros(1, SDXL_TINY_CLIP_L)}, str(only_l))
    with pytest.raises(TokenFileError, match="no clip_g tensor"):
        sdxl(tiny_sdxl_dir, pos={"path": str(only_l), "token": "<pos>"}, prompt_template="{pos} {prompt}")
