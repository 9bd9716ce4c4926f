"""OSM roads in ``search``, ``check`` and ``batch`` manifests: the road ``measure`` builds.

``search`` and ``check`` given OSM data with ``--road-ref``/``--head``/``--toward`` must
give what they give for the GeoJSON that ``queuemeasure road`` writes for the same
selection: the same corridor cloud and clear km, the same reference for
``--reference auto``, the same verdict. The road is the real CG-1 of Andorra
(tests/data/osm, © OpenStreetMap contributors, ODbL); the Sentinel-2-like items over it
are SYNTHETIC (tests/stacfix.py), served by a mock STAC API on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clicheck import fails, run
from stacfix import make_item, write_cog

DATA = Path(__file__).parent / "data" / "osm"
PBF = DATA / "andorra_main_roads.osm.pbf"
HEAD = (1.5219121, 42.5046245)
TOWARD = (1.4903633, 42.4624378)
CG1_M = 6399.2  # CG-1 from HEAD toward TOWARD (tests/test_osm_cli.py)
#: On the road built without a selection (every highway way from HEAD: 10.3 km, on past
#: TOWARD), 2.3 km beyond CG-1's end: cloud there is not over CG-1's corridor.
BEYOND = (1.478038, 42.4414952)
UTM31N = 32631
DATES = "2022-09-10/2022-09-30"


def _ll(p) -> str:
    return f"{float(p[0])!r},{float(p[1])!r}"


SELECT = ["--road-ref", "CG-1", "--head", _ll(HEAD), "--toward", _ll(TOWARD)]


@pytest.fixture(scope="module")
def cg1_geojson(tmp_path_factory):
    """The GeoJSON `queuemeasure road` writes for the selection."""
    out = tmp_path_factory.mktemp("cg1") / "cg1.geojson"
    res = run("road", PBF, *SELECT, "--out", out)
    assert res.exit_code == 0, res.output
    return out


def _grid(res_m: float = 10.0, pad_m: float = 600.0):
    """A UTM 31N grid over CG-1 between HEAD and TOWARD: (x0, y0, size in pixels)."""
    from pyproj import Transformer

    t = Transformer.from_crs(4326, UTM31N, always_xy=True)
    xs, ys = t.transform([HEAD[0], TOWARD[0], BEYOND[0]], [HEAD[1], TOWARD[1], BEYOND[1]])
    x0 = np.floor((min(xs) - pad_m) / 20.0) * 20.0
    y0 = np.ceil((max(ys) + pad_m) / 20.0) * 20.0
    span = max(max(xs) - min(xs), max(ys) - min(ys)) + 2 * pad_m
    return float(x0), float(y0), int(np.ceil(span / res_m / 64.0)) * 64


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, server):
    """SYNTHETIC 10 m bands (noise) and 20 m SCLs over CG-1, as items of a mock STAC API.

    ``AD_0926`` clear; ``AD_0924`` cloud over the north half; ``AD_0921`` cloud on a patch
    about BEYOND, off CG-1 (clear over CG-1's corridor: its reference); ``AD_0916``
    clear; ``AD_0927`` a footprint sliver off the road.
    """
    from httpserver import MockStac
    from shapely.geometry import box, mapping

    tmp = tmp_path_factory.mktemp("ad")
    x0, y0, size = _grid()
    rng = np.random.default_rng(3)
    bands = {k: write_cog(tmp / f"{n}.tif", (1000 + rng.integers(0, 600, (size, size))).astype(np.uint16),
                          x0=x0, y0=y0, res=10.0, crs=UTM31N)
             for k, n in (("blue", "B02"), ("green", "B03"), ("red", "B04"), ("nir", "B08"))}
    h = size // 2
    rr, cc = np.mgrid[0:h, 0:h]
    # a cloud patch (class 8) 1.6 km wide about BEYOND, off CG-1
    from pyproj import Transformer

    mx, my = Transformer.from_crs(4326, UTM31N, always_xy=True).transform(*BEYOND)
    scls = {
        "clear": np.full((h, h), 4),
        "north": np.where(rr < h // 2, 9, 4),
        "patch": np.full((h, h), 4),
    }
    pr, pc = int((y0 - my) / 20.0), int((mx - x0) / 20.0)
    scls["patch"][max(pr - 40, 0):pr + 40, max(pc - 40, 0):pc + 40] = 8
    scl_paths = {k: write_cog(tmp / f"SCL_{k}.tif", v.astype(np.uint8), x0=x0, y0=y0, res=20.0, crs=UTM31N)
                 for k, v in scls.items()}

    def item(name, when, scl, geometry=None):
        hrefs = {**{k: str(p) for k, p in bands.items()}, "scl": str(scl_paths[scl])}
        it = make_item(hrefs, item_id=name, when=when, size=size, x0=x0, y0=y0, res=10.0, orbit=51,
                       tile="31TCH", crs=UTM31N)
        it["collection"] = "sentinel-2-l2a"
        if geometry is not None:
            it["geometry"] = geometry
        return it

    base = item("tmp", "2022-09-26T10:50:00Z", "clear")
    w, s, e, n = base["bbox"]
    sliver = mapping(box(w, s, w + 0.02 * (e - w), s + 0.02 * (n - s)))
    items = [item("AD_0926", "2022-09-26T10:50:00Z", "clear"),
             item("AD_0924", "2022-09-24T10:50:00Z", "north"),
             item("AD_0921", "2022-09-21T10:50:00Z", "patch"),
             item("AD_0916", "2022-09-16T10:50:00Z", "clear"),
             item("AD_0927", "2022-09-27T10:50:00Z", "clear", geometry=sliver)]
    return MockStac(server, items, by_bbox=True)


def _items(res) -> dict[str, dict]:
    assert res.exit_code == 0, res.output
    return {h["id"]: h for h in json.loads(res.stdout)["items"]}


def test_search_osm_road_is_the_road_measure_uses(catalogue, cg1_geojson):
    osm = _items(run("search", "--road", PBF, *SELECT, "--dates", DATES, "--stac", catalogue.url, "--json"))
    sent = catalogue.searches[-1]["intersects"]
    geo = _items(run("search", "--road", cg1_geojson, "--head", _ll(HEAD), "--dates", DATES,
                     "--stac", catalogue.url, "--json"))
    # the catalogue was asked about the same line
    assert np.allclose(catalogue.searches[-1]["intersects"]["coordinates"], sent["coordinates"], atol=1e-9)
    assert sorted(osm) == sorted(geo) == ["AD_0916", "AD_0921", "AD_0924", "AD_0926"]  # not the sliver
    for k in osm:
        for key in ("road_covered_pct", "cloud_pct_corridor", "clear_km"):
            assert osm[k][key] == pytest.approx(geo[k][key], abs=1e-9), (k, key)
    # the corridor is CG-1's from the head toward --toward: all of it clear in a clear item
    assert osm["AD_0926"]["cloud_pct_corridor"] == 0
    assert osm["AD_0926"]["clear_km"] == pytest.approx(CG1_M / 1000, abs=0.03)
    assert 20 < osm["AD_0924"]["cloud_pct_corridor"] < 100
    assert osm["AD_0921"]["cloud_pct_corridor"] == 0
    # every highway way from the head (no selection) is another, longer road: into the patch
    every = _items(run("search", "--road", PBF, "--head", _ll(HEAD), "--dates", DATES, "--stac", catalogue.url,
                       "--json"))
    assert every["AD_0921"]["cloud_pct_corridor"] > 5
    # another --toward is another road: the selection reaches the corridor
    ll = json.loads(cg1_geojson.read_text(encoding="utf-8"))["geometry"]["coordinates"]
    other = _items(run("search", "--road", PBF, "--road-ref", "CG-1", "--head", _ll(HEAD), "--toward",
                       _ll(ll[len(ll) // 4]), "--dates", DATES, "--stac", catalogue.url, "--json"))
    assert other["AD_0926"]["clear_km"] < 0.5 * osm["AD_0926"]["clear_km"]


def test_search_items_takes_road_select_like_measure(catalogue, cg1_geojson):
    from queuemeasure.search import search_items

    hits = search_items(PBF, DATES, head=HEAD, road_select={"ref": "CG-1", "toward": TOWARD},
                        stac=catalogue.url)
    ref = search_items(cg1_geojson, DATES, head=HEAD, stac=catalogue.url)
    assert [h.id for h in hits] == [h.id for h in ref]
    assert [h.clear_km for h in hits] == pytest.approx([h.clear_km for h in ref], abs=1e-9)


@pytest.mark.parametrize("args, code, needle", [
    (["--road", PBF, "--road-ref", "CG-9", "--head", _ll(HEAD)], 2, "no way in andorra_main_roads.osm.pbf matches ref 'CG-9'"),
    (["--road", PBF, "--road-ref", "CG-1", "--toward", _ll(TOWARD)], 2, "toward needs a head"),
    (["--road", PBF, "--road-id", "node/5"], 2, "'node/5' is not a way id"),
    (["--road", PBF, "--road-ref", "CG-1", "--head", "1.40,42.47"], 2, "from the nearest selected way"),
    (["--road-ref", "CG-1", "--head", _ll(HEAD)], 2, "--road"),
])
def test_search_osm_errors_are_one_line_before_the_catalogue(args, code, needle):
    # an unreachable catalogue: a road error must come first (exit 2, not the server's 1)
    fails(run("search", *args, "--dates", DATES, "--stac", "http://127.0.0.1:9/stac"), code, needle=needle)


def test_check_reference_auto_uses_the_osm_road(catalogue, cg1_geojson):
    item = catalogue.url + "/collections/sentinel-2-l2a/items/AD_0926"
    common = ["--claim-km", 3, "--reference", "auto", "--reference-days", 15, "--json"]
    a = run("check", item, "--road", PBF, *SELECT, *common)
    assert a.exit_code == 0, a.output
    b = run("check", item, "--road", cg1_geojson, "--head", _ll(HEAD), *common)
    assert b.exit_code == 0, b.output
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da["verdict"] == db["verdict"] and da["length_km"] == pytest.approx(db["length_km"], abs=1e-9)
    ma, mb = da["measurement"], db["measurement"]
    assert ma["road_km_searched"] == pytest.approx(mb["road_km_searched"], abs=1e-9)
    assert ma["road_km_searched"] == pytest.approx(CG1_M / 1000, abs=0.01)
    # 0921 (cloud off CG-1's corridor), not 0924 (cloud over the north half) though nearer
    refs = [n for n in ma["notes"] if n.startswith("reference AD_")]
    assert len(refs) == 1 and refs[0].startswith("reference AD_0921") and "among 2 clear item" in refs[0]
    assert refs == [n for n in mb["notes"] if n.startswith("reference AD_")]
    assert any("OpenStreetMap contributors, ODbL" in n for n in ma["notes"])


def test_check_osm_errors_are_one_line(catalogue, tmp_path):
    item = catalogue.url + "/collections/sentinel-2-l2a/items/AD_0926"
    fails(run("check", item, "--claim-km", 3, "--road", PBF, "--road-ref", "CG-9", "--head", _ll(HEAD)), 2,
          needle="no way in andorra_main_roads.osm.pbf matches ref 'CG-9'")
    fails(run("check", item, "--claim-km", 3, "--road-ref", "CG-1", "--head", _ll(HEAD)), 2,
          needle="need --road")


@pytest.fixture(scope="module")
def painted(tmp_path_factory):
    """A SYNTHETIC painted queue whose road is written as OSM XML (tests/test_osm_cli.py)."""
    from scenes import paint_scene
    from test_osm_cli import write_osm

    tmp = tmp_path_factory.mktemp("painted")
    scene = paint_scene(tmp, road_len=600, queue_len=300, name="osmcheck_SYNTHETIC")
    ll = np.asarray(json.loads(scene.road_path.read_text())["geometry"]["coordinates"], float)
    write_osm(ll, tmp / "road.osm")
    return scene, tmp / "road.osm", tuple(ll[0]), tuple(ll[-1])


def test_check_osm_road_on_a_local_tile(painted, tmp_path):
    from test_osm_cli import REF

    scene, osm, head, end = painted
    sel = ["--road-ref", REF, "--head", _ll(head), "--toward", _ll(end)]
    exported = tmp_path / "road.geojson"
    assert run("road", osm, *sel, "--out", exported).exit_code == 0
    for claim, expected in ((0.3, "consistent"), (2.0, "contradicted")):
        a = run("check", scene.path, "--road", osm, *sel, "--claim-km", claim, "--json")
        assert a.exit_code == 0, a.output
        b = run("check", scene.path, "--road", exported, "--head", _ll(head), "--claim-km", claim, "--json")
        da, db = json.loads(a.stdout), json.loads(b.stdout)
        assert da["verdict"] == db["verdict"] == expected
        assert da["length_km"] == pytest.approx(db["length_km"], abs=1e-9)
        assert abs(da["length_km"] * 1000 - scene.length_m) < 10
    # a ref that no way carries: one line, exit 2
    fails(run("check", scene.path, "--road", osm, "--road-ref", "Р-999", "--head", _ll(head),
              "--claim-km", 0.3), 2, needle="matches ref")


def test_check_claim_takes_road_select_like_measure(painted):
    from queuemeasure.check import check_claim
    from test_osm_cli import REF

    scene, osm, head, end = painted
    v, result = check_claim(scene.path, 0.3, road=osm, head=head, road_select={"ref": REF, "toward": end})
    assert v.verdict == "consistent" and abs(result.length_km * 1000 - scene.length_m) < 10
    assert result.notes[0].startswith("road built from 5 OpenStreetMap ways")


# ---------------------------------------------------------------------- batch manifest rows
def test_batch_manifest_rows_choose_the_osm_road(painted, tmp_path):
    from queuemeasure.batch import measure_row, read_manifest
    from test_osm_cli import REF

    scene, osm, head, end = painted
    exported = tmp_path / "road.geojson"
    assert run("road", osm, "--road-ref", REF, "--head", _ll(head), "--toward", _ll(end), "--out", exported).exit_code == 0
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "site,date,tile,road,head,road_ref,road_tag,road_id,toward\n"
        f'osm,2022-09-26,{scene.path},{osm},"{_ll(head)}",{REF},highway=primary|primary_link,,"{_ll(end)}"\n'
        f'geojson,2022-09-26,{scene.path},{exported},"{_ll(head)}",,,,\n'
        f'ids,2022-09-26,{scene.path},{osm},"{_ll(head)}",,,way/100;way/101 w102,\n', encoding="utf-8")
    rows = read_manifest(manifest)
    assert rows[0].options["road_select"] == {"ref": REF, "name": None, "ids": [], "tags": [
        "highway=primary|primary_link"], "toward": end}
    assert "road_select" not in rows[1].options
    assert rows[2].options["road_select"]["ids"] == ["way/100", "way/101", "w102"]
    got = [measure_row(r.tile, r.road, r.measure_kwargs()) for r in rows]
    assert [g["status"] for g in got] == ["ok"] * 3, [g["error"] for g in got]
    a, b, c = (g["result"] for g in got)
    assert a["length_km"] == pytest.approx(b["length_km"], abs=1e-9)
    assert abs(a["length_km"] * 1000 - scene.length_m) < 10
    assert "way/102" in c["notes"][0] and "way/103" not in c["notes"][0]  # only the ways listed
    json.dumps(rows[0].measure_kwargs())  # the results CSV's options column


@pytest.mark.parametrize("cells, needle", [
    ({"road_id": "node/5"}, "column 'road_id': 'node/5' is not a way id"),
    ({"road_tag": "=primary"}, "column 'road_tag'"),
    ({"toward": "1.52,42.50"}, "column 'toward': needs a head"),
    ({"toward": "x,1", "head": "1.52,42.50"}, "column 'toward': 'x,1' is not LON,LAT"),
])
def test_batch_manifest_osm_cells_are_checked(cells, needle):
    from queuemeasure.batch import ManifestError, parse_manifest_rows

    row = {"site": "s", "date": "2022-09-26", "tile": "t.tif", "road": str(PBF), **cells}
    with pytest.raises(ManifestError, match=needle.replace("(", r"\(")):
        parse_manifest_rows([row])


def test_check_claim_reads_the_osm_data_once(catalogue, monkeypatch):
    """The corridor check, the reference's choice and the measurement share one read."""
    import queuemeasure.osm as osm
    from queuemeasure.check import check_claim

    reads = []
    real = osm.read_osm

    def counting(source, **kw):
        reads.append(source)
        return real(source, **kw)

    monkeypatch.setattr(osm, "read_osm", counting)
    item = catalogue.url + "/collections/sentinel-2-l2a/items/AD_0926"
    v, result = check_claim(item, 3, road=PBF, head=HEAD, road_select={"ref": "CG-1", "toward": TOWARD},
                            reference="auto", reference_days=15)
    assert reads == [PBF]
    assert result.road_km_searched == pytest.approx(CG1_M / 1000, abs=0.01)
    assert any(n.startswith("reference AD_0921") for n in result.notes)
