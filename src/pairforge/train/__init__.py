"""The bundled trainer: learn a restorer (NAFNet, RRDBNet) from pairforge shards.

Data (WebDataset streams, mixing, balancing, exact resume) in :mod:`.data`, networks in :mod:`.nets`,
losses in :mod:`.losses`, the loop (torchrun/DDP and Ray Train run the same function) in :mod:`.loop`,
inference in :mod:`.restore`. Nothing here imports Ray except :mod:`.launch_ray`, lazily.
"""
from __future__ import annotations

from pairforge.train.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "load_train_config", "restore_paths", "run_training"]


def __getattr__(name: str):
    # torch-heavy entry points load on first use
    if name == "run_training":
        from pairforge.train.loop import run_training

        return run_training
    if name == "restore_paths":
        from pairforge.train.restore import restore_paths

        return restore_paths
    raise AttributeError(name)
