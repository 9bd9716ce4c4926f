"""The learned detector's working grid: strips resampled to one pixel size, normalised.

Training (:mod:`queuemeasure.train`) and inference use these same functions, so the
network sees the same kind of input whatever the strip's own pixel size (0.12-1.0 m).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Default pixel size (metres) of the grid a network works on (training's default). At
#: inference each model's own comes from its metadata (``work_step_m``).
WORK_STEP_M = 0.25
#: The network's output stride (working pixels per output cell); inputs are padded to a
#: multiple of ``PAD_TO``.
STRIDE = 2
PAD_TO = 8
#: Input channels: three colour bands (grey repeated) and the valid mask.
IN_CHANNELS = 4


def resample(img: np.ndarray, ok: np.ndarray, step_m: float, out_step_m: float
             ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Resample an image (rows, cols, bands) of ``step_m`` pixels to ``out_step_m`` pixels.

    Finer images are box-filtered first (an area average), coarser ones interpolated
    bilinearly; invalid pixels do not bleed into valid ones (normalised convolution).

    Returns
    -------
    image : (R, C, bands) float32
    valid : (R, C) bool
    scale : (float, float)
        Metres per output row and column (``out_step_m`` up to rounding).
    """
    rows, cols = ok.shape
    f = float(step_m) / float(out_step_m)
    R, C = max(1, int(round(rows * f))), max(1, int(round(cols * f)))
    w = ok.astype(np.float32)
    x = img.astype(np.float32) * w[..., None]
    if (R, C) != (rows, cols):
        box = 1.0 / f
        if box > 1.3:
            k = int(round(box))
            x = ndi.uniform_filter(x, size=(k, k, 1), mode="nearest")
            w = ndi.uniform_filter(w, size=k, mode="nearest")
        x, w = _zoom(x, R, C), _zoom(w, R, C)
    valid = w > 0.5
    out = np.where(valid[..., None], x / np.maximum(w, 1e-6)[..., None], 0.0).astype(np.float32)
    return out, valid, (rows * step_m / R, cols * step_m / C)


def _zoom(a: np.ndarray, R: int, C: int) -> np.ndarray:
    """Bilinear zoom of the first two axes of ``a`` to (R, C), pixel areas aligned and zeros
    outside (``scipy.ndimage.zoom(..., order=1, grid_mode=True, mode="grid-constant")``);
    an exact doubling -- 0.5 m strips -- takes a fast separable path with the same result."""
    rows, cols = a.shape[:2]
    if (R, C) == (2 * rows, 2 * cols):
        return _double(_double(a, 0), 1)
    zoom = (R / rows, C / cols) + (1.0,) * (a.ndim - 2)
    out = ndi.zoom(a, zoom, order=1, grid_mode=True, mode="grid-constant")
    return out[:R, :C]


def _double(a: np.ndarray, axis: int) -> np.ndarray:
    """Bilinear doubling along ``axis`` (output k at input (k - 0.5) / 2, zeros outside):
    weights 3/4 and 1/4 of the two nearest input pixels."""
    a = np.moveaxis(a, axis, 0)
    q = a * np.float32(0.75)
    out = np.repeat(q, 2, axis=0)
    out[2::2] += np.float32(0.25) * a[:-1]
    out[1:-1:2] += np.float32(0.25) * a[1:]
    return np.moveaxis(out, 0, axis)


def to_working(img: np.ndarray, ok: np.ndarray, step_m: float, work_step_m: float = WORK_STEP_M
               ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Resample a strip (rows, cols, bands) to the working pixel size ``work_step_m`` (see
    :func:`resample`); a strip already on it (within 0.1 %) is returned as it is."""
    if abs(step_m - work_step_m) <= 1e-3 * work_step_m:
        ok = np.asarray(ok, bool)
        out = np.where(ok[..., None], img, 0.0).astype(np.float32, copy=False)
        return out, ok, (float(step_m), float(step_m))
    return resample(img, ok, step_m, work_step_m)


def normalise(img: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Network input ``(IN_CHANNELS, R, C)`` float32 from a working-grid image.

    Each band minus its median over the valid pixels, divided by the spread of the
    brightness (2nd to 98th percentile, at least 0.05): the network sees contrast, not the
    sensor's or the scaler's absolute levels. A single band is repeated as grey.
    """
    R, C = valid.shape
    bands = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    out = np.zeros((IN_CHANNELS, R, C), np.float32)
    if not valid.any():
        return out
    idx = np.flatnonzero(valid)
    # a subsample is enough for the statistics (long strips have millions of pixels)
    if len(idx) > 200_000:
        idx = idx[:: len(idx) // 200_000 + 1]
    v = bands.reshape(-1, 3)[idx].T   # (3, n): each band contiguous
    med = np.median(v, axis=1)
    lum = v.mean(axis=0)
    lo, hi = np.percentile(lum, [2.0, 98.0])
    scale = np.float32(1.0 / max(float(hi - lo), 0.05))
    invalid = ~valid
    for b in range(3):
        np.subtract(bands[..., b], med[b], out=out[b])
        out[b] *= scale
        out[b][invalid] = 0.0
    out[3] = valid
    return out


def pad_to(x: np.ndarray, multiple: int = PAD_TO) -> np.ndarray:
    """Zero-pad the last two axes of ``x`` up to a multiple of ``multiple``."""
    R, C = x.shape[-2:]
    pr, pc = -R % multiple, -C % multiple
    if not pr and not pc:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(0, pr), (0, pc)]
    return np.pad(x, pad)
