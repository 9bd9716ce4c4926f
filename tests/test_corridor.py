"""The corridor is read block by block and straightened right in every CRS."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from queuemeasure import geo
from queuemeasure.corridor import BlockSampler, Scaler, build_strip
from queuemeasure.raster import ground_pixel_size
from queuemeasure.road import prepare_road


def _strip(scene, half_width=8.0):
    sides = prepare_road(str(scene.road_path), head=scene.head)
    path = sides.sides[0]
    with rasterio.open(scene.path) as ds:
        sampler = BlockSampler(ds, [1, 2, 3])
        step = 0.5
        n = int(path.chord_m[-1] / step)
        strip = build_strip(sampler, path, ds.crs, Scaler("uint8"), chord_start=0.0, n_rows=n,
                            step_m=step, half_width_m=half_width)
        return strip, sampler


@pytest.mark.parametrize("crs", ["utm", "EPSG:4326", "EPSG:3857"])
def test_painted_vehicles_land_at_their_stations(curve_scenes, crs):
    scene = curve_scenes[crs]
    strip, _ = _strip(scene)
    assert strip.valid.mean() > 0.99
    col = int(np.floor((scene.offsets[0] + strip.half_width_m) / strip.step_m))
    profile = np.abs(strip.image[:, col, :] - 0.33 * 254 / 255).max(axis=1) > 0.08
    stations = strip.station_at_row(np.arange(strip.n_rows) + 0.5)
    truth = np.zeros_like(profile)
    for (a, b), o in zip(scene.intervals, scene.offsets):
        if o < 0:
            truth |= (stations >= a) & (stations < b)
    # ignore the pixel at each bumper (area-averaged edges)
    edge = np.zeros_like(truth)
    for a, b in scene.intervals:
        edge |= (np.abs(stations - a) < 0.6) | (np.abs(stations - b) < 0.6)
    agree = (profile == truth)[~edge].mean()
    assert agree > 0.985, agree


def test_lateral_offset_is_right(curve_scenes):
    strip, _ = _strip(curve_scenes["EPSG:4326"])
    # grass starts at |o| = 3.8 m: the road band in the strip is 7.6 m wide and centred
    green = strip.image[..., 1] - strip.image[..., 0] > 0.05
    road_cols = np.flatnonzero(green.mean(axis=0) < 0.5)
    offs = strip.offset_at_col(road_cols + 0.5)
    assert offs.min() == pytest.approx(-3.8, abs=0.5)
    assert offs.max() == pytest.approx(3.8, abs=0.5)


def test_ground_pixel_size_in_every_crs(curve_scenes):
    for crs, scene in curve_scenes.items():
        with rasterio.open(scene.path) as ds:
            dx, dy = ground_pixel_size(ds)
        assert dx == pytest.approx(0.5, rel=0.01), crs
        assert dy == pytest.approx(0.5, rel=0.01), crs


def test_only_corridor_blocks_are_read(tmp_path):
    """A 40 000 x 40 000 px sparse tile: a 1 km road reads a handful of blocks."""
    head = (44.631, 42.768)
    utm = geo.utm_crs(*head)
    x0, y0 = geo.transformer(4326, utm).transform(*head)
    path = tmp_path / "huge.tif"
    prof = dict(driver="GTiff", width=40000, height=40000, count=3, dtype="uint8", crs=utm.to_wkt(),
                transform=from_origin(x0 - 10000, y0 + 10000, 0.5, 0.5), tiled=True,
                blockxsize=512, blockysize=512, compress="deflate", sparse_ok=True, nodata=0)
    with rasterio.open(path, "w", **prof):
        pass
    lon1, lat1 = geo.transformer(utm, 4326).transform(x0 + 700, y0 + 700)
    road = {"type": "LineString", "coordinates": [list(head), [lon1, lat1]]}
    sides = prepare_road(road)
    with rasterio.open(path) as ds:
        sampler = BlockSampler(ds, [1, 2, 3])
        p = sides.sides[0]
        build_strip(sampler, p, ds.crs, Scaler("uint8"), chord_start=0.0,
                    n_rows=int(p.chord_m[-1] / 0.5), step_m=0.5, half_width_m=10)
        total = sampler.nbx * sampler.nby
    # a 1 km diagonal crosses ~ 2 * 1000 / 256 blocks; the tile has 6 241
    assert 4 <= sampler.blocks_read <= 16, sampler.blocks_read
    assert sampler.blocks_read < total / 300


def test_local_frames_reproject_through_wgs84_with_the_datum_shift():
    # the road's local frame holds WGS84 positions: on a Pulkovo 1942 / Gauss-Kruger zone 8
    # raster (Soviet maps and orthophotos of the Caucasus) its origin must land where the
    # head does through WGS84 -> raster, not 104 m away (PROJ, asked directly, takes the
    # frame's datum as unknown and shifts nothing)
    import math

    from pyproj import CRS, Transformer

    from queuemeasure import geo

    lon, lat = 44.631, 42.77
    local = geo.local_metric_crs(lon, lat)
    x, y = geo.transformer(local, "EPSG:28408").transform(0.0, 0.0)
    hx, hy = Transformer.from_crs(4326, 28408, always_xy=True).transform(lon, lat)
    assert math.hypot(x - hx, y - hy) < 1e-3
    dx, dy = Transformer.from_crs(local, CRS.from_epsg(28408), always_xy=True).transform(0.0, 0.0)
    assert math.hypot(dx - hx, dy - hy) > 50.0
    bx, by = geo.transformer("EPSG:28408", local).transform(hx, hy)
    assert math.hypot(bx, by) < 1e-3
    # on WGS84-based rasters nothing changes (to a nanometre)
    pts = ([0.0, 1500.0, -20000.0], [0.0, -700.0, 30000.0])
    for crs in ("EPSG:4326", "EPSG:32638", "EPSG:3857"):
        got = geo.transformer(local, crs).transform(*pts)
        ref = Transformer.from_crs(local, CRS.from_user_input(crs), always_xy=True).transform(*pts)
        scale = 1e-14 if crs == "EPSG:4326" else 1e-9
        assert max(abs(a - b) for a, b in zip(list(got[0]) + list(got[1]), list(ref[0]) + list(ref[1]))) < scale * 1e3
