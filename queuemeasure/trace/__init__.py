"""Trace a road's centreline on the image, or snap a rough road onto it.

Coarse to fine, so that memory and time follow the road, not the tile:

1. :mod:`.coarse` — a decimated read (``out_shape``, average resampling, overviews when
   present; 1 m cells for windows of up to about 1 km², coarser beyond) of the bounding
   window of the given points plus a margin, a road-likelihood cost map (distance to the
   road's tone and texture, averaged along the best of 12 orientations of straight lines
   of 12, 24 and 48 m, so that long uniform bands are cheap, hairpins too, and vehicles or
   trees on them do not break them; plain terrain far dearer than any road) and a
   least-cost route (:class:`skimage.graph.MCP_Geometric`).
2. :mod:`.fine` — the smoothed route is straightened into a narrow strip
   (:func:`queuemeasure.corridor.iter_strips` reads only the corridor's blocks); per
   station the carriageway band (road tone between two edges) is scored at every
   offset and a Viterbi pass along the road picks a smooth chain of offsets. This is
   done twice, the second time along the first result, in a narrower strip and with
   the tone re-estimated locally.
3. :mod:`.smooth` — Gaussian smoothing along arc length: a centreline, not a staircase.

:func:`snap_road` runs step 2 on a road the user gives (e.g. OpenStreetMap offset by
tens of metres), after finding the road's tone beside it (:func:`.fine.discover_tone`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import shapely
from shapely.geometry import LineString

from .. import geo
from ..corridor import BlockSampler, Scaler
from ..errors import OptionError, RoadError
from ..raster import choose_bands, ground_pixel_size, open_tile
from ..road import RoadPath, _check_lonlat, prepare_road
from . import coarse, fine
from .smooth import dedupe, smooth_polyline
from .tone import RoadTone, fit_stretch, sample_tone

__all__ = ["trace_road", "snap_road", "feature", "TraceInfo", "DEFAULT_MAX_PIXELS"]

log = logging.getLogger(__name__)

#: Largest coarse grid (cells): about 4 M cells keep the route search under ~10 s and
#: ~300 MB whatever the tile's size.
DEFAULT_MAX_PIXELS = 4_000_000
#: Radius (metres) around each point in which the road's tone is sampled.
TONE_RADIUS_M = 3.0
#: Smallest Gaussian smoothing (metres) of the coarse route before the fine pass: enough
#: to undo the grid's staircase, little enough not to cut a hairpin of 17 m radius.
ROUGH_SMOOTH_M = 5.0


@dataclass
class TraceInfo:
    """What a trace found, for logs and tests: coarse cell size (m), carriageway width
    (m), share of the road where the band was clearly seen, and the blocks read."""

    cell_m: float = 0.0
    width_m: float = 0.0
    seen_share: float = 0.0
    blocks_read: int = 0
    coarse_shape: tuple[int, int] = (0, 0)


def _step_for(gsd: float, step_m: float | None) -> float:
    if step_m is not None:
        if not np.isfinite(step_m) or not 0.05 <= step_m <= 5.0:
            raise OptionError(f"step must be within 0.05..5 m, not {step_m}")
        return float(step_m)
    return float(max(gsd, 0.5))


def _place(
    sampler: BlockSampler, path: RoadPath, raster_crs: Any, scaler: Scaler, tone: RoadTone,
    *, step: float, half_width: float, max_slope: float, info: TraceInfo,
) -> np.ndarray:
    """Two fine passes; returns the smoothed centreline in ``path``'s local frame."""
    first = fine.centre_on_road(sampler, path, raster_crs, scaler, tone, step=step,
                                half_width=half_width, max_slope=max_slope)
    log.debug("fine pass 1: width %.1f m, band seen on %.0f%%", first.width_m, 100 * first.seen_share)
    xy = smooth_polyline(first.xy, 2.0, step=1.0)
    path2 = RoadPath.from_xy(xy, path.local_crs)
    second = fine.centre_on_road(
        sampler, path2, raster_crs, scaler, tone, step=step,
        half_width=first.width_m / 2.0 + 6.0, width_m=first.width_m, local_tone=True,
        centre_band_m=max(1.0, first.width_m / 2.0 - 1.0), max_slope=0.3,
    )
    info.width_m, info.seen_share = second.width_m, second.seen_share
    info.blocks_read = sampler.blocks_read
    out = smooth_polyline(second.xy, 1.5, step=1.0)
    return out


def _to_lonlat(xy: np.ndarray, local_crs: Any) -> LineString:
    line = shapely.simplify(LineString(dedupe(xy)), 0.02)
    c = np.asarray(line.coords)
    lon, lat = geo.transformer(local_crs, geo.WGS84).transform(c[:, 0], c[:, 1])
    return LineString(np.column_stack([lon, lat]))


def trace_road(
    tile: Any,
    start: Sequence[float],
    end: Sequence[float],
    via: Sequence[Sequence[float]] = (),
    *,
    bands: Sequence[int] | None = None,
    margin_m: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    step_m: float | None = None,
    info: TraceInfo | None = None,
) -> LineString:
    """Trace the road's centreline on ``tile`` from ``start`` through ``via`` to ``end``.

    Parameters
    ----------
    tile : str, os.PathLike or rasterio dataset
        A GeoTIFF (any CRS) or a URL GDAL reads.
    start, end : (lon, lat)
        Two points on the road, WGS84. The centreline begins and ends beside them.
    via : sequence of (lon, lat)
        Points the road passes, in order (to pick one road where several join).
    bands : sequence of int, optional
        1-based bands (default: RGB by colour interpretation, or band 1).
    margin_m : float, optional
        Search this far beyond the points' bounding box (default: 30 % of the points'
        span, within 150..2000 m).
    max_pixels : int
        Largest coarse grid; the coarse cell grows with the area searched.
    step_m : float, optional
        Ground sampling of the fine pass (default: the pixel size, at least 0.5 m).
    info : TraceInfo, optional
        Filled with diagnostics.

    Returns
    -------
    shapely.LineString
        The centreline in WGS84 lon/lat, from start to end.

    Raises
    ------
    queuemeasure.errors.InputError
        A point is invalid or off the tile, or no route joins the points.

    Examples
    --------
    >>> import queuemeasure as qm
    >>> line = qm.trace_road("tile.tif", (44.6310, 42.7680), (44.6342, 42.7771))  # doctest: +SKIP
    >>> line.geom_type  # doctest: +SKIP
    'LineString'
    """
    info = info if info is not None else TraceInfo()
    pts = [_check_lonlat(start, "--from point"), *(_check_lonlat(v, "--via point") for v in via),
           _check_lonlat(end, "--to point")]
    if max_pixels < 10_000:
        raise OptionError(f"max_pixels must be at least 10000, not {max_pixels}")
    ll = np.array(pts, dtype=float)
    local = geo.local_metric_crs(*ll[0])
    pxy = np.column_stack(geo.transformer(geo.WGS84, local).transform(ll[:, 0], ll[:, 1]))
    span = float(np.hypot(*(pxy.max(axis=0) - pxy.min(axis=0))))
    if span < 5.0:
        raise OptionError("the from and to points are less than 5 m apart")
    margin = float(margin_m) if margin_m is not None else float(np.clip(0.3 * span, 150.0, 2000.0))
    with open_tile(tile) as ds:
        band_idx = choose_bands(ds, bands)
        sampler = BlockSampler(ds, band_idx)
        x, y = geo.transformer(geo.WGS84, ds.crs).transform(ll[:, 0], ll[:, 1])
        rows, cols = sampler.pixel_coords(np.asarray(x), np.asarray(y))
        outside = ~((rows >= -0.5) & (rows < ds.height - 0.5) & (cols >= -0.5) & (cols < ds.width - 0.5))
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise RoadError(f"point {ll[k, 0]:.6f},{ll[k, 1]:.6f} lies outside the tile "
                            "(give LON,LAT in that order)")
        cx, cy = float(np.mean(x)), float(np.mean(y))
        pixel_m = ground_pixel_size(ds, (cx, cy))
        gsd = float(np.sqrt(pixel_m[0] * pixel_m[1]))
        step = _step_for(gsd, step_m)
        rc = np.column_stack([rows, cols])
        grid = coarse.plan_grid((ds.height, ds.width), rc, pixel_m, margin_m=margin,
                                max_pixels=max_pixels)
        coarse.read_grid(ds, band_idx, grid)
        assert grid.image is not None and grid.valid is not None
        lo, hi = fit_stretch(grid.image, grid.valid)
        tone = sample_tone(ds, band_idx, rc, (TONE_RADIUS_M / pixel_m[1], TONE_RADIUS_M / pixel_m[0]),
                           lo, hi)
        cells = list(zip(*grid.to_cells(rows, cols)))
        cost = coarse.cost_map(grid, lo, hi, tone, cells)
        grid.image = grid.rough = None  # free the coarse pixels before routing
        cell_path = coarse.route(cost, cells, sampling=grid.cell_m)
        del cost
        info.cell_m = float(np.sqrt(grid.cell_m[0] * grid.cell_m[1]))
        info.coarse_shape = (grid.height, grid.width)
        pr, pc = grid.to_pixels(cell_path[:, 0], cell_path[:, 1])
        t = ds.transform
        gx = t.a * (pc + 0.5) + t.b * (pr + 0.5) + t.c
        gy = t.d * (pc + 0.5) + t.e * (pr + 0.5) + t.f
        lx, ly = geo.transformer(ds.crs, local).transform(gx, gy)
        rough = np.column_stack([lx, ly])
        rough[0], rough[-1] = pxy[0], pxy[-1]
        rough = smooth_polyline(rough, max(ROUGH_SMOOTH_M, 3.0 * info.cell_m), step=1.0)
        path = RoadPath.from_xy(rough, local)
        scaler = Scaler(ds.dtypes[band_idx[0] - 1])
        scaler.lo, scaler.hi = lo, hi
        half = max(12.0, 3.0 * info.cell_m + 8.0)
        xy = _place(sampler, path, ds.crs, scaler, tone, step=step, half_width=half,
                    max_slope=fine.MAX_SLOPE, info=info)
    log.info("traced %.0f m: coarse cell %.1f m (%d x %d), width %.1f m, band seen on %.0f%%",
             geo.GEOD.geometry_length(_to_lonlat(xy, local)), info.cell_m, *info.coarse_shape,
             info.width_m, 100 * info.seen_share)
    return _to_lonlat(xy, local)


def snap_road(
    tile: Any,
    road: Any,
    *,
    max_shift_m: float = 30.0,
    road_crs: Any = None,
    bands: Sequence[int] | None = None,
    step_m: float | None = None,
    info: TraceInfo | None = None,
) -> LineString:
    """Move a rough road (e.g. OpenStreetMap, offset from the imagery) onto the road in
    the image.

    Parameters
    ----------
    tile : str, os.PathLike or rasterio dataset
    road : str, os.PathLike, dict or shapely geometry
        The rough centreline (see :func:`queuemeasure.road.load_road`), WGS84 unless
        ``road_crs`` says otherwise.
    max_shift_m : float
        Largest lateral distance between the rough road and the real one.
    road_crs, bands, step_m, info
        As for :func:`trace_road`.

    Returns
    -------
    shapely.LineString
        The snapped centreline in WGS84 lon/lat, in the rough road's direction.
    """
    info = info if info is not None else TraceInfo()
    if not np.isfinite(max_shift_m) or not 1.0 <= max_shift_m <= 200.0:
        raise OptionError(f"max shift must be within 1..200 m, not {max_shift_m}")
    sides = prepare_road(road, crs=road_crs)
    path0 = sides.sides[0]
    rough = smooth_polyline(path0.xy, 4.0, step=1.0)
    path = RoadPath.from_xy(rough, path0.local_crs)
    with open_tile(tile) as ds:
        band_idx = choose_bands(ds, bands)
        sampler = BlockSampler(ds, band_idx)
        mid = path.lonlat_at(path.length_m / 2.0)
        mx, my = geo.transformer(geo.WGS84, ds.crs).transform(mid[0], mid[1])
        pixel_m = ground_pixel_size(ds, (mx, my))
        gsd = float(np.sqrt(pixel_m[0] * pixel_m[1]))
        if not np.isfinite(gsd) or gsd <= 0:
            raise RoadError("the road does not map onto the tile's grid")
        step = _step_for(gsd, step_m)
        scaler = Scaler(ds.dtypes[band_idx[0] - 1])
        half = max_shift_m + 8.0
        tone = fine.discover_tone(sampler, path, ds.crs, scaler, step=step, half_width=half)
        if not scaler.fitted:
            raise RoadError("the road lies on no valid pixels of the tile")
        xy = _place(sampler, path, ds.crs, scaler, tone, step=step, half_width=half,
                    max_slope=fine.MAX_SLOPE, info=info)
    return _to_lonlat(xy, path.local_crs)


def feature(line: LineString, properties: dict | None = None, precision: int | None = None) -> dict:
    """A GeoJSON Feature (RFC 7946, WGS84) of a traced line, with its geodesic length."""
    from ..export import round_coords

    coords = np.asarray(line.coords)
    props = {"length_m": float(geo.geodesic_length(coords[:, 0], coords[:, 1]))}
    props.update(properties or {})
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "LineString", "coordinates": round_coords(coords, precision)}}
