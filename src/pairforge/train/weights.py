"""Pretrained weight files a training config reads (VGG19 for the perceptual loss, LPIPS for the loss or
for validation): where the trainer looks for each, where ``pairforge models pull`` fetches it from.

Why one module: the trainer never downloads (a cluster job must not depend on the network), so a
missing file has to be one clear line naming it and the command that fetches it, and that command must
put the file exactly where the trainer will look (``TORCH_HOME=DIR/torch`` for ``--cache DIR``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pairforge.envutil import temporary_env
from pairforge.errors import ModelLoadError

log = logging.getLogger("pairforge.train")

PULL_HINT = "pairforge models pull CONFIG --cache DIR"


class MissingWeightsError(ModelLoadError):
    """A pretrained weight file the trainer needs is not on disk (one line: the file and how to get it)."""


@dataclass(frozen=True)
class WeightFile:
    what: str  # "vgg19", "lpips-backbone", "lpips-heads"
    path: Path  # where the trainer reads it
    url: str  # where models pull fetches it
    used_by: str  # the config field that needs it


def vgg19_url() -> str:
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def lpips_urls(net: str = "alex") -> list[str]:
    """The torchvision backbone and pyiqa's LPIPS v0.1 linear heads (same order as ``lpips_files``)."""
    from pyiqa.archs.lpips_arch import default_model_urls
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    backbone = AlexNet_Weights.IMAGENET1K_V1.url if net == "alex" else VGG16_Weights.IMAGENET1K_V1.url
    return [backbone, default_model_urls[f"0.1_{net}"]]


def missing_vgg19(path: Path) -> MissingWeightsError:
    return MissingWeightsError(
        f"VGG19 weights for loss.perceptual not found: {path} (training never downloads; fetch it with "
        f"`{PULL_HINT}` and run with TORCH_HOME=DIR/torch, or set loss.perceptual.weights_path)")


def missing_lpips(paths: list[Path], used_by: str = "LPIPS") -> MissingWeightsError:
    return MissingWeightsError(
        f"LPIPS weights for {used_by} not found: {', '.join(str(p) for p in paths)} (training never "
        f"downloads; fetch them with `{PULL_HINT}` and run with TORCH_HOME=DIR/torch)")


def torch_cache_file(url: str, sub: str = "checkpoints") -> Path:
    """Where torch.hub keeps a downloaded file (TORCH_HOME decides)."""
    import torch

    return Path(torch.hub.get_dir()) / sub / os.path.basename(url)


def default_vgg19_file() -> Path:
    from torchvision.models import VGG19_Weights

    return torch_cache_file(VGG19_Weights.IMAGENET1K_V1.url)


def lpips_files(net: str = "alex") -> list[Path]:
    """The local files pyiqa's LPIPS (v0.1) needs: the torchvision backbone and the linear heads."""
    import torch
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    backbone = AlexNet_Weights.IMAGENET1K_V1.url if net == "alex" else VGG16_Weights.IMAGENET1K_V1.url
    heads = f"LPIPS_v0.1_{net}-" + ("df73285e.pth" if net == "alex" else "a78928a0.pth")
    return [torch_cache_file(backbone), Path(torch.hub.get_dir()) / "pyiqa" / heads]


def required_weights(cfg) -> list[WeightFile]:
    """Every pretrained file a TrainConfig reads, at the path the trainer reads it from (which depends on
    TORCH_HOME for the defaults). ``val.lpips: auto`` counts: pulling its files is what turns it on."""
    out: list[WeightFile] = []
    p = cfg.loss.perceptual
    if p is not None and p.kind == "vgg":
        path = Path(p.weights_path) if p.weights_path else default_vgg19_file()
        out.append(WeightFile("vgg19", path, vgg19_url(), "loss.perceptual"))
    nets = []
    if p is not None and p.kind == "lpips":
        nets.append((p.lpips_net, "loss.perceptual"))
    if cfg.val is not None and cfg.val.lpips in ("on", "auto"):
        nets.append(("alex", "val.lpips"))
    seen = set()
    for net, used_by in nets:
        for what, path, url in zip(("lpips-backbone", "lpips-heads"), lpips_files(net), lpips_urls(net)):
            if path not in seen:
                seen.add(path)
                out.append(WeightFile(what, path, url, used_by))
    return out


def _download(url: str, dst: Path) -> None:  # the network boundary (tests replace it)
    from torch.hub import download_url_to_file

    download_url_to_file(url, str(dst), progress=False)


def pull_train_weights(cfg, cache_dir: str | None = None, dry_run: bool = False,
                       fetch: Callable[[str, Path], None] | None = None) -> list[dict]:
    """Fetch the files of :func:`required_weights` that are missing. With ``cache_dir`` the defaults go
    under ``cache_dir/torch`` (run the trainer with ``TORCH_HOME=cache_dir/torch``); an explicit
    ``weights_path`` is filled where it points."""
    env = {"TORCH_HOME": str(Path(cache_dir).expanduser().resolve() / "torch")} if cache_dir else {}
    with temporary_env(**env):
        reqs = required_weights(cfg)
    fetch = fetch or _download
    records = []
    for w in reqs:
        rec = {"what": "train-weights", "id": w.what, "revision": None, "used_by": w.used_by,
               "path": str(w.path), "url": w.url}
        if w.path.is_file():
            rec["status"] = "present"
        elif dry_run:
            rec["status"] = "planned"
        else:
            w.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = w.path.with_name(w.path.name + ".part")
            fetch(w.url, tmp)
            os.replace(tmp, w.path)
            rec["status"] = "ok"
            log.info("pulled %s -> %s", w.url, w.path)
        records.append(rec)
    return records


def is_train_config(data: dict) -> bool:
    """A YAML mapping shaped like a training config (model + data + output) rather than a run config."""
    return isinstance(data, dict) and {"model", "data", "output"} <= set(data) and "source" not in data
