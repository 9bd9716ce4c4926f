"""Road loading, joining, head cut and geodesic stations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from queuemeasure import geo
from queuemeasure.errors import CRSError, HeadError, RoadError, RoadGapWarning
from queuemeasure.road import join_parts, load_road, prepare_road

LINE = [[44.631, 42.768], [44.635, 42.780], [44.640, 42.800]]


def test_geojson_forms_all_load(tmp_path):
    geom = {"type": "LineString", "coordinates": LINE}
    feat = {"type": "Feature", "properties": {}, "geometry": geom}
    fc = {"type": "FeatureCollection", "features": [feat]}
    p = tmp_path / "r.geojson"
    p.write_text(json.dumps(fc))
    wkt = "LINESTRING (" + ", ".join(f"{x} {y}" for x, y in LINE) + ")"
    for src in (geom, feat, fc, json.dumps(feat), str(p), p, wkt, shapely.LineString(LINE)):
        parts, crs = load_road(src)
        assert crs == geo.WGS84
        np.testing.assert_allclose(parts[0], LINE)


def test_length_is_geodesic_not_planar():
    sides = prepare_road({"type": "LineString", "coordinates": LINE})
    lon, lat = np.array(LINE).T
    _, _, d = geo.GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    assert sides.sides[0].length_m == pytest.approx(d.sum(), rel=1e-9)
    # Web Mercator "metres" would be ~36 % too long at 42.7 N
    x, y = geo.transformer(4326, 3857).transform(lon, lat)
    merc = np.hypot(np.diff(x), np.diff(y)).sum()
    assert merc / d.sum() == pytest.approx(1 / np.cos(np.radians(42.78)), rel=0.01)


@pytest.mark.parametrize("text,msg", [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    ('{"foo": 1}', "not GeoJSON"),
    ('{"type": "Point", "coordinates": [44.6, 42.7]}', "LineString"),
    ('{"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}', "LineString"),
    ('{"type": "LineString", "coordinates": [[44.6, 42.7]]}', "fewer than two points"),
    ('{"type": "LineString", "coordinates": [[44.6, 42.7], [44.6, 42.7]]}', "non-zero length"),
    ('{"type": "LineString", "coordinates": [[500000, 4700000], [500100, 4700100]]}', "--road-crs"),
    ("BANANA (1 2)", "neither GeoJSON nor WKT"),
])
def test_bad_roads_say_what_is_wrong(text, msg):
    with pytest.raises(RoadError, match=msg):
        prepare_road(text)


def test_missing_road_file(tmp_path):
    with pytest.raises(RoadError, match="not found"):
        load_road(str(tmp_path / "nope.geojson"))


def test_road_in_projected_crs():
    to_utm = geo.transformer(4326, 32638)
    x, y = to_utm.transform(*np.array(LINE).T)
    line = {"type": "LineString", "coordinates": np.column_stack([x, y]).tolist()}
    a = prepare_road(line, crs="EPSG:32638").sides[0].length_m
    b = prepare_road({"type": "LineString", "coordinates": LINE}).sides[0].length_m
    assert a == pytest.approx(b, rel=1e-7)
    with pytest.raises(CRSError):
        prepare_road(line, crs="EPSG:99999999")


def test_parts_are_joined_reversed_and_bridged():
    # three parts, one reversed, one with a 10 m gap
    a = [[44.631, 42.768], [44.632, 42.770]]
    b = [[44.6335, 42.772], [44.632, 42.770]]           # reversed, touching a
    lon_gap = 10 / (111320 * np.cos(np.radians(42.772)))
    c = [[44.6335 + lon_gap, 42.772], [44.635, 42.775]]  # 10 m beyond b's far end
    mls = {"type": "MultiLineString", "coordinates": [c, a, b]}
    with pytest.warns(RoadGapWarning, match="bridged a 10"):
        sides = prepare_road(mls, head=(44.631, 42.768))
    assert len(sides.sides) == 1
    lonlat = sides.sides[0].lonlat
    np.testing.assert_allclose(lonlat[0], a[0], atol=1e-9)
    np.testing.assert_allclose(lonlat[-1], c[-1], atol=1e-9)


def test_unrelated_lines_are_refused():
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": LINE}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString",
                                                            "coordinates": [[44.70, 42.9], [44.71, 42.91]]}},
    ]}
    with pytest.raises(RoadError, match="do not form one path"):
        prepare_road(fc)


def test_head_inside_line_gives_two_sides_and_far_head_is_refused():
    sides = prepare_road({"type": "LineString", "coordinates": LINE}, head=(44.635, 42.780))
    assert [s.side for s in sides.sides] == ["forward", "backward"]
    total = sum(s.length_m for s in sides.sides)
    whole = prepare_road({"type": "LineString", "coordinates": LINE}).sides[0].length_m
    assert total == pytest.approx(whole, rel=1e-6)
    fwd = prepare_road({"type": "LineString", "coordinates": LINE}, head=(44.635, 42.780), direction="forward")
    assert [s.side for s in fwd.sides] == ["forward"]
    with pytest.raises(HeadError, match="from the road"):
        prepare_road({"type": "LineString", "coordinates": LINE}, head=(44.70, 42.78))
    with pytest.raises(HeadError, match="no road on the backward side"):
        prepare_road({"type": "LineString", "coordinates": LINE}, head=tuple(LINE[0]), direction="backward")


def test_stations_round_trip():
    path = prepare_road({"type": "LineString", "coordinates": LINE}).sides[0]
    s = np.linspace(0, path.length_m, 57)
    ll = path.lonlat_at(s)
    seg = geo.geodesic_segment_lengths(ll[:, 0], ll[:, 1])
    # chords between samples cut the one corner by ~1.5 cm
    np.testing.assert_allclose(np.cumsum(seg), s[1:], rtol=1e-6, atol=0.05)


coord = st.tuples(st.floats(-0.02, 0.02), st.floats(-0.02, 0.02))


@settings(max_examples=40, deadline=None)
@given(pts=st.lists(coord, min_size=2, max_size=8), t=st.floats(0, 1))
def test_head_cut_never_loses_or_adds_road(pts, t):
    xy = np.array([[44.6 + a, 42.7 + b] for a, b in pts])
    seg = np.hypot(*np.diff(xy, axis=0).T)
    if (seg < 1e-5).any():
        return
    line = shapely.LineString(xy)
    if not line.is_simple:
        return
    head = line.interpolate(t, normalized=True)
    try:
        whole = prepare_road(line).sides[0].length_m
    except RoadError:
        return  # too short to search at all: refused (see the test below)
    if whole < 3.0:
        return  # a road shorter than the end tolerance on both sides is refused, see below
    sides = prepare_road(line, head=(head.x, head.y))
    assert sum(s.length_m for s in sides.sides) == pytest.approx(whole, rel=1e-6, abs=2.0)
    for s in sides.sides:
        assert np.all(np.diff(s.station_m) >= 0)
        np.testing.assert_allclose(s.lonlat[0], sides.head_lonlat, atol=1e-7)


def test_too_short_road_with_head_in_the_middle_is_refused():
    lon_1m = 1.0 / (111320 * np.cos(np.radians(42.7)))
    line = shapely.LineString([(44.6, 42.7), (44.6 + 1.5 * lon_1m, 42.7)])
    with pytest.raises(RoadError, match="too short"):
        prepare_road(line, head=(44.6 + 0.75 * lon_1m, 42.7))


def test_join_parts_refuses_points_only():
    with pytest.raises(RoadError):
        join_parts([np.array([[0.0, 0.0]])])
