"""The reference resampled onto the tile's pixels (queuemeasure.coregister)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from queuemeasure.coregister import (ReferenceOnTile, clip_level, clipped_samples, cubic_sample,
                                     tile_pixels)
from queuemeasure.corridor import BlockSampler, Scaler, build_strip, strip_points
from queuemeasure.road import prepare_road


def _mem(arr: np.ndarray, *, transform=None, crs="EPSG:32638", nodata=None, block=16):
    """An in-memory tiled GeoTIFF of ``arr`` (bands, rows, cols)."""
    mf = MemoryFile()
    nb, h, w = arr.shape
    with mf.open(driver="GTiff", width=w, height=h, count=nb, dtype=arr.dtype, crs=crs,
                 transform=transform or from_origin(500000, 4700000, 10, 10), tiled=True,
                 blockxsize=block, blockysize=block, nodata=nodata) as ds:
        ds.write(arr)
    return mf


def test_pixels_reads_whole_pixels_and_knows_the_edges():
    a = np.arange(40 * 40, dtype=np.float32).reshape(1, 40, 40)
    with _mem(a).open() as ds:
        s = BlockSampler(ds, [1])
        v, ok = s.pixels(np.array([0, 17, 39, -1, 40]), np.array([0, 33, 39, 5, 5]))
    assert ok.tolist() == [True, True, True, False, False]
    assert v[:3, 0].tolist() == [0.0, 17 * 40 + 33, 39 * 40 + 39]
    assert (v[3:] == 0).all()


def test_cubic_sample_is_exact_on_pixels_and_on_quadratics():
    r, c = np.mgrid[0:48, 0:48].astype(np.float32)
    quad = (0.3 * r + 0.7 * c + 0.01 * r * r - 0.02 * c * c + 5)[None]
    with _mem(quad).open() as ds:
        s = BlockSampler(ds, [1])
        # on pixel centres: the pixels themselves
        rr, cc = np.array([3.0, 20.0, 31.0]), np.array([4.0, 16.0, 30.0])
        v, ok, _ = cubic_sample(s, rr, cc)
        assert ok.all()
        np.testing.assert_allclose(v[:, 0], quad[0, [3, 20, 31], [4, 16, 30]], rtol=1e-6)
        # in between, across block edges: Keys' kernel reproduces quadratics
        rng = np.random.default_rng(1)
        rr, cc = rng.uniform(2, 45, 200), rng.uniform(2, 45, 200)
        v, ok, _ = cubic_sample(s, rr, cc)
        assert ok.all()
        truth = 0.3 * rr + 0.7 * cc + 0.01 * rr * rr - 0.02 * cc * cc + 5
        np.testing.assert_allclose(v[:, 0], truth, rtol=1e-4)


def test_saturated_pixels_are_flagged_and_invalid():
    a = np.full((3, 32, 32), 100, np.uint8)
    a[1, 10, 10] = 255  # one band saturated in one pixel
    with _mem(a).open() as ds:
        s = BlockSampler(ds, [1, 2, 3])
        v, ok, sat = cubic_sample(s, np.array([10.4, 9.6, 14.0]), np.array([10.4, 10.3, 14.0]),
                                  clip=255.0)
        px = tile_pixels(np.array([[10.4, 12.5]]), np.array([[9.5, 12.5]]))
        assert clipped_samples(s, px, clip_level(ds.dtypes[0])).tolist() == [True, False]
    assert sat.tolist() == [True, True, False]
    assert ok.tolist() == [False, False, True]
    assert clip_level("float32") is None and clip_level("uint16") == 65535.0


def test_cubic_sample_falls_back_to_bilinear_by_nodata_and_edges():
    a = np.full((1, 32, 32), 10.0, np.float32)
    a[0, 10, 10] = -9999.0  # a nodata pixel
    a[0, :, 20:] = 20.0
    with _mem(a, nodata=-9999.0).open() as ds:
        s = BlockSampler(ds, [1])
        # next to the nodata pixel, nearest pixel valid: bilinear over the valid ones
        v, ok, _ = cubic_sample(s, np.array([11.2, 10.2, 0.2, 31.4, np.nan]),
                                np.array([11.2, 10.1, 0.3, 5.0, 3.0]))
    assert ok.tolist() == [True, False, True, True, False]
    np.testing.assert_allclose(v[[0, 2, 3], 0], 10.0, rtol=1e-6)


@pytest.fixture()
def utm_strip(curve_scenes):
    scene = curve_scenes["utm"]
    path = prepare_road(str(scene.road_path), head=scene.head).sides[0]
    return scene, path


def _tile_and_pixels(ds, path, n_rows, step, half):
    sampler = BlockSampler(ds, [1, 2, 3])
    strip = build_strip(sampler, path, ds.crs, Scaler("uint8"), chord_start=0.0, n_rows=n_rows,
                        step_m=step, half_width_m=half)
    rows, cols = strip_points(sampler, path, ds.crs, chord_start=0.0, n_rows=n_rows,
                              step_m=step, half_width_m=half)
    return sampler, strip, tile_pixels(rows, cols)


def _reference_strip(tile_path, ref_path, path):
    """The tile's strip along ``path`` and the reference's on the tile's pixels."""
    step, half = 0.25, 8.0
    n = int(path.chord_m[-1] / step)
    with rasterio.open(tile_path) as ds, rasterio.open(ref_path) as rds:
        sampler, strip, px = _tile_and_pixels(ds, path, n, step, half)
        on = ReferenceOnTile(sampler, ds.crs, BlockSampler(rds, [1, 2, 3]), rds.crs,
                             Scaler("uint8"), tile_gsd=0.5, ref_gsd=0.5)
        ref, clipped = on.strip_like(strip, px)
    return strip, ref, clipped


def test_the_tile_as_its_own_reference_gives_its_own_strip(utm_strip):
    scene, path = utm_strip
    strip, ref, clipped = _reference_strip(scene.path, scene.path, path)
    assert ref.image.shape == strip.image.shape
    assert clipped.shape == strip.valid.shape
    ok = strip.valid & ref.valid
    assert ok.mean() > 0.99
    # the same pixels, the same bilinear weights: the same strip
    np.testing.assert_allclose(ref.image[ok], strip.image[ok], atol=1e-6)


def test_a_reference_in_another_crs_lands_on_the_tile(utm_strip, curve_scenes):
    scene, path = utm_strip
    strip, ref, _ = _reference_strip(scene.path, curve_scenes["EPSG:4326"].path, path)
    ok = strip.valid & ref.valid
    assert ok.mean() > 0.95
    # the same painted scene in degrees: the same picture within the painting's own
    # differences (vehicle edges fall on other pixel boundaries)
    diff = np.abs(ref.image[ok] - strip.image[ok])
    assert np.median(diff) < 0.01
    assert np.percentile(diff, 95) < 0.1


def test_a_finer_reference_is_averaged_over_each_tile_pixel():
    rng = np.random.default_rng(3)
    coarse = rng.uniform(0, 200, (1, 30, 30)).astype(np.float32)
    fine = np.repeat(np.repeat(coarse, 3, axis=1), 3, axis=2)
    t_c = from_origin(500000, 4700000, 9, 9)
    t_f = from_origin(500000, 4700000, 3, 3)
    with _mem(coarse, transform=t_c).open() as ds, _mem(fine, transform=t_f).open() as rds:
        tile = BlockSampler(ds, [1])
        on = ReferenceOnTile(tile, ds.crs, BlockSampler(rds, [1]), rds.crs, Scaler("float32"),
                             tile_gsd=9.0, ref_gsd=3.0)
        assert on.sub == 3
        r, c = np.mgrid[5:25, 5:25]
        px = tile_pixels(r.astype(float), c.astype(float))
        vals, ok, sat = on.values(px, on.positions(px))
    assert ok.all() and not sat.any()
    # nine samples inside each 9 m pixel, each of them in the 3 m pixel that copies it:
    # the tile pixel's own value back (up to the kernel's overshoot at the copies' edges)
    want = coarse[0, px.rows, px.cols]
    assert np.median(np.abs(vals[:, 0] - want)) < 1.0


def test_empty_3m_road_with_reference_is_no_queue(tmp_path):
    """A SYNTHETIC empty road at 3 m with its reference (the benchmark's ``empty-3m``):
    the residue of co-registration and haze once made a 0.45 km queue out of it."""
    from queuemeasure.pipeline import measure
    from queuemeasure.synth import SceneSpec
    from queuemeasure.synth.sensor_render import render_sensor_scene

    spec = SceneSpec(road="curving", road_length_m=3000.0, queue_length_m=0.0, seed=4)
    render_sensor_scene(spec, tmp_path / "tile.tif", sensor="planetscope", product="reflectance",
                        reference=tmp_path / "reference.tif")
    head = tuple(json.loads((tmp_path / "tile.road.geojson").read_text())["properties"]["head_lonlat"])
    r = measure(tmp_path / "tile.tif", tmp_path / "tile.road.geojson", head=head,
                reference=tmp_path / "reference.tif")
    assert r.mode == "occupancy"
    assert r.length_km < 0.2, r.notes
