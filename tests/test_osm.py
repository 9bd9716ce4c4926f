"""Roads from OpenStreetMap, on real OSM data (tests/data/osm/SOURCE.md; © OpenStreetMap
contributors, ODbL): road CG-1 of Andorra from the Spanish border to Andorra la Vella
(dual carriageways, roundabouts, spurs, a break in the ref), and the Kotka motorway with a
ref list (7;15, int_ref E 18)."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.ops
from shapely.geometry import LineString, Point

from queuemeasure import geo
from queuemeasure.errors import HeadError, OptionError, RoadError, RoadGapWarning, RoadWarning
from queuemeasure.osm import (
    ATTRIBUTION,
    Selection,
    is_osm_source,
    normalise_ref,
    osm_road,
    read_osm,
    select_ways,
    traffic_directions,
)

DATA = Path(__file__).parent / "data" / "osm"
CG1_XML = DATA / "andorra_cg1.osm"
ANDORRA_PBF = DATA / "andorra_main_roads.osm.pbf"
KOTKA_PBF = DATA / "kotka_roads.osm.pbf"

# CG-1 in Andorra: the northern end of its middle piece (Andorra la Vella) and its southern
# end (Santa Coloma), 4.9 km apart as the crow flies; the border end of its southern piece
NORTH = (1.5219121, 42.5046245)
SOUTH = (1.4903633, 42.4624378)
BORDER = (1.4728358, 42.4352638)




@pytest.fixture(scope="module")
def cg1():
    return read_osm(CG1_XML)


@pytest.fixture(scope="module")
def north_south(cg1):
    """CG-1 from Andorra la Vella (head) to Santa Coloma, on the carriageways that drive north."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return osm_road(cg1, ref="CG-1", head=NORTH, toward=SOUTH)


def _stations(line_lonlat: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stations along the line of the points, and their distances from it (metres)."""
    local = geo.local_metric_crs(*line_lonlat[0])
    t = geo.transformer(geo.WGS84, local)
    line = LineString(np.column_stack(t.transform(line_lonlat[:, 0], line_lonlat[:, 1])))
    px, py = t.transform(pts[:, 0], pts[:, 1])
    p = [Point(x, y) for x, y in zip(px, py)]
    return np.array([line.project(q) for q in p]), np.array([line.distance(q) for q in p])


def _assert_drives_toward_head(road, ways_by_id):
    """Every one-way way on the path carries traffic toward the path's start (the head)."""
    line = np.asarray(road.line.coords)
    checked = 0
    for wid in road.way_ids:
        w = ways_by_id[wid]
        fwd, bwd = traffic_directions(w.tags)
        if fwd == bwd or (w.lonlat[0] == w.lonlat[-1]).all():  # two-way, or a ring (roundabout)
            continue
        st, off = _stations(line, w.lonlat)
        st = st[off < 0.01]  # the way's vertices on the path (it may end inside a way)
        if len(st) < 2:
            continue
        s_first, s_last = st[0], st[-1]
        driven_from, driven_to = (s_first, s_last) if fwd else (s_last, s_first)
        assert driven_to < driven_from, f"way/{wid} drives away from the head"
        checked += 1
    return checked


# ----------------------------------------------------------------------------- selection


def test_refs_match_across_scripts_spacing_and_lists():
    assert normalise_ref("А-161") == normalise_ref("A 161") == normalise_ref("a161") == "A161"
    assert normalise_ref("Р-217") == normalise_ref("P217")
    assert normalise_ref("E 117") != normalise_ref("E 17")
    data = read_osm(KOTKA_PBF)
    motorway = {33042885, 37952515}  # ref "7;15", int_ref "E 18"
    for ref in ("7", "15", "E18", "e-18", "Е 18"):  # the last one with a Cyrillic Е
        got = {w.id for w in select_ways(data, Selection.make(ref=ref))}
        assert got == motorway, ref
    with pytest.raises(RoadError, match=r"no way in kotka_roads.osm.pbf matches ref '71' \(refs there: 170, 7, 15"):
        select_ways(data, Selection.make(ref="71"))


def test_selection_by_name_tag_and_id(cg1):
    by_ref = {w.id for w in select_ways(cg1, Selection.make(ref="CG-1"))}
    primary = {w.id for w in select_ways(cg1, Selection.make(ref="CG-1", tags=["highway=primary"]))}
    assert primary < by_ref and all(
        w.tags["highway"] == "primary" or w.tags.get("junction") == "roundabout"
        for w in cg1.ways if w.id in primary)
    either = {w.id for w in select_ways(cg1, Selection.make(tags={"highway": "secondary|secondary_link"}))}
    assert either and all(w.tags["highway"].startswith("secondary") or w.tags.get("junction") == "roundabout"
                          for w in cg1.ways if w.id in either)
    assert [w.id for w in select_ways(cg1, Selection.make(ids=["way/6180840"]))][0] == 6180840
    with pytest.raises(RoadError, match="way/1 not in andorra_cg1.osm"):
        select_ways(cg1, Selection.make(ids=["way/1"]))
    for bad in (dict(ids=["node/5"]), dict(tags=["highway="]), dict(ref=" - ")):
        with pytest.raises(OptionError):
            Selection.make(**bad)


def test_one_way_rules():
    assert traffic_directions({"oneway": "yes"}) == (True, False)
    assert traffic_directions({"oneway": "-1"}) == (False, True)
    assert traffic_directions({"junction": "roundabout"}) == (True, False)
    assert traffic_directions({"highway": "motorway"}) == (True, False)
    assert traffic_directions({"highway": "motorway", "oneway": "no"}) == (True, True)
    assert traffic_directions({"highway": "primary"}) == (True, True)


# ----------------------------------------------------------------------------- the path


def test_road_of_many_ways_with_roundabouts_is_the_shortest_path(cg1, north_south):
    """35 ways with 6 roundabouts, joined in order: the path is the one networkx finds over
    the ways' own node ids (an independent graph: OSM node ids from the XML, geodesic
    weights, one-way rules), and continuous from head to toward."""
    nx = pytest.importorskip("networkx")
    road = north_south
    ways = {w.id: w for w in cg1.ways}
    assert len(road.way_ids) >= 30
    assert sum(ways[i].tags.get("junction") == "roundabout" for i in road.way_ids) >= 5
    # independent graph from the XML itself
    root = ET.parse(CG1_XML).getroot()
    pos = {int(n.get("id")): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    G = nx.DiGraph()
    for w in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in w.iter("tag")}
        if tags.get("ref") != "CG-1" and tags.get("junction") != "roundabout":
            continue
        ids = [int(nd.get("ref")) for nd in w.iter("nd")]
        fwd, bwd = traffic_directions(tags)
        for a, b in zip(ids[:-1], ids[1:]):
            d = geo.geodesic_length(np.array([pos[a][0], pos[b][0]]), np.array([pos[a][1], pos[b][1]]))
            if fwd:  # traffic a -> b: the search from the head walks b -> a
                G.add_edge(b, a, weight=d)
            if bwd:
                G.add_edge(a, b, weight=d)
    src = next(i for i, p in pos.items() if p == NORTH)
    dst = next(i for i, p in pos.items() if p == SOUTH)
    expect = nx.shortest_path_length(G, src, dst, weight="weight")
    assert road.length_m == pytest.approx(expect, abs=0.01)
    ll = np.asarray(road.line.coords)
    assert tuple(ll[0]) == NORTH and tuple(ll[-1]) == SOUTH
    assert set(map(tuple, ll)) <= set(pos.values())  # only OSM nodes, no short cuts
    assert _assert_drives_toward_head(road, ways) >= 10


def test_dual_carriageway_takes_the_way_that_drives_to_the_head(cg1, north_south):
    """Between the same two points, the queue toward Andorra la Vella stands on the
    northbound carriageways, the queue toward Santa Coloma on the southbound ones."""
    ways = {w.id: w for w in cg1.ways}
    # half-way, between the northbound carriageway (way/25769122) and the southbound one
    # (way/25768868), 30 m apart there
    on_north = north_south.line.interpolate(0.5, normalized=True)
    on_south = shapely.ops.nearest_points(LineString(ways[25768868].lonlat), on_north)[0]
    mid = ((on_north.x + on_south.x) / 2, (on_north.y + on_south.y) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_north = osm_road(cg1, ref="CG-1", head=NORTH, toward=mid)
        to_mid = osm_road(cg1, ref="CG-1", head=mid, toward=NORTH)
    oneway = {i for i, w in ways.items() if w.tags.get("oneway") == "yes"}
    a, b = set(to_north.way_ids) & oneway, set(to_mid.way_ids) & oneway
    assert len(a) >= 3 and len(b) >= 3 and not a & b  # separate carriageways
    assert _assert_drives_toward_head(to_north, ways) == len(a)
    assert _assert_drives_toward_head(to_mid, ways) == len(b)
    assert to_mid.length_m == pytest.approx(to_north.length_m, rel=0.1)


def test_spurs_are_left_out(cg1, north_south):
    """Ways of the same ref that branch off the path (a dead-end stub, side streets, slip
    roads) are not on it, nor any of their vertices but the junction."""
    sel = select_ways(cg1, Selection.make(ref="CG-1"))
    path_pts = set(map(tuple, np.asarray(north_south.line.coords)))
    branches = set()
    for w in sel:
        touches = [p for p in map(tuple, w.lonlat) if p in path_pts]
        if w.id not in north_south.way_ids and touches:
            assert len(touches) == 1, f"way/{w.id}"
            branches.add(w.id)
    # the stub way/6179692 (a dead end), avinguda Rocafort, a slip road of carretera General 1
    assert {6179692, 547792165, 547792168} <= branches and len(branches) >= 10


def test_against_one_way_tags_only_where_no_selected_way_leads_to_the_head(cg1):
    """Southbound, the selection lacks 0.9 km of the carriageway (it has no ref there): the
    path runs against the one-way tags there only, keeps to the southbound carriageway
    elsewhere, and says so."""
    against = [547794062, 547794054, 547794058]
    with pytest.warns(RoadWarning, match=r"runs 883 m against the one-way tags of "
                      + ", ".join(f"way/{i}" for i in against)) as rec:
        road = osm_road(cg1, ref="CG-1", head=SOUTH, toward=NORTH)
    assert len(rec) == 1 and road.notes == [str(rec[0].message)]
    ways = {w.id: w for w in cg1.ways}
    rest = [i for i in road.way_ids if i not in against]
    checked = _assert_drives_toward_head(replace(road, way_ids=rest), ways)
    assert checked >= 8 and 6000 < road.length_m < 6600


def test_without_toward_the_road_runs_to_the_end_of_the_ways(cg1, north_south):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RoadWarning)
        road = osm_road(cg1, ref="CG-1", head=NORTH)
    end = np.asarray(road.line.coords)[-1]
    again = osm_road(cg1, ref="CG-1", head=NORTH, toward=tuple(end))
    assert road.length_m == pytest.approx(again.length_m, abs=0.01)
    assert road.length_m >= north_south.length_m - 1.0


def test_selection_that_cannot_be_joined_names_the_ways(cg1):
    """CG-1's border piece and its middle piece do not meet (120 m of the road there has
    no ref): one error naming the ways of each piece."""
    with pytest.raises(RoadError) as err:
        osm_road(cg1, ref="CG-1", head=BORDER, toward=SOUTH)
    msg = str(err.value)
    assert "\n" not in msg and "do not form one path" in msg and "3 pieces" in msg
    assert "way/107066831" in msg and "(head)" in msg  # the border piece
    assert "way/6180840" in msg and "(toward)" in msg  # the middle piece
    assert msg.index("(head)") < msg.index("(toward)")


def test_toward_at_the_head_is_refused(cg1):
    with pytest.raises(RoadError, match="has no length"):
        osm_road(cg1, ref="CG-1", head=NORTH, toward=NORTH)


def test_far_points_are_refused(cg1):
    with pytest.raises(HeadError, match="the head is .* from the nearest selected way"):
        osm_road(cg1, ref="CG-1", head=(1.40, 42.47))
    with pytest.raises(HeadError, match="--toward is"):
        osm_road(cg1, ref="CG-1", head=NORTH, toward=(1.60, 42.47))


def test_a_short_gap_is_bridged_with_a_warning():
    """The Kotka motorway's two ways (ref 7;15) do not share a node: 15.6 m apart."""
    with pytest.warns(RoadGapWarning, match=r"bridged a 15\.6 m gap between OSM ways way/33042885 and way/37952515"):
        road = osm_road(KOTKA_PBF, ref="E 18")
    assert road.way_ids in ([37952515, 33042885], [33042885, 37952515])
    assert road.gaps_m == [pytest.approx(15.6, abs=0.05)]


# ----------------------------------------------------------------------------- formats


def _overpass(path: Path, form: str) -> dict:
    """Overpass API JSON of an .osm file, as Overpass writes it: ``geom`` (``out geom;``:
    ways with nodes and inline geometry), ``nodes`` (``out body; >; out skel qt;``), or
    ``relation`` (``relation[ref=...]; out geom;``: only a route relation with its members'
    geometry)."""
    root = ET.parse(path).getroot()
    pos = {int(n.get("id")): (float(n.get("lat")), float(n.get("lon"))) for n in root.iter("node")}
    ways = []
    for w in root.iter("way"):
        ids = [int(nd.get("ref")) for nd in w.iter("nd")]
        el = {"type": "way", "id": int(w.get("id")), "nodes": ids,
              "tags": {t.get("k"): t.get("v") for t in w.iter("tag")}}
        if form == "geom":
            lat = [pos[i][0] for i in ids]
            lon = [pos[i][1] for i in ids]
            el["bounds"] = {"minlat": min(lat), "minlon": min(lon), "maxlat": max(lat), "maxlon": max(lon)}
            el["geometry"] = [{"lat": a, "lon": o} for a, o in zip(lat, lon)]
        ways.append(el)
    head = {"version": 0.6, "generator": "Overpass API 0.7.62", "osm3s": {
        "timestamp_osm_base": "2019-02-23T21:15:02Z",
        "copyright": "The data included in this document is from www.openstreetmap.org. "
                     "The data is made available under ODbL."}}
    if form.startswith("relation"):
        members = [{"type": "way", "ref": w["id"], "role": "",
                    "geometry": [{"lat": pos[i][0], "lon": pos[i][1]} for i in w["nodes"]]}
                   for w in ways]
        rel = {"type": "relation", "id": 1, "members": members, "tags": {
            "type": "route", "route": "road", "ref": "CG-1", "network": "AD:national"}}
        if form == "relation_only":
            return {**head, "elements": [rel]}
        # (relation[...]; way(r);); out geom;  -- the ways carry geometry and tags, no ref
        for w in ways:
            w["tags"].pop("ref", None)
            w["geometry"] = [{"lat": pos[i][0], "lon": pos[i][1]} for i in w["nodes"]]
        return {**head, "elements": [rel] + ways}
    nodes = [{"type": "node", "id": i, "lat": a, "lon": o} for i, (a, o) in pos.items()]
    return {**head, "elements": ways + (nodes if form == "nodes" else [])}


def _layer(tmp_path: Path, ext: str) -> Path:
    """OSM lines as GDAL's OSM driver gives them (``ogr2ogr out.gpkg in.osm.pbf lines``)."""
    pyogrio = pytest.importorskip("pyogrio")
    if "OSM" not in pyogrio.list_drivers():
        pytest.skip("GDAL has no OSM driver")
    df = pyogrio.read_dataframe(ANDORRA_PBF, layer="lines")
    out = tmp_path / f"andorra_lines.{ext}"
    pyogrio.write_dataframe(df, out, layer="lines")
    return out


def _turbo_geojson(path: Path) -> dict:
    """OSM ways as overpass-turbo exports them: GeoJSON features with tags as properties
    and ``@id``/``id`` = ``way/123``."""
    root = ET.parse(path).getroot()
    pos = {n.get("id"): [float(n.get("lon")), float(n.get("lat"))] for n in root.iter("node")}
    feats = [{"type": "Feature", "id": f"way/{w.get('id')}",
              "properties": {"@id": f"way/{w.get('id')}", **{t.get("k"): t.get("v") for t in w.iter("tag")}},
              "geometry": {"type": "LineString", "coordinates": [pos[nd.get("ref")] for nd in w.iter("nd")]}}
             for w in root.iter("way")]
    return {"type": "FeatureCollection", "features": feats}


@pytest.mark.parametrize("form", ["pbf", "geom", "nodes", "relation", "gpkg", "fgb", "dict", "geojson"])
def test_every_format_gives_the_same_road(tmp_path, form, north_south):
    if form == "pbf":
        src, kw = ANDORRA_PBF, {}
    elif form == "geojson":
        pytest.importorskip("pyogrio")
        src = tmp_path / "cg1_turbo.geojson"
        src.write_text(json.dumps(_turbo_geojson(CG1_XML)))
        kw = {}
    elif form in ("gpkg", "fgb"):
        src, kw = _layer(tmp_path, form), {}
    elif form == "dict":
        src, kw = _overpass(CG1_XML, "geom"), {}
    else:
        src = tmp_path / f"cg1_{form}.json"
        src.write_text(json.dumps(_overpass(CG1_XML, form)))
        kw = {}
    assert is_osm_source(src) == (form != "geojson")  # GeoJSON is OSM data only when selected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        road = osm_road(src, ref="CG-1", head=NORTH, toward=SOUTH, **kw)
    assert road.way_ids == north_south.way_ids
    assert road.length_m == pytest.approx(north_south.length_m, abs=1e-3)


def test_relation_members_without_their_ways_warn_that_one_way_is_unknown():
    with pytest.warns(RoadWarning, match=r"101 ways come only as relation members.*way\(r\)"):
        road = osm_road(_overpass(CG1_XML, "relation_only"), ref="CG-1", head=NORTH, toward=SOUTH)
    assert len(road.way_ids) >= 30


def test_ways_without_traffic_are_not_roads():
    nodes = [{"type": "node", "id": i, "lat": 42.5 + i * 1e-3, "lon": 1.5} for i in (1, 2)]
    for hw in ("proposed", "construction", "abandoned"):
        ways = [{"type": "way", "id": 7, "nodes": [1, 2], "tags": {"highway": hw, "ref": "CG-1"}}]
        with pytest.raises(RoadError, match="holds no highway way"):
            read_osm({"elements": nodes + ways})


def test_overpass_without_positions_says_out_geom(tmp_path):
    p = tmp_path / "ids.json"
    p.write_text(json.dumps({"elements": [{"type": "way", "id": 5, "nodes": [1, 2], "tags": {"highway": "primary"}}]}))
    with pytest.raises(RoadError, match="out geom"):
        read_osm(p)


def test_unreadable_sources_are_one_line_road_errors(tmp_path):
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='1' lat='x'/></osm>")
    trunc = tmp_path / "trunc.osm.pbf"
    trunc.write_bytes(ANDORRA_PBF.read_bytes()[:5000])
    for src, msg in ((bad, "cannot read OSM XML bad.osm"), (trunc, "cannot read OSM PBF trunc.osm.pbf"),
                     (tmp_path / "none.osm", "road file not found")):
        with pytest.raises(RoadError, match=msg) as err:
            read_osm(src)
        assert "\n" not in str(err.value)


def test_feature_carries_way_ids_and_attribution(north_south):
    feat = north_south.to_feature(precision=7)
    props = feat["properties"]
    assert props["attribution"] == ATTRIBUTION == "© OpenStreetMap contributors, ODbL"
    assert props["osm_way_ids"] == north_south.way_ids
    assert props["osm_ids"][0] == f"way/{north_south.way_ids[0]}"
    assert props["selection"]["ref"] == "CG-1"
    assert shapely.geometry.shape(feat["geometry"]).equals_exact(north_south.line, 1e-7)
