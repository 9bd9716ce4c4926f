"""Occupancy of the carriageway along the road, for pixels too coarse to resolve vehicles.

Pure array code (no I/O): straightened strips in (rows = stations, columns = offsets
across the road, bands), evidence per row out. Two estimators share one output,
:class:`RowEvidence`:

- :func:`change_evidence` — with a reference strip of the same road on a date when it
  was free (already aligned and sampled on the same stations): the reference is mapped
  onto the tile's radiometry per band by a robust linear fit on the pixels *off* the
  carriageway, the difference is expressed in units of its own off-road noise, and each
  row's change energy on the carriageway is set against the same statistic on
  pseudo-carriageways of the same width beside the road (the change *beside* it).
- :func:`texture_evidence` — without a reference: a queue of vehicles of many colours
  makes the carriageway vary along the road, where free asphalt is smooth; each row's
  along-road texture energy is expressed in units of the strip's sensor noise.

:func:`smooth_rows`, :func:`sustained_energy`, :func:`hysteresis_runs` and
:func:`outermost_edges` then turn the row profiles into occupied stretches (hysteresis
thresholds, ends at the outermost pixels holding their own evidence); the pipeline
(:mod:`queuemeasure.occupancy_pipeline`) scores them against their no-vehicle level and
the queue's own density.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "RowEvidence",
    "fit_radiometry",
    "change_evidence",
    "texture_evidence",
    "rescale",
    "smooth_rows",
    "sustained_energy",
    "occupied_runs",
    "hysteresis_runs",
    "outermost_edges",
]

#: |N(0,1)| quantiles used for noise estimates from absolute values
_MAD_TO_SIGMA = 1.4826


@dataclass
class RowEvidence:
    """Per-row evidence of vehicles on the carriageway.

    Attributes
    ----------
    road : ndarray (rows,)
        Mean squared normalised change (or texture) over the carriageway's pixels and
        bands; NaN where the row has too few valid carriageway pixels.
    null : ndarray (rows, k)
        The same statistic on ``k`` pseudo-carriageways beside the road (NaN where
        invalid); empty (k = 0) when there is none.
    signed : ndarray (rows, bands)
        Mean normalised change per band over the carriageway (NaN where unobserved);
        from :func:`texture_evidence`, the carriageway's mean value per band (its tone).
    null_signed : ndarray (rows, k, bands)
        The same on the pseudo-carriageways.
    scale : ndarray (bands,)
        From :func:`change_evidence`, the noise unit of the change per band (its robust
        spread off the carriageway); ``road``, ``null``, ``signed`` and ``null_signed``
        are in this unit (see :func:`rescale`). Empty otherwise.
    """

    road: np.ndarray
    null: np.ndarray
    signed: np.ndarray
    null_signed: np.ndarray
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _empty(n: int, nb: int) -> RowEvidence:
    return RowEvidence(np.full(n, np.nan), np.full((n, 0), np.nan), np.full((n, nb), np.nan),
                       np.full((n, 0, nb), np.nan))


def _robust_sigma(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    # np.median is vectorised along an axis where np.nanmedian loops in Python: use it
    # when there is no NaN (the usual case)
    median = np.nanmedian if np.isnan(x).any() else np.median
    med = median(x, axis=axis, keepdims=axis is not None)
    mad = median(np.abs(x - med), axis=axis)
    return np.asarray(_MAD_TO_SIGMA * mad)


def fit_radiometry(tile: np.ndarray, ref: np.ndarray, *, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Robust per-band linear fit ``tile ≈ gain * ref + offset``.

    Parameters
    ----------
    tile, ref : ndarray (N, bands)
        Corresponding valid pixels (off the carriageway).
    iterations : int
        Rounds of Tukey-biweight reweighting after a least-squares start; pixels that
        changed (a parked car, a harvested field) get no weight.

    Returns
    -------
    gain, offset : ndarray (bands,)
    """
    n, nb = tile.shape
    gain = np.ones(nb)
    offset = np.zeros(nb)
    if n < 8:
        return gain, tile.mean(axis=0) - ref.mean(axis=0) if n else offset
    x = ref.astype(np.float64)
    y = tile.astype(np.float64)
    w = np.ones((n, nb))
    floor = 1e-3 * np.maximum(y.std(axis=0), 1e-9)
    for _ in range(iterations + 1):
        sw = w.sum(axis=0)
        if np.any(sw < 8):
            break
        mx = (w * x).sum(axis=0) / sw
        my = (w * y).sum(axis=0) / sw
        vx = (w * (x - mx) ** 2).sum(axis=0)
        cxy = (w * (x - mx) * (y - my)).sum(axis=0)
        gain = np.where(vx > 1e-12, cxy / np.maximum(vx, 1e-12), 1.0)
        offset = my - gain * mx
        r = y - (gain * x + offset)
        s = np.maximum(_robust_sigma(r, axis=0), floor)
        # centred on the residuals' median: a least-squares start pulled by the changed
        # pixels is off by an offset, and the unchanged majority must keep its weight
        u = (r - np.median(r, axis=0)) / (4.685 * s)
        w = np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
    return gain, offset


def _column_masks(offsets: np.ndarray, half_width_m: float, gsd_m: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Carriageway columns, off-road columns and pseudo-carriageway column groups.

    The carriageway is the columns within ``half_width_m`` of the centreline (at least the
    nearest one on either side). Off-road columns lie a pixel beyond it, out of the
    point-spread function's reach of the carriageway's edge; pseudo-carriageways are
    groups of as many consecutive off-road columns as the carriageway has.
    """
    a = np.abs(offsets)
    road = a <= half_width_m
    if not road.any():
        road = a <= a.min() + 1e-9
    off = a >= half_width_m + gsd_m
    k = int(road.sum())
    groups: list[np.ndarray] = []
    for side in (offsets < 0, offsets > 0):
        cols = np.flatnonzero(off & side)
        cols = cols if offsets[cols[0]] > 0 else cols[::-1] if cols.size else cols
        for g in range(cols.size // k):
            groups.append(cols[g * k:(g + 1) * k])
    return road, off, groups


def _energies(z: np.ndarray, ok: np.ndarray, road: np.ndarray, groups: list[np.ndarray],
              min_share: float) -> RowEvidence:
    """Per row, the energy of the mean normalised change over a group of columns: the
    mean over bands of the squared column-mean of ``z``, for the carriageway and for each
    pseudo-carriageway. A vehicle's change is coherent across the columns its blurred
    footprint covers and across bands (a white car brightens them all), the noise is not:
    averaging before squaring keeps the one and shrinks the other."""
    zz = np.where(ok[..., None], z, 0.0)

    def mean_over(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cnt = ok[:, cols].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = zz[:, cols].sum(axis=1) / cnt[:, None]
        m[cnt < max(1, min_share * cols.size)] = np.nan
        return (m * m).mean(axis=-1), m

    e_road, signed = mean_over(np.flatnonzero(road))
    per_group = [mean_over(g) for g in groups]
    n, nb = z.shape[0], z.shape[-1]
    null = np.column_stack([e for e, _ in per_group]) if groups else np.zeros((n, 0))
    null_signed = np.stack([m for _, m in per_group], axis=1) if groups else np.zeros((n, 0, nb))
    return RowEvidence(e_road, null, signed, null_signed)


def change_evidence(
    tile: np.ndarray,
    tile_valid: np.ndarray,
    ref: np.ndarray,
    ref_valid: np.ndarray,
    *,
    offsets: np.ndarray,
    half_width_m: float,
    gsd_m: float,
    min_share: float = 0.5,
) -> RowEvidence:
    """Change on the carriageway between a reference strip and the tile's strip.

    Parameters
    ----------
    tile, ref : ndarray (rows, cols, bands)
        The tile's strip and the reference's, sampled at the same stations and offsets.
    tile_valid, ref_valid : ndarray (rows, cols) bool
    offsets : ndarray (cols,)
        Offset of each column's centre from the centreline (metres).
    half_width_m : float
        Half-width of the carriageway.
    gsd_m : float
        The coarser of the two images' pixel sizes.
    min_share : float
        Share of a row's carriageway pixels that must be valid in both images.

    Returns
    -------
    RowEvidence
    """
    ok = tile_valid & ref_valid
    road, off, groups = _column_masks(offsets, half_width_m, gsd_m)
    fit_px = ok & off[None, :]
    nb = tile.shape[-1]
    if fit_px.sum() < 8:
        return _empty(tile.shape[0], nb)
    gain, offs = fit_radiometry(tile[fit_px], ref[fit_px])
    d = tile - (ref * gain + offs).astype(np.float32)
    sigma = np.maximum(_robust_sigma(d[fit_px], axis=0), 1e-6)
    z = d / sigma
    ev = _energies(z, ok, road, groups, min_share)
    ev.scale = sigma.astype(np.float64)
    return ev


def rescale(signed: np.ndarray, null_signed: np.ndarray, factor: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Change evidence re-expressed in another noise unit.

    Parameters
    ----------
    signed : ndarray (rows, bands)
    null_signed : ndarray (rows, k, bands)
    factor : ndarray (rows, bands)
        Old unit over new unit, per row and band.

    Returns
    -------
    road, null, signed, null_signed : the :class:`RowEvidence` arrays in the new unit
    (the energies are the mean over bands of the squared signed means, as
    :func:`change_evidence` makes them).
    """
    s = signed * factor
    ns = null_signed * factor[:, None, :]
    return (s * s).mean(axis=-1), (ns * ns).mean(axis=-1), s, ns


def texture_evidence(
    tile: np.ndarray,
    valid: np.ndarray,
    *,
    offsets: np.ndarray,
    half_width_m: float,
    gsd_m: float,
    step_m: float,
    min_share: float = 0.5,
) -> RowEvidence:
    """Along-road texture of the carriageway, in units of the strip's sensor noise.

    Also returns the carriageway's tone per row (``signed``). The texture is the second
    difference along the road at one pixel's spacing,
    ``x[r] - (x[r-k] + x[r+k]) / 2``; its noise-only level per band comes from the
    smoothest fifth of the strip's pixels (free asphalt, calm fields), so it does not
    depend on how much of the road the queue covers.
    """
    k = max(1, int(round(gsd_m / step_m)))
    n = tile.shape[0]
    h = np.zeros_like(tile)
    hv = np.zeros(valid.shape, bool)
    if n > 2 * k:
        h[k:-k] = tile[k:-k] - 0.5 * (tile[:-2 * k] + tile[2 * k:])
        hv[k:-k] = valid[k:-k] & valid[:-2 * k] & valid[2 * k:]
    # the carriageway less half a pixel at each edge: the verge's own texture (field
    # edges, trees) blurred onto the edge columns is not the queue's
    road, off, groups = _column_masks(offsets, max(half_width_m - gsd_m / 2, step_m / 2), gsd_m)
    nb = tile.shape[-1]
    if hv.sum() < 16:
        return _empty(n, nb)
    a = np.abs(h[hv])
    # the 20th percentile of |N(0, s)| is 0.2533 s; second differences of white noise
    # have 1.5 times its variance: expressed per pixel of noise
    q = np.percentile(a, 20.0, axis=0)
    sigma = np.maximum(q / 0.2533, 1e-6)
    z = h / sigma
    ev = _energies(z, hv, road, groups, min_share)
    # the carriageway's tone (its mean value per band), for the tone profile
    ev.signed = _energies(tile, valid, road, [], min_share).signed
    return ev


def smooth_rows(x: np.ndarray, width: int) -> np.ndarray:
    """Running mean over ``width`` rows ignoring NaN (NaN where the window has none)."""
    width = max(1, min(int(width), x.size))
    ok = np.isfinite(x)
    v = np.where(ok, x, 0.0)
    k = np.ones(width)
    s = np.convolve(v, k, mode="same")
    c = np.convolve(ok.astype(float), k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / c
    out[c < max(1.0, width / 3.0)] = np.nan
    return out


def sustained_energy(signed: np.ndarray, width: int) -> np.ndarray:
    """Mean over bands of the squared running mean (``width`` rows) of the signed change:
    a queue that shifts the carriageway's colour the same way over many stations (sub-pixel
    vehicles at 10 m) stands out of noise that averages away."""
    sm = np.column_stack([smooth_rows(signed[:, b], width) for b in range(signed.shape[1])])
    return (sm * sm).mean(axis=1)


def occupied_runs(score: np.ndarray, *, high: float, low: float, min_rows: int = 1) -> np.ndarray:
    """Runs of rows whose ``score`` rises above ``high`` and stays above ``low``.

    Hysteresis: a run is the maximal stretch above ``low`` that holds at least one row
    above ``high``; NaN rows (unobserved) neither start nor end a run by themselves —
    they are treated as below ``low``. Returns (K, 2) int array of [start, stop) rows.
    """
    s = np.where(np.isfinite(score), score, -np.inf)
    return hysteresis_runs(s > high, s > low, min_rows=min_rows)


def hysteresis_runs(high: np.ndarray, low: np.ndarray, *, min_rows: int = 1) -> np.ndarray:
    """Maximal runs of ``low`` rows that hold at least one ``high`` row, as (K, 2)
    [start, stop) rows (``high`` rows outside ``low`` count as ``low``)."""
    above = np.asarray(low, bool) | np.asarray(high, bool)
    d = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    if not starts.size:
        return np.zeros((0, 2), np.int64)
    cs = np.concatenate([[0], np.cumsum(np.asarray(high, bool))])
    keep = (cs[stops] - cs[starts] > 0) & (stops - starts >= min_rows)
    return np.column_stack([starts[keep], stops[keep]]).astype(np.int64)


def outermost_edges(z: np.ndarray, runs: np.ndarray, *, width: int, level: float) -> np.ndarray:
    """Move each run's ends to its outermost rows where the lightly smoothed evidence
    ``z`` (noise units) exceeds ``level``, searched within ``width`` rows inside the
    ends found on the smoothed profile (which the smoothing widens by up to half a
    window): the first and last vehicle's own pixels, not their blur."""
    out = runs.copy()
    n = z.size
    ok = np.where(np.isfinite(z), z, -np.inf) > level
    for i, (a, b) in enumerate(runs.tolist()):
        lo, hi = max(0, a), min(n, a + 2 * width, b)
        hit = np.flatnonzero(ok[lo:hi])
        if hit.size:
            out[i, 0] = lo + int(hit[0])
        lo, hi = max(out[i, 0], b - 2 * width), b
        hit = np.flatnonzero(ok[lo:hi])
        if hit.size:
            out[i, 1] = lo + int(hit[-1]) + 1
    return out
