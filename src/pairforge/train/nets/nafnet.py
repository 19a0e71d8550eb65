"""NAFNet (Chen, Chu, Zhang, Sun: "Simple Baselines for Image Restoration", ECCV 2022), from the paper.

A U-Net of NAF blocks: LayerNorm -> 1x1 conv (expand) -> 3x3 depthwise conv -> SimpleGate (split the
channels in two halves and multiply them) -> simplified channel attention (global average pool, 1x1
conv, multiply) -> 1x1 conv, added to the input with a learned per-channel scale that starts at zero;
then a gated feed-forward part with the same residual form. Downsampling is a 2x2 stride-2 conv that
doubles the channels, upsampling a 1x1 conv + pixel shuffle that halves them, skips are added, and the
network predicts a residual over its input image. No nonlinear activation functions anywhere.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel (NCHW), with a per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, drop_rate: float = 0.0):
        super().__init__()
        dw = c * dw_expand
        ffn = c * ffn_expand
        self.norm1 = LayerNorm2d(c)
        self.expand = nn.Conv2d(c, dw, 1)
        self.depthwise = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.project = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.ffn_in = nn.Conv2d(c, ffn, 1)
        self.ffn_out = nn.Conv2d(ffn // 2, c, 1)
        self.drop1 = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.drop2 = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.gate(self.depthwise(self.expand(self.norm1(inp))))
        x = self.project(x * self.sca(x))
        y = inp + self.drop1(x) * self.beta
        x = self.ffn_out(self.gate(self.ffn_in(self.norm2(y))))
        return y + self.drop2(x) * self.gamma


class NAFNet(nn.Module):
    """Same-size restoration (denoise, deblur, artefact removal); input and output in [0, 1]."""

    scale = 1

    def __init__(self, in_ch: int = 3, width: int = 32, enc_blocks=(2, 2, 4, 8), middle_blocks: int = 12,
                 dec_blocks=(2, 2, 2, 2), dw_expand: int = 2, ffn_expand: int = 2, drop_rate: float = 0.0):
        super().__init__()
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError("enc_blocks and dec_blocks need the same number of levels")
        blk = dict(dw_expand=dw_expand, ffn_expand=ffn_expand, drop_rate=drop_rate)
        self.intro = nn.Conv2d(in_ch, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_ch, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.ups = nn.ModuleList(), nn.ModuleList()
        chan = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan, **blk) for _ in range(n)]))
            self.downs.append(nn.Conv2d(chan, chan * 2, 2, stride=2))
            chan *= 2
        self.middle = nn.Sequential(*[NAFBlock(chan, **blk) for _ in range(middle_blocks)])
        for n in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan, **blk) for _ in range(n)]))
        self.multiple = 2 ** len(enc_blocks)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        h, w = inp.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        x_in = F.pad(inp, (0, pw, 0, ph)) if ph or pw else inp
        x = self.intro(x_in)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for dec, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = dec(up(x) + skip)
        x = self.ending(x) + x_in
        return x[..., :h, :w]
