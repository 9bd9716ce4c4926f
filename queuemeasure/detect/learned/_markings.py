"""Road markings the network takes for vehicles: a check on the pixels under each box.

A dashed centre line (dashes of 3-6 m, 0.1-0.2 m wide) or an edge line is a long, thin,
strongly contrasted stripe along the road: the network, which sees a vehicle-sized blob
of contrast, can score a dash as a car, and a dashed line then chains a queue down an
empty road. Under a marking's box only a narrow band of columns differs from the road
surface and every other column of the box looks like the road; under a vehicle the
difference spans the vehicle's width (a dark car on dark asphalt differs little anywhere,
and is kept). The test works on the column profile of the box (the median over its rows),
against the road surface of the surrounding stretch.
"""

from __future__ import annotations

import numpy as np

from ._decode import Boxes

#: Road surface statistics are taken over blocks of this length (metres) along the road.
_BLOCK_M = 8.0
#: A column differs from the road at this many noise units; looks like the road below
#: ``_ROADLIKE``.
_STRONG = 4.0
_ROADLIKE = 2.0
#: The difference of a marking spans at most this width (metres; at least this many
#: input pixels, for coarse tiles where a marking blurs over a pixel or two).
_MAX_LINE_M = 0.6
_MAX_LINE_PX = 1.6
#: Share of the box's other columns that must look like the road.
_ROAD_SHARE = 0.9
#: Floor of the road's brightness noise (0..1 scale: grain, compression).
_NOISE_FLOOR = 0.01
#: Columns examined at least (centred on the box): a box 1.8 m wide spans 7 columns of a
#: 0.25 m grid but under 4 of a 0.5 m one, too few to see road either side of a stripe.
_MIN_COLS = 7


def _surface(lum: np.ndarray, ok: np.ndarray, carriage: np.ndarray, block: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per-block median brightness of the carriageway and its robust spread."""
    n_blocks = -(-lum.shape[0] // block)
    level = np.full(n_blocks, np.nan)
    noise = np.full(n_blocks, np.nan)
    for k in range(n_blocks):  # a loop over ~190 blocks per 1.5 km piece, not over pixels
        rows = slice(k * block, (k + 1) * block)
        v = lum[rows][:, carriage][ok[rows][:, carriage]]
        if v.size >= 16:
            level[k] = np.median(v)
            noise[k] = 1.4826 * np.median(np.abs(v - level[k]))
    good = np.isfinite(level)
    if not good.any():
        return level, noise
    idx = np.arange(n_blocks)
    level = np.interp(idx, idx[good], level[good])
    noise = np.interp(idx, idx[good], noise[good])
    return level, np.maximum(noise, _NOISE_FLOOR)


def off_markings(boxes: Boxes, wimg: np.ndarray, wok: np.ndarray, carriage: np.ndarray,
                 work_step_m: float, input_step_m: float) -> Boxes:
    """The boxes that are not road markings.

    Parameters
    ----------
    boxes : Boxes
        Decoded detections on the working grid.
    wimg : (rows, cols, bands) array
        The strip on the working grid (values about 0..1).
    wok : (rows, cols) bool array
        Valid working pixels.
    carriage : (cols,) bool array
        Working columns on the carriageway.
    work_step_m, input_step_m : float
        Pixel size of the working grid and of the strip given to the detector.

    Returns
    -------
    Boxes
        ``boxes`` without those whose difference from the road is a narrow stripe along
        it with road on either side (a marking).
    """
    if not len(boxes.prob) or not carriage.any():
        return boxes
    lum = wimg.mean(axis=2)
    block = max(1, int(round(_BLOCK_M / work_step_m)))
    level, noise = _surface(lum, wok, carriage, block)
    if not np.isfinite(level).any():
        return boxes
    R, C = wok.shape
    max_line = max(_MAX_LINE_M, _MAX_LINE_PX * input_step_m) / work_step_m
    keep = np.ones(len(boxes.prob), bool)
    for k in range(len(boxes.prob)):
        r0 = int(np.clip(round(boxes.row[k] - 0.5 * boxes.length_m[k] / work_step_m), 0, R))
        r1 = int(np.clip(round(boxes.row[k] + 0.5 * boxes.length_m[k] / work_step_m), 0, R))
        half = max(0.5 * boxes.width_m[k] / work_step_m, 0.5 * _MIN_COLS)
        c0 = int(np.clip(round(boxes.col[k] - half), 0, C))
        c1 = int(np.clip(round(boxes.col[k] + half), 0, C))
        if r1 - r0 < 2 or c1 - c0 < 3:
            continue
        keep[k] = not _is_marking(lum[r0:r1, c0:c1], wok[r0:r1, c0:c1],
                                  level[min(r0 // block, len(level) - 1)],
                                  noise[min(r0 // block, len(noise) - 1)], max_line)
    if keep.all():
        return boxes
    return Boxes(boxes.row[keep], boxes.col[keep], boxes.length_m[keep], boxes.width_m[keep],
                 boxes.prob[keep])


def _is_marking(lum: np.ndarray, ok: np.ndarray, level: float, noise: float, max_line: float) -> bool:
    """Whether a box's pixels are a narrow stripe along the road with road beside it."""
    if not ok.any():
        return False
    cols_ok = ok.mean(axis=0) >= 0.5
    if cols_ok.sum() < 3:
        return False
    if ok[:, cols_ok].all():   # the usual case: a plain median (nanmedian is ten times slower)
        prof = np.median(lum[:, cols_ok], axis=0)
    else:
        prof = np.nanmedian(np.where(ok, lum, np.nan)[:, cols_ok], axis=0)
    a = np.abs(prof - level) / noise
    strong = np.flatnonzero(a > _STRONG)
    if strong.size == 0 or strong[-1] - strong[0] + 1 > max_line:
        return False
    # the other columns, less one beside the stripe (its blur), must look like the road
    rest = np.ones(a.size, bool)
    rest[max(0, strong[0] - 1):strong[-1] + 2] = False
    if rest.sum() < 2:
        return False
    return bool(np.mean(a[rest] < _ROADLIKE) >= _ROAD_SHARE)
