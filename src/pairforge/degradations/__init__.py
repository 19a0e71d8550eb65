"""Degradation models: HQ image in, LQ image plus the exact parameters out (see ``base.Degrader``).

Reusable ops (torch tensors (B, C, H, W) in [0, 1]; per-sample parameters; CPU and CUDA):
``kernels`` (BasicSR-formula blur kernels, numpy), ``filtering`` (reflect-padded per-sample filter2d,
USM), ``resize`` (torch ``interpolate`` semantics), ``noise`` (Gaussian/gray/correlated/speckle, Poisson),
``jpeg`` (real libjpeg round trip, DiffJPEG-compatible model). Degraders: ``chain`` (``kind: chain``,
Real-ESRGAN-style op lists and presets), ``simple`` (``kind: simple``), ``realworld`` (the nine
real-world types). Submodules import torch/OpenCV lazily so that config validation stays light.
"""
