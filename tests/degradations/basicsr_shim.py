"""Import BasicSR 1.4.2 (the reference implementation) on current torchvision, for tests and benchmarks.

BasicSR imports ``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17); a tiny module
of that name exposing ``rgb_to_grayscale`` is registered in ``sys.modules`` first. Nothing in the
library uses this: only tests and bench/ do.
"""
from __future__ import annotations

import math
import random
import sys
import types

import numpy as np
import torch


def import_basicsr():
    """Return BasicSR's (degradations, img_process_util, diffjpeg) modules, or raise ImportError."""
    if "torchvision.transforms.functional_tensor" not in sys.modules:
        from torchvision.transforms import functional as tvf

        shim = types.ModuleType("torchvision.transforms.functional_tensor")
        shim.rgb_to_grayscale = tvf.rgb_to_grayscale
        sys.modules["torchvision.transforms.functional_tensor"] = shim
    from basicsr.data import degradations
    from basicsr.utils import diffjpeg, img_process_util

    return degradations, img_process_util, diffjpeg


class BasicSRChain:
    """Real-ESRGAN x4plus degradation driven by BasicSR's functions, as its dataset + model do it.

    ``usm="torch"`` sharpens with the model's ``USMSharp`` (a 51x51 grouped conv: very slow on a CPU);
    ``usm="numpy"`` with BasicSR's OpenCV ``usm_sharp`` (same formula, separable Gaussian), for tests."""

    def __init__(self, usm: str = "torch"):
        self.usm_kind = usm
        self.deg, self.ipu, dj = import_basicsr()
        self.jpeger = dj.DiffJPEG(differentiable=False)
        self.usm = self.ipu.USMSharp()
        self.o = dict(resize_prob=[0.2, 0.7, 0.1], resize_range=[0.15, 1.5], gaussian_noise_prob=0.5, noise_range=[1, 30],
                      poisson_scale_range=[0.05, 3], gray_noise_prob=0.4, jpeg_range=[30, 95], second_blur_prob=0.8,
                      resize_prob2=[0.3, 0.4, 0.3], resize_range2=[0.3, 1.2], gaussian_noise_prob2=0.5,
                      noise_range2=[1, 25], poisson_scale_range2=[0.05, 2.5], gray_noise_prob2=0.4,
                      jpeg_range2=[30, 95], scale=4)
        self.kernel_list = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
        self.kernel_prob = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]

    def _kernel(self, sigma, sinc_prob=0.1):
        d = self.deg
        k = random.choice(range(7, 22, 2))
        if np.random.uniform() < sinc_prob:
            omega = np.random.uniform(np.pi / 3, np.pi) if k < 13 else np.random.uniform(np.pi / 5, np.pi)
            kern = d.circular_lowpass_kernel(omega, k, pad_to=False)
        else:
            kern = d.random_mixed_kernels(self.kernel_list, self.kernel_prob, k, sigma, sigma, [-math.pi, math.pi],
                                          [0.5, 4], [1, 2], noise_range=None)
        p = (21 - k) // 2
        return torch.FloatTensor(np.pad(kern, ((p, p), (p, p))))

    def _sinc(self):
        if np.random.uniform() < 0.8:
            k = random.choice(range(7, 22, 2))
            return torch.FloatTensor(self.deg.circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), k, pad_to=21))
        t = torch.zeros(21, 21)
        t[10, 10] = 1
        return t

    @torch.no_grad()
    def __call__(self, gt: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        d, f2d, o = self.deg, self.ipu.filter2D, self.o
        b = gt.shape[0]
        k1 = torch.stack([self._kernel([0.2, 3]) for _ in range(b)])
        k2 = torch.stack([self._kernel([0.2, 1.5]) for _ in range(b)])
        sinc = torch.stack([self._sinc() for _ in range(b)])
        ori_h, ori_w = gt.shape[2:]
        if self.usm_kind == "numpy":
            sharp = [torch.from_numpy(self.ipu.usm_sharp(g.permute(1, 2, 0).numpy().copy())).permute(2, 0, 1) for g in gt]
            gt_usm = torch.stack(sharp).float().contiguous()
        else:
            gt_usm = self.usm(gt)
        out = f2d(gt_usm.contiguous(), k1)
        up = random.choices(["up", "down", "keep"], o["resize_prob"])[0]
        s = np.random.uniform(1, o["resize_range"][1]) if up == "up" else np.random.uniform(o["resize_range"][0], 1) if up == "down" else 1
        out = F.interpolate(out, scale_factor=s, mode=random.choice(["area", "bilinear", "bicubic"]))
        if np.random.uniform() < o["gaussian_noise_prob"]:
            out = d.random_add_gaussian_noise_pt(out, sigma_range=o["noise_range"], clip=True, rounds=False, gray_prob=0.4)
        else:
            out = d.random_add_poisson_noise_pt(out, scale_range=o["poisson_scale_range"], gray_prob=0.4, clip=True, rounds=False)
        q = out.new_zeros(b).uniform_(*o["jpeg_range"])
        out = self.jpeger(torch.clamp(out, 0, 1).contiguous(), quality=q)
        if np.random.uniform() < o["second_blur_prob"]:
            out = f2d(out.contiguous(), k2)
        up = random.choices(["up", "down", "keep"], o["resize_prob2"])[0]
        s = np.random.uniform(1, o["resize_range2"][1]) if up == "up" else np.random.uniform(o["resize_range2"][0], 1) if up == "down" else 1
        out = F.interpolate(out, size=(int(ori_h / 4 * s), int(ori_w / 4 * s)), mode=random.choice(["area", "bilinear", "bicubic"]))
        if np.random.uniform() < o["gaussian_noise_prob2"]:
            out = d.random_add_gaussian_noise_pt(out, sigma_range=o["noise_range2"], clip=True, rounds=False, gray_prob=0.4)
        else:
            out = d.random_add_poisson_noise_pt(out, scale_range=o["poisson_scale_range2"], gray_prob=0.4, clip=True, rounds=False)
        mode = random.choice(["area", "bilinear", "bicubic"])
        if np.random.uniform() < 0.5:
            out = F.interpolate(out, size=(ori_h // 4, ori_w // 4), mode=mode)
            out = f2d(out.contiguous(), sinc)
            q = out.new_zeros(b).uniform_(*o["jpeg_range2"])
            out = self.jpeger(torch.clamp(out, 0, 1).contiguous(), quality=q)
        else:
            q = out.new_zeros(b).uniform_(*o["jpeg_range2"])
            out = self.jpeger(torch.clamp(out, 0, 1).contiguous(), quality=q)
            out = F.interpolate(out, size=(ori_h // 4, ori_w // 4), mode=mode)
            out = f2d(out.contiguous(), sinc)
        return torch.clamp((out * 255.0).round(), 0, 255) / 255.0
