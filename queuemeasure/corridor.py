"""Read the road corridor from a tile and straighten it into a strip.

Only the raster blocks that the corridor's sample points touch are decoded (block-aligned
windowed reads, kept in a small cache while neighbouring pieces of the road need them);
the tile is never read whole. Sample points are built in the road's local metric frame,
mapped to the raster's CRS with pyproj (``always_xy=True``) and to pixels with the
inverse geotransform, so projected, geographic and Web Mercator rasters are all right.

A strip is an array of rows = stations along the road (row 0 nearest the head) and
columns = offsets across it (column 0 at the right-hand edge looking away from the
head), both sampled every ``step_m`` ground metres.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from . import geo
from .errors import RasterReadError
from .raster import block_shape
from .road import RoadPath

__all__ = ["BlockSampler", "Strip", "road_frame", "strip_points", "build_strip", "iter_strips", "prefetched", "Scaler"]

T = TypeVar("T")


class Scaler:
    """Map raw pixel values to float32 of about 0..1, per band.

    With ``physical`` (per-band scale and offset, :func:`queuemeasure.raster.band_scaling`)
    raw values are first made physical (``DN * scale + offset``, e.g. L2A reflectance).
    uint8 is otherwise divided by 255. Other types (11/12-bit uint16, float reflectance) get one
    gain, common to all bands so that colours keep their balance, that maps the highest
    band's robust high percentile (99.9 by default) of the first valid corridor samples
    to 1; zero stays zero (a negative low percentile, as in some
    reflectance products, becomes the zero point). A gain, not a full stretch: the
    contrast of a uint16 tile then matches that of the same scene in uint8, and the
    scale is fixed for the whole road, whatever the pieces it is cut into.
    """

    def __init__(self, dtype: str, low_pct: float = 0.5, high_pct: float = 99.9, *,
                 physical: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.low_pct, self.high_pct = low_pct, high_pct
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None
        # per-band (scale, offset) to physical values first (raster.band_scaling)
        self.physical = None if physical is None else (
            np.asarray(physical[0], np.float32), np.asarray(physical[1], np.float32))
        if self.dtype == np.uint8 and self.physical is None:
            self.lo, self.hi = np.zeros(1, np.float32), np.full(1, 255.0, np.float32)

    def _to_physical(self, values: np.ndarray) -> np.ndarray:
        if self.physical is None:
            return values
        scale, offset = self.physical
        return values.astype(np.float32) * scale + offset

    @property
    def fitted(self) -> bool:
        return self.lo is not None

    def fit(self, values: np.ndarray) -> None:
        """Fit the stretch on valid samples ``values`` of shape (N, bands)."""
        if self.fitted or len(values) < 16:
            return
        v = self._to_physical(values).astype(np.float32, copy=False)
        # one gain for all bands keeps their ratios, i.e. the colours, as they are
        lo = np.full(v.shape[1], min(float(np.percentile(v, self.low_pct)), 0.0), np.float32)
        hi = np.full(v.shape[1], float(np.percentile(v, self.high_pct, axis=0).max()), np.float32)
        hi = np.where(hi > lo, hi, lo + 1.0)
        self.lo, self.hi = lo, hi

    def __call__(self, values: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
        """Scaled float32 values; ``overwrite=True`` may scale float32 ``values`` in place."""
        if not self.fitted:
            raise RuntimeError("Scaler used before fit")
        assert self.lo is not None and self.hi is not None
        if self.physical is not None:
            values, overwrite = self._to_physical(values), True
        if overwrite and values.dtype == np.float32:
            np.subtract(values, self.lo, out=values)
            np.divide(values, self.hi - self.lo, out=values)
            return values
        return ((values.astype(np.float32, copy=False) - self.lo) / (self.hi - self.lo)).astype(
            np.float32, copy=False
        )


class BlockSampler:
    """Bilinear sampling of a dataset at arbitrary pixel positions, block by block.

    Parameters
    ----------
    ds : rasterio dataset
    bands : sequence of int
        1-based band indexes to sample.

    Notes
    -----
    Blocks are read with block-aligned windows and kept in a cache until
    :meth:`release` is told which ones are still needed. ``blocks_read`` counts decodes.
    """

    def __init__(self, ds: Any, bands: Sequence[int]) -> None:
        self.ds = ds
        self.bands = list(bands)
        self.bh, self.bw, self.tiled = block_shape(ds)
        self.height, self.width = ds.height, ds.width
        self.nby = -(-self.height // self.bh)
        self.nbx = -(-self.width // self.bw)
        self.inverse = ~ds.transform
        # every band valid everywhere (no nodata, mask or alpha): dataset_mask is all 255
        from rasterio.enums import MaskFlags

        self._all_valid = all(MaskFlags.all_valid in f for f in ds.mask_flag_enums)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.blocks_read = 0
        self.last_ids = np.zeros(0, np.int64)

    # -- geometry
    def pixel_coords(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (row, col) with pixel centres at integers, from raster-CRS x, y."""
        a = self.inverse
        col = a.a * x + a.b * y + a.c
        row = a.d * x + a.e * y + a.f
        return row - 0.5, col - 0.5

    def blocks_for(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Sorted unique ids of the blocks the bilinear neighbours of the points need."""
        r0 = np.floor(rows).astype(np.int64)
        c0 = np.floor(cols).astype(np.int64)
        need = np.zeros(self.nby * self.nbx, dtype=bool)
        for dr in (0, 1):
            rr = r0 + dr
            ok_r = (rr >= 0) & (rr < self.height)
            brow = (rr // self.bh) * self.nbx
            for dc in (0, 1):
                cc = c0 + dc
                ok = ok_r & (cc >= 0) & (cc < self.width)
                need[(brow + cc // self.bw)[ok]] = True
        return np.flatnonzero(need).astype(np.int64)

    def blocks_for_segments(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """:meth:`blocks_for` of 2-D ``(n, m)`` points whose every row is a straight
        segment (the samples of a strip's station, affine in the column index).

        A segment's bilinear neighbours lie in the box spanned by its two ends' neighbours;
        where that box lies in one block the segment needs only that block, otherwise
        (near block edges, a few percent of the stations) its points are looked at one by
        one. The same ids as :meth:`blocks_for` on all the points, at a fraction of the cost.
        """
        ends_r = rows[:, [0, -1]]
        ends_c = cols[:, [0, -1]]
        with np.errstate(invalid="ignore"):
            lo_r = np.floor(ends_r.min(axis=1))
            hi_r = np.floor(ends_r.max(axis=1)) + 1
            lo_c = np.floor(ends_c.min(axis=1))
            hi_c = np.floor(ends_c.max(axis=1)) + 1
            # wholly inside the tile and inside one block: that block
            inside = (lo_r >= 0) & (hi_r < self.height) & (lo_c >= 0) & (hi_c < self.width)
            one = inside & (lo_r // self.bh == hi_r // self.bh) & (lo_c // self.bw == hi_c // self.bw)
        need = np.zeros(self.nby * self.nbx, dtype=bool)
        need[((lo_r[one] // self.bh) * self.nbx + lo_c[one] // self.bw).astype(np.int64)] = True
        rest = ~one
        if rest.any():
            need[self.blocks_for(rows[rest].ravel(), cols[rest].ravel())] = True
        return np.flatnonzero(need).astype(np.int64)

    # -- I/O
    def _read_block(self, bid: int) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.errors import RasterioIOError
        from rasterio.windows import Window

        by, bx = divmod(int(bid), self.nbx)
        r0, c0 = by * self.bh, bx * self.bw
        h = min(self.bh, self.height - r0)
        w = min(self.bw, self.width - c0)
        win = Window(c0, r0, w, h)
        full = np.zeros((self.bh, self.bw, len(self.bands)), dtype=self.ds.dtypes[self.bands[0] - 1])
        try:
            # decoded straight into the cache's (rows, cols, bands) layout
            out = full[:h, :w].transpose(2, 0, 1)
            data = self.ds.read(self.bands, window=win, out=out)
            if self._all_valid:
                mask = np.ones((h, w), bool)  # what dataset_mask returns, without reading
            else:
                mask = self.ds.dataset_mask(window=win) > 0
        except (RasterioIOError, OSError) as exc:
            # rasterio says "Read failed. See previous exception for details.": the
            # GDAL error that says what failed is the cause
            cause = exc.__cause__ or exc.__context__ or exc
            first = str(cause).splitlines()[0] if str(cause) else type(exc).__name__
            raise RasterReadError(
                f"failed to read pixels of {self.ds.name} at block row {by}, col {bx} "
                f"(is the file truncated or corrupt?): {first}"
            ) from None
        if data is not out:
            full[:h, :w] = np.moveaxis(data, 0, -1)
        if full.dtype.kind == "f":
            part = full[:h, :w]
            finite = np.isfinite(part)
            mask &= finite.all(axis=-1)
            part[~finite] = 0
        fmask = np.zeros((self.bh, self.bw), dtype=bool)
        fmask[:h, :w] = mask
        self.blocks_read += 1
        return full, fmask

    def ensure(self, ids: np.ndarray) -> None:
        """Decode the blocks in ``ids`` that are not cached yet."""
        for bid in ids.tolist():
            if bid not in self._cache:
                self._cache[bid] = self._read_block(bid)

    def release(self, keep: np.ndarray | None = None) -> None:
        """Drop cached blocks except those in ``keep``."""
        keep_set = set(keep.tolist()) if keep is not None else set()
        for bid in list(self._cache):
            if bid not in keep_set:
                del self._cache[bid]

    def _atlas(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cached blocks ``ids``, each with a 1-pixel apron from its neighbours.

        Returns data (K, bh + 2, bw + 2, bands) and mask (K, bh + 2, bw + 2); apron pixels
        of neighbours that are not cached (or lie off the tile) are invalid. With the
        apron all four bilinear neighbours of a point lie in one padded block.
        """
        bh, bw, nb = self.bh, self.bw, len(self.bands)
        k = ids.size
        first = self._cache[int(ids[0])][0]
        atlas = np.zeros((k, bh + 2, bw + 2, nb), dtype=first.dtype)
        matlas = np.zeros((k, bh + 2, bw + 2), dtype=bool)
        cache = self._cache
        # (destination rows, source rows) for neighbour offsets -1, 0, +1
        spans = {
            -1: (slice(0, 1), slice(-1, None)),
            0: (slice(1, -1), slice(None)),
            1: (slice(-1, None), slice(0, 1)),
        }
        spans_c = {
            -1: (slice(0, 1), slice(-1, None)),
            0: (slice(1, -1), slice(None)),
            1: (slice(-1, None), slice(0, 1)),
        }
        for i, bid in enumerate(ids.tolist()):
            by, bx = divmod(bid, self.nbx)
            for dy in (-1, 0, 1):
                y = by + dy
                if not 0 <= y < self.nby:
                    continue
                dr, sr = spans[dy]
                for dx in (-1, 0, 1):
                    x = bx + dx
                    if not 0 <= x < self.nbx:
                        continue
                    blk = cache.get(y * self.nbx + x)
                    if blk is None:
                        continue
                    dcs, scs = spans_c[dx]
                    atlas[i, dr, dcs] = blk[0][sr, scs]
                    matlas[i, dr, dcs] = blk[1][sr, scs]
        return atlas, matlas

    def pixels(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole pixels: values (N, bands) in the raw dtype's scale (float32) and
        validity (N,) of the pixels at integer ``rows``, ``cols``.

        Pixels off the tile are invalid. Reads (and caches) the blocks they lie in;
        :attr:`last_ids` names those blocks afterwards.
        """
        r = np.asarray(rows, dtype=np.int64).ravel()
        c = np.asarray(cols, dtype=np.int64).ravel()
        n, nb = r.size, len(self.bands)
        on = (r >= 0) & (r < self.height) & (c >= 0) & (c < self.width)
        r, c = np.where(on, r, 0), np.where(on, c, 0)
        by, bx = r // self.bh, c // self.bw
        bid = by * self.nbx + bx
        ids = np.unique(bid[on])
        self.ensure(ids)
        self.last_ids = ids
        if not ids.size:
            return np.zeros((n, nb), np.float32), np.zeros(n, bool)
        rr, cc = r - by * self.bh, c - bx * self.bw
        vals = np.zeros((n, nb), np.float32)
        valid = np.zeros(n, bool)
        # gathered block by block (a few blocks, many pixels): no copy of whole blocks
        order = np.argsort(np.where(on, bid, -1), kind="stable")
        starts = np.searchsorted(np.where(on, bid, -1)[order], ids)
        stops = np.append(starts[1:], n)
        for i, a, b in zip(ids.tolist(), starts.tolist(), stops.tolist()):
            sel = order[a:b]
            data, mask = self._cache[i]
            vals[sel] = data[rr[sel], cc[sel]]
            valid[sel] = mask[rr[sel], cc[sel]]
        vals[~valid] = 0.0
        return vals, valid

    def sample(
        self, rows: np.ndarray, cols: np.ndarray, *, segments: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear samples (N, bands) in the raw dtype's scale, and validity (N,).

        A sample is valid when its nearest pixel is inside the tile and valid; invalid
        neighbours are left out of the bilinear weights. ``segments=True`` says that
        ``rows`` and ``cols`` are 2-D and each of their rows a straight segment (see
        :meth:`blocks_for_segments`); the result is the same.
        """
        rows = np.asarray(rows, dtype=np.float64)
        cols = np.asarray(cols, dtype=np.float64)
        if segments and rows.ndim == 2 and rows.shape[1] >= 2:
            ids = self.blocks_for_segments(rows, cols)
            rows, cols = rows.ravel(), cols.ravel()
        else:
            rows, cols = rows.ravel(), cols.ravel()
            ids = self.blocks_for(rows, cols)
        n = rows.size
        nb = len(self.bands)
        self.ensure(ids)
        self.last_ids = ids
        if ids.size == 0:
            return np.zeros((n, nb), np.float32), np.zeros(n, bool)
        atlas, matlas = self._atlas(ids)
        pw = self.bw + 2
        flat = atlas.reshape(-1, nb)
        mflat = matlas.reshape(-1)
        lut = np.full(self.nby * self.nbx, -1, dtype=np.int64)
        lut[ids] = np.arange(ids.size)

        r0 = np.floor(rows).astype(np.int64)
        c0 = np.floor(cols).astype(np.int64)
        fr = (rows - r0).astype(np.float32)
        fc = (cols - c0).astype(np.float32)
        # the padded block that holds all four neighbours: the block of the top-left
        # neighbour clipped onto the tile (a neighbour off the tile is an invalid apron
        # pixel); points whose neighbours all lie off the tile, or in no listed block,
        # are invalid
        rc = np.clip(r0, 0, self.height - 1)
        cc = np.clip(c0, 0, self.width - 1)
        by, bx = rc // self.bh, cc // self.bw
        a = lut[by * self.nbx + bx]
        ok = (a >= 0) & (r0 >= -1) & (r0 < self.height) & (c0 >= -1) & (c0 < self.width)
        a = np.where(ok, a, 0)
        base = (a * (self.bh + 2) + (r0 - by * self.bh + 1)) * pw + (c0 - bx * self.bw + 1)
        base = np.where(ok, base, 0)
        acc = np.zeros((n, nb), np.float32)
        if (self._all_valid and n and ok.all() and int(r0.min()) >= 0 and int(c0.min()) >= 0
                and int(r0.max()) < self.height - 1 and int(c0.max()) < self.width - 1):
            # every neighbour on the tile and valid (the usual case): no masks to gather,
            # the same sums in the same order as below
            wsum = None
            for dr in (0, 1):
                wr = fr if dr else 1.0 - fr
                for dc in (0, 1):
                    wc = fc if dc else 1.0 - fc
                    w = wr * wc
                    v = np.take(flat, base + (dr * pw + dc), axis=0).astype(np.float32)
                    v *= w[:, None]
                    acc += v
                    wsum = w if wsum is None else wsum + w
            acc /= wsum[:, None]
            return acc, np.ones(n, bool)
        wsum = np.zeros(n, np.float32)
        for dr in (0, 1):
            wr = fr if dr else 1.0 - fr
            for dc in (0, 1):
                wc = fc if dc else 1.0 - fc
                idx = base + (dr * pw + dc)
                m = np.take(mflat, idx) & ok  # np.take: several times faster than [idx]
                w = (wr * wc) * m
                v = np.take(flat, idx, axis=0).astype(np.float32)
                v *= w[:, None]
                acc += v
                wsum += w
        near = base + (fr >= 0.5) * pw + (fc >= 0.5)
        nearest_valid = np.take(mflat, near) & ok
        valid = nearest_valid & (wsum > 0)
        out = np.divide(acc, wsum[:, None], out=np.zeros_like(acc), where=wsum[:, None] > 0)
        return out, valid


def road_frame(path: RoadPath, chord: np.ndarray, smooth_m: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Centre points and left-pointing unit normals at local arc lengths ``chord``.

    The tangent is the chord between points ``smooth_m`` before and after, so normals
    turn smoothly at the road's vertices.
    """
    chord = np.asarray(chord, dtype=float)
    end = path.chord_m[-1]
    p = path.xy_at_chord(chord)
    a = path.xy_at_chord(np.clip(chord - smooth_m, 0.0, end))
    b = path.xy_at_chord(np.clip(chord + smooth_m, 0.0, end))
    t = b - a
    norm = np.hypot(t[..., 0], t[..., 1])
    norm = np.where(norm > 0, norm, 1.0)
    t = t / norm[..., None]
    normal = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    return p, normal


@dataclass
class Strip:
    """A straightened piece of the road corridor.

    Attributes
    ----------
    image : ndarray (rows, cols, bands) float32
        Scaled pixel values (about 0..1).
    valid : ndarray (rows, cols) bool
    step_m : float
        Ground spacing of rows and columns.
    half_width_m : float
        Columns span offsets -half_width_m .. +half_width_m.
    chord0 : float
        Local arc length at the top edge of row 0.
    path : RoadPath
    """

    image: np.ndarray
    valid: np.ndarray
    step_m: float
    half_width_m: float
    chord0: float
    path: RoadPath

    @property
    def n_rows(self) -> int:
        return int(self.image.shape[0])

    def chord_at_row(self, row: np.ndarray | float) -> np.ndarray:
        """Local arc length at (fractional, edge-based) row coordinates."""
        return self.chord0 + np.asarray(row, dtype=float) * self.step_m

    def station_at_row(self, row: np.ndarray | float) -> np.ndarray:
        """Geodesic station from the head at edge-based row coordinates."""
        return self.path.station_at_chord(self.chord_at_row(row))

    def offset_at_col(self, col: np.ndarray | float) -> np.ndarray:
        """Lateral offset in metres (positive = left) at edge-based column coordinates."""
        return -self.half_width_m + np.asarray(col, dtype=float) * self.step_m

    def xy_at(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Local-frame (x, y) of edge-based strip coordinates; shape (..., 2)."""
        p, n = road_frame(self.path, self.chord_at_row(row))
        o = self.offset_at_col(col)
        return p + n * o[..., None]

    def lonlat_at(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """WGS84 (lon, lat) of edge-based strip coordinates; shape (..., 2)."""
        xy = self.xy_at(row, col)
        lon, lat = geo.transformer(self.path.local_crs, geo.WGS84).transform(xy[..., 0], xy[..., 1])
        return np.stack([np.asarray(lon), np.asarray(lat)], axis=-1)


#: stations between two exact reprojections of the sample frame (see _sample_points)
_ANCHOR_EVERY = 64


def _sample_points(
    sampler: BlockSampler, path: RoadPath, chord: np.ndarray, offsets: np.ndarray, raster_crs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (row, col) of every (station, offset) sample, shape (rows, cols) each.

    The map from the road's local frame to the raster CRS is reprojected exactly at one
    anchor on the centreline every ``_ANCHOR_EVERY`` stations and linearised around it
    (its Jacobian from two more points 1 m away): no sample is farther than 32 stations
    plus the half-width from its anchor, where the second-order term of any conformal or
    equirectangular map is below a thousandth of a pixel (about 3e-5 m at 0.5 m pixels
    and 42.7 degrees N in EPSG:4326). Reprojecting every point costs pyproj half a
    microsecond each, about as much as the bilinear sampling itself.
    """
    p, n = road_frame(path, chord)
    m = len(chord)
    k = _ANCHOR_EVERY
    anchor = np.minimum(np.arange(k // 2, m + k - 1, k)[: -(-m // k)], m - 1)
    q = p[anchor]
    pts = np.concatenate([q, q + (1.0, 0.0), q + (0.0, 1.0)])
    x, y = geo.transformer(path.local_crs, raster_crs).transform(pts[:, 0], pts[:, 1])
    # to pixel space at once (the geotransform is affine too): columns (col, row)
    r, c = sampler.pixel_coords(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    rc = np.stack([c, r], axis=-1).reshape(3, -1, 2)
    at, jx, jy = rc[0], rc[1] - rc[0], rc[2] - rc[0]   # per anchor: value, d/dx, d/dy
    blk = np.arange(m) // k
    d = p - q[blk]
    centre = at[blk] + jx[blk] * d[:, :1] + jy[blk] * d[:, 1:]
    across = jx[blk] * n[:, :1] + jy[blk] * n[:, 1:]       # pixels per metre of offset
    off = np.asarray(offsets, dtype=float)[None]
    cols = centre[:, :1] + across[:, :1] * off
    rows = centre[:, 1:] + across[:, 1:] * off
    return rows, cols


def _strip_columns(half_width_m: float, step_m: float) -> tuple[int, float]:
    """Number of columns of a strip and its exact half-width (a whole number of steps)."""
    n_cols = max(2, int(round(2 * half_width_m / step_m)))
    return n_cols, n_cols * step_m / 2.0


def strip_points(
    sampler: BlockSampler,
    path: RoadPath,
    raster_crs: Any,
    *,
    chord_start: float,
    n_rows: int,
    step_m: float,
    half_width_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The raster (row, col) of every pixel of the strip :func:`build_strip` makes with
    the same arguments, shape (n_rows, n_cols) each (pixel centres at integers)."""
    n_cols, half = _strip_columns(half_width_m, step_m)
    offsets = -half + (np.arange(n_cols) + 0.5) * step_m
    chord = chord_start + (np.arange(n_rows) + 0.5) * step_m
    return _sample_points(sampler, path, chord, offsets, raster_crs)


def build_strip(
    sampler: BlockSampler,
    path: RoadPath,
    raster_crs: Any,
    scaler: Scaler,
    *,
    chord_start: float,
    n_rows: int,
    step_m: float,
    half_width_m: float,
) -> Strip:
    """Resample one piece of the corridor into a :class:`Strip`.

    Parameters
    ----------
    sampler : BlockSampler
    path : RoadPath
    raster_crs : CRS-like
    scaler : Scaler
        Fitted on this piece's valid samples when not fitted yet.
    chord_start : float
        Local arc length of the top edge of the first row.
    n_rows : int
    step_m : float
    half_width_m : float
    """
    n_cols, half = _strip_columns(half_width_m, step_m)
    rows, cols = strip_points(sampler, path, raster_crs, chord_start=chord_start, n_rows=n_rows,
                              step_m=step_m, half_width_m=half_width_m)
    raw, valid = sampler.sample(rows, cols, segments=True)
    if not scaler.fitted and valid.any():
        scaler.fit(raw[valid])
    nb = raw.shape[1]
    if scaler.fitted:
        img = scaler(raw, overwrite=True)
    else:
        img = np.zeros_like(raw, dtype=np.float32)
    if not valid.all():
        img[~valid] = 0.0
    return Strip(
        image=img.reshape(n_rows, n_cols, nb),
        valid=valid.reshape(n_rows, n_cols),
        step_m=step_m,
        half_width_m=half,
        chord0=chord_start,
        path=path,
    )


def coverage_chords(
    sampler: BlockSampler, path: RoadPath, raster_crs: Any, *, step_m: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Centreline positions every ``step_m`` and whether each lies on the tile.

    Returns local arc lengths and a bool array (inside the raster footprint). Reads no
    pixels.
    """
    end = float(path.chord_m[-1])
    chord = np.arange(0.0, end + step_m, step_m)
    chord = np.minimum(chord, end)
    p = path.xy_at_chord(chord)
    x, y = geo.transformer(path.local_crs, raster_crs).transform(p[:, 0], p[:, 1])
    r, c = sampler.pixel_coords(np.asarray(x), np.asarray(y))
    inside = (r >= -0.5) & (r < sampler.height - 0.5) & (c >= -0.5) & (c < sampler.width - 0.5)
    inside &= np.isfinite(r) & np.isfinite(c)
    return chord, inside


@dataclass(frozen=True)
class Piece:
    """One piece of a road side: its strip and the rows whose results it owns."""

    strip: Strip
    core_start: int
    core_stop: int
    index: int
    off_tile: bool = False


def iter_strips(
    sampler: BlockSampler,
    path: RoadPath,
    raster_crs: Any,
    scaler: Scaler,
    *,
    step_m: float,
    half_width_m: float,
    chord_end: float | None = None,
    piece_m: float = 1500.0,
    overlap_m: float = 100.0,
    coverage: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[Piece]:
    """Cut a road side into overlapping pieces and yield their strips in order.

    Each piece covers ``piece_m`` of road (its *core*) plus ``overlap_m`` on both sides
    for context. ``coverage`` is the output of :func:`coverage_chords` (centreline
    positions and whether each lies on the tile): a piece none of whose corridor comes
    near the tile is yielded as an all-invalid strip (``off_tile``) without reading
    anything. Blocks no longer needed are dropped from the cache as it goes, so memory
    is bounded by about two pieces' blocks.
    """
    end = float(path.chord_m[-1]) if chord_end is None else float(chord_end)
    n_total = max(1, int(np.ceil(end / step_m)))
    core_rows = max(1, int(round(piece_m / step_m)))
    ov = int(round(overlap_m / step_m))
    starts = range(0, n_total, core_rows)
    for k, c0 in enumerate(starts):
        c1 = min(n_total, c0 + core_rows)
        # context on both sides, also before the head and past the road's end (the road
        # extended straight), so a vehicle standing at the head is seen whole
        a, b = c0 - ov, c1 + ov
        off_tile = False
        if coverage is not None:
            chords, inside = coverage
            margin = half_width_m + 2 * step_m
            near = (chords >= a * step_m - margin) & (chords <= b * step_m + margin)
            off_tile = not inside[near].any()
        if off_tile:
            n_cols, half = _strip_columns(half_width_m, step_m)
            nb = len(sampler.bands)
            strip = Strip(
                image=np.zeros((b - a, n_cols, nb), np.float32),
                valid=np.zeros((b - a, n_cols), bool),
                step_m=step_m,
                half_width_m=half,
                chord0=a * step_m,
                path=path,
            )
        else:
            strip = build_strip(
                sampler, path, raster_crs, scaler,
                chord_start=a * step_m, n_rows=b - a, step_m=step_m, half_width_m=half_width_m,
            )
        yield Piece(strip, c0 - a, c1 - a, k, off_tile)
        # keep the blocks this piece used: the next piece's overlap needs some of them
        sampler.release(sampler.last_ids)


def _gdal_options() -> dict[str, Any]:
    """The GDAL options of the calling thread's ``rasterio.Env`` (empty without one)."""
    try:
        from rasterio.env import getenv

        return dict(getenv())
    except Exception:  # no Env in this thread
        return {}


def prefetched(items: Iterable[T], *, depth: int = 1) -> Iterator[T]:
    """Iterate ``items`` on a background thread, ``depth`` items ahead of the caller.

    Used to read and resample the next piece of the corridor (GDAL decodes without the
    GIL) while the caller detects vehicles in the current one. The producer thread is the
    only one that touches the sampler and its dataset while this runs; it runs under the
    caller's ``rasterio.Env`` options. Exceptions are re-raised in the caller; closing
    the iterator early stops the thread after the piece it is working on. Set the
    environment variable ``QUEUEMEASURE_PREFETCH=0`` to iterate in the calling thread.
    """
    if os.environ.get("QUEUEMEASURE_PREFETCH", "1") == "0":
        yield from items
        return
    opts = _gdal_options()
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            import rasterio

            with rasterio.Env(**opts):
                for item in items:
                    if not put((None, item)):
                        return
        except BaseException as exc:  # handed to the caller
            put((exc, None))
            return
        put((None, done))

    t = threading.Thread(target=work, name="queuemeasure-prefetch", daemon=True)
    t.start()
    try:
        while True:
            exc, item = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        t.join()
