"""The road's tone: sampled at the user's points, and a per-pixel road likeness.

A road surface is a band of one consistent tone. The tone is taken where the user says
the road is (the from/to/via points), at full resolution, with a mode-seeking median
that ignores a vehicle or a road marking standing on the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["RoadTone", "mode_median", "sample_tone", "tone_distance", "fit_stretch"]

#: Smallest spread of the road tone per band, in stretched units (about 0..1).
MIN_SPREAD = 0.03


@dataclass(frozen=True)
class RoadTone:
    """Road tones in stretched units: ``centres`` (K, bands), one per sample point, and
    ``spread`` (bands,), the tone's natural variation."""

    centres: np.ndarray
    spread: np.ndarray


def mode_median(values: np.ndarray, keep: float = 0.5, rounds: int = 3) -> np.ndarray:
    """A robust centre of samples (N, bands): the median of the ``keep`` share nearest to
    the running estimate, repeated; a car covering less than half the samples is ignored."""
    v = np.asarray(values, dtype=np.float32)
    c = np.median(v, axis=0)
    for _ in range(rounds):
        d = np.abs(v - c).sum(axis=1)
        k = max(1, int(keep * len(v)))
        near = np.argpartition(d, k - 1)[:k]
        c = np.median(v[near], axis=0)
    return c


def fit_stretch(values: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Robust per-band stretch (1st and 99th percentiles) of an image (bands, H, W)."""
    nb = values.shape[0]
    flat = values.reshape(nb, -1)
    if valid is not None:
        flat = flat[:, valid.ravel()]
    if flat.shape[1] > 2_000_000:
        flat = flat[:, :: flat.shape[1] // 1_000_000]
    if flat.shape[1] < 16:
        return np.zeros(nb, np.float32), np.ones(nb, np.float32)
    lo = np.percentile(flat, 1.0, axis=1).astype(np.float32)
    hi = np.percentile(flat, 99.0, axis=1).astype(np.float32)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return lo, hi


def sample_tone(
    ds: Any,
    bands: Sequence[int],
    points_rc: np.ndarray,
    radius_px: tuple[float, float],
    lo: np.ndarray,
    hi: np.ndarray,
) -> RoadTone:
    """Road tone around each point (row, col in full-resolution pixels).

    Reads a small window around each point; takes the pixels within the ellipse of
    ``radius_px`` (rows, cols); returns the mode-seeking median per point.
    """
    from rasterio.windows import Window

    centres, spreads = [], []
    ry, rx = radius_px
    for r, c in np.asarray(points_rc, dtype=float):
        r0 = int(np.floor(r - ry)) - 1
        c0 = int(np.floor(c - rx)) - 1
        h = int(np.ceil(2 * ry)) + 3
        w = int(np.ceil(2 * rx)) + 3
        r0c, c0c = max(r0, 0), max(c0, 0)
        r1c, c1c = min(r0 + h, ds.height), min(c0 + w, ds.width)
        if r1c <= r0c or c1c <= c0c:
            continue
        win = Window(c0c, r0c, c1c - c0c, r1c - r0c)
        data = ds.read(list(bands), window=win).astype(np.float32)
        valid = ds.dataset_mask(window=win) > 0
        rr, cc = np.mgrid[r0c:r1c, c0c:c1c]
        inside = ((rr - r) / ry) ** 2 + ((cc - c) / rx) ** 2 <= 1.0
        sel = inside & valid
        if sel.sum() < 4:
            continue
        v = (data[:, sel].T - lo) / (hi - lo)
        m = mode_median(v)
        centres.append(m)
        near = v[np.argsort(np.abs(v - m).sum(axis=1))[: max(2, len(v) // 2)]]
        spreads.append(1.4826 * np.median(np.abs(near - m), axis=0))
    if not centres:
        from ..errors import RoadError

        raise RoadError("the given points lie on no valid pixels of the tile")
    spread = np.maximum(np.median(np.array(spreads), axis=0), MIN_SPREAD).astype(np.float32)
    return RoadTone(np.array(centres, np.float32), spread)


def tone_distance(img: np.ndarray, tone: RoadTone, axis: int = 0) -> np.ndarray:
    """Distance of each pixel to the nearest road tone, in units of the tone's spread.

    ``img`` holds bands along ``axis``; the result drops that axis. The distance is an
    RMS over bands of (value - tone) / spread.
    """
    x = np.moveaxis(np.asarray(img, dtype=np.float32), axis, -1)
    best = None
    for t in tone.centres:
        d = np.sqrt(np.mean(((x - t) / tone.spread) ** 2, axis=-1))
        best = d if best is None else np.minimum(best, d)
    assert best is not None
    return best.astype(np.float32)
