"""Training losses: pixel (L1 / Charbonnier), perceptual (VGG19 features or LPIPS), vanilla GAN.

Pretrained weights are only ever read from local files: a missing file is a one-line error that names
the file and ``pairforge models pull`` (:mod:`pairforge.train.weights`), never a download mid-run.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pairforge.train.config import PerceptualLossConfig, PixelLossConfig
from pairforge.train.weights import default_vgg19_file, lpips_files, missing_lpips, missing_vgg19

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PixelLoss(nn.Module):
    def __init__(self, cfg: PixelLossConfig):
        super().__init__()
        self.kind, self.eps = cfg.kind, cfg.eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return F.l1_loss(pred, target)
        return torch.sqrt((pred - target).pow(2) + self.eps ** 2).mean()


def vgg19_layer_names() -> list[str]:
    """Names of torchvision's ``vgg19().features`` modules: conv1_1, relu1_1, ..., pool5."""
    from torchvision.models.vgg import cfgs

    names, block, i = [], 1, 1
    for v in cfgs["E"]:
        if v == "M":
            names.append(f"pool{block}")
            block, i = block + 1, 1
        else:
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
            i += 1
    return names




class VGGFeatures(nn.Module):
    """Frozen VGG19 features up to the deepest requested layer, from a local state dict."""

    def __init__(self, layers: list[str], weights_path: str | None = None, input_norm: bool = True):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        names = vgg19_layer_names()
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; allowed: {names}")
        path = Path(weights_path) if weights_path else default_vgg19_file()
        if not path.is_file():
            raise missing_vgg19(path)
        depth = max(names.index(n) for n in layers) + 1
        features = make_layers(cfgs["E"])[:depth]
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        sub = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not sub:
            sub = dict(state)
        wanted = features.state_dict().keys()
        missing = [k for k in wanted if k not in sub]
        if missing:
            raise ValueError(f"{path}: not a VGG19 state dict (missing {missing[:4]})")
        features.load_state_dict({k: sub[k] for k in wanted})
        for i, m in enumerate(features):
            if isinstance(m, nn.ReLU):
                features[i] = nn.ReLU(inplace=False)  # keep the pre-activation outputs intact
        self.features = features.eval().requires_grad_(False)
        self.layer_index = {names.index(n): n for n in layers}
        self.input_norm = input_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # always frozen, always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self.layer_index:
                out[self.layer_index[i]] = x
        return out




def lpips_missing(net: str = "alex") -> list[Path]:
    try:
        import pyiqa  # noqa: F401
    except Exception:  # pragma: no cover - pyiqa is a dependency
        return [Path("<pyiqa not installed>")]
    return [p for p in lpips_files(net) if not p.is_file()]


def build_lpips(net: str = "alex", used_by: str = "LPIPS") -> nn.Module:
    """pyiqa's LPIPS from local files only (raises MissingWeightsError naming what is missing)."""
    missing = lpips_missing(net)
    if missing:
        raise missing_lpips(missing, used_by)
    from pyiqa.archs.lpips_arch import LPIPS

    model = LPIPS(pretrained=True, net=net, version="0.1", pretrained_model_path=str(lpips_files(net)[1]))
    return model.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 features (Real-ESRGAN's perceptual loss), or LPIPS."""

    def __init__(self, cfg: PerceptualLossConfig):
        super().__init__()
        self.kind = cfg.kind
        self.weights = dict(cfg.layers)
        if cfg.kind == "vgg":
            self.net = VGGFeatures(list(self.weights), cfg.weights_path)
        else:
            self.net = build_lpips(cfg.lpips_net, "loss.perceptual")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "lpips":
            return self.net(pred, target, normalize=True).mean()
        fp = self.net(pred)
        with torch.no_grad():
            ft = self.net(target.detach())
        return sum(w * F.l1_loss(fp[k], ft[k]) for k, w in self.weights.items())


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss (binary cross-entropy on logits) against an all-real or all-fake target."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)
