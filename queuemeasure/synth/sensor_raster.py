"""Block-wise writing of a coarse-sensor GeoTIFF (Sentinel-2-like, PlanetScope-like) for
one acquisition date.

The output grid (10 m or 3 m) is cut into 512 x 512 blocks; only blocks near the road are
rendered. Each block is painted in sub-windows at the sensor's intermediate pixel (about
500 x 500 intermediate pixels plus a border for the point-spread function), degraded to
the output pixel (:func:`.sensor.degrade`), then the date's haze, gain/offset and the
sensor noise are applied and the product encoded (:mod:`.products`). Memory stays at a
few tens of MB whatever the road length.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
from affine import Affine

from .. import geo
from ..errors import OutputError
from ..export import atomic_path
from .grid import Grid, make_grid
from .noise import block_rng, fbm
from .products import Product, get_product, scl_classes
from .paint import paint_objects
from .render import BLOCK, _candidate_blocks, _Objects, footprint, paint_window
from .scene import Scene
from .sensor import DateModel, SensorModel, add_noise, apply_date, degrade, to_reflectance

__all__ = ["coarse_grid", "write_sensor_raster", "band_displacements", "CLOUD_MASK_OPACITY"]

#: Painted intermediate pixels per sub-window side (before the PSF border).
_WINDOW_FINE = 480
#: Opacity from which a pixel is written as cloud in the cloud-mask sidecar.
CLOUD_MASK_OPACITY = 0.2


def coarse_grid(scene: Scene, sensor: SensorModel) -> tuple[Grid, Grid]:
    """The output grid at the sensor pixel and the intermediate grid nested in it."""
    spec = replace(scene.spec, gsd_m=sensor.gsd_m)
    grid = make_grid(replace(scene, spec=spec), footprint(scene))
    k = sensor.factor
    fine = Grid(crs=grid.crs, transform=grid.transform * Affine.scale(1.0 / k),
                width=grid.width * k, height=grid.height * k,
                pixel_m=(sensor.fine_gsd_m, sensor.fine_gsd_m))
    return grid, fine


def _shifted(fine: Grid, shift_m) -> Grid:
    """The intermediate grid moved by ``shift_m`` (east, north) ground metres."""
    t = fine.transform
    ux = abs(t.a) / fine.pixel_m[0]
    uy = abs(t.e) / fine.pixel_m[1]
    return replace(fine, transform=Affine.translation(shift_m[0] * ux, shift_m[1] * uy) * t)


#: Speed range (m/s) of moving vehicles (free and oncoming traffic): 40-90 km/h.
MOVING_SPEED_MPS = (11.0, 25.0)
_NO_OBJECTS = np.zeros(0, np.int64)


def band_displacements(scene: Scene, sensor: SensorModel) -> tuple[np.ndarray, np.ndarray]:
    """Where each vehicle stands in each band, relative to its place in the first band.

    Returns
    -------
    disp : ndarray, shape (n_vehicles, 4, 2)
        Displacement (local metres) per vehicle and *renderer channel* (R, G, B, NIR).
    moving : ndarray of bool
        Vehicles that move (neither queued nor parked) while the sensor's bands have
        different sensing times.
    """
    n = len(scene.vehicles)
    disp = np.zeros((n, 4, 2))
    lag = np.asarray(sensor.band_time_s, float)[[2, 1, 0, 3]]       # -> R, G, B, NIR
    moving = np.array([not (v.in_queue or v.parked) for v in scene.vehicles], bool)
    if n == 0 or not np.any(lag) or not moving.any():
        return disp, np.zeros(n, bool)
    rng = np.random.default_rng([int(scene.spec.seed) & 0xFFFFFFFF, 0x5BEED])
    speed = rng.uniform(*MOVING_SPEED_MPS, n)
    c = scene.v_corners
    front = (c[:, 0] - c[:, 3]) + (c[:, 1] - c[:, 2])
    front /= np.maximum(np.hypot(front[:, 0], front[:, 1]), 1e-9)[:, None]
    disp = (speed * moving)[:, None, None] * lag[None, :, None] * front[:, None, :]
    return disp, moving


class _LagPainter:
    """Paints objects with moving vehicles displaced per band (push-broom band lag)."""

    def __init__(self, disp: np.ndarray, moving: np.ndarray) -> None:
        self.disp, self.moving = disp, moving

    def __call__(self, scene, g, img, sel, win) -> None:
        v = np.asarray(sel["vehicles"], np.int64)
        mv = v[self.moving[v]]
        paint_objects(scene, g, img, dict(sel, vehicles=v[~self.moving[v]]), win)
        if mv.size == 0:
            return
        base = img.copy()
        only = {"vehicles": mv, "buildings": _NO_OBJECTS, "trees": _NO_OBJECTS}
        for ch in range(4):
            tmp = base.copy()
            moved = replace(scene, v_corners=scene.v_corners + self.disp[:, ch][:, None, :])
            paint_objects(moved, g, tmp, only, win)
            img[ch] = tmp[ch]


class _BlockRenderer:
    """Renders output blocks of one date (internal)."""

    def __init__(self, scene: Scene, grid: Grid, fine: Grid, sensor: SensorModel,
                 date: DateModel, product: Product) -> None:
        self.scene, self.grid, self.sensor, self.date, self.product = scene, grid, sensor, date, product
        self.fine = _shifted(fine, date.shift_m)
        self.to_local = geo.transformer(grid.crs, scene.local_crs)
        self.objects = _Objects(scene, self.fine, geo.transformer(scene.local_crs, grid.crs))
        disp, moving = band_displacements(scene, sensor)
        self.painter = _LagPainter(disp, moving) if moving.any() else None
        if self.painter is not None:        # pick moving vehicles where they are in any band
            px, reach = self.objects.vehicles
            far = np.abs(disp).max(axis=(1, 2)) * np.sqrt(2) / sensor.fine_gsd_m
            self.objects.vehicles = (px, reach + far)
        self.k = sensor.factor
        self.sigma = sensor.psf_sigma_px
        self.pad = int(np.ceil(3 * self.sigma)) + 1
        self.step = max(4, _WINDOW_FINE // self.k)

    def _window(self, r0: int, c0: int, h: int, w: int):
        """Reflectance and validity of output rows r0..r0+h, cols c0..c0+w."""
        k, p = self.k, self.pad
        if not self._near(r0, c0, h, w):
            return None
        H, W = (h + 2 * p) * k, (w + 2 * p) * k
        rng = block_rng(self.scene.spec.seed, 0xC0A, r0, c0)
        painted = paint_window(self.scene, self.fine, self.objects, self.to_local,
                               (r0 - p) * k, (c0 - p) * k, H, W, rng, self.painter)
        if painted is None:
            return None
        img, ofull, side = painted
        valid = ofull <= self.scene.spec.margin_m
        if side is not None:
            valid &= side <= 0
        coarse, cv = degrade(to_reflectance(img), k, self.sigma, valid)
        return coarse[:, p:p + h, p:p + w], cv[p:p + h, p:p + w]

    def _near(self, r0: int, c0: int, h: int, w: int) -> bool:
        """Whether the window (with its PSF border) may reach the painted margin: one
        nearest-vertex query instead of painting's per-sample geometry."""
        tx, ty = self.grid.xy_of(c0 + w / 2, r0 + h / 2)
        x, y = self.to_local.transform(float(tx), float(ty))
        dist, _ = self.scene.line.tree.query([x, y])
        reach = (np.hypot(h, w) / 2 + self.pad + 1) * self.sensor.gsd_m
        return bool(dist <= self.scene.spec.margin_m + reach + 2 * self.scene.line.spacing)

    def block(self, br: int, bc: int):
        """Encoded data of output block (br, bc), or None when nothing is valid."""
        r0, c0 = br * BLOCK, bc * BLOCK
        h = min(BLOCK, self.grid.height - r0)
        w = min(BLOCK, self.grid.width - c0)
        refl = np.zeros((4, h, w), np.float32)
        valid = np.zeros((h, w), bool)
        for i in range(0, h, self.step):
            for j in range(0, w, self.step):
                hh, ww = min(self.step, h - i), min(self.step, w - j)
                got = self._window(r0 + i, c0 + j, hh, ww)
                if got is not None:
                    refl[:, i:i + hh, j:j + ww], valid[i:i + hh, j:j + ww] = got
        if not valid.any():
            return None
        x, y = self._local_xy(r0, c0, h, w)
        seed = self.scene.spec.seed
        haze = 0.8 + 0.4 * fbm(x, y, 2000.0, self.date.haze_seed, 2)
        refl = apply_date(refl, self.date, haze)
        refl = add_noise(refl, self.sensor.snr, block_rng(self.date.noise_seed, br, bc))
        cloud = self.scene.cloud_opacity(x, y) if self.scene.spec.cloud > 0 else None
        scl = scl_classes(refl, cloud, valid) if (self.product.with_scl and cloud is not None) else None
        data = self.product.encode(refl, valid, scl)
        mask = None
        if cloud is not None:
            mask = np.where(cloud >= CLOUD_MASK_OPACITY, 1, 0).astype(np.uint8)
            mask[~valid] = 255
        return data, mask, (r0, c0, h, w)

    def _local_xy(self, r0: int, c0: int, h: int, w: int):
        cc, rr = np.meshgrid(c0 + np.arange(w) + 0.5, r0 + np.arange(h) + 0.5)
        tx, ty = self.grid.xy_of(cc, rr)
        x, y = self.to_local.transform(np.asarray(tx).ravel(), np.asarray(ty).ravel())
        return np.asarray(x).reshape(h, w), np.asarray(y).reshape(h, w)


def _profile(grid: Grid, product: Product) -> dict:
    from rasterio.crs import CRS as RioCRS
    return dict(driver="GTiff", width=grid.width, height=grid.height, count=product.count,
                dtype=product.dtype, nodata=product.nodata, crs=RioCRS.from_wkt(grid.crs.to_wkt()),
                transform=grid.transform, tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
                sparse_ok=True, interleave="pixel", compress="DEFLATE", zlevel=6,
                predictor=3 if product.dtype == "float32" else 2)


def _describe(dst, product: Product, tags: dict) -> None:
    from rasterio.enums import ColorInterp
    if product.kind == "tci":
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    else:
        dst.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red] + \
            [ColorInterp.undefined] * (product.count - 3)
    for i, d in enumerate(product.descriptions(), start=1):
        if d:
            dst.set_band_description(i, d)
        bt = product.band_tags(i)
        if bt:
            dst.update_tags(i, **bt)
    dst.update_tags(**tags, **product.tags())


def write_sensor_raster(scene: Scene, grid: Grid, fine: Grid, sensor: SensorModel, date: DateModel,
                        product: str, path: str | os.PathLike, *, tags: dict | None = None,
                        cloud_mask_path: str | os.PathLike | None = None, workers: int = 2,
                        progress: Callable[[int, int], None] | None = None) -> None:
    """Render ``scene`` as ``sensor`` sees it on ``date`` into a GeoTIFF (atomically).

    Parameters
    ----------
    scene : Scene
        A laid-out scene whose spec has the sensor's intermediate pixel.
    grid, fine : Grid
        The output grid and the intermediate grid (:func:`coarse_grid`).
    sensor : SensorModel
    date : DateModel
    product : {"tci", "l2a", "reflectance"}
    path : path-like
    tags : dict, optional
        Extra dataset tags.
    cloud_mask_path : path-like, optional
        Where to write the cloud mask (uint8: 1 cloud, 0 clear, 255 nodata) when the
        scene has cloud.
    workers : int
        Rendering threads.
    progress : callable, optional
        ``progress(done, total)`` after each block.
    """
    import rasterio
    from rasterio.windows import Window

    has_cloud = scene.spec.cloud > 0
    prod = get_product(product, sensor, with_scl=has_cloud)
    renderer = _BlockRenderer(scene, grid, fine, sensor, date, prod)
    coarse_scene = replace(scene, spec=replace(scene.spec, gsd_m=sensor.gsd_m))
    blocks = _candidate_blocks(coarse_scene, grid, renderer.to_local)
    path = Path(path)
    if not path.parent.exists():
        raise OutputError(f"output directory does not exist: {path.parent}")
    all_tags = dict(tags or {}, **date.as_tags())
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path, overwrite=True, suffix=".tif"))
        mask_dst = None
        if has_cloud and cloud_mask_path is not None:
            mtmp = stack.enter_context(atomic_path(cloud_mask_path, overwrite=True, suffix=".tif"))
            mask_dst = stack.enter_context(_open_mask(mtmp, grid, all_tags))
        stack.enter_context(rasterio.Env(GDAL_NUM_THREADS=1))
        dst = stack.enter_context(rasterio.open(tmp, "w", **_profile(grid, prod)))
        _describe(dst, prod, all_tags)
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            for res in pool.map(lambda b: renderer.block(*b), blocks):
                done += 1
                if res is not None:
                    data, mask, (r0, c0, h, w) = res
                    win = Window(c0, r0, w, h)
                    dst.write(data, window=win)
                    if mask_dst is not None and mask is not None:
                        mask_dst.write(mask[None], window=win)
                if progress is not None:
                    progress(done, len(blocks))


def _open_mask(path, grid: Grid, tags: dict):
    """Open the cloud-mask GeoTIFF for writing (uint8: 1 cloud, 0 clear, 255 nodata)."""
    import rasterio
    from rasterio.crs import CRS as RioCRS
    dst = rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1,
                        dtype="uint8", nodata=255, crs=RioCRS.from_wkt(grid.crs.to_wkt()),
                        transform=grid.transform, tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
                        sparse_ok=True, compress="DEFLATE")
    dst.set_band_description(1, "cloud_mask")
    dst.update_tags(**tags, CLOUD_MASK="1 = cloud (opacity >= %.2f), 0 = clear, 255 = nodata"
                    % CLOUD_MASK_OPACITY)
    return dst
