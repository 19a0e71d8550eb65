"""`pairforge learn-tokens` on a tiny SDXL: textual inversion of a positive and a negative token pair,
loadable by the synthesis config, resumable on the same trajectory."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from pairforge.sources.bundled import load_bundled_photo
from pairforge.synthesis.backend import DiffusionBackend
from pairforge.synthesis.config import GenerationConfig, ModelConfig
from pairforge.synthesis.learn_tokens import LearnTokensError, LearnTokensOptions, learn_tokens
from pairforge.synthesis.tiny import SDXL_TINY_CLIP_G, SDXL_TINY_CLIP_L


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """Sharp photos as the high-quality set, blurred low-resolution copies as the low-quality set."""
    root = tmp_path_factory.mktemp("tokimg")
    hq, lq = root / "hq", root / "lq"
    hq.mkdir()
    lq.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        img = Image.fromarray(load_bundled_photo(name)).resize((96, 80), Image.BICUBIC)
        img.save(hq / f"{name}.png")
        img.resize((24, 20), Image.BILINEAR).save(lq / f"{name}.jpg", quality=20)
    return hq, lq


def opts(model, hq, lq, out, **kw) -> LearnTokensOptions:
    base = dict(model=str(model), positive=[str(hq)], negative=[str(lq)], out=str(out), steps=4, vectors=2,
                resolution=32, save_every=2, lr=0.05, device="cpu", init_positive="sharp", init_negative="blurry")
    return LearnTokensOptions(**{**base, **kw})


def test_learns_both_tokens_in_both_encoders_and_synthesis_loads_them(tiny_sdxl_dir, image_folders, tmp_path):
    hq, lq = image_folders
    result = learn_tokens(opts(tiny_sdxl_dir, hq, lq, tmp_path / "t"), log=lambda _m: None)
    pos = load_file(result["files"]["positive"]["path"])
    neg = load_file(result["files"]["negative"]["path"])
    assert pos["clip_l"].shape == (2, SDXL_TINY_CLIP_L) and pos["clip_g"].shape == (2, SDXL_TINY_CLIP_G)
    assert neg["clip_l"].shape == (2, SDXL_TINY_CLIP_L) and neg["clip_g"].shape == (2, SDXL_TINY_CLIP_G)
    assert not torch.allclose(pos["clip_l"], neg["clip_l"])  # different init words, different images
    # the vectors moved away from their init words' embeddings
    base = DiffusionBackend(ModelConfig(family="sdxl", id=tiny_sdxl_dir), GenerationConfig(steps=1, sizes=[[32, 32]]),
                            device="cpu")
    base.load()
    tok = base.pipe.tokenizer
    init = base.pipe.text_encoder.get_input_embeddings().weight[tok("sharp", add_special_tokens=False).input_ids[:2]]
    assert (pos["clip_l"] - init.detach()).abs().max() > 1e-3
    assert json.loads((tmp_path / "t" / "tokens.json").read_text())["steps"] == 4

    model = ModelConfig(family="sdxl", id=tiny_sdxl_dir,
                        positive_embedding={"path": result["files"]["positive"]["path"], "token": "<pos>"},
                        negative_embedding={"path": result["files"]["negative"]["path"], "token": "<neg>"})
    b = DiffusionBackend(model, GenerationConfig(steps=1, sizes=[[32, 32]], prompt_template="{pos} {prompt}",
                                                 negative_prompt="{neg}"), device="cpu")
    b.load()
    ids = b.pipe.tokenizer_2.convert_tokens_to_ids(["<pos>", "<pos>_1"])
    got = b.pipe.text_encoder_2.get_input_embeddings().weight[ids].detach()
    assert torch.allclose(got, pos["clip_g"])


def test_resumed_run_follows_the_uninterrupted_trajectory(tiny_sdxl_dir, image_folders, tmp_path):
    hq, lq = image_folders
    straight = learn_tokens(opts(tiny_sdxl_dir, hq, lq, tmp_path / "a"), log=lambda _m: None)
    learn_tokens(opts(tiny_sdxl_dir, hq, lq, tmp_path / "b", steps=2), log=lambda _m: None)
    said = []
    resumed = learn_tokens(opts(tiny_sdxl_dir, hq, lq, tmp_path / "b"), log=said.append)
    assert any("resuming at step 2" in m for m in said)
    for role in ("positive", "negative"):
        a, b = load_file(straight["files"][role]["path"]), load_file(resumed["files"][role]["path"])
        for k in ("clip_l", "clip_g"):
            assert torch.equal(a[k], b[k]), (role, k)
    with pytest.raises(LearnTokensError, match="different lr"):
        learn_tokens(opts(tiny_sdxl_dir, hq, lq, tmp_path / "b", lr=0.1), log=lambda _m: None)


def test_cli_learns_from_a_pairforge_dataset_and_reports_bad_inputs(tiny_sdxl_dir, image_folders, tmp_path):
    hq, _lq = image_folders
    data = tmp_path / "pairs"
    cli = [sys.executable, "-m", "pairforge.cli"]
    r = subprocess.run(cli + ["degrade", str(hq), str(data), "--preset", "realesrgan"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "tok"
    r = subprocess.run(cli + ["learn-tokens", "--model", tiny_sdxl_dir, "--positive", str(hq), "--negative", str(data),
                              "--out", str(out), "--steps", "2", "--vectors", "1", "--resolution", "32",
                              "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "positive_embedding" in r.stdout and (out / "negative.safetensors").is_file()
    r = subprocess.run(cli + ["learn-tokens", "--model", tiny_sdxl_dir, "--positive", str(tmp_path / "nope"),
                              "--negative", str(data), "--out", str(tmp_path / "x")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--positive" in r.stderr and "nope" in r.stderr
