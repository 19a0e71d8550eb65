"""The `kind: chain` config: presets, the YAML preset files, overrides and error messages."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from pairforge.config import ConfigError, parse_config
from pairforge.degradations.chain import ChainDegradeConfig, preset_dict, preset_names
from pairforge.degradations.chain.presets import preset_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_preset_validates_and_has_its_scale():
    scales = {"realesrgan": 4, "realesrgan-x2": 2, "stablesr": 4, "first-order": 4, "bsrgan": 4, "bsrgan-plus": 4, "web": 1}
    assert set(preset_names()) == set(scales)
    for name, scale in scales.items():
        c = ChainDegradeConfig.model_validate({"preset": name})
        assert c.scale == scale and c.ops, name


def test_realesrgan_preset_is_x4plus_defaults():
    c = ChainDegradeConfig.model_validate({"preset": "realesrgan"})
    b1, b2 = c.op_by_name("blur1").kernel, c.op_by_name("blur2").kernel
    assert b1.kernel_list == ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
    assert b1.kernel_prob == [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    assert b1.sizes == list(range(7, 22, 2)) and b1.sinc_prob == 0.1
    assert b1.sigma_range == (0.2, 3.0) and b2.sigma_range == (0.2, 1.5)
    assert b1.betag_range == (0.5, 4.0) and b1.betap_range == (1.0, 2.0)
    assert b1.sinc_omega_small == pytest.approx((math.pi / 3, math.pi)) and b1.sinc_omega_large == pytest.approx((math.pi / 5, math.pi))
    assert c.op_by_name("blur2").prob == 0.8
    r1, r2 = c.op_by_name("resize1"), c.op_by_name("resize2")
    assert r1.updown_prob == (0.2, 0.7, 0.1) and r1.up_range == (1.0, 1.5) and r1.down_range == (0.15, 1.0)
    assert r2.updown_prob == (0.3, 0.4, 0.3) and r2.up_range == (1.0, 1.2) and r2.down_range == (0.3, 1.0)
    assert r2.relative_to == "lq" and r1.modes == ["area", "bilinear", "bicubic"]
    assert c.op_by_name("noise1").probs == [0.5, 0.5] and c.op_by_name("noise2").probs == [0.5, 0.5]
    assert c.op_by_name("gaussian1").sigma_range == (1, 30) and c.op_by_name("gaussian2").sigma_range == (1, 25)
    assert c.op_by_name("poisson1").scale_range == (0.05, 3.0) and c.op_by_name("poisson2").scale_range == (0.05, 2.5)
    assert all(c.op_by_name(n).gray_prob == 0.4 for n in ("gaussian1", "gaussian2", "poisson1", "poisson2"))
    assert c.op_by_name("jpeg1").quality_range == (30, 95) and c.op_by_name("jpeg2").quality_range == (30, 95)
    fin = c.op_by_name("final")
    assert fin.order == "choice" and fin.choices == [[0, 1, 2], [2, 0, 1]]
    sinc = c.op_by_name("final_sinc")
    assert sinc.prob == 0.8 and sinc.kernel.sinc_prob == 1.0
    assert sinc.kernel.sinc_omega_large == pytest.approx((math.pi / 3, math.pi))
    usm = c.op_by_name("usm")
    assert (usm.weight, usm.radius, usm.threshold, usm.apply_to_hq) == (0.5, 50, 10, False)
    x2 = ChainDegradeConfig.model_validate({"preset": "realesrgan-x2"})
    assert x2.scale == 2 and x2.model_dump(exclude={"preset", "scale", "notes"}) == c.model_dump(exclude={"preset", "scale", "notes"})


@pytest.mark.parametrize("name", preset_names())
def test_preset_yaml_files_are_the_presets(name):
    """configs/degradations/<name>.yaml is the preset written out (regenerate with
    `python -m pairforge.degradations.chain.presets configs/degradations`)."""
    path = ROOT / "configs" / "degradations" / f"{name}.yaml"
    assert path.read_text() == preset_yaml(name)
    from_file = ChainDegradeConfig.model_validate(yaml.safe_load(path.read_text()))
    from_name = ChainDegradeConfig.model_validate({"preset": name})
    assert from_file.model_dump(exclude={"preset"}) == from_name.model_dump(exclude={"preset"})
    via_path = ChainDegradeConfig.model_validate({"preset": str(path)})
    assert via_path.model_dump(exclude={"preset"}) == from_name.model_dump(exclude={"preset"})


def test_overrides_top_level_and_by_op_name():
    c = ChainDegradeConfig.model_validate(
        {"preset": "realesrgan", "scale": 2, "lq_size": "hq", "set": {"gaussian1": {"sigma_range": [1, 20]}, "jpeg2": {"quality_range": [60, 95]},
                                                                        "blur1": {"kernel": {"sinc_prob": 0.0}}}}
    )
    assert c.scale == 2 and c.lq_size == "hq"
    assert c.op_by_name("gaussian1").sigma_range == (1, 20)
    assert c.op_by_name("jpeg2").quality_range == (60, 95)
    assert c.op_by_name("blur1").kernel.sinc_prob == 0.0
    assert c.op_by_name("blur1").kernel.sigma_range == (0.2, 3.0)  # untouched fields keep the preset's value
    # the preset itself is not modified by overrides
    assert preset_dict("realesrgan")["ops"][3]["ops"][0]["sigma_range"] == [1, 30]


def test_resolved_config_round_trips():
    c = ChainDegradeConfig.model_validate({"preset": "bsrgan-plus", "set": {"speckle1": {"prob": 0.3}}})
    again = ChainDegradeConfig.model_validate(c.model_dump(mode="json"))
    assert again == c


def test_in_pipeline_config_with_field_named_errors():
    cfg = parse_config({"degrade": {"kind": "chain", "preset": "stablesr"}})
    assert cfg.degrade.kind == "chain" and cfg.degrade.op_by_name("jpeg2").quality_range == (60, 100)
    with pytest.raises(ConfigError, match="no op named 'gaussian9'"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan", "set": {"gaussian9": {"prob": 1}}}})
    with pytest.raises(ConfigError, match=r"sigma_rnage: unknown key"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan", "set": {"gaussian1": {"sigma_rnage": [1, 2]}}}})
    with pytest.raises(ConfigError, match="unknown preset"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan-x8"}})
    with pytest.raises(ConfigError, match="lo > hi"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan", "set": {"gaussian1": {"sigma_range": [30, 1]}}}})
    with pytest.raises(ConfigError, match="quality_range"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan", "set": {"jpeg1": {"quality_range": [0, 101]}}}})
    with pytest.raises(ConfigError, match="used twice"):
        parse_config({"degrade": {"kind": "chain", "ops": [{"op": "jpeg", "name": "j"}, {"op": "jpeg", "name": "j"}]}})
    with pytest.raises(ConfigError, match="multiple of scale"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan", "crop": {"size": 30}}})
    with pytest.raises(ConfigError, match="not an angle"):
        parse_config({"degrade": {"kind": "chain", "preset": "realesrgan", "set": {"blur1": {"kernel": {"rotation_range": ["tau", "pi"]}}}}})


def test_angles_parse_and_default_names():
    c = ChainDegradeConfig.model_validate(
        {"ops": [{"op": "blur", "kernel": {"rotation_range": ["-pi/2", "2*pi/3"]}}, {"op": "blur"}, {"op": "resize_to"}]}
    )
    assert c.ops[0].kernel.rotation_range == pytest.approx((-math.pi / 2, 2 * math.pi / 3))
    assert [o.name for o in c.ops] == ["blur1", "blur2", "resize_to1"]
