"""Start-up (issue 14.1): `pairforge degrade` on the CPU imports no heavy framework it does not use.

Checked through the CLI in a subprocess: the module table at exit, no timing."""
import json
import os
import subprocess
import sys

import pytest

#: matplotlib too: the run report every degrade ends with draws its charts as plain SVG (it cost ~1 s to import
#: and ~2 s to draw them, per command, whatever the run size)
HEAVY = ("torch", "ray", "pyiqa", "transformers", "diffusers", "matplotlib")

PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES=" + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r and '.' not in m))))
sys.argv = ["pairforge", *sys.argv[1:]]
from pairforge.cli import main
main()
""" % (HEAVY,)


def heavy_imports(*args, env: dict | None = None) -> list[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True,
                       env=None if env is None else {**os.environ, **env})
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("MODULES=")), None)
    assert line is not None and r.returncode == 0, r.stderr[-2000:]
    return json.loads(line[len("MODULES="):])


@pytest.fixture(scope="module")
def one_photo(tmp_path_factory):
    import cv2
    import skimage.data as d

    folder = tmp_path_factory.mktemp("one")
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(d.astronaut()[:64, :64], cv2.COLOR_RGB2BGR))
    return folder


def test_degrade_on_the_cpu_imports_no_heavy_framework(one_photo, tmp_path):
    # the simple degrader is OpenCV/numpy only: nothing heavy at all, torch included (device
    # resolution does not import torch for a stage that does not use it)
    assert heavy_imports("degrade", one_photo, tmp_path / "o", "--preset", "simple", "-q") == []


@pytest.mark.parametrize("preset", ["realesrgan", "bsrgan"])
def test_degrade_with_a_chain_preset_on_the_cpu_imports_no_torch(one_photo, tmp_path, preset):
    # the chain's CPU path is numpy/OpenCV end to end (noise from numpy's generator, resizes in OpenCV),
    # and device "auto" resolves to cpu without importing torch where no GPU can exist (hidden here, so
    # that the test means the same on a GPU machine)
    got = heavy_imports("degrade", one_photo, tmp_path / "o", "--preset", preset, "-q", env={"CUDA_VISIBLE_DEVICES": ""})
    assert got == []
    assert list((tmp_path / "o" / "shards").glob("*.tar"))  # it did run: a shard of pairs was written
    assert (tmp_path / "o" / "report.html").exists()  # and the run report with its charts


CHAIN_OPTIONS = """
import json, sys
import numpy as np
from pairforge.degradations.chain import ChainDegradeConfig, preset_names
img = np.random.default_rng(0).integers(0, 256, (67, 93, 3), dtype=np.uint8)
extra = [{"jpeg_backend": "diffjpeg", "lq_size": "hq", "resize_grid": "upstream"}, {"crop": {"size": 32, "when": "before"}},
         {"preset": None, "scale": 2, "ops": [{"op": "resize", "modes": ["nearest", "bilinear"], "antialias": True},
                                             {"op": "subsample", "factor": 2}, {"op": "poisson_noise", "vals_log10_range": [2, 4]},
                                             {"op": "resize_to", "target": "lq", "modes": ["nearest"]}]}]
for over in [{}] + extra:
    for name in preset_names():
        d = ChainDegradeConfig.model_validate({"preset": name, "device": "cpu", **over}).build()
        d.degrade([img, img[:40]], [1, 2])
print("TORCH=" + json.dumps("torch" in sys.modules), "SCIPY=" + json.dumps("scipy" in sys.modules))
"""


def test_every_chain_preset_and_option_runs_on_the_cpu_without_torch():
    """The library path: every preset, both JPEG backends, both grids, crops, nearest, antialiased and
    subsampling resizes and BSRGAN's non-power-of-two Poisson scales run on numpy/OpenCV alone."""
    r = subprocess.run([sys.executable, "-c", CHAIN_OPTIONS], check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "TORCH=false" in r.stdout
    assert "SCIPY=false" in r.stdout  # sinc kernels and Poisson tables need no scipy either (start-up)


def test_cli_help_and_validate_import_nothing_heavy(tmp_path):
    assert heavy_imports("--help") == []
