"""`make bench-gpu`: what every GPU path of pairforge costs on a real accelerator, in one command.

GPU time comes rarely and in minutes, so this is one prepared script: each section runs in its own child
process with its own time budget (a CUDA error, an OOM or a hang loses that section only; the child
writes its figures as it goes, so a timeout keeps what was measured), and the whole run fits in
``--budget`` seconds (default 480). It writes ``bench/results/gpu.json`` and ``bench/results/gpu.md``.

Sections (nothing is downloaded: every model has random weights at its published size):
  flux      FLUX.1-dev transformer (19 double + 38 single blocks, 3072 hidden) in bf16 at 1024x768:
            s/step, s/image (distilled guidance and true CFG), images/hour/GPU, MFU, peak memory,
            batch 1 and the largest batch that fits, eager and with regional torch.compile
  sdxl      SDXL UNet (320/640/1280, 2048 cross-attention) in bf16 at 1024x1024 with CFG, the same figures
  pipeline  `pairforge run` of a synthesis config on a random FLUX through Ray with num_gpus: 1, with
            the GPU busy share sampled by NVML (prompt, filter, degrade, write must overlap generation)
  chain     the realesrgan preset batched on CUDA at 512 and 1024 px, pairs/s with and without PNG
            decode/encode, and CUDA-vs-CPU parity (PSNR of the LQs for the same parameters)
  iqa       PIQE and a learned metric (MUSIQ, random weights) on the GPU, images/s
  trainer   RRDBNet x4plus (64 feat, 23 blocks) and NAFNet-32 at 256 px crops in bf16: steps/s,
            samples/s, and whether the bundled trainer's data loader keeps up

MFU = (FLOPs of one forward) x (forwards per second) / (dense bf16 peak of the device). FLOPs are counted
from the operator shapes by ``torch.utils.flop_counter.FlopCounterMode`` over one forward (2 FLOPs per
multiply-add in matmuls, convolutions and scaled-dot-product attention); for FLUX that is close to
2·P·T + 4·L·T²·d (P weights of the blocks, T tokens, L = 57 blocks, d = 3072). The peak comes from a
table of known devices or ``--peak-tflops``.

``--smoke`` runs every section at toy sizes on whatever device exists (the CPU in CI): it proves the
script works, its numbers mean nothing.

    python bench/gpu.py --budget 480          # on a GPU machine
    python bench/gpu.py --smoke               # anywhere, ~1 minute
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("flux", "sdxl", "pipeline", "chain", "iqa", "trainer")
#: share of the budget each section may use (the rest is start-up slack)
SHARES = {"flux": 0.30, "sdxl": 0.17, "pipeline": 0.17, "chain": 0.10, "iqa": 0.07, "trainer": 0.14}
#: dense bf16 tensor-core peak (TFLOP/s, no sparsity) by device-name fragment, most specific first
PEAK_BF16_TFLOPS = [("GH200", 989.0), ("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("H800", 989.0),
                    ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
                    ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0),
                    ("V100", 125.0), ("T4", 65.0)]
MFU_GOAL = 0.60


# ------------------------------------------------------------------------------------------ utilities
class Recorder:
    """A section's results, rewritten to disk after every measurement so a killed child keeps them."""

    def __init__(self, path: Path, deadline: float):
        self.path, self.deadline, self.data = path, deadline, {}

    def put(self, key: str, value) -> None:
        self.data[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def left(self) -> float:
        return self.deadline - time.monotonic()


def device_info(torch) -> dict:
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return {"device": "cuda", "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                "capability": f"{p.major}.{p.minor}", "torch": torch.__version__, "cuda": torch.version.cuda}
    return {"device": "cpu", "name": "cpu", "torch": torch.__version__}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for frag, v in PEAK_BF16_TFLOPS if frag.lower() in name.lower()), None)


def sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(torch, fn, repeats: int, deadline: float | None = None) -> float:
    """Mean seconds per call of ``fn`` after one warm-up call; stops early at ``deadline``."""
    fn()
    sync(torch)
    t0, n = time.perf_counter(), 0
    while n < repeats:
        fn()
        n += 1
        if deadline is not None and time.monotonic() > deadline:
            break
    sync(torch)
    return (time.perf_counter() - t0) / n


def count_flops(torch, fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def peak_memory_gib(torch) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def is_oom(e: BaseException) -> bool:
    return "out of memory" in str(e).lower()


# ------------------------------------------------------------------------------------------ sections
def _denoiser_figures(torch, rec: Recorder, name: str, build_inputs, forward, steps: int, cfg_passes: int,
                      batches: list[int], peak: float | None, compile_fn=None) -> None:
    """Time one denoiser forward at each batch size; derive s/image, images/hour and MFU."""
    out = {}
    for b in batches:
        if rec.left() < 10:
            break
        try:
            inputs = build_inputs(b)
            torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
            with torch.inference_mode():
                flops = count_flops(torch, lambda: forward(inputs))
                sec = timed(torch, lambda: forward(inputs), repeats=5, deadline=time.monotonic() + rec.left() / 3)
        except RuntimeError as e:
            if is_oom(e):
                out[str(b)] = {"oom": True}
                rec.put(name, out)
                break
            raise
        per_image = sec * steps * cfg_passes / b
        fig = {"s_per_forward": round(sec, 4), "s_per_image": round(per_image, 3),
               "images_per_hour": round(3600 / per_image, 1), "gflops_per_forward": round(flops / 1e9, 3),
               "achieved_tflops": round(flops / sec / 1e12, 1), "peak_memory_gib": peak_memory_gib(torch)}
        if peak:
            fig["mfu"] = round(flops / sec / 1e12 / peak, 3)
        out[str(b)] = fig
        rec.put(name, out)
        del inputs
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    fits = [int(k) for k, v in out.items() if not v.get("oom")]
    if fits:
        rec.put(name + "_largest_batch", max(fits))
    if compile_fn is not None and fits and rec.left() > 30:
        t0 = time.perf_counter()
        compile_fn()
        inputs = build_inputs(1)
        with torch.inference_mode():
            forward(inputs)  # compiles
            sync(torch)
            compile_s = time.perf_counter() - t0
            sec = timed(torch, lambda: forward(inputs), repeats=5, deadline=time.monotonic() + rec.left() / 2)
        flops = out["1"]["gflops_per_forward"] * 1e9
        fig = {"compile_s": round(compile_s, 1), "s_per_forward": round(sec, 4),
               "s_per_image": round(sec * steps * cfg_passes, 3), "speedup": round(out["1"]["s_per_forward"] / sec, 2)}
        if peak:
            fig["mfu"] = round(flops / sec / 1e12 / peak, 3)
        rec.put(name + "_compiled_b1", fig)


def section_flux(rec: Recorder, smoke: bool, peak: float | None) -> None:
    import torch
    from diffusers import FluxTransformer2DModel

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    if smoke:
        cfg = dict(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                   joint_attention_dim=32, pooled_projection_dim=16, axes_dims_rope=(4, 6, 6))
        h, w, txt, steps, batches = 64, 48, 16, 2, [1, 2]
    else:  # FLUX.1-dev's published transformer config
        cfg = dict(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                   joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))
        h, w, txt, steps, batches = 1024, 768, 512, 28, [1, 2, 4, 8, 16]
    t0 = time.perf_counter()
    with torch.device(dev):
        torch.set_default_dtype(dtype)
        model = FluxTransformer2DModel(patch_size=1, in_channels=64, guidance_embeds=True, **cfg).eval()
        torch.set_default_dtype(torch.float32)
    params = sum(p.numel() for p in model.parameters())
    rec.put("flux_model", {"params_billion": round(params / 1e9, 3), "config": cfg, "height": h, "width": w,
                           "text_tokens": txt, "steps": steps, "build_s": round(time.perf_counter() - t0, 1)})
    lh, lw = h // 16, w // 16  # VAE /8, then 2x2 patch packing
    img_tokens = lh * lw

    def build_inputs(b: int) -> dict:
        g = torch.Generator(device=dev).manual_seed(0)
        ids = torch.zeros(lh, lw, 3, device=dev)
        ids[..., 1] = torch.arange(lh, device=dev)[:, None]
        ids[..., 2] = torch.arange(lw, device=dev)[None, :]
        return dict(hidden_states=torch.randn(b, img_tokens, 64, generator=g, device=dev, dtype=dtype),
                    encoder_hidden_states=torch.randn(b, txt, cfg["joint_attention_dim"], generator=g, device=dev,
                                                      dtype=dtype),
                    pooled_projections=torch.randn(b, cfg["pooled_projection_dim"], generator=g, device=dev,
                                                   dtype=dtype),
                    timestep=torch.full((b,), 0.5, device=dev, dtype=dtype),
                    guidance=torch.full((b,), 3.5, device=dev, dtype=dtype),
                    img_ids=ids.reshape(-1, 3).to(dtype), txt_ids=torch.zeros(txt, 3, device=dev, dtype=dtype),
                    return_dict=False)

    def forward(inputs):
        return model(**inputs)

    def compile_blocks():  # regional compilation: every block compiled once, shapes shared
        for blk in list(model.transformer_blocks) + list(model.single_transformer_blocks):
            blk.compile()

    _denoiser_figures(torch, rec, "flux_guidance_distilled", build_inputs, forward, steps, 1, batches, peak,
                      compile_fn=None if smoke and dev == "cpu" else compile_blocks)
    # true CFG runs a second (negative-prompt) forward per step: same forward cost, twice per step
    distilled = rec.data.get("flux_guidance_distilled", {})
    cfg_fig = {b: {"s_per_image": round(v["s_per_image"] * 2, 3), "images_per_hour": round(v["images_per_hour"] / 2, 1)}
               for b, v in distilled.items() if not v.get("oom")}
    rec.put("flux_true_cfg", cfg_fig)


def section_sdxl(rec: Recorder, smoke: bool, peak: float | None) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    if smoke:
        cfg = dict(block_out_channels=(8, 16), layers_per_block=1, transformer_layers_per_block=(1, 1),
                   attention_head_dim=(2, 4), cross_attention_dim=32, addition_time_embed_dim=8,
                   projection_class_embeddings_input_dim=6 * 8 + 16, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                   up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=1)
        size, pooled, steps, batches = 64, 16, 2, [1, 2]
    else:  # SDXL base 1.0's published UNet config
        cfg = dict(block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
                   attention_head_dim=(5, 10, 20), cross_attention_dim=2048, addition_time_embed_dim=256,
                   projection_class_embeddings_input_dim=2816,
                   down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                   up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
        size, pooled, steps, batches = 1024, 1280, 30, [1, 2, 4, 8]
    with torch.device(dev):
        torch.set_default_dtype(dtype)
        unet = UNet2DConditionModel(sample_size=size // 8, in_channels=4, out_channels=4, use_linear_projection=True,
                                    addition_embed_type="text_time", **cfg).eval()
        torch.set_default_dtype(torch.float32)
    rec.put("sdxl_model", {"params_billion": round(sum(p.numel() for p in unet.parameters()) / 1e9, 3),
                           "size": size, "steps": steps})

    def build_inputs(b: int) -> dict:
        n = 2 * b  # classifier-free guidance: conditional and unconditional in one batch
        g = torch.Generator(device=dev).manual_seed(0)
        return dict(sample=torch.randn(n, 4, size // 8, size // 8, generator=g, device=dev, dtype=dtype),
                    timestep=torch.tensor(500, device=dev),
                    encoder_hidden_states=torch.randn(n, 77, cfg["cross_attention_dim"], generator=g, device=dev,
                                                      dtype=dtype),
                    added_cond_kwargs={"text_embeds": torch.randn(n, pooled, generator=g, device=dev, dtype=dtype),
                                       "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * n, device=dev,
                                                                dtype=dtype)},
                    return_dict=False)

    def forward(inputs):
        return unet(**inputs)

    def compile_unet():
        unet.compile()

    _denoiser_figures(torch, rec, "sdxl_cfg", build_inputs, forward, steps, 1, batches, peak,
                      compile_fn=None if smoke and dev == "cpu" else compile_unet)


class GpuSampler:
    """Samples GPU utilisation with NVML every ``period`` seconds in a thread."""

    def __init__(self, period: float = 0.1):
        self.period, self.samples, self._stop = period, [], threading.Event()
        self.available = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
            self.available = True
        except Exception:  # no NVML (CPU machine, or the nvidia-ml-py package missing)
            pass
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            u = self._nvml.nvmlDeviceGetUtilizationRates(self._h)
            self.samples.append((time.monotonic(), u.gpu))
            time.sleep(self.period)

    def __enter__(self):
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def busy_share(self, since: float) -> float | None:
        xs = [u for t, u in self.samples if t >= since]
        return round(sum(u > 0 for u in xs) / len(xs), 3) if xs else None


def _random_flux_dir(out: Path, smoke: bool) -> Path:
    """A FLUX pipeline in diffusers layout: tiny stand-in text encoders and VAE, a bigger random
    transformer (what the GPU spends its time on), saved and loaded through from_pretrained."""
    import torch
    from diffusers import FluxTransformer2DModel

    from pairforge.synthesis.tiny import build_tiny_flux

    pipe = build_tiny_flux()
    if not smoke:
        pipe.transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=4, num_single_layers=8, attention_head_dim=128,
            num_attention_heads=24, joint_attention_dim=pipe.text_encoder_2.config.d_model,
            pooled_projection_dim=pipe.text_encoder.config.projection_dim, guidance_embeds=True,
            axes_dims_rope=(16, 56, 56)).to(torch.bfloat16)
    pipe.save_pretrained(out)
    return out


PIPELINE_CONFIG = """
run: {{name: gpu-pipeline, seed: 0, num_samples: {n}}}
source:
  kind: synthesis
  prompts: {{kind: template, dedup: {{near: false}}}}
  model: {{family: flux, id: {model}, dtype: {dtype}}}
  generation: {{steps: {steps}, guidance_scale: 3.5, sizes: [[{size}, {size}]], max_sequence_length: 64}}
  resources: {{num_gpus: {gpus}, num_cpus: 1, batch_size: {batch}}}
filters:
  - {{kind: sanity, min_size: 16, min_std: 0.0}}
degrade: {{kind: chain, preset: realesrgan}}
output: {{samples_per_shard: {batch}}}
"""


def section_pipeline(rec: Recorder, smoke: bool, _peak: float | None) -> None:
    import torch

    gpu = torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="pfgpu") as tmp:
        tmp = Path(tmp)
        model = _random_flux_dir(tmp / "flux", smoke)
        n, size, steps, batch = (4, 32, 2, 2) if smoke else (256, 512, 8, 8)
        cfg = tmp / "cfg.yaml"
        cfg.write_text(PIPELINE_CONFIG.format(n=n, model=model, dtype="bfloat16" if gpu else "float32", steps=steps,
                                              size=size, gpus=1 if gpu else 0, batch=batch))
        out = tmp / "out"
        cmd = [sys.executable, "-m", "pairforge.cli", "run", str(cfg), "--out", str(out), "-q"]
        if smoke:  # the plumbing only; Ray start-up on a busy CI machine would dominate the smoke run
            cmd += ["--executor", "local"]
        with GpuSampler() as sampler:
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            first_commit = None
            while proc.poll() is None:
                if first_commit is None and list((out / "shards").glob("shard-*.json")):
                    first_commit = time.monotonic()
                if time.monotonic() > rec.deadline - 5:
                    proc.kill()
                    break
                time.sleep(0.2)
            log = proc.communicate()[0]
            wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"pairforge run failed ({proc.returncode}): {log[-2000:]}")
        index = json.loads((out / "index.json").read_text())
        rec.put("pipeline", {"command": " ".join(cmd[1:]), "samples": index["total_samples"], "size": size,
                             "steps": steps, "wall_s": round(wall, 1),
                             "pairs_per_s": round(index["total_samples"] / wall, 2),
                             "gpu_busy_share_warm": sampler.busy_share(first_commit or t0) if sampler.available else None,
                             "gpu_busy_share_whole": sampler.busy_share(t0) if sampler.available else None,
                             "nvml": sampler.available})


def _photos(size: int, n: int):
    import numpy as np
    from PIL import Image

    from pairforge.sources.bundled import load_bundled_photo

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left"]
    out = []
    for i in range(n):
        img = Image.fromarray(load_bundled_photo(names[i % len(names)])).resize((size, size), Image.BICUBIC)
        out.append(np.asarray(img))
    return out


def _chain_degrader(device: str):
    from pairforge.config import PipelineConfig
    from pairforge.degradations.base import build_degrader

    cfg = PipelineConfig.model_validate({"degrade": {"kind": "chain", "preset": "realesrgan", "device": device}})
    return build_degrader(cfg.degrade)


def section_chain(rec: Recorder, smoke: bool, _peak: float | None) -> None:
    import numpy as np
    import torch

    from pairforge.io.images import decode_image, encode_png

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    gpu_deg = _chain_degrader(dev)
    sizes = [(64, 4)] if smoke else [(512, 32), (1024, 8)]
    res = {}
    for size, batch in sizes:
        if rec.left() < 5:
            break
        imgs = _photos(size, batch)
        pngs = [encode_png(x, 1) for x in imgs]
        seeds = list(range(batch))
        sec = timed(torch, lambda: gpu_deg.degrade(imgs, seeds), repeats=5, deadline=time.monotonic() + rec.left() / 4)

        def whole():
            decoded = [decode_image(p)[0] for p in pngs]
            for r in gpu_deg.degrade(decoded, seeds):
                encode_png(r.lq, 1)
                encode_png(r.hq if r.hq is not None else decoded[0], 1)

        sec_io = timed(torch, whole, repeats=3, deadline=time.monotonic() + rec.left() / 4)
        res[str(size)] = {"batch": batch, "pairs_per_s_compute": round(batch / sec, 1),
                          "pairs_per_s_with_png_io": round(batch / sec_io, 1)}
        rec.put("chain_" + dev, res)
    # parity: identical sampled parameters (same seeds) on CPU and on this device
    imgs = _photos(64 if smoke else 256, 4)
    cpu = _chain_degrader("cpu").degrade(imgs, [7, 8, 9, 10])
    other = gpu_deg.degrade(imgs, [7, 8, 9, 10])
    psnrs = []
    for a, b in zip(cpu, other):
        mse = float(np.mean((a.lq.astype(np.float64) - b.lq.astype(np.float64)) ** 2))
        psnrs.append(float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse))
    rec.put("chain_parity_psnr_db", {"vs": f"cpu vs {dev}", "min": round(min(psnrs), 2), "per_sample": [round(p, 2) for p in psnrs]})


def section_iqa(rec: Recorder, smoke: bool, _peak: float | None) -> None:
    import pyiqa
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size, batch = (64, 2) if smoke else (512, 16)
    x = torch.rand(batch, 3, size, size, device=dev)
    out = {}
    for name, kw in (("piqe", {}), ("musiq", {"pretrained": False})):
        if rec.left() < 5:
            break
        metric = pyiqa.create_metric(name, device=dev, **kw)
        if smoke and kw and dev.type == "cpu":  # MUSIQ's fixed multi-scale input costs ~20 s a forward on 2 cores
            out[name] = {"created": True, "timed": False}
            rec.put("iqa", out)
            continue
        with torch.inference_mode():
            sec = timed(torch, lambda: metric(x), repeats=5, deadline=time.monotonic() + rec.left() / 3)
        out[name] = {"images_per_s": round(batch / sec, 1), "size": size, "batch": batch,
                     "weights": "random" if kw else "none needed"}
        rec.put("iqa", out)


def section_trainer(rec: Recorder, smoke: bool, _peak: float | None) -> None:
    import torch

    from pairforge.train.config import NAFNetConfig, RRDBNetConfig
    from pairforge.train.nets import build_generator

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if smoke:
        nets = {"rrdbnet_x4": RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4),
                "nafnet": NAFNetConfig(width=8, enc_blocks=[1], middle_blocks=1, dec_blocks=[1])}
        crop, batch = 32, 2
    else:
        nets = {"rrdbnet_x4plus": RRDBNetConfig(), "nafnet32": NAFNetConfig()}
        crop, batch = 256, 16
    out = {}
    for name, cfg in nets.items():
        if rec.left() < 10:
            break
        net = build_generator(cfg).to(dev).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        scale = getattr(cfg, "scale", 1)
        lq = torch.rand(batch, 3, crop // scale, crop // scale, device=dev)
        hq = torch.rand(batch, 3, crop, crop, device=dev)

        def step():
            with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
                loss = torch.nn.functional.l1_loss(net(lq).float(), hq)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sec = timed(torch, step, repeats=10, deadline=time.monotonic() + rec.left() / 4)
        out[name] = {"steps_per_s": round(1 / sec, 2), "samples_per_s": round(batch / sec, 1), "crop": crop,
                     "batch": batch, "bf16": dev == "cuda", "peak_memory_gib": peak_memory_gib(torch)}
        rec.put("trainer", out)
        del net, opt
    # can the bundled trainer's data loader keep up? samples/s it delivers from a real pairforge dataset
    with tempfile.TemporaryDirectory(prefix="pfgpu") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        from PIL import Image

        for i, img in enumerate(_photos(crop * 2, 6)):
            Image.fromarray(img).save(photos / f"p{i}.png")
        data = Path(tmp) / "pairs"
        r = subprocess.run([sys.executable, "-m", "pairforge.cli", "degrade", str(photos), str(data), "--preset",
                            "realesrgan"], capture_output=True, text=True, timeout=max(30, rec.left()))
        if r.returncode != 0:
            raise RuntimeError(f"pairforge degrade failed: {r.stderr[-1000:]}")
        from pairforge.train.config import parse_train_config
        from pairforge.train.data import make_train_loader

        tcfg = parse_train_config({"model": {"kind": "rrdbnet", "scale": 4}, "output": {"dir": str(Path(tmp) / "t")},
                                   "data": {"datasets": [{"name": "d", "url": str(data)}], "patch_size": crop,
                                            "batch_size": batch, "num_workers": 2, "shuffle_buffer": 8,
                                            "shuffle_initial": 4}})
        loader = iter(make_train_loader(tcfg))
        next(loader)
        t0, n = time.perf_counter(), 0
        while n < (3 if smoke else 20) and rec.left() > 3:
            next(loader)
            n += 1
        loader_rate = n * batch / (time.perf_counter() - t0)
        need = max(v["samples_per_s"] for v in out.values()) if out else None
        rec.put("trainer_loader", {"samples_per_s": round(loader_rate, 1), "workers": 2,
                                   "fastest_step_samples_per_s": need,
                                   "keeps_up": bool(need and loader_rate >= need)})


RUNNERS = {"flux": section_flux, "sdxl": section_sdxl, "pipeline": section_pipeline, "chain": section_chain,
           "iqa": section_iqa, "trainer": section_trainer}


# ------------------------------------------------------------------------------------------ driver
def run_child(args) -> int:
    import torch

    rec = Recorder(Path(args.child_out), time.monotonic() + args.section_budget)
    rec.put("device", device_info(torch))
    peak = peak_tflops(rec.data["device"]["name"], args.peak_tflops) if rec.data["device"]["device"] == "cuda" else None
    t0 = time.perf_counter()
    RUNNERS[args.section](rec, args.smoke, peak)
    rec.put("section_s", round(time.perf_counter() - t0, 1))
    return 0


def markdown(results: dict) -> str:
    dev = next((r["device"] for r in results["sections"].values() if isinstance(r, dict) and "device" in r), {})
    lines = [f"### GPU benchmark ({'smoke, toy sizes' if results['smoke'] else 'full'}) on {dev.get('name', '?')}",
             "", f"`{results['command']}` at {results['date']}, git {results['git']}, "
             f"peak bf16 {results.get('peak_tflops') or 'unknown'} TFLOP/s", "",
             "| section | measure | batch | value |", "|---|---|---|---|"]
    for sec, r in results["sections"].items():
        if r.get("status") != "ok":
            lines.append(f"| {sec} | **{r.get('status')}** | | {r.get('error', '')[:120]} |")
        for key, val in r.items():
            if key in ("device", "status", "error", "section_s") or not isinstance(val, dict):
                continue
            if not any(isinstance(v, dict) for v in val.values()):  # one flat record: one row
                lines.append(f"| {sec} | {key} | | {', '.join(f'{k}={v}' for k, v in val.items())} |")
                continue
            for sub, fig in val.items():
                shown = ", ".join(f"{k}={v}" for k, v in fig.items()) if isinstance(fig, dict) else f"{fig}"
                lines.append(f"| {sec} | {key} | {sub} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="toy sizes on any device (CI)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device, if not known")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu.json"))
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--section-budget", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.section:
        return run_child(args)
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results = {"smoke": args.smoke, "budget_s": args.budget, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "git": git or None, "command": "python bench/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "peak_tflops": args.peak_tflops, "sections": {}}
    total = sum(SHARES[s] for s in wanted)
    start = time.monotonic()
    for sec in wanted:
        left = args.budget - (time.monotonic() - start)
        if args.smoke:  # toy sizes: the timeout only guards against a hang
            budget = 300.0
        else:
            budget = min(max(10.0, args.budget * SHARES[sec] / total), max(left, 10.0))
        with tempfile.TemporaryDirectory(prefix="pfgpu") as tmp:
            child_out = Path(tmp) / f"{sec}.json"
            cmd = [sys.executable, __file__, "--section", sec, "--child-out", str(child_out),
                   "--section-budget", str(budget * 0.9)] + (["--smoke"] if args.smoke else [])
            if args.peak_tflops:
                cmd += ["--peak-tflops", str(args.peak_tflops)]
            t0 = time.monotonic()
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
                status = "ok" if r.returncode == 0 else f"failed (exit {r.returncode})"
                err = "" if r.returncode == 0 else (r.stderr.strip().splitlines() or [""])[-1]
            except subprocess.TimeoutExpired:
                status, err = f"timed out after {budget:.0f} s (partial figures kept)", ""
            data = json.loads(child_out.read_text()) if child_out.exists() else {}
        data.update(status=status, wall_s=round(time.monotonic() - t0, 1))
        if err:
            data["error"] = err
        results["sections"][sec] = data
        if results["peak_tflops"] is None and data.get("device", {}).get("device") == "cuda":
            results["peak_tflops"] = peak_tflops(data["device"]["name"], None)
        print(f"{sec}: {status} in {data['wall_s']} s", flush=True)
        out.write_text(json.dumps(results, indent=1))
    md = markdown(results)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0 if all(r["status"] == "ok" for r in results["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
