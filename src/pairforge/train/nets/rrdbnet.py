"""RRDBNet (Wang et al., ESRGAN, ECCV-W 2018), the Real-ESRGAN generator (Wang et al., ICCV-W 2021).

Residual-in-residual dense blocks without batch norm: each dense block has five 3x3 convs, each seeing
the concatenation of all earlier features (growth ``num_grow_ch``), LeakyReLU(0.2) after the first four,
and a residual scaled by 0.2; three dense blocks make an RRDB, again with a 0.2-scaled residual. A
trunk conv and a long skip close the body; x4 upsampling is two rounds of nearest-neighbour x2 + conv.
Small initialisation (Kaiming scaled by 0.1) keeps the deep residual stack stable. Real-ESRGAN runs x2
and x1 through the same x4 network by pixel-unshuffling the input by 2 or 4 first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _scaled_kaiming(modules, scale: float) -> None:
    for m in modules:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualDenseBlock(nn.Module):
    def __init__(self, nf: int = 64, gc: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, padding=1) for i in range(5))
        self.act = nn.LeakyReLU(0.2, inplace=True)
        _scaled_kaiming(self.convs, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs[:4]:
            feats.append(self.act(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.convs[4](torch.cat(feats, 1))


class RRDB(nn.Module):
    def __init__(self, nf: int, gc: int = 32):
        super().__init__()
        self.blocks = nn.Sequential(ResidualDenseBlock(nf, gc), ResidualDenseBlock(nf, gc), ResidualDenseBlock(nf, gc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class RRDBNet(nn.Module):
    """x1/x2/x4 super-resolution; input and output in [0, 1]."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, scale: int = 4, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32, residual: str = "none", detail_sigma: float | None = None):
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, not {scale}")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.residual = residual
        self.conv_first = nn.Conv2d(in_ch * self.unshuffle ** 2, num_feat, 3, padding=1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_last = nn.Conv2d(num_feat, out_ch, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        if residual == "bicubic":
            # start exactly at the bicubic baseline and learn the correction
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)
        self.detail_sigma = detail_sigma
        if detail_sigma is not None:
            r = max(1, int(3 * detail_sigma + 0.5))
            t = torch.arange(-r, r + 1, dtype=torch.float32)
            g = torch.exp(-0.5 * (t / detail_sigma) ** 2)
            # a fixed filter, not a weight: kept out of the state dict
            self.register_buffer("lowpass_1d", g / g.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.unshuffle
        ph, pw = (-h) % m, (-w) % m
        feat_in = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        if m > 1:
            feat_in = F.pixel_unshuffle(feat_in, m)
        feat = self.conv_first(feat_in)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.act(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.act(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.act(self.conv_hr(feat)))
        out = out[..., : h * self.scale, : w * self.scale]
        if self.detail_sigma is not None:
            out = out - self._lowpass(out)
        if self.residual == "bicubic":
            up = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
            out = out + up
        return out

    def _lowpass(self, t: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur per channel (replicated borders: works at any size)."""
        k = self.lowpass_1d.to(t.dtype)
        r = k.numel() // 2
        c = t.shape[1]
        t = F.pad(t, (r, r, r, r), mode="replicate")
        t = F.conv2d(t, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(t, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
