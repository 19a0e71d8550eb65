"""Flux backend on a tiny pipeline: true CFG, negative prompts, per-sample seeds, output checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pairforge.synthesis.backend import DiffusionBackend, GenRequest, compose_prompts
from pairforge.synthesis.config import GenerationConfig, ModelConfig

GEN = dict(steps=2, sizes=[[32, 32]], max_sequence_length=32, guidance_scale=3.5)


def backend(path, **gen) -> DiffusionBackend:
    b = DiffusionBackend(ModelConfig(family="flux", id=path), GenerationConfig(**{**GEN, **gen}), device="cpu")
    b.load()
    return b


def req(prompt="a red barn", neg="blurry", seed=1, size=32) -> GenRequest:
    return GenRequest(prompt, neg, seed, size, size)


def count_calls(module):
    calls = []
    h = module.register_forward_pre_hook(lambda m, a: calls.append(1))
    return calls, h


@pytest.fixture(scope="module")
def flux_cfg(tiny_flux_dir):
    return backend(tiny_flux_dir, true_cfg_scale=3.0)


def test_true_cfg_runs_two_passes_per_step(tiny_flux_dir, flux_cfg):
    calls, h = count_calls(flux_cfg.pipe.transformer)
    flux_cfg.generate([req()])
    h.remove()
    assert len(calls) == 2 * 2  # 2 steps x (cond + uncond)
    plain = backend(tiny_flux_dir, true_cfg_scale=1.0)
    calls, h = count_calls(plain.pipe.transformer)
    plain.generate([req()])
    h.remove()
    assert len(calls) == 2
    assert plain.sample_info(req())["true_cfg_scale"] is None
    assert flux_cfg.sample_info(req())["true_cfg_scale"] == 3.0
    assert flux_cfg.sample_info(req())["guidance_scale"] == 3.5  # dev-like: distilled guidance embedded


def test_negative_prompt_changes_the_image(flux_cfg):
    a, b, c = flux_cfg.generate([req(neg="blurry"), req(neg="cartoon, oversmooth"), req(neg="blurry")])
    assert np.abs(a - b).max() > 1e-3
    assert np.array_equal(a, c)


def test_same_key_same_image_at_batch_1_and_4(flux_cfg, tiny_flux_dir):
    reqs = [req(prompt=f"scene {i}", seed=100 + i) for i in range(4)]
    together = flux_cfg.generate(reqs)  # micro_batch 1: one call per sample
    alone = flux_cfg.generate([reqs[2]])
    assert np.array_equal(together[2], alone[0])
    assert not np.array_equal(together[0], together[1])  # seeds differ per sample
    # one batched call (micro_batch 4): each sample still has its own generator; equal to float rounding
    batched = backend(tiny_flux_dir, true_cfg_scale=3.0, micro_batch=4)
    calls, h = count_calls(batched.pipe.transformer)
    out = batched.generate(reqs)
    h.remove()
    assert len(calls) == 4  # one call of batch 4 per pass
    for x, y in zip(out, together):
        assert np.abs(x - y).max() < 1e-4


def test_schnell_has_no_distilled_guidance(tiny_schnell_dir):
    b = backend(tiny_schnell_dir, guidance_scale=0.0)
    assert b.distilled_guidance is False
    info = b.sample_info(req())
    assert info["guidance_scale"] is None and info["scheduler"] == "FlowMatchEulerDiscreteScheduler"
    img = b.generate([req()])[0]
    assert img.shape == (32, 32, 3) and np.isfinite(img).all()


def test_nan_output_is_rejected_with_reason(flux_cfg, monkeypatch):
    from pairforge.batch import new_batch
    from pairforge.stage import RunContext
    from pairforge.stages.synthesis import SynthesisStage
    from pairforge.synthesis.config import SynthesisSourceConfig

    vae = flux_cfg.pipe.vae
    real = vae.decode

    def nan_decode(z, *a, **k):
        out = real(z, *a, **k)
        sample = out[0] if isinstance(out, tuple) else out.sample
        sample[0, :, :4, :4] = torch.nan  # fp16-overflow-like corruption of the first image
        return out

    monkeypatch.setattr(vae, "decode", nan_decode)
    cfg = SynthesisSourceConfig.model_validate({"model": {"family": "flux", "id": "unused"},
                                                "generation": {**GEN, "micro_batch": 2}})
    stage = SynthesisStage(cfg, RunContext(seed=0))
    stage.backend = flux_cfg  # reuse the loaded pipeline
    monkeypatch.setattr(flux_cfg, "gen", cfg.generation)
    stage._ready = True
    batch = new_batch([0, 1])
    batch["prompt"] = ["a", "b"]
    out = stage(batch)
    assert out["reject"][0]["rule"] == "nonfinite" and "NaN" in out["reject"][0]["reason"]
    assert out["reject"][0]["stage"] == "synthesis" and out["hq"][0] is None
    assert out["reject"][1] is None and out["hq"][1].dtype == np.uint8


def test_black_and_flat_images_are_rejected():
    from pairforge.synthesis.checks import check_generation
    from pairforge.synthesis.config import OutputChecks

    c = OutputChecks()
    assert check_generation(np.zeros((16, 16, 3), np.float32), c).rule == "black"
    assert check_generation(np.full((16, 16, 3), 0.5, np.float32), c).rule == "blank"
    rng = np.random.default_rng(0)
    assert check_generation(rng.random((16, 16, 3)).astype(np.float32), c) is None


def test_prompt_composition():
    g = GenerationConfig(quality_suffix="4k, highly detailed", negative_prompt="low quality, {neg}",
                         prompt_template="A {pos} image. {prompt}")
    assert compose_prompts("a barn", g, {"positive": "<p>", "negative": "<n>"}) == \
        ("A <p> image. a barn, 4k, highly detailed", "low quality, <n>")
    empty = GenerationConfig()
    assert compose_prompts("", empty, {}) == ("", "")
    neg = GenerationConfig(mode="negatives", quality_suffix="sharp, detailed",
                           negative_prompt="oil painting, cartoon, blur")
    assert compose_prompts("a harbor", neg, {}) == ("a harbor, oil painting, cartoon, blur", "sharp, detailed")
    assert compose_prompts("", neg, {})[0] == "oil painting, cartoon, blur"
