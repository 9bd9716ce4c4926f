"""Block-wise rendering of a scene into a tiled, sparse GeoTIFF, with the sensor model
(supersampling and area averaging, MTF blur, noise, quantisation).

Only the 512 x 512 blocks within ``margin_m`` of the road are rendered and written; the
others stay unwritten (sparse file) and read back as masked. The whole tile is never held
in memory.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import shapely
from scipy.ndimage import gaussian_filter

from .. import geo
from ..export import atomic_path
from ..errors import OutputError
from .grid import Grid, make_grid
from .noise import block_rng
from .paint import BlockGeom, atmosphere, paint_ground, paint_objects, shadow_vector

__all__ = ["BLOCK", "footprint", "paint_window", "render_block", "write_raster"]

BLOCK = 512
_PAD = 6
_COARSE = 4


def footprint(scene) -> shapely.Geometry:
    """The area to render, in the local frame: the road buffered by ``margin_m``,
    cut by the straight footprint edge when ``extent_limit_m`` is set."""
    fp = shapely.buffer(shapely.LineString(scene.road_local), scene.spec.margin_m, quad_segs=8)
    if scene.cut is not None:
        p, d, _ = scene.cut
        n = np.array([-d[1], d[0]])
        r = 1e6
        half = shapely.Polygon([p + n * r, p + n * r - d * r, p - n * r - d * r, p - n * r])
        fp = shapely.intersection(fp, half)
    return fp


def _interp_index(n_out: int, n_coarse: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(n_out) + 0.5) / (ss * _COARSE)
    i0 = np.clip(np.floor(t).astype(np.int64), 0, n_coarse - 2)
    return i0, (t - i0).astype(np.float32)


def _upsampler(n_rows: int, n_cols: int, nr: int, nc: int, ss: int) -> Callable:
    """Bilinear upsampling from the coarse grid to the sample grid (separable)."""
    r0, fr = _interp_index(n_rows, nr, ss)
    c0, fc = _interp_index(n_cols, nc, ss)

    def up(a: np.ndarray, dtype=np.float32) -> np.ndarray:
        a = np.asarray(a, dtype)
        fr_ = fr.astype(dtype)[:, None]
        fc_ = fc.astype(dtype)
        rows = a[..., r0, :] * (1 - fr_) + a[..., r0 + 1, :] * fr_
        return np.ascontiguousarray(rows[..., c0] * (1 - fc_) + rows[..., c0 + 1] * fc_)

    return up


class _Objects:
    """Pixel positions and reach of every object, for picking those of a block."""

    def __init__(self, scene, grid: Grid, to_target) -> None:
        spec = scene.spec
        gsd = spec.gsd_m

        def px(xy):
            if len(xy) == 0:
                return np.zeros((0, 2))
            tx, ty = to_target.transform(xy[:, 0], xy[:, 1])
            c, r = grid.pixel_of(tx, ty)
            return np.column_stack([c, r])

        vs = scene.vehicles
        cen = scene.v_corners.mean(axis=1) if vs else np.zeros((0, 2))
        reach = np.array([v.length / 2 + 1 + np.hypot(*shadow_vector(scene, v.height)) for v in vs])
        self.vehicles = (px(cen), reach / gsd * 1.1 + 3)
        b = scene.buildings
        if b["xy"].shape[0]:
            reach = b["radius"] + np.array([np.hypot(*shadow_vector(scene, h)) for h in b["h"]]) + 1
            self.buildings = (px(b["xy"]), reach / gsd * 1.1 + 3)
        else:
            self.buildings = (np.zeros((0, 2)), np.zeros(0))
        t = scene.trees
        if t["xy"].shape[0]:
            reach = t["r"] * 1.5 + np.array([np.hypot(*shadow_vector(scene, 0.7 * h)) for h in t["h"]]) + 1
            self.trees = (px(t["xy"]), reach / gsd * 1.1 + 3)
        else:
            self.trees = (np.zeros((0, 2)), np.zeros(0))

    @staticmethod
    def _pick(obj, r0, c0, h, w) -> np.ndarray:
        p, rad = obj
        if len(rad) == 0:
            return np.zeros(0, int)
        ok = ((p[:, 0] + rad >= c0) & (p[:, 0] - rad <= c0 + w)
              & (p[:, 1] + rad >= r0) & (p[:, 1] - rad <= r0 + h))
        return np.flatnonzero(ok)

    def pick(self, r0, c0, h, w) -> dict:
        return {"vehicles": self._pick(self.vehicles, r0, c0, h, w),
                "buildings": self._pick(self.buildings, r0, c0, h, w),
                "trees": self._pick(self.trees, r0, c0, h, w)}


def _quantise(img: np.ndarray, bands: int, dtype: str) -> np.ndarray:
    if bands == 1:
        out = (0.22 * img[0] + 0.42 * img[1] + 0.18 * img[2] + 0.18 * img[3])[None]
    elif bands == 3:
        out = img[:3]
    else:
        out = img
    if dtype == "uint8":
        return np.clip(np.rint(out * 254 + 1), 1, 255).astype(np.uint8)
    # 11-bit-like values, with a dark offset as in many satellite products
    return np.clip(np.rint(out * 1900 + 60), 1, 2047).astype(np.uint16)


def paint_window(scene, grid: Grid, objects: _Objects, to_local, pr0: int, pc0: int,
                 H: int, W: int, rng: np.random.Generator, painter: Callable | None = None):
    """Paint the grid window of ``H`` x ``W`` pixels at (``pr0``, ``pc0``), area-averaged
    from the supersampled grid, before blur, noise and quantisation. ``painter`` replaces
    :func:`.paint.paint_objects` (same arguments).

    Returns
    -------
    tuple or None
        ``(img, offset, side)``: the image (4, H, W) float32 (R, G, B, NIR), the absolute
        offset from the centreline in metres (inf where nothing was painted), and the
        signed distance beyond the footprint cut (``None`` without a cut); ``None`` when
        nothing of the window is near the road.
    """
    spec = scene.spec
    ss = spec.supersample
    nr = int(np.ceil(H / _COARSE)) + 1
    nc = int(np.ceil(W / _COARSE)) + 1
    rows = pr0 + np.arange(nr) * _COARSE
    cols = pc0 + np.arange(nc) * _COARSE
    cc, rr = np.meshgrid(cols.astype(float), rows.astype(float))
    tx, ty = grid.xy_of(cc, rr)
    xc, yc = to_local.transform(np.asarray(tx), np.asarray(ty))
    xc, yc = np.asarray(xc).reshape(nr, nc), np.asarray(yc).reshape(nr, nc)
    sc, oc = scene.line.station_offset(xc, yc)
    # quick reject: nothing within the margin
    if np.abs(oc).min() > spec.margin_m + 2 * _COARSE * spec.gsd_m:
        return None
    # render only the part of the window near the road (aligned to the coarse grid)
    near = np.abs(oc) <= spec.margin_m + 3 * _COARSE * spec.gsd_m
    if scene.cut is not None:
        p, d, _ = scene.cut
        near &= (xc - p[0]) * d[0] + (yc - p[1]) * d[1] <= 3 * _COARSE * spec.gsd_m
    if not near.any():
        return None
    ri = np.flatnonzero(near.any(axis=1))
    ci = np.flatnonzero(near.any(axis=0))
    ia, ib = max(0, ri[0] - 1), min(nr - 1, ri[-1] + 1)
    ja, jb = max(0, ci[0] - 1), min(nc - 1, ci[-1] + 1)
    xc, yc, sc, oc = (a[ia:ib + 1, ja:jb + 1] for a in (xc, yc, sc, oc))
    sub_r0, sub_c0 = ia * _COARSE, ja * _COARSE
    Hh = min(H, ib * _COARSE) - sub_r0
    Ww = min(W, jb * _COARSE) - sub_c0
    up = _upsampler(Hh * ss, Ww * ss, ib - ia + 1, jb - ja + 1, ss)
    x = up(xc, np.float64)
    y = up(yc, np.float64)
    s = up(sc, np.float64)
    o = up(oc)
    ds = spec.gsd_m / ss
    g = BlockGeom(x=x, y=y, s=s, o=o, coarse={"x": xc, "y": yc, "s": sc, "o": oc},
                  upsample=up, ds=ds, rng=rng)
    img = paint_ground(scene, g)
    sel = objects.pick(pr0 + sub_r0, pc0 + sub_c0, Hh, Ww)
    # local frame -> sample index, linearised over the window
    jx = np.array([[xc[0, 0], yc[0, 0], 1.0], [xc[0, -1], yc[0, -1], 1.0], [xc[-1, 0], yc[-1, 0], 1.0]])
    tgt = np.array([[0.0, 0.0], [(jb - ja) * _COARSE * ss, 0.0], [0.0, (ib - ia) * _COARSE * ss]])
    aff = np.linalg.solve(jx, tgt)   # [x, y, 1] @ aff -> (col, row) in samples
    Hs, Ws = Hh * ss, Ww * ss

    def win(cx: float, cy: float, reach: float):
        c, r = np.array([cx, cy, 1.0]) @ aff
        rs = reach / ds + 2
        a0, a1 = max(0, int(r - rs)), min(Hs, int(r + rs) + 1)
        b0, b1 = max(0, int(c - rs)), min(Ws, int(c + rs) + 1)
        if a0 >= a1 or b0 >= b1:
            return None
        return (slice(a0, a1), slice(b0, b1))

    (painter or paint_objects)(scene, g, img, sel, win)
    atmosphere(scene, g, img)
    part = img.reshape(4, Hh, ss, Ww, ss).mean(axis=(2, 4))
    img = np.zeros((4, H, W), np.float32)
    img[:, sub_r0:sub_r0 + Hh, sub_c0:sub_c0 + Ww] = part
    opart = o.reshape(Hh, ss, Ww, ss).mean(axis=(1, 3))
    ofull = np.full((H, W), np.inf, np.float32)
    ofull[sub_r0:sub_r0 + Hh, sub_c0:sub_c0 + Ww] = np.abs(opart)
    side = None
    if scene.cut is not None:
        p, d, _ = scene.cut
        side = np.full((H, W), np.inf)
        xp = x.reshape(Hh, ss, Ww, ss).mean(axis=(1, 3))
        yp = y.reshape(Hh, ss, Ww, ss).mean(axis=(1, 3))
        side[sub_r0:sub_r0 + Hh, sub_c0:sub_c0 + Ww] = (xp - p[0]) * d[0] + (yp - p[1]) * d[1]
    return img, ofull, side


def render_block(scene, grid: Grid, objects: _Objects, to_local, br: int, bc: int):
    """Render block (br, bc); return (data, mask, window) or None when nothing is valid."""
    spec = scene.spec
    r0, c0 = br * BLOCK, bc * BLOCK
    h = min(BLOCK, grid.height - r0)
    w = min(BLOCK, grid.width - c0)
    H, W = h + 2 * _PAD, w + 2 * _PAD
    rng = block_rng(spec.seed, br, bc)
    painted = paint_window(scene, grid, objects, to_local, r0 - _PAD, c0 - _PAD, H, W, rng)
    if painted is None:
        return None
    img, ofull, side = painted
    if spec.blur_px > 0:
        for k in range(4):
            img[k] = gaussian_filter(img[k], spec.blur_px, mode="nearest")
    if spec.noise > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(spec.noise) * (0.6 + 0.6 * np.sqrt(np.clip(img, 0, 1)))
    img = img[:, _PAD:_PAD + h, _PAD:_PAD + w]
    valid = ofull[_PAD:_PAD + h, _PAD:_PAD + w] <= spec.margin_m
    if side is not None:
        valid &= side[_PAD:_PAD + h, _PAD:_PAD + w] <= 0
    if not valid.any():
        return None
    data = _quantise(np.clip(img, 0, 1.2), spec.bands, spec.dtype)
    data[:, ~valid] = 0
    mask = np.where(valid, 255, 0).astype(np.uint8)
    return data, mask, (r0, c0, h, w)


def _candidate_blocks(scene, grid: Grid, to_local) -> list[tuple[int, int]]:
    nbr = int(np.ceil(grid.height / BLOCK))
    nbc = int(np.ceil(grid.width / BLOCK))
    br, bc = np.meshgrid(np.arange(nbr), np.arange(nbc), indexing="ij")
    br, bc = br.ravel(), bc.ravel()
    cr = (br + 0.5) * BLOCK
    ccol = (bc + 0.5) * BLOCK
    tx, ty = grid.xy_of(ccol, cr)
    x, y = to_local.transform(np.asarray(tx), np.asarray(ty))
    dist, _ = scene.line.tree.query(np.column_stack([x, y]), workers=-1)
    reach = scene.spec.margin_m + BLOCK * scene.spec.gsd_m * 0.75 + 5
    keep = dist <= reach
    if scene.cut is not None:
        p, d, _ = scene.cut
        # all four corners beyond the cut -> drop
        beyond = np.ones(keep.shape, bool)
        for dr in (0, 1):
            for dc in (0, 1):
                ux, uy = grid.xy_of((bc + dc) * BLOCK, (br + dr) * BLOCK)
                lx, ly = to_local.transform(np.asarray(ux), np.asarray(uy))
                beyond &= (np.asarray(lx) - p[0]) * d[0] + (np.asarray(ly) - p[1]) * d[1] > 0
        keep &= ~beyond
    return list(zip(br[keep].tolist(), bc[keep].tolist()))


def write_raster(scene, path: str | os.PathLike, *, progress: Callable[[int, int], None] | None = None) -> Grid:
    """Render ``scene`` into a GeoTIFF at ``path`` (written atomically).

    Parameters
    ----------
    scene : Scene
    path : path-like
    progress : callable, optional
        Called as ``progress(done, total)`` after each block.

    Returns
    -------
    Grid
    """
    import rasterio
    from rasterio.crs import CRS as RioCRS
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    spec = scene.spec
    grid = make_grid(scene, footprint(scene))
    to_local = geo.transformer(grid.crs, scene.local_crs)
    to_target = geo.transformer(scene.local_crs, grid.crs)
    objects = _Objects(scene, grid, to_target)
    blocks = _candidate_blocks(scene, grid, to_local)
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=spec.bands,
                   dtype=spec.dtype, crs=RioCRS.from_wkt(grid.crs.to_wkt()),
                   transform=grid.transform, tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
                   sparse_ok=True, interleave="pixel", bigtiff="IF_SAFER")
    if spec.jpeg:
        profile.update(compress="JPEG", jpeg_quality=int(spec.jpeg_quality))
        if spec.bands == 3:
            profile["photometric"] = "YCBCR"
    else:
        profile.update(compress="DEFLATE", predictor=2, zlevel=6)
    path = Path(path)
    if not path.parent.exists():
        raise OutputError(f"output directory does not exist: {path.parent}")
    with atomic_path(path, overwrite=True, suffix=".tif") as tmp:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GDAL_NUM_THREADS=1):
            with rasterio.open(tmp, "w", **profile) as dst:
                if spec.bands == 1:
                    dst.colorinterp = [ColorInterp.gray]
                elif spec.bands == 3:
                    dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                else:
                    dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue,
                                       ColorInterp.undefined]
                    dst.set_band_description(4, "NIR")
                desc = ("SYNTHETIC scene made by queuemeasure.synth (seed %d); not a real image. "
                        "Vehicles, road and surroundings are simulated. %s" % (spec.seed, spec.description)).strip()
                dst.update_tags(SYNTHETIC="yes", DESCRIPTION=desc, TIFFTAG_IMAGEDESCRIPTION=desc,
                                GENERATOR="queuemeasure.synth", SEED=str(spec.seed),
                                GSD_M=str(spec.gsd_m))
                done = 0
                workers = max(1, int(spec.workers))
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for i in range(0, len(blocks), 4 * workers):
                        chunk = blocks[i:i + 4 * workers]
                        futs = [pool.submit(render_block, scene, grid, objects, to_local, br, bc)
                                for br, bc in chunk]
                        for fut in futs:
                            res = fut.result()
                            done += 1
                            if res is not None:
                                data, mask, (r0, c0, h, w) = res
                                win = Window(c0, r0, w, h)
                                dst.write(data, window=win)
                                dst.write_mask(mask, window=win)
                            if progress is not None:
                                progress(done, len(blocks))
    return grid
