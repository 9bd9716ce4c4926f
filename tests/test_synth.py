"""Tests of the scene simulator queuemeasure.synth and its CLI command."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.features import rasterize

from queuemeasure import geo
from queuemeasure.cli.synth_cmd import synth
from queuemeasure.errors import OptionError
from queuemeasure.synth import SceneSpec, build_scene, render_scene, sidecar_paths
from queuemeasure.synth.vehicles import chain

SMALL = dict(road="curving", road_length_m=420.0, queue_length_m=180.0, margin_m=22.0,
             tree_cover=0.0, buildings=0.0, laybys=0.0, workers=1)


def _read(path):
    with rasterio.open(path) as src:
        return src.read(), src.read_masks(1), src.profile, src.tags()


def _truth(path):
    with open(sidecar_paths(path)["truth"]) as f:
        return json.load(f)


def test_determinism(tmp_path):
    spec = SceneSpec(seed=5, **SMALL)
    a = render_scene(spec, tmp_path / "a.tif")
    b = render_scene(SceneSpec(seed=5, **SMALL), tmp_path / "b.tif")
    pa, ma, *_ = _read(tmp_path / "a.tif")
    pb, mb, *_ = _read(tmp_path / "b.tif")
    assert np.array_equal(pa, pb) and np.array_equal(ma, mb)
    ta, tb = _truth(tmp_path / "a.tif"), _truth(tmp_path / "b.tif")
    assert ta == tb
    assert a.length_km == b.length_km and a.vehicle_count == b.vehicle_count
    c = render_scene(SceneSpec(seed=6, **SMALL), tmp_path / "c.tif")
    assert (c.vehicle_count, c.length_km) != (a.vehicle_count, a.length_km)


def test_render_order_does_not_matter(tmp_path):
    a = render_scene(SceneSpec(seed=3, **{**SMALL, "workers": 1}), tmp_path / "a.tif")
    b = render_scene(SceneSpec(seed=3, **{**SMALL, "workers": 3}), tmp_path / "b.tif")
    assert np.array_equal(_read(tmp_path / "a.tif")[0], _read(tmp_path / "b.tif")[0])
    assert a.length_km == b.length_km


def test_truth_file_contract(tmp_path):
    t = render_scene(SceneSpec(seed=1, **SMALL), tmp_path / "s.tif")
    doc = _truth(tmp_path / "s.tif")
    assert doc["type"] == "FeatureCollection"
    p = doc["properties"]
    for key in ("synthetic", "generator", "length_km", "vehicle_count", "max_gap_m", "gsd_m",
                "crs", "seed", "truncated", "head_lonlat", "tail_lonlat", "note",
                "full_length_km", "full_vehicle_count"):
        assert key in p
    assert p["synthetic"] is True and p["note"].startswith("SYNTHETIC")
    assert p["generator"].startswith("queuemeasure.synth ")
    roles = [f["properties"]["role"] for f in doc["features"]]
    assert roles.count("road") == roles.count("queue") == roles.count("head") == roles.count("tail") == 1
    vehicles = [f for f in doc["features"] if f["properties"]["role"] == "vehicle"]
    assert len(vehicles) == len(t.vehicles)
    assert sum(f["properties"]["in_queue"] for f in vehicles) == p["vehicle_count"] == t.vehicle_count
    for f in vehicles:
        assert f["geometry"]["type"] == "Polygon"
        assert f["properties"]["class"] in ("car", "van", "truck", "bus")
        for key in ("s0_m", "s1_m", "offset_m", "occluded", "parked", "in_queue"):
            assert key in f["properties"]
        ring = np.array(f["geometry"]["coordinates"][0])
        assert np.allclose(ring[0], ring[-1])
        assert np.all(np.abs(ring[:, 0] - 44.63) < 0.1) and np.all(np.abs(ring[:, 1] - 42.77) < 0.1)
    # queue line: geodesic length equals length_km
    q = next(f for f in doc["features"] if f["properties"]["role"] == "queue")
    c = np.array(q["geometry"]["coordinates"])
    assert geo.geodesic_length(c[:, 0], c[:, 1]) / 1000 == pytest.approx(p["length_km"], rel=1e-4)
    # road file: a Feature starting at the head
    with open(sidecar_paths(tmp_path / "s.tif")["road"]) as f:
        road = json.load(f)
    assert road["type"] == "Feature" and road["geometry"]["type"] == "LineString"
    assert np.allclose(road["geometry"]["coordinates"][0], t.checkpoint_lonlat)


def test_queue_rule_on_truth():
    """The truth queue is the DESIGN.md chain over every on-carriageway vehicle."""
    for seed in range(6):
        scene = build_scene(SceneSpec(seed=seed, road_length_m=3000, queue_length_m=1500,
                                      oncoming_per_km=20, free_per_km=30, laybys=1.0))
        vs = scene.vehicles
        on = [v for v in vs if v.on_carriageway]
        q = sorted([v for v in vs if v.in_queue], key=lambda v: v.s0)
        assert q and q[0].s0 <= scene.spec.max_gap_m
        reach = q[0].s1
        for v in q[1:]:
            assert v.s0 - reach <= scene.spec.max_gap_m
            reach = max(reach, v.s1)
        # nothing on the carriageway continues the chain, with a safety margin
        rest = [v for v in on if not v.in_queue and v.s0 > q[0].s0]
        assert all(v.s0 > reach + scene.spec.max_gap_m + 5 for v in rest)
        assert not any(v.in_queue for v in vs if v.parked)
        assert abs(reach - 1500) < 60


def test_chain_function():
    s0 = np.array([5.0, 10.0, 70.0, 200.0])
    s1 = np.array([9.0, 60.0, 75.0, 205.0])
    assert chain(s0, s1, 50.0).tolist() == [0, 1, 2]
    assert chain(np.array([60.0]), np.array([65.0]), 50.0).tolist() == []
    # a long truck keeps the reach: the next car is measured from its rear
    assert chain(np.array([0.0, 1.0, 64.0]), np.array([16.0, 5.0, 68.0]), 50.0).tolist() == [0, 1, 2]


def test_vehicle_sizes_and_colours():
    scene = build_scene(SceneSpec(seed=2, road_length_m=6000, queue_length_m=5000))
    vs = scene.vehicles
    assert len(vs) > 300
    for v in vs:
        if v.cls == "car":
            assert 3.6 <= v.length <= 4.9 and 1.7 <= v.width <= 1.9
        elif v.cls == "van":
            assert 5.0 <= v.length <= 6.0
        else:
            assert 8.0 <= v.length <= 16.5 and 2.4 <= v.width <= 2.6
    lum = np.array([np.mean(v.rgb) for v in vs if v.cls == "car"])
    assert 0.15 < np.mean(lum > 0.8) < 0.4      # many white
    assert 0.12 < np.mean(lum < 0.12) < 0.3     # many black
    sat = np.array([np.ptp(v.rgb) for v in vs if v.cls == "car"])
    assert 0.08 < np.mean(sat > 0.15) < 0.3     # fewer coloured
    gaps = []
    q = sorted([v for v in vs if v.in_queue and v.o_c > 0], key=lambda v: v.s0)
    gaps = np.array([b.s0 - a.s1 for a, b in zip(q, q[1:])])
    assert np.median(gaps) < 4 and gaps.min() > 0.3 and (gaps < 6.5).mean() > 0.95


def test_truth_agrees_with_pixels(tmp_path):
    spec = SceneSpec(seed=11, road="straight", road_length_m=300, queue_length_m=120,
                     margin_m=15, tree_cover=0, buildings=0, laybys=0, haze=0, cloud=0,
                     noise=0.004, asphalt_tone=0.32, oncoming_per_km=0, free_per_km=0,
                     two_lane_queue_fraction=0.3, sun_elevation_deg=70, workers=1)
    t = render_scene(spec, tmp_path / "p.tif")
    scene = build_scene(spec)
    with rasterio.open(tmp_path / "p.tif") as src:
        img = src.read().astype(float)
        tf, crs = src.transform, src.crs
        rows, cols = np.mgrid[0:src.height, 0:src.width]
        xs, ys = rasterio.transform.xy(tf, rows.ravel(), cols.ravel(), offset="center")
    lx, ly = geo.transformer(crs, scene.local_crs).transform(np.asarray(xs), np.asarray(ys))
    s, o = scene.line.station_offset(lx, ly)
    s, o = s.reshape(rows.shape), o.reshape(rows.shape)
    to_crs = geo.transformer(geo.WGS84, crs)

    def burn(vehicles, buffer_m=0.0):
        import shapely
        geoms = []
        for v in vehicles:
            x, y = to_crs.transform(v.footprint_lonlat[:, 0], v.footprint_lonlat[:, 1])
            geoms.append(shapely.buffer(shapely.Polygon(np.column_stack([x, y])), buffer_m))
        return rasterize(geoms, out_shape=rows.shape, transform=tf, all_touched=buffer_m > 0).astype(bool)

    carriageway = np.abs(o) < scene.half_width - 0.7
    road_median = np.median(img[:, carriageway], axis=1)
    dev = np.abs(img - road_median[:, None, None]).max(axis=0)
    # every vehicle differs from the road surface somewhere in its footprint
    for v in t.vehicles:
        m = burn([v], 0.0)
        assert m.sum() >= 4
        assert dev[m].max() > 18, v          # grey cars on grey asphalt differ least
        assert np.mean(dev[m] > 10) > 0.25
    # the carriageway away from vehicles, their shadows and markings is road-like
    near = burn(t.vehicles, 2.0)
    lines = (np.abs(o) < 0.5) | (np.abs(np.abs(o) - (scene.half_width - 0.3)) < 0.6)
    clean = carriageway & ~near & ~lines & (s > 2) & (s < scene.line.length - 2)
    assert clean.sum() > 500
    assert np.percentile(dev[clean], 99.5) < 25
    assert t.vehicle_count >= 10


def test_crs_variants_same_truth(tmp_path):
    out = {}
    for crs in ("utm", "EPSG:4326", "EPSG:3857"):
        t = render_scene(SceneSpec(seed=4, crs=crs, **SMALL), tmp_path / f"{crs.replace(':', '')}.tif")
        out[crs] = t
        with rasterio.open(tmp_path / f"{crs.replace(':', '')}.tif") as src:
            # one pixel is gsd ground metres, in x and in y
            r, c = src.height // 2, src.width // 2
            x0, y0 = src.xy(r, c)
            x1, y1 = src.xy(r, c + 1)
            x2, y2 = src.xy(r + 1, c)
            back = geo.transformer(src.crs, geo.WGS84)
            (lo0, lo1, lo2), (la0, la1, la2) = back.transform([x0, x1, x2], [y0, y1, y2])
            assert geo.GEOD.inv(lo0, la0, lo1, la1)[2] == pytest.approx(0.5, rel=2e-3)
            assert geo.GEOD.inv(lo0, la0, lo2, la2)[2] == pytest.approx(0.5, rel=2e-3)
    ref = out["utm"]
    assert ref.crs == "EPSG:32638"
    for t in out.values():
        assert t.length_km == pytest.approx(ref.length_km, rel=1e-6)
        assert t.vehicle_count == ref.vehicle_count


@pytest.mark.parametrize("bands,dtype", [(1, "uint8"), (4, "uint16"), (3, "uint16")])
def test_bands_and_dtypes(tmp_path, bands, dtype):
    render_scene(SceneSpec(seed=2, bands=bands, dtype=dtype, **SMALL), tmp_path / "b.tif")
    with rasterio.open(tmp_path / "b.tif") as src:
        assert src.count == bands and src.dtypes[0] == dtype
        a = src.read(masked=True)
        assert src.tags()["SYNTHETIC"] == "yes"
        if dtype == "uint16":
            assert a.max() <= 2047 and a.max() > 255
        if bands == 4:
            assert src.descriptions[3] == "NIR"
        if bands == 1:
            assert src.colorinterp[0].name == "gray"


def test_sparse_blocks_are_invalid(tmp_path):
    spec = SceneSpec(seed=1, road="straight", road_bearing_deg=45, road_length_m=900,
                     queue_length_m=200, margin_m=12, tree_cover=0, buildings=0, workers=1)
    render_scene(spec, tmp_path / "d.tif")
    with rasterio.open(tmp_path / "d.tif") as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        m = src.read_masks(1)
        a = src.read()
        # the corners of a diagonal road's bounding box are far from the road: invalid
        assert m[:200, :200].max() == 0 and m[-200:, -200:].max() == 0
        assert (m == 255).sum() > 0
        assert a[:, m == 255].min() >= 1          # rendered pixels are never 0
        assert np.all(a[:, m == 0] == 0)
        blocks = [(r, c) for r in range(0, src.height, 512) for c in range(0, src.width, 512)]
        assert len(blocks) >= 4
    # unwritten blocks: the file is much smaller than the raw raster
    size = (tmp_path / "d.tif").stat().st_size
    assert size < 0.5 * src.width * src.height * 3


def test_cut_footprint_truncates(tmp_path):
    spec = SceneSpec(seed=8, road="curving", road_length_m=1200, queue_length_m=900,
                     extent_limit_m=600, margin_m=20, tree_cover=0.2, workers=1)
    t = render_scene(spec, tmp_path / "cut.tif")
    assert t.truncated
    assert 0.55 < t.length_km <= 0.6 + 1e-9
    assert t.full_length_km > 0.85 and t.full_vehicle_count > t.vehicle_count
    assert _truth(tmp_path / "cut.tif")["properties"]["truncated"] is True
    full = render_scene(SceneSpec(**{**spec.__dict__, "extent_limit_m": None}), tmp_path / "full.tif")
    assert not full.truncated and full.length_km == pytest.approx(t.full_length_km)
    with rasterio.open(tmp_path / "cut.tif") as a, rasterio.open(tmp_path / "full.tif") as b:
        assert a.height * a.width < b.height * b.width


def test_empty_road(tmp_path):
    t = render_scene(SceneSpec(seed=3, queue_length_m=0, **{k: v for k, v in SMALL.items()
                                                           if k != "queue_length_m"}),
                     tmp_path / "e.tif")
    assert t.vehicle_count == 0 and t.length_km == 0 and t.tail_lonlat is None
    doc = _truth(tmp_path / "e.tif")
    assert not any(f["properties"]["role"] == "queue" for f in doc["features"])


def test_given_road_lonlat(tmp_path):
    road = [(44.60, 42.70), (44.601, 42.7015), (44.6035, 42.7022), (44.605, 42.7035)]
    t = render_scene(SceneSpec(seed=1, road_lonlat=road, queue_length_m=200, margin_m=20,
                               workers=1), tmp_path / "g.tif")
    assert np.allclose(t.road_lonlat, road, atol=1e-9)
    assert t.checkpoint_lonlat == road[0]
    assert 0.15 < t.length_km < 0.21


def test_switchback_road_geometry():
    """Issue 18: hairpins of 17-24 m radius, the neighbouring leg 20-40 m away."""
    from queuemeasure.synth.roads import generate_centreline

    for seed in range(3):
        xy = generate_centreline("switchback", 1200, rng=np.random.default_rng(seed), step=1.0)
        seg = np.diff(xy, axis=0)
        heading = np.unwrap(np.arctan2(seg[:, 1], seg[:, 0]))
        curv = np.abs(np.diff(heading)) / np.hypot(*seg[1:].T)
        assert 16.0 <= 1 / curv.max() <= 25.0
        # nearest part of the road more than 80 m away along it: the other leg
        s = np.arange(len(xy))
        other = np.array([np.hypot(*(xy[np.abs(s - i) > 80] - xy[i]).T).min()
                          for i in range(0, len(xy), 5)])
        assert other.min() >= 15.0 and np.percentile(other, 10) <= 40.0
        assert (other <= 40.0).mean() > 0.1


def test_river_of_the_road_tone(tmp_path):
    """A river bed painted in the road's tone and tint, a few metres beside the road."""
    kw = dict(seed=2, road="straight", road_length_m=200, queue_length_m=0, margin_m=40,
              river=True, river_gap_m=3.0, tree_cover=0, buildings=0, laybys=0, haze=0,
              noise=0, workers=1)
    scene = build_scene(SceneSpec(**kw))
    inner = np.abs(scene.luts["river_o"]) - scene.luts["river_bed"]  # the bed's near edge
    assert scene.half_width + 3.0 - 1e-6 <= inner.min() < scene.half_width + 14.0
    grey = render_scene(SceneSpec(river_like_road=True, **kw), tmp_path / "r.tif")
    pale = render_scene(SceneSpec(**kw), tmp_path / "p.tif")
    assert grey.vehicle_count == pale.vehicle_count == 0
    with rasterio.open(tmp_path / "r.tif") as a, rasterio.open(tmp_path / "p.tif") as b:
        ra, rb = a.read().astype(float), b.read().astype(float)
    changed = np.abs(ra - rb).max(axis=0) > 0
    assert changed.any()
    # the changed pixels (the bed) are darker: asphalt, not pale gravel
    assert ra[:, changed].mean() < rb[:, changed].mean()
    with pytest.raises(OptionError):
        build_scene(SceneSpec(river_gap_m=-1.0))


def test_occluded_vehicles_are_in_queue():
    for seed in range(4):
        scene = build_scene(SceneSpec(seed=seed, road_length_m=2000, queue_length_m=1500,
                                      tree_cover=1.0))
        occ = [v for v in scene.vehicles if v.occluded]
        if occ:
            assert any(v.in_queue for v in occ)
            return
    pytest.fail("no occluded vehicle in 4 dense-tree scenes")


def test_bad_options():
    for kw in (dict(gsd_m=2.0), dict(bands=2), dict(dtype="float32"), dict(jpeg=True, dtype="uint16"),
               dict(surface="gravel"), dict(tree_cover=2.0), dict(road="zigzag")):
        with pytest.raises(OptionError):
            build_scene(SceneSpec(**kw))


def _cli():
    group = click.Group()
    group.add_command(synth)
    return group


def test_cli(tmp_path):
    out = tmp_path / "c.tif"
    args = ["synth", str(out), "--road-length-km", "0.4", "--queue-km", "0.15", "--margin", "20",
            "--trees", "0", "--seed", "2", "--json", "--crs", "EPSG:3857"]
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["synthetic"] is True and doc["crs"] == "EPSG:3857" and doc["vehicle_count"] > 5
    assert out.exists() and sidecar_paths(out)["truth"].exists() and sidecar_paths(out)["road"].exists()
    # no clobbering without --overwrite
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = CliRunner().invoke(_cli(), args + ["--overwrite"])
    assert r.exit_code == 0
    # bad values: exit 2, one line, no traceback
    for bad in (["--gsd", "3"], ["--crs", "EPSG:99999"], ["--origin", "abc"]):
        r = CliRunner().invoke(_cli(), ["synth", str(tmp_path / "x.tif")] + bad)
        assert r.exit_code == 2, (bad, r.output)
        assert "Traceback" not in r.output


def test_cli_help_is_light():
    r = CliRunner().invoke(_cli(), ["synth", "--help"])
    assert r.exit_code == 0 and "SYNTHETIC" in r.output
