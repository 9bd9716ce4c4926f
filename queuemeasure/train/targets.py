"""What the network should output for a sheet, and random training chips from sheets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detect.learned._grid import STRIDE, WORK_STEP_M, normalise
from .sheets import Sheet

#: Chip size (working pixels, a multiple of 8): 24 m x 24 m.
CHIP = 96
#: Gaussian spread of the centre target as a share of the vehicle's length / width.
SIGMA_SHARE = 1 / 6
MIN_SIGMA = 0.6  # cells


@dataclass
class Prepared:
    """A sheet's network input and targets (stride-``STRIDE`` grid)."""

    x: np.ndarray        # (4, R, C) float16 (memory), R and C even
    heat: np.ndarray     # (Hs, Ws) float32 centre target 0..1 (1 at centres)
    reg: np.ndarray      # (4, Hs, Ws) log length, log width, offset down, offset across
    centre: np.ndarray   # (Hs, Ws) bool: cells holding a centre
    weight: np.ndarray   # (Hs, Ws) float32: 0 where the loss ignores the cell
    road_along_rows: bool


def prepare(s: Sheet) -> Prepared:
    """Input and targets of a whole sheet."""
    x = normalise(s.image, s.valid)
    R, C = x.shape[1:]
    x = np.pad(x, [(0, 0), (0, R % 2), (0, C % 2)])
    Hs, Ws = x.shape[1] // STRIDE, x.shape[2] // STRIDE
    heat = np.zeros((Hs, Ws), np.float32)
    reg = np.zeros((4, Hs, Ws), np.float32)
    centre = np.zeros((Hs, Ws), bool)
    weight = np.ones((Hs, Ws), np.float32)
    ii = (np.arange(Hs) + 0.5)[:, None]
    jj = (np.arange(Ws) + 0.5)[None, :]
    for r0, r1, c0, c1 in s.boxes:
        cy, cx = (r0 + r1) / 2 / STRIDE, (c0 + c1) / 2 / STRIDE   # cells
        i, j = int(np.floor(cy)), int(np.floor(cx))
        if not (0 <= i < Hs and 0 <= j < Ws):
            continue
        ly, lx = max(r1 - r0, 1.0), max(c1 - c0, 1.0)
        sy = max(MIN_SIGMA, ly / STRIDE * SIGMA_SHARE)
        sx = max(MIN_SIGMA, lx / STRIDE * SIGMA_SHARE)
        a, b = max(0, int(cy - 3 * sy)), min(Hs, int(cy + 3 * sy) + 2)
        c, d = max(0, int(cx - 3 * sx)), min(Ws, int(cx + 3 * sx) + 2)
        g = np.exp(-((ii[a:b] - (i + 0.5)) ** 2 / (2 * sy**2) + (jj[:, c:d] - (j + 0.5)) ** 2 / (2 * sx**2)))
        heat[a:b, c:d] = np.maximum(heat[a:b, c:d], g)
        heat[i, j] = 1.0
        centre[i, j] = True
        reg[:, i, j] = (np.log(ly * WORK_STEP_M), np.log(lx * WORK_STEP_M), cy - i, cx - j)
    for r0, r1, c0, c1 in s.ignore:
        a, b = max(0, int(np.floor(r0 / STRIDE))), min(Hs, int(np.ceil(r1 / STRIDE)))
        c, d = max(0, int(np.floor(c0 / STRIDE))), min(Ws, int(np.ceil(c1 / STRIDE)))
        if a < b and c < d:
            weight[a:b, c:d] = np.where(centre[a:b, c:d], 1.0, 0.0)
    return Prepared(x.astype(np.float16), heat, reg, centre, weight, s.source != "minsk")


def _crop(p: Prepared, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A random CHIP x CHIP chip (zero-padded where the sheet is smaller)."""
    R, C = p.x.shape[1:]
    h = CHIP // STRIDE

    def start(n: int) -> int:
        return 0 if n <= CHIP else int(rng.integers(0, (n - CHIP) // STRIDE + 1)) * STRIDE

    r, c = start(R), start(C)
    x = np.zeros((4, CHIP, CHIP), np.float32)
    tgt = np.zeros((7, h, h), np.float32)   # heat, reg x4, centre, weight
    xs = p.x[:, r:r + CHIP, c:c + CHIP]
    # place a narrow strip at a random column (strips are narrower than a chip)
    pr = 0 if xs.shape[1] >= CHIP else STRIDE * int(rng.integers(0, (CHIP - xs.shape[1]) // STRIDE + 1))
    pc = 0 if xs.shape[2] >= CHIP else STRIDE * int(rng.integers(0, (CHIP - xs.shape[2]) // STRIDE + 1))
    x[:, pr:pr + xs.shape[1], pc:pc + xs.shape[2]] = xs
    a, b, cs, ds = r // STRIDE, c // STRIDE, xs.shape[1] // STRIDE, xs.shape[2] // STRIDE
    at = (slice(pr // STRIDE, pr // STRIDE + cs), slice(pc // STRIDE, pc // STRIDE + ds))
    tgt[0][at] = p.heat[a:a + cs, b:b + ds]
    tgt[1:5][(slice(None),) + at] = p.reg[:, a:a + cs, b:b + ds]
    tgt[5][at] = p.centre[a:a + cs, b:b + ds]
    tgt[6] = 1.0
    tgt[6][at] = p.weight[a:a + cs, b:b + ds]
    return x, tgt


def _flip_rows(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, t = x[:, ::-1], t[:, ::-1].copy()
    t[3] = np.where(t[5] > 0, 1.0 - t[3], 0.0)
    return x, t


def _transpose(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x.transpose(0, 2, 1)
    t = t.transpose(0, 2, 1)[[0, 2, 1, 4, 3, 5, 6]]
    return x, t


def chip(p: Prepared, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random augmented chip of a prepared sheet: input (4, CHIP, CHIP), targets (7, .., ..).

    Flips both ways; a transpose for images without a road direction (Minsk) and rarely
    for the others; brightness gain and offset, per-band tint, and grey.
    """
    x, t = _crop(p, rng)
    if rng.random() < 0.5:
        x, t = _flip_rows(x, t)
    if rng.random() < 0.5:
        x, t = _transpose(*_flip_rows(*_transpose(x, t)))
    if rng.random() < (0.5 if not p.road_along_rows else 0.1):
        x, t = _transpose(x, t)
    x = np.array(x, np.float32)
    valid = x[3] > 0
    gain = np.float32(np.exp(rng.normal(0, 0.25)))
    tint = rng.normal(0, 0.08, 3).astype(np.float32)
    x[:3] = (x[:3] * gain + tint[:, None, None] + np.float32(rng.normal(0, 0.15))) * valid
    if rng.random() < 0.15:
        x[:3] = x[:3].mean(axis=0, keepdims=True) * valid
    if rng.random() < 0.3:
        x[:3] += rng.normal(0, rng.uniform(0.01, 0.08), x[:3].shape).astype(np.float32) * valid
    return np.ascontiguousarray(x), np.ascontiguousarray(t)
