"""Tiny Flux (dev-like and schnell-like) and SDXL pipelines, built in code once per session and saved in
diffusers layout, so tests load them through the real from_pretrained path."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory):
    from pairforge.synthesis.tiny import save_tiny

    return str(save_tiny("flux", tmp_path_factory.mktemp("tiny-flux")))


@pytest.fixture(scope="session")
def tiny_schnell_dir(tmp_path_factory):
    from pairforge.synthesis.tiny import save_tiny

    return str(save_tiny("flux-schnell", tmp_path_factory.mktemp("tiny-schnell")))


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory):
    from pairforge.synthesis.tiny import save_tiny

    return str(save_tiny("sdxl", tmp_path_factory.mktemp("tiny-sdxl")))
