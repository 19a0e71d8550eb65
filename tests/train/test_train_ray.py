"""The same training loop under Ray Train's TorchTrainer (two CPU workers, gloo)."""
from __future__ import annotations

import pytest
from train_shardkit import make_config, read_csv

from pairforge.train.config import TrainConfig


@pytest.mark.slow
def test_ray_train_two_workers(denoise_data, tmp_path):
    ray = pytest.importorskip("ray")
    from pairforge.train.launch_ray import train_with_ray

    train, _ = denoise_data
    out = tmp_path / "run"
    cfg = TrainConfig.model_validate(make_config(
        out, train, data={"patch_size": 32, "batch_size": 4},
        train={"max_steps": 6, "log_every": 2, "ckpt_every": 3},
        ray={"num_workers": 2, "cpus_per_worker": 0.5}))
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        metrics = train_with_ray(cfg)
    finally:
        if started_here:
            ray.shutdown()
    assert metrics["step"] == 6.0 and metrics["loss"] > 0
    assert [r["step"] for r in read_csv(out / "metrics.csv")] == ["2", "4", "6"]
    from pairforge.train.checkpoint import load_checkpoint

    ck = load_checkpoint(out / "checkpoints" / "ckpt-00000006.pt")
    assert ck["data"]["n_streams"] == 2  # one stream per Ray worker (rank)
