"""End to end: painted scenes of known truth, in every CRS, cropped and truncated."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

import queuemeasure as qm
from scenes import paint_scene


@pytest.fixture(scope="module")
def results(curve_scenes):
    return {crs: qm.measure(s.path, s.road_path, head=s.head) for crs, s in curve_scenes.items()}


@pytest.mark.parametrize("crs", ["utm", "EPSG:4326", "EPSG:3857"])
def test_length_within_one_percent(curve_scenes, results, crs):
    truth = curve_scenes[crs].length_m / 1000.0
    r = results[crs]
    assert r.length_km == pytest.approx(truth, rel=0.01)
    lo, hi = r.length_km_range
    assert lo <= r.length_km <= hi
    assert not r.truncated
    assert r.direction == "forward"


# (0.5 m scenes: the learned detector's 0.5 m model counts the painted one-tone trucks
# once; the 0.25 m model used to split them, MODEL.md)
@pytest.mark.parametrize("detector", ["rules", "learned"])
@pytest.mark.parametrize("crs", [
    "utm",
    "EPSG:4326",
    "EPSG:3857",
])
def test_vehicle_count_within_ten_percent(curve_scenes, crs, detector):
    s = curve_scenes[crs]
    r = qm.measure(s.path, s.road_path, head=s.head, detector=detector)
    assert abs(r.vehicle_count - s.count) <= 0.1 * s.count


def test_same_scene_in_3857_and_utm_agree(results):
    assert results["EPSG:3857"].length_km == pytest.approx(results["utm"].length_km, rel=0.005)
    assert results["EPSG:4326"].length_km == pytest.approx(results["utm"].length_km, rel=0.005)


def test_result_is_georeferenced(curve_scenes, results):
    r = results["utm"]
    gj = r.to_geojson()
    roles = [f["properties"]["role"] for f in gj["features"]]
    assert roles.count("queue") == 1 and roles.count("head") == 1 and roles.count("tail") == 1
    assert roles.count("vehicle") == len(r.vehicles)
    # the head is where we put it, the tail lies on the road near the truth tail
    np.testing.assert_allclose(r.head_lonlat, curve_scenes["utm"].head, atol=1e-6)
    d = r.to_dict()
    for key in ("length_km", "length_km_range", "vehicle_count", "head_lonlat", "tail_lonlat",
                "truncated", "occluded_km", "max_gap_m", "gsd_m", "raster_crs", "road_km_searched"):
        assert key in d
    json.dumps(d)
    assert d["raster_crs"] == "EPSG:32638"
    assert d["gsd_m"] == pytest.approx(0.5, rel=0.01)
    assert d["road_km_searched"] == pytest.approx(0.5, rel=0.01)


def _crop(src, dst, window):
    with rasterio.open(src) as ds:
        prof = ds.profile.copy()
        data = ds.read(window=window)
        prof.update(width=window.width, height=window.height, transform=ds.window_transform(window))
    with rasterio.open(dst, "w", **prof) as out:
        out.write(data)


def test_crop_holding_the_queue_gives_the_same_length(curve_scenes, results, tmp_path):
    scene = curve_scenes["utm"]
    with rasterio.open(scene.path) as ds:
        # cut away the far end of the road (beyond the queue) and a margin on the sides
        r0 = int(ds.height * 0.30)
        win = Window(7, r0, ds.width - 20, ds.height - r0 - 5)
    crop = tmp_path / "crop.tif"
    _crop(scene.path, crop, win)
    r = qm.measure(crop, scene.road_path, head=scene.head)
    assert r.length_km == pytest.approx(results["utm"].length_km, rel=0.002)
    assert r.vehicle_count == results["utm"].vehicle_count


def test_queue_running_off_the_tile_is_truncated(scenes_dir):
    scene = paint_scene(scenes_dir, crs="utm", road_len=500, queue_len=400, extent_m=250,
                        name="cut", seed=3)
    r = qm.measure(scene.path, scene.road_path, head=scene.head)
    assert r.truncated
    assert r.truncation_reason == "image_edge"
    # the footprint ends 250 m along the road plus a 30 m margin: the visible queue is
    # 250-285 m of the 400 m painted
    assert 0.245 <= r.length_km <= 0.285
    assert "lower bound" in r.summary()


def test_empty_road_is_a_result(scenes_dir):
    scene = paint_scene(scenes_dir, crs="utm", road_len=300, queue_len=0, name="empty", seed=4)
    r = qm.measure(scene.path, scene.road_path, head=scene.head)
    assert r.length_km < 0.0001
    assert r.vehicle_count == 0
    assert r.tail_lonlat is None


def test_head_in_the_middle_searches_both_sides(curve_scenes, results):
    scene = curve_scenes["utm"]
    # reverse the road: the head is now its last vertex; the queue is found "backward"
    road = json.loads(scene.road_path.read_text())
    road["geometry"]["coordinates"] = road["geometry"]["coordinates"][::-1]
    r = qm.measure(scene.path, road, head=scene.head)
    assert r.direction == "backward"
    assert r.length_km == pytest.approx(results["utm"].length_km, rel=0.002)


def test_uint16_measures_like_uint8(scenes_dir):
    kw = dict(crs="utm", road_len=300, queue_len=150, seed=5)
    s8 = paint_scene(scenes_dir, name="u8", **kw)
    s16 = paint_scene(scenes_dir, name="u16", dtype="uint16", **kw)
    r8 = qm.measure(s8.path, s8.road_path)
    r16 = qm.measure(s16.path, s16.road_path)
    assert r16.length_km == pytest.approx(r8.length_km, abs=0.001)
    assert r16.vehicle_count == r8.vehicle_count


@pytest.mark.parametrize("detector", [
    pytest.param("rules", marks=pytest.mark.xfail(
        strict=True, reason="the scene's last vehicle has the road's brightness and is missed by "
        "the rule detector, in uint8 just as in uint16 (4 % short)")),
    "learned",
])
def test_uint16(scenes_dir, detector):
    scene = paint_scene(scenes_dir, crs="utm", road_len=300, queue_len=150, dtype="uint16", name="u16", seed=5)
    r = qm.measure(scene.path, scene.road_path, head=scene.head, detector=detector)
    assert r.length_km == pytest.approx(scene.length_m / 1000, rel=0.03)


@pytest.mark.xfail(strict=True, reason="in one band the last vehicle has the road's brightness "
                   "and only a faint windscreen band shows; it is missed (4 % short)")
def test_panchromatic(scenes_dir):
    scene = paint_scene(scenes_dir, crs="utm", road_len=300, queue_len=150, bands=1, name="pan", seed=5)
    r = qm.measure(scene.path, scene.road_path, head=scene.head)
    assert r.length_km == pytest.approx(scene.length_m / 1000, rel=0.03)
