"""Restoration networks written from their papers, built from the training config."""
from __future__ import annotations

from torch import nn

from pairforge.train.config import NAFNetConfig, RRDBNetConfig
from pairforge.train.nets.nafnet import NAFNet
from pairforge.train.nets.rrdbnet import RRDBNet
from pairforge.train.nets.unet_disc import UNetDiscriminatorSN

__all__ = ["NAFNet", "RRDBNet", "UNetDiscriminatorSN", "build_generator"]


def build_generator(cfg: NAFNetConfig | RRDBNetConfig) -> nn.Module:
    if isinstance(cfg, NAFNetConfig):
        return NAFNet(3, cfg.width, tuple(cfg.enc_blocks), cfg.middle_blocks, tuple(cfg.dec_blocks),
                      cfg.dw_expand, cfg.ffn_expand, cfg.drop_rate)
    if isinstance(cfg, RRDBNetConfig):
        return RRDBNet(3, 3, cfg.scale, cfg.num_feat, cfg.num_block, cfg.num_grow_ch, cfg.residual,
                       cfg.detail_sigma)
    raise TypeError(f"unknown model config {type(cfg).__name__}")
