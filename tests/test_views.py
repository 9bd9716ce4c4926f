"""Results in a notebook and in the geo stack (issue 20): short repr, HTML view,
``__geo_interface__`` and GeoDataFrames."""

from __future__ import annotations

import base64
import re
import sys

import numpy as np
import pytest

import queuemeasure as qm
from queuemeasure.batch import BatchResult
from queuemeasure.errors import MissingDependencyError, OptionError
from scenes import paint_scene


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """A 200 m queue on a 600 m road (UTM), and its result."""
    s = paint_scene(tmp_path_factory.mktemp("views"), road_len=600, queue_len=200, name="views")
    return s, qm.measure(s.path, s.road_path, head=s.head)


# ------------------------------------------------------------------------ repr
def test_repr_of_the_20_km_queue_is_a_few_lines(lars_result):
    r = lars_result
    text = repr(r)
    assert len(text) < 2000
    assert len(text.splitlines()) <= 15
    assert f"{r.length_km:.3f} km" in text and f"{r.vehicle_count} vehicles" in text
    assert "upper_lars_2022-09-26_SYNTHETIC.tif" in text and "SYNTHETIC" in text
    assert "truncated: no" in text and "mode: vehicles" in text
    assert "array" not in text and "[[" not in text


def test_repr_says_truncated_and_lower_bound(tmp_path):
    s = paint_scene(tmp_path, road_len=900, queue_len=800, extent_m=500, name="cut")
    r = qm.measure(s.path, s.road_path, head=s.head)
    assert r.truncated
    assert "at least" in repr(r) and "lower bound" in repr(r)


def test_vehicle_and_batch_result_reprs_are_one_line(short):
    _, r = short
    v = r.vehicles[0]
    assert "\n" not in repr(v) and len(repr(v)) < 200
    assert v.kind in repr(v) and f"{v.s0_m:.1f}" in repr(v)
    ok = BatchResult(id="1", site="lars", date="2022-09-26", tile="/x/t.tif", road="r.geojson",
                     status="ok", result=r.to_dict(), queue_lonlat=r.queue_lonlat.tolist())
    text = repr(ok)
    assert "\n" not in text and len(text) < 300 and f"{r.length_km:.3f} km" in text
    bad = BatchResult(id="2", site="lars", date="2022-09-27", tile="t.tif", road="r", status="error",
                      error="tile not found")
    assert repr(bad).endswith("error: tile not found)")


# ------------------------------------------------------------------------ HTML
def test_repr_html_of_the_20_km_queue_is_small_with_a_thumbnail(lars_result):
    page = lars_result._repr_html_()
    assert len(page) < 200_000
    assert "<table" in page and "19.9" in page and "SYNTHETIC" in page
    imgs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(imgs) == 1
    jpeg = base64.b64decode(imgs[0])
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) < 60_000


def test_thumbnail_reads_decimated_windows_near_the_road(short, read_calls):
    pytest.importorskip("matplotlib")
    from queuemeasure.quicklook import THUMBNAIL_PX, thumbnail

    _, r = short
    calls = read_calls
    jpeg = thumbnail(r)
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(jpeg)).size == (THUMBNAIL_PX, THUMBNAIL_PX)
    assert calls and all(w is not None and shape is not None for w, shape in calls)
    assert all(max(shape[-2:]) <= THUMBNAIL_PX for _, shape in calls)


@pytest.mark.parametrize("overviews", [False, True])
def test_thumbnail_image_only_when_cheap(short, tmp_path, monkeypatch, read_calls, overviews):
    """Over the read budget, a tile without overviews gets no image; one with them does."""
    pytest.importorskip("matplotlib")
    import copy
    import shutil

    import rasterio

    from queuemeasure import quicklook

    s, r = short
    tile = tmp_path / "t.tif"
    shutil.copy(s.path, tile)
    if overviews:
        with rasterio.open(tile, "r+") as ds:
            ds.build_overviews([2, 4, 8])
    moved = copy.copy(r)
    moved.tile = str(tile)
    monkeypatch.setattr(quicklook, "THUMBNAIL_MAX_READS", 0)
    assert quicklook.thumbnail(moved)[:2] == b"\xff\xd8"
    assert bool(read_calls) == overviews


def test_repr_html_without_matplotlib_has_no_thumbnail(short, monkeypatch):
    _, r = short
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # "import matplotlib" fails
    page = r._repr_html_()
    assert "<table" in page and "<img" not in page


def test_repr_html_when_the_tile_is_gone(short, tmp_path):
    import copy

    _, r = short
    gone = copy.copy(r)
    gone.tile = str(tmp_path / "moved.tif")
    page = gone._repr_html_()
    assert "<table" in page and "<img" not in page


# ------------------------------------------------------------------------ geo interface
def test_geo_interface_with_shapely(short):
    from shapely.geometry import Polygon, shape

    _, r = short
    for v in r.vehicles[:5]:
        g = shape(v)
        assert isinstance(g, Polygon) and g.is_valid and g.area > 0
        assert g.equals(Polygon(v.footprint_lonlat))
        assert v.__geo_interface__["properties"]["in_queue"] == v.in_queue
    fc = r.__geo_interface__
    assert fc == r.to_geojson()
    queue = next(f for f in fc["features"] if f["properties"]["role"] == "queue")
    assert shape(queue["geometry"]).geom_type == "LineString"


def test_geodataframe_from_features_of_the_20_km_queue(lars_result):
    gpd = pytest.importorskip("geopandas")
    r = lars_result
    gdf = gpd.GeoDataFrame.from_features(r.__geo_interface__["features"])
    assert int((gdf.geom_type == "Polygon").sum()) == len(r.vehicles)
    assert len(gpd.GeoDataFrame.from_features(r)) == len(r.__geo_interface__["features"])
    v = r.to_geodataframe("vehicles")
    assert v.crs is not None and v.crs.to_epsg() == 4326
    assert len(v) == len(r.vehicles) and int(v["in_queue"].sum()) == r.vehicle_count


def test_geodataframe_columns_are_typed_and_round_trip(short, tmp_path):
    gpd = pytest.importorskip("geopandas")
    pytest.importorskip("pyogrio")
    _, r = short
    v = r.to_geodataframe("vehicles")
    assert str(v["in_queue"].dtype) == "bool" and str(v["s0_m"].dtype) == "float64"
    assert str(v["score"].dtype) == "float64" and v.crs.to_epsg() == 4326
    assert np.allclose(np.asarray(v.geometry.iloc[0].exterior.coords), r.vehicles[0].footprint_lonlat)
    # through the geo interface and back
    again = gpd.GeoDataFrame.from_features(v.__geo_interface__, crs="EPSG:4326")
    assert list(again["s0_m"]) == list(v["s0_m"]) and again.geometry.equals(v.geometry)
    # through a GeoPackage and back
    v.to_file(tmp_path / "v.gpkg", engine="pyogrio")
    back = gpd.read_file(tmp_path / "v.gpkg", engine="pyogrio")
    assert back.crs.to_epsg() == 4326 and list(back.columns) == list(v.columns)
    assert (back["in_queue"] == v["in_queue"]).all() and np.allclose(back["score"], v["score"])
    assert back.geometry.geom_equals_exact(v.geometry, tolerance=1e-12).all()


def test_geodataframe_queue_and_all(short):
    pytest.importorskip("geopandas")
    _, r = short
    q = r.to_geodataframe("queue")
    assert len(q) == 1 and q.geom_type.iloc[0] == "LineString"
    assert q["length_km"].iloc[0] == r.length_km and q["vehicle_count"].iloc[0] == r.vehicle_count
    a = r.to_geodataframe("all")
    assert sorted(set(a["role"])) == ["head", "queue", "tail", "vehicle"]
    assert len(a) == len(r.vehicles) + 3
    with pytest.raises(OptionError, match="vehicles, queue, all"):
        r.to_geodataframe("cars")


def test_geodataframe_of_an_empty_road_keeps_its_columns(tmp_path):
    pytest.importorskip("geopandas")
    s = paint_scene(tmp_path, road_len=300, queue_len=0, name="empty")
    r = qm.measure(s.path, s.road_path, head=s.head)
    if r.vehicles:  # the detector may still find a stray blob; keep only the no-row case
        r.vehicles = []
    v = r.to_geodataframe("vehicles")
    assert len(v) == 0 and "in_queue" in v.columns and str(v["s0_m"].dtype) == "float64"
    assert v.crs.to_epsg() == 4326


def test_geodataframe_without_geopandas_says_how_to_install(short, monkeypatch):
    _, r = short
    monkeypatch.setitem(sys.modules, "geopandas", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'queuemeasure\[geo\]'"):
        r.to_geodataframe()
