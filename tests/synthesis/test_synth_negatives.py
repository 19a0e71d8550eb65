"""SUPIR-style negatives are a kind of sample of their own: written as neg.png (never as the HQ of a
pair, never degraded), labelled in the index, refused by the trainer, read by the quality classifier."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from pairforge.config import ConfigError, load_config
from pairforge.filters.imagesets import iter_images
from pairforge.train.shardlist import resolve_shards

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "pairforge.cli"]

CONFIG = """
run: {{name: negatives, seed: 3, num_samples: 4, device: cpu}}
source:
  kind: synthesis
  prompts: {{kind: template, dedup: {{near: false}}}}
  model: {{family: flux, id: {model}, dtype: float32}}
  generation: {{mode: negatives, steps: 1, sizes: [[32, 32]], quality_suffix: "sharp, detailed",
               max_sequence_length: 32}}
  resources: {{num_gpus: 0, num_cpus: 1, batch_size: 2}}
output: {{samples_per_shard: 2}}
"""


@pytest.fixture(scope="module")
def negatives_run(tiny_flux_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("neg")
    cfg = tmp / "neg.yaml"
    cfg.write_text(CONFIG.format(model=tiny_flux_dir))
    out = tmp / "out"
    r = subprocess.run(CLI + ["run", str(cfg), "--out", str(out), "--executor", "local", "-q"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return cfg, out


def test_negatives_are_written_apart_and_never_degraded(negatives_run):
    _cfg, out = negatives_run
    index = json.loads((out / "index.json").read_text())
    assert index["quality"] == "negative" and index["members"][0] == "neg.png"
    assert index["total_samples"] == 4
    names = []
    for entry in index["shards"]:
        with tarfile.open(out / entry["name"]) as tar:
            names += tar.getnames()
    assert names and not any(n.endswith(("hq.png", "lq.png")) for n in names)
    metas = []
    for entry in index["shards"]:
        with tarfile.open(out / entry["name"]) as tar:
            metas += [json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")]
    assert all(m["quality"] == "negative" and "degradation" not in m for m in metas)
    r = subprocess.run(CLI + ["info", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "(negative)" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(CLI + ["verify", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_trainer_refuses_negatives_and_the_classifier_reads_them(negatives_run):
    _cfg, out = negatives_run
    with pytest.raises(ValueError, match="negative-quality images"):
        resolve_shards(str(out))
    images = list(iter_images(str(out)))
    assert len(images) == 4 and images[0][1].shape == (32, 32, 3)


def test_a_degrade_section_with_negatives_is_a_config_error(negatives_run, tmp_path):
    cfg, _out = negatives_run
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text() + "degrade: {kind: chain, preset: realesrgan}\n")
    with pytest.raises(ConfigError, match="never degrades them"):
        load_config(str(bad))
