"""Scene simulator: georeferenced, satellite-like tiles of a road with a vehicle queue,
and the truth a correct measurement must find.

Examples
--------
>>> from queuemeasure.synth import SceneSpec, render_scene
>>> truth = render_scene(SceneSpec(seed=1, road_length_m=600, queue_length_m=250),
...                      "scene.tif")                                    # doctest: +SKIP
>>> round(truth.length_km, 3)                                            # doctest: +SKIP
0.249

Coarse sensors (Sentinel-2 10 m, PlanetScope 3 m) and a reference date without the queue:

>>> from queuemeasure.synth import render_sensor_scene
>>> truth = render_sensor_scene(SceneSpec(seed=1, road_length_m=3000, queue_length_m=1500),
...                             "s2.tif", sensor="sentinel2", product="l2a",
...                             reference="s2_reference.tif")             # doctest: +SKIP

Modules: :mod:`.spec` (the scene description), :mod:`.roads` (road geometry),
:mod:`.vehicles` (sizes, colours, traffic, the queue rule), :mod:`.scene` (layout and
truth), :mod:`.paint` (pixels of one block), :mod:`.render` (block-wise GeoTIFF writer
and sensor model), :mod:`.truth` (truth and road GeoJSON); for coarse sensors
:mod:`.sensor` (PSF, noise, dates), :mod:`.products` (TCI, L2A, reflectance) and
:mod:`.sensor_render` (block-wise coarse rendering, the reference date).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .scene import Scene, build_scene
from .spec import UPPER_LARS_CHECKPOINT, VLADIKAVKAZ, SceneSpec
from .truth import SceneTruth, VehicleTruth

__all__ = ["SceneSpec", "SceneTruth", "VehicleTruth", "Scene", "build_scene", "render_scene",
           "render_sensor_scene",
           "sidecar_paths", "UPPER_LARS_CHECKPOINT", "VLADIKAVKAZ"]


def sidecar_paths(path: str | os.PathLike) -> dict[str, Path]:
    """Paths of the files :func:`render_scene` writes for ``path`` ("x.tif" gives
    "x.tif", "x.truth.geojson" and "x.road.geojson")."""
    p = Path(path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return {"tif": p, "truth": p.with_name(stem + ".truth.geojson"),
            "road": p.with_name(stem + ".road.geojson")}


def render_scene(spec: SceneSpec, path: str | os.PathLike, *, overwrite: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> SceneTruth:
    """Render a synthetic scene to a GeoTIFF plus its truth and road GeoJSON files.

    Parameters
    ----------
    spec : SceneSpec
        The scene; the same spec gives the same pixels and truth.
    path : path-like
        Output GeoTIFF; ``<stem>.truth.geojson`` and ``<stem>.road.geojson`` are written
        beside it.
    overwrite : bool
        Replace existing outputs (otherwise raise :class:`~queuemeasure.errors.OutputError`).
    progress : callable, optional
        ``progress(done, total)`` after each rendered block.

    Returns
    -------
    SceneTruth

    Raises
    ------
    queuemeasure.errors.OptionError
        A spec value is out of range.
    queuemeasure.errors.OutputError
        An output exists (without ``overwrite``) or cannot be written.
    """
    from ..errors import OutputError
    from .render import write_raster
    from .truth import make_truth, write_road, write_truth

    spec.validate()
    from .grid import target_crs
    target_crs(spec.crs, tuple(spec.origin_lonlat))   # fail early on a bad CRS
    paths = sidecar_paths(path)
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise OutputError(f"{p} exists; not overwritten")
    scene = build_scene(spec)
    grid = write_raster(scene, paths["tif"], progress=progress)
    truth = make_truth(scene, grid)
    write_truth(truth, scene, paths["truth"])
    write_road(truth, scene, paths["road"])
    truth.paths = {k: str(v) for k, v in paths.items()}
    return truth


def __getattr__(name: str):
    # the coarse-sensor renderer is imported on first use (it pulls in scipy and rasterio)
    if name == "render_sensor_scene":
        from .sensor_render import render_sensor_scene
        return render_sensor_scene
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
