"""The U-Net discriminator with spectral normalisation of Real-ESRGAN (Wang et al., ICCV-W 2021).

A per-pixel real/fake map instead of one score: three stride-2 4x4 convs down, bilinear x2 + 3x3 conv
up with additive skips, two more convs and a 1-channel output. Spectral norm on every conv except the
first and last keeps the stronger discriminator stable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class UNetDiscriminatorSN(nn.Module):
    def __init__(self, in_ch: int = 3, num_feat: int = 64):
        super().__init__()
        nf = num_feat
        self.conv0 = nn.Conv2d(in_ch, nf, 3, padding=1)
        self.down1 = spectral_norm(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.down2 = spectral_norm(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.down3 = spectral_norm(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.up1 = spectral_norm(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.up2 = spectral_norm(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.up3 = spectral_norm(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    @staticmethod
    def _act(x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"UNetDiscriminatorSN needs sides divisible by 8, got {tuple(x.shape[-2:])}")
        a = self._act
        x0 = a(self.conv0(x))
        x1 = a(self.down1(x0))
        x2 = a(self.down2(x1))
        x3 = a(self.down3(x2))
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
        x4 = a(self.up1(up(x3))) + x2
        x5 = a(self.up2(up(x4))) + x1
        x6 = a(self.up3(up(x5))) + x0
        out = a(self.conv7(x6))
        out = a(self.conv8(out))
        return self.conv9(out)
