"""Load public RRDBNet / NAFNet weights (Real-ESRGAN, BasicSR layouts) into the bundled networks.

Why: users already have restorers trained elsewhere (``RealESRGAN_x4plus.pth``, NAFNet's BasicSR
checkpoints) and want to measure them on pairforge data with ``pairforge evaluate``. Those files are
state dicts, sometimes wrapped as ``{"params": ...}`` / ``{"params_ema": ...}`` (BasicSR's saver, EMA
preferred as Real-ESRGAN's inference does), sometimes with a ``module.`` (DataParallel) or ``net_g.``
prefix, and use BasicSR's parameter names. This module unwraps them, recognises the architecture,
infers its hyper-parameters from the tensor shapes and renames the keys to the bundled modules'.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from pairforge.train.config import NAFNetConfig, RRDBNetConfig

#: wrappers BasicSR-style savers put around the weights, in the order they are preferred
WRAPPERS = ("params_ema", "params", "state_dict", "model", "net_g", "generator")
PREFIXES = ("module.", "net_g.", "generator.", "model.")


class StateDictError(ValueError):
    """A weight file that is not an RRDBNet/NAFNet state dict this module can map; says why."""


def unwrap(obj: object, origin: str = "state dict") -> dict[str, torch.Tensor]:
    """The tensor dict inside ``obj`` (params_ema over params, ...), with wrapper prefixes removed."""
    seen = []
    while isinstance(obj, Mapping) and not _is_tensor_dict(obj):
        key = next((k for k in WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            raise StateDictError(f"{origin}: no tensors and none of the wrappers {list(WRAPPERS)} "
                                 f"(top-level keys: {sorted(map(str, obj))[:8]})")
        seen.append(key)
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise StateDictError(f"{origin}: not a state dict (got {type(obj).__name__})")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if sd and all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def _is_tensor_dict(obj: Mapping) -> bool:
    return bool(obj) and sum(isinstance(v, torch.Tensor) for v in obj.values()) >= max(1, len(obj) // 2)


def detect_architecture(sd: Mapping[str, torch.Tensor]) -> str:
    if "conv_first.weight" in sd and any(k.startswith("body.") for k in sd) and "conv_last.weight" in sd:
        return "rrdbnet"
    if "intro.weight" in sd and "ending.weight" in sd:
        return "nafnet"
    raise StateDictError("neither an RRDBNet (conv_first/body/conv_last) nor a NAFNet (intro/ending) "
                         f"state dict; first keys: {sorted(sd)[:6]}")


# --------------------------------------------------------------------------------------------- RRDBNet
_RDB_BASICSR = re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$")
_RDB_OURS = re.compile(r"^body\.(\d+)\.blocks\.([012])\.convs\.([0-4])\.(weight|bias)$")


def rrdbnet_config(sd: Mapping[str, torch.Tensor], residual: str = "none") -> RRDBNetConfig:
    """RRDBNet hyper-parameters from the shapes: width, blocks, growth, and the scale from the input
    channels of conv_first (3: x4, 12: x2 after pixel-unshuffle by 2, 48: x1 after unshuffle by 4)."""
    w = sd["conv_first.weight"]
    num_feat, in_ch = int(w.shape[0]), int(w.shape[1])
    scale = {3: 4, 12: 2, 48: 1}.get(in_ch)
    if scale is None:
        raise StateDictError(f"RRDBNet conv_first takes {in_ch} channels; expected 3 (x4), 12 (x2) or 48 (x1)")
    blocks = {int(m.group(1)) for k in sd if (m := _RDB_BASICSR.match(k) or _RDB_OURS.match(k))}
    if not blocks:
        raise StateDictError("RRDBNet state dict without body.N.rdbK.convJ (or body.N.blocks.K.convs.J) weights")
    grow = sd.get("body.0.rdb1.conv1.weight", sd.get("body.0.blocks.0.convs.0.weight"))
    return RRDBNetConfig(scale=scale, num_feat=num_feat, num_block=max(blocks) + 1,
                         num_grow_ch=int(grow.shape[0]), residual=residual)


def rrdbnet_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        m = _RDB_BASICSR.match(k)
        if m:
            i, rdb, conv, kind = m.groups()
            k = f"body.{i}.blocks.{int(rdb) - 1}.convs.{int(conv) - 1}.{kind}"
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------- NAFNet
_NAF_BLOCK = {"conv1": "expand", "conv2": "depthwise", "conv3": "project", "conv4": "ffn_in", "conv5": "ffn_out"}
_NAF_KEY = re.compile(r"^(encoders\.\d+|decoders\.\d+|middle_blks|middle)\.(\d+)\.(\w+)\.(.+)$")


def nafnet_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if k.startswith("middle_blks."):
            k = "middle." + k[len("middle_blks."):]
        m = _NAF_KEY.match(k)
        if m:
            group, j, part, rest = m.groups()
            k = f"{group}.{j}.{_NAF_BLOCK.get(part, part)}.{rest}"
        out[k] = v
    return out


def nafnet_config(sd: Mapping[str, torch.Tensor]) -> NAFNetConfig:
    """NAFNet hyper-parameters from the (already renamed) keys and shapes."""
    width = int(sd["intro.weight"].shape[0])

    def count(prefix: str) -> list[int]:
        levels: dict[int, set[int]] = {}
        for k in sd:
            m = re.match(rf"^{prefix}\.(\d+)\.(\d+)\.", k)
            if m:
                levels.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        n_levels = 1 + max((int(m.group(1)) for k in sd if (m := re.match(rf"^{prefix}\.(\d+)\.", k))), default=-1)
        return [len(levels.get(i, ())) for i in range(n_levels)]

    enc, dec = count("encoders"), count("decoders")
    middle = {int(m.group(1)) for k in sd if (m := re.match(r"^middle\.(\d+)\.", k))}
    first = next((k[: -len(".expand.weight")] for k in sorted(sd) if k.endswith(".expand.weight")), None)
    dw = ffn = 2
    if first is not None:
        c = int(sd[first + ".expand.weight"].shape[1])
        dw = int(sd[first + ".expand.weight"].shape[0]) // c
        ffn = int(sd[first + ".ffn_in.weight"].shape[0]) // c
    if len(enc) != len(dec):
        raise StateDictError(f"NAFNet with {len(enc)} encoder and {len(dec)} decoder levels")
    return NAFNetConfig(width=width, enc_blocks=enc, middle_blocks=len(middle), dec_blocks=dec,
                        dw_expand=dw, ffn_expand=ffn)


# ----------------------------------------------------------------------------------------------- entry
def convert_state_dict(obj: object, origin: str = "state dict", residual: str = "none"
                       ) -> tuple[NAFNetConfig | RRDBNetConfig, dict[str, torch.Tensor]]:
    """(model config, state dict in the bundled networks' names) of a Real-ESRGAN/BasicSR weight file's
    content. ``residual`` is the RRDBNet's (public checkpoints have none; the bundled trainer's may)."""
    sd = unwrap(obj, origin)
    arch = detect_architecture(sd)
    if arch == "rrdbnet":
        cfg = rrdbnet_config(sd, residual)
        return cfg, rrdbnet_keys(sd)
    sd = nafnet_keys(sd)
    return nafnet_config(sd), sd


def load_state_dict_file(path: str | Path, residual: str = "none"):
    """Build the network a weight file (.pth/.pt/.safetensors) holds and load it strictly.

    Returns (model config, module in eval mode)."""
    from pairforge.train.nets import build_generator

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj = load_file(str(path))
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    cfg, sd = convert_state_dict(obj, str(path), residual)
    model = build_generator(cfg)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise StateDictError(f"{path}: the weights do not fit a {cfg.kind} of the inferred shape "
                             f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    return cfg, model.eval()
