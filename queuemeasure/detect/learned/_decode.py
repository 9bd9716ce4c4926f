"""From the network's output maps to vehicle boxes (centre, length, width, probability).

The network outputs, per cell of ``STRIDE`` x ``STRIDE`` working pixels, five channels:
the probability that a vehicle's centre lies in the cell, the log of its length (along
the rows) and width (across), in metres, and the centre's position inside the cell
(0..1 down and across). A vehicle is a local maximum of the probability (3 x 3 cells) not centred inside the
footprint of a stronger one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ._grid import STRIDE, WORK_STEP_M


#: Largest overlap of two vehicles' footprints, as a share of the smaller one.
_MAX_OVERLAP = 0.3


@dataclass(frozen=True)
class Boxes:
    """Decoded vehicles on the working grid (edge-based working-pixel coordinates)."""

    row: np.ndarray     # centre
    col: np.ndarray
    length_m: np.ndarray  # along the rows
    width_m: np.ndarray   # across
    prob: np.ndarray


def decode(out: np.ndarray, min_prob: float, work_step_m: float = WORK_STEP_M) -> Boxes:
    """Local maxima of the centre probability at or above ``min_prob``, without those
    centred inside a stronger one's footprint.

    Parameters
    ----------
    out : (5, H, W) float32
        The network's output for one strip.
    min_prob : float
    """
    heat = out[0]
    peak = (heat >= min_prob) & (heat == ndi.maximum_filter(heat, size=3, mode="constant"))
    i, j = np.nonzero(peak)
    # plateaus (equal neighbours): keep one cell of each
    if len(i) > 1:
        lab, n = ndi.label(peak, structure=np.ones((3, 3), bool))
        first = np.unique(lab[i, j], return_index=True)[1]
        i, j = i[first], j[first]
    dy = np.clip(out[3, i, j], 0.0, 1.0)
    dx = np.clip(out[4, i, j], 0.0, 1.0)
    b = Boxes(
        row=(i + dy) * STRIDE,
        col=(j + dx) * STRIDE,
        length_m=np.exp(np.clip(out[1, i, j], -1.0, 3.2)),
        width_m=np.exp(np.clip(out[2, i, j], -1.0, 1.6)),
        prob=heat[i, j].astype(float),
    )
    return _drop_duplicates(b, work_step_m)


def _drop_duplicates(b: Boxes, work_step_m: float) -> Boxes:
    """Drop every peak centred inside the footprint of a stronger one, or whose footprint
    overlaps a stronger one's by more than :data:`_MAX_OVERLAP` of the smaller (a second
    peak on a long truck, a weak echo beside a car). Neighbours bumper to bumper or abreast
    are centred outside each other's footprint and hardly overlap, so they stay."""
    order = np.argsort(-b.prob, kind="stable")
    hl = 0.5 * b.length_m / work_step_m
    hw = 0.5 * b.width_m / work_step_m
    keep: list[int] = []
    for k in order:
        if keep:
            q = np.asarray(keep)
            inside = (np.abs(b.row[q] - b.row[k]) < hl[q]) & (np.abs(b.col[q] - b.col[k]) < hw[q])
            # overlap along and across, as a share of the smaller footprint
            ov_r = np.minimum(b.row[q] + hl[q], b.row[k] + hl[k]) - np.maximum(b.row[q] - hl[q], b.row[k] - hl[k])
            ov_c = np.minimum(b.col[q] + hw[q], b.col[k] + hw[k]) - np.maximum(b.col[q] - hw[q], b.col[k] - hw[k])
            share = np.clip(ov_r, 0, None) * np.clip(ov_c, 0, None) / np.minimum(hl[q] * hw[q], hl[k] * hw[k]) / 4
            if np.any(inside | (share > _MAX_OVERLAP)):
                continue
        keep.append(int(k))
    s = np.sort(np.asarray(keep, dtype=int))
    return Boxes(b.row[s], b.col[s], b.length_m[s], b.width_m[s], b.prob[s])
