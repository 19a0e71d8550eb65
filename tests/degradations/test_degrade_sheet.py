"""``pairforge gallery --degrade-config FILE``: a contact sheet of any degrade config (issue 13.6)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml
from chain_data import photo_crops
from PIL import Image

from pairforge.config import ConfigError
from pairforge.degradations.sheet import degrade_section, degrade_sheet

MIX = {"kind": "mix", "scale": 4, "components": [
    {"name": "chain", "weight": 1, "degrade": {"kind": "chain", "preset": "realesrgan", "device": "cpu"}},
    {"name": "realworld", "weight": 1, "degrade": {"kind": "realworld", "measure_ssim": False}}]}


def test_sheet_draws_hq_then_lqs_per_photo(tmp_path):
    photos = photo_crops(2, (80, 100), seed=1)
    cfg = degrade_section(MIX, "test")
    p = degrade_sheet(photos, cfg, tmp_path / "s.png", columns=3, tile=64, cell=64)
    im = np.asarray(Image.open(p))
    assert im.shape[1] >= 4 * 64 and im.shape[0] >= 2 * 64
    again = degrade_sheet(photos, cfg, tmp_path / "t.png", columns=3, tile=64, cell=64)
    assert np.array_equal(np.asarray(Image.open(again)), im)  # deterministic for a seed


def test_degrade_section_reads_run_configs_and_bare_sections():
    assert degrade_section({"degrade": MIX}, "run.yaml").kind == "mix"
    assert degrade_section({"kind": "chain", "preset": "web"}, "web.yaml").ops
    with pytest.raises(ConfigError, match="neither a degrade"):
        degrade_section({"source": {}}, "x.yaml")
    with pytest.raises(ConfigError, match="degrade"):
        degrade_section({"kind": "chian"}, "x.yaml")


@pytest.mark.slow
def test_gallery_degrade_config_command(tmp_path):
    cfg = tmp_path / "mymix.yaml"
    cfg.write_text(yaml.safe_dump({"degrade": MIX}))
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "gallery", str(tmp_path / "g"), "--degrade-config", str(cfg),
                        "--photos", "coffee,chelsea", "--tile", "64", "--columns", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g" / "mymix.png").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: chain\npreset: nope\n")
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "gallery", str(tmp_path / "g"), "--degrade-config", str(bad),
                        "--photos", "coffee,chelsea"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "nope" in (r.stderr + r.stdout) and "Traceback" not in r.stderr
