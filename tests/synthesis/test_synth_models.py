"""Offline model resolution: local dirs, a prepared HF cache, clear errors, and the pull plan."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from pairforge.config import parse_config
from pairforge.synthesis.backend import DiffusionBackend, GenRequest
from pairforge.synthesis.config import GenerationConfig, ModelConfig
from pairforge.synthesis.models import MissingModelError, models_pull, required_models, resolve_model_dir

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_missing_hub_model_names_it_and_the_pull_command(tmp_path):
    with pytest.raises(MissingModelError) as ei:
        resolve_model_dir("black-forest-labs/FLUX.1-dev", None, str(tmp_path))
    msg = str(ei.value)
    assert "black-forest-labs/FLUX.1-dev" in msg and "pairforge models pull CONFIG --cache DIR" in msg
    b = DiffusionBackend(ModelConfig(family="flux", id="black-forest-labs/FLUX.1-dev", cache_dir=str(tmp_path)),
                         GenerationConfig(), device="cpu")
    with pytest.raises(MissingModelError, match="models pull"):
        b.load()
    with pytest.raises(MissingModelError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "nope"))


def test_partial_snapshot_is_a_clear_error(tiny_flux_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_flux_dir, broken)
    shutil.rmtree(broken / "transformer")
    b = DiffusionBackend(ModelConfig(family="flux", id=str(broken)), GenerationConfig(sizes=[[32, 32]]), device="cpu")
    with pytest.raises(MissingModelError, match="models pull"):
        b.load()


def test_hub_id_loads_from_a_prepared_cache_without_network(tiny_flux_dir, tmp_path):
    """The layout `models pull` leaves behind: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = tmp_path / "cache" / "models--acme--tiny-flux"
    shutil.copytree(tiny_flux_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    path, rev = resolve_model_dir("acme/tiny-flux", None, str(tmp_path / "cache"))
    assert rev == COMMIT and path.endswith(COMMIT)
    b = DiffusionBackend(ModelConfig(family="flux", id="acme/tiny-flux", cache_dir=str(tmp_path / "cache")),
                         GenerationConfig(steps=1, sizes=[[32, 32]], max_sequence_length=16), device="cpu")
    b.load()
    assert b.info["revision"] == COMMIT and b.info["model"] == "acme/tiny-flux"
    img = b.generate([GenRequest("", "", 1, 32, 32)])[0]
    assert img.shape == (32, 32, 3) and np.isfinite(img).all()


def test_pull_plan_lists_every_model_a_config_needs(tmp_path):
    cfg = parse_config({
        "source": {"kind": "synthesis", "model": {"family": "sdxl", "id": "stabilityai/stable-diffusion-xl-base-1.0",
                                                  "variant": "fp16", "revision": "main"},
                   "prompts": {"kind": "llm", "llm": {"provider": "transformers", "model": "Qwen/Qwen3-8B"},
                               "privacy": {"llm_check": {"provider": "gemini", "model": "gemini-2.5-flash"}}}},
        "filters": [{"kind": "iqa", "metrics": [{"name": "musiq"}, {"name": "clipiqa+_vitL14_512"}]}],
    })
    reqs = [(r.what, r.id) for r in required_models(cfg)]
    assert reqs == [("diffusers", "stabilityai/stable-diffusion-xl-base-1.0"), ("transformers", "Qwen/Qwen3-8B"),
                    ("pyiqa", "musiq"), ("pyiqa", "clipiqa+_vitL14_512")]
    plan = models_pull(cfg, str(tmp_path / "c"), dry_run=True)
    assert all(p["status"] == "planned" for p in plan) and plan[0]["variant"] == "fp16"
    assert not (tmp_path / "c").exists()  # a dry run touches nothing


def test_pull_of_local_models_needs_nothing(tiny_flux_dir, tmp_path):
    cfg = parse_config({"source": {"kind": "synthesis", "model": {"family": "flux", "id": tiny_flux_dir}}})
    assert models_pull(cfg, str(tmp_path)) == []


def test_pull_fetches_pyiqa_metrics_into_torch_home(tmp_path):
    """piqe has no weights: pulling it must work offline and leave nothing to download."""
    cfg = parse_config({"filters": [{"kind": "iqa", "metrics": [{"name": "piqe"}]}]})
    recs = models_pull(cfg, str(tmp_path))
    assert recs[0]["status"] == "ok" and recs[0]["path"].endswith("torch") and recs[0]["files"] == []


def test_pull_patterns_skip_single_file_checkpoints():
    from huggingface_hub.utils import filter_repo_objects

    from pairforge.synthesis.models import _allow_patterns

    flux = ["flux1-dev.safetensors", "ae.safetensors", "model_index.json", "tokenizer_2/spiece.model",
            "transformer/diffusion_pytorch_model-00001-of-00003.safetensors", "vae/diffusion_pytorch_model.safetensors"]
    allow, ignore = _allow_patterns("diffusers", None)
    assert list(filter_repo_objects(flux, allow_patterns=allow, ignore_patterns=ignore)) == flux[2:]
    sdxl = ["sd_xl_base_1.0.safetensors", "unet/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin", "unet/config.json"]
    allow, ignore = _allow_patterns("diffusers", "fp16")
    assert list(filter_repo_objects(sdxl, allow_patterns=allow, ignore_patterns=ignore)) == sdxl[2:3] + sdxl[4:]
    llm = ["model-00001-of-00002.safetensors", "pytorch_model.bin", "tokenizer.json", "config.json"]
    allow, ignore = _allow_patterns("transformers", None)
    assert list(filter_repo_objects(llm, allow_patterns=allow, ignore_patterns=ignore)) == [llm[0]] + llm[2:]


def test_pull_plan_includes_degradation_networks():
    cfg = parse_config({"degrade": {"kind": "realworld", "depth": {"model": "depth-anything/Depth-Anything-V2-Small-hf"}}})
    reqs = [(r.what, r.id, r.used_by) for r in required_models(cfg)]
    assert ("transformers", "depth-anything/Depth-Anything-V2-Small-hf", "degrade") in reqs
