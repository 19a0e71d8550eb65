"""Shared fixtures of the trainer tests: small pairforge-format datasets written once per session."""
from __future__ import annotations

import pytest
import torch
from train_shardkit import write_dataset


@pytest.fixture(scope="session")
def denoise_data(tmp_path_factory):
    """Same-size pairs: HQ 64 px, LQ = HQ + Gaussian noise sigma 25 (train) and a 96 px held-out set."""
    root = tmp_path_factory.mktemp("denoise")
    train = write_dataset(root / "train", 96, scale=1, noise=25, seed=0)
    val = write_dataset(root / "val", 8, scale=1, noise=25, seed=1, size=96)
    return train, val


@pytest.fixture(scope="session")
def sr_data(tmp_path_factory):
    """x2 pairs: LQ = Gaussian blur (sigma 1.2) + bicubic x2 down."""
    root = tmp_path_factory.mktemp("sr2")
    train = write_dataset(root / "train", 96, scale=2, noise=0, blur=1.2, seed=0)
    val = write_dataset(root / "val", 8, scale=2, noise=0, blur=1.2, seed=1, size=96)
    return train, val


@pytest.fixture(scope="session")
def small_sr(tmp_path_factory):
    """Tiny x2 pairs (32 px) for data-path tests that draw many samples."""
    root = tmp_path_factory.mktemp("small")
    return write_dataset(root / "ds", 48, size=32, scale=2, noise=3, seed=3, per_shard=12)


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory):
    """A VGG19 state dict saved the way torchvision's file is keyed (features.N.*), shallow layers only."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    feats = make_layers(cfgs["E"])[:9]  # up to relu2_2
    path = tmp_path_factory.mktemp("vgg") / "vgg19-local.pth"
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    return path, feats
