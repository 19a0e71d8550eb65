"""The training config: the shipped YAML loads, mistakes are errors that name the field, and the
training library stays free of Ray at import time."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pairforge.config import ConfigError
from pairforge.train.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_train_config_loads():
    cfg = load_train_config(REPO / "configs" / "train-quickstart.yaml")
    assert cfg.model.kind == "rrdbnet" and cfg.model.scale == 4
    assert cfg.data.patch_size % cfg.model.scale == 0
    assert cfg.split is not None and cfg.split.by == "source" and cfg.split.held_out  # whole photos held out
    assert cfg.data.datasets[0].holdout_every is None and cfg.val.holdout_every is None
    # what lets the tiny model beat bicubic on the held-out photos (README): detail-only, photos drawn evenly
    assert cfg.model.residual == "bicubic" and cfg.model.detail_sigma == 4
    assert cfg.data.datasets[0].balance is not None and cfg.data.datasets[0].balance.field == "source.photo"
    # built-in name lookup works too, and overrides apply
    same = load_train_config("train-quickstart", ["train.max_steps=5", "data.batch_size=2"])
    assert same.train.max_steps == 5 and same.data.batch_size == 2


def test_config_errors_name_the_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: {kind: nafnet, widht: 8}\ndata: {datasets: [{name: a, url: x}]}\noutput: {dir: o}\n")
    with pytest.raises(ConfigError, match=r"model\.nafnet\.widht: unknown key"):
        load_train_config(p)
    p.write_text("model: {kind: unet}\ndata: {datasets: [{name: a, url: x}]}\noutput: {dir: o}\n")
    with pytest.raises(ConfigError, match="nafnet.*rrdbnet"):
        load_train_config(p)
    base = {"data": {"datasets": [{"name": "a", "url": "x"}], "patch_size": 30}, "output": {"dir": "o"}}
    with pytest.raises(ValueError, match="multiple of the scale 4"):
        TrainConfig.model_validate({**base, "model": {"kind": "rrdbnet", "scale": 4}})
    with pytest.raises(ValueError, match="scale-1 model"):
        TrainConfig.model_validate({"model": {"kind": "rrdbnet", "scale": 2},
                                    "data": {"datasets": [{"name": "a", "url": "x"}], "lq_upsample": True},
                                    "output": {"dir": "o"}})
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "nope.yaml")


def test_train_library_does_not_import_ray():
    code = ("import sys; import pairforge.train.loop, pairforge.train.data, pairforge.train.restore, "
            "pairforge.train.cli, pairforge.train.launch_ray; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
