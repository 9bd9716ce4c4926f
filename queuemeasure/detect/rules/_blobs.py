"""Turn connected blobs of anomalous pixels into vehicles: lanes, runs, shadows, scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

# metres
MIN_WIDTH_M = 1.1
MAX_VEH_WIDTH_M = 3.6
MIN_LEN_M = 2.2
CAR_LEN = (3.4, 5.6)
MIN_PART_M = 2.4  # no cut leaves a piece shorter than this
MAX_LEN_M = 22.0
SHADOW_TRIM_M = 1.2
MIN_TRIMMED_WIDTH_M = 1.5  # shadow trimming stops short of this width
INNER_EDGE_M = 3.0  # cab gaps of trucks lie this close to an end
_LANE_VALLEY = 0.8  # a narrow blob is cut into lanes only at a minimum this far below both peaks
_LANE_FRINGE = 0.35  # ... else its side columns under this share of the peak column are trimmed
FRINGE_M = 1.5  # faint end rows are trimmed up to this far
FRINGE_FRAC = 0.35  # ... where their summed response is under this share of the body's
_TYPICAL_CAR_M = 4.6
_TYPICAL_COST = 0.3  # per metre away from the typical car's length
_FEW = 32  # pct sorts this many values faster as Python numbers


def pct(x: np.ndarray, q: float) -> float:
    """``np.percentile(x, q)`` (linear interpolation) by sorting: many small calls (for the
    few values of a blob one sort costs less than ``np.partition``'s overhead)."""
    x = np.asarray(x)
    if x.size <= _FEW:
        v = x.ravel().tolist()
        total = sum(v)
        if total == total:  # no NaN (numpy sorts NaN last; Python's sort does not)
            # the same doubles and the same arithmetic on Python numbers
            v.sort()
            n = len(v)
            pos = q / 100.0 * (n - 1)
            lo = math.floor(pos)
            hi = min(lo + 1, n - 1)
            return float(v[lo] + (pos - lo) * (v[hi] - v[lo]))
    part = np.sort(np.asarray(x, dtype=np.float64), axis=None)
    n = part.size
    pos = q / 100.0 * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


@lru_cache(maxsize=None)
def _gauss_weights(sigma: float) -> np.ndarray:
    """The correlation weights ``ndi.gaussian_filter1d`` uses: its response to an impulse."""
    lw = int(4.0 * float(sigma) + 0.5)
    impulse = np.zeros(2 * lw + 1)
    impulse[lw] = 1.0
    w = ndi.gaussian_filter1d(impulse, sigma, mode="constant")[::-1].copy()
    w.flags.writeable = False
    return w


def _gauss1d(x: np.ndarray, sigma: float) -> np.ndarray:
    """``ndi.gaussian_filter1d(x, sigma)`` for a 1-D array, without rebuilding the kernel
    on every one of the many small calls."""
    return ndi.correlate1d(x, _gauss_weights(sigma), mode="reflect")


@dataclass
class BlobContext:
    """Full-strip arrays the blob analysis reads (working resolution)."""

    anom: np.ndarray  # anomaly after suppression (rows, cols)
    road: np.ndarray  # bool: looks like the road surface
    shade: np.ndarray  # bool: darker than the road and grey (cast shadows, dark glass)
    featz: np.ndarray  # (rows, cols, nf) features in units of the surface noise
    shade_lab: np.ndarray  # labels of connected shade
    shade_wide: np.ndarray  # per shade label: wider across than a vehicle
    step: float
    threshold: float
    min_score: float
    smooth_green: np.ndarray | None = None  # bool: green and smooth (grass, bushes)


@dataclass
class Segment:
    """One vehicle in working pixel coordinates (edges at k - 0.5 / k + 0.5)."""

    r0: int
    r1: int  # exclusive
    c0: int
    c1: int  # exclusive
    col_center: float
    score: float
    kind: str


def split_across(m: np.ndarray, a: np.ndarray, r0: int, c0: int, step: float, depth: int = 0):
    """Cut blobs wider than a vehicle into lanes at the minima of their column profile."""
    ncol = m.shape[1]
    if ncol * step <= MAX_VEH_WIDTH_M or depth > 4:
        return [(m, r0, c0)]
    prof = _gauss1d((np.minimum(a, 50.0) * m).sum(axis=0).astype(float), max(0.5, 0.2 / step))
    lo = int(np.ceil(1.2 / step))
    if ncol - 2 * lo < 1:
        return [(m, r0, c0)]
    j = lo + int(np.argmin(prof[lo : ncol - lo]))
    if ncol - 2 * lo < 3 and (prof[j] > min(prof[j - 1], prof[j + 1])
                              or prof[j] > _LANE_VALLEY * min(prof[:j].max(), prof[j:].max())):
        # too few columns to look for a valley between two lanes in, and no valley there
        # (a minimum well below both sides' peaks): one vehicle with a faint fringe or its
        # shadow beside it, which a cut in the search's few columns could halve; the faint
        # columns at its sides are trimmed instead
        keep = np.flatnonzero(prof >= _LANE_FRINGE * prof.max())
        a0, a1 = int(keep[0]), int(keep[-1]) + 1
        return [(pm, r0 + pr, c0 + a0 + pc) for pm, pr, pc in _components(m[:, a0:a1])]
    out = []
    for part, cc in ((m[:, :j], 0), (m[:, j:], j)):
        for pm, pr, pc in _components(part):
            pa = a[pr:pr + pm.shape[0], cc + pc:cc + pc + pm.shape[1]]
            out.extend(split_across(pm, pa, r0 + pr, c0 + cc + pc, step, depth + 1))
    return out


_CROSS = ndi.generate_binary_structure(2, 1)  # label's default (made once, not per small call)


def _components(m: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """The connected pieces of a mask: ``(piece mask, first row, first column)`` each."""
    lab, _ = ndi.label(m, _CROSS)
    return [(lab[sl] == i, sl[0].start, sl[1].start)
            for i, sl in enumerate(ndi.find_objects(lab), start=1) if sl is not None]


def _length_cost(length_m: float, uniform: bool) -> float:
    lo, hi = CAR_LEN
    if length_m < MIN_PART_M:
        return 50.0
    if length_m < lo:
        return 0.8 + 3.0 * (lo - length_m)
    if length_m <= hi:
        # most cars are 4-5 m: of two ways to cut a run, the one at the gaps (not at
        # windscreens, which leave 3.5 m pieces) is preferred
        return _TYPICAL_COST * abs(length_m - _TYPICAL_CAR_M)
    if length_m > MAX_LEN_M:
        return 50.0
    if uniform:
        return 0.12 * (length_m - hi)
    return 1.2 * (length_m - hi)


def split_rows(evidence: np.ndarray, step: float) -> list[tuple[int, int]]:
    """Cut a blob into vehicles at rows of gap evidence, by dynamic programming.

    ``evidence`` (0..1 per row) says how much a row looks like the space between two
    vehicles (road or shadow across the blob, or a deep dip of the anomaly). Segment
    lengths have a prior (cars 3.4-5.6 m; longer pieces only when nothing inside them
    looks like a gap, as for a truck's uniform roof).
    """
    n = len(evidence)
    if n * step <= CAR_LEN[1] + 0.8:
        return [(0, n)]
    parts = _split_rows_dp(evidence, step)
    # a piece longer than any vehicle is several vehicles whose gaps do not show (a solid
    # run of a dense queue): never drop it, cut it where its evidence is highest
    out: list[tuple[int, int]] = []
    for a, b in parts:
        if (b - a) * step > MAX_LEN_M:
            out.extend(_split_evenly(evidence[a:b], a, step))
        else:
            out.append((a, b))
    return out


def _split_evenly(e: np.ndarray, offset: int, step: float, spacing_m: float = 6.0) -> list[tuple[int, int]]:
    """Cut a run into round(length / spacing) pieces, each cut at the row of highest gap
    evidence within a third of a piece of its even position."""
    n = len(e)
    k = max(2, int(round(n * step / spacing_m)))
    size = n / k
    cuts = [0]
    for j in range(1, k):
        c = int(round(j * size))
        w = max(1, int(size / 3))
        lo, hi = max(cuts[-1] + 1, c - w), min(n - 1, c + w)
        if hi > lo:
            c = lo + int(np.argmax(e[lo:hi]))
        cuts.append(c)
    cuts.append(n)
    return [(offset + a, offset + b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _split_rows_dp(evidence: np.ndarray, step: float) -> list[tuple[int, int]]:
    """The dynamic-programming cut of :func:`split_rows` (may leave over-long pieces)."""
    n = len(evidence)
    e = evidence.tolist()  # Python floats: the scans below read one element at a time
    lo = int(np.ceil(MIN_PART_M / step))
    cand = []
    i = lo
    while i <= n - lo:
        if e[i] >= 0.3 and e[i] >= e[i - 1] and e[i] >= e[min(i + 1, n - 1)]:
            # one candidate per plateau: its middle
            j = i
            while j + 1 <= n - lo and e[j + 1] == e[i]:
                j += 1
            cand.append((i + j + 1) // 2)
            i = j + 1
        else:
            i += 1
    if not cand:
        return [(0, n)]
    pts = [0] + cand + [n]
    m = len(pts)
    bonus = [0.0] + [4.0 * (e[c] - 0.45) for c in cand] + [0.0]
    strong = np.asarray(evidence >= 0.5)
    cs = np.concatenate([[0], np.cumsum(strong)]).tolist()
    edge = int(np.ceil(INNER_EDGE_M / step))
    inf = float("inf")
    best = [inf] * m
    prev = [-1] * m
    best[0] = 0.0
    i0 = 0
    for j in range(1, m):
        # the points too far before pts[j] for a piece (pts ascend: a prefix, which only
        # grows with j) are skipped without a look
        while (pts[j] - pts[i0]) * step > MAX_LEN_M:
            i0 += 1
        for i in range(i0, j):
            if best[i] == inf:
                continue
            seg = (pts[j] - pts[i]) * step
            a0, a1 = pts[i] + edge, pts[j] - edge
            uniform = a1 <= a0 or cs[a1] - cs[a0] == 0
            c = best[i] + _length_cost(seg, uniform) - bonus[j]
            if c < best[j]:
                best[j] = c
                prev[j] = i
    if best[m - 1] == inf:
        return [(0, n)]
    cuts = []
    j = m - 1
    while j > 0:
        i = prev[j]
        cuts.append((pts[i], pts[j]))
        j = i
    return cuts[::-1]


def _trim(frac: np.ndarray, maxn: int) -> tuple[int, int]:
    """Rows to drop at each end where ``frac`` (shade share of the row) is high."""
    n = len(frac)
    frac = frac.tolist()  # read one element at a time: Python floats (the same values)
    a = 0
    while a < min(maxn, n - 1) and frac[a] >= 0.6:
        a += 1
    b = 0
    while b < min(maxn, n - 1 - a) and frac[n - 1 - b] >= 0.6:
        b += 1
    return a, b


def _fringe(aa: np.ndarray, maxn: int, keep: int) -> tuple[int, int]:
    """Rows to drop at each end whose summed response is under ``FRINGE_FRAC`` of the
    body's (the 75th percentile row), at most ``maxn`` each, leaving at least ``keep``."""
    prof = aa.sum(axis=1)
    n = len(prof)
    if n <= keep:
        return 0, 0
    lim = FRINGE_FRAC * pct(prof, 75)
    if prof.dtype == np.float32:
        # a float32 element is compared with a Python float in float32 (NEP 50): the
        # same comparisons on Python floats, element by element
        lim = float(np.float32(lim))
    prof = prof.tolist()
    a = 0
    while a < maxn and n - a - 1 >= keep and prof[a] < lim:
        a += 1
    b = 0
    while b < maxn and n - a - b - 1 >= keep and prof[n - 1 - b] < lim:
        b += 1
    return a, b


_any = np.logical_or.reduce


def _in_short_runs(x: np.ndarray, maxlen: int) -> np.ndarray | None:
    """True where ``x`` (1-D bool) is True in a run of at most ``maxlen``; None if no run."""
    if not _any(x):
        return None
    pad = np.zeros(x.size + 2, bool)
    pad[1:-1] = x
    edges = np.flatnonzero(pad[1:] != pad[:-1])  # starts and ends of runs, alternating
    if not edges.size:
        return None
    lens = edges[1::2] - edges[::2]
    out = np.zeros(x.shape, bool)
    out[x] = np.repeat(lens <= maxlen, lens)
    return out


def analyse_blob(m: np.ndarray, r_off: int, c_off: int, ctx: BlobContext) -> list[Segment]:
    step, thr = ctx.step, ctx.threshold
    nrow, ncol = m.shape
    if nrow * step < MIN_LEN_M or ncol * step < MIN_WIDTH_M * 0.8:
        return []
    rs = slice(r_off, r_off + nrow)
    cs = slice(c_off, c_off + ncol)
    a = ctx.anom[rs, cs]
    aa = np.minimum(a, 4 * thr) * m
    if nrow * step > CAR_LEN[1] + 0.8:
        prof = aa.sum(axis=1) / np.maximum(m.sum(axis=1).max(), 1)
        # gap evidence per row: road or shade across the blob's core columns, or a deep dip
        colw = m.sum(axis=0)
        core = colw >= 0.5 * colw.max()
        if core.any():
            ncore = np.count_nonzero(core)
            sh = ctx.shade[rs, cs][:, core].sum(axis=1) / ncore
            g = ctx.road[rs, cs][:, core].sum(axis=1) / ncore
            # shade across the blob counts as a gap only in short runs (a cast shadow
            # between two vehicles), not over a dark vehicle's whole body
            dark = sh >= 0.5
            short = _in_short_runs(dark, int(np.ceil(1.2 / step)))
            if short is not None:
                g = np.maximum(g, np.where(short, sh, 0.0))
        else:
            g = np.zeros(nrow)
        ps = _gauss1d(prof.astype(np.float64), max(0.5, 0.25 / step))
        ref = pct(ps, 75) + 1e-9
        dip = 1.0 - np.minimum(ps / ref, 1.0)
        ev = np.maximum(_gauss1d(g, max(0.5, 0.15 / step)), dip)
        if core.any():
            # a change of colour along the blob: the boundary between two vehicles
            # (windscreens also change it, but cutting there leaves too short a piece)
            fz = ctx.featz[rs, cs][:, core].sum(axis=1) / int(ncore)  # (rows, nf) in noise units
            h = max(1, int(round(0.6 / step)))
            if nrow > 2 * h + 2:
                cums = np.concatenate([np.zeros((1, fz.shape[1])), np.cumsum(fz, axis=0)])
                # mean of the h rows before row r and of the h rows after it, for the rows
                # r = h .. nrow - 1 - h that have both (zero change elsewhere)
                ma = (cums[h:nrow - h] - cums[:nrow - 2 * h]) / h
                mb = (cums[2 * h + 1:] - cums[h + 1:nrow + 1 - h]) / h
                dch = np.zeros(nrow)
                dch[h:nrow - h] = np.sqrt(((ma - mb) ** 2).sum(axis=1))
                ev = np.maximum(ev, 0.85 * np.clip((dch - 6.0) / 16.0, 0.0, 1.0))
        parts = split_rows(ev, step)
    else:
        parts = [(0, nrow)]
    shade = ctx.shade[rs, cs]
    green = None
    if ctx.smooth_green is not None:
        green = ctx.smooth_green[rs, cs]
        if not green.any():
            green = None  # (most blobs: no part can be mostly grass)
    out: list[Segment] = []
    maxn = int(SHADOW_TRIM_M / step)
    # pixels coarser than 0.5 m lose up to a pixel of a vehicle's width to partial cover:
    # a car 1.8 m wide can be one strong 1 m column between two half-covered ones. Only
    # in a run cut into several vehicles (a queue); a lone narrow blob is more often a
    # mark or a kerb
    wtol = max(0.0, step - 0.5) if len(parts) > 1 else 0.0
    for p0, p1 in parts:
        sub = m[p0:p1]
        rr = _any(sub, 1).nonzero()[0]  # (the ufunc directly: many calls on small arrays)
        cc = _any(sub, 0).nonzero()[0]
        if rr.size == 0:
            continue
        q0, q1 = p0 + rr[0], p0 + rr[-1] + 1
        k0, k1 = cc[0], cc[-1] + 1
        sub = m[q0:q1, k0:k1]
        sh = shade[q0:q1, k0:k1] & sub
        nsh = np.count_nonzero(sh)
        npx = np.count_nonzero(sub)
        if nsh >= 0.6 * npx:
            # dark and grey: a vehicle, or a piece of a large shadow (trees, buildings)
            lab = ctx.shade_lab[rs, cs][q0:q1, k0:k1][sh]
            if lab.size and ctx.shade_wide[np.bincount(lab).argmax()]:
                continue
        if 0 < nsh < 0.5 * npx:  # (without shade nothing is trimmed)
            # cast shadow on the ends or sides of a body that is not itself dark
            cnt_r = np.maximum(sub.sum(axis=1), 1)
            ta, tb = _trim(sh.sum(axis=1) / cnt_r, maxn)
            cnt_c = np.maximum(sub.sum(axis=0), 1)
            la, lb = _trim(sh.sum(axis=0) / cnt_c, maxn)
            # a trim never leaves less than a vehicle: a dark car half in grey shade
            # would otherwise lose its grey half and fail the size test
            if (q1 - q0 - ta - tb) * step < MIN_LEN_M:
                ta = tb = 0
            if (k1 - k0 - la - lb) * step < MIN_TRIMMED_WIDTH_M:
                la = lb = 0
            q0, q1, k0, k1 = q0 + ta, q1 - tb, k0 + la, k1 - lb
            sub = m[q0:q1, k0:k1]
            if not sub.any():
                continue
        if green is not None and \
                np.count_nonzero(green[q0:q1, k0:k1] & sub) / np.count_nonzero(sub) > 0.5:
            continue  # grass or a bush (tested per vehicle: a green car spares its neighbours)
        # faint fringe rows at the ends (blur, the hysteresis' low threshold) are not the
        # body: the footprint ends where its rows reach a fraction of the body's response
        fa, fb = _fringe(aa[q0:q1, k0:k1], int(round(FRINGE_M / step)),
                         int(np.ceil(MIN_LEN_M / step)))
        if fa or fb:
            q0, q1 = q0 + fa, q1 - fb
            sub = m[q0:q1, k0:k1]
        length = (q1 - q0) * step
        sub_w = sub.sum(axis=1)
        width = float(pct(sub_w[sub_w > 0], 70)) * step
        if length < MIN_LEN_M or width + wtol < MIN_WIDTH_M or width > MAX_VEH_WIDTH_M or length > MAX_LEN_M + 3:
            continue
        vals = a[q0:q1, k0:k1][sub]
        contrast = float(pct(vals, 90)) / thr
        plaus = 1.0
        if length < 3.0:
            plaus *= 0.7 + 0.3 * (length - MIN_LEN_M) / (3.0 - MIN_LEN_M)
        if width < 1.4:
            plaus *= 0.75
        score = contrast * plaus
        if score < ctx.min_score:
            continue
        if length >= 7.5:
            kind = "truck"
        elif length >= 5.6:
            kind = "van"
        elif length >= 2.8:
            kind = "car"
        else:
            kind = "unknown"
        xs = np.nonzero(sub)[1]
        out.append(Segment(r_off + q0, r_off + q1, c_off + k0, c_off + k1,
                           float(c_off + k0 + xs.sum() / xs.size), score, kind))
    return out
