"""Start-up (issue 14.1): `pairforge degrade` on the CPU imports no heavy framework it does not use.

Checked through the CLI in a subprocess: the module table at exit, no timing."""
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "pyiqa", "transformers", "diffusers")

PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES=" + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r and '.' not in m))))
sys.argv = ["pairforge", *sys.argv[1:]]
from pairforge.cli import main
main()
""" % (HEAVY,)


def heavy_imports(*args) -> list[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True)
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


def test_degrade_realesrgan_imports_no_ray_iqa_or_diffusion_stack(one_photo, tmp_path):
    got = heavy_imports("degrade", one_photo, tmp_path / "o", "--preset", "realesrgan", "-q")
    # torch: the chain's CPU path still draws its Gaussian noise with torch's generator and runs area
    # resizes through F.interpolate (the chain engine, not the pipeline, imports it)
    assert set(got) <= {"torch"}


def test_cli_help_and_validate_import_nothing_heavy(tmp_path):
    assert heavy_imports("--help") == []
