"""Rendering a scene as a coarse sensor sees it (Sentinel-2, PlanetScope), with its
reference date, truth and road files: :func:`render_sensor_scene`.

The scene is laid out once (:func:`.scene.build_scene`, at the sensor's intermediate
pixel) and painted block by block onto the sensor grid (:mod:`.sensor_raster`); a 20 km
road at 10 m paints about 1/16 of the samples the same road costs at 0.5 m.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .scene import Scene, _footprints
from .sensor import DateModel, SensorModel
from .sensor_raster import coarse_grid, write_sensor_raster
from .vehicles import draw_vehicle

__all__ = ["render_sensor_scene", "sensor_scene", "reference_scene", "coarse_grid",
           "write_sensor_raster", "queue_lanes"]


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
                        reference_crs: str | None = None, reference_sensor: str | SensorModel | None = None,
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
        Also write the reference date here (same product).
    reference_date : DateModel, optional
        The reference's conditions (default: drawn from the seed by
        :func:`.sensor.random_reference_date`).
    reference_traffic_per_km : float
        Other vehicles on the reference date.
    reference_crs : str, optional
        The reference's CRS ("utm", "EPSG:3857", ...; default: the tile's grid).
    reference_sensor : str or SensorModel, optional
        The reference's sensor (default: the tile's, with the same overrides).
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
    from .grid import target_crs
    from .products import get_product
    from .scene import build_scene
    from .sensor import get_sensor, tile_date
    from .truth import make_truth, write_road, write_truth

    model = get_sensor(sensor, **sensor_overrides)
    ref_model = model if reference_sensor is None else get_sensor(reference_sensor)
    get_product(product, model)
    fine_spec = replace(spec, gsd_m=model.fine_gsd_m, supersample=model.supersample, haze=0.0,
                        blur_px=0.0, noise=0.0, bands=4, dtype="uint16", jpeg=False)
    fine_spec.validate()
    spec.validate()
    for crs in (spec.crs, reference_crs):
        if crs is not None:
            target_crs(crs, tuple(spec.origin_lonlat))
    paths = _output_paths(spec, path, reference, overwrite)
    scene = sensor_scene(build_scene(fine_spec))
    grid, fine = coarse_grid(scene, model)
    base_tags = _tags(spec, model, product)
    date = tile_date(spec)
    write_sensor_raster(scene, grid, fine, model, date, product, paths["tif"], tags=base_tags,
                        cloud_mask_path=paths.get("cloudmask"), workers=spec.workers, progress=progress)
    extra = {"sensor": model.as_dict(), "product": product, "render_gsd_m": model.fine_gsd_m,
             "scene_spec_note": "spec.gsd_m is the intermediate render pixel; gsd_m is the sensor's",
             "tile_date": _date_dict(date)}
    if reference is not None:
        ref_date = _write_reference(scene, ref_model, product, paths["reference"], reference_date,
                                    reference_traffic_per_km, reference_crs, progress)
        extra["reference"] = {"path": os.path.relpath(paths["reference"], paths["truth"].parent),
                              **_date_dict(ref_date), "traffic_per_km": reference_traffic_per_km,
                              "crs": reference_crs or spec.crs, "sensor": ref_model.name,
                              "gsd_m": ref_model.gsd_m}
    truth = make_truth(scene, grid)
    truth.gsd_m = model.gsd_m
    extra.update(queue_lanes(truth, spec))
    write_truth(truth, scene, paths["truth"], extra=extra)
    write_road(truth, scene, paths["road"])
    truth.paths = {k: str(v) for k, v in paths.items()}
    return truth


def _output_paths(spec, path, reference, overwrite: bool) -> dict:
    """Every file :func:`render_sensor_scene` writes; refuse existing ones without
    ``overwrite``."""
    from .. import synth as _synth
    from ..errors import OutputError

    paths = _synth.sidecar_paths(path)
    tif = paths["tif"]
    stem = tif.name[: -len(tif.suffix)] if tif.suffix else tif.name
    if spec.cloud > 0:
        paths["cloudmask"] = tif.with_name(stem + ".cloudmask.tif")
    if reference is not None:
        paths["reference"] = Path(reference)
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise OutputError(f"{p} exists; not overwritten")
    return paths


def _write_reference(scene: Scene, model: SensorModel, product: str, path, date, traffic_per_km: float,
                     crs: str | None, progress) -> DateModel:
    """Render the reference date (its own grid when ``crs`` or the sensor differ)."""
    from .sensor import random_reference_date

    spec = scene.spec
    date = date or random_reference_date(spec.seed, model, sun_azimuth_deg=spec.sun_azimuth_deg,
                                         sun_elevation_deg=spec.sun_elevation_deg)
    ref_scene = reference_scene(scene, date, traffic_per_km=traffic_per_km)
    if model.fine_gsd_m != spec.gsd_m or model.supersample != spec.supersample:
        ref_scene = replace(ref_scene, spec=replace(ref_scene.spec, gsd_m=model.fine_gsd_m,
                                                    supersample=model.supersample))
    if crs is not None:
        ref_scene = replace(ref_scene, spec=replace(ref_scene.spec, crs=crs))
    grid, fine = coarse_grid(ref_scene, model)
    tags = _tags(spec, model, product)
    tags["DESCRIPTION"] += " Reference date: the same road without the queue."
    write_sensor_raster(ref_scene, grid, fine, model, date, product, path, tags=tags,
                        workers=spec.workers, progress=progress)
    return date


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
