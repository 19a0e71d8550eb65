"""`bench/gpu.py --smoke`: the GPU proof script runs every section end to end at toy sizes on the CPU,
so the day a GPU is lent the one prepared command works."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_bench_smoke_runs_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--out", str(out)],
                       capture_output=True, text=True, timeout=1500, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    secs = res["sections"]
    assert set(secs) == {"flux", "sdxl", "pipeline", "chain", "iqa", "trainer"}
    assert all(s["status"] == "ok" for s in secs.values()), {k: s["status"] for k, s in secs.items()}
    flux = secs["flux"]["flux_guidance_distilled"]["1"]
    assert flux["s_per_forward"] > 0 and flux["gflops_per_forward"] > 0
    assert secs["flux"]["flux_true_cfg"]["1"]["s_per_image"] == pytest.approx(2 * flux["s_per_image"], rel=0.01)
    assert secs["sdxl"]["sdxl_cfg"]["1"]["images_per_hour"] > 0
    assert secs["pipeline"]["pipeline"]["samples"] == 4
    assert secs["chain"]["chain_parity_psnr_db"]["min"] > 40  # same parameters, same device: identical
    assert secs["iqa"]["iqa"]["piqe"]["images_per_s"] > 0
    assert set(secs["trainer"]["trainer"]) == {"rrdbnet_x4", "nafnet"}
    assert secs["trainer"]["trainer_loader"]["samples_per_s"] > 0
    md = out.with_suffix(".md").read_text()
    assert "| flux | flux_guidance_distilled | 1 |" in md and "smoke" in md
