"""Segment vehicles in a straightened road strip, without trained weights.

The strip comes from :mod:`queuemeasure.corridor`: rows are stations along the road (row 0
nearest the head of the queue), columns are offsets across it (the centreline is the middle
column), both sampled every ``step_m`` metres. :func:`detect_vehicles` works in five steps:

1. **Road-surface model.** Along the road, in sliding windows, the most frequent brightness
   over the carriageway (the mode of a windowed histogram: cars spread over many tones, the
   road is one tone) is the surface; its colour and noise (mean absolute deviation) are
   averaged over the pixels that look like it; a per-column offset follows lanes of a
   slightly different tone and wheel tracks.
2. **Anomaly.** Brightness (brighter or darker) and chroma distance from the surface, in
   units of the local surface noise; thin structures (lane markings, kerbs) are removed with
   a grey opening of about 0.8 m, and vegetation (green and textured) is suppressed.
   Columns that are uniform along the road over 40 m (pavements, verges, solid lines, a lane
   of another tone) are compared with their own median instead; a grey top-hat across the
   road (3.4 m) removes anomalies wider than a vehicle (shadows, patches, tone changes).
3. **Segmentation.** Hysteresis threshold, morphology sized in metres, labelling; blobs
   wider than 3.6 m are cut into lanes at the minima of their column profile. The cast
   shadow is not yet separated from the footprint (it adds ~0.5 m on the shadow side).
4. **Splitting.** Blobs longer than a car are cut at the minima of their along-road
   profile (the road between bumpers, dark windscreens) by dynamic programming with a
   prior on vehicle lengths; long, uniform, wide blobs are kept whole as trucks or buses.
5. **Scoring.** Contrast relative to the threshold times a size plausibility; ``kind`` from
   length and width; rows where the carriageway is hidden (nodata, canopy) are ``occluded``.

Every statistic is computed in windows of at most ~60 m along the road, so that results do
not depend on where a long road was cut into pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

__all__ = ["StripVehicle", "StripDetections", "detect_vehicles"]


@dataclass(frozen=True)
class StripVehicle:
    """One vehicle found in a strip, in strip pixel coordinates.

    Attributes
    ----------
    row0, row1 : float
        Along-road extent; ``row1`` is exclusive, so the length is ``(row1 - row0) * step_m``.
    col0, col1 : float
        Across-road extent (``col1`` exclusive).
    col_center : float
        Centre of the footprint across the road.
    score : float
        ``>= 1`` means accepted at the default sensitivity; weaker candidates down to
        ``min_score`` are returned too, for uncertainty ranges.
    kind : str
        ``"car"``, ``"van"``, ``"truck"`` (trucks and buses) or ``"unknown"``.
    polygon : numpy.ndarray
        ``(N, 2)`` closed outline ``(row, col)`` of the footprint.
    """

    row0: float
    row1: float
    col0: float
    col1: float
    col_center: float
    score: float
    kind: str
    polygon: np.ndarray = field(repr=False, compare=False)

    @property
    def row_center(self) -> float:
        """Centre of the footprint along the road, in rows."""
        return 0.5 * (self.row0 + self.row1)


@dataclass(frozen=True)
class StripDetections:
    """Everything :func:`detect_vehicles` found in a strip.

    Attributes
    ----------
    vehicles : list of StripVehicle
        Objects with ``score >= min_score`` whose centre lies within ``half_width_m`` of the
        centreline, sorted by ``row0``.
    occluded : numpy.ndarray
        ``(rows,)`` bool: stations where the carriageway is hidden (canopy) or has no valid
        data, where a vehicle could stand unseen.
    anomaly : numpy.ndarray
        ``(rows, cols)`` float32 anomaly score, in units of the threshold-free surface noise.
    surface : numpy.ndarray
        ``(rows, bands)`` float32 road-surface model (what empty road looks like there).
    carriageway : numpy.ndarray
        ``(rows, 2)`` float32 estimated carriageway extent ``[col0, col1)`` (NaN where unknown).
    threshold : float
        The anomaly threshold used (``>= threshold`` seeds an accepted vehicle).
    """

    vehicles: list[StripVehicle]
    occluded: np.ndarray
    anomaly: np.ndarray
    surface: np.ndarray
    carriageway: np.ndarray
    threshold: float


# --------------------------------------------------------------------------------------
# parameters (metres unless stated)
_SURF_WIN_M = 16.0  # along-road window of the surface mode
_COL_WIN_M = 40.0  # along-road window of the per-column tone offset
_NOISE_FLOOR = 0.01  # minimum brightness noise (0..1 scale)
_CHROMA_FLOOR = 0.008
_PRESMOOTH_M = 0.1  # Gaussian sigma applied to the features before the anomaly
_T0 = 4.0  # anomaly threshold (noise units) at sensitivity 1
_LOW_FRAC = 0.55  # hysteresis low threshold, fraction of the threshold
_THIN_M = 1.0  # grey opening size removing thin markings
_WIDE_M = 3.4  # across-road size beyond which an anomaly is background
_WIDE_ALONG_M = 0.6
_MIN_WIDTH_M = 1.1
_MAX_VEH_WIDTH_M = 3.6
_TRUCK_MIN_WIDTH_M = 2.35
_MIN_LEN_M = 2.2
_CAR_LEN = (3.4, 5.4)
_MAX_SPLIT_PART_M = 2.6


def _odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n


def _wsum(x: np.ndarray, size: int) -> np.ndarray:
    """Windowed sum along axis 0 (zero padding), any trailing shape."""
    if size <= 1:
        return x.astype(np.float64, copy=True)
    return ndi.uniform_filter1d(x.astype(np.float64), size, axis=0, mode="constant") * size


def _wratio(num: np.ndarray, den: np.ndarray, size: int, fill: float = np.nan) -> np.ndarray:
    """Windowed sum of ``num`` over windowed sum of ``den`` along axis 0."""
    s = _wsum(num, size)
    n = _wsum(den, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / n
    out[n <= 1e-9] = fill
    return out


def _fill_nan_rows(x: np.ndarray) -> np.ndarray:
    """Replace NaN along axis 0 by the nearest finite value (per trailing element)."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1)
    out = flat.copy()
    for j in range(flat.shape[1]):
        col = flat[:, j]
        ok = np.isfinite(col)
        if ok.all():
            continue
        if not ok.any():
            out[:, j] = 0.0
            continue
        idx = np.where(ok, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        first = int(np.argmax(ok))
        idx[:first] = first
        fwd = col[idx]
        idx2 = np.where(ok, np.arange(len(col)), len(col) - 1)
        idx2 = np.minimum.accumulate(idx2[::-1])[::-1]
        last = len(col) - 1 - int(np.argmax(ok[::-1]))
        idx2[last + 1 :] = last
        bwd = col[idx2]
        d_f = np.abs(np.arange(len(col)) - idx)
        d_b = np.abs(idx2 - np.arange(len(col)))
        out[:, j] = np.where(ok, col, np.where(d_f <= d_b, fwd, bwd))
    return out.reshape(x.shape)


def _features(img: np.ndarray) -> np.ndarray:
    """Brightness and two opponent chroma channels, (rows, cols, 1 or 3) float32."""
    if img.shape[2] >= 3:
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        lum = (r + g + b) / 3.0
        o1 = (r - g) * np.float32(1 / np.sqrt(2.0))
        o2 = (r + g - 2.0 * b) * np.float32(1 / np.sqrt(6.0))
        return np.stack([lum, o1, o2], axis=-1).astype(np.float32)
    return img[..., :1].astype(np.float32)


def _hist_mode(
    lum: np.ndarray, weight: np.ndarray, win: int, lo: float = -0.2, hi: float = 1.4, nb: int = 320
) -> np.ndarray:
    """Mode of the brightness histogram of each row window; NaN where no data."""
    rows = lum.shape[0]
    bw = (hi - lo) / nb
    idx = np.clip(((lum - lo) / bw).astype(np.int64), 0, nb - 1)
    keys = (np.arange(rows, dtype=np.int64)[:, None] * nb + idx).ravel()
    h = np.bincount(keys, weights=weight.ravel().astype(np.float64), minlength=rows * nb)
    h = h.reshape(rows, nb)
    h = _wsum(h, win)
    h = ndi.gaussian_filter1d(h, 1.5, axis=1, mode="constant")
    k = np.argmax(h, axis=1)
    kk = np.clip(k, 1, nb - 2)
    y0 = h[np.arange(rows), kk - 1]
    y1 = h[np.arange(rows), kk]
    y2 = h[np.arange(rows), kk + 1]
    den = y0 - 2 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(den < 0, 0.5 * (y0 - y2) / den, 0.0)
    delta = np.clip(np.nan_to_num(delta), -0.5, 0.5)
    mode = lo + (kk + 0.5 + delta) * bw
    # half width at half maximum of the peak -> Gaussian sigma
    half = 0.5 * h[np.arange(rows), k][:, None]
    b = np.arange(nb)[None, :]
    below = h < half
    left = np.where(below & (b < k[:, None]), b, -1).max(axis=1)
    right = np.where(below & (b > k[:, None]), b, nb).min(axis=1)
    hwhm = 0.5 * (right - left - 1) * bw
    sig = np.sqrt(np.maximum(hwhm**2 - (1.5 * bw) ** 2, 0.0)) / 1.1774
    bad = h.max(axis=1) <= 1e-9
    mode[bad] = np.nan
    sig[bad] = np.nan
    return mode, sig


@dataclass
class _Surface:
    lum: np.ndarray  # (rows, cols) brightness of the empty road
    sig: np.ndarray  # (rows, 1) brightness noise
    chroma: np.ndarray | None  # (rows, 2)
    csig: np.ndarray | None  # (rows, 1)
    roadlike: np.ndarray  # (rows, cols) bool
    bands: np.ndarray  # (rows, bands)


def _surface_model(
    feat: np.ndarray, img: np.ndarray, ok: np.ndarray, zone_w: np.ndarray, step: float
) -> _Surface:
    rows, cols = ok.shape
    lum = feat[..., 0]
    win = _odd(_SURF_WIN_M / step)
    w = ok * zone_w[None, :]
    mode, sig = _hist_mode(lum, w, win)
    mode = _fill_nan_rows(mode)
    sig = np.maximum(_fill_nan_rows(sig), _NOISE_FLOOR)
    roadlike = (np.abs(lum - mode[:, None]) < 2.5 * sig[:, None]) & ok
    # per-column offset (lanes of another tone, wheel tracks) from road-like pixels
    cwin = _odd(_COL_WIN_M / step)
    res = np.where(roadlike, lum - mode[:, None], 0.0)
    n = _wsum(roadlike.astype(np.float32), cwin)
    off = _wsum(res, cwin)
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(n > 0.15 * cwin, off / np.maximum(n, 1e-9), 0.0)
    surf_lum = (mode[:, None] + off).astype(np.float32)
    rw = roadlike * zone_w[None, :]
    if feat.shape[2] == 3:
        chroma = np.stack(
            [_fill_nan_rows(_wratio((feat[..., c] * rw).sum(1), rw.sum(1), win)) for c in (1, 2)], axis=1
        )
        dc = np.hypot(feat[..., 1] - chroma[:, None, 0], feat[..., 2] - chroma[:, None, 1])
        cs = _fill_nan_rows(_wratio((dc * rw).sum(1), rw.sum(1), win)) * 1.25
        csig = np.maximum(cs, _CHROMA_FLOOR)[:, None]
    else:
        chroma = None
        csig = None
    bands = np.stack(
        [_fill_nan_rows(_wratio((img[..., b] * rw).sum(1), rw.sum(1), win)) for b in range(img.shape[2])],
        axis=1,
    ).astype(np.float32)
    return _Surface(surf_lum, sig[:, None], chroma, csig, roadlike, bands)


def _column_anomaly(feat: np.ndarray, ok: np.ndarray, surf: _Surface, step: float) -> np.ndarray:
    """Anomaly against each column's own along-road median, where that column is uniform.

    Kerbs, pavements, verges, solid lines and lanes of another tone are uniform along the
    road: more than half of a 40 m window lies close to the window's median. A lane holding
    a queue is not (cars of many tones, gaps), so there the row-wise surface model rules.
    Computed on rows decimated to ~1 m (the window's samples), interpolated back.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    rows, cols, nf = feat.shape
    k = max(1, int(round(2.0 / step)))  # samples ~2 m apart in each row's window
    x = feat
    if not ok.all():
        fill = surf.lum[..., None]
        if nf == 3:
            fill = np.concatenate([fill, np.broadcast_to(surf.chroma[:, None, :], (rows, cols, 2))], axis=-1)
        x = np.where(ok[..., None], feat, fill)
    half = max(1, int(round(0.5 * _COL_WIN_M / (k * step))))
    span = 2 * half * k
    xp = np.pad(x, ((half * k, half * k), (0, 0), (0, 0)), mode="reflect")
    med = np.empty_like(x)
    support = np.empty((rows, cols), np.float32)
    block = max(1, int(4e6 // max(cols * nf * (2 * half + 1), 1)))
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        # window of row r: padded rows r .. r + span, every k-th (phase-free: centred on r)
        sw = sliding_window_view(xp[r0 : r1 + span], span + 1, axis=0)[:, :, :, ::k]
        m = np.median(sw, axis=-1)
        med[r0:r1] = m
        close = np.abs(sw[:, :, 0, :] - m[:, :, 0, None]) < 2.5 * surf.sig[r0:r1, :, None]
        if nf == 3:
            dcs = np.hypot(sw[:, :, 1, :] - m[:, :, 1, None], sw[:, :, 2, :] - m[:, :, 2, None])
            close &= dcs < 2.5 * surf.csig[r0:r1, :, None]
        support[r0:r1] = close.mean(-1)
    za = np.abs(feat[..., 0] - med[..., 0]) / surf.sig
    if nf == 3:
        zc = np.hypot(feat[..., 1] - med[..., 1], feat[..., 2] - med[..., 2]) / surf.csig
        za = np.maximum(za, zc)
    out = np.where(support > 0.5, za, np.inf)
    return out.astype(np.float32)


def _texture(lum: np.ndarray, step: float) -> np.ndarray:
    """Local standard deviation of the high-pass brightness over ~1.5 m."""
    s = max(0.7, 0.12 / step)
    hp = lum - ndi.gaussian_filter(lum, s)
    size = _odd(1.5 / step)
    return np.sqrt(np.maximum(ndi.uniform_filter(hp * hp, size), 0.0))


def detect_vehicles(
    image: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    step_m: float,
    half_width_m: float = 6.0,
    sensitivity: float = 1.0,
    min_score: float = 0.6,
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
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] < 1:
        raise ValueError(f"image must be (rows, cols[, bands]), got shape {np.shape(image)}")
    if not step_m or step_m <= 0:
        raise ValueError("step_m must be positive")
    img = img.astype(np.float32, copy=False)
    rows, cols, nbands = img.shape
    ok = np.all(np.isfinite(img), axis=2)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (rows, cols):
            raise ValueError(f"valid must have shape {(rows, cols)}, got {valid.shape}")
        ok &= valid
    img = np.where(ok[..., None], img, 0.0).astype(np.float32)
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

    centre = (cols - 1) / 2.0
    offs = (np.arange(cols) - centre) * step
    zone = np.abs(offs) <= half_width_m
    if not zone.any():
        zone = np.abs(offs) <= np.abs(offs).min() + step
    zone_w = zone.astype(np.float32)

    feat = _features(img)
    fs = _PRESMOOTH_M / step
    if fs >= 0.5:
        feat = ndi.gaussian_filter(feat, (fs, fs, 0))
    surf = _surface_model(feat, img, ok, zone_w, step)
    lum = feat[..., 0]

    # ---- anomaly -------------------------------------------------------------------
    zl = (lum - surf.lum) / surf.sig
    if surf.chroma is not None:
        dc = np.hypot(feat[..., 1] - surf.chroma[:, None, 0], feat[..., 2] - surf.chroma[:, None, 1])
        zc = dc / surf.csig
        anom = np.maximum(np.abs(zl), zc)
    else:
        anom = np.abs(zl)
    anom = np.where(ok, anom, 0.0).astype(np.float32)
    anom = np.minimum(anom, _column_anomaly(feat, ok, surf, step))
    k = _odd(_THIN_M / step)
    if k > 1:
        anom_o = ndi.grey_opening(anom, size=(k, k))
    else:
        anom_o = anom
    # width top-hat: what is wider than a vehicle across the road (pavements, verges,
    # shadows and tone changes over the carriageway) is background
    kw = _odd(_WIDE_M / step)
    ka = _odd(_WIDE_ALONG_M / step)
    anom_o = anom_o - ndi.grey_opening(anom_o, size=(ka, kw))

    # ---- vegetation / occlusion ------------------------------------------------------
    tex = _texture(lum, step)
    rl = surf.roadlike * zone_w[None, :]
    tex_road = _fill_nan_rows(_wratio((tex * rl).sum(1), rl.sum(1), _odd(_SURF_WIN_M / step)))
    tex_road = np.maximum(tex_road, 1e-3)[:, None]
    if nbands >= 3:
        exg = (2 * img[..., 1] - img[..., 0] - img[..., 2]) / 2.0
        exg_road = (2 * surf.bands[:, 1] - surf.bands[:, 0] - surf.bands[:, 2]) / 2.0
        green = ndi.uniform_filter(exg, _odd(1.0 / step)) - exg_road[:, None]
        veg = (green > 0.025) & (tex > 1.5 * tex_road)  # canopy: green and textured
        hidden = veg | (green > 0.06)  # or strongly green (coarse pixels lose texture)
    else:
        green = None
        veg = np.zeros_like(ok)
        hidden = veg
    veg = ndi.binary_opening(veg, iterations=1) if veg.any() else veg
    occ_frac = ((hidden | ~ok) * zone_w[None, :]).sum(1) / zone_w.sum()
    occ_frac = ndi.uniform_filter1d(occ_frac, _odd(2.0 / step))
    occluded = occ_frac > 0.5

    anom_d = np.where(veg, 0.0, anom_o).astype(np.float32)

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
    kc = _odd(0.4 / step)
    if kc > 1:
        mask = ndi.binary_closing(mask, structure=np.ones((kc, kc), bool))
    mask = ndi.binary_fill_holes(mask)
    ko = _odd(0.9 / step)
    if ko > 1:
        mask = ndi.binary_opening(mask, structure=np.ones((ko, ko), bool))
    mask &= ok

    lab, n = ndi.label(mask)
    vehicles: list[StripVehicle] = []
    if n:
        objs = ndi.find_objects(lab)
        for i, sl in enumerate(objs, start=1):
            if sl is None:
                continue
            bm = lab[sl] == i
            if green is not None:
                g = float(green[sl][bm].mean())
                t = float(tex[sl][bm].mean())
                if g > 0.03 and t < 1.4 * float(tex_road[sl[0]].mean()):
                    continue  # a small tree or a bush, not a vehicle
            for pm, psl in _split_across(bm, anom_d[sl], sl, step):
                vehicles.extend(_analyse_blob(pm, anom_d[psl], psl, step, threshold, min_score))
    lim = half_width_m / step
    vehicles = [v for v in vehicles if abs(v.col_center - centre) <= lim]
    vehicles.sort(key=lambda v: (v.row0, v.col0))

    carriageway = _carriageway(surf.roadlike, zone_w, step)
    return StripDetections(
        vehicles=vehicles,
        occluded=occluded,
        anomaly=anom_d,
        surface=surf.bands,
        carriageway=carriageway,
        threshold=threshold,
    )


def _carriageway(roadlike: np.ndarray, zone_w: np.ndarray, step: float) -> np.ndarray:
    rows, cols = roadlike.shape
    win = _odd(10.0 / step)
    frac = _wsum(roadlike.astype(np.float32), win) / win
    road = frac > 0.3
    c = cols // 2
    out = np.full((rows, 2), np.nan, np.float32)
    # contiguous run around the centre column
    left = np.where(~road[:, : c + 1], np.arange(c + 1)[None, :], -1).max(axis=1) + 1
    right = np.where(~road[:, c:], np.arange(c, cols)[None, :], cols).min(axis=1)
    good = road[:, c]
    out[good, 0] = left[good]
    out[good, 1] = right[good]
    return out


# --------------------------------------------------------------------------------------
# blobs


def _split_across(
    m: np.ndarray, a: np.ndarray, sl: tuple[slice, slice], step: float, depth: int = 0
) -> list[tuple[np.ndarray, tuple[slice, slice]]]:
    """Cut blobs wider than a vehicle into lanes at the minima of their column profile."""
    ncol = m.shape[1]
    if ncol * step <= _MAX_VEH_WIDTH_M or depth > 4:
        return [(m, sl)]
    prof = ndi.gaussian_filter1d((np.minimum(a, 50.0) * m).sum(axis=0).astype(float), max(0.5, 0.2 / step))
    lo = int(np.ceil(1.2 / step))
    if ncol - 2 * lo < 1:
        return [(m, sl)]
    j = lo + int(np.argmin(prof[lo : ncol - lo]))
    out = []
    for part, c0 in ((m[:, :j], 0), (m[:, j:], j)):
        lab, n = ndi.label(part)
        for i, psl in enumerate(ndi.find_objects(lab), start=1):
            if psl is None:
                continue
            pm = lab[psl] == i
            gsl = (
                slice(sl[0].start + psl[0].start, sl[0].start + psl[0].stop),
                slice(sl[1].start + c0 + psl[1].start, sl[1].start + c0 + psl[1].stop),
            )
            pa = a[psl[0], c0 + psl[1].start : c0 + psl[1].stop]
            out.extend(_split_across(pm, pa, gsl, step, depth + 1))
    return out


def _length_cost(length_m: float, width_m: float, uniform: bool, step: float) -> float:
    """Penalty for a segment of this length being one vehicle (0 = typical car)."""
    lo, hi = _CAR_LEN
    if length_m < _MAX_SPLIT_PART_M:
        return 50.0
    if length_m < lo:
        return 1.5 * (lo - length_m)
    if length_m <= hi:
        return 0.0
    if uniform and width_m >= _TRUCK_MIN_WIDTH_M - (0.35 if step > 0.6 else 0.0) and length_m <= 20.0:
        return 0.15 * (length_m - hi)
    return 1.2 * (length_m - hi)


def _split_rows(profile: np.ndarray, width_prof: np.ndarray, step: float, uniform: bool, width_m: float) -> list[tuple[int, int]]:
    """Cut a blob's along-road profile into vehicles by dynamic programming."""
    n = len(profile)
    length = n * step
    if length <= _CAR_LEN[1] + 0.6:
        return [(0, n)]
    p = ndi.gaussian_filter1d(profile.astype(np.float64), max(0.5, 0.25 / step))
    ref = np.percentile(p, 75) + 1e-9
    # candidate cuts: local minima of the profile
    cand = [
        i
        for i in range(1, n - 1)
        if p[i] <= p[i - 1] and p[i] <= p[i + 1] and i * step >= _MAX_SPLIT_PART_M and (n - i) * step >= _MAX_SPLIT_PART_M
    ]
    pts = [0] + cand + [n]
    # cut cost: deep dips are cheap (negative), shallow dips are expensive
    depth = {i: p[i] / ref for i in cand}
    wref = np.percentile(width_prof, 75) + 1e-9
    cut_cost = {
        i: 4.0 * (min(depth[i], 1.0) - 0.55) + 2.0 * (min(width_prof[i] / wref, 1.0) - 0.6) for i in cand
    }
    pn = p / ref
    edge = int(np.ceil(3.0 / step))
    m = len(pts)
    best = np.full(m, np.inf)
    prev = np.full(m, -1)
    best[0] = 0.0
    for j in range(1, m):
        cj = cut_cost.get(pts[j], 0.0) if j < m - 1 else 0.0
        for i in range(j):
            if not np.isfinite(best[i]):
                continue
            seg = (pts[j] - pts[i]) * step
            if seg > 25.0:
                continue
            # a truck or bus has a uniform roof: no deep dip inside (cars have gaps and
            # windscreens); the cab gap ~2.5 m behind the front is allowed
            a0, a1 = pts[i] + edge, pts[j] - edge
            seg_uniform = uniform and (a1 <= a0 or float(pn[a0:a1].min()) > 0.4)
            c = best[i] + _length_cost(seg, width_m, seg_uniform, step) + cj
            if c < best[j]:
                best[j] = c
                prev[j] = i
    if not np.isfinite(best[m - 1]):
        return [(0, n)]
    cuts = []
    j = m - 1
    while j > 0:
        i = prev[j]
        cuts.append((pts[i], pts[j]))
        j = i
    return cuts[::-1]


def _analyse_blob(
    m: np.ndarray, a: np.ndarray, sl: tuple[slice, slice], step: float, threshold: float, min_score: float
) -> list[StripVehicle]:
    r_off, c_off = sl[0].start, sl[1].start
    nrow, ncol = m.shape
    if nrow * step < _MIN_LEN_M or ncol * step < _MIN_WIDTH_M * 0.8:
        return []
    width_prof = m.sum(axis=1).astype(np.float64)
    aa = np.minimum(a, 4 * threshold) * m
    profile = aa.sum(axis=1)
    wr = width_prof[width_prof > 0]
    width_m = float(np.median(wr)) * step
    uniform = bool(np.std(wr) / (np.mean(wr) + 1e-9) < 0.2)
    out: list[StripVehicle] = []
    for r0, r1 in _split_rows(profile, width_prof, step, uniform, width_m):
        sub = m[r0:r1]
        rr = np.nonzero(sub.any(axis=1))[0]
        cc = np.nonzero(sub.any(axis=0))[0]
        if rr.size == 0:
            continue
        rs0, rs1 = r0 + rr[0], r0 + rr[-1] + 1
        cs0, cs1 = cc[0], cc[-1] + 1
        length = (rs1 - rs0) * step
        sub_w = sub.sum(axis=1)
        width = float(np.percentile(sub_w[sub_w > 0], 70)) * step
        if length < _MIN_LEN_M or width < _MIN_WIDTH_M:
            continue
        if width > 3.6 or length > 25.0:
            continue
        vals = a[r0:r1][sub]
        contrast = float(np.percentile(vals, 90)) / threshold
        plaus = 1.0
        if length < 3.0:
            plaus *= 0.7 + 0.3 * (length - _MIN_LEN_M) / (3.0 - _MIN_LEN_M)
        if width < 1.4:
            plaus *= 0.75
        score = contrast * plaus
        if score < min_score:
            continue
        if length >= 7.5 and width >= 2.0:
            kind = "truck"
        elif length >= 5.4:
            kind = "van"
        elif length >= 2.8:
            kind = "car"
        else:
            kind = "unknown"
        # pixel k is centred on coordinate k: a footprint over pixels i..j spans i-0.5..j+0.5
        R0, R1 = float(r_off + rs0) - 0.5, float(r_off + rs1) - 0.5
        C0, C1 = float(c_off + cs0) - 0.5, float(c_off + cs1) - 0.5
        ys, xs = np.nonzero(sub)
        col_center = float(c_off + xs.mean())
        poly = np.array([[R0, C0], [R0, C1], [R1, C1], [R1, C0], [R0, C0]], dtype=float)
        out.append(StripVehicle(R0, R1, C0, C1, col_center, score, kind, poly))
    return out
