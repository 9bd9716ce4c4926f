"""The fine pass: centre a rough route on the road, in a straightened strip.

The rough route is straightened into a strip (rows = stations, columns = offsets, both
``step`` metres; :func:`queuemeasure.corridor.iter_strips`, which reads only the
blocks of the corridor). In the strip the road is a band of road tone between two
edges; for each row a band score is computed for every lateral position, and a Viterbi
pass along the road picks the smoothest chain of positions with the best score, so that
a stretch hidden by trees or covered by vehicles is bridged by its neighbours. The
chosen offsets are smoothed along the road and mapped back to the local frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..corridor import BlockSampler, Scaler, iter_strips
from ..road import RoadPath
from .tone import RoadTone, mode_median, tone_distance

__all__ = ["FineResult", "centre_on_road", "discover_tone"]

#: Candidate carriageway widths (metres).
WIDTHS_M = (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.5, 12.0, 14.0)
#: Width (metres) of the verge flanks either side of the band.
FLANK_M = 2.0
#: Rows are pooled into blocks this long (metres) for the Viterbi pass.
BLOCK_M = 2.0
#: Along-road averaging of the road-tone likeness and of the edges (metres).
ALONG_M = 6.0
EDGE_ALONG_M = 16.0
#: Largest lateral drift per metre along the road, and its cost per metre of drift.
MAX_SLOPE = 0.6
DRIFT_COST = 0.08
#: Along-road Gaussian smoothing of the chosen offsets (metres).
SMOOTH_M = 4.0
#: How much a pixel that is neither road tone nor terrain (a vehicle) counts as road.
VEHICLE_WEIGHT = 0.6
#: Tone distance (in spreads) at which the road likeness falls to exp(-1/2).
LIKENESS_SCALE = 2.5


@dataclass
class FineResult:
    """Centreline points in the local frame, the carriageway width chosen, the share of
    the road on which the band was clearly seen, and the per-row lateral shift applied."""

    xy: np.ndarray
    width_m: float
    seen_share: float
    shift_m: np.ndarray


def _collect(
    sampler: BlockSampler, path: RoadPath, raster_crs: Any, scaler: Scaler, tone: RoadTone | None,
    *, step: float, half_width: float, local_tone: bool, centre_band_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Road likeness q and edge strength e (rows, cols) along the whole path."""
    qs, es, vs = [], [], []
    n_cols = 0
    for piece in iter_strips(sampler, path, raster_crs, scaler, step_m=step,
                             half_width_m=half_width, piece_m=1500.0, overlap_m=60.0):
        st = piece.strip
        img, valid = st.image, st.valid
        n_cols = img.shape[1]
        t = tone
        if local_tone or t is None:
            offs = st.offset_at_col(np.arange(n_cols) + 0.5)
            band = (np.abs(offs) <= centre_band_m)[None, :] & valid
            if band.sum() >= 16:
                c = mode_median(img[band][:: max(1, int(band.sum() // 20000))])
                spread = tone.spread if tone is not None else np.full(img.shape[2], 0.04, np.float32)
                t = RoadTone(c[None, :], spread)
        assert t is not None
        d = tone_distance(img, t, axis=-1)
        q = np.exp(-0.5 * (d / LIKENESS_SCALE) ** 2).astype(np.float32)
        # vehicles: neither road tone nor like the terrain beside the road; they stand on
        # the carriageway, so they count as partly road (a queue must not pull the line)
        bg = _background_likeness(img, valid, t, st.offset_at_col(np.arange(n_cols) + 0.5))
        q = q + VEHICLE_WEIGHT * (1.0 - q) * (1.0 - bg)
        q[~valid] = 0.0
        # signed across-road gradient, averaged along the road: consistent edges survive
        g = np.zeros((img.shape[0], n_cols + 1, img.shape[2]), np.float32)
        g[:, 1:-1] = img[:, 1:] - img[:, :-1]
        vv = np.zeros((img.shape[0], n_cols + 1), bool)
        vv[:, 1:-1] = valid[:, 1:] & valid[:, :-1]
        g[~vv] = 0.0
        w = max(1, int(round(EDGE_ALONG_M / step)))
        g = ndi.uniform_filter1d(g, w, axis=0, mode="nearest")
        e = np.sqrt((g ** 2).sum(axis=2)).astype(np.float32)
        sl = slice(piece.core_start, piece.core_stop)
        qs.append(q[sl])
        es.append(e[sl])
        vs.append(valid[sl])
    return np.concatenate(qs), np.concatenate(es), np.concatenate(vs), n_cols


def _background_likeness(img: np.ndarray, valid: np.ndarray, tone: RoadTone,
                         offsets: np.ndarray, n_proto: int = 48) -> np.ndarray:
    """Likeness (rows, cols) of each pixel to the terrain in the strip's outer columns.

    Prototypes are a fixed-seed sample of the outer 3 m on both sides that are not of
    road tone; a pixel's likeness falls with its distance to the nearest prototype.
    """
    R, C, nb = img.shape
    outer = (np.abs(offsets) >= np.abs(offsets).max() - 3.0)[None, :] & valid
    px = img[outer]
    if len(px) < 16:
        return np.ones((R, C), np.float32)
    px = px[tone_distance(px, tone, axis=-1) > 2.0 * LIKENESS_SCALE]
    if len(px) < 16:
        return np.zeros((R, C), np.float32)
    rng = np.random.default_rng(0)
    proto = px[rng.choice(len(px), size=min(n_proto, len(px)), replace=False)]
    best = np.full((R, C), np.inf, np.float32)
    for p in proto:
        best = np.minimum(best, np.sqrt(np.mean(((img - p) / tone.spread) ** 2, axis=-1)))
    return np.exp(-0.5 * (best / LIKENESS_SCALE) ** 2).astype(np.float32)


def _band_scores(q: np.ndarray, e: np.ndarray, n_w: int, n_f: int) -> np.ndarray:
    """Band score (rows, cols) of a band of 2*h+1 columns centred on each column."""
    R, C = q.shape
    h = n_w // 2
    pad = h + n_f + 1
    qp = np.pad(q, ((0, 0), (pad, pad)), mode="constant", constant_values=0.0)
    cs = np.concatenate([np.zeros((R, 1), np.float32), np.cumsum(qp, axis=1)], axis=1)
    c = np.arange(C) + pad
    inner = (cs[:, c + h + 1] - cs[:, c - h]) / (2 * h + 1)
    left = (cs[:, c - h] - cs[:, c - h - n_f]) / n_f
    right = (cs[:, c + h + 1 + n_f] - cs[:, c + h + 1]) / n_f
    flank = 0.5 * (left + right)
    # edges at the band's two boundaries (boundary index k lies left of column k)
    ep = np.pad(e, ((0, 0), (pad, pad)), mode="constant")
    edge = np.minimum(ep[:, c - h], ep[:, c + h + 1])
    return (inner - flank + 0.5 * edge).astype(np.float32)


def _viterbi(score: np.ndarray, max_jump: int, jump_cost: float) -> np.ndarray:
    """Column per row maximising the sum of scores minus ``jump_cost`` per column moved."""
    R, C = score.shape
    acc = score[0].astype(np.float64).copy()
    back = np.zeros((R, C), np.int16)
    shifts = np.arange(-max_jump, max_jump + 1)
    for r in range(1, R):
        best = np.full(C, -np.inf)
        arg = np.zeros(C, np.int16)
        for s in shifts:
            cand = np.full(C, -np.inf)
            if s >= 0:
                cand[s:] = acc[: C - s] - jump_cost * s
            else:
                cand[:s] = acc[-s:] + jump_cost * s
            better = cand > best
            best[better] = cand[better]
            arg[better] = s
        acc = best + score[r]
        back[r] = arg
    cols = np.zeros(R, int)
    cols[-1] = int(np.argmax(acc))
    for r in range(R - 1, 0, -1):
        cols[r - 1] = cols[r] - back[r, cols[r]]
    return cols


def _refine(score: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sub-column peak position by a parabola through the chosen column's neighbours."""
    R, C = score.shape
    c = np.clip(cols, 1, C - 2)
    r = np.arange(R)
    a, b, d = score[r, c - 1], score[r, c], score[r, c + 1]
    den = a - 2 * b + d
    off = np.where(den < -1e-9, 0.5 * (a - d) / np.where(den < -1e-9, den, -1.0), 0.0)
    return c + np.clip(off, -0.5, 0.5)


def centre_on_road(
    sampler: BlockSampler,
    path: RoadPath,
    raster_crs: Any,
    scaler: Scaler,
    tone: RoadTone | None,
    *,
    step: float,
    half_width: float,
    width_m: float | None = None,
    local_tone: bool = False,
    centre_band_m: float = 2.0,
    max_slope: float = MAX_SLOPE,
) -> FineResult:
    """Move ``path`` laterally onto the road's centre; return the new centreline.

    Parameters
    ----------
    sampler, path, raster_crs, scaler
        As for :func:`queuemeasure.corridor.iter_strips`; ``scaler`` must be fitted.
    tone : RoadTone or None
        The road's tone; with ``local_tone`` it is re-estimated per piece from the
        strip's central band (``centre_band_m`` either side), which is right once the
        path already lies on the road.
    step : float
        Ground sampling of the strip (metres).
    half_width : float
        How far (metres) either side of ``path`` the road may lie.
    width_m : float, optional
        Carriageway width; chosen from :data:`WIDTHS_M` when not given.
    """
    q, e, valid, n_cols = _collect(sampler, path, raster_crs, scaler, tone, step=step,
                                   half_width=half_width, local_tone=local_tone,
                                   centre_band_m=centre_band_m)
    R = q.shape[0]
    wq = max(1, int(round(ALONG_M / step)))
    q = ndi.uniform_filter1d(q, wq, axis=0, mode="nearest")
    escale = float(np.percentile(e[:, 1:-1][valid[:, 1:] & valid[:, :-1]] if valid.any() else e, 99)) or 1.0
    e = np.minimum(e / escale, 1.5)
    n_f = max(1, int(round(FLANK_M / step)))
    blk = max(1, int(round(BLOCK_M / step)))
    nb = -(-R // blk)
    padr = nb * blk - R

    def pooled(s: np.ndarray) -> np.ndarray:
        s = np.pad(s, ((0, padr), (0, 0)), mode="edge")
        return s.reshape(nb, blk, -1).mean(axis=1)

    if width_m is None:
        best = None
        for w in WIDTHS_M:
            n_w = max(1, int(round(w / step)))
            if n_w + 2 * n_f + 2 > n_cols:
                continue
            sc = pooled(_band_scores(q, e, n_w, n_f))
            val = float(np.median(sc.max(axis=1)))
            if best is None or val > best[0]:
                best = (val, w)
        width_m = best[1] if best is not None else 7.0
    n_w = max(1, int(round(width_m / step)))
    score = pooled(_band_scores(q, e, n_w, n_f))
    # keep the band inside the strip
    h = n_w // 2 + n_f
    score[:, :h] = -1.0
    score[:, n_cols - h:] = -1.0
    jump = max(1, int(round(max_slope * blk)))
    cols_b = _viterbi(score, jump, DRIFT_COST * step)
    colf = _refine(score, cols_b)
    seen = float(np.mean(score[np.arange(nb), cols_b] > 0.3))
    # blocks -> rows, smooth along the road
    centre_rows = (np.arange(nb) + 0.5) * blk
    rows = np.arange(R) + 0.5
    col_rows = np.interp(rows, centre_rows, colf)
    col_rows = ndi.gaussian_filter1d(col_rows, SMOOTH_M / step, mode="nearest")
    # the strip's columns: offset = -half + col * step (edge-based), centres at +0.5
    from ..corridor import Strip

    n_c = max(2, int(round(2 * half_width / step)))
    strip = Strip(np.zeros((0, n_c, 1), np.float32), np.zeros((0, n_c), bool), step,
                  n_c * step / 2.0, 0.0, path)
    rr = np.concatenate([[0.0], rows, [float(R)]])
    cc = np.concatenate([[col_rows[0]], col_rows, [col_rows[-1]]]) + 0.5
    rr = np.clip(rr * step, 0, path.chord_m[-1]) / step
    xy = strip.xy_at(rr, cc)
    return FineResult(xy, float(width_m), seen, strip.offset_at_col(cc))


def discover_tone(
    sampler: BlockSampler, path: RoadPath, raster_crs: Any, scaler: Scaler, *,
    step: float, half_width: float, block_m: float = 100.0,
) -> RoadTone:
    """Find the road's tone near a rough road, without a sample point.

    Per ``block_m`` of road, each column's median colour is taken; the road is the band
    of 5..12 m of uniform median colour that differs most from its flanks. The tone is
    the mode-seeking median of the bands' colours over the road.
    """
    colours, spreads = [], []
    for piece in iter_strips(sampler, path, raster_crs, scaler, step_m=step,
                             half_width_m=half_width, piece_m=1500.0, overlap_m=0.0):
        st = piece.strip
        R, C, nbands = st.image.shape
        blk = max(1, int(round(block_m / step)))
        for a in range(0, R, blk):
            sub = st.image[a:a + blk]
            ok = st.valid[a:a + blk]
            if ok.mean() < 0.5:
                continue
            med = np.median(np.where(ok[..., None], sub, np.nan), axis=0) if ok.all() else \
                np.nanmedian(np.where(ok[..., None], sub, np.nan), axis=0)
            if not np.isfinite(med).all():
                continue
            best = None
            n_f = max(1, int(round(FLANK_M / step)))
            for w in (5.0, 7.0, 9.0, 12.0):
                n_w = max(3, int(round(w / step)))
                for c0 in range(n_f, C - n_w - n_f, max(1, n_w // 4)):
                    band = med[c0:c0 + n_w]
                    bc = np.median(band, axis=0)
                    within = np.abs(band - bc).sum(axis=1).mean()
                    fl = np.concatenate([med[c0 - n_f:c0], med[c0 + n_w:c0 + n_w + n_f]])
                    contrast = np.abs(fl - bc).sum(axis=1).mean()
                    # the rough road is near the real one: prefer bands close to it
                    off = abs((c0 + n_w / 2.0) * step - st.half_width_m)
                    s = (contrast - 2.0 * within) * (1.0 - 0.5 * off / st.half_width_m)
                    if best is None or s > best[0]:
                        best = (s, bc, within)
            if best is not None:
                colours.append(best[1])
                spreads.append(best[2])
    if not colours:
        from ..errors import RoadError

        raise RoadError("the road lies on no valid pixels of the tile")
    c = mode_median(np.array(colours, np.float32))
    return RoadTone(c[None, :], np.full(len(c), max(0.03, float(np.median(spreads))), np.float32))
