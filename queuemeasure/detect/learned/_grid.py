"""The learned detector's working grid: strips resampled to one pixel size, normalised.

Training (:mod:`queuemeasure.train`) and inference use these same functions, so the
network sees the same kind of input whatever the strip's own pixel size (0.12-1.0 m).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Pixel size (metres) of the grid the network works on.
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
        zoom = (R / rows, C / cols)
        x = np.stack([ndi.zoom(x[..., b], zoom, order=1, grid_mode=True, mode="grid-constant")
                      for b in range(x.shape[2])], axis=-1)
        w = ndi.zoom(w, zoom, order=1, grid_mode=True, mode="grid-constant")
        x, w = x[:R, :C], w[:R, :C]
    valid = w > 0.5
    out = np.where(valid[..., None], x / np.maximum(w, 1e-6)[..., None], 0.0).astype(np.float32)
    return out, valid, (rows * step_m / R, cols * step_m / C)


def to_working(img: np.ndarray, ok: np.ndarray, step_m: float) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Resample a strip (rows, cols, bands) to the working pixel size (see :func:`resample`)."""
    return resample(img, ok, step_m, WORK_STEP_M)


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
    v = bands[valid]
    # a subsample is enough for the statistics (long strips have millions of pixels)
    if len(v) > 200_000:
        v = v[:: len(v) // 200_000 + 1]
    med = np.median(v, axis=0)
    lum = v.mean(axis=1)
    lo, hi = np.percentile(lum, [2.0, 98.0])
    scale = np.float32(1.0 / max(float(hi - lo), 0.05))
    for b in range(3):
        out[b] = np.where(valid, (bands[..., b] - med[b]) * scale, 0.0)
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
