"""Segment vehicles in a straightened road strip, without trained weights.

The strip comes from :mod:`queuemeasure.corridor`: rows are stations along the road (row 0
nearest the head of the queue), columns are offsets across it (the centreline is the middle
column), both sampled every ``step_m`` metres. :func:`detect_vehicles` works in six steps:

1. **Working grid.** Strips finer than 0.25 m are area-averaged to about 0.25 m (a car is
   still 18 x 7 pixels); results are mapped back to the input's pixels.
2. **Road-surface model.** On blocks of ~2 m along the road, the most frequent brightness
   over the carriageway in a 16 m window (the mode of a histogram: cars spread over many
   tones, the road is one tone; pixels greener than the zone's greyest fifth -- grass
   verges beside lanes full of vehicles -- do not vote) is the surface (a mode that jumps
   away from its neighbours', held by few pixels in few columns, is a long vehicle's roof,
   e.g. a bus among dark cars, and is replaced by their running median); its colour comes
   from the pixels that look like it, and a per-column offset (40 m) follows lanes of
   another tone and wheel tracks. The noise is the spread of the residual after that
   offset (not of the whole zone, which lanes and shoulders of other tones widen), at
   least a floor for the road's own grain; the spread of its colour, for the anomaly, is
   the median distance of road-like pixels (in brightness and colour) from their own mean
   colour (coloured vehicles of the road's brightness fill a dense queue's zone and would
   pull the colour and widen a mean). Block values are interpolated to every row.
3. **Anomaly.** Brightness and chroma distance from the surface in units of its noise;
   lines along the road (nothing anomalous ~0.8 m to either side: markings, kerbs,
   dashes) and what is thinner than ~1 m are removed, anything wider than a vehicle
   across the road (3.4 m: verges, pavements, tone changes, large shadows) by a top-hat,
   on the parts darker and lighter than the road apart (two vehicles abreast with the
   shadow between them are not one wide thing; a verge or a shadow is one or the other),
   and on both together within 2 m of vegetation (foliage is light and dark clumps).
   Then an **edge texture** joins: the along-road gradient energy within 1.5 m before
   *and* after a pixel, relative to the road's, is high inside a vehicle (bumpers,
   windscreen, rear window, roof edges) whatever its tone -- grey and silver cars on
   grey asphalt, two lanes of vehicles side by side -- and does not spread past its ends.
   Columns that are uniform along the road are judged against their own median, except
   in lanes crossed by such edges (a queue of vehicles of one tone). Vegetation (green
   and textured) is suppressed, and so are the shadows the vehicles cast: the direction
   of the sun is read off the strip (the offset at which dark pixels lie beside bright
   bodies and not on their other side), and dark pixels within that offset of a bright
   body are its shadow -- except that dark pixels with bright body on both sides along
   that offset (a windscreen, a rear window) rejoin the pieces of a light vehicle they
   cut apart, when a piece is too short to be a vehicle and the whole no longer than one.
4. **Carriageway.** Columns where the road surface is seen along a good share of a 30 m
   window (in the gaps of a queue, beside its vehicles), closed over a lane's width, are
   the carriageway; objects mostly off it (yards, roofs, trees beside a street the
   centreline does not follow exactly) are dropped.
5. **Segmentation and splitting.** Hysteresis threshold, morphology sized in metres,
   labelling; blobs wider than a vehicle are cut into lanes; blobs longer than a car are
   cut into vehicles where a row looks like the space between two vehicles (road or grey
   shadow across the blob, or a deep dip of the anomaly), by dynamic programming with a
   prior on vehicle lengths; a long blob with no such row inside (a truck's uniform roof)
   stays whole (pieces of 4.6 m are preferred within the car prior). A blob too narrow
   to hold a valley between two lanes is not cut into lanes unless it has one; its faint
   side columns are trimmed instead. Grey shadow rows and columns at the ends of a bright
   body (its cast shadow) are trimmed off the footprint, and so are faint end rows (under
   35 % of the body's response: blur, the hysteresis' low threshold); a dark piece
   narrower than a vehicle, cut off on the shadow side of one, is dropped. A lane piece
   that is dark grey, smooth and reaches off the carriageway's core is a tree's crown
   hanging over the road's edge: it is dropped, and so is a dark piece on its shadow side.
6. **Scoring.** Contrast relative to the threshold times a size plausibility; ``kind`` from
   the length; rows where the carriageway is hidden (nodata, canopy) are ``occluded``.

Every statistic is computed in windows of at most ~40 m along the road, so results do not
depend on where a long road was cut into pieces (beyond a pixel's worth of jitter from the
block grid) -- except the direction of the sun, one per strip: it is the same all over a
scene, and a strip with too few bright vehicles to read it off simply keeps its shadows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np
from scipy import ndimage as ndi

from ._blobs import _CROSS, CAR_LEN, MAX_VEH_WIDTH_M, MIN_TRIMMED_WIDTH_M, BlobContext, analyse_blob, pct, split_across
from .._types import StripDetections, StripVehicle, strip_input
from ._stats import (Blocks, _running, binary_closing, binary_dilation, binary_opening, fill_nan, hist_mode,
                     hist_quantile, odd, open_running, opening, ratio)

__all__ = ["StripVehicle", "StripDetections", "detect_vehicles"]


# --------------------------------------------------------------------------------------
# parameters (metres unless stated)
_WORK_STEP_M = 0.25  # finer strips are area-averaged to about this
_BLOCK_M = 2.0  # rows are grouped in blocks of about this for surface statistics
_SURF_WIN_M = 16.0  # along-road window of the surface mode
_MODE_MED_M = 40.0  # a surface mode this far from the running median of the modes over this
_MODE_SPIKE = 4.0  # ... window (in noise units),
_ROOF_SHARE = 0.15  # ... holding under this share of the window's pixels,
_ROOF_COLS = 0.3  # ... in under this share of its columns, is a vehicle's roof (a bus)
_COL_WIN_M = 40.0  # along-road window of the per-column tone offset and column model
_COLBLOCK_M = 4.0  # block length of the per-column medians
_CARRIAGE_WIN_M = 30.0  # along-road window of the carriageway estimate
_CARRIAGE_FRAC = 0.15  # share of road-like pixels that makes a column carriageway
_CARRIAGE_CLOSE_M = 3.0  # columns between carriageway columns (a lane full of vehicles)
_CARRIAGE_GROW_M = 1.6  # grown by this across (a vehicle at the kerb)
_NOISE_FLOOR = 0.02  # the road's own pixel-to-pixel tone variation at _FLOOR_REF_M pixels
_FLOOR_REF_M = 0.5  # (grain, patches, compression); larger pixels average it down
_CHROMA_FLOOR = 0.008
_GREY_TOL = 0.04  # pixels greener than the zone's greyest fifth by this are not surface
_T0 = 4.0  # anomaly threshold (noise units) at sensitivity 1
_LOW_FRAC = 0.55  # hysteresis low threshold, fraction of the threshold
_THIN_M = 1.0  # grey opening size removing thin markings
_LINE_GAP_M = 0.8  # a line: nothing anomalous this far to either side across the road
_LINE_K = 2.0  # ... i.e. at most 1 / _LINE_K of the pixel's anomaly
_WIDE_M = 3.4  # across-road size beyond which an anomaly is background
_WIDE_ALONG_M = 0.6
_TEX_W = 1.3  # weight of the edge texture (units of the road's own) in the anomaly
_TEX_REACH_M = 1.5  # edges within this distance before and after a pixel make texture
_TEX_WIN_M = 2.0  # smoothing of the texture that exempts queue lanes from the column model
_TEX_QUEUE = 2.2  # ... above this (road: ~0.5-0.8)
_GREEN = 0.06  # excess green (share of brightness) over the road's: vegetation
_MAX_SHADE_WIDTH_M = 4.5  # shade wider than this across the road is not a vehicle (two dark
# cars abreast, joined by their shadows, are about 4 m)
_SHADE_Z = 2.5  # darker than the road by this many noise units (and grey): shade
_SUN_M = 2.0  # cast shadows are searched up to this far from bright bodies
_SUN_MIN = 0.05  # asymmetry (share of bright body pixels) that fixes the sun's direction
_SHADOW_PIECE_W = 2.1  # a dark piece narrower than this beside a vehicle is its shadow
_JOINED_SHORT_M = CAR_LEN[0]  # pieces are rejoined across dark windows when one is shorter
_JOINED_MAX_M = CAR_LEN[1] + 0.8  # ... than a car, and all together no longer than this
_VEG_NEAR_M = 2.0  # this near vegetation, its light and dark parts are one wide thing
_CROWN_SHADE = 0.85  # a lane piece of a blob cut into lanes, this much of it grey shade,
_CROWN_ON = 0.8  # ... at most this much of it on the carriageway's core
_CROWN_TEX = 1.6  # ... and smoother than this (texture, units of the road's): a tree's crown


def _features(img: np.ndarray) -> np.ndarray:
    """Brightness and two opponent chroma channels, (rows, cols, 1 or 3) float32."""
    if img.shape[2] >= 3:
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        out = np.empty(img.shape[:2] + (3,), np.float32)
        out[..., 0] = (r + g + b) * np.float32(1 / 3)
        out[..., 1] = (r - g) * np.float32(1 / np.sqrt(2.0))
        out[..., 2] = (r + g - 2.0 * b) * np.float32(1 / np.sqrt(6.0))
        return out
    return img[..., :1]


@dataclass
class _Core:
    segments: list
    occluded: np.ndarray
    anomaly: np.ndarray
    surface: np.ndarray
    carriageway: np.ndarray


def _nanmedian(x: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian`` by one sort (NaN sorts last), without its slow masked-array path.

    Along a short axis, the medians of the NaN-free lines come from a sorting network;
    only the lines holding NaN are sorted.
    """
    if x.shape[axis] <= 32:
        out = _median_network(x, axis)
        nan = np.isnan(x)
        bad = nan.any(axis=axis)
        if bad.any():
            # lines of NaN only (most of those holding any: pixels off the image) are NaN;
            # only the others are sorted
            empty = nan.all(axis=axis)
            out[empty] = np.nan
            part = bad & ~empty
            if part.any():
                out[part] = _nanmedian_sorted(np.moveaxis(x, axis, -1)[part], axis=-1)
        return out
    return _nanmedian_sorted(x, axis)


def _nanmedian_sorted(x: np.ndarray, axis: int) -> np.ndarray:
    """:func:`_nanmedian` by one sort."""
    srt = np.sort(x, axis=axis)
    k = np.expand_dims(np.sum(~np.isnan(x), axis=axis), axis)
    lo = np.take_along_axis(srt, np.maximum(k - 1, 0) // 2, axis=axis)
    hi = np.take_along_axis(srt, np.minimum(k // 2, x.shape[axis] - 1), axis=axis)
    out = np.squeeze(0.5 * (lo + hi), axis=axis)
    out[np.squeeze(k, axis=axis) == 0] = np.nan
    return out


@lru_cache(maxsize=None)
def _median_comparators(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sort of ``n`` elements, only the comparators that the two
    middle outputs depend on."""
    p = 1
    while p < n:
        p *= 2

    def merge(lo: int, hi: int, r: int) -> Iterator[tuple[int, int]]:
        step = r * 2
        if step < hi - lo:
            yield from merge(lo, hi, step)
            yield from merge(lo + r, hi, step)
            yield from ((i, i + r) for i in range(lo + r, hi - r, step))
        else:
            yield (lo, lo + r)

    def sort(lo: int, hi: int) -> Iterator[tuple[int, int]]:
        if hi - lo >= 1:
            mid = lo + (hi - lo) // 2
            yield from sort(lo, mid)
            yield from sort(mid + 1, hi)
            yield from merge(lo, hi, 1)

    # padded to p elements with +inf, which no comparator moves: drop those touching them
    net = [(i, j) for i, j in sort(0, p - 1) if j < n]
    need = {(n - 1) // 2, n // 2}
    keep = []
    for i, j in reversed(net):
        if i in need or j in need:
            keep.append((i, j))
            need |= {i, j}
    return tuple(reversed(keep))


def _median_network(x: np.ndarray, axis: int) -> np.ndarray:
    """Median along a short ``axis`` of NaN-free ``x`` by a sorting network of element-wise
    minima and maxima over whole slices: the same two middle values as a sort."""
    axis = axis % x.ndim
    n = x.shape[axis]
    v = [x[(slice(None),) * axis + (j,)] for j in range(n)]
    for i, j in _median_comparators(n):
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    return 0.5 * (v[(n - 1) // 2] + v[n // 2])


def _column_anomaly(feat: np.ndarray, ok: np.ndarray, mode: np.ndarray, sig: np.ndarray,
                    csig: np.ndarray | None, step: float) -> np.ndarray:
    """Anomaly against each column's own along-road median, where that column is uniform.

    Kerbs, pavements, verges, solid and dashed lines and lanes of another tone are uniform
    along the road: more than half of a 40 m window lies close to the window's median. A
    lane holding a queue is not (cars of many tones, gaps), so there the row-wise surface
    model rules. Medians of ~4 m blocks, then a running median of those over 40 m,
    interpolated back to the rows.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    rows, cols, nf = feat.shape
    blocks = Blocks(rows, odd(_COLBLOCK_M / step))
    B, n = blocks.size, blocks.n
    x = feat.copy()  # np.where over the short band axis is several times slower
    x.reshape(-1, nf)[~ok.ravel()] = np.nan  # (pixels as rows: a faster mask assignment)
    pad = n * B - rows
    if pad:
        x = np.concatenate([x, np.full((pad, cols, nf), np.nan, np.float32)], axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bm = _nanmedian(x.reshape(n, B, cols, nf), axis=1)
        half = max(1, int(round(0.5 * _COL_WIN_M / (B * step))))
        xp = np.pad(bm, ((half, half), (0, 0), (0, 0)), mode="reflect") if n > 1 else bm
        if n > 1:
            med_b = _nanmedian(sliding_window_view(xp, 2 * half + 1, axis=0), axis=-1)
        else:
            med_b = bm
    med_b = fill_nan(med_b)
    med = blocks.to_rows(med_b)
    za = np.abs(feat[..., 0] - med[..., 0]) / sig[:, None]
    close = za < 2.5
    if csig is not None:
        zc = np.hypot(feat[..., 1] - med[..., 1], feat[..., 2] - med[..., 2]) / csig[:, None]
        close &= zc < 2.5
        za = np.maximum(za, zc)
    sup_b = ratio(blocks.window(blocks.sum(close & ok), _COL_WIN_M, step),
                  blocks.window(blocks.sum(ok.astype(np.float32)), _COL_WIN_M, step), 0.0)
    support = blocks.to_rows(sup_b)
    return np.where(support > 0.5, za, np.inf).astype(np.float32)


def _despike_mode(mode_b: np.ndarray, sig_b: np.ndarray, lum: np.ndarray, w: np.ndarray, blocks: Blocks,
                  step: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Replace a block's surface mode that is a long vehicle's roof, not the road.

    A long vehicle of one tone (a bus's white roof) standing among dark cars can make the
    sharpest peak of the brightness histogram although the asphalt between the cars holds
    more pixels, and its roof becomes the surface mode wherever the window is centred on
    it: the whole road there then reads as dark shade, and the cars around it as one shadow
    wider than the road. Such a mode jumps more than ``_MODE_SPIKE`` noise units away from
    the running median of the modes over ``_MODE_MED_M`` (the road's tone changes slowly or
    in steps, which the median follows), holds few of the window's pixels (under
    ``_ROOF_SHARE``) and those in few of its columns (under ``_ROOF_COLS``: one vehicle, not
    the road's width -- a patch or a shadow across the road covers its width and stays the
    surface). Its mode is the median instead, and its spread that of the nearest block kept.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    half = int(round(0.5 * _MODE_MED_M / (blocks.size * step)))
    if blocks.n < 3 or half < 1:
        return mode_b, sig_b
    med = np.median(sliding_window_view(np.pad(fill_nan(mode_b), half, mode="edge"), 2 * half + 1), axis=-1)
    sig_k = np.maximum(np.nan_to_num(sig_b), floor)
    with np.errstate(invalid="ignore"):
        cand = np.abs(mode_b - med) > _MODE_SPIKE * sig_k
    if not cand.any():
        return mode_b, sig_b
    cols = np.flatnonzero(w.any(axis=0))
    if not cols.size:
        return mode_b, sig_b
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    # the rows of each candidate's window (those of the histogram that made its mode), all
    # candidates at once
    reach = odd(_SURF_WIN_M / (blocks.size * step)) // 2
    ks = np.flatnonzero(cand)
    ridx = (ks - reach)[:, None] * blocks.size + np.arange((2 * reach + 1) * blocks.size)[None, :]
    inside = (ridx >= 0) & (ridx < lum.shape[0])
    ridx = np.clip(ridx, 0, lum.shape[0] - 1)
    inz = (w[:, c0:c1][ridx] > 0) & inside[..., None]  # (candidates, rows, columns)
    at = (np.abs(lum[:, c0:c1][ridx] - mode_b[ks, None, None]) < 2.5 * sig_k[ks, None, None]) & inz
    n = np.count_nonzero(inz, axis=(1, 2))
    col_share = np.count_nonzero(at, axis=1) / np.maximum(np.count_nonzero(inz, axis=1), 1)
    spike = np.zeros_like(cand)
    spike[ks] = (n > 0) & (np.count_nonzero(at, axis=(1, 2)) < _ROOF_SHARE * n) \
        & (np.count_nonzero(col_share >= 0.2, axis=1) < _ROOF_COLS * (c1 - c0))
    if not spike.any():
        return mode_b, sig_b
    return np.where(spike, med, mode_b), np.where(spike, np.nan, sig_b)


def _wider_than(metres: float, step: float) -> int:
    """The fewest pixels that span more than ``metres``: the size of a structuring element
    that removes what is wider than that, and keeps what is not (``odd(3.4 / 1.0) = 3``
    pixels would remove a 2.5 m truck blurred over three 1 m pixels)."""
    return int(np.floor(metres / step + 1e-9)) + 1


def _shift(m: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """``out[r, c] = m[r - dr, c - dc]`` (False beyond the edges)."""
    out = np.zeros_like(m)
    R, C = m.shape
    if abs(dr) >= R or abs(dc) >= C:
        return out
    out[max(dr, 0):R + min(dr, 0), max(dc, 0):C + min(dc, 0)] = \
        m[max(-dr, 0):R + min(-dr, 0), max(-dc, 0):C + min(-dc, 0)]
    return out


def _pairs_at(m: np.ndarray, other: np.ndarray, offsets: list[tuple[int, int]],
              reach: int) -> dict[tuple[int, int], float]:
    """``float((_shift(m, dr, dc) & other).sum())`` for each offset (``|dr|, |dc| <= reach``):
    ``other`` looked up at the offsets from ``m``'s pixels, in a copy of ``other`` padded
    with ``reach`` False pixels."""
    R, C = m.shape
    width = C + 2 * reach
    padded = np.zeros((R + 2 * reach, width), bool)
    padded[reach:reach + R, reach:reach + C] = other
    flat = padded.ravel()
    rr, cc = np.nonzero(m)
    base = (rr + reach) * width + (cc + reach)
    return {(dr, dc): float(np.count_nonzero(np.take(flat, base + (dr * width + dc))))
            for dr, dc in offsets}


def _cast_shadow(anom: np.ndarray, zl: np.ndarray, shade: np.ndarray, ok: np.ndarray,
                 step: float, threshold: float) -> tuple[np.ndarray | None, tuple[int, int] | None]:
    """Shadows cast by the vehicles: dark pixels next to a bright body, away from the sun.

    The sun is the same for the whole strip: the offset at which ``shade`` (dark pixels,
    on asphalt or on a verge) most often lies beside bright bodies, and not on their other
    side, is the direction of the shadows; dark pixels within that offset of a bright body
    are returned, with the offset ``(rows, cols)``. ``(None, None)`` when the strip holds
    too few bright bodies to tell.
    """
    body = (anom >= threshold) & (zl > 2.0) & ok
    nb = int(body.sum())
    if nb < 4.0 / step**2:
        return None, None, None
    R = max(1, int(round(_SUN_M / step)))
    offsets = [(dr, dc) for dr in range(-R, R + 1) for dc in range(-R, R + 1)
               if (dr, dc) != (0, 0) and dr * dr + dc * dc <= R * R]
    # shade pixels at each offset from a body pixel, counted once per offset
    count = _pairs_at(body, shade, offsets, R)
    best, bd = 0.0, None
    for dr, dc in offsets:
        a = count[(dr, dc)]
        b = count[(-dr, -dc)]
        if a - b > best:
            best, bd = a - b, (dr, dc)
    if bd is None or best < _SUN_MIN * nb:
        return None, None, None
    n = max(abs(bd[0]), abs(bd[1]))
    reach = np.zeros_like(body)
    ahead = np.zeros_like(body)
    for t in range(1, n + 1):
        f = t / n
        dr, dc = int(round(bd[0] * f)), int(round(bd[1] * f))
        reach |= _shift(body, dr, dc)
        ahead |= _shift(body, -dr, -dc)
    cast = reach & shade & ~body
    # dark pixels with bright body on their sunny side and again on their shadow side,
    # within the shadow's reach: a windscreen or rear window inside a light vehicle, or the
    # shadow in a short gap between two light vehicles (which only the pieces' lengths tell)
    return cast, bd, cast & ahead


def _block_sums(v: np.ndarray) -> np.ndarray:
    """Sums over axes 1 and 3 of ``v`` (blocks of f x f pixels), adding the views in
    row-major order."""
    f_r, f_c = v.shape[1], v.shape[3]
    out = v[:, 0, :, 0].copy()
    for a in range(f_r):
        for b in range(f_c):
            if a or b:
                out += v[:, a, :, b]
    return out


def _downsample(img: np.ndarray, ok: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols, nb = img.shape
    R, C = -(-rows // f) * f, -(-cols // f) * f
    x = np.zeros((R, C, nb), np.float32)
    w = np.zeros((R, C), np.float32)
    x[:rows, :cols] = img * ok[..., None]
    w[:rows, :cols] = ok
    if nb >= 2:
        # numpy sums the f x f pixels of a block in row-major order into each band (the
        # band axis is its inner loop): the same additions as views, several times faster
        xs = _block_sums(x.reshape(R // f, f, C // f, f, nb))
    else:
        xs = x.reshape(R // f, f, C // f, f, nb).sum(axis=(1, 3))
    # (whole numbers of valid pixels: exact in any order)
    ws = _block_sums(w.reshape(R // f, f, C // f, f))
    okw = ws >= 0.5 * f * f
    xs = xs / np.maximum(ws, 1e-9)[..., None]
    return np.where(okw[..., None], xs, 0.0).astype(np.float32), okw


def _road_chroma(
    feat: np.ndarray, rw: np.ndarray, blocks: Blocks, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """The weight of road-like pixels per block window, and every pixel's chroma distance
    from their mean colour there (``rw``: the pixels' road-likeness weights)."""
    n_b = blocks.window(blocks.sum(rw.sum(1)), _SURF_WIN_M, step)
    ch_b = np.stack([blocks.window(blocks.sum((feat[..., c] * rw).sum(1)), _SURF_WIN_M, step)
                     for c in (1, 2)], axis=1)
    chroma = blocks.to_rows(fill_nan(ratio(ch_b, n_b[:, None])))
    dc = np.hypot(feat[..., 1] - chroma[:, None, 0], feat[..., 2] - chroma[:, None, 1])
    return n_b, dc


def _core(img: np.ndarray, ok: np.ndarray, offs: np.ndarray, step: float, half_width_m: float,
          threshold: float, min_score: float, rows_of_interest: tuple[int, int] | None = None) -> _Core:
    rows, cols, nbands = img.shape
    zone = np.abs(offs) <= half_width_m
    if not zone.any():
        zone = np.abs(offs) <= np.abs(offs).min() + step
    zone_w = zone.astype(np.float32)
    blocks = Blocks(rows, odd(_BLOCK_M / step))
    feat = _features(img)
    lum = feat[..., 0]
    rgb = feat.shape[2] == 3

    # ---- road-surface model ----------------------------------------------------------
    w = ok * zone_w[None, :]
    if nbands >= 3:
        # the surface is grey: grass verges beside lanes full of vehicles must not become
        # the surface mode (their tone can match the road's, their colour cannot)
        rgbsum = img[..., 0] + img[..., 1] + img[..., 2] + np.float32(0.05)
        exg = (2 * img[..., 1] - img[..., 0] - img[..., 2]) / rgbsum
        exg_s = ndi.uniform_filter(exg, odd(1.0 / step))
        ref = blocks.to_rows(fill_nan(hist_quantile(exg_s, w, blocks, _SURF_WIN_M, step, 0.2, -0.5, 0.5, 200)))
        w = w * (exg_s < ref[:, None] + _GREY_TOL)
    mode_b, sig_b = hist_mode(lum, w, blocks, _SURF_WIN_M, step)
    floor = _NOISE_FLOOR * min(1.0, float(np.sqrt(_FLOOR_REF_M / step)))
    mode_b, sig_b = _despike_mode(mode_b, sig_b, lum, w, blocks, step, floor)
    mode = blocks.to_rows(fill_nan(mode_b))
    sig = blocks.to_rows(np.maximum(fill_nan(sig_b), floor))
    zl0 = (lum - mode[:, None]) / sig[:, None]
    roadlike = (np.abs(zl0) < 2.5) & ok
    if rgb:
        rw = roadlike * zone_w[None, :]
        n_b, dc = _road_chroma(feat, rw, blocks, step)
        cs_b = blocks.window(blocks.sum((dc * rw).sum(1)), _SURF_WIN_M, step)
        csig = np.maximum(blocks.to_rows(fill_nan(ratio(cs_b, n_b))) * 1.25, _CHROMA_FLOOR)
        zc = dc / csig[:, None]
        roadlike &= zc < 2.5
        # for the anomaly, the spread of the road's colour is the median distance of the
        # pixels like the road in brightness and in colour from their own mean colour:
        # vehicles of the road's brightness but of another colour fill much of a dense
        # queue's zone, and pulled the colour and drowned red, blue and green vehicles in a
        # wide spread (the mean spread above still decides what is road-like and what is
        # grey shade, which tinted shadows between bumper-to-bumper cars must remain)
        rw = roadlike * zone_w[None, :]
        n_b, dc = _road_chroma(feat, rw, blocks, step)
        cmed_b = hist_quantile(dc, rw, blocks, _SURF_WIN_M, step, 0.5, 0.0, 0.25, 250)
        csig_r = np.maximum(blocks.to_rows(fill_nan(cmed_b)) * (1.25 * 1.2533 / 1.1774), _CHROMA_FLOOR)
        zc_anom = dc / csig_r[:, None]
    else:
        zc = zc_anom = None
    # per-column offset (lanes of another tone, wheel tracks) from road-like pixels
    res_b = blocks.window(blocks.sum(np.where(roadlike, lum - mode[:, None], 0.0)), _COL_WIN_M, step)
    cnt_b = blocks.window(blocks.sum(roadlike.astype(np.float32)), _COL_WIN_M, step)
    need = 0.15 * _COL_WIN_M / step
    off_b = np.where(cnt_b > need, res_b / np.maximum(cnt_b, 1e-9), 0.0)
    surf_lum = mode[:, None] + blocks.to_rows(off_b)
    # the histogram of the whole zone is widened by lanes and shoulders of other tones,
    # which the per-column offset removes: the noise is the spread of the residual
    _, sr_b = hist_mode(lum - surf_lum, w, blocks, _SURF_WIN_M, step, lo=-0.8, hi=0.8)
    sig = np.maximum(np.minimum(sig, blocks.to_rows(fill_nan(sr_b))), floor)
    if not rgb:  # (with colour: the same pixels as the colour spread's, above)
        rw = roadlike * zone_w[None, :]
        n_b = blocks.window(blocks.sum(rw.sum(1)), _SURF_WIN_M, step)
    bands_b = np.stack([blocks.window(blocks.sum((img[..., b] * rw).sum(1)), _SURF_WIN_M, step)
                        for b in range(nbands)], axis=1)
    bands = blocks.to_rows(fill_nan(ratio(bands_b, n_b[:, None])))

    # ---- carriageway -------------------------------------------------------------------
    rl_b = blocks.window(blocks.sum(roadlike.astype(np.float32)), _CARRIAGE_WIN_M, step)
    ok_b = blocks.window(blocks.sum(ok.astype(np.float32)), _CARRIAGE_WIN_M, step)
    frac_b = ratio(rl_b, ok_b, 0.0)
    carr_b = frac_b >= _CARRIAGE_FRAC
    kc = odd(_CARRIAGE_CLOSE_M / step)
    if kc > 1:
        pad = np.pad(carr_b, ((0, 0), (kc, kc)), constant_values=False)
        carr_b = binary_closing(pad, np.ones((1, kc), bool))[:, kc:-kc]  # (by shifted views)
    blk_of_row = np.minimum(np.arange(rows) // blocks.size, blocks.n - 1)
    carr_core = carr_b[blk_of_row]
    kd = odd(_CARRIAGE_GROW_M / step)
    if kd > 1:
        carr_b = binary_dilation(carr_b, np.ones((1, 2 * kd + 1), bool))
    carriage = carr_b[blk_of_row]
    carriageway = _carriageway_extent(carr_b, offs)[blk_of_row]

    # ---- anomaly -----------------------------------------------------------------------
    zl = (lum - surf_lum) / sig[:, None]
    anom = np.abs(zl)
    if zc_anom is not None:
        anom = np.maximum(anom, zc_anom)
    anom = np.where(ok, anom, 0.0).astype(np.float32)
    # edges across the road on both sides of a pixel: the inside of a vehicle, whatever
    # its tone (grey and silver cars on grey asphalt differ from it only there)
    tz = _edge_texture(lum, ok, rw, n_b, blocks, step)
    colz = _column_anomaly(feat, ok, mode, sig, csig if rgb else None, step)
    # a lane full of vehicles of one tone looks uniform along the road to the column
    # model, but it is crossed by their edges: there the row-wise surface model rules
    kw = odd(_TEX_WIN_M / step)
    queue_lane = carr_core & (ndi.uniform_filter(tz, (kw, kw)) > _TEX_QUEUE)
    anom = np.minimum(anom, np.where(queue_lane, np.inf, colz))
    k = odd(_THIN_M / step)
    anom_o = _thin_removed(anom, step, k)
    wide = (odd(_WIDE_ALONG_M / step), _wider_than(_WIDE_M, step))
    # what is wider than a vehicle is background (a verge, a lane of another tone, a tree's
    # shadow), taken off the dark and the light part of the anomaly apart: two vehicles
    # abreast and the shadow between them are not one wide thing, while a verge or a
    # shadow is either; the whole anomaly at once near vegetation (below)
    dark = zl < 0
    if zc_anom is not None:
        dark &= -zl >= zc_anom
    a_d = np.where(dark, anom_o, np.float32(0.0))
    a_l = np.where(dark, np.float32(0.0), anom_o)
    th_sign = np.where(dark, a_d - opening(a_d, wide), a_l - opening(a_l, wide))
    shade = (zl < -_SHADE_Z) & ok
    if zc is not None:
        shade &= zc < 2.5 + 0.5 * np.maximum(-zl, 0.0) ** 0.5

    # ---- vegetation / occlusion ------------------------------------------------------
    s = max(0.7, 0.12 / step)
    hp = lum - ndi.gaussian_filter(lum, s)
    tex = np.sqrt(np.maximum(ndi.uniform_filter(hp * hp, odd(1.5 / step)), 0.0))
    tr_b = blocks.window(blocks.sum((tex * rw).sum(1)), _SURF_WIN_M, step)
    tex_road = np.maximum(blocks.to_rows(fill_nan(ratio(tr_b, n_b))), 1e-3)[:, None]
    if nbands >= 3:
        # excess green as a share of brightness (bright grey objects are not greener)
        exg_road = (2 * bands[:, 1] - bands[:, 0] - bands[:, 2]) / (bands[:, :3].sum(1) + 0.05)
        green = exg_s - exg_road[:, None]
        veg = (green > _GREEN) & (tex > 1.5 * tex_road)
        hidden = veg | (green > 2.5 * _GREEN)
        if veg.any():
            veg = binary_opening(veg, ndi.generate_binary_structure(2, 1))
    else:
        green = None
        veg = np.zeros_like(ok)
        hidden = veg
    occ_frac = ((hidden | ~ok) * zone_w[None, :]).sum(1) / zone_w.sum()
    occ_frac = ndi.uniform_filter1d(occ_frac, odd(2.0 / step))
    occluded = occ_frac > 0.5
    # foliage is light and dark clumps, each narrower than a vehicle: near vegetation both
    # together are one wide thing
    kv = odd(_VEG_NEAR_M / step)
    near = _near(hidden, kv)
    if near.any():
        anom_o = np.where(near, anom_o - opening(anom_o, wide), th_sign)
    else:
        anom_o = th_sign
    # the texture joins after the removal of wide anomalies: two lanes of vehicles side by
    # side are as wide as a verge, but crossed by edges where a verge is not
    anom_o = np.maximum(anom_o, _thin_removed(np.where(ok, _TEX_W * tz, 0.0).astype(np.float32), step, k))
    anom_d = np.where(veg, 0.0, anom_o).astype(np.float32)
    # shadows cast by vehicles, from the direction of the sun read off the strip itself
    cast, sun, enclosed = _cast_shadow(anom_d, zl, (zl < -_SHADE_Z) & ok, ok, step, threshold)
    if cast is not None:
        anom_d = np.where(cast, np.float32(0.0), anom_d)

    # ---- segmentation ---------------------------------------------------------------
    lo = _LOW_FRAC * threshold
    seed = anom_d >= threshold * min_score
    mask = anom_d >= lo
    lab, n = ndi.label(mask)
    if n:
        keep = np.zeros(n + 1, bool)
        keep[np.unique(lab[seed])] = True
        keep[0] = False
        mask = keep[lab]
    kcl = odd(0.4 / step)
    if kcl > 1:
        mask = binary_closing(mask, np.ones((kcl, kcl), bool))
    ko = odd(0.9 / step)
    if ko > 1:
        mask = binary_opening(mask, np.ones((ko, ko), bool))
    mask &= ok
    if enclosed is not None:
        windows = _join_short_pieces(mask, enclosed, step)
        if windows is not None:
            mask |= windows

    shade_lab, nsh = ndi.label(shade)
    # a compact dark patch wider than a vehicle: the shadow of a tree or a building (a long
    # chain of dark parked cars and kerb-side shadows is not compact)
    ext = np.array([(0, 0)] + [(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) if sl else (0, 0)
                               for sl in ndi.find_objects(shade_lab)], dtype=float).reshape(-1, 2)
    shade_wide = (ext[:, 1] * step > _MAX_SHADE_WIDTH_M) & (ext[:, 0] * step < 3 * _MAX_SHADE_WIDTH_M)
    featz = np.empty(feat.shape, np.float32)
    featz[..., 0] = lum / sig[:, None]
    if rgb:
        for c in (1, 2):  # channel by channel: broadcasting over the short last axis is slow
            featz[..., c] = feat[..., c] / csig[:, None]
    smooth_green = None
    if green is not None:
        # green and no rougher than the road: grass, a bush (tested per vehicle, after
        # splitting, so that a green vehicle does not take its neighbours with it)
        # grass is greener than it is red; a yellow truck's smooth roof has as much excess
        # green, but more red
        redder = ndi.uniform_filter(img[..., 0] - img[..., 1], odd(1.0 / step)) > 0.0
        smooth_green = (green > 1.2 * _GREEN) & (tex < 1.4 * tex_road) & ~redder
    ctx = BlobContext(anom_d, roadlike, shade, featz, shade_lab, shade_wide, step, threshold, min_score,
                      smooth_green)
    segments = []
    lab, n = ndi.label(mask)
    if n:
        objs = ndi.find_objects(lab)
        holes = _holes(mask)
        min_r, min_c = int(np.ceil(2.2 / step)) - 1, max(1, int(np.ceil(0.88 / step)) - 1)
        for i, sl in enumerate(objs, start=1):
            if sl is None:
                continue
            if sl[0].stop - sl[0].start < min_r or sl[1].stop - sl[1].start < min_c:
                continue
            if rows_of_interest is not None and not _overlaps(sl[0], rows_of_interest):
                continue  # none of its vehicles could be asked for
            bm = lab[sl] == i
            if holes is not None and holes[sl].any():
                bm = ndi.binary_fill_holes(bm, _CROSS)  # (its default, made once)
            npx = np.count_nonzero(bm)
            if np.count_nonzero(carriage[sl] & bm) < 0.5 * npx:
                continue  # mostly off the carriageway
            c_start = sl[1].start
            if sun is not None and sun[1] != 0 and MAX_VEH_WIDTH_M < bm.shape[1] * step <= MAX_VEH_WIDTH_M + 1.0:
                bm, c_start = _trim_cast_side(bm, zl[sl], c_start, int(np.sign(sun[1])), abs(sun[1]), step)
            pieces = split_across(bm, anom_d[sl[0], c_start:c_start + bm.shape[1]], sl[0].start, c_start, step)
            if len(pieces) > 1 and sun is not None and sun[1] != 0:
                pieces = _drop_shadow_pieces(pieces, zl, np.sign(sun[1]), step)
            if len(pieces) > 1:
                pieces = _drop_crowns(pieces, shade, carr_core, tex, tex_road, sun)
            for pm, r0, c0 in pieces:
                # a piece whose columns all lie beyond the half-width (with a column to
                # spare) cannot hold the centre of a vehicle that is returned
                if offs[c0 + pm.shape[1] - 1] < -half_width_m - step or offs[c0] > half_width_m + step:
                    continue
                segments.extend(analyse_blob(pm, r0, c0, ctx))
    return _Core(segments, occluded, anom_d, bands, carriageway)


def _join_short_pieces(mask: np.ndarray, enclosed: np.ndarray, step: float) -> np.ndarray | None:
    """Rejoin the pieces of a light vehicle that its dark windows cut apart.

    Cast shadows are cut out of the anomaly, and with them the windscreen and the rear
    window of a light vehicle, dark between its bright bonnet, roof and boot. A patch of
    such enclosed dark pixels (see :func:`_cast_shadow`) joins the pieces it touches when
    one of them is shorter than a car and together they are no longer than a vehicle;
    patches are taken from the shortest union up. The shadow in a short gap between two
    light vehicles is enclosed as well: it joins nothing once both sides are whole.
    Returns the patches that join pieces (None if none do).
    """
    extra = enclosed & ~mask
    if not extra.any():
        return None
    lab, n = ndi.label(mask)
    el, ne = ndi.label(extra)
    if not n:
        return None
    # (patch, piece) pairs: pieces 4-adjacent to a patch's pixels
    pairs = []
    R, C = mask.shape
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        a = el[max(dr, 0):R + min(dr, 0), max(dc, 0):C + min(dc, 0)]
        b = lab[max(-dr, 0):R + min(-dr, 0), max(-dc, 0):C + min(-dc, 0)]
        both = (a > 0) & (b > 0)
        pairs.append(np.stack([a[both], b[both]], axis=1))
    pairs = np.unique(np.concatenate(pairs), axis=0)
    if not len(pairs):
        return None
    objs = ndi.find_objects(lab)
    top = np.array([0] + [sl[0].start for sl in objs])
    bot = np.array([0] + [sl[0].stop for sl in objs])
    # candidate joins: the pieces a patch touches, pairwise, by the span of their union
    cand = []
    for e, grp in _groups(pairs):
        for i in range(len(grp)):
            for j in range(i + 1, len(grp)):
                p, q = int(grp[i]), int(grp[j])
                cand.append((max(bot[p], bot[q]) - min(top[p], top[q]), e, p, q))
    cand.sort()
    parent = list(range(n + 1))
    lo, hi = top.tolist(), bot.tolist()

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    short, longest = _JOINED_SHORT_M / step, _JOINED_MAX_M / step
    joined = False
    for _, e, p, q in cand:
        a, b = root(p), root(q)
        if a == b:
            continue
        span_a, span_b = hi[a] - lo[a], hi[b] - lo[b]
        union = max(hi[a], hi[b]) - min(lo[a], lo[b])
        if min(span_a, span_b) < short and union <= longest:
            parent[b] = a
            lo[a], hi[a] = min(lo[a], lo[b]), max(hi[a], hi[b])
            joined = True
    if not joined:
        return None
    # a patch goes into the mask only when every piece it touches ended in one vehicle: it
    # would join them all
    use = np.zeros(ne + 1, bool)
    for e, grp in _groups(pairs):
        roots = {root(int(k)) for k in grp}
        use[e] = len(grp) > 1 and len(roots) == 1
    return use[el] if use.any() else None


def _groups(pairs: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(key, values)`` for the rows of a 2-column array sorted by its first column."""
    keys, starts = np.unique(pairs[:, 0], return_index=True)
    ends = np.append(starts[1:], len(pairs))
    for k, a, b in zip(keys.tolist(), starts.tolist(), ends.tolist()):
        yield k, pairs[a:b, 1]


def _drop_crowns(pieces: list, shade: np.ndarray, carr_core: np.ndarray, tex: np.ndarray, tex_road: np.ndarray,
                 sun: tuple[int, int] | None) -> list:
    """Drop the crown of a tree hanging over the road's edge, and its shadow, from a blob
    cut into lanes.

    Olive and brown crowns are hardly greener than the road, so neither the vegetation
    rule (green and textured) nor the smooth-grass rule (green and smooth) takes them, and
    their leafy texture lies between those two rules' limits: at the coarser pixels they
    are dark grey patches a lane wide, joined to their shadow on the road. A lane piece is
    a crown when it is nearly all grey shade, reaches off the carriageway (a crown is
    rooted beside the road: a fifth of the piece or more lies off the carriageway's core,
    where a vehicle in a lane leaves none) and holds none of the edges a vehicle's
    windscreens, roof and bumpers make (texture under ``_CROWN_TEX`` times the road's). A
    dark piece of the same blob on the shadow side of a crown (the sun read off the
    strip), beside it along the road, is the crown's shadow.
    """
    info = []
    for pm, r0, c0 in pieces:
        sl = (slice(r0, r0 + pm.shape[0]), slice(c0, c0 + pm.shape[1]))
        npx = np.count_nonzero(pm)
        dark = np.count_nonzero(shade[sl] & pm) >= _CROWN_SHADE * npx
        crown = dark and np.count_nonzero(carr_core[sl] & pm) <= _CROWN_ON * npx \
            and float((tex[sl] / tex_road[sl[0]])[pm].mean()) < _CROWN_TEX
        info.append((r0, r0 + pm.shape[0], c0 + 0.5 * pm.shape[1], dark, crown))
    if not any(i[4] for i in info):
        return pieces
    side = np.sign(sun[1]) if sun is not None else 0
    keep = []
    for k, (a0, a1, ck, dark, crown) in enumerate(info):
        if crown:
            continue
        if dark and side and any(c and (ck - cj) * side > 0 and min(a1, b1) - max(a0, b0) >= 0.5 * (a1 - a0)
                                 for b0, b1, cj, _, c in info):
            continue  # the crown's shadow
        keep.append(pieces[k])
    return keep


def _overlaps(rows: slice, window: tuple[int, int]) -> bool:
    """Whether working rows ``rows`` come within a row of ``[window[0], window[1])``."""
    return rows.stop + 1 >= window[0] and rows.start - 1 < window[1]


def _holes(mask: np.ndarray) -> np.ndarray | None:
    """The pixels of the holes in ``mask`` (background not 4-connected to the edge of the
    array), or None when there are none.

    A blob of ``mask`` (4-connected) has a hole of its own (what ``ndi.binary_fill_holes``
    of the blob alone would fill) only around such a pixel: a hole holds background, since
    pixels of ``mask`` next to the blob belong to it, and that background is cut off from
    the edge by the blob. The blobs whose box holds none need no filling.
    """
    bg, n = ndi.label(~mask)
    if not n:
        return None
    inner = np.ones(n + 1, bool)
    inner[0] = False
    for edge in (bg[0], bg[-1], bg[:, 0], bg[:, -1]):
        inner[edge] = False
    if not inner.any():
        return None
    return inner[bg]


def _trim_cast_side(bm: np.ndarray, zl: np.ndarray, c0: int, side: int, n: int,
                    step: float) -> tuple[np.ndarray, int]:
    """Cut the shadow off the shadow side of a blob a little wider than a vehicle.

    A dark vehicle and the shadow it casts are one dark blob; the shadow is at most ``n``
    columns (the sun's offset) on the ``side`` it falls to. Dark columns there are cut
    off, as long as a vehicle's width is left.
    """
    ncol = bm.shape[1]
    dark = ((zl < -_SHADE_Z) & bm).sum(axis=0) / np.maximum(bm.sum(axis=0), 1)
    order = range(ncol - 1, -1, -1) if side > 0 else range(ncol)
    cut = 0
    for j in order:
        if cut >= n or dark[j] < 0.6 or (ncol - cut - 1) * step < MIN_TRIMMED_WIDTH_M:
            break
        cut += 1
    if not cut:
        return bm, c0
    keep_cols = slice(0, ncol - cut) if side > 0 else slice(cut, ncol)
    cut_cols = slice(ncol - cut, ncol) if side > 0 else slice(0, cut)
    kept, kept_z = bm[:, keep_cols], zl[:, keep_cols]
    if np.count_nonzero((kept_z < -_SHADE_Z) & kept) >= 0.6 * max(np.count_nonzero(kept), 1) \
            and float(zl[:, cut_cols][bm[:, cut_cols]].mean()) >= float(kept_z[kept].mean()) - 1.0:
        # the body is as dark as what lies on its shadow side: which is the shadow is unknown
        return bm, c0
    if side > 0:
        return bm[:, : ncol - cut], c0
    return bm[:, cut:], c0 + cut


def _drop_shadow_pieces(pieces: list, zl: np.ndarray, side: float, step: float) -> list:
    """Drop the cast shadow cut off a vehicle across the road.

    A piece of a blob cut into lanes that is dark, narrower than a vehicle and lies on the
    shadow side (``side``: +1 towards higher columns) of another piece it overlaps along
    the road is the shadow of that piece's vehicle.
    """
    info = []
    for pm, r0, c0 in pieces:
        rr, cc = np.nonzero(pm)
        dark = float((zl[rr + r0, cc + c0] < -_SHADE_Z).mean()) if rr.size else 0.0
        w = pm.sum(axis=1)
        width = float(pct(w[w > 0], 70)) * step if rr.size else 0.0
        info.append((r0, r0 + pm.shape[0], c0 + cc.mean() if rr.size else c0, dark, width))
    keep = []
    for i, (pm, r0, c0) in enumerate(pieces):
        a0, a1, ci, dark, width = info[i]
        shadow = False
        if dark >= 0.6 and width < _SHADOW_PIECE_W:
            for j, (b0, b1, cj, _, _) in enumerate(info):
                if j != i and (ci - cj) * side > 0 and min(a1, b1) - max(a0, b0) >= 0.5 * (a1 - a0):
                    shadow = True
                    break
        if not shadow:
            keep.append((pm, r0, c0))
    return keep


def _thin_removed(a: np.ndarray, step: float, k: int) -> np.ndarray:
    """Remove what is thinner than a vehicle: lines and dashes, then anything under ~1 m.

    A pixel with nothing anomalous ~0.8 m to either side across the road is on a line
    along the road (a marking, a kerb, a dash even where it is two pixels wide); a grey
    opening of ``k`` pixels removes the rest of what is small.
    """
    d = max(1, int(round(_LINE_GAP_M / step)))
    # on the transposed strip: the shifts across the road, and the opening's windows, run
    # over contiguous memory rather than thousands of short rows (the same maxima and
    # minima; the opening's minimum and maximum over a square do not depend on which axis
    # goes first)
    at = np.ascontiguousarray(a.T)
    side = np.zeros_like(at)
    n = at.shape[0]
    for dd in (d, d + 1):
        if dd < n:
            np.maximum(side[dd:], at[:-dd], out=side[dd:])
            np.maximum(side[:-dd], at[dd:], out=side[:-dd])
    at = np.minimum(at, np.maximum(_LINE_K * side, 1.0)).astype(np.float32)
    if k <= 1:
        return np.ascontiguousarray(at.T)
    if np.isnan(at).any():
        return opening(np.ascontiguousarray(at.T), (k, k))
    return np.ascontiguousarray(open_running(at, ((0, k), (1, k))).T)


def _edge_texture(lum: np.ndarray, ok: np.ndarray, rw: np.ndarray, n_b: np.ndarray, blocks: Blocks,
                  step: float) -> np.ndarray:
    """Edges across the road on both sides, relative to the road's own: inside a vehicle.

    A car is crossed by edges every metre or so (bumpers, windscreen, rear window, roof
    edges); the road beside it has only its own texture. Energy of the along-road gradient
    (over ~1 m across) within ``_TEX_REACH_M`` before a pixel and within as much after it,
    the smaller of the two: high between two edges, low outside the outermost ones (so the
    response does not grow past the vehicle's ends). In units of the same on road-like
    pixels.
    """
    rows, cols = lum.shape
    d = np.zeros((rows + 1, cols), np.float32)
    d[1:-1] = np.where(ok[1:] & ok[:-1], lum[1:] - lum[:-1], 0.0)  # d[j]: edge between j-1 and j
    e = ndi.uniform_filter1d(d * d, odd(1.0 / step), axis=1)
    L = max(1, int(round(_TEX_REACH_M / step)))
    # (the running sums of the float32 values as doubles: cast first, then accumulate -- the
    # same sums, three times faster than numpy's accumulation with a cast)
    c = np.zeros((rows + 2, cols), np.float64)
    np.cumsum(e.astype(np.float64), axis=0, out=c[1:])
    r = np.arange(rows)
    # up: edges d[r-L+1 .. r] (the last between r-1 and r); down: d[r+1 .. r+L]
    u0, u1 = np.clip(r - L + 1, 0, rows + 1), r + 1
    v0, v1 = r + 1, np.clip(r + L + 1, 0, rows + 1)
    up = (c[u1] - c[u0]) / L
    dn = (c[v1] - c[v0]) / L
    t = np.minimum(up, dn).astype(np.float32)
    t_b = blocks.window(blocks.sum((t * rw).sum(1)), _SURF_WIN_M, step)
    ref = blocks.to_rows(fill_nan(ratio(t_b, n_b)))
    ref = np.maximum(ref, (0.5 * _NOISE_FLOOR) ** 2)[:, None]
    return np.sqrt(t / ref).astype(np.float32)


def _near(m: np.ndarray, k: int) -> np.ndarray:
    """``ndi.uniform_filter(m.astype(np.float32), k) > 0.5 / k**2`` of a 2-D bool array:
    whether any pixel of ``m`` lies in the ``k`` x ``k`` window (the mean is a whole number
    of ``1 / k**2`` to within rounding far below half of that; the pixels "reflect" mode
    mirrors in at an edge already lie in the window clipped to the array). By running ORs
    over shifted views, not a float filter."""
    out = _running(m, k, 0, k // 2, np.logical_or)
    return _running(out, k, 1, k // 2, np.logical_or)


def _carriageway_extent(carr_b: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """Per block, the run of carriageway columns nearest the centreline: ``[col0, col1)``."""
    nb, cols = carr_b.shape
    out = np.full((nb, 2), np.nan, np.float32)
    has = carr_b.any(axis=1)
    if not has.any():
        return out
    # the carriageway column nearest the centreline (first one on ties), then the run of
    # carriageway columns holding it: from just after the last gap column before it to
    # the first gap column after it
    j = np.argmin(np.where(carr_b, np.abs(offs)[None, :], np.inf), axis=1)
    col = np.arange(cols)
    gap_before = np.maximum.accumulate(np.where(carr_b, -1, col[None, :]), axis=1)
    gap_after = np.minimum.accumulate(np.where(carr_b, cols, col[None, :])[:, ::-1], axis=1)[:, ::-1]
    b = np.arange(nb)
    out[has, 0] = (gap_before[b, j] + 1)[has]
    out[has, 1] = gap_after[b, j][has]
    return out


def detect_vehicles(
    image: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    step_m: float,
    half_width_m: float = 6.0,
    sensitivity: float = 1.0,
    min_score: float = 0.6,
    centre_rows: tuple[float, float] | None = None,
) -> StripDetections:
    """Segment vehicles in a straightened road strip.

    Parameters
    ----------
    image : (rows, cols, bands) or (rows, cols) array
        The strip, values scaled to about 0..1. Rows are stations along the road (row 0
        nearest the head), columns offsets across it (centreline in the middle column).
        Bands: 1 (panchromatic), 3 (RGB) or more (only the first three are used for colour).
    valid : (rows, cols) bool array, optional
        False where the tile has no data.
    step_m : float
        Ground sampling of the strip in metres (rows and columns).
    half_width_m : float
        Vehicles whose centre lies within this distance of the centreline are returned.
    sensitivity : float
        Divides the anomaly threshold: above 1 finds fainter objects (and more false ones).
    min_score : float
        Weaker candidates down to this score are returned; ``score >= 1`` is a detection at
        the chosen sensitivity.
    centre_rows : (float, float), optional
        Only vehicles whose centre row (:attr:`StripVehicle.row_center`) lies in
        ``[lo, hi)`` are needed: blobs that cannot hold one are not analysed (the vehicles
        returned in that range are the same; others may be left out). Default: all rows.

    Returns
    -------
    StripDetections

    Examples
    --------
    >>> import numpy as np
    >>> strip = np.full((400, 80, 3), 0.35, np.float32)   # 0.25 m/px: 100 m x 20 m of asphalt
    >>> strip[100:118, 30:37] = (0.8, 0.1, 0.1)            # a red car, 4.5 m x 1.75 m
    >>> det = detect_vehicles(strip, step_m=0.25)
    >>> [(v.kind, round(v.row0), round(v.row1)) for v in det.vehicles]
    [('car', 100, 118)]
    """
    img, ok = strip_input(image, valid, step_m)
    rows, cols, nbands = img.shape
    img = img.copy()  # zero where invalid (np.where over the short band axis is slower)
    img.reshape(-1, nbands)[~ok.ravel()] = 0.0  # (pixels as rows: a faster mask assignment)
    step = float(step_m)
    threshold = float(_T0 / max(sensitivity, 1e-6))
    empty = StripDetections(
        vehicles=[],
        occluded=np.ones(rows, bool),
        anomaly=np.zeros((rows, cols), np.float32),
        surface=np.full((rows, nbands), np.nan, np.float32),
        carriageway=np.full((rows, 2), np.nan, np.float32),
        threshold=threshold,
    )
    if rows < 2 or cols < 2 or not ok.any():
        return empty

    f = max(1, int(_WORK_STEP_M / step + 1e-6))
    if f > 1:
        wimg, wok = _downsample(img, ok, f)
    else:
        wimg, wok = img, ok
    # working pixel k covers input pixels f k .. f k + f - 1: its centre is f (k + 0.5) - 0.5
    centre = (cols - 1) / 2.0
    wcols = wimg.shape[1]
    offs = ((f * (np.arange(wcols) + 0.5) - 0.5) - centre) * step
    roi = None
    if centre_rows is not None:
        # a vehicle cut from working rows r0 .. r1 - 1 is centred between f r0 - 0.5 and
        # f r1 - 0.5 (see below)
        roi = (int(np.floor((centre_rows[0] + 0.5) / f)), int(np.ceil((centre_rows[1] + 0.5) / f)))
    core = _core(wimg, wok, offs, step * f, half_width_m, threshold, min_score, roi)

    vehicles: list[StripVehicle] = []
    lim = half_width_m / step
    for sgm in core.segments:
        R0 = float(f * sgm.r0 - 0.5)
        R1 = float(f * sgm.r1 - 0.5)
        C0 = float(f * sgm.c0 - 0.5)
        C1 = float(min(f * sgm.c1, cols) - 0.5)
        R1 = min(R1, rows - 0.5)
        cc = float(f * (sgm.col_center + 0.5) - 0.5)
        if abs(cc - centre) > lim:
            continue
        poly = np.array([[R0, C0], [R0, C1], [R1, C1], [R1, C0], [R0, C0]], dtype=float)
        vehicles.append(StripVehicle(R0, R1, C0, C1, cc, float(sgm.score), sgm.kind, poly))
    vehicles.sort(key=lambda v: (v.row0, v.col0))

    if f > 1:
        occluded = np.repeat(core.occluded, f)[:rows]
        anomaly = np.repeat(np.repeat(core.anomaly, f, axis=0), f, axis=1)[:rows, :cols]
        surface = np.repeat(core.surface, f, axis=0)[:rows]
        cw = core.carriageway * f
        cw[:, 1] = np.minimum(cw[:, 1], cols)
        carriageway = np.repeat(cw, f, axis=0)[:rows]
    else:
        occluded, anomaly, surface, carriageway = core.occluded, core.anomaly, core.surface, core.carriageway
    return StripDetections(
        vehicles=vehicles,
        occluded=np.asarray(occluded, bool),
        anomaly=np.ascontiguousarray(anomaly, dtype=np.float32),
        surface=np.asarray(surface, np.float32),
        carriageway=np.asarray(carriageway, np.float32),
        threshold=threshold,
    )
