"""What the network should output for a sheet, and random training chips from sheets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detect.learned._grid import PAD_TO, STRIDE, normalise
from .sheets import Sheet

#: Chip size (metres): 24 m x 24 m, a multiple of 8 working pixels (:func:`chip_px`).
CHIP_M = 24.0


def chip_px(work_step_m: float) -> int:
    """Side of a training chip in working pixels (a multiple of ``PAD_TO``)."""
    return max(PAD_TO, PAD_TO * int(round(CHIP_M / work_step_m / PAD_TO)))
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
    chip: int = 96       # training chip side (working pixels)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))   # the sheet's, for rescaled chips
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    work_step_m: float = 0.25


def prepare(s: Sheet) -> Prepared:
    """Input and targets of a whole sheet."""
    x = normalise(s.image, s.valid)
    R, C = x.shape[1:]
    x = np.pad(x, [(0, 0), (0, R % 2), (0, C % 2)])
    heat, reg, centre, weight = _targets(s.boxes, s.ignore, x.shape[1] // STRIDE, x.shape[2] // STRIDE, s.work_step_m)
    return Prepared(x.astype(np.float16), heat, reg, centre, weight, s.source != "minsk",
                    chip_px(s.work_step_m), s.boxes, s.ignore, s.work_step_m)


def _targets(boxes: np.ndarray, ignore: np.ndarray, Hs: int, Ws: int, work_step_m: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre heatmap, regression maps, centre cells and loss weight on a ``Hs`` x ``Ws``
    output grid for boxes and ignored boxes in working pixels."""
    heat = np.zeros((Hs, Ws), np.float32)
    reg = np.zeros((4, Hs, Ws), np.float32)
    centre = np.zeros((Hs, Ws), bool)
    weight = np.ones((Hs, Ws), np.float32)
    ii = (np.arange(Hs) + 0.5)[:, None]
    jj = (np.arange(Ws) + 0.5)[None, :]
    for r0, r1, c0, c1 in boxes:
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
        reg[:, i, j] = (np.log(ly * work_step_m), np.log(lx * work_step_m), cy - i, cx - j)
    for r0, r1, c0, c1 in ignore:
        a, b = max(0, int(np.floor(r0 / STRIDE))), min(Hs, int(np.ceil(r1 / STRIDE)))
        c, d = max(0, int(np.floor(c0 / STRIDE))), min(Ws, int(np.ceil(c1 / STRIDE)))
        if a < b and c < d:
            weight[a:b, c:d] = np.where(centre[a:b, c:d], 1.0, 0.0)
    return heat, reg, centre, weight


def _window_start(n: int, m: int, rng: np.random.Generator, at: float | None, step: int = 1) -> int:
    """Start of a window of ``m`` pixels along an axis of ``n`` (a multiple of ``step``):
    uniform over the axis where the window fits (over the positions covering the axis where
    it does not), and with ``at`` given, among those that hold ``at`` at least ``step``
    pixels inside the window when there are such."""
    lo, hi = min(0, n - m), max(0, n - m)
    if at is not None:
        lo2, hi2 = max(lo, int(np.ceil(at)) - m + step), min(hi, int(at) - step)
        if lo2 <= hi2:
            lo, hi = lo2, hi2
    if step == 1:
        return int(rng.integers(lo, hi + 1))
    a, b = -(-lo // step), hi // step
    return int(rng.integers(a, b + 1)) * step if a <= b else lo


def _crop(p: Prepared, rng: np.random.Generator, anchor: tuple[float, float] | None = None
          ) -> tuple[np.ndarray, ...]:
    """A random ``p.chip`` x ``p.chip`` chip (zero-padded where the sheet is smaller),
    holding the point ``anchor`` (row, column) when one is given."""
    R, C = p.x.shape[1:]
    CHIP = p.chip  # noqa: N806
    h = CHIP // STRIDE

    def start(n: int, at: float | None) -> int:
        return 0 if n <= CHIP else _window_start(n, CHIP, rng, at, STRIDE)

    r, c = start(R, None if anchor is None else anchor[0]), start(C, None if anchor is None else anchor[1])
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


#: Range of the zoom factor of a rescaled chip (log-uniform): vehicles 20 % smaller to 25 %
#: larger than in the sheet (other vehicle fleets, pixel sizes stated wrongly).
SCALE_RANGE = (0.8, 1.25)


def _scaled_crop(p: Prepared, rng: np.random.Generator, anchor: tuple[float, float] | None = None
                 ) -> tuple[np.ndarray, ...]:
    """A random chip zoomed by a factor in :data:`SCALE_RANGE`: a window of ``p.chip / f``
    working pixels resampled bilinearly to ``p.chip``, its targets made anew from the
    sheet's boxes (outside the sheet: no data, no vehicle); holding ``anchor`` if given."""
    from scipy import ndimage

    CHIP = p.chip  # noqa: N806
    f = float(np.exp(rng.uniform(*np.log(SCALE_RANGE))))
    m = max(STRIDE, int(round(CHIP / f)))
    R, C = p.x.shape[1:]
    r = _window_start(R, m, rng, None if anchor is None else anchor[0])
    c = _window_start(C, m, rng, None if anchor is None else anchor[1])
    win = np.zeros((4, m, m), np.float32)
    r0, r1, c0, c1 = max(r, 0), min(r + m, R), max(c, 0), min(c + m, C)
    win[:, r0 - r:r1 - r, c0 - c:c1 - c] = p.x[:, r0:r1, c0:c1]
    k = CHIP / m
    x = ndimage.zoom(win, (1, k, k), order=1, grid_mode=True, mode="grid-constant")[:, :CHIP, :CHIP]
    x[3] = x[3] > 0.5
    x[:3] *= x[3]
    off = np.array([r, r, c, c], float)
    h = CHIP // STRIDE
    heat, reg, centre, weight = _targets((p.boxes - off) * k, (p.ignore - off) * k, h, h, p.work_step_m)
    return x, np.concatenate([heat[None], reg, centre[None].astype(np.float32), weight[None]])


def _flip_rows(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, t = x[:, ::-1], t[:, ::-1].copy()
    t[3] = np.where(t[5] > 0, 1.0 - t[3], 0.0)
    return x, t


def _transpose(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x.transpose(0, 2, 1)
    t = t.transpose(0, 2, 1)[[0, 2, 1, 4, 3, 5, 6]]
    return x, t


def _shadow(x: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> None:
    """Darken a random straight band of the chip in place (a building's or a tree row's
    shadow, 3-12 m wide, at any angle): the pixel values ``v`` become ``f v`` with ``f``
    0.35-0.75, which in normalised units (``(v - median) / spread``) is ``f x - (1 - f) c``
    for the median over the spread ``c`` (drawn 0.3-0.9)."""
    n = x.shape[1]
    px_per_m = n / CHIP_M
    a = rng.uniform(0, np.pi)
    rr, cc = np.mgrid[0:n, 0:n]
    d = (rr - rng.uniform(0, n)) * np.cos(a) + (cc - rng.uniform(0, n)) * np.sin(a)
    band = (np.abs(d) < 0.5 * rng.uniform(3.0, 12.0) * px_per_m) & valid
    f = np.float32(rng.uniform(0.35, 0.75))
    c = np.float32(rng.uniform(0.3, 0.9))
    x[:3, band] = f * x[:3, band] - (1 - f) * c


def _dashes(x: np.ndarray, t: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> None:
    """Paint a dashed line along the rows in place, a hard negative: dashes 3-6 m long with
    gaps of 6-12 m, 0.1-0.25 m wide at a sub-pixel position (its brightness shared by the
    columns it covers, as a tile's pixels would average it), 0.8-2 brightness spreads above
    the road, in a column with no vehicle centre within 1.5 m."""
    n = x.shape[1]
    px_m = CHIP_M / n                      # metres per working pixel
    free = t[0].max(axis=0) < 0.05         # output cells across without a vehicle nearby
    for _ in range(5):
        c_m = rng.uniform(1.0, CHIP_M - 1.0)
        cell = int(c_m / px_m) // STRIDE
        lo, hi = max(0, cell - int(1.5 / px_m / STRIDE) - 1), cell + int(1.5 / px_m / STRIDE) + 2
        if free[lo:hi].all():
            break
    else:
        return
    w_m = rng.uniform(0.1, 0.25)
    edges = np.arange(n + 1) * px_m
    cover = np.clip(np.minimum(edges[1:], c_m + w_m / 2) - np.maximum(edges[:-1], c_m - w_m / 2), 0, None) / px_m
    dash, gap = rng.uniform(3.0, 6.0), rng.uniform(6.0, 12.0)
    s = (np.arange(n) + 0.5) * px_m + rng.uniform(0, dash + gap)
    on = (s % (dash + gap)) < dash
    add = np.float32(rng.uniform(0.8, 2.0)) * np.outer(on, cover).astype(np.float32)
    x[:3] += add[None] * valid


def _anchor(p: Prepared, rng: np.random.Generator) -> tuple[float, float] | None:
    """The centre of one of the sheet's vehicles, drawn in proportion to its length (long
    vehicles, rare and often missed, come up more often), or None for a sheet without one."""
    if not len(p.boxes):
        return None
    size = np.maximum(p.boxes[:, 1] - p.boxes[:, 0], p.boxes[:, 3] - p.boxes[:, 2])
    i = int(rng.choice(len(p.boxes), p=size / size.sum()))
    b = p.boxes[i]
    return (b[0] + b[1]) / 2, (b[2] + b[3]) / 2


def chip(p: Prepared, rng: np.random.Generator, shadows: float = 0.0, dashes: float = 0.0,
         scales: float = 0.0, focus: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A random augmented chip of a prepared sheet: input (4, p.chip, p.chip), targets (7, .., ..).

    Flips both ways; a transpose for images without a road direction (Minsk) and rarely
    for the others; brightness gain and offset, per-band tint, and grey; with probability
    ``shadows`` a shadow band (:func:`_shadow`), with probability ``dashes`` a dashed
    painted line where no vehicle is (:func:`_dashes`, a hard negative); with probability
    ``scales`` the chip is zoomed (:func:`_scaled_crop`); with probability ``focus`` it
    holds a vehicle drawn by :func:`_anchor` (else it lies anywhere).
    """
    anchor = _anchor(p, rng) if focus > 0 and rng.random() < focus else None
    x, t = _scaled_crop(p, rng, anchor) if scales > 0 and rng.random() < scales else _crop(p, rng, anchor)
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
    if shadows > 0 and rng.random() < shadows:
        _shadow(x, valid, rng)
    if dashes > 0 and rng.random() < dashes:
        _dashes(x, t, valid, rng)
    return np.ascontiguousarray(x), np.ascontiguousarray(t)
