"""Rendering a scene as a coarse sensor sees it (Sentinel-2, PlanetScope), and its
reference date, block by block.

The output grid (10 m or 3 m) is cut into 512 x 512 blocks; only blocks near the road are
rendered. Each block is painted in sub-windows at the sensor's intermediate pixel (about
500 x 500 intermediate pixels plus a border for the point-spread function), degraded to
the output pixel (:func:`.sensor.degrade`), then the date's haze, gain/offset and the
sensor noise are applied and the product encoded. Memory stays at a few tens of MB
whatever the road length; a 20 km road at 10 m paints about 1/16 of the samples the same
road costs at 0.5 m.
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
from .render import BLOCK, _candidate_blocks, _Objects, footprint, paint_window
from .scene import Scene, _footprints
from .sensor import (DateModel, SensorModel, add_noise, apply_date, degrade, to_reflectance)
from .vehicles import draw_vehicle

__all__ = ["render_sensor_scene", "sensor_scene", "reference_scene", "coarse_grid",
           "write_sensor_raster", "queue_lanes"]

#: Painted intermediate pixels per sub-window side (before the PSF border).
_WINDOW_FINE = 480
#: Opacity from which a pixel is written as cloud in the cloud-mask sidecar.
CLOUD_MASK_OPACITY = 0.2


def sensor_scene(scene: Scene) -> Scene:
    """A copy of ``scene`` with near-infrared responses fitted to reflectance products:
    asphalt about 1.25 x its visible reflectance, tree crowns bright (0.3-0.4)."""
    style = dict(scene.style)
    style["road_nir"] = float(scene.style["road_nir"]) * 0.72
    trees = dict(scene.trees)
    if "nir" in trees:
        trees["nir"] = np.asarray(trees["nir"]) * 1.3
    return replace(scene, style=style, trees=trees)


def reference_scene(scene: Scene, date: DateModel, *, traffic_per_km: float = 1.0) -> Scene:
    """The same road on another date: no queue and none of the tile's moving vehicles,
    ``traffic_per_km`` other vehicles in random lanes, the date's sun and cloud.

    Parked lay-by vehicles stay. The other vehicles are drawn from the scene seed.
    """
    spec = scene.spec
    spec = replace(spec,
                   sun_azimuth_deg=spec.sun_azimuth_deg if date.sun_azimuth_deg is None else date.sun_azimuth_deg,
                   sun_elevation_deg=spec.sun_elevation_deg if date.sun_elevation_deg is None else date.sun_elevation_deg,
                   cloud=spec.cloud if date.cloud is None else date.cloud)
    keep = [v for v in scene.vehicles if v.parked]
    rng = np.random.default_rng([int(spec.seed) & 0xFFFFFFFF, 0x7EF])
    length = scene.line.length
    for _ in range(int(rng.poisson(max(0.0, traffic_per_km) * length / 1000.0))):
        v = draw_vehicle(rng, spec.truck_fraction, spec.colour_mix)
        lane = int(rng.integers(len(scene.lane_offsets)))
        v.s_c = float(rng.uniform(v.length, max(v.length + 1, length - v.length)))
        v.o_c = scene.lane_offsets[lane] + float(rng.normal(0, 0.2))
        v.towards_head = lane == 0
        v.in_queue = False
        keep.append(v)
    return replace(scene, spec=spec, vehicles=keep, v_corners=_footprints(scene.line, keep))


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


class _BlockRenderer:
    """Renders output blocks of one date (internal)."""

    def __init__(self, scene: Scene, grid: Grid, fine: Grid, sensor: SensorModel,
                 date: DateModel, product: Product) -> None:
        self.scene, self.grid, self.sensor, self.date, self.product = scene, grid, sensor, date, product
        self.fine = _shifted(fine, date.shift_m)
        self.to_local = geo.transformer(grid.crs, scene.local_crs)
        self.objects = _Objects(scene, self.fine, geo.transformer(scene.local_crs, grid.crs))
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
                               (r0 - p) * k, (c0 - p) * k, H, W, rng)
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


def queue_lanes(truth, spec) -> dict:
    """How many lanes the truth queue fills: per lane, the km covered by stretches of
    queued vehicles (bumper gaps up to 15 m joined), and their sum over the queue length."""
    vs = truth.queue_vehicles
    lw, n = spec.lane_width_m, spec.lanes
    hw = n * lw / 2
    per = [0.0] * n
    for lane in range(n):
        centre = -hw + lw / 2 + lane * lw
        iv = sorted((v.s0_m, v.s1_m) for v in vs
                    if int(np.clip(np.floor((v.offset_m + hw) / lw), 0, n - 1)) == lane)
        total, cur = 0.0, None
        for a, b in iv:
            if cur is not None and a - cur[1] <= 15.0:
                cur[1] = max(cur[1], b)
                continue
            if cur is not None:
                total += cur[1] - cur[0]
            cur = [a, b]
        if cur is not None:
            total += cur[1] - cur[0]
        per[lane] = total / 1000.0
        del centre
    mean = sum(per) / truth.length_km if truth.length_km > 0 else 0.0
    trucks = sum(1 for v in vs if v.cls in ("truck", "bus"))
    return {"lanes": n, "lane_width_m": lw, "queue_lane_km": per, "queue_mean_lanes": mean,
            "queue_truck_count": trucks}


def render_sensor_scene(spec, path: str | os.PathLike, *, sensor: str | SensorModel = "sentinel2",
                        product: str = "l2a", reference: str | os.PathLike | None = None,
                        reference_date: DateModel | None = None, reference_traffic_per_km: float = 1.0,
                        overwrite: bool = True, progress: Callable[[int, int], None] | None = None,
                        **sensor_overrides):
    """Render a SYNTHETIC scene as a coarse sensor sees it, with its truth and road files,
    and optionally the same road on a reference date without the queue.

    Parameters
    ----------
    spec : SceneSpec
        The scene (``gsd_m``, ``supersample``, ``blur_px``, ``noise``, ``bands``,
        ``dtype`` and ``jpeg`` are replaced by the sensor's; ``haze`` and ``cloud`` are
        the tile date's).
    path : path-like
        Output GeoTIFF; ``<stem>.truth.geojson``, ``<stem>.road.geojson`` and, when the
        scene has cloud, ``<stem>.cloudmask.tif`` are written beside it.
    sensor : {"sentinel2", "planetscope"} or SensorModel
    product : {"tci", "l2a", "reflectance"}
    reference : path-like, optional
        Also write the reference date here (same grid and product).
    reference_date : DateModel, optional
        The reference's conditions (default: drawn from the seed by
        :func:`.sensor.random_reference_date`).
    reference_traffic_per_km : float
        Other vehicles on the reference date.
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        ``progress(done, total)`` per rendered block.
    **sensor_overrides
        Fields of :class:`.sensor.SensorModel` (``gsd_m``, ``mtf_nyquist``, ``snr``, ...).

    Returns
    -------
    SceneTruth
        With ``paths`` (tif, truth, road, and reference / cloudmask when written) and
        ``properties`` (the truth file's, including ``sensor``, ``product``, lanes).
    """
    from .. import synth as _synth
    from ..errors import OutputError
    from .grid import target_crs
    from .scene import build_scene
    from .sensor import get_sensor, random_reference_date, tile_date
    from .products import get_product
    from .truth import make_truth, write_road, write_truth

    model = get_sensor(sensor, **sensor_overrides)
    get_product(product, model)
    fine_spec = replace(spec, gsd_m=model.fine_gsd_m, supersample=model.supersample, haze=0.0,
                        blur_px=0.0, noise=0.0, bands=4, dtype="uint16", jpeg=False)
    fine_spec.validate()
    spec.validate()
    target_crs(spec.crs, tuple(spec.origin_lonlat))
    paths = _synth.sidecar_paths(path)
    stem = paths["tif"].name[: -len(paths["tif"].suffix)] if paths["tif"].suffix else paths["tif"].name
    if spec.cloud > 0:
        paths["cloudmask"] = paths["tif"].with_name(stem + ".cloudmask.tif")
    if reference is not None:
        paths["reference"] = Path(reference)
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise OutputError(f"{p} exists; not overwritten")
    scene = sensor_scene(build_scene(fine_spec))
    grid, fine = coarse_grid(scene, model)
    base_tags = _tags(spec, model, product)
    date = tile_date(spec)
    write_sensor_raster(scene, grid, fine, model, date, product, paths["tif"], tags=base_tags,
                        cloud_mask_path=paths.get("cloudmask"), workers=spec.workers, progress=progress)
    ref_date = None
    if reference is not None:
        ref_date = reference_date or random_reference_date(
            spec.seed, model, sun_azimuth_deg=spec.sun_azimuth_deg, sun_elevation_deg=spec.sun_elevation_deg)
        ref_scene = reference_scene(scene, ref_date, traffic_per_km=reference_traffic_per_km)
        write_sensor_raster(ref_scene, grid, fine, model, ref_date, product, paths["reference"],
                            tags=dict(base_tags, DESCRIPTION=base_tags["DESCRIPTION"] + " Reference date: "
                                      "the same road without the queue."),
                            workers=spec.workers, progress=progress)
    truth = make_truth(scene, grid)
    truth.gsd_m = model.gsd_m
    extra = {"sensor": model.as_dict(), "product": product, "render_gsd_m": model.fine_gsd_m,
             "scene_spec_note": "spec.gsd_m is the intermediate render pixel; gsd_m is the sensor's",
             "tile_date": _date_dict(date), **queue_lanes(truth, spec)}
    if ref_date is not None:
        extra["reference"] = {"path": str(paths["reference"]), **_date_dict(ref_date),
                              "traffic_per_km": reference_traffic_per_km}
    write_truth(truth, scene, paths["truth"], extra=extra)
    write_road(truth, scene, paths["road"])
    truth.paths = {k: str(v) for k, v in paths.items()}
    return truth


def _date_dict(d: DateModel) -> dict:
    return {"haze": d.haze, "gain": list(d.gain), "offset": list(d.offset),
            "shift_m": list(d.shift_m), "sun_azimuth_deg": d.sun_azimuth_deg,
            "sun_elevation_deg": d.sun_elevation_deg, "cloud": d.cloud, "label": d.label}


def _tags(spec, model: SensorModel, product: str) -> dict:
    desc = ("SYNTHETIC %s-like %s product made by queuemeasure.synth (seed %d); not a real "
            "image. Vehicles, road and surroundings are simulated. %s"
            % (model.name, product, spec.seed, spec.description)).strip()
    return {"SYNTHETIC": "yes", "DESCRIPTION": desc, "TIFFTAG_IMAGEDESCRIPTION": desc,
            "GENERATOR": "queuemeasure.synth.sensor", "SEED": str(spec.seed),
            "GSD_M": f"{model.gsd_m:g}", "RENDER_GSD_M": f"{model.fine_gsd_m:g}",
            "MTF_NYQUIST": f"{model.mtf_nyquist:g}", "PSF_SIGMA_PX": f"{model.psf_sigma_px:.4f}",
            "SNR": ",".join(f"{v:g}" for v in model.snr)}
