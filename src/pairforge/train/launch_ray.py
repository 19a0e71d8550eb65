"""Run the training loop under Ray Train (``TorchTrainer``): the same function torchrun runs.

Ray is imported only inside these functions, so the training library stays usable without it. Ray
Train starts the workers, sets RANK/WORLD_SIZE/LOCAL_RANK and the torch process group (gloo on CPU,
nccl on GPU); the loop reports its log rows through ``ray.train.report``. With
``ray.max_failures > 0`` a failed group is restarted and the loop resumes from its own latest
checkpoint in ``output.dir`` (which must be a filesystem every worker node can read).
"""
from __future__ import annotations

from pathlib import Path

from pairforge.train.config import TrainConfig


def _worker_loop(loop_config: dict) -> None:
    import ray.train

    from pairforge.train.loop import run_training

    cfg = TrainConfig.model_validate(loop_config["config"])
    run_training(cfg, stop_at=loop_config.get("stop_at"), resume=loop_config.get("resume", True),
                 reporter=lambda row: ray.train.report(row))


def train_with_ray(config: TrainConfig, *, stop_at: int | None = None, resume: bool = True) -> dict:
    """Train with ``config.ray.num_workers`` Ray Train workers; returns the last logged metrics row
    (Ray Train v2 keeps ``Result.metrics`` only for reports that carry a checkpoint)."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    rc = config.ray
    if not ray.is_initialized():
        from pairforge.pipeline.rayaddress import init_ray

        init_ray(rc.address, log_to_driver=True)
    out = Path(config.output.dir).resolve()
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"config": config.model_copy(update={"output": config.output.model_copy(
            update={"dir": str(out)})}).model_dump(mode="json"), "stop_at": stop_at, "resume": resume},
        scaling_config=ScalingConfig(num_workers=rc.num_workers, use_gpu=rc.use_gpu,
                                     resources_per_worker={"CPU": rc.cpus_per_worker}),
        run_config=RunConfig(name=config.name, storage_path=str(out / "ray"),
                             failure_config=FailureConfig(max_failures=rc.max_failures)),
    )
    result = trainer.fit()
    from pairforge.train.metrics import CSVLog

    rows = CSVLog(out / "metrics.csv").read()
    last = {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {}
    return {**last, **(result.metrics or {})}
