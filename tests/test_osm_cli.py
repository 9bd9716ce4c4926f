"""OSM roads on the command line: ``measure --road ROAD.osm --road-ref ...`` gives the same
queue as the same road as GeoJSON, and ``queuemeasure road`` writes the centreline.

The scene is SYNTHETIC (tests/scenes.py); its road is written as OSM XML the way OSM holds
roads: split into several ways, some drawn against the road's direction, with a spur of the
same ref and another road beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pytest
from click.testing import CliRunner

import queuemeasure as qm
from queuemeasure import geo
from queuemeasure.cli.main import cli
from scenes import paint_scene

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "osm"
REF = "А-161"  # Cyrillic А, as in OSM


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _way(wid: int, nodes: list[int], tags: dict[str, str]) -> str:
    nd = "".join(f'<nd ref="{n}"/>' for n in nodes)
    tg = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
    return f'<way id="{wid}">{nd}{tg}</way>'


def write_osm(road_lonlat: np.ndarray, path: Path) -> dict[str, list[int]]:
    """The road as OSM XML: five ways (the 2nd and 4th reversed), a 60 m spur of the same
    ref leaving it at 40 %, and a road of another ref crossing near the head."""
    ll = np.round(road_lonlat, 7)
    n = len(ll)
    nodes = [f'<node id="{i + 1}" lat="{lat:.7f}" lon="{lon:.7f}"/>' for i, (lon, lat) in enumerate(ll)]
    cuts = np.linspace(0, n - 1, 6).round().astype(int)
    ways, ids = [], {"road": [], "spur": [], "other": []}
    tags = {"highway": "primary", "ref": f"{REF};E 117", "surface": "asphalt"}
    for k in range(5):
        seq = list(range(cuts[k] + 1, cuts[k + 1] + 2))
        if k in (1, 3):
            seq = seq[::-1]
        ways.append(_way(100 + k, seq, tags))
        ids["road"].append(100 + k)
    # the spur: perpendicular to the road at 40 % of its vertices
    local = geo.local_metric_crs(*ll[0])
    to_l, to_g = geo.transformer(geo.WGS84, local), geo.transformer(local, geo.WGS84)
    j = int(0.4 * n)
    x, y = np.array(to_l.transform(ll[:, 0], ll[:, 1]))
    tx, ty = x[j + 1] - x[j - 1], y[j + 1] - y[j - 1]
    nx_, ny_ = -ty / np.hypot(tx, ty), tx / np.hypot(tx, ty)
    spur_ids = [j + 1]
    for k, d in enumerate((20.0, 40.0, 60.0)):
        lon, lat = to_g.transform(x[j] + d * nx_, y[j] + d * ny_)
        nodes.append(f'<node id="{n + 10 + k}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
        spur_ids.append(n + 10 + k)
    ways.append(_way(200, spur_ids, {"highway": "primary_link", "ref": REF}))
    ids["spur"].append(200)
    # another road through the head
    other = []
    for k, d in enumerate((-80.0, 80.0)):
        lon, lat = to_g.transform(x[0] + d * nx_, y[0] + d * ny_)
        nodes.append(f'<node id="{n + 20 + k}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
        other.append(n + 20 + k)
    ways.append(_way(300, [other[0], 1, other[1]], {"highway": "secondary", "ref": "Р-217"}))
    ids["other"].append(300)
    path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"queuemeasure tests\">\n"
                    + "\n".join(nodes + ways) + "\n</osm>\n", encoding="utf-8")
    return ids


@pytest.fixture(scope="module")
def osm_scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("osm_scene")
    scene = paint_scene(tmp, road_len=600, queue_len=300, name="osm_SYNTHETIC")
    road = json.loads(scene.road_path.read_text())["geometry"]["coordinates"]
    ll = np.asarray(road, dtype=float)
    osm = tmp / "road.osm"
    ids = write_osm(ll, osm)
    return scene, osm, ids, tuple(ll[0]), tuple(ll[-1])


def _lonlat(p) -> str:
    return f"{float(p[0])!r},{float(p[1])!r}"


def test_measure_osm_road_gives_the_geojson_length(osm_scene):
    """The CLI contract: measure TILE --road ROAD.osm --road-ref REF --head --toward --json."""
    scene, osm, _, head, end = osm_scene
    res_osm = run("measure", scene.path, "--road", osm, "--road-ref", REF, "--head", _lonlat(head),
                  "--toward", _lonlat(end), "--json")
    assert res_osm.exit_code == 0, res_osm.output
    res_geo = run("measure", scene.path, "--road", scene.road_path, "--head", _lonlat(head), "--json")
    assert res_geo.exit_code == 0, res_geo.output
    a, b = json.loads(res_osm.stdout), json.loads(res_geo.stdout)
    # OSM nodes hold 7 decimals (about 1 cm): the strips differ by sub-centimetre shifts,
    # the lengths by millimetres (1 cm here: a fiftieth of a 0.5 m pixel)
    assert a["length_km"] == pytest.approx(b["length_km"], abs=1e-5)
    assert a["vehicle_count"] == b["vehicle_count"] > 30
    assert a["road_km_searched"] == pytest.approx(b["road_km_searched"], abs=1e-5)
    assert abs(a["length_km"] * 1000 - scene.length_m) < 10
    assert a["notes"][0] == ("road built from 5 OpenStreetMap ways (way/100, way/101, way/102, "
                             "way/103, way/104); © OpenStreetMap contributors, ODbL")


def test_measure_osm_road_in_a_subprocess(osm_scene):
    """The same contract through ``python -m queuemeasure`` (as a user types it)."""
    scene, osm, _, head, end = osm_scene
    cmd = [sys.executable, "-m", "queuemeasure", "measure", str(scene.path), "--road", str(osm),
           "--road-ref", "A 161", "--head", _lonlat(head), "--toward", _lonlat(end), "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert abs(json.loads(out.stdout)["length_km"] * 1000 - scene.length_m) < 10


def test_measure_from_python_with_road_select(osm_scene):
    scene, osm, _, head, end = osm_scene
    with warnings.catch_warnings():
        warnings.simplefilter("error", qm.RoadWarning)
        r_osm = qm.measure(scene.path, osm, head=head, road_select={"ref": "E117", "toward": end})
    r_geo = qm.measure(scene.path, scene.road_path, head=head)
    assert r_osm.length_km == pytest.approx(r_geo.length_km, abs=1e-5)
    # without a selection every highway way is taken: the other road crosses at the head,
    # so the road is built to its far end, the longer side
    with pytest.warns(qm.RoadWarning, match="other side of the head"):
        r_all = qm.measure(scene.path, osm, head=head)
    assert r_all.length_km == pytest.approx(r_geo.length_km, abs=1e-5)


def test_road_command_writes_the_centreline(osm_scene, tmp_path):
    scene, osm, ids, head, end = osm_scene
    out = tmp_path / "road.geojson"
    res = run("road", osm, "--road-ref", REF, "--head", _lonlat(head), "--toward", _lonlat(end), "--out", out)
    assert res.exit_code == 0, res.output
    assert "© OpenStreetMap contributors, ODbL" in res.stderr
    feat = json.loads(out.read_text(encoding="utf-8"))
    props = feat["properties"]
    assert props["osm_way_ids"] == ids["road"]  # in order from the head, spur left out
    assert props["attribution"] == "© OpenStreetMap contributors, ODbL"
    ll = np.asarray(feat["geometry"]["coordinates"])
    truth = np.asarray(json.loads(scene.road_path.read_text())["geometry"]["coordinates"])
    assert len(ll) == len(truth) and np.abs(ll - truth).max() < 1e-7
    # the written road measures like the original
    res2 = run("measure", scene.path, "--road", out, "--head", _lonlat(head), "--json")
    assert res2.exit_code == 0, res2.output
    res_geo = run("measure", scene.path, "--road", scene.road_path, "--head", _lonlat(head), "--json")
    assert json.loads(res2.stdout)["length_km"] == pytest.approx(json.loads(res_geo.stdout)["length_km"], abs=1e-5)
    # not overwritten without --overwrite
    again = run("road", osm, "--road-ref", REF, "--head", _lonlat(head), "--out", out)
    assert again.exit_code == 2 and "exists" in again.stderr
    # a road is written as GeoJSON only
    bad = run("road", osm, "--road-ref", REF, "--head", _lonlat(head), "--out", tmp_path / "road.gpkg")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "road.gpkg").exists()
    # to stdout without --out
    res3 = run("road", osm, "--road-id", "way/102", "--road-id", "w103", "--precision", "5")
    assert res3.exit_code == 0, res3.output
    assert json.loads(res3.stdout)["properties"]["osm_way_ids"] in ([102, 103], [103, 102])


def test_road_command_on_real_data(tmp_path):
    out = tmp_path / "cg1.geojson"
    where = ["--head", "1.5219121,42.5046245", "--toward", "1.4903633,42.4624378"]
    res = run("road", DATA / "andorra_main_roads.osm.pbf", "--road-ref", "CG-1", *where, "--out", out)
    assert res.exit_code == 0, res.output
    assert "Warning" not in res.stderr
    props = json.loads(out.read_text(encoding="utf-8"))["properties"]
    assert len(props["osm_way_ids"]) >= 30 and props["length_m"] == pytest.approx(6399.2, abs=0.1)
    # without its secondary ways, no part of CG-1 leads north there: said, not hidden
    res = run("road", DATA / "andorra_main_roads.osm.pbf", "--road-ref", "CG-1", "--road-tag",
              "highway=primary", *where)
    assert res.exit_code == 0, res.output
    assert "Warning: no selected way leads from --toward to the head" in res.stderr
    assert "against the one-way tags of" in json.loads(res.stdout)["properties"]["notes"][0]


@pytest.mark.parametrize("args, message", [
    (["--road-ref", "CG-1", "--head", "1.4728358,42.4352638", "--toward", "1.4903633,42.4624378"],
     "do not form one path: they fall into 3 pieces"),
    (["--road-ref", "CG-9", "--head", "1.52,42.50"], "no way in andorra_cg1.osm matches ref 'CG-9'"),
    (["--road-id", "node/5"], "'node/5' is not a way id"),
    (["--road-tag", "=primary"], "is not a tag filter"),
    (["--road-ref", "CG-1", "--head", "1.40,42.47"], "the head is 7,117 m from the nearest selected way"),
    (["--road-ref", "CG-1", "--toward", "1.52,42.50"], "--toward needs --head"),
])
def test_road_command_errors_are_one_line(args, message):
    res = run("road", DATA / "andorra_cg1.osm", *args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], res.stderr
    assert "Traceback" not in res.output


def test_measure_osm_options_need_a_road(osm_scene):
    scene, osm, _, head, end = osm_scene
    res = run("measure", scene.path, "--road-ref", REF, "--head", _lonlat(head), "--trace-to", _lonlat(end))
    assert res.exit_code == 2 and "need --road" in res.stderr
    res = run("measure", scene.path, "--road", osm, "--road-ref", "CG-1", "--head", _lonlat(head))
    assert res.exit_code == 2 and "no way in road.osm matches ref 'CG-1'" in res.stderr
