"""End to end, as a user runs it: the `pairforge` CLI in a subprocess, on local Ray."""
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

PAIRFORGE = [sys.executable, "-m", "pairforge.cli"]

SMALL = """
run: {name: e2e, seed: 11}
source:
  kind: bundled
  photos: [astronaut, coffee, retina, hubble_deep_field]
  crop: {mode: tiles, size: 96, stride: 96}
filters:
  - {kind: sanity, min_std: 6.0}
  - kind: iqa
    metrics: [{name: piqe, threshold: 60.0}]
degrade: {kind: simple, scale: 2}
output: {samples_per_shard: SPS}
ray: {num_cpus: 2}
"""


def write_cfg(tmp_path, sps=8) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(SMALL.replace("SPS", str(sps)))
    return p


def cli(*args, check=True, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run(PAIRFORGE + list(args), capture_output=True, text=True, env=env, timeout=600, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"pairforge {args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    out = tmp / "out"
    r = cli("run", str(write_cfg(tmp)), "--out", str(out), "--limit", "40")
    return out, r


def test_run_prints_summary_and_writes_dataset(ray_run):
    out, r = ray_run
    assert "pairforge run summary" in r.stdout and "pairs/s" in r.stdout
    assert (out / "report.html").exists() and (out / "README.md").exists() and "run report:" in r.stdout
    index = json.loads((out / "index.json").read_text())
    assert index["total_inputs"] == 40
    assert index["total_samples"] + sum(index["rejected"].values()) == 40
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["run"]["seed"] == 11 and "torch" in run["versions"]
    keys = []
    for s in index["shards"]:
        with tarfile.open(out / s["name"]) as tar:
            keys += sorted({m.name.split(".")[0] for m in tar.getmembers()})
    assert len(keys) == len(set(keys)) == index["total_samples"]


def test_info_and_preview(ray_run, tmp_path):
    out, _ = ray_run
    r = cli("info", str(out))
    assert "complete" in r.stdout and "accepted pairs" in r.stdout
    data = json.loads(cli("info", str(out), "--json").stdout)
    assert data["samples"] == json.loads((out / "index.json").read_text())["total_samples"]
    key = f"{0:010d}"
    meta = json.loads(cli("info", str(out), "--key", key).stdout) if data["samples"] else None
    if meta is not None and "source" in meta:
        assert meta["key"] == key
    png = tmp_path / "sheet.png"
    cli("preview", str(out), "--out", str(png), "--n", "6")
    from PIL import Image

    im = Image.open(png)
    assert im.size[0] > 300 and im.size[1] > 90


def test_shards_load_in_webdataset(ray_run):
    import webdataset as wds

    out, _ = ray_run
    index = json.loads((out / "index.json").read_text())
    urls = [str(out / s["name"]) for s in index["shards"]]
    ds = wds.WebDataset(urls, shardshuffle=False).decode("rgb8")
    n = 0
    for sample in ds:
        assert sample["hq.png"].shape == (96, 96, 3) and sample["lq.png"].shape == (48, 48, 3)
        assert sample["json"]["key"] == sample["__key__"]
        assert "piqe" in sample["json"]["filters"]["iqa"]
        n += 1
    assert n == index["total_samples"]


def test_shards_load_in_hf_datasets(ray_run, tmp_path):
    import datasets

    out, _ = ray_run
    index = json.loads((out / "index.json").read_text())
    files = [str(out / s["name"]) for s in index["shards"]]
    ds = datasets.load_dataset("webdataset", data_files={"train": files}, split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == index["total_samples"]
    row = ds[0]
    assert np.asarray(row["hq.png"]).shape == (96, 96, 3)
    assert row["json"]["key"] == row["__key__"]


def test_shards_load_in_ray_data(ray_run):
    import ray

    out, _ = ray_run
    index = json.loads((out / "index.json").read_text())
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True)
    try:
        ds = ray.data.read_webdataset(str(out / "shards"), file_extensions=["tar"])
        rows = ds.take_all()
    finally:
        ray.shutdown()
    assert len(rows) == index["total_samples"]
    assert rows[0]["hq.png"].shape == (96, 96, 3)


def test_bad_config_is_a_clear_cli_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("run: {seed: 1, colour: red}\n")
    r = cli("validate", str(p), check=False)
    assert r.returncode == 2 and "run.colour" in r.stderr and "unknown key" in r.stderr


def test_validate_prints_plan(tmp_path):
    r = cli("validate", str(write_cfg(tmp_path)))
    assert "source -> sanity -> iqa -> degrade -> writer" in r.stdout and "config OK" in r.stdout


def _shard_state(out: Path) -> dict:
    return {
        int(p.stem.split("-")[1]): json.loads(p.read_text())["sha256"]
        for p in (out / "shards").glob("shard-*.json")
    }


def test_sigkill_mid_run_then_resume_equals_clean_run(tmp_path):
    cfg = write_cfg(tmp_path, sps=2)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    cli("run", str(cfg), "--out", str(clean), "--limit", "40", "--executor", "local", "-q")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(PAIRFORGE + ["run", str(cfg), "--out", str(killed), "--limit", "40", "-q"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((killed / "shards").glob("*.json")) if (killed / "shards").exists() else []) < 3:
        time.sleep(0.05)
        assert proc.poll() is None, "run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    partial = _shard_state(killed)
    assert 0 < len(partial) < 20, "the kill should land mid-run"
    r = cli("run", str(cfg), "--out", str(killed), "--limit", "40")
    assert "resuming" in r.stderr
    assert _shard_state(killed) == _shard_state(clean)
    assert (killed / "index.json").read_text() == (clean / "index.json").read_text()
    leftovers = [p.name for p in (killed / "shards").iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    tars = {p.name for p in (killed / "shards").glob("*.tar")}
    assert tars == {p.name for p in (clean / "shards").glob("*.tar")}
