"""The training loop end to end on CPU: it learns (beats the do-nothing baseline), a SIGKILLed run resumes
on the same trajectory, two-process DDP (gloo) runs, and restore applies the result."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from train_shardkit import RRDB_TINY_X2, make_config, read_csv

from pairforge.train.checkpoint import (
    clean_temporaries,
    find_latest,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from pairforge.train.config import TrainConfig
from pairforge.train.loop import run_training


def loss_dropped(rows: list[dict], n: int, factor: float) -> bool:
    """The mean logged loss of the last ``n`` rows is below ``factor`` x that of the first ``n``."""
    losses = [float(r["loss"]) for r in rows]
    return np.mean(losses[-n:]) < factor * np.mean(losses[:n])


# ------------------------------------------------------------------------------------------- learning
def test_denoising_nafnet_beats_identity(denoise_data, tmp_path):
    train, val = denoise_data
    cfg = TrainConfig.model_validate(make_config(tmp_path / "run", train, val_url=val,
                                                 data={"num_workers": 0}, output={"tensorboard": "on"}))
    res = run_training(cfg)
    assert res.step == 150 and res.checkpoint.name == "ckpt-00000150.pt"
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(5, 155, 5))
    assert loss_dropped(rows, 3, 0.7)
    v = res.last_val
    assert v["psnr"] > v["psnr_baseline"] + 1.5, v  # identity baseline: the noisy input itself
    assert v["ssim"] > v["ssim_baseline"]
    grid = cv2.imread(str(tmp_path / "run" / "val" / "step-00000150.png"))
    assert grid is not None and grid.shape[0] > 3 * 96  # 4 rows of baseline | output | HQ
    assert read_csv(tmp_path / "run" / "val.csv")[-1]["step"] == "150"
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))


def test_x2_sr_rrdbnet_beats_bicubic(sr_data, tmp_path):
    train, val = sr_data
    cfg = TrainConfig.model_validate(make_config(tmp_path / "run", train, RRDB_TINY_X2, val_url=val,
                                                 optim={"lr": 4e-3}, val={"use_ema": False}))
    res = run_training(cfg)
    # residual learning starts at the bicubic loss, so the drop is modest (about 10% here); 10-row means
    assert loss_dropped(read_csv(tmp_path / "run" / "metrics.csv"), 10, 1.0)
    v = res.last_val
    assert v["psnr"] > v["psnr_baseline"] + 0.2, v  # bicubic upsampling of the LQ
    assert v["ssim"] > v["ssim_baseline"]


def test_gan_and_perceptual_losses_train_both_networks(sr_data, vgg_file, tmp_path):
    train, _ = sr_data
    path, _ = vgg_file
    cfg = TrainConfig.model_validate(make_config(
        tmp_path / "run", train, RRDB_TINY_X2, data={"patch_size": 32, "batch_size": 4},
        loss={"perceptual": {"layers": {"conv1_2": 0.1, "conv2_2": 1.0}, "weights_path": str(path), "weight": 0.5},
              "gan": {"weight": 0.1, "num_feat": 8, "start_step": 2}},
        train={"max_steps": 6, "log_every": 1, "ckpt_every": 3}))
    res = run_training(cfg)
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert rows[0]["l_percep"] and all(np.isfinite(float(r["loss"])) for r in rows)
    assert "l_gan" in res.last_log and "l_d" in res.last_log and np.isfinite(res.last_log["l_d"])
    first, last = (load_checkpoint(p) for _, p in list_checkpoints(tmp_path / "run" / "checkpoints"))
    assert first["step"] == 3 and last["step"] == 6 and last["opt_d"] is not None
    assert any(not torch.equal(first["disc"][k], last["disc"][k]) for k in last["disc"])


# ------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_writes_are_atomic_and_loading_falls_back(tmp_path):
    d = tmp_path / "checkpoints"
    save_checkpoint(d, 5, {"x": torch.ones(2)}, keep=2)
    save_checkpoint(d, 10, {"x": torch.zeros(2)}, keep=2)
    save_checkpoint(d, 15, {"x": torch.zeros(3)}, keep=2)
    assert [s for s, _ in list_checkpoints(d)] == [10, 15]
    assert json.loads((d / "latest.json").read_text()) == {"step": 15, "file": "ckpt-00000015.pt"}
    # what a kill during a save leaves: a temp file (never under the final name) -> ignored, then cleaned
    (d / "ckpt-00000020.pt.tmp-dead").write_bytes(b"partial")
    assert find_latest(d).name == "ckpt-00000015.pt"
    assert clean_temporaries(d) == 1
    # a latest.json pointing at a missing or damaged file falls back to the newest good checkpoint
    (d / "latest.json").write_text(json.dumps({"step": 99, "file": "ckpt-00000099.pt"}))
    (d / "ckpt-00000015.pt").write_bytes(b"damaged")
    assert find_latest(d).name == "ckpt-00000010.pt"


def _wait_for_checkpoint(ckpt_dir: Path, proc: subprocess.Popen, min_step: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training subprocess ended early: {proc.stderr.read().decode()[-3000:]}")
        if any(s >= min_step for s, _ in list_checkpoints(ckpt_dir)):
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared in time")


def test_sigkilled_run_resumes_on_the_same_trajectory(denoise_data, tmp_path):
    train, _ = denoise_data
    def cfg_for(out):
        return make_config(out, train, data={"patch_size": 32, "batch_size": 4, "num_workers": 2},
                           train={"max_steps": 400, "log_every": 1, "ckpt_every": 5, "keep_checkpoints": 2})

    killed = tmp_path / "killed"
    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg_for(killed)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pairforge.train", str(cfg_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_checkpoint(killed / "checkpoints", proc, 10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    k = int(load_checkpoint(find_latest(killed / "checkpoints"))["step"])
    assert 10 <= k < 400
    end = k + 6
    resumed = run_training(TrainConfig.model_validate(cfg_for(killed)), stop_at=end)
    assert resumed.resumed_from == k and resumed.step == end
    reference = run_training(TrainConfig.model_validate(cfg_for(tmp_path / "reference")), stop_at=end)
    assert reference.resumed_from is None
    cols = ("step", "lr", "loss", "l_pix", "grad_norm")
    got = [tuple(r[c] for c in cols) for r in read_csv(killed / "metrics.csv")]
    want = [tuple(r[c] for c in cols) for r in read_csv(tmp_path / "reference" / "metrics.csv")]
    assert len(want) == end
    assert got[k:] == want[k:]  # after the resume: the very same losses, bit for bit
    assert got == want  # and the log reads as if the run had never been interrupted
    a = load_checkpoint(killed / "checkpoints" / f"ckpt-{end:08d}.pt")
    b = load_checkpoint(tmp_path / "reference" / "checkpoints" / f"ckpt-{end:08d}.pt")
    assert all(torch.equal(a["ema"][n], b["ema"][n]) for n in a["ema"])
    assert a["data"] == b["data"]


# ------------------------------------------------------------------------------------- distributed
def test_ddp_two_processes_gloo(denoise_data, tmp_path):
    train, _ = denoise_data
    out = tmp_path / "ddp"
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(make_config(
        out, train, data={"patch_size": 32, "batch_size": 4, "num_workers": 1},
        loss={"gan": {"num_feat": 8, "weight": 0.1}},  # the discriminator under DDP too
        train={"max_steps": 8, "log_every": 2, "ckpt_every": 4})))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "pairforge.train", str(cfg_path)], env=env, capture_output=True, timeout=240)
    assert proc.returncode == 0, proc.stderr.decode()[-4000:]
    rows = read_csv(out / "metrics.csv")
    assert [r["step"] for r in rows] == ["2", "4", "6", "8"]
    assert all(np.isfinite(float(r["l_d"])) for r in rows)
    ck = load_checkpoint(out / "checkpoints" / "ckpt-00000008.pt")
    # one stream per rank (1 worker each), both positions recorded
    assert ck["data"]["n_streams"] == 2 and sorted(ck["data"]["streams"]) == ["0", "1"]
    assert all(sum(v) >= 8 * 4 for v in ck["data"]["streams"].values())


# ---------------------------------------------------------------------------------------- restore
@pytest.fixture(scope="module")
def sr_checkpoint(sr_data, tmp_path_factory):
    train, _ = sr_data
    out = tmp_path_factory.mktemp("srck") / "run"
    model = {**RRDB_TINY_X2, "residual": "none"}
    run_training(TrainConfig.model_validate(make_config(out, train, model, train={"max_steps": 3})))
    return out


def test_restore_tiles_match_whole_image(sr_checkpoint):
    from pairforge.train.restore import load_restorer, restore_array

    r = load_restorer(sr_checkpoint)
    assert r.scale == 2 and r.step == 3
    img = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    whole = restore_array(r, img, tile=None)
    tiled = restore_array(r, img, tile=32, tile_pad=24)
    assert whole.shape == (140, 180, 3)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_restore_cli_on_file_and_folder(sr_checkpoint, tmp_path):
    import typer
    from typer.testing import CliRunner

    from pairforge.train.cli import restore_command, train_command

    app = typer.Typer()
    app.command("train")(train_command)
    app.command("restore")(restore_command)
    runner = CliRunner()
    assert "--checkpoint" in runner.invoke(app, ["restore", "--help"]).output
    assert "--stop-at" in runner.invoke(app, ["train", "--help"]).output
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    cv2.imwrite(str(src / "a.png"), rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "sub" / "b.jpg"), rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))
    res = runner.invoke(app, ["restore", "--checkpoint", str(sr_checkpoint), str(src), str(tmp_path / "out"),
                              "--tile", "16"])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (80, 100, 3)
    assert cv2.imread(str(tmp_path / "out" / "sub" / "b.png")).shape == (60, 40, 3)
    ck = sorted((sr_checkpoint / "checkpoints").glob("ckpt-*.pt"))[-1]
    res = runner.invoke(app, ["restore", "-c", str(ck), str(src / "a.png"), str(tmp_path / "single.png")])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "single.png")).shape == (80, 100, 3)


def test_train_cli_stop_and_continue(sr_data, tmp_path):
    import typer
    from typer.testing import CliRunner

    from pairforge.train.cli import train_command

    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)
    train, val = sr_data
    cfg_path = tmp_path / "t.yaml"
    cfg_path.write_text(yaml.safe_dump(make_config(tmp_path / "ignored", train, RRDB_TINY_X2, val_url=val,
                                                   data={"patch_size": 32, "batch_size": 4},
                                                   train={"max_steps": 6, "ckpt_every": 2})))
    runner = CliRunner()
    out = tmp_path / "cli-run"
    r1 = runner.invoke(app, ["train", str(cfg_path), "--out", str(out), "--stop-at", "2"])
    assert r1.exit_code == 0, r1.output
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [2]
    r2 = runner.invoke(app, ["train", str(cfg_path), "--out", str(out), "--set", "train.log_every=3"])
    assert r2.exit_code == 0, r2.output
    assert "resumed from step" in r2.output and "val PSNR" in r2.output
    assert [s for s, _ in list_checkpoints(out / "checkpoints")][-1] == 6
    bad = runner.invoke(app, ["train", str(cfg_path), "--set", "model.width=3"])
    assert bad.exit_code == 2 and "model" in bad.output
