"""Occupancy mode: coarse (3 m, 10 m) SYNTHETIC scenes, Sentinel-2 products, the CLI
contract, band roles and scaling, and the estimator's pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from coarse import coarse_scene
from conftest import REALDATA
from queuemeasure.cli.main import cli
from queuemeasure.detect import occupancy as occ
from queuemeasure.pipeline import measure
from queuemeasure.raster import band_roles, band_scaling

SCENE = dict(road_length_m=1800.0, queue_length_m=1100.0, seed=5)
CONTRACT = ("mode", "length_km", "length_km_range", "truncated", "gsd_m", "low_confidence")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("coarse")


@pytest.fixture(scope="module")
def l2a10(cache):
    return coarse_scene(cache, "q", gsd_m=10, with_reference=True, product="l2a", **SCENE)


@pytest.fixture(scope="module")
def tci3(cache):
    return coarse_scene(cache, "q", gsd_m=3, with_reference=True, product="tci", **SCENE)


def run_cli(*args):
    res = CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)
    return res


def measure_json(sc, *extra, reference=True):
    args = ["measure", sc.tile, "--road", sc.road, "--head", f"{sc.head[0]},{sc.head[1]}"]
    if reference and sc.reference:
        args += ["--reference", sc.reference]
    res = run_cli(*args, *extra, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_cli_contract_l2a_10m_with_reference(l2a10):
    d = measure_json(l2a10)
    for k in CONTRACT + ("vehicle_count_estimate",):
        assert k in d
    assert d["mode"] == "occupancy"
    assert d["gsd_m"] == pytest.approx(10, rel=0.05)
    truth = l2a10.truth_km
    assert abs(d["length_km"] - truth) / truth < 0.10
    lo, hi = d["length_km_range"]
    assert lo - 1e-3 <= truth <= hi + 1e-3
    assert hi - lo >= 2 * 0.010 - 1e-9  # each end at least a pixel
    a, b = d["vehicle_count_estimate"]
    # 6.5-10 m per vehicle per lane over 1-2 lanes
    assert a <= truth * 1000 / 6.5 * 2 and b >= truth * 1000 / 10.0
    assert d["low_confidence"] is False
    assert d["synthetic"] is True


def test_tci_3m_with_reference(tci3):
    d = measure_json(tci3)
    assert d["mode"] == "occupancy"
    assert abs(d["length_km"] - tci3.truth_km) / tci3.truth_km < 0.05


def test_10m_without_reference_is_not_confidently_wrong(l2a10):
    d = measure_json(l2a10, reference=False)
    assert d["mode"] == "occupancy"
    wrong = abs(d["length_km"] - l2a10.truth_km) / l2a10.truth_km > 0.10
    assert d["low_confidence"] or not wrong
    if d["low_confidence"]:
        assert any("reference" in n for n in d["notes"])


def test_empty_road_10m(cache):
    sc = coarse_scene(cache, "empty", gsd_m=10, with_reference=True, product="l2a",
                      road_length_m=1500.0, queue_length_m=0.0, seed=7)
    d = measure_json(sc)
    assert d["length_km"] < 0.2


def test_forced_vehicles_mode_on_coarse_pixels_is_flagged(l2a10):
    d = measure_json(l2a10, "--mode", "vehicles", reference=False)
    assert d["mode"] == "vehicles"
    assert d["low_confidence"] is True
    assert d.get("vehicle_count_estimate") is None


def test_vehicles_mode_on_10m_sees_the_road(l2a10):
    # the carriageway holds at least the column nearest the centreline at any pixel size
    # (a 10 m tile used to stop with "no valid data along the road")
    r = measure(l2a10.tile, l2a10.road, head=l2a10.head, mode="vehicles", workers=1)
    assert r.profile["observed_end_m"] > 1000


def test_reference_far_off_in_pixel_size_is_refused(l2a10, tci3):
    args = ["measure", l2a10.tile, "--road", l2a10.road, "--reference", tci3.tile, "--json"]
    res = run_cli(*args)
    assert res.exit_code == 2
    assert "Error:" in res.output and "pixel" in res.output


def test_band_roles_and_l2a_scaling(l2a10):
    with rasterio.open(l2a10.tile) as ds:
        roles = band_roles(ds)
        assert roles.names == ["red", "green", "blue", "nir"]
        assert roles.image == [3, 2, 1, 4]
        scale, offset = band_scaling(ds, roles.image)
        assert np.allclose(scale, 1e-4) and np.allclose(offset, -0.1)


def test_scl_band_and_float_without_descriptions(tmp_path):
    from rasterio.transform import from_origin

    p = tmp_path / "x.tif"
    with rasterio.open(p, "w", driver="GTiff", width=8, height=8, count=5, dtype="float32",
                       crs="EPSG:32632", transform=from_origin(600000, 5800000, 10, 10)) as ds:
        ds.write(np.ones((5, 8, 8), np.float32))
        ds.set_band_description(5, "SCL")
    with rasterio.open(p) as ds:
        roles = band_roles(ds)
        assert roles.scl == 5 and 5 not in roles.image
        assert band_scaling(ds, roles.image) is None
    q = tmp_path / "y.tif"
    with rasterio.open(q, "w", driver="GTiff", width=8, height=8, count=4, dtype="float32",
                       crs="EPSG:32632", transform=from_origin(600000, 5800000, 10, 10)) as ds:
        ds.write(np.ones((4, 8, 8), np.float32))
        ds.scales = (0.5, 0.5, 0.5, 0.5)
        ds.offsets = (1.0, 1.0, 1.0, 1.0)
    with rasterio.open(q) as ds:
        roles = band_roles(ds)
        # undescribed 4 bands: stored order, the fourth as NIR
        assert roles.image == [1, 2, 3, 4]
        assert band_roles(ds, [3, 2, 1, 4]).image == [3, 2, 1, 4]
        s, o = band_scaling(ds, roles.image)
        assert np.allclose(s, 0.5) and np.allclose(o, 1.0)


# ----------------------------------------------------------------------------- pieces
def test_fit_radiometry_ignores_changed_pixels():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (2000, 3))
    tile = ref * np.array([1.2, 0.9, 1.1]) + np.array([0.05, -0.02, 0.1]) + rng.normal(0, 0.005, ref.shape)
    tile[:300] += 0.8  # changed
    g, o = occ.fit_radiometry(tile, ref)
    assert np.allclose(g, [1.2, 0.9, 1.1], atol=0.01)
    assert np.allclose(o, [0.05, -0.02, 0.1], atol=0.01)


def test_occupied_runs_hysteresis_and_refined_edges():
    x = np.zeros(200)
    x[50:120] = 10.0
    x[160:163] = 3.0  # above low only: no run
    runs = occ.occupied_runs(occ.smooth_rows(x, 15), high=5.0, low=2.0)
    assert runs.shape == (1, 2)
    z = x + np.random.default_rng(0).normal(0, 0.5, x.size)
    assert occ.outermost_edges(z, runs, width=15, level=4.0).tolist() == [[50, 120]]


def test_change_evidence_finds_a_change_on_the_carriageway():
    rng = np.random.default_rng(1)
    rows, cols, nb = 300, 12, 3
    offsets = -27.5 + 5.0 * np.arange(cols) + 2.5
    ref = rng.uniform(0.2, 0.6, (rows, cols, nb)).astype(np.float32)
    tile = (ref * 1.1 + 0.05 + rng.normal(0, 0.005, ref.shape)).astype(np.float32)
    road = np.abs(offsets) <= 4.5
    tile[100:200][:, road] += 0.03
    ok = np.ones((rows, cols), bool)
    ev = occ.change_evidence(tile, ok, ref, ok, offsets=offsets, half_width_m=4.5, gsd_m=10.0)
    inside = np.nanmedian(ev.road[100:200])
    outside = np.nanmedian(ev.road[:90])
    assert inside > 10 * outside
    assert ev.null.shape[1] >= 2


def test_pieces_are_scored_in_one_unit_unless_veiled():
    """A piece whose verges changed more between the dates (a river bed, shadows under
    another sun) is re-expressed in the road's unit; a veiled one (thin cloud outside
    the mask: its unit many times the road's) keeps its own."""
    from queuemeasure.occupancy_pipeline import _one_unit

    n, k, nb = 400, 2, 3
    scale = np.ones((n, nb))
    scale[100:200] = 1.6                       # busier verges: the queue read 1.6 x weaker
    scale[300:] = 6.0                          # veiled
    signed = np.full((n, nb), 1.0)
    null_signed = np.full((n, k, nb), 0.5)
    arrays = {"scale": scale, "signed": signed.copy(), "null_signed": null_signed.copy(),
              "null": (null_signed ** 2).mean(-1)}
    road = _one_unit((signed ** 2).mean(-1), arrays)
    assert "scale" not in arrays
    assert road[:100] == pytest.approx(1.0) and road[100:200] == pytest.approx(1.6 ** 2)
    assert road[300:] == pytest.approx(1.0)    # the veiled piece as it was
    assert arrays["null"][150] == pytest.approx(0.25 * 1.6 ** 2)
    assert arrays["signed"][150] == pytest.approx(1.6)


def test_bundled_s2_sample_with_reference():
    """The SYNTHETIC 20 km Upper Lars sample at 10 m: the pieces along the river bed, whose
    verges change more between the dates, once cut the queue at 7.9 km."""
    from conftest import SAMPLES

    stem = SAMPLES / "upper_lars_2022-09-26_S2_SYNTHETIC"
    truth = json.loads((SAMPLES / f"{stem.name}.truth.geojson").read_text())["properties"]
    r = measure(f"{stem}.tif", f"{stem}.road.geojson", head=(44.631, 42.768),
                reference=SAMPLES / "upper_lars_2022-09-21_S2_reference_SYNTHETIC.tif")
    assert r.mode == "occupancy" and not r.low_confidence, r.notes
    assert r.length_km == pytest.approx(truth["length_km"], rel=0.03)
    assert r.length_km_range[0] <= truth["length_km"] <= r.length_km_range[1]


# ----------------------------------------------------------------------------- real Sentinel-2
S2TD = REALDATA / "s2td_fisser_a2_braunschweig" / "S2_test_data.tif"
#: the A2's centreline digitised on the tile (column, row of the low-NIR asphalt band's
#: middle, read off the image at 8 columns; both carriageways and the median together)
A2_PIXELS = [(0, 4.0), (5, 5.5), (20, 10.5), (40, 18.5), (60, 24.5), (80, 32.5), (100, 40.0),
             (120, 47.5), (132, 52.0)]


def _a2_road():
    from queuemeasure import geo

    with rasterio.open(S2TD) as ds:
        xy = [ds.transform * (c + 0.5, r + 0.5) for c, r in A2_PIXELS]
        t = geo.transformer(ds.crs, geo.WGS84)
    ll = [tuple(float(v) for v in t.transform(x, y)) for x, y in xy]
    return {"type": "LineString", "coordinates": [list(p) for p in ll]}, ll


@pytest.mark.skipif(not S2TD.exists(), reason="../shared/realdata not present")
@pytest.mark.parametrize("half_width", [4.5, 15.0])
@pytest.mark.parametrize("head_at", [1, -2])
def test_real_sentinel2_moving_trucks_are_not_a_confident_queue(half_width, head_at):
    # float32 B04,B03,B02,B08 without band descriptions: the default roles take them as
    # R,G,B,NIR; moving trucks' "rainbow" pixels must not make a confident queue
    road, ll = _a2_road()
    r = measure(str(S2TD), road, head=ll[head_at], half_width=half_width, workers=1)
    assert r.mode == "occupancy"
    assert r.profile["occupancy_score"].size > 0
    assert r.low_confidence, (r.length_km, r.notes)
    assert r.low_confidence == any(n.startswith("low confidence") for n in r.notes)


def test_scl_cloud_over_the_tail_is_occlusion(cache):
    # the road runs north from the head: the top rows of the tile hold its far end; a
    # cloud over rows 15-35 % from the top lies over the queue's tail end
    sc = coarse_scene(cache, "cl", gsd_m=10, with_reference=True, product="l2a",
                      road_length_m=1800.0, queue_length_m=1100.0, seed=5, cloud=(0.15, 0.35))
    with rasterio.open(sc.tile) as ds:
        assert band_roles(ds).scl == 5
    d = measure_json(sc)
    assert d["occluded_stretches_km"] or d["occluded_km"] > 0 or d["low_confidence"]
    lo, hi = d["length_km_range"]
    assert hi + 1e-3 >= sc.truth_km
    # never a confident number that the cloud makes wrong
    assert d["low_confidence"] or abs(d["length_km"] - sc.truth_km) / sc.truth_km < 0.1


def test_tci_3m_without_reference(tci3):
    d = measure_json(tci3, reference=False)
    assert d["mode"] == "occupancy"
    err = abs(d["length_km"] - tci3.truth_km) / tci3.truth_km
    assert err < 0.08 or d["low_confidence"]


def test_mode_follows_pixel_size():
    from queuemeasure.errors import OptionError
    from queuemeasure.occupancy_pipeline import VEHICLES_MAX_GSD_M, resolve_mode

    assert resolve_mode("auto", 0.5) == "vehicles"
    assert resolve_mode("auto", VEHICLES_MAX_GSD_M) == "vehicles"
    assert resolve_mode("auto", 3.0) == "occupancy"
    assert resolve_mode("vehicles", 10.0) == "vehicles"
    with pytest.raises(OptionError):
        resolve_mode("cars", 1.0)


def test_fine_tile_reports_vehicles_mode(curve_scenes):
    sc = curve_scenes["utm"]
    r = measure(sc.path, sc.road_path, head=sc.head, workers=1)
    d = r.to_dict()
    assert d["mode"] == "vehicles" and d["low_confidence"] is False
    assert d["vehicle_count_estimate"] is None


def test_bad_mode_is_a_usage_error(l2a10):
    res = run_cli("measure", l2a10.tile, "--road", l2a10.road, "--mode", "cars", "--json")
    assert res.exit_code == 2


def test_scaler_makes_values_physical():
    from queuemeasure.corridor import Scaler

    s = Scaler("uint16", physical=(np.full(2, 1e-4), np.full(2, -0.1)))
    raw = np.array([[1000, 2000], [3000, 11000]] * 10, np.uint16)
    s.fit(raw)
    out = s(raw)
    # reflectance (DN - 1000) / 10000, then one gain for both bands
    refl = raw.astype(np.float64) * 1e-4 - 0.1
    ratio = out / np.where(refl == 0, np.nan, refl)
    assert np.nanstd(ratio) < 1e-5


def test_occupancy_quicklook(l2a10, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "q.png"
    args = ["measure", l2a10.tile, "--road", l2a10.road, "--reference", l2a10.reference,
            "--quicklook", out]
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000
    r = measure(l2a10.tile, l2a10.road, reference=l2a10.reference, workers=1)
    assert r.profile["reference"] == str(l2a10.reference)
    share = r.profile["occupancy_share"]
    assert share.shape == r.profile["occupancy_score"].shape
    assert np.nanmin(share) >= 0 and np.nanmax(share) <= 1


# ----------------------------------------------------------------------------- saturation
def _saturated_copy(sc, dst, rows):
    """A copy of ``sc``'s tile with the pixel rows ``rows`` (a slice) at 255 in every band
    (a TCI clipped on bright ground)."""
    import dataclasses
    import shutil

    shutil.copy(sc.tile, dst)
    with rasterio.open(dst, "r+") as ds:
        a = ds.read()
        a[:, rows] = 255
        ds.write(a)
    return dataclasses.replace(sc, tile=dst)


def test_saturated_stretch_is_hidden_not_free_road(tci3, tmp_path):
    """Pixels at 255 hide the change: a band of them across the queue is counted as
    hidden (the queue goes on across it), never as free road that ends the queue."""
    from queuemeasure import geo

    d0 = measure_json(tci3)
    with rasterio.open(tci3.tile) as ds:
        t = geo.transformer(geo.WGS84, ds.crs)
        rows = [ds.index(*t.transform(*p))[0] for p in (d0["head_lonlat"], d0["tail_lonlat"])]
    # the road runs along the rows: saturate 30 rows (90 m) half way along the queue
    mid = (rows[0] + rows[1]) // 2
    sc = _saturated_copy(tci3, tmp_path / "sat.tif", slice(mid - 15, mid + 15))
    d = measure_json(sc)
    assert any("saturated" in n for n in d["notes"]), d["notes"]
    assert abs(d["length_km"] - tci3.truth_km) / tci3.truth_km < 0.05, d
    assert d["occluded_km"] > 0.05


def test_all_saturated_road_is_flagged_not_an_empty_road(tci3, tmp_path):
    with rasterio.open(tci3.tile) as ds:
        h = ds.height
    sc = _saturated_copy(tci3, tmp_path / "allsat.tif", slice(0, h))
    d = measure_json(sc)
    assert d["length_km"] == 0.0
    assert d["low_confidence"] is True
    assert any("hidden" in n for n in d["notes"]), d["notes"]
    # the queue may stand anywhere under what hides the road
    assert d["length_km_range"][1] >= tci3.truth_km
