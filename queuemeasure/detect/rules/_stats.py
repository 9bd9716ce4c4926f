"""Windowed statistics along the road on a coarse grid of row blocks.

Statistics of the road surface change slowly along the road, so they are computed on
blocks of a few rows (about 2 m), smoothed over windows of blocks and interpolated back to
every row. This keeps the cost of every statistic to one pass over the pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def odd(n: float) -> int:
    """Window size in samples (at least 1)."""
    return max(1, int(round(n)))


class Blocks:
    """Rows grouped in consecutive blocks of ``size`` rows."""

    def __init__(self, rows: int, size: int) -> None:
        self.rows = rows
        self.size = max(1, int(size))
        self.n = -(-rows // self.size)
        pos = (np.arange(rows) - 0.5 * (self.size - 1)) / self.size
        pos = np.clip(pos, 0.0, self.n - 1.0)
        i0 = np.minimum(np.floor(pos).astype(np.intp), max(self.n - 2, 0))
        self._i0 = i0
        self._i1 = np.minimum(i0 + 1, self.n - 1)
        self._t = (pos - i0).astype(np.float32)
        # the same weights as float64 columns, for float64 block values (see to_rows)
        self._w0 = (1 - self._t).astype(np.float64)[:, None]
        self._w1 = self._t.astype(np.float64)[:, None]

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Sum over the rows of each block, any trailing shape."""
        pad = self.n * self.size - self.rows
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)], axis=0)
        return x.reshape((self.n, self.size) + x.shape[1:]).sum(axis=1, dtype=np.float64)

    def window(self, xb: np.ndarray, metres: float, step: float, axis: int = 0) -> np.ndarray:
        """Sum of block values over a window of about ``metres`` (zero beyond the ends);
        blocks along ``axis``."""
        k = odd(metres / (self.size * step))
        if k <= 1:
            return xb
        return ndi.uniform_filter1d(xb, k, axis=axis, mode="constant") * k

    def to_rows(self, xb: np.ndarray) -> np.ndarray:
        """Linear interpolation of block values (at block centres) to every row."""
        if xb.dtype == np.float64 and xb.ndim > 1 and xb.size:
            # the same products and sums, on rows flattened so that numpy's inner loops
            # run over whole rows rather than over a short trailing axis
            flat = xb.reshape(xb.shape[0], -1)
            out = np.take(flat, self._i0, axis=0)
            out *= self._w0
            hi = np.take(flat, self._i1, axis=0)
            hi *= self._w1
            out += hi
            return out.astype(np.float32).reshape((self.rows,) + xb.shape[1:])
        t = self._t.reshape((-1,) + (1,) * (xb.ndim - 1))
        return (xb[self._i0] * (1 - t) + xb[self._i1] * t).astype(np.float32)


def ratio(num: np.ndarray, den: np.ndarray, fill: float = np.nan) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[np.broadcast_to(den <= 1e-9, out.shape)] = fill
    return out


def fill_nan(x: np.ndarray) -> np.ndarray:
    """Replace NaN along axis 0 by the nearest finite value (per trailing element; the
    earlier one on ties; zero where a column has none).

    All columns at once: the last finite row at or before each row and the first one at or
    after it are running maxima and minima of row numbers (no loop over columns).
    """
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return x
    n = flat.shape[0]
    r = np.arange(n)[:, None]
    prev = np.maximum.accumulate(np.where(bad, -1, r), axis=0)
    nxt = np.minimum.accumulate(np.where(bad, n, r)[::-1], axis=0)[::-1]
    near = np.where((nxt == n) | ((prev >= 0) & (r - prev <= nxt - r)), prev, nxt)
    none = prev[-1] < 0  # columns without a finite value
    near[:, none] = 0
    out = np.take_along_axis(flat, near, axis=0)
    out[:, none] = 0.0
    return out.reshape(x.shape)


def _weighted_columns(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``weight`` cut to the columns between the first and the last one with any
    weight (the zone around the centreline): the pixels left out only add zeros to the
    histograms, so the sums are the same."""
    cols = np.flatnonzero(weight.any(axis=0))
    if not cols.size:
        return x[:, :0], weight[:, :0]
    return x[:, cols[0]:cols[-1] + 1], weight[:, cols[0]:cols[-1] + 1]


_GAUSS_R = int(4.0 * 1.5 + 0.5)  # radius of hist_mode's Gaussian (sigma 1.5 bins)


def _occupied(h: np.ndarray, margin: int) -> tuple[int, int]:
    """Bins ``[a, b)`` of a (blocks, bins) histogram from ``margin`` before the first bin
    holding any weight to ``margin`` after the last (all bins if none holds any)."""
    nb = h.shape[1]
    cols = np.flatnonzero(h.any(axis=0))
    if not cols.size:
        return 0, nb
    return max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, nb)


def hist_mode(
    lum: np.ndarray, weight: np.ndarray, blocks: Blocks, win_m: float, step: float,
    lo: float = -0.2, hi: float = 1.4, nb: int = 320,
) -> tuple[np.ndarray, np.ndarray]:
    """Mode and Gaussian sigma of the brightness histogram in windows of blocks.

    Returns per-block arrays (NaN where there is no data).
    """
    bw = (hi - lo) / nb
    lum, weight = _weighted_columns(lum, weight)
    idx = np.clip(((lum - lo) * (1.0 / bw)).astype(np.int32), 0, nb - 1)
    blk = (np.arange(lum.shape[0], dtype=np.int64) // blocks.size)[:, None]
    keys = (blk * nb + idx).ravel()
    h = np.bincount(keys, weights=weight.ravel(), minlength=blocks.n * nb).reshape(blocks.n, nb)
    # only the bins from a little before the first one holding any weight to a little after
    # the last (about half of them): the window sums each bin on its own, and the Gaussian
    # (radius _GAUSS_R bins) leaves bins further than that from any weight at exactly 0.0,
    # as in the whole histogram. One more bin on each side is exactly zero after smoothing:
    # the peak, its neighbours and the half-height bins on both sides all lie inside
    a, b = _occupied(h, _GAUSS_R + 1)
    h = blocks.window(h[:, a:b], win_m, step)
    h = ndi.gaussian_filter1d(h, 1.5, axis=1, mode="constant")
    n, width = h.shape
    ar = np.arange(n)
    k = np.argmax(h, axis=1)
    # (with bins cut off on a side, rows with weight have their peak at least one bin in;
    # rows without are NaN below)
    kk = np.clip(k, 1, width - 2)
    y0, y1, y2 = h[ar, kk - 1], h[ar, kk], h[ar, kk + 1]
    den = y0 - 2 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(den < 0, 0.5 * (y0 - y2) / den, 0.0)
    delta = np.clip(np.nan_to_num(delta), -0.5, 0.5)
    mode = lo + ((kk + a) + 0.5 + delta) * bw
    half = 0.5 * h[ar, k][:, None]
    bins = np.arange(width)[None, :]
    below = h < half
    # the last bin below half height left of the peak, the first one right of it
    m = below & (bins < k[:, None])
    left = np.where(m.any(axis=1), width - 1 - np.argmax(m[:, ::-1], axis=1), -1) + a
    m = below & (bins > k[:, None])
    right = np.where(m.any(axis=1), np.argmax(m, axis=1), width) + a
    hwhm = 0.5 * (right - left - 1) * bw
    sig = np.sqrt(np.maximum(hwhm**2 - (1.5 * bw) ** 2, 0.0)) / 1.1774
    bad = h.max(axis=1) <= 1e-9
    mode[bad] = np.nan
    sig[bad] = np.nan
    return mode, sig


def opening(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey opening with a rectangle (a no-op for a 1 x 1 rectangle).

    The same as ``ndi.grey_opening(x, size=size)`` (mode "reflect"), computed as running
    minima then maxima over shifted views: scipy filters the many short rows of a strip
    one line at a time, which costs several times more.
    """
    if size[0] <= 1 and size[1] <= 1:
        return x
    if x.ndim != 2 or np.isnan(x).any():
        return ndi.grey_opening(x, size=size)
    if size[1] <= 1:
        return open_running(x, ((0, size[0]), (1, size[1])))
    # on the transposed strip: a shifted view along its few columns is then one contiguous
    # run of memory rather than thousands of short rows (the same minima and maxima, in
    # the same order: about 3x faster for a window across the road)
    out = open_running(np.ascontiguousarray(x.T), ((1, size[0]), (0, size[1])))
    return np.ascontiguousarray(out.T)


def open_running(x: np.ndarray, windows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Running minima, then maxima, over ``windows`` ((axis, size), ...): a grey opening
    of an array without NaN, as scipy's with mode "reflect" (see :func:`_running`)."""
    out = x
    for axis, k in windows:
        out = _running(out, k, axis, k // 2, np.minimum)
    for axis, k in windows:
        out = _running(out, k, axis, k - 1 - k // 2, np.maximum)
    return out


def _running(x: np.ndarray, k: int, axis: int, before: int, fn: np.ufunc) -> np.ndarray:
    """``fn`` (minimum or maximum) over windows ``[i - before, i - before + k - 1]`` along
    ``axis``, clipped to the array. While ``before`` and ``k - 1 - before`` are at most
    ``k / 2`` (as for scipy's erosion and dilation), the mirrored pixels scipy's "reflect"
    mode adds at an edge are already inside the clipped window: the results are equal."""
    if k <= 1:
        return x
    out = x.copy()
    n = x.shape[axis]

    def part(a: int, b: int) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(a, b),)

    for s in range(1, min(k - 1 - before, n - 1) + 1):
        fn(out[part(0, n - s)], x[part(s, n)], out=out[part(0, n - s)])
    for s in range(1, min(before, n - 1) + 1):
        fn(out[part(s, n)], x[part(0, n - s)], out=out[part(s, n)])
    return out


def hist_quantile(
    x: np.ndarray, weight: np.ndarray, blocks: Blocks, win_m: float, step: float, q: float,
    lo: float, hi: float, nb: int = 128,
) -> np.ndarray:
    """Weighted ``q``-quantile of ``x`` in windows of blocks (NaN where there is no data)."""
    bw = (hi - lo) / nb
    x, weight = _weighted_columns(x, np.broadcast_to(weight, x.shape))
    idx = np.clip(((x - lo) * (1.0 / bw)).astype(np.int32), 0, nb - 1)
    blk = (np.arange(x.shape[0], dtype=np.int64) // blocks.size)[:, None]
    # the histogram transposed, (bins, blocks): every bin's sum is the same additions in
    # the same order (bincount adds the pixels in their order), the window runs along
    # contiguous rows, and the cumulative sums below go bin by bin for all blocks at once
    # (the same additions in the same order as np.cumsum along the bins of a block, which
    # costs about twice as much)
    keys = (idx * np.int64(blocks.n) + blk).ravel()
    ht = np.bincount(keys, weights=weight.ravel(),
                     minlength=blocks.n * nb).reshape(nb, blocks.n)
    # only the bins from the first holding any weight to the last: the cumulative sums
    # before them are 0.0 (never >= q * tot where tot > 0), after them tot
    a, b = _occupied(ht.T, 0)
    ht = blocks.window(ht[a:b], win_m, step, axis=1)
    c = np.empty_like(ht)
    c[0] = ht[0]
    for j in range(1, len(ht)):
        np.add(c[j - 1], ht[j], out=c[j])
    tot = c[-1]
    k = np.argmax(c >= q * tot[None, :], axis=0) + a
    out = lo + (k + 0.5) * bw
    out[tot <= 1e-9] = np.nan
    return out


def binary_opening(m: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndi.binary_opening(m, structure)`` of a 2-D bool array, by shifted views.

    Erosion is the AND of ``m`` at the structure's offsets from its centre (False beyond
    the edges, as scipy's ``border_value=0``), dilation the OR at the opposite offsets.
    """
    offs = _offsets(structure)
    eroded = _combine(m, offs, np.logical_and, True)
    return _combine(eroded, [(-a, -b) for a, b in offs], np.logical_or, False)


def binary_closing(m: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndi.binary_closing(m, structure)`` of a 2-D bool array (see :func:`binary_opening`)."""
    return _combine(binary_dilation(m, structure), _offsets(structure), np.logical_and, True)


def binary_dilation(m: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndi.binary_dilation(m, structure)`` of a 2-D bool array (see :func:`binary_opening`)."""
    return _combine(m, [(-a, -b) for a, b in _offsets(structure)], np.logical_or, False)


def _offsets(structure: np.ndarray) -> list[tuple[int, int]]:
    s = np.asarray(structure, bool)
    centre = np.array(s.shape) // 2
    return [(int(k[0]), int(k[1])) for k in np.argwhere(s) - centre]


def _combine(m: np.ndarray, offsets: list[tuple[int, int]], fn: np.ufunc, init: bool) -> np.ndarray:
    """``fn`` (logical and / or) over ``m[i + dr, j + dc]`` for the offsets, the shifted
    values being False beyond the edges."""
    R, C = m.shape
    out = np.full(m.shape, init, bool)
    for dr, dc in offsets:
        if abs(dr) >= R or abs(dc) >= C:
            if init:
                out[:] = False
            continue
        dst = out[max(-dr, 0):R - max(dr, 0), max(-dc, 0):C - max(dc, 0)]
        fn(dst, m[max(dr, 0):R - max(-dr, 0), max(dc, 0):C - max(-dc, 0)], out=dst)
        if init:
            if dr > 0:
                out[R - dr:] = False
            elif dr < 0:
                out[:-dr] = False
            if dc > 0:
                out[:, C - dc:] = False
            elif dc < 0:
                out[:, :-dc] = False
    return out
