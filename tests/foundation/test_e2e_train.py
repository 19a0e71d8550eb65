"""From pipeline output to a trained model and a restored image, as the README shows it, via the CLI."""
import subprocess
import sys

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def cli(*args):
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", *args], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"pairforge {args}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def test_run_then_train_then_restore(tmp_path):
    run = tmp_path / "run"
    # training photos first, then a tile of a held-out one (the quickstart trainer holds out astronaut, coffee)
    cli("run", "configs/quickstart.yaml", "--out", str(run), "--executor", "local", "--limit", "48", "-q",
        "--set", "source.crop.size=96", "--set", "source.crop.stride=96",
        "--set", "source.photos=[chelsea,rocket,astronaut]")
    train = tmp_path / "train"
    cli("train", "configs/train-quickstart.yaml",
        "--set", f"data.datasets.0.url={run}", "--set", f"val.url={run}", "--set", f"output.dir={train}",
        "--set", "train.max_steps=12", "--set", "train.ckpt_every=6", "--set", "val.every=12",
        "--set", "val.crop=96", "--set", "data.patch_size=64", "--set", "data.num_workers=0",
        "--set", "val.max_samples=4")
    assert (train / "metrics.csv").exists() and (train / "val.csv").exists()
    ckpts = sorted((train / "checkpoints").glob("ckpt-*.pt"))
    assert ckpts
    lq = tmp_path / "lq.png"
    Image.new("RGB", (24, 20), (120, 60, 30)).save(lq)
    out = tmp_path / "restored.png"
    cli("restore", "--checkpoint", str(train), str(lq), str(out))
    assert Image.open(out).size == (96, 80)
