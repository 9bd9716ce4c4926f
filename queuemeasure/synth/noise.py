"""Deterministic, order-independent noise fields for the scene simulator.

Every texture that must be continuous across render blocks is a function of map
coordinates and the scene seed only (hash-based value noise), so a block looks the same
whichever order the blocks are rendered in. Fine grain that need not be continuous comes
from a per-block generator seeded by ``(seed, block index)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hash01", "value_noise", "fbm", "block_rng"]

_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)
_P1 = np.uint32(0x27D4EB2F)
_P2 = np.uint32(0x165667B1)


def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * _M1
    h = h ^ (h >> np.uint32(13))
    h = h * _M2
    h = h ^ (h >> np.uint32(16))
    return h


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Hash integer lattice coordinates and a seed to floats in [0, 1).

    Parameters
    ----------
    ix, iy : ndarray of int
        Lattice coordinates (any shape, broadcastable).
    seed : int
        Scene seed mixed with a channel number.

    Returns
    -------
    ndarray of float32
    """
    with np.errstate(over="ignore"):
        a = np.asarray(ix).astype(np.int64).astype(np.uint32)
        b = np.asarray(iy).astype(np.int64).astype(np.uint32)
        h = _mix(a * _P1 ^ _mix(b * _P2 ^ np.uint32(seed & 0xFFFFFFFF)))
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def value_noise(x: np.ndarray, y: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1) with feature size ``scale`` (map units).

    Parameters
    ----------
    x, y : ndarray
        Map coordinates (metres in the scene's local frame).
    scale : float
        Lattice spacing in metres.
    seed : int
        Channel seed.

    Returns
    -------
    ndarray of float32, shape of ``x``
    """
    fx = np.asarray(x, dtype=np.float64) / scale
    fy = np.asarray(y, dtype=np.float64) / scale
    ix = np.floor(fx)
    iy = np.floor(fy)
    tx = (fx - ix).astype(np.float32)
    ty = (fy - iy).astype(np.float32)
    tx = tx * tx * (3 - 2 * tx)
    ty = ty * ty * (3 - 2 * ty)
    ix = ix.astype(np.int64)
    iy = iy.astype(np.int64)
    v00 = hash01(ix, iy, seed)
    v10 = hash01(ix + 1, iy, seed)
    v01 = hash01(ix, iy + 1, seed)
    v11 = hash01(ix + 1, iy + 1, seed)
    a = v00 + (v10 - v00) * tx
    b = v01 + (v11 - v01) * tx
    return a + (b - a) * ty


def fbm(x: np.ndarray, y: np.ndarray, scale: float, seed: int, octaves: int = 4,
        gain: float = 0.5) -> np.ndarray:
    """Fractal sum of :func:`value_noise` octaves, normalised to about [0, 1].

    Parameters
    ----------
    x, y : ndarray
        Map coordinates in metres.
    scale : float
        Largest feature size in metres.
    seed : int
        Channel seed.
    octaves : int
        Number of octaves, each half the size of the previous one.
    gain : float
        Amplitude ratio between octaves.

    Returns
    -------
    ndarray of float32
    """
    total = np.zeros(np.shape(x), dtype=np.float32)
    amp = 1.0
    norm = 0.0
    for k in range(octaves):
        total += np.float32(amp) * value_noise(x, y, scale / (2 ** k), seed + 7919 * k)
        norm += amp
        amp *= gain
    return total / np.float32(norm)


def block_rng(seed: int, *index: int) -> np.random.Generator:
    """A generator seeded by the scene seed and a block index (order independent)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(i) & 0xFFFFFFFF for i in index]])
