"""The reference image on the tile's own pixels, for the change between two dates.

Sampling the tile and the reference separately along the road, each bilinearly at the
strip's stations, gives each image its own interpolation error. That error depends on
where a sample falls between pixel centres; across a road a pixel or two wide it is a
large share of the road's contrast with its verges, it cycles along the road with the
sub-pixel phase (every 10-30 m on a road at a slant to the grid), and the two dates' cycles
differ by the co-registration shift. Their difference is a change on the carriageway, of
the same sign in every band (asphalt is darker than its verges in all of them), that the
verges do not have: a queue where there is none (at 10 m, +50 % on a SYNTHETIC 2 km queue,
``benchmarks/coarse_accuracy.py`` case ``base-s2-10m+ref``).

Here the reference is first resampled onto the tile's pixels — by cubic convolution
(Keys, a = -0.5), or as the mean of n x n such samples inside each tile pixel when the
reference is finer —, and both strips are made from their pixels with the same bilinear
weights. The tile's interpolation error then cancels exactly in the difference
(``bilinear(tile) - bilinear(ref_on_tile) = bilinear(tile - ref_on_tile)``); what is left
is the cubic kernel's error on the reference, a small fraction of the bilinear one.

Only the tile pixels the strip's samples touch are resampled (a few thousand per
kilometre at 10 m), and only the reference blocks under them are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import geo
from .corridor import BlockSampler, Scaler, Strip

__all__ = ["TilePixels", "tile_pixels", "ReferenceOnTile", "cubic_sample", "clip_level", "clipped_samples"]

#: Keys' cubic convolution parameter (-0.5: third-order accurate)
KEYS_A = -0.5


@dataclass
class TilePixels:
    """The tile pixels a strip's bilinear samples use, and how each sample weighs them.

    Attributes
    ----------
    rows, cols : ndarray (T,) int
        The distinct tile pixels (raster row and column).
    index : ndarray (N, 4) int
        For each sample, the positions in ``rows``/``cols`` of its four bilinear
        neighbours (top-left, top-right, bottom-left, bottom-right).
    weight : ndarray (N, 4) float32
        Their bilinear weights.
    nearest : ndarray (N,) int
        Which of the four is the nearest (a sample is valid when its nearest pixel is,
        as :meth:`queuemeasure.corridor.BlockSampler.sample` has it).
    shape : tuple
        The strip's (rows, cols).
    """

    rows: np.ndarray
    cols: np.ndarray
    index: np.ndarray
    weight: np.ndarray
    nearest: np.ndarray
    shape: tuple[int, int]


def tile_pixels(rows: np.ndarray, cols: np.ndarray) -> TilePixels:
    """The :class:`TilePixels` of samples at raster ``rows``, ``cols`` (2-D, a strip's)."""
    shape = rows.shape
    r = np.asarray(rows, float).ravel()
    c = np.asarray(cols, float).ravel()
    r0, c0 = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    fr, fc = (r - r0).astype(np.float32), (c - c0).astype(np.float32)
    rr = np.stack([r0, r0, r0 + 1, r0 + 1], axis=1)
    cc = np.stack([c0, c0 + 1, c0, c0 + 1], axis=1)
    w = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc], axis=1)
    if not r.size:
        z = np.zeros(0, np.int64)
        return TilePixels(z, z, np.zeros((0, 4), np.int64), w, z, (int(shape[0]), int(shape[1])))
    # one integer key per pixel (rows and cols offset to be non-negative)
    rmin, cmin = int(rr.min()), int(cc.min())
    span = int(cc.max()) - cmin + 1
    key = (rr - rmin) * span + (cc - cmin)
    uniq, inverse = np.unique(key.ravel(), return_inverse=True)
    nearest = (fr >= 0.5).astype(np.int64) * 2 + (fc >= 0.5).astype(np.int64)
    return TilePixels(uniq // span + rmin, uniq % span + cmin, inverse.reshape(-1, 4), w, nearest,
                      (int(shape[0]), int(shape[1])))


def clip_level(dtype: Any) -> float | None:
    """The value at which an integer image saturates (its dtype's largest: 255 for a
    Sentinel-2 TCI, where reflectance above about 0.2 — bright concrete, dry fields,
    cloud — is clipped); None for floating-point images."""
    dt = np.dtype(dtype)
    return float(np.iinfo(dt).max) if dt.kind in "ui" else None


def clipped_samples(sampler: BlockSampler, px: TilePixels, level: float | None) -> np.ndarray:
    """Which of the strip's samples (N,) lean on a saturated pixel (any band at ``level``)
    among their bilinear neighbours: a change, or a vehicle, cannot be seen there."""
    n = px.index.shape[0]
    if level is None or not px.rows.size:
        return np.zeros(n, bool)
    vals, ok = sampler.pixels(px.rows, px.cols)
    hit = ok & (vals >= level).any(axis=1)
    return (hit[px.index] & (px.weight > 0)).any(axis=1)


def _keys(t: np.ndarray) -> np.ndarray:
    """Keys' cubic weights (N, 4) of the taps at -1, 0, 1, 2 from a sample at ``t`` in [0, 1)."""
    a = KEYS_A
    d = np.abs(np.stack([t + 1, t, 1 - t, 2 - t], axis=1))
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0)).astype(np.float32)


def cubic_sample(sampler: BlockSampler, rows: np.ndarray, cols: np.ndarray, *,
                 clip: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cubic-convolution samples (N, bands), raw scale, validity (N,) and saturation (N,).

    A point whose 4 x 4 neighbourhood is all valid is interpolated by Keys' kernel; one
    whose neighbourhood is partly invalid (an edge of the tile or of its data) falls back
    to the bilinear mean of its valid neighbours among the nearest four, and is valid when
    its nearest pixel is. With ``clip``, a point whose nearest four include a pixel at
    that value in any band is saturated: flagged, and invalid.
    """
    r = np.asarray(rows, float).ravel()
    c = np.asarray(cols, float).ravel()
    n, nb = r.size, len(sampler.bands)
    if not n:
        return np.zeros((0, nb), np.float32), np.zeros(0, bool), np.zeros(0, bool)
    ok_pt = np.isfinite(r) & np.isfinite(c)
    r, c = np.where(ok_pt, r, -10.0), np.where(ok_pt, c, -10.0)
    r0, c0 = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    tr, tc = r - r0, c - c0
    k = np.arange(-1, 3)
    pr = np.broadcast_to(r0[:, None, None] + k[None, :, None], (n, 4, 4))
    pc = np.broadcast_to(c0[:, None, None] + k[None, None, :], (n, 4, 4))
    vals, valid = sampler.pixels(pr, pc)
    vals = vals.reshape(n, 4, 4, nb)
    valid = valid.reshape(n, 4, 4)
    w = _keys(tr)[:, :, None] * _keys(tc)[:, None, :]
    out = np.einsum("nij,nijb->nb", w, vals)
    full = valid.all(axis=(1, 2))
    # bilinear over the valid ones of the nearest four (rows/cols 1-2 of the 4 x 4)
    wb = np.stack([(1 - tr) * (1 - tc), (1 - tr) * tc, tr * (1 - tc), tr * tc], axis=1).reshape(n, 2, 2)
    vb = valid[:, 1:3, 1:3]
    wb = (wb * vb).astype(np.float32)
    wsum = wb.sum(axis=(1, 2))
    lin = np.einsum("nij,nijb->nb", wb, vals[:, 1:3, 1:3])
    lin = np.divide(lin, wsum[:, None], out=np.zeros_like(lin), where=wsum[:, None] > 0)
    nearest = vb[np.arange(n), (tr >= 0.5).astype(int), (tc >= 0.5).astype(int)]
    out = np.where(full[:, None], out, lin).astype(np.float32)
    ok = ok_pt & (full | nearest)
    clipped = np.zeros(n, bool)
    if clip is not None:
        clipped = ok & (vb & (vals[:, 1:3, 1:3] >= clip).any(axis=-1)).any(axis=(1, 2))
        ok &= ~clipped
    out[~ok] = 0.0
    return out, ok, clipped


class ReferenceOnTile:
    """A reference image resampled onto a tile's pixel grid, strip by strip.

    Parameters
    ----------
    tile : BlockSampler
        The tile's sampler (for its geotransform; no tile pixel is read here).
    tile_crs : CRS-like
    ref : BlockSampler
    ref_crs : CRS-like
    scaler : Scaler
        The reference's scaler (fitted on the first valid samples when not yet).
    tile_gsd, ref_gsd : float
        Ground pixel sizes (metres). A reference finer than the tile by 1.5 times or more
        is averaged over ``round(tile_gsd / ref_gsd)``² cubic samples per tile pixel.
    """

    def __init__(self, tile: BlockSampler, tile_crs: Any, ref: BlockSampler, ref_crs: Any,
                 scaler: Scaler, *, tile_gsd: float, ref_gsd: float) -> None:
        self.tile_transform = tile.ds.transform
        self.ref = ref
        self.scaler = scaler
        self._to_ref = geo.transformer(tile_crs, ref_crs)
        ratio = tile_gsd / ref_gsd
        self.sub = int(round(ratio)) if ratio >= 1.5 else 1
        self.clip = clip_level(ref.ds.dtypes[ref.bands[0] - 1])

    def positions(self, px: TilePixels) -> tuple[np.ndarray, np.ndarray]:
        """Reference (row, col) of the tile pixels' centres, shape (T, sub²) each (or
        of ``sub`` x ``sub`` points spread evenly inside each pixel)."""
        s = self.sub
        f = (np.arange(s) + 0.5) / s - 0.5
        dr, dc = np.meshgrid(f, f, indexing="ij")
        r = px.rows[:, None] + dr.ravel()[None, :] + 0.5
        c = px.cols[:, None] + dc.ravel()[None, :] + 0.5
        t = self.tile_transform
        x = t.a * c + t.b * r + t.c
        y = t.d * c + t.e * r + t.f
        xr, yr = self._to_ref.transform(x.ravel(), y.ravel())
        rr, cr = self.ref.pixel_coords(np.asarray(xr, float), np.asarray(yr, float))
        return rr.reshape(x.shape), cr.reshape(x.shape)

    def values(self, px: TilePixels, pos: tuple[np.ndarray, np.ndarray],
               shift_px: tuple[float, float] = (0.0, 0.0)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reference on the tile pixels ``px`` (raw scale, (T, bands)), validity and
        saturation (T,), from their reference positions ``pos`` (:meth:`positions`) moved
        by ``shift_px``. A tile pixel is seen when most of the reference under it is, and
        saturated when any of it is."""
        rr, cr = pos
        v, ok, clipped = cubic_sample(self.ref, rr + shift_px[0], cr + shift_px[1], clip=self.clip)
        t, s = rr.shape
        v = v.reshape(t, s, -1)
        ok = ok.reshape(t, s)
        cnt = ok.sum(axis=1)
        mean = np.divide((v * ok[..., None]).sum(axis=1), cnt[:, None],
                         out=np.zeros((t, v.shape[-1]), np.float32), where=cnt[:, None] > 0)
        sat = clipped.reshape(t, s).any(axis=1)
        return mean.astype(np.float32), (cnt * 2 > s) & ~sat, sat

    def strip_image(self, px: TilePixels, pos: tuple[np.ndarray, np.ndarray],
                    shift_px: tuple[float, float] = (0.0, 0.0)
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The strip (rows, cols, bands), scaled like the reference's strips, its
        validity and its saturated samples (rows, cols): the reference's values on the
        tile pixels, combined with the tile's own bilinear weights."""
        vals, ok, sat = self.values(px, pos, shift_px)
        okf = ok.astype(np.float32)
        w = px.weight * okf[px.index]
        wsum = w.sum(axis=1)
        img = np.einsum("nk,nkb->nb", w, vals[px.index])
        img = np.divide(img, wsum[:, None], out=np.zeros_like(img), where=wsum[:, None] > 0)
        valid = ok[px.index[np.arange(px.index.shape[0]), px.nearest]] & (wsum > 0)
        if not self.scaler.fitted and valid.any():
            self.scaler.fit(img[valid])
        img = self.scaler(img, overwrite=True) if self.scaler.fitted else np.zeros_like(img)
        img[~valid] = 0.0
        nr, nc = px.shape
        clipped = (sat[px.index] & (px.weight > 0)).any(axis=1)
        return img.reshape(nr, nc, -1), valid.reshape(nr, nc), clipped.reshape(nr, nc)

    def strip_like(self, strip: Strip, px: TilePixels,
                   shift_px: tuple[float, float] = (0.0, 0.0)) -> tuple[Strip, np.ndarray]:
        """A :class:`~queuemeasure.corridor.Strip` of the reference on the same stations and
        offsets as the tile's ``strip`` (whose samples are ``px``), and which of its samples
        are saturated (invalid in the strip)."""
        img, valid, clipped = self.strip_image(px, self.positions(px), shift_px)
        return Strip(image=img, valid=valid, step_m=strip.step_m, half_width_m=strip.half_width_m,
                     chord0=strip.chord0, path=strip.path), clipped
