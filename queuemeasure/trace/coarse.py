"""The coarse pass: a decimated read of the points' bounding window, a road-likelihood
cost map and a least-cost route through it (:class:`skimage.graph.MCP_Geometric`).

The read uses ``out_shape`` with average resampling, so GDAL picks overviews when the
tile has them and never hands a full-resolution window to numpy. The grid is chosen so
that it holds at most ``max_pixels`` cells: memory and time are bounded whatever the
tile's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import ndimage as ndi

from .tone import RoadTone, tone_distance

__all__ = ["CoarseGrid", "plan_grid", "read_grid", "cost_map", "route"]

#: Coarse cells are never finer than this (metres): the road spans several cells, and a
#: hairpin of 17 m radius, the grass between two legs 20 m apart or between the road and a
#: river bed a few metres off are resolved. Cells that fine are used while the window
#: holds at most FINE_MAX_CELLS of them; larger windows get cells of at least
#: COARSE_CELL_M (and at most ``max_pixels`` cells).
MIN_CELL_M = 1.0
FINE_MAX_CELLS = 1_000_000
COARSE_CELL_M = 2.0
#: Lengths (metres) of the oriented line filters that reward long uniform bands: short
#: lines follow tight bends, long ones bridge what covers a straight road.
LINE_M = (12.0, 24.0, 48.0)
#: Orientations of the line filter.
N_ORIENT = 12
#: Cost of a cell of pure road tone (relative to about 1 for a cell far from it).
ROAD_FLOOR = 0.02
#: Weight of the tone's variation along a line in the line's cost.
UNIFORMITY_WEIGHT = 0.5
#: Tone distances (in spreads) beyond this are all simply "not road" (a tree over the
#: road then costs no more than a field beside it).
TONE_CAP = 4.0
#: Smallest tone spread at coarse cells, where the road mixes with its verges.
COARSE_MIN_SPREAD = 0.06
#: Distances (metres) of the parallel flank lines, and the tone contrast (in spreads)
#: a flank must reach for a line to count as a band.
FLANK_M = (6.0, 12.0)
BAND_CONTRAST = 2.0
#: Texture: a cell rougher than ROUGH_FACTOR times the road's own cells (brightness
#: spread inside the cell; the road's at least ROUGH_MIN, stretched units) is
#: ROUGH_GAIN spreads farther from the road per unit of the ratio beyond. Asphalt is
#: smooth; a river bed of the road's tone, rock and scrub are not.
ROUGH_FACTOR = 1.5
ROUGH_GAIN = 3.0
ROUGH_MIN = 0.01
#: Cost of a cell without valid data: no cheaper than plain terrain, or the route would
#: run around the tile's valid area instead of through a queue.
NODATA_COST = 45.0
#: Extra cost of plain terrain: a cell with nothing of the road's tone and texture
#: within :data:`TERRAIN_NEAR_M` (distances above :data:`TERRAIN_TONE`, in spreads).
#: Far above any stretch of road, so that the route never saves road by cutting across
#: the terrain between the legs of a hairpin or a switchback.
TERRAIN_COST = 40.0
TERRAIN_NEAR_M = 4.0
TERRAIN_TONE = (3.0, 3.8)
#: Only road tone (within RUN_TONE spreads) or vehicles in a straight run of at least
#: RUN_M count as road near a cell: isolated cells of road tone in scree or rubble do not.
RUN_M = 6.0
RUN_TONE = 2.0
#: A vehicle: a cell farther than VEHICLE_TONE spreads from the road's tone and from every
#: common terrain tone (one that at least COMMON_SHARE of the off-road cells are near).
VEHICLE_TONE = 2.0
COMMON_SHARE = 0.05
#: Terrain prototypes closer than this (spreads) to one already kept are dropped.
PROTO_MERGE = 0.5
#: Texture reference: the road's roughness is taken within this distance (metres) of
#: each of the user's points.
ROUGH_REF_M = 3.0


@dataclass
class CoarseGrid:
    """A decimated window of the tile.

    ``row0, col0`` is the window's full-resolution origin, ``fy, fx`` the decimation
    factors, ``cell_m`` (rows, cols) the cells' ground size, ``image`` (bands, H, W)
    raw values, ``valid`` (H, W), ``rough`` (H, W) the standard deviation of the
    brightness (band mean, raw units) inside each cell: a texture measure (smooth
    asphalt against gravel, rock or scrub), None when cells are single pixels.
    """

    row0: int
    col0: int
    fy: int
    fx: int
    height: int
    width: int
    cell_m: tuple[float, float]
    image: np.ndarray | None = None
    valid: np.ndarray | None = None
    rough: np.ndarray | None = None

    def to_cells(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution pixel (row, col) (centres at integers) -> integer cells."""
        r = np.floor((np.asarray(rows) + 0.5 - self.row0) / self.fy).astype(int)
        c = np.floor((np.asarray(cols) + 0.5 - self.col0) / self.fx).astype(int)
        return np.clip(r, 0, self.height - 1), np.clip(c, 0, self.width - 1)

    def to_pixels(self, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell (row, col) -> full-resolution pixel (row, col) of the cell's centre."""
        return (self.row0 + (np.asarray(r) + 0.5) * self.fy - 0.5,
                self.col0 + (np.asarray(c) + 0.5) * self.fx - 0.5)


def plan_grid(
    shape: tuple[int, int],
    points_rc: np.ndarray,
    pixel_m: tuple[float, float],
    *,
    margin_m: float,
    max_pixels: int,
    min_cell_m: float | None = None,
) -> CoarseGrid:
    """Choose the window (points' bounds plus ``margin_m``) and the decimation."""
    min_cell_m = MIN_CELL_M if min_cell_m is None else min_cell_m
    H, W = shape
    dy, dx = pixel_m[1], pixel_m[0]
    rows, cols = points_rc[:, 0], points_rc[:, 1]
    r0 = max(0, int(np.floor(rows.min() - margin_m / dy)))
    r1 = min(H, int(np.ceil(rows.max() + margin_m / dy)) + 1)
    c0 = max(0, int(np.floor(cols.min() - margin_m / dx)))
    c1 = min(W, int(np.ceil(cols.max() + margin_m / dx)) + 1)
    area = (r1 - r0) * dy * (c1 - c0) * dx
    cell = max(min_cell_m, float(np.sqrt(area / min(max_pixels, FINE_MAX_CELLS))))
    if cell > COARSE_CELL_M:
        cell = max(COARSE_CELL_M, float(np.sqrt(area / max_pixels)))
    cell = max(cell, dx, dy)
    fy = max(1, int(round(cell / dy)))
    fx = max(1, int(round(cell / dx)))
    h = -(-(r1 - r0) // fy)
    w = -(-(c1 - c0) // fx)
    return CoarseGrid(r0, c0, fy, fx, h, w, (fy * dy, fx * dx))


def read_grid(ds: Any, bands: Sequence[int], grid: CoarseGrid, *, workers: int = 2) -> CoarseGrid:
    """Read the grid's window decimated (cell means).

    When the tile has an overview at least as fine as the cells, GDAL reads it
    (``out_shape`` with average resampling). Otherwise full-resolution strips of about
    one block row are read and averaged in numpy: GDAL's own resampling of a huge
    window is several times slower. Strips are read by ``workers`` threads, each with
    its own dataset handle; memory stays at a few strips.
    """
    nb = len(bands)
    img = np.zeros((nb, grid.height, grid.width), np.float32)
    valid = np.zeros((grid.height, grid.width), bool)
    textured = grid.fx > 1 and grid.fy > 1
    rough = np.zeros((grid.height, grid.width), np.float32) if textured else None
    ovr = ds.overviews(bands[0]) if grid.fx > 1 or grid.fy > 1 else []
    use_gdal = grid.fx == 1 and grid.fy == 1 or any(o <= min(grid.fx, grid.fy) for o in ovr)
    bh = ds.block_shapes[0][0]
    if use_gdal:
        per = max(1, 4_000_000 // max(1, grid.width * grid.fx * grid.fy))
    else:
        per = max(1, int(round(max(bh, 256) / grid.fy)))
    tasks = [(a, min(grid.height, a + per)) for a in range(0, grid.height, per)]
    all_valid = _all_valid(ds, bands)

    def one(task: tuple[int, int], handle: Any) -> None:
        a, b = task
        data, m, r = (_read_gdal if use_gdal else _read_mean)(handle, bands, grid, a, b, all_valid)
        oh, ow = m.shape
        img[:, a:a + oh, :ow] = data
        valid[a:a + oh, :ow] = m
        if rough is not None:
            rough[a:a + oh, :ow] = r

    _run(ds, tasks, one, workers)
    if np.dtype(ds.dtypes[bands[0] - 1]).kind == "f":
        fin = np.isfinite(img).all(axis=0)
        valid &= fin
        img[:, ~fin] = 0.0
        if rough is not None:
            rough[~np.isfinite(rough)] = 0.0
    grid.image, grid.valid, grid.rough = img, valid, rough
    return grid


def _all_valid(ds: Any, bands: Sequence[int]) -> bool:
    from rasterio.enums import MaskFlags

    return all(ds.mask_flag_enums[b - 1] == [MaskFlags.all_valid] for b in bands)


def _run(ds: Any, tasks: list, fn: Any, workers: int) -> None:
    """Run ``fn(task, dataset)`` over tasks; extra threads open their own handles."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    from ..errors import RasterReadError

    local = threading.local()
    main_thread = threading.get_ident()
    opened: list = []

    def handle() -> Any:
        if threading.get_ident() == main_thread:
            return ds
        h = getattr(local, "ds", None)
        if h is None:
            h = local.ds = rasterio.open(ds.name)
            opened.append(h)
        return h

    def wrapped(task: Any) -> None:
        try:
            fn(task, handle())
        except RasterReadError:
            raise
        except Exception as exc:  # rasterio raises several I/O error types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RasterReadError(f"failed to read a decimated window of {ds.name}: {first}") from None

    try:
        reopenable = workers > 1 and len(tasks) > 1 and not ds.name.startswith("/vsimem")
        if reopenable:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(wrapped, tasks))
        else:
            for t in tasks:
                wrapped(t)
    finally:
        for h in opened:
            h.close()


def _window(ds: Any, grid: CoarseGrid, a: int, b: int) -> Any:
    from rasterio.windows import Window

    r0 = grid.row0 + a * grid.fy
    r1 = min(ds.height, grid.row0 + b * grid.fy)
    c1 = min(ds.width, grid.col0 + grid.width * grid.fx)
    return Window(grid.col0, r0, c1 - grid.col0, r1 - r0)


def _read_gdal(ds: Any, bands: Sequence[int], grid: CoarseGrid, a: int, b: int,
               all_valid: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A decimated window through GDAL (overviews); when decimating, 2 x 2 sub-cells per
    cell are read so that each cell's texture can be told."""
    from rasterio.enums import Resampling

    win = _window(ds, grid, a, b)
    oh = -(-int(win.height) // grid.fy)
    ow = -(-int(win.width) // grid.fx)
    sub = 2 if grid.fx > 1 and grid.fy > 1 else 1
    data = ds.read(list(bands), window=win, out_shape=(len(bands), oh * sub, ow * sub),
                   resampling=Resampling.average, out_dtype="float32")
    rough = None
    if sub > 1:
        lum = data.mean(axis=0)
        data = _cell_mean(data, sub)
        rough = np.sqrt(np.maximum(_cell_mean(lum * lum, sub) - _cell_mean(lum, sub) ** 2, 0.0))
    if all_valid:
        return data, np.ones((oh, ow), bool), rough
    m = ds.dataset_mask(window=win, out_shape=(oh, ow), resampling=Resampling.average)
    return data, m > 127, rough


def _cell_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of the last two axes (whose sizes are multiples of k)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def _read_mean(ds: Any, bands: Sequence[int], grid: CoarseGrid, a: int, b: int,
               all_valid: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution strip, averaged over valid pixels cell by cell; with each cell's
    brightness spread (texture)."""
    win = _window(ds, grid, a, b)
    h, w = int(win.height), int(win.width)
    oh, ow = -(-h // grid.fy), -(-w // grid.fx)
    ph, pw = oh * grid.fy - h, ow * grid.fx - w
    m = None if all_valid else ds.dataset_mask(window=win) > 0
    if m is None and (ph or pw):
        m = np.ones((h, w), bool)
    if m is not None:
        mp = np.pad(m, ((0, ph), (0, pw)))
        count = mp.reshape(oh, grid.fy, ow, grid.fx).sum(axis=(1, 3), dtype=np.int32)
    else:
        count = np.full((oh, ow), grid.fy * grid.fx, np.int32)
    out = np.zeros((len(bands), oh, ow), np.float32)
    acc = np.uint32 if np.dtype(ds.dtypes[bands[0] - 1]).itemsize <= 2 and \
        np.dtype(ds.dtypes[bands[0] - 1]).kind == "u" else np.float64
    n = np.maximum(count, 1)
    var = np.zeros((oh, ow), np.float64)
    for i, bnd in enumerate(bands):
        x = ds.read(bnd, window=win)
        if np.dtype(x.dtype).kind == "f":
            x = np.where(np.isfinite(x), x, 0)
        if m is not None:
            x = np.where(m, x, 0)
        x = np.pad(x, ((0, ph), (0, pw)))
        s = x.reshape(oh, grid.fy, ow, grid.fx).sum(axis=(1, 3), dtype=acc)
        out[i] = s / n
        var += _block_sum_squares(x, oh, ow, grid) / n - out[i].astype(np.float64) ** 2
    # texture: the brightness spread inside each cell (root of the bands' mean variance)
    rough = np.sqrt(np.maximum(var / len(bands), 0.0)).astype(np.float32)
    return out, count * 2 > grid.fy * grid.fx, rough


def _block_sum_squares(x: np.ndarray, oh: int, ow: int, grid: CoarseGrid) -> np.ndarray:
    """Per-cell sums of squared values, in a narrow integer type where the values allow
    (a uint8 strip squares into uint16: half the memory of float32)."""
    kind, size = np.dtype(x.dtype).kind, np.dtype(x.dtype).itemsize
    if kind in "ui" and size == 1:
        sq = x.astype(np.uint16 if kind == "u" else np.int16)
        acc: Any = np.uint64 if kind == "u" else np.int64
    else:
        sq = x.astype(np.float32)
        acc = np.float64
    sq *= sq
    return sq.reshape(oh, grid.fy, ow, grid.fx).sum(axis=(1, 3), dtype=acc).astype(np.float64)


def _line_kernels(length_px: int, n: int) -> list[tuple[float, np.ndarray]]:
    """Normalised straight-line kernels of odd size at ``n`` orientations (angle, kernel)."""
    half = length_px // 2
    size = 2 * half + 1
    out = []
    t = np.linspace(-half, half, 4 * size)
    for th in np.linspace(0, np.pi, n, endpoint=False):
        k = np.zeros((size, size), np.float32)
        r = np.round(half + t * np.sin(th)).astype(int)
        c = np.round(half + t * np.cos(th)).astype(int)
        k[r, c] = 1.0
        out.append((float(th), k / k.sum()))
    return out


def _line_mean(padded: np.ndarray, k: np.ndarray, pad: int) -> np.ndarray:
    """Correlation of an array (given padded by ``pad``) with a sparse line kernel ``k``:
    a sum of shifted views, O(line length) per cell rather than O(size squared)."""
    H, W = padded.shape[0] - 2 * pad, padded.shape[1] - 2 * pad
    h = k.shape[0] // 2
    out = np.zeros((H, W), np.float32)
    for r, c in np.argwhere(k):
        r0, c0 = pad + r - h, pad + c - h
        out += k[r, c] * padded[r0:r0 + H, c0:c0 + W]
    return out


def _shifted(a: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """``a`` moved by (dr, dc) cells, edges repeated: out[r, c] = a[r + dr, c + dc]."""
    p = max(abs(dr), abs(dc))
    if p == 0:
        return a
    ap = np.pad(a, p, mode="edge")
    H, W = a.shape
    return ap[p + dr:p + dr + H, p + dc:p + dc + W]


def _tone_and_texture(grid: CoarseGrid, lo: np.ndarray, hi: np.ndarray, tone: RoadTone,
                      cells: Sequence[tuple[int, int]]) -> np.ndarray:
    """Distance of each cell to the road, in spreads: of its tone and, where the grid
    has it, of its texture (rougher than the road's own cells at ``cells``, the user's
    points)."""
    assert grid.image is not None and grid.valid is not None
    scaled = (grid.image - lo[:, None, None]) / (hi - lo)[:, None, None]
    # averaging mixes the road with its verges at coarse cells: widen the tolerance
    wide = RoadTone(tone.centres, np.maximum(tone.spread, COARSE_MIN_SPREAD))
    d = tone_distance(scaled, wide, axis=0)
    if grid.rough is None or not cells:
        return d
    rough = grid.rough / float(np.mean(hi - lo))
    ref = []
    for r, c in cells:
        n = max(2, int(round(ROUGH_REF_M / min(grid.cell_m))))
        win = (slice(max(0, r - n), r + n + 1), slice(max(0, c - n), c + n + 1))
        dd, rr = d[win].ravel(), rough[win].ravel()
        # the smoother half of the cells of road tone: vehicles on the point are rough
        near = rr[dd <= np.percentile(dd, 25)]
        ref.append(float(np.percentile(near, 25)))
    r0 = float(np.median(ref))
    dt = ROUGH_GAIN * np.maximum(rough / max(r0, ROUGH_MIN) - ROUGH_FACTOR, 0.0)
    return np.sqrt(d * d + dt * dt).astype(np.float32)


def cost_map(grid: CoarseGrid, lo: np.ndarray, hi: np.ndarray, tone: RoadTone,
             cells: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Cost per unit ground distance of each coarse cell (float64, > 0).

    Each cell's distance to the road is that of its tone and, where the grid has it, of
    its texture (rougher than the road's own cells at ``cells``, the user's points).
    For each of :data:`N_ORIENT` straight lines of :data:`LINE_M` through a cell: the
    mean distance to the road along the line (in units of its spread), plus its
    variation along the line, plus a penalty unless parallel lines :data:`FLANK_M` to
    both sides differ from the road (a wide uniform area or its edge is not a
    band). The best line counts, with the cell's own tone: a long band of road tone costs
    little even where a vehicle, a tree or a shadow interrupts it for a few metres; a
    patch or a wide area of road tone does not. Plain terrain (no straight run of the
    road's tone and texture, or of vehicles, within :data:`TERRAIN_NEAR_M`) and cells
    without data cost far more than any road, so that the route follows a hairpin rather
    than cutting across it, even over scree speckled with the road's tone.
    """
    assert grid.image is not None and grid.valid is not None
    d = np.minimum(_tone_and_texture(grid, lo, hi, tone, cells), TONE_CAP)
    d[~grid.valid] = TONE_CAP
    cy, cx = grid.cell_m
    cell = float(np.sqrt(cy * cx))
    kernels = []
    for line_m in LINE_M:
        kernels += _line_kernels(max(3, int(round(line_m / cell)) | 1), N_ORIENT)
    best = None
    pad = max(k.shape[0] // 2 for _, k in kernels)
    dp = np.pad(d, pad, mode="edge")
    d2p = dp * dp
    for th, k in kernels:
        m = _line_mean(dp, k, pad)
        # a road keeps one tone along its line: penalise lines whose tone varies
        sd = np.sqrt(np.maximum(_line_mean(d2p, k, pad) - m * m, 0.0))
        # a road is a band: some parallel line beside it is not of road tone
        left = right = None
        for off in FLANK_M:
            nr, nc = np.cos(th) * off / cy, -np.sin(th) * off / cx
            dr, dc = int(round(nr)), int(round(nc))
            if dr == 0 and dc == 0:
                dr, dc = (int(np.sign(nr)), 0) if abs(nr) >= abs(nc) else (0, int(np.sign(nc)))
            a, b = _shifted(m, dr, dc), _shifted(m, -dr, -dc)
            left = a if left is None else np.maximum(left, a)
            right = b if right is None else np.maximum(right, b)
        assert left is not None and right is not None
        # both sides: the edge of a wide area of road tone (a river bed) is no band
        flank = np.minimum(left, right)
        m = m + UNIFORMITY_WEIGHT * sd + np.maximum(BAND_CONTRAST - flank, 0.0)
        best = m if best is None else np.minimum(best, m)
    assert best is not None
    # both the cell's own tone and the line it belongs to count
    x = 0.35 * d + 0.65 * best
    cost = ROAD_FLOOR + (np.minimum(x, TONE_CAP) / 2.0) ** 2
    # plain terrain: nothing of the road's tone and texture within TERRAIN_NEAR_M
    # ... counting only cells in straight runs of road tone or vehicles: road-toned
    # speckle of scree or rubble between two legs is no road
    runs = _road_runs(grid, lo, hi, tone, d)
    near = ndi.minimum_filter(runs, footprint=_disk(TERRAIN_NEAR_M, (cy, cx)), mode="nearest")
    lo_t, hi_t = TERRAIN_TONE
    cost += TERRAIN_COST * np.clip((near - lo_t) / (hi_t - lo_t), 0.0, 1.0)
    cost[~grid.valid] = NODATA_COST
    return cost.astype(np.float64)


def _road_runs(grid: CoarseGrid, lo: np.ndarray, hi: np.ndarray, tone: RoadTone,
               d: np.ndarray) -> np.ndarray:
    """``d`` where a cell lies in a straight run of road tone or vehicles (vehicles count
    as road: a dense queue stands on the road), :data:`TONE_CAP` elsewhere."""
    veh = _vehicle_like(grid, lo, hi, tone, d)
    runs = _in_straight_runs((d < RUN_TONE) | veh, grid.cell_m)
    return np.where(runs, np.where(veh, 0.0, d), TONE_CAP).astype(np.float32)


def _in_straight_runs(mask: np.ndarray, cell_m: tuple[float, float]) -> np.ndarray:
    """Cells of ``mask`` that lie in a straight run of at least RUN_M of mask cells, in
    any of N_ORIENT orientations (a binary opening by line segments)."""
    cell = float(np.sqrt(cell_m[0] * cell_m[1]))
    n = max(3, int(round(RUN_M / cell)) | 1)
    out = np.zeros_like(mask)
    for _, k in _line_kernels(n, N_ORIENT):
        out |= ndi.binary_opening(mask, structure=k > 0)
    return out


def _vehicle_like(grid: CoarseGrid, lo: np.ndarray, hi: np.ndarray, tone: RoadTone,
                  d: np.ndarray, n_sample: int = 4000, n_proto: int = 64) -> np.ndarray:
    """Cells like neither the road's tone nor any common terrain tone: vehicles.

    Terrain tones are prototypes drawn from the cells far from the road's tone; one
    counts only if at least :data:`COMMON_SHARE` of those cells are near it (vehicles
    are few, each kind of terrain is widespread)."""
    assert grid.image is not None and grid.valid is not None
    spread = np.maximum(tone.spread, COARSE_MIN_SPREAD)
    scale = ((hi - lo) * spread).astype(np.float32)
    off = (d > VEHICLE_TONE) & grid.valid
    n_off = int(off.sum())
    if n_off < n_proto:
        return np.zeros(d.shape, bool)
    rng = np.random.default_rng(0)
    pick = np.flatnonzero(off.ravel())[rng.choice(n_off, size=min(n_sample, n_off), replace=False)]
    sub = grid.image.reshape(grid.image.shape[0], -1)[:, pick].T / scale      # (n, bands)
    dd = np.sqrt(np.mean((sub[None, :, :] - sub[:n_proto, None, :]) ** 2, axis=-1))
    share = (dd < VEHICLE_TONE).mean(axis=1)
    protos: list[np.ndarray] = []
    for i in np.argsort(-share):   # the commonest first; near-duplicates add nothing
        if share[i] < COMMON_SHARE:
            break
        if all(np.sqrt(np.mean((sub[i] - q) ** 2)) > PROTO_MERGE for q in protos):
            protos.append(sub[i])
    far = np.ones(d.shape, bool)
    for q in protos:
        acc = np.zeros(d.shape, np.float32)
        for b in range(grid.image.shape[0]):
            acc += (grid.image[b] / scale[b] - q[b]) ** 2
        far &= acc > VEHICLE_TONE ** 2 * grid.image.shape[0]
    return far & off


def _disk(radius_m: float, cell_m: tuple[float, float]) -> np.ndarray:
    """A boolean disk footprint of ``radius_m`` on cells of ``cell_m`` (rows, cols)."""
    ry = max(1, int(round(radius_m / cell_m[0])))
    rx = max(1, int(round(radius_m / cell_m[1])))
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    return (yy / ry) ** 2 + (xx / rx) ** 2 <= 1.0


def route(cost: np.ndarray, cells: Sequence[tuple[int, int]], sampling: tuple[float, float]) -> np.ndarray:
    """Least-cost path through ``cells`` in order; integer (row, col) cells, (N, 2)."""
    from skimage.graph import MCP_Geometric

    from ..errors import RoadError

    out: list[np.ndarray] = []
    for a, b in zip(cells[:-1], cells[1:]):
        m = MCP_Geometric(cost, fully_connected=True, sampling=sampling)
        costs, _ = m.find_costs([tuple(a)], [tuple(b)], find_all_ends=True)
        if not np.isfinite(costs[tuple(b)]):
            raise RoadError("no route between the given points on the tile")
        p = np.asarray(m.traceback(tuple(b)), dtype=int)
        del m, costs
        out.append(p if not out else p[1:])
    return np.concatenate(out)
