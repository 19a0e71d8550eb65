"""Runs a :class:`ChainDegradeConfig` over a batch of images.

1. Plan: every sample draws its whole parameter set from its own seed (``rng_from_seed``) before any
   pixel work, so its LQ never depends on the batch around it (with ``batch_shared`` the decisions
   Real-ESRGAN shares per batch are copied from the batch's first sample instead).
2. Execute: on the CPU each sample runs its plan alone on an H x W x C float32 numpy array
   (:meth:`OpBase.apply_np`: numpy/OpenCV kernels, numpy generators; torch is never imported), samples
   in parallel threads; on CUDA samples advance in lockstep and consecutive steps of the same op on
   same-sized images run as one tensor batch (grouped conv, batched interpolate, batched DiffJPEG).
3. Finish: quantise to 8 bit (Real-ESRGAN's final round/clamp), optional resize back to the HQ size,
   aligned crops.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pairforge.degradations.base import Degrader, DegradeResult
from pairforge.degradations.chain.config import ChainDegradeConfig
from pairforge.degradations.chain.ops import Env, SampleContext, Step
from pairforge.degradations.fidelity import pair_strength
from pairforge.degradations.resize import resize_hwc
from pairforge.devices import resolve_device
from pairforge.seeding import rng_from_seed

if TYPE_CHECKING:  # torch loads only for the CUDA (lockstep) path
    import torch


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class _Sample:
    """One image's state while its plan runs."""

    def __init__(self, x, steps: list[Step]):
        self.x = x
        self.steps = [s for s in steps if not s.op.composite and s.params.get("applied", True)]
        self.pos = 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.steps)


class ChainDegrader(Degrader):
    name = "chain"

    def __init__(self, config: ChainDegradeConfig):
        self.config = config
        #: the resolved device ("cpu", "cuda", "cuda:1"); resolving "auto" imports torch only where a
        #: CUDA device may exist (see pairforge.devices)
        self.device = resolve_device(config.device)
        self.on_cpu = not self.device.startswith("cuda")
        self.env = Env(jpeg_backend=config.jpeg_backend, resize_grid=config.resize_grid)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # a degrader may be shipped to workers (pickled): its thread pool and lock are rebuilt there
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- plan

    def plan(self, hq_size: tuple[int, int], seed: int, shared: dict | None = None) -> tuple[SampleContext, dict | None]:
        """Sample one image's full plan. Returns the context (steps, record) and the crop draw."""
        c = self.config
        rng = rng_from_seed(seed)
        ctx = SampleContext(rng=rng, hq_size=hq_size, scale=c.scale, shared=shared, batch_shared=c.batch_shared)
        crop = None
        if c.crop is not None:
            # the crop position has its own stream, so cropping never changes the degradation draws
            crop_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0xC409])))
            h, w = hq_size
            lh, lw = h // c.scale, w // c.scale
            lp = c.crop.size // c.scale
            if lh >= lp and lw >= lp:
                top = ctx.pick("crop.top", lambda: int(crop_rng.integers(0, lh - lp + 1)))
                left = ctx.pick("crop.left", lambda: int(crop_rng.integers(0, lw - lp + 1)))
                top, left = min(top, lh - lp), min(left, lw - lp)  # a shared position may not fit a smaller image
                crop = {"size": c.crop.size, "when": c.crop.when, "top": top * c.scale, "left": left * c.scale}
            else:
                crop = {"size": c.crop.size, "when": c.crop.when, "skipped": f"image {h}x{w} smaller than the crop"}
            if c.crop.when == "before" and "skipped" not in crop:
                ctx.hq_size = (c.crop.size, c.crop.size)
        for op in c.ops:
            op.sample(ctx)
        return ctx, crop

    # ------------------------------------------------------------------------------------- execute

    def degrade(self, images: list[np.ndarray], seeds: list[int], aux: list[dict] | None = None) -> list[DegradeResult]:
        if len(images) != len(seeds):
            raise ValueError(f"{len(images)} images but {len(seeds)} seeds")
        c = self.config
        plans = []
        shared = None
        for img, seed in zip(images, seeds):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"expected uint8 RGB H x W x 3 images, got {img.dtype} {img.shape}")
            ctx, crop = self.plan(self._mod_size(img), seed, shared)
            if c.batch_shared and shared is None:
                shared = ctx.record
            plans.append((ctx, crop))
        if self.on_cpu:
            jobs = list(zip(images, plans))
            if len(jobs) == 1:
                return [self._run_one(*jobs[0])]
            return list(self._thread_pool().map(lambda a: self._run_one(*a), jobs))
        return self._run_lockstep(images, plans)

    def _mod_size(self, img: np.ndarray) -> tuple[int, int]:
        s = self.config.scale
        h, w = img.shape[:2]
        return (h - h % s, w - w % s) if h >= s and w >= s else (h, w)

    def _thread_pool(self) -> ThreadPoolExecutor:
        """One pool per degrader, sized once (``threads`` or the CPUs this process may use): concurrent
        callers with small batches share it instead of serialising on a pool sized for one sample. The
        numpy/OpenCV kernels release the GIL, so threads run samples in parallel."""
        with self._lock:
            if self._pool is None:
                threads = max(1, self.config.threads or _cpu_count())
                self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pairforge-degrade")
            return self._pool

    def _prepare_hq(self, img: np.ndarray, crop: dict | None) -> np.ndarray:
        h, w = self._mod_size(img)
        hq = img[:h, :w]
        if crop is not None and crop["when"] == "before" and "skipped" not in crop:
            t, l, s = crop["top"], crop["left"], crop["size"]
            hq = hq[t : t + s, l : l + s]
        return hq

    def _to_tensor(self, hq: np.ndarray) -> torch.Tensor:
        import torch

        arr = np.ascontiguousarray(hq)
        if not arr.flags.writeable:
            arr = arr.copy()
        x = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
        return x.to(self.device, non_blocking=True).float().div_(255.0).contiguous()

    def _run_one(self, img: np.ndarray, plan) -> DegradeResult:
        """One sample's plan on a float32 H x W x 3 numpy array (the CPU path)."""
        ctx, crop = plan
        hq = self._prepare_hq(img, crop)
        x = np.divide(hq, np.float32(255.0), dtype=np.float32)
        hq_out = None
        for step in _Sample(x, ctx.steps).steps:
            x = step.op.apply_np(x, step.params, self.env)
            if step.op.op == "usm" and step.op.apply_to_hq:
                hq_out = _to_u8(x)
        return self._finish(img, hq, _to_u8(x), hq_out, ctx, crop)

    def _run_lockstep(self, images, plans) -> list[DegradeResult]:
        """Samples in lockstep as tensors on ``self.device`` (the CUDA path; on a CPU device it runs the
        tensor ops' CPU branches, which the tests use to check the batching)."""
        import torch

        hqs = [self._prepare_hq(img, crop) for img, (ctx, crop) in zip(images, plans)]
        states = [_Sample(self._to_tensor(hq), ctx.steps) for hq, (ctx, crop) in zip(hqs, plans)]
        hq_outs: list[torch.Tensor | None] = [None] * len(states)
        with torch.no_grad():
            while True:
                live = [i for i, st in enumerate(states) if not st.done]
                if not live:
                    break
                groups: dict = {}
                for i in live:
                    st = states[i]
                    step = st.steps[st.pos]
                    key = (id(step.op), tuple(st.x.shape), step.op.group_key(step.params))
                    groups.setdefault(key, []).append(i)
                for members in groups.values():
                    op = states[members[0]].steps[states[members[0]].pos].op
                    x = torch.cat([states[i].x for i in members], 0)
                    y = op.apply(x, [states[i].steps[states[i].pos].params for i in members], self.env)
                    for j, i in enumerate(members):
                        states[i].x = y[j : j + 1]
                        states[i].pos += 1
                        if op.op == "usm" and op.apply_to_hq:
                            hq_outs[i] = states[i].x
        return [
            self._finish(img, hq, _tensor_to_u8(st.x), None if hq_out is None else _tensor_to_u8(hq_out), ctx, crop)
            for img, hq, st, hq_out, (ctx, crop) in zip(images, hqs, states, hq_outs, plans)
        ]

    # -------------------------------------------------------------------------------------- finish

    def _finish(self, img, hq: np.ndarray, lq_np: np.ndarray, hq_sharp: np.ndarray | None, ctx: SampleContext,
                crop) -> DegradeResult:
        """The 8-bit LQ (and sharpened HQ) of a finished plan: size check, optional resize back to the
        HQ size, aligned crop, record."""
        c = self.config
        h, w = hq.shape[:2]
        expected = (max(1, h // c.scale), max(1, w // c.scale))
        if tuple(lq_np.shape[:2]) != expected:
            raise RuntimeError(f"chain ended at size {tuple(lq_np.shape[:2])}, expected {expected}: does it end with resize_to lq?")
        final = {"quantize": "round_clamp_8bit", "lq_size": c.lq_size}
        if c.lq_size == "hq" and c.scale > 1:
            up = resize_hwc(np.divide(lq_np, np.float32(255.0), dtype=np.float32), size=(h, w), mode=c.lq_upsample_mode,
                            grid=c.resize_grid)
            lq_np = _to_u8(up)
            final["upsample_mode"] = c.lq_upsample_mode
        hq_np = hq if hq_sharp is None else hq_sharp
        if crop is not None and crop["when"] == "after" and "skipped" not in crop:
            t, l, s = crop["top"], crop["left"], crop["size"]
            hq_np = hq_np[t : t + s, l : l + s]
            f = 1 if c.lq_size == "hq" else c.scale
            lq_np = lq_np[t // f : (t + s) // f, l // f : (l + s) // f]
        changed_hq = hq_np.shape != img.shape or hq_sharp is not None
        params = {
            "chain": c.preset or "custom",
            "scale": c.scale,
            "jpeg_backend": c.jpeg_backend,
            "resize_grid": c.resize_grid,
            "batch_shared": c.batch_shared,
            "device": "cpu" if self.on_cpu else "cuda",
            "input_size": [int(img.shape[0]), int(img.shape[1])],
            "hq_size": [int(hq_np.shape[0]), int(hq_np.shape[1])],
            "lq_size": [int(lq_np.shape[0]), int(lq_np.shape[1])],
            "crop": crop,
            "ops": [s.params for s in ctx.steps],
            "final": final,
            # ~1 ms at 512 px; the run report's strength plots read it instead of decoding every pair again
            "strength": pair_strength(hq_np, lq_np),
        }
        return DegradeResult(
            lq=np.ascontiguousarray(lq_np),
            params=params,
            hq=np.ascontiguousarray(hq_np) if changed_hq else None,
        )


def _to_u8(a: np.ndarray) -> np.ndarray:
    """Real-ESRGAN's final round (half to even, as torch.round) & clamp to 8 bit of an H x W x C array."""
    return cv2.convertScaleAbs(np.maximum(a, 0), alpha=255.0).reshape(a.shape[0], a.shape[1], -1)


def _tensor_to_u8(x: torch.Tensor) -> np.ndarray:
    """The same for a (1, C, H, W) tensor on any device, as an H x W x C array."""
    import torch

    return torch.clamp(torch.round(x * 255.0), 0, 255)[0].to(torch.uint8).permute(1, 2, 0).cpu().numpy()
