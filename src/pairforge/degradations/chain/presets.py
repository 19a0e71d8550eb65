"""Named chain presets: plain config dicts (the same shape a user writes in YAML).

``configs/degradations/<name>.yaml`` holds each of them as an editable file (a test keeps those files
equal to these dicts). Sources of the numbers: Real-ESRGAN ``train_realesrgan_x4plus.yml`` /
``x2plus``, StableSR ``v2-finetune_text_T_512.yaml``, ResShift-style first-order use of the same chain,
BSRGAN ``degradation_bsrgan`` / ``degradation_bsrgan_plus`` and RealRestorer's web-style chain; the
deviations from the originals are listed in each preset's ``notes``.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

SIZES = list(range(7, 22, 2))
ALL_KERNELS = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
KERNEL_PROB = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
MODES = ["area", "bilinear", "bicubic"]


def _kernel(sigma, betag=(0.5, 4.0), betap=(1.0, 2.0), sinc_prob=0.1) -> dict:
    return {
        "sizes": SIZES,
        "sinc_prob": sinc_prob,
        "sinc_omega_small": ["pi/3", "pi"],
        "sinc_omega_large": ["pi/5", "pi"],
        "sinc_small_below": 13,
        "kernel_list": ALL_KERNELS,
        "kernel_prob": KERNEL_PROB,
        "sigma_range": list(sigma),
        "rotation_range": ["-pi", "pi"],
        "betag_range": list(betag),
        "betap_range": list(betap),
    }


def _noise(i: int, sigma, poisson, gray=0.4, gaussian_prob=0.5) -> dict:
    return {
        "op": "one_of",
        "name": f"noise{i}",
        "probs": [gaussian_prob, 1 - gaussian_prob],
        "ops": [
            {"op": "gaussian_noise", "name": f"gaussian{i}", "sigma_range": list(sigma), "gray_prob": gray},
            {"op": "poisson_noise", "name": f"poisson{i}", "scale_range": list(poisson), "gray_prob": gray},
        ],
    }


def _final(jpeg2) -> dict:
    return {
        "op": "sequence",
        "name": "final",
        "order": "choice",
        # [resize to LQ, sinc, JPEG] or [JPEG, resize to LQ, sinc] (other orders give twisted lines upstream)
        "choices": [[0, 1, 2], [2, 0, 1]],
        "ops": [
            {"op": "resize_to", "name": "resize_final", "target": "lq", "modes": MODES},
            {
                "op": "blur",
                "name": "final_sinc",
                "prob": 0.8,
                "kernel": {"sizes": SIZES, "sinc_prob": 1.0, "sinc_omega_small": ["pi/3", "pi"], "sinc_omega_large": ["pi/3", "pi"]},
            },
            {"op": "jpeg", "name": "jpeg2", "quality_range": list(jpeg2)},
        ],
    }


def _realesrgan(scale=4, *, resize1=(0.15, 1.5), noise1=(1, 30), poisson1=(0.05, 3.0), jpeg1=(30, 95), sigma1=(0.2, 3.0),
                betag1=(0.5, 4.0), betap1=(1.0, 2.0), blur2_prob=0.8, resize2=(0.3, 1.2), noise2=(1, 25), poisson2=(0.05, 2.5),
                jpeg2=(30, 95), sigma2=(0.2, 1.5), betag2=(0.5, 4.0), betap2=(1.0, 2.0), second_order=True) -> dict:
    ops = [
        {"op": "usm", "name": "usm", "weight": 0.5, "radius": 50, "threshold": 10},
        {"op": "blur", "name": "blur1", "kernel": _kernel(sigma1, betag1, betap1)},
        {"op": "resize", "name": "resize1", "updown_prob": [0.2, 0.7, 0.1], "up_range": [1.0, resize1[1]],
         "down_range": [resize1[0], 1.0], "modes": MODES, "relative_to": "current"},
        _noise(1, noise1, poisson1),
        {"op": "jpeg", "name": "jpeg1", "quality_range": list(jpeg1)},
    ]
    if second_order:
        ops += [
            {"op": "blur", "name": "blur2", "prob": blur2_prob, "kernel": _kernel(sigma2, betag2, betap2)},
            {"op": "resize", "name": "resize2", "updown_prob": [0.3, 0.4, 0.3], "up_range": [1.0, resize2[1]],
             "down_range": [resize2[0], 1.0], "modes": MODES, "relative_to": "lq"},
            _noise(2, noise2, poisson2),
        ]
    ops.append(_final(jpeg2))
    return {"scale": scale, "lq_size": "native", "ops": ops}


def _bsrgan_blur_ranges(sf: int) -> dict:
    return {"sigma_range": [0.0, 2.0 + 0.2 * sf], "aniso_variance_range": [0.0, 4.0 + sf]}


def _bsrgan_blur(name: str, sf: int = 4, by_scale: dict | None = None) -> dict:
    # add_blur: 50% aniso Gaussian (variances U(0, 4+sf), theta U(0, pi)), 50% iso sigma (2+0.2sf)*U(0,1);
    # size 2*randint(2, 11)+3 for both
    out = {
        "op": "blur",
        "name": name,
        "kernel": {
            "sizes": list(range(7, 26, 2)),
            "sinc_prob": 0.0,
            "kernel_list": ["iso", "aniso"],
            "kernel_prob": [0.5, 0.5],
            "sigma_range": [0.0, 2.0 + 0.2 * sf],
            "aniso_variance_range": [0.0, 4.0 + sf],
            "rotation_range": [0.0, "pi"],
        },
    }
    if by_scale:
        out["by_scale"] = by_scale
    return out


def _bsrgan_noise(name: str, multiplicative: bool = False, prob: float = 1.0) -> dict:
    return {"op": "gaussian_noise", "name": name, "prob": prob, "sigma_range": [2, 25], "integer_sigma": True,
            "gray_prob": 0.4, "correlated_prob": 0.2, "multiplicative": multiplicative}


def _bsrgan(sf: int = 4) -> dict:
    # after the p=0.25 half-size pre-shrink upstream continues with sf 2: the sf-dependent ranges switch
    half = sf // 2
    blur_half = {half: {"kernel": _bsrgan_blur_ranges(half)}}
    return {
        "scale": sf,
        "lq_size": "native",
        "ops": [
            {"op": "resize_to", "name": "prescale", "prob": 0.25, "target": 0.5, "modes": MODES},
            {
                "op": "sequence",
                "name": "shuffled",
                "order": "shuffle",
                "keep_before": [[2, 3]],
                "ops": [
                    _bsrgan_blur("blur1", sf, blur_half),
                    _bsrgan_blur("blur2", sf, blur_half),
                    {
                        "op": "one_of",
                        "name": "downsample",
                        "probs": [0.75, 0.25],
                        "ops": [
                            {"op": "resize", "name": "downsample_resize", "updown_prob": [0, 1, 0],
                             "down_range": [1.0 / (2 * sf), 1.0], "down_draw": "reciprocal", "modes": MODES,
                             "min_lq_fraction": 0.5, "by_scale": {half: {"down_range": [1.0 / (2 * half), 1.0]}}},
                            {"op": "subsample", "name": "downsample_shifted", "factor": sf, "kernel_size": 25,
                             "sigma_range": [0.1, 0.6 * sf],
                             "by_scale": {half: {"factor": half, "sigma_range": [0.1, 0.6 * half]}}},
                        ],
                    },
                    {"op": "resize_to", "name": "resize_lq", "target": "lq", "modes": MODES},
                    _bsrgan_noise("gaussian"),
                    {"op": "jpeg", "name": "jpeg", "prob": 0.9, "quality_range": [30, 95], "integer_quality": True},
                ],
            },
            {"op": "jpeg", "name": "jpeg_final", "quality_range": [30, 95], "integer_quality": True},
        ],
    }


def _bsrgan_plus(sf: int = 4) -> dict:
    resize = lambda name: {"op": "resize", "name": name, "updown_prob": [0.2, 0.7, 0.1], "up_range": [1.0, 2.0],
                           "down_range": [0.5 / sf, 1.0], "modes": MODES}
    poisson = lambda name: {"op": "poisson_noise", "name": name, "prob": 0.1, "scale_range": [1.0, 1.0],
                            "gray_prob": 0.5, "vals_log10_range": [2.0, 4.0]}
    jpeg = {"op": "jpeg", "name": "jpeg1", "quality_range": [30, 95], "integer_quality": True}
    return {
        "scale": sf,
        "lq_size": "native",
        "ops": [
            {"op": "usm", "name": "usm", "weight": 0.5, "radius": 50, "threshold": 10, "apply_to_hq": True},
            {
                "op": "sequence",
                "name": "shuffled",
                "order": "shuffle",
                "shuffle_prob": 0.5,
                # when not fully shuffled: each stage's noise ops in random order, the rest as listed
                "local_shuffle": [[2, 3, 4], [8, 9, 10]],
                "ops": [
                    _bsrgan_blur("blur1", sf), resize("resize1"), _bsrgan_noise("gaussian1"), poisson("poisson1"),
                    _bsrgan_noise("speckle1", multiplicative=True, prob=0.1), jpeg,
                    _bsrgan_blur("blur2", sf), resize("resize2"), _bsrgan_noise("gaussian2"), poisson("poisson2"),
                    _bsrgan_noise("speckle2", multiplicative=True, prob=0.1),
                ],
            },
            {"op": "resize_to", "name": "resize_lq", "target": "lq", "modes": MODES},
            {"op": "jpeg", "name": "jpeg_final", "quality_range": [30, 95], "integer_quality": True},
        ],
    }


def _web() -> dict:
    return {
        "scale": 1,
        "lq_size": "native",
        "ops": [
            {"op": "resize", "name": "downscale", "updown_prob": [0, 1, 0], "down_range": [0.5, 0.9],
             "small_image_side": 512, "small_image_down_range": [0.8, 1.0], "modes": MODES},
            {"op": "blur", "name": "blur", "prob": 0.6, "kernel": {"sizes": [3, 5], "sinc_prob": 0.0, "kernel_list": ["iso"],
                                                                   "kernel_prob": [1.0], "sigma_range": [0.1, 1.2]}},
            {"op": "gaussian_noise", "name": "noise", "prob": 0.5, "sigma_range": [1, 10], "gray_prob": 0.0},
            {
                "op": "one_of",
                "name": "jpeg",
                "probs": [0.2, 0.8],
                "ops": [
                    {"op": "jpeg", "name": "jpeg_low", "quality_range": [40, 60]},
                    {"op": "jpeg", "name": "jpeg_high", "quality_range": [60, 95]},
                ],
            },
            {"op": "resize_to", "name": "resize_back", "target": "hq", "modes": ["bilinear", "bicubic"]},
        ],
    }


_NOTES = {
    "realesrgan": "Real-ESRGAN x4plus high-order chain (train_realesrgan_x4plus.yml defaults).",
    "realesrgan-x2": "Real-ESRGAN x2plus: the x4plus chain at scale 2.",
    "stablesr": "StableSR's milder second-order settings (v2-finetune_text_T_512.yaml).",
    "first-order": "Real-ESRGAN's first stage plus the final resize/sinc/JPEG step, second stage off (ResShift style).",
    "bsrgan": (
        "BSRGAN degradation_bsrgan (sf 4): shuffled blur/blur/downsample/resize-to-LQ/noise/JPEG(p 0.9) and a final "
        "JPEG; after the p=0.25 half-size prescale the later ops use the sf-2 ranges (by_scale), as upstream does, "
        "and no resize goes below half the LQ size. Deviations: resizes use torch area/bilinear/bicubic instead of "
        "OpenCV's; the shifted-kernel downsampler evaluates the shifted Gaussian exactly instead of bilinear re-sampling; no camera ISP."
    ),
    "bsrgan-plus": (
        "BSRGAN degradation_bsrgan_plus (sf 4): USM (also applied to the returned HQ), 11 ops shuffled fully with "
        "p 0.5 else with locally shuffled noise groups, then resize to LQ and a final JPEG. No camera ISP; "
        "Poisson noise is added to the unquantised image."
    ),
    "web": "RealRestorer web-style chain: downscale, light blur, light noise, JPEG, resize back (scale 1).",
}


def _build() -> dict[str, dict]:
    stablesr = _realesrgan(
        resize1=(0.3, 1.5), noise1=(1, 15), poisson1=(0.05, 2.0), jpeg1=(60, 95), sigma1=(0.2, 1.5), betag1=(0.5, 2.0),
        betap1=(1.0, 1.5), blur2_prob=0.5, resize2=(0.6, 1.2), noise2=(1, 12), poisson2=(0.05, 1.0), jpeg2=(60, 100),
        sigma2=(0.2, 1.0), betag2=(0.5, 2.0), betap2=(1.0, 1.5),
    )
    presets = {
        "realesrgan": _realesrgan(4),
        "realesrgan-x2": _realesrgan(2),
        "stablesr": stablesr,
        "first-order": _realesrgan(4, second_order=False),
        "bsrgan": _bsrgan(4),
        "bsrgan-plus": _bsrgan_plus(4),
        "web": _web(),
    }
    for name, p in presets.items():
        p["notes"] = _NOTES[name]
    return presets


PRESETS: dict[str, dict] = _build()


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset_dict(name: str) -> dict:
    """A fresh copy of a preset (safe to edit)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    return copy.deepcopy(PRESETS[name])


def preset_yaml(name: str) -> str:
    """A preset as an editable YAML document (what configs/degradations/<name>.yaml holds)."""
    import yaml

    body = {"kind": "chain", **preset_dict(name)}
    head = (
        f"# pairforge degradation chain: preset '{name}' written out in full. Copy and edit, then use it as\n"
        f"#   degrade: {{kind: chain, preset: path/to/this.yaml}}   (optionally with set: / top-level overrides)\n"
        f"# or paste these keys under degrade: in a run config. Generated from pairforge.degradations.chain.presets;\n"
        f"# angles may be written as pi, pi/3, -pi, 2*pi/3.\n"
    )
    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data):  # write shared lists out in full: the file is for people
            return True

    return head + yaml.dump(body, Dumper=_NoAliases, sort_keys=False, default_flow_style=None, width=110)


def load_preset(ref: str) -> dict:
    """A preset by name, or a YAML file holding a chain (a copied and edited preset)."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        import yaml

        p = Path(ref)
        if not p.exists():
            raise ValueError(f"preset file not found: {ref}")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{ref}: a chain preset file must hold a mapping")
        data.pop("preset", None)
        return data
    return preset_dict(ref)


def main(argv: list[str] | None = None) -> None:
    """python -m pairforge.degradations.chain.presets [OUT_DIR]: write every preset as OUT_DIR/<name>.yaml
    (default: the package's configs/degradations)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        out = Path(args[0])
    else:
        from pairforge.named_configs import configs_root

        out = configs_root() / "degradations"
    out.mkdir(parents=True, exist_ok=True)
    for name in preset_names():
        (out / f"{name}.yaml").write_text(preset_yaml(name))
        print(out / f"{name}.yaml")


if __name__ == "__main__":
    main()
