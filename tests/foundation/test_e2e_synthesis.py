"""The whole pipeline with a tiny local Flux model (random weights: the images are noise, the plumbing
is real): build it with the shipped script, run the CLI on configs/tiny-flux-local.yaml, read the shards."""
import json
import subprocess
import sys
import tarfile

import pytest

pytestmark = pytest.mark.slow


def test_tiny_flux_run_end_to_end(tmp_path):
    model = tmp_path / "tiny-flux"
    subprocess.run([sys.executable, "-m", "pairforge.synthesis.tiny", "--family", "flux", "--out", str(model)],
                   check=True, capture_output=True, timeout=300)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "pairforge.cli", "run", "configs/tiny-flux-local.yaml", "--out", str(out),
         "--executor", "local", "--set", f"source.model.id={model}", "--limit", "6"],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    index = json.loads((out / "index.json").read_text())
    assert index["total_inputs"] == 6
    assert index["total_samples"] + sum(index["rejected"].values()) == 6
    assert index["total_samples"] > 0
    with tarfile.open(out / index["shards"][0]["name"]) as tar:
        names = tar.getnames()
        key = names[0].split(".")[0]
        meta = json.loads(tar.extractfile(f"{key}.json").read())
        prompt = tar.extractfile(f"{key}.txt").read().decode()
    assert {f"{key}.hq.png", f"{key}.lq.png", f"{key}.json", f"{key}.txt"} <= set(names)
    syn = meta["synthesis"]
    assert syn["steps"] == 2 and syn["true_cfg_scale"] == 2.0 and syn["negative_prompt"].startswith("blurry")
    assert isinstance(syn["seed"], int) and prompt
    assert meta["hq_size"] in ([64, 64], [64, 96])
