"""Polyline helpers in a local metric frame: resample by arc length, smooth, simplify."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["arc_length", "resample", "smooth_polyline", "dedupe"]


def dedupe(xy: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Drop consecutive vertices closer than ``tol``."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) < 2:
        return xy
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > tol])
    return xy[keep]


def arc_length(xy: np.ndarray) -> np.ndarray:
    """Cumulative planar arc length at each vertex."""
    xy = np.asarray(xy, dtype=float)
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def resample(xy: np.ndarray, step: float) -> np.ndarray:
    """Vertices every ``step`` metres of arc length (both ends kept)."""
    xy = dedupe(xy)
    s = arc_length(xy)
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, xy[:, 0]), np.interp(t, s, xy[:, 1])])


def smooth_polyline(xy: np.ndarray, sigma_m: float, step: float = 1.0) -> np.ndarray:
    """Gaussian smoothing along arc length with the ends held in place.

    The line is resampled every ``step`` metres and each coordinate is filtered; it is
    reflected through its end points (odd extension) so that the ends neither move nor
    pull the line toward themselves.
    """
    p = resample(xy, step)
    if sigma_m <= 0 or len(p) < 4:
        return p
    sig = sigma_m / step
    pad = min(len(p) - 1, int(4 * sig) + 1)
    head = 2 * p[0] - p[pad:0:-1]
    tail = 2 * p[-1] - p[-2:-pad - 2:-1]
    ext = np.concatenate([head, p, tail])
    out = ndi.gaussian_filter1d(ext, sig, axis=0, mode="nearest")[pad:pad + len(p)]
    out[0], out[-1] = p[0], p[-1]
    return out
