"""Tests of the coarse-sensor simulator (queuemeasure.synth.sensor, .products,
.sensor_render) and of ``queuemeasure synth --sensor``."""

from __future__ import annotations

import json
from dataclasses import replace

import click
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from queuemeasure.cli.synth_cmd import synth
from queuemeasure.errors import OptionError
from queuemeasure.synth import SceneSpec, build_scene
from queuemeasure.synth.products import BOA_ADD_OFFSET
from queuemeasure.synth.sensor import (DateModel, degrade, get_sensor, psf_sigma_px,
                                       random_reference_date, tile_date)
from queuemeasure.synth.sensor_render import coarse_grid, render_sensor_scene
from queuemeasure.synth.truth import make_truth

# a small scene: 700 m road, 350 m queue, nothing else moving on the road
SMALL = dict(road="curving", road_length_m=700.0, queue_length_m=350.0, margin_m=40.0,
             tree_cover=0.2, buildings=0.1, laybys=0.0, free_per_km=0.0, oncoming_per_km=0.0,
             two_lane_queue_fraction=0.3, truck_fraction=0.2, workers=1)
QUIET = (1e7,) * 4          # an SNR that makes the noise negligible


def _read(path):
    """Pixels and a closed-safe summary of the dataset (tags(i), descriptions, ...)."""
    from types import SimpleNamespace
    with rasterio.open(path) as ds:
        tags = {i: ds.tags(i) if i else ds.tags() for i in range(ds.count + 1)}
        info = SimpleNamespace(dtypes=ds.dtypes, count=ds.count, nodata=ds.nodata,
                               descriptions=ds.descriptions, res=ds.res, crs=ds.crs,
                               colorinterp=ds.colorinterp, height=ds.height, width=ds.width,
                               transform=ds.transform, tags=lambda i=0: tags[i])
        return ds.read(), info


def _same_date(spec, **kw) -> DateModel:
    """The tile's own date as a reference date, with ``kw`` changed."""
    return replace(tile_date(spec), label="reference", **kw)


@pytest.fixture(scope="module")
def s2(tmp_path_factory):
    """One Sentinel-2 scene in the three products (same seed, same noise)."""
    d = tmp_path_factory.mktemp("s2")
    out = {}
    for product in ("l2a", "tci", "reflectance"):
        ref = d / f"{product}_ref.tif"
        out[product] = render_sensor_scene(SceneSpec(seed=4, **SMALL), d / f"{product}.tif",
                                           sensor="sentinel2", product=product, reference=ref)
    return out


def test_l2a_stack_as_promised(s2):
    truth = s2["l2a"]
    data, ds = _read(truth.paths["tif"])
    assert ds.dtypes == ("uint16",) * 4 and ds.count == 4 and ds.nodata == 0
    assert ds.descriptions == ("B02", "B03", "B04", "B08")
    assert ds.tags()["BOA_ADD_OFFSET"] == str(BOA_ADD_OFFSET) == "-1000"
    assert ds.tags(1)["BOA_ADD_OFFSET"] == "-1000"
    assert ds.tags()["SYNTHETIC"] == "yes" and "SYNTHETIC" in ds.tags()["DESCRIPTION"]
    assert ds.res == (10.0, 10.0) and ds.crs.to_epsg() == 32638
    valid = data[0] > 0
    assert valid.sum() > 100 and (~valid).sum() > 0        # sparse: nodata away from the road
    refl = (data[:, valid].astype(float) + BOA_ADD_OFFSET) / 10000.0
    assert 0.02 < np.median(refl[0]) < 0.3                  # blue
    # vegetation is bright in NIR: NIR above red for most pixels of the scene
    assert np.median(refl[3] - refl[2]) > 0.02
    # truth: SYNTHETIC, the sensor's pixel, lanes
    doc = json.loads(open(truth.paths["truth"]).read())["properties"]
    assert doc["synthetic"] is True and doc["note"].startswith("SYNTHETIC")
    assert doc["gsd_m"] == 10.0 and doc["sensor"]["name"] == "sentinel2" and doc["product"] == "l2a"
    assert doc["lanes"] == 2 and 1.0 <= doc["queue_mean_lanes"] <= 2.0
    assert doc["reference"]["path"] == "l2a_ref.tif"        # relative to the truth file


def test_products_agree(s2):
    l2a, _ = _read(s2["l2a"].paths["tif"])
    tci, ds_tci = _read(s2["tci"].paths["tif"])
    refl, ds_r = _read(s2["reflectance"].paths["tif"])
    assert ds_tci.dtypes == ("uint8",) * 3 and ds_tci.colorinterp[0].name == "red"
    assert ds_r.dtypes == ("float32",) * 4 and ds_r.descriptions == ("B02", "B03", "B04", "B08")
    valid = np.isfinite(refl[0])
    assert np.array_equal(valid, l2a[0] > 0) and np.array_equal(valid, tci[0] > 0)
    back = (l2a[:, valid].astype(float) - 1000) / 10000
    assert np.abs(back - refl[:, valid]).max() <= 0.5e-4 + 1e-7
    rgb = np.clip(np.rint(refl[[2, 1, 0]][:, valid] * 1275), 1, 255)
    assert np.array_equal(rgb, tci[:, valid])
    # every product is tagged SYNTHETIC, and so is its reference
    for t in s2.values():
        for key in ("tif", "reference"):
            with rasterio.open(t.paths[key]) as ds:
                assert ds.tags()["SYNTHETIC"] == "yes"


def test_reference_date_is_recorded(s2):
    _, ds = _read(s2["l2a"].paths["reference"])
    tags = ds.tags()
    date = random_reference_date(4, get_sensor("sentinel2"), sun_azimuth_deg=160.0, sun_elevation_deg=45.0)
    assert tags["DATE_ROLE"] == "reference"
    assert float(tags["SHIFT_X_M"]) == pytest.approx(date.shift_m[0], abs=1e-4)
    assert np.hypot(*date.shift_m) <= 3.0 + 1e-9
    assert [float(g) for g in tags["GAIN"].split(",")] == pytest.approx(date.gain, abs=1e-5)
    assert float(tags["SUN_AZIMUTH_DEG"]) != 160.0


def test_psf_gives_the_stated_mtf():
    """A sinusoid degraded by the sensor keeps exp(-2 pi^2 sigma^2 f^2) sinc(f) of its
    amplitude, and the MTF at Nyquist is the model's."""
    sig = psf_sigma_px(0.28)
    assert np.exp(-np.pi ** 2 * sig ** 2 / 2) * np.sinc(0.5) == pytest.approx(0.28, rel=1e-6)
    k, f = 10, 0.125                              # cycles per output pixel
    x = (np.arange(64 * k) + 0.5) / k
    fine = np.broadcast_to(0.2 + 0.1 * np.sin(2 * np.pi * f * x), (1, 16 * k, 64 * k)).copy()
    coarse, _ = degrade(fine, k, sig)
    row = coarse[0, 8, 8:-8] - 0.2
    xc = np.arange(64)[8:-8] + 0.5
    amp = np.hypot(*np.linalg.lstsq(np.column_stack([np.sin(2 * np.pi * f * xc),
                                                     np.cos(2 * np.pi * f * xc)]), row, rcond=None)[0])
    want = 0.1 * np.exp(-2 * np.pi ** 2 * sig ** 2 * f ** 2) * np.sinc(f)
    assert amp == pytest.approx(want, rel=0.01)


def test_degrade_preserves_mean():
    rng = np.random.default_rng(0)
    fine = rng.uniform(0.0, 0.5, (4, 300, 400)).astype(np.float32)
    box, v = degrade(fine, 10, 0.0)
    assert box.shape == (4, 30, 40) and v.all()
    assert np.allclose(box.mean(axis=(1, 2)), fine.mean(axis=(1, 2)), rtol=1e-5)
    blurred, _ = degrade(fine, 10, 0.45)
    assert np.allclose(blurred.mean(axis=(1, 2)), fine.mean(axis=(1, 2)), rtol=2e-3)
    # a half-valid window: no dark fringe, the invalid half is flagged
    valid = np.zeros((300, 400), bool)
    valid[:, :200] = True
    half, hv = degrade(np.full((1, 300, 400), 0.3, np.float32), 10, 0.45, valid)
    assert hv[:, :20].all() and not hv[:, 20:].any()
    assert np.allclose(half[0][hv], 0.3, atol=1e-5)


def _queue_distance(truth, ds):
    """Distance (m) of every pixel centre to the nearest queued vehicle footprint."""
    import shapely
    from pyproj import Transformer
    tf = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True)
    polys = [shapely.Polygon(np.column_stack(tf.transform(*v.footprint_lonlat.T)))
             for v in truth.vehicles if v.in_queue]
    union = shapely.union_all(polys)
    rows, cols = np.mgrid[0:ds.height, 0:ds.width]
    x, y = rasterio.transform.xy(ds.transform, rows.ravel(), cols.ravel())
    return shapely.distance(shapely.points(np.asarray(x), np.asarray(y)), union).reshape(ds.height, ds.width)


@pytest.mark.parametrize("sensor", ["sentinel2", "planetscope"])
def test_reference_differs_only_at_the_queue(tmp_path, sensor):
    gain, offset = (1.05, 0.95, 1.1, 0.9), (0.01, -0.005, 0.0, 0.02)
    spec = SceneSpec(seed=8, **SMALL)
    truth = render_sensor_scene(spec, tmp_path / "t.tif", sensor=sensor,
                                product="reflectance", reference=tmp_path / "r.tif",
                                reference_date=_same_date(spec, gain=gain, offset=offset),
                                reference_traffic_per_km=0.0, snr=QUIET)
    a, ds = _read(tmp_path / "t.tif")
    b, _ = _read(tmp_path / "r.tif")
    g = np.asarray(gain, np.float32)[:, None, None]
    o = np.asarray(offset, np.float32)[:, None, None]
    ok = np.isfinite(a[0]) & np.isfinite(b[0])
    diff = np.where(ok, np.abs(a - (b - o) / g).max(axis=0), np.nan)
    dist = _queue_distance(truth, ds)
    gsd = ds.res[0]
    near = dist <= 2 * gsd + 8                    # PSF and shadows reach beyond the footprint
    assert np.nanmax(diff[ok & ~near]) < 1e-3
    assert np.nanmax(diff[ok & near]) > 0.01      # the queue is there, a few % of a pixel


def test_reference_shift_is_a_shift(tmp_path):
    """A 10 m east shift of a Sentinel-2 reference moves the picture by one pixel."""
    spec = SceneSpec(seed=9, **SMALL)
    render_sensor_scene(spec, tmp_path / "t.tif", sensor="sentinel2",
                        product="reflectance", reference=tmp_path / "r.tif",
                        reference_date=_same_date(spec, shift_m=(10.0, 0.0)),
                        reference_traffic_per_km=0.0, snr=QUIET)
    a, _ = _read(tmp_path / "t.tif")
    b, _ = _read(tmp_path / "r.tif")
    # the reference's pixel c shows the ground of the tile's pixel c + 1
    d_shift = np.nanmedian(np.abs(b[:, :, :-1] - a[:, :, 1:]))
    d_none = np.nanmedian(np.abs(b - a))
    assert d_shift < 0.2 * d_none


def test_determinism(tmp_path):
    kw = dict(sensor="planetscope", product="l2a", reference_traffic_per_km=2.0)
    render_sensor_scene(SceneSpec(seed=2, **SMALL), tmp_path / "a.tif", reference=tmp_path / "ar.tif", **kw)
    render_sensor_scene(SceneSpec(seed=2, **{**SMALL, "workers": 2}), tmp_path / "b.tif",
                        reference=tmp_path / "br.tif", **kw)
    render_sensor_scene(SceneSpec(seed=3, **SMALL), tmp_path / "c.tif", reference=tmp_path / "cr.tif", **kw)
    a, ds = _read(tmp_path / "a.tif")
    assert ds.descriptions == ("blue", "green", "red", "nir") and "BOA_ADD_OFFSET" not in ds.tags()
    assert ds.res == (3.0, 3.0)
    assert np.array_equal(a, _read(tmp_path / "b.tif")[0])
    assert np.array_equal(_read(tmp_path / "ar.tif")[0], _read(tmp_path / "br.tif")[0])
    ta, tb = (json.loads(open(tmp_path / f"{n}.truth.geojson").read()) for n in "ab")
    assert ta["features"] == tb["features"]
    for t in (ta, tb):                            # the file names and worker count differ
        t["properties"].pop("spec"), t["properties"]["reference"].pop("path")
    assert ta["properties"] == tb["properties"]
    assert _read(tmp_path / "ar.tif")[1].tags()["GAIN"] != _read(tmp_path / "cr.tif")[1].tags()["GAIN"]


def test_truth_is_the_scene_truth(s2):
    """The coarse render keeps the scene's queue: same length and count as the layout."""
    t = s2["l2a"]
    spec = SceneSpec(seed=4, **SMALL)
    model = get_sensor("sentinel2")
    scene = build_scene(spec)
    grid, _ = coarse_grid(scene, model)
    ref = make_truth(scene, grid)
    assert t.length_km == pytest.approx(ref.length_km, abs=1e-9) and t.length_km > 0.3
    assert t.vehicle_count == ref.vehicle_count


def test_cloud_gives_scl_and_mask(tmp_path):
    spec = SceneSpec(seed=1, **{**SMALL, "road_length_m": 2500.0, "queue_length_m": 1500.0,
                                "cloud": 0.8, "margin_m": 30.0})
    t = render_sensor_scene(spec, tmp_path / "c.tif", sensor="sentinel2", product="l2a")
    data, ds = _read(t.paths["tif"])
    assert ds.count == 5 and ds.descriptions[4] == "SCL"
    scl = data[4]
    assert np.isin(scl, [0, 4, 5, 8, 9, 10]).all() and np.isin(scl, [8, 9]).any()
    with rasterio.open(t.paths["cloudmask"]) as m:
        mask = m.read(1)
        assert m.tags()["SYNTHETIC"] == "yes"
    assert np.array_equal(mask == 1, np.isin(scl, [8, 9]))


def test_bad_sensor_options():
    with pytest.raises(OptionError):
        get_sensor("landsat")
    with pytest.raises(OptionError):
        get_sensor("sentinel2", gsd_m=0.5)
    with pytest.raises(OptionError):
        get_sensor("sentinel2", mtf_nyquist=0.9)


def _cli():
    group = click.Group()
    group.add_command(synth)
    return group


def test_cli_sensor(tmp_path):
    out, ref = tmp_path / "s.tif", tmp_path / "s_ref.tif"
    args = ["synth", str(out), "--sensor", "planetscope", "--product", "tci", "--reference", str(ref),
            "--road-length-km", "0.5", "--queue-km", "0.2", "--margin", "25", "--trees", "0",
            "--seed", "2", "--mtf", "0.25", "--ref-crs", "EPSG:3857", "--json"]
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["synthetic"] is True and doc["gsd_m"] == 3.0 and doc["sensor"] == "planetscope"
    assert doc["files"]["reference"] == str(ref) and ref.exists()
    with rasterio.open(out) as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint8" and ds.tags()["MTF_NYQUIST"] == "0.25"
        assert ds.crs.to_epsg() == 32638
    with rasterio.open(ref) as ds:                # the reference on its own grid, 3 ground metres
        assert ds.crs.to_epsg() == 3857 and ds.res[0] == pytest.approx(3.0 / np.cos(np.radians(42.77)), rel=0.01)
        assert (ds.read(1) > 0).sum() > 100
    for bad in (["--reference", str(tmp_path / "x_ref.tif")], ["--sensor", "sentinel2", "--gsd", "0.5"]):
        r = CliRunner().invoke(_cli(), ["synth", str(tmp_path / "x.tif")] + bad)
        assert r.exit_code == 2 and "Traceback" not in r.output, (bad, r.output)


@pytest.mark.parametrize("stem,ref,gsd,km", [
    ("upper_lars_2022-09-26_S2_SYNTHETIC", "upper_lars_2022-09-21_S2_reference_SYNTHETIC", 10.0, 19.986),
    ("upper_lars_2022-09-26_PS_cut3km_SYNTHETIC", "upper_lars_2022-09-21_PS_cut3km_reference_SYNTHETIC", 3.0, 2.983),
])
def test_coarse_samples(stem, ref, gsd, km):
    from conftest import SAMPLES
    doc = json.loads((SAMPLES / f"{stem}.truth.geojson").read_text())["properties"]
    assert doc["synthetic"] is True and doc["gsd_m"] == gsd
    assert doc["length_km"] == pytest.approx(km, abs=0.001)
    assert (SAMPLES / doc["reference"]["path"]).name == f"{ref}.tif"
    assert (SAMPLES / f"{stem}.road.geojson").exists()
    for name in (stem, ref):
        path = SAMPLES / f"{name}.tif"
        assert path.stat().st_size < 600_000
        with rasterio.open(path) as ds:
            assert ds.res == (gsd, gsd) and ds.dtypes == ("uint16",) * 4
            assert ds.tags()["SYNTHETIC"] == "yes"
            if gsd == 10.0:
                assert ds.descriptions == ("B02", "B03", "B04", "B08")
                assert ds.tags()["BOA_ADD_OFFSET"] == "-1000"
            else:
                assert ds.descriptions == ("blue", "green", "red", "nir")


def test_moving_vehicles_lag_between_bands(tmp_path):
    """Sentinel-2's bands are sensed up to 1 s apart: moving vehicles stand elsewhere in
    each band, queued ones do not."""
    def pair(name, **kw):
        spec = SceneSpec(seed=6, **{**SMALL, **kw})
        out = []
        for lag in (None, (0.0, 0.0, 0.0, 0.0)):
            p = tmp_path / f"{name}_{lag is None}.tif"
            render_sensor_scene(spec, p, sensor="sentinel2", product="reflectance", snr=QUIET,
                                band_time_s=lag)
            out.append(_read(p)[0])
        return out
    a, b = pair("queue")                                   # only the queue and parked cars
    assert np.array_equal(a, b, equal_nan=True)
    a, b = pair("free", queue_length_m=0.0, free_per_km=15.0, oncoming_per_km=15.0)
    d = np.nanmax(np.abs(a - b), axis=(1, 2))
    assert d[0] == 0 and d[1] > 0.005 and d[2] > 0.005   # blue is the reference time
