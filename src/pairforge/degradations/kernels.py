"""Blur kernels of the Real-ESRGAN family, from their published formulas (BasicSR conventions).

Every kernel is a float64 ``k x k`` numpy array that sums to 1, indexed ``[row, col]`` and applied as a
correlation (see :mod:`pairforge.degradations.filtering`). The grid runs ``-(k//2) .. k//2`` in both axes;
``x`` is the column coordinate, ``y`` the row coordinate. A kernel is fully described by a small JSON
dict (:func:`kernel_from_params`), so a degradation record can always rebuild the exact kernel.
"""
from __future__ import annotations

import math

import numpy as np

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def mesh_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(xx, yy) coordinates of a ``size x size`` kernel centred on its middle tap."""
    if size < 1 or size % 2 != 1:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    return np.meshgrid(ax, ax)


def sigma_matrix(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Covariance ``R(theta) diag(sx^2, sy^2) R(theta)^T``."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float, isotropic: bool) -> np.ndarray:
    # A sigma of exactly 0 would divide by zero; a tiny floor turns it into the unit pulse it means.
    sigma_x = max(float(sigma_x), 1e-6)
    sigma_y = max(float(sigma_y), 1e-6)
    cov = np.diag([sigma_x**2, sigma_x**2]) if isotropic else sigma_matrix(sigma_x, sigma_y, theta)
    inv = np.linalg.inv(cov)
    xx, yy = mesh_grid(size)
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def _normalise(k: np.ndarray) -> np.ndarray:
    return k / np.sum(k)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float = 0.0, theta: float = 0.0, isotropic: bool = True) -> np.ndarray:
    """Bivariate Gaussian ``exp(-q/2)``; isotropic uses ``sigma_x`` only (sigma_y and theta ignored)."""
    return _normalise(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta, isotropic)))


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float, isotropic: bool = True
) -> np.ndarray:
    """Generalized Gaussian ``exp(-(q**beta)/2)`` (the 1/2 outside the power, as BasicSR)."""
    return _normalise(np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta, isotropic), beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float, isotropic: bool = True) -> np.ndarray:
    """Plateau-shaped ``1 / (q**beta + 1)``."""
    return _normalise(np.reciprocal(np.power(_quadratic_form(size, sigma_x, sigma_y, theta, isotropic), beta) + 1))


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """The Bessel function J1 (float64), from Bessel's integral ``J1(x) = 1/(2 pi) * integral over one
    period of cos(t - x sin t)``: the midpoint rule on a periodic analytic integrand converges
    geometrically once the points outnumber ``|x|`` (< 1e-12 from scipy.special.j1 up to |x| = 300,
    measured). Written out so that building a sinc kernel does not import scipy (start-up)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.zeros_like(x)
    m = float(np.abs(x).max())
    n = math.ceil(1.1 * m) + 40
    t = (np.arange(n) + 0.5) * (2.0 * math.pi / n)
    flat = x.ravel()
    out = np.empty_like(flat)
    for i in range(0, flat.size, 4096):  # bounded temporaries for large inputs
        out[i : i + 4096] = np.cos(t - flat[i : i + 4096, None] * np.sin(t)).mean(axis=1)
    return out.reshape(x.shape)


def sinc_kernel(size: int, omega: float, pad_to: int = 0) -> np.ndarray:
    """Circular low-pass (2D sinc) ``omega J1(omega r) / (2 pi r)`` with cutoff ``omega`` in radians."""
    c = (size - 1) / 2
    i, j = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    r = np.sqrt((i - c) ** 2 + (j - c) ** 2)
    radii, inverse = np.unique(r, return_inverse=True)  # J1 once per distinct radius
    j1 = bessel_j1(omega * radii)[inverse].reshape(r.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = omega * j1 / (2 * np.pi * r)
    k[size // 2, size // 2] = omega**2 / (4 * np.pi)
    k = _normalise(k)
    return pad_kernel(k, pad_to) if pad_to else k


def shifted_gaussian_kernel(size: int, sigma: float, shift: float) -> np.ndarray:
    """Isotropic Gaussian whose peak sits ``shift`` taps right and down of the centre (used before a
    nearest-neighbour subsampling by ``sf`` with ``shift = (sf-1)/2`` so that each kept pixel is the
    blurred centre of its ``sf x sf`` cell, BSRGAN's shifted-kernel downsampling)."""
    xx, yy = mesh_grid(size)
    sigma = max(float(sigma), 1e-6)
    return _normalise(np.exp(-((xx - shift) ** 2 + (yy - shift) ** 2) / (2 * sigma**2)))


def pad_kernel(k: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a kernel to ``size x size`` (no-op when it is already that large)."""
    p = (size - k.shape[0]) // 2
    return np.pad(k, ((p, p), (p, p))) if p > 0 else k


def draw_beta(rng: np.random.Generator, beta_range: tuple[float, float]) -> float:
    """With p 0.5 ``U(lo, 1)``, else ``U(1, hi)`` (BasicSR's shape-parameter draw)."""
    lo, hi = beta_range
    if rng.random() < 0.5:
        return float(rng.uniform(lo, 1.0))
    return float(rng.uniform(1.0, hi))


def kernel_from_params(p: dict) -> np.ndarray:
    """Rebuild a kernel from its recorded parameters (the inverse of the samplers' records)."""
    t = p["type"]
    size = int(p["size"])
    if t == "sinc":
        return sinc_kernel(size, p["omega"])
    if t == "shifted_gaussian":
        return shifted_gaussian_kernel(size, p["sigma"], p["shift"])
    iso = t.endswith("iso") and not t.endswith("aniso")
    sx, sy, th = p["sigma_x"], p.get("sigma_y", p["sigma_x"]), p.get("theta", 0.0)
    if t in ("iso", "aniso"):
        return gaussian_kernel(size, sx, sy, th, isotropic=iso)
    if t.startswith("generalized"):
        return generalized_gaussian_kernel(size, sx, sy, th, p["beta"], isotropic=iso)
    if t.startswith("plateau"):
        return plateau_kernel(size, sx, sy, th, p["beta"], isotropic=iso)
    raise ValueError(f"unknown kernel type {t!r}")


def correlated_noise_cov(rng: np.random.Generator, sigma: float) -> list[list[float]]:
    """BSRGAN's channel-correlated noise covariance ``|L^2 U^T D U|`` with ``L = sigma/255``, ``D`` a
    diagonal of three U(0, 1) draws and ``U`` the orthonormal basis (SVD) of a uniform random 3x3 matrix.
    (Lives here with the other numpy-only random draws; :mod:`.noise` applies it.)"""
    d = np.diag(rng.random(3))
    u, _, _ = np.linalg.svd(rng.random((3, 3)))
    cov = np.abs((sigma / 255.0) ** 2 * (u.T @ d @ u))
    return cov.tolist()
