"""STAC items as tiles, read over a real HTTP server (issue 16).

The items are the real Earth Search item in tests/data/stac rewritten to point at
SYNTHETIC COGs made here (tests/stacfix.py), served with range requests by
tests/httpserver.py on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from clicheck import fails, run
from httpserver import RangeServer
from stacfix import REAL_ITEM, make_assets, make_item, real_item, split_stack

from queuemeasure.errors import ItemError, RemoteError
from queuemeasure.raster import open_tile
from queuemeasure.stac import band_assets, gdal_path, is_stac_item, item_grid_code, item_orbit, load_item


@pytest.fixture(scope="module")
def grid_assets(tmp_path_factory):
    """Position-coded bands (tests/stacfix.py) on a 512 px grid, SCL cloudy east of col 128."""
    out = tmp_path_factory.mktemp("grid")
    paths = make_assets(out, scl=lambda r, c: np.where(c > 128, 9, 4))
    return out, paths


# ---------------------------------------------------------------------- the real item
def test_real_earth_search_item_bands():
    item = real_item()
    bands = band_assets(item)
    assert {b: a.key for b, a in bands.items()} == {
        "B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "SCL": "scl"}
    red = bands["B04"]
    assert (red.scale, red.offset, red.nodata) == (0.0001, -0.1, 0)
    assert red.shape == (10980, 10980) and red.transform[:3] == (10.0, 0.0, 399960.0)
    assert red.gdal_path == "/vsicurl/" + red.href and red.href.endswith("/B04.tif")
    assert bands["SCL"].shape == (5490, 5490) and (bands["SCL"].scale, bands["SCL"].offset) == (1.0, 0.0)
    assert item_orbit(item) == 141 and item_grid_code(item) == "MGRS-13TDE"
    assert is_stac_item(REAL_ITEM) and is_stac_item(item) and not is_stac_item("tile.tif")
    assert is_stac_item("https://example.org/items/x.json?sig=1")
    assert is_stac_item("https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2A_X")


def test_bands_by_s2_names_and_eo_common_name():
    item = real_item()
    a = item["assets"]
    renamed = {"B02": a["blue"], "B03": a["green"], "B04": a["red"]}
    nir = dict(a["nir"])
    renamed["near_infrared"] = nir  # found by its eo:bands common_name
    item["assets"] = renamed
    bands = band_assets(item)
    assert bands["B02"].key == "B02" and bands["B08"].key == "near_infrared" and "SCL" not in bands


def test_product_metadata_scale_offset_without_raster_bands():
    item = real_item()
    for a in item["assets"].values():
        a.pop("raster:bands", None)
    item["properties"]["s2:processing_baseline"] = "03.01"
    assert (band_assets(item)["B04"].scale, band_assets(item)["B04"].offset) == (1e-4, 0.0)
    item["properties"]["s2:processing_baseline"] = "04.00"
    assert band_assets(item)["B04"].offset == -0.1


def test_missing_band_is_bad_input():
    item = real_item()
    del item["assets"]["red"]
    with pytest.raises(ItemError, match="B04"):
        band_assets(item)


def test_hrefs():
    assert gdal_path("https://x.org/a.tif") == "/vsicurl/https://x.org/a.tif"
    assert gdal_path("s3://bucket/k/a.tif") == "/vsis3/bucket/k/a.tif"
    assert gdal_path("/data/a.tif") == "/data/a.tif"


# ---------------------------------------------------------------------- the VRT
def _check_stack(ds, paths):
    assert ds.descriptions == ("B02", "B03", "B04", "B08", "SCL")
    assert ds.scales[:4] == (0.0001,) * 4 and ds.offsets[:4] == (-0.1,) * 4
    assert ds.block_shapes[0] == (256, 256) and ds.tags().get("SYNTHETIC") == "yes"
    win = ((300, 340), (100, 180))
    got = ds.read(window=win)
    for i, key in enumerate(("blue", "green", "red", "nir")):
        with rasterio.open(paths[key]) as src:
            assert np.array_equal(got[i], src.read(1, window=win))
    with rasterio.open(paths["scl"]) as src:
        scl = src.read(1)
    r, c = np.mgrid[300:340, 100:180]
    assert np.array_equal(got[4], scl[r // 2, c // 2])  # nearest on the 10 m grid


def test_item_file_with_local_assets(grid_assets, tmp_path):
    out, paths = grid_assets
    item = make_item({k: str(p) for k, p in paths.items()}, item_id="LOCAL", when="2022-09-26T08:00:00Z")
    p = tmp_path / "item.json"
    p.write_text(json.dumps(item))
    with open_tile(p) as ds:
        assert ds.name.endswith("LOCAL.vrt")
        _check_stack(ds, paths)
    with open_tile(item) as ds:  # the dict itself
        assert ds.count == 5


def test_relative_hrefs_resolve_against_the_item(grid_assets):
    out, paths = grid_assets
    item = make_item({k: p.name for k, p in paths.items()}, item_id="REL", when="2022-09-26T08:00:00Z")
    p = out / "rel.json"
    p.write_text(json.dumps(item))
    assert load_item(p)["assets"]["red"]["href"] == str(paths["red"].resolve())


def test_item_url_with_http_assets(grid_assets, server):
    out, paths = grid_assets
    hrefs = {k: server.add_file(f"/grid/{p.name}", p) for k, p in paths.items()}
    item = make_item(hrefs, item_id="HTTP", when="2022-09-26T08:00:00Z")
    (out / "http.json").write_text(json.dumps(item))
    url = server.add_file("/grid/item.json", out / "http.json")
    with open_tile(url) as ds:
        _check_stack(ds, paths)
    assert load_item(url)["links"][0] == {"rel": "self", "href": url}


# ---------------------------------------------------------------------- only the corridor's blocks
def _tile_spans(path):
    """{(row, col): (first byte, last byte)} of every tile of a one-band COG."""
    spans = {}
    with rasterio.open(path) as ds:
        bh, bw = ds.block_shapes[0]
        for r in range(-(-ds.height // bh)):
            for c in range(-(-ds.width // bw)):
                off = int(ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1))
                size = int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))
                spans[(r, c)] = (off, off + size - 1)
    return spans


def test_http_reads_only_the_corridor_blocks(tmp_path, server):
    """A 4 km road across a 20 km x 20 km tile (8 x 8 blocks a band): only the blocks
    within reach of the corridor are fetched, each byte range in a needed block."""
    size, block, x0, y0 = 2048, 256, 470000.0, 4735000.0
    paths = make_assets(tmp_path, size=size, block=block, x0=x0, y0=y0)
    hrefs = {k: server.add_file(f"/big/{p.name}", p) for k, p in paths.items()}
    item = make_item(hrefs, item_id="BIG", when="2022-09-26T08:00:00Z", size=size, x0=x0, y0=y0)
    # a road along row 1100 (10 m pixels) from col 600 to col 1000: block row 4, cols 2-3
    to_ll = Transformer.from_crs(32638, 4326, always_xy=True)
    lon, lat = to_ll.transform([x0 + 6005.0, x0 + 10005.0], [y0 - 11005.0, y0 - 11005.0])
    road = {"type": "LineString", "coordinates": [[lon[0], lat[0]], [lon[1], lat[1]]]}
    server.reset_stats()
    from queuemeasure.pipeline import measure

    measure(item, road, head=(lon[0], lat[0]), mode="occupancy", direction="forward")
    needed = {(4, 2), (4, 3)}  # the blocks the corridor touches: row 1100, cols 590-1010
    for key in ("blue", "green", "red", "nir"):
        p = paths[key]
        spans = _tile_spans(p)
        got = np.zeros(p.stat().st_size + 1, bool)
        for h in server.stats.for_path(f"/big/{p.name}"):
            if h.method == "GET":
                assert h.range, "a whole file was fetched"
                a, b = (int(v) for v in h.range.split("=")[1].split("-"))
                got[a:b + 1] = True
        blocks = got.copy()
        blocks[:32768] = False  # GDAL's first read at open: the header (and what follows it)
        touched = {rc for rc, (s, e) in spans.items() if blocks[s:e + 1].any()}
        assert all(got[spans[rc][0]:spans[rc][1] + 1].all() for rc in needed), key
        # beyond the needed blocks only GDAL's read-ahead: the next blocks in the file
        # (row 4), never another row of blocks
        assert {r for r, _ in touched} == {4} and len(touched) <= 5, (key, sorted(touched))
        header = min(s for s, _ in spans.values())
        need_bytes = sum(spans[rc][1] - spans[rc][0] + 1 for rc in needed)
        assert got[header:].sum() <= 2.5 * need_bytes, key
        assert got[:header].sum() <= 65536, key


# ---------------------------------------------------------------------- measure through the CLI
@pytest.fixture(scope="module")
def s2_items(tmp_path_factory, server):
    """A SYNTHETIC 10 m L2A scene with a queue and its reference (tests/coarse.py), as items
    with local and with http:// assets, plus the stacks they were split from."""
    from coarse import coarse_scene

    cache = tmp_path_factory.mktemp("s2")
    sc = coarse_scene(cache, "stacq", gsd_m=10.0, with_reference=True, product="l2a", fine_gsd=1.0,
                      road_length_m=4000.0, queue_length_m=2500.0)
    out = {"scene": sc}
    for name, src, when in (("tile", sc.tile, "2022-09-26T08:00:00Z"), ("ref", sc.reference, "2022-09-21T08:00:00Z")):
        paths, grid = split_stack(src, cache / name)
        out[f"{name}_stack"] = paths.pop("stack")
        local = make_item({k: str(p) for k, p in paths.items()}, item_id=f"S2_{name}", when=when, **grid)
        hrefs = {k: server.add_file(f"/s2/{name}/{p.name}", p) for k, p in paths.items()}
        remote = make_item(hrefs, item_id=f"S2_{name}_http", when=when, **grid)
        for kind, it in (("local", local), ("http", remote)):
            p = cache / f"{name}_{kind}.json"
            p.write_text(json.dumps(it))
            out[f"{name}_{kind}"] = p
        out[f"{name}_grid"] = grid
        out[f"{name}_paths"] = paths
    return out


@pytest.mark.parametrize("kind", ["local", "http"])
def test_measure_item_json_contract(s2_items, kind):
    sc = s2_items["scene"]
    head = f"{sc.head[0]},{sc.head[1]}"
    res = run("measure", s2_items[f"tile_{kind}"], "--road", sc.road, "--head", head,
              "--reference", s2_items[f"ref_{kind}"], "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    direct = json.loads(run("measure", s2_items["tile_stack"], "--road", sc.road, "--head", head,
                            "--reference", s2_items["ref_stack"], "--json").stdout)
    assert got["mode"] == direct["mode"] == "occupancy" and got["synthetic"] is True
    for key in ("length_km_range", "truncated", "gsd_m", "low_confidence", "vehicle_count_estimate"):
        assert key in got
    # the same pixels as the stack they were split from: the same result
    assert got["gsd_m"] == pytest.approx(direct["gsd_m"])
    assert got["length_km"] == pytest.approx(direct["length_km"], abs=1e-6)
    assert np.allclose(got["length_km_range"], direct["length_km_range"], atol=1e-6)
    assert got["vehicle_count_estimate"] == direct["vehicle_count_estimate"]


# ---------------------------------------------------------------------- failures
def _with_assets(s2_items, tmp_path, hrefs):
    item = json.loads(Path(s2_items["tile_local"]).read_text())
    for k, h in hrefs.items():
        if h is None:
            del item["assets"][k]
        else:
            item["assets"][k]["href"] = h
    p = tmp_path / "item.json"
    p.write_text(json.dumps(item))
    return p


def test_asset_404_is_a_server_failure(s2_items, server, tmp_path):
    sc = s2_items["scene"]
    p = _with_assets(s2_items, tmp_path, {"red": server.url("/nowhere/B04.tif")})
    fails(run("measure", p, "--road", sc.road, "--json"), 1, needle="asset")


def test_item_url_404_and_unreachable(s2_items, server):
    sc = s2_items["scene"]
    fails(run("measure", server.url("/no/item.json"), "--road", sc.road, "--json"), 1, needle="404")
    fails(run("measure", "http://127.0.0.1:9/item.json", "--road", sc.road, "--json"), 1, needle="cannot reach")


def test_asset_timeout_is_a_server_failure(s2_items, tmp_path):
    sc = s2_items["scene"]
    with RangeServer() as slow:
        paths = s2_items["tile_paths"]
        hrefs = {k: slow.add_file(f"/slow/{p.name}", p) for k, p in paths.items()}
        p = _with_assets(s2_items, tmp_path, hrefs)
        slow.delay_s = 3.0
        env = {"GDAL_HTTP_TIMEOUT": "1", "GDAL_HTTP_LOW_SPEED_TIME": "1", "GDAL_HTTP_MAX_RETRY": "0",
               "GDAL_HTTP_CONNECTTIMEOUT": "1"}
        fails(run("measure", p, "--road", sc.road, "--json", env=env), 1)


def test_item_without_a_needed_band_is_bad_input(s2_items, tmp_path):
    sc = s2_items["scene"]
    p = _with_assets(s2_items, tmp_path, {"green": None})
    fails(run("measure", p, "--road", sc.road, "--json"), 2, needle="B03")


def test_not_an_item(tmp_path, s2_items):
    p = tmp_path / "x.json"
    p.write_text('{"type": "FeatureCollection", "features": []}')
    fails(run("measure", p, "--road", s2_items["scene"].road, "--json"), 2, needle="STAC item")


def test_corridor_entirely_cloud_is_bad_input(s2_items, tmp_path):
    from stacfix import write_cog

    sc = s2_items["scene"]
    grid = s2_items["tile_grid"]
    h, w = grid["size"]
    cloud = write_cog(tmp_path / "SCL.tif", np.full((h // 2, w // 2), 9, np.uint8), x0=grid["x0"],
                      y0=grid["y0"], res=2 * grid["res"], crs=grid["crs"])
    p = _with_assets(s2_items, tmp_path, {"scl": str(cloud)})
    head = f"{sc.head[0]},{sc.head[1]}"
    fails(run("measure", p, "--road", sc.road, "--head", head, "--json"), 2, needle="cloud")
    fails(run("check", p, "--claim-km", 3, "--road", sc.road, "--head", head, "--json"), 2, needle="cloud")


# ---------------------------------------------------------------------- search, reference auto
def _variant(s2_items, server, tmp_path, name, *, when, orbit=35, scl=None, src="tile", geometry=None):
    """An item of the mock catalogue: the tile's (or reference's) bands, its own SCL."""
    from stacfix import write_cog

    grid = s2_items[f"{src}_grid"]
    paths = dict(s2_items[f"{src}_paths"])
    if scl is not None:
        h, w = grid["size"]
        paths["scl"] = write_cog(tmp_path / f"{name}_SCL.tif", np.full((h // 2, w // 2), scl, np.uint8),
                                 x0=grid["x0"], y0=grid["y0"], res=2 * grid["res"], crs=grid["crs"])
    hrefs = {k: server.add_file(f"/cat/{name}/{p.name}", p) for k, p in paths.items()}
    it = make_item(hrefs, item_id=name, when=when, orbit=orbit, **grid)
    it["collection"] = "sentinel-2-l2a"
    if geometry is not None:
        it["geometry"] = geometry
    return it


@pytest.fixture(scope="module")
def catalogue(s2_items, server, tmp_path_factory):
    """A mock STAC API (bbox matching, as some APIs do) with items around 26 September."""
    from httpserver import MockStac
    from shapely.geometry import box, mapping

    tmp = tmp_path_factory.mktemp("cat")
    base = _variant(s2_items, server, tmp, "tmp", when="2022-09-26T08:00:00Z")
    w, s_, e, n = base["bbox"]
    sliver = mapping(box(w, s_, w + 0.02 * (e - w), s_ + 0.02 * (n - s_)))  # in the bbox, off the road
    west = mapping(box(w, s_, (w + e) / 2, n))
    items = [
        _variant(s2_items, server, tmp, "S2_0926", when="2022-09-26T08:00:00Z"),
        _variant(s2_items, server, tmp, "S2_0921", when="2022-09-21T08:00:00Z", src="ref"),
        _variant(s2_items, server, tmp, "S2_0924", when="2022-09-24T08:00:00Z", src="ref", scl=9),
        _variant(s2_items, server, tmp, "S2_0925", when="2022-09-25T08:00:00Z", src="ref", orbit=78),
        _variant(s2_items, server, tmp, "S2_0927", when="2022-09-27T08:00:00Z", src="ref", geometry=sliver),
        _variant(s2_items, server, tmp, "S2_0928", when="2022-09-28T08:00:00Z", src="ref", geometry=west),
        _variant(s2_items, server, tmp, "S2_1015", when="2022-10-15T08:00:00Z", src="ref"),
    ]
    api = MockStac(server, items, by_bbox=True)
    return api


def test_search_lists_items_over_the_road_with_corridor_cloud(s2_items, catalogue):
    sc = s2_items["scene"]
    res = run("search", "--road", sc.road, "--dates", "2022-09-20/2022-09-30", "--stac", catalogue.url, "--json")
    assert res.exit_code == 0, res.output
    got = {h["id"]: h for h in json.loads(res.stdout)["items"]}
    # the sliver's bbox meets the road but its footprint does not; 15 October is out of range
    assert sorted(got) == ["S2_0921", "S2_0924", "S2_0925", "S2_0926", "S2_0928"]
    assert [h["datetime"][:10] for h in json.loads(res.stdout)["items"]] == sorted(h["datetime"][:10] for h in got.values())
    assert got["S2_0926"]["cloud_pct_corridor"] == 0 and got["S2_0926"]["road_covered_pct"] == pytest.approx(100)
    assert got["S2_0924"]["cloud_pct_corridor"] == 100 and got["S2_0924"]["clear_km"] == 0
    assert 5 < got["S2_0928"]["road_covered_pct"] < 95
    assert got["S2_0925"]["orbit"] == 78 and got["S2_0926"]["href"].endswith("/items/S2_0926")
    assert catalogue.searches[-1]["intersects"]["type"] in ("LineString", "MultiLineString")
    human = run("search", "--road", sc.road, "--dates", "2022-09-20/2022-09-30", "--stac", catalogue.url)
    assert human.exit_code == 0 and "2022-09-24" in human.stdout and "100%" in human.stdout


def test_search_failures(s2_items, server):
    sc = s2_items["scene"]
    fails(run("search", "--road", sc.road, "--dates", "2022-09-20/2022-09-30", "--stac",
              "http://127.0.0.1:9/stac"), 1, needle="catalogue")
    fails(run("search", "--road", sc.road, "--dates", "2022-09-20/2022-09-30", "--stac",
              server.url("/no-such-api")), 1, needle="catalogue")
    fails(run("search", "--road", sc.road, "--dates", "26 Sept"), 2, needle="dates")


@pytest.mark.parametrize("slow_part", ["all", "search"])
def test_search_slow_catalogue_times_out(s2_items, slow_part):
    """A catalogue slower than --timeout: exit 1, one line naming it and the timeout.

    The server sleeps 30 s against a 1 s timeout (the landing page, or only the search).
    """
    import time

    from httpserver import MockStac

    sc = s2_items["scene"]
    with RangeServer() as slow:
        if slow_part == "search":  # routes match in order: this one before the mock's /search
            slow.add_route("/stac/search", lambda *a: (time.sleep(30), (200, "application/json", b"{}"))[1])
        cat = MockStac(slow, [])
        if slow_part == "all":
            slow.delay_s = 30.0
        line = fails(run("search", "--road", sc.road, "--dates", "2022-09-20/2022-09-30", "--stac", cat.url,
                         "--timeout", "1"), 1, needle=cat.url)
        assert "within 1 s" in line and "--timeout" in line
        fails(run("search", "--road", sc.road, "--dates", "2022-09-20/2022-09-30", "--timeout", "0"), 2,
              needle="timeout")


def test_reference_auto_picks_the_clear_item_of_the_same_orbit(s2_items, catalogue, server):
    from queuemeasure.search import choose_reference

    sc = s2_items["scene"]
    tile_url = catalogue.url + "/collections/sentinel-2-l2a/items/S2_0926"
    ref, why = choose_reference(tile_url, sc.road, head=sc.head, days=10)
    # not 0924 (cloud over the road), 0925 (another orbit, though nearer), 0928 (half the
    # road), 15 October (beyond 10 days)
    assert ref["id"] == "S2_0921" and "R035" in why
    head = f"{sc.head[0]},{sc.head[1]}"
    auto = run("measure", tile_url, "--road", sc.road, "--head", head, "--reference", "auto",
               "--reference-days", 10, "--json")
    assert auto.exit_code == 0, auto.output
    named = run("measure", tile_url, "--road", sc.road, "--head", head, "--reference",
                catalogue.url + "/collections/sentinel-2-l2a/items/S2_0921", "--json")
    a, b = json.loads(auto.stdout), json.loads(named.stdout)
    assert a["length_km"] == b["length_km"] and any("S2_0921" in n for n in a["notes"])


def test_reference_auto_failures(s2_items, catalogue, tmp_path):
    sc = s2_items["scene"]
    tile_url = catalogue.url + "/collections/sentinel-2-l2a/items/S2_0926"
    fails(run("measure", tile_url, "--road", sc.road, "--reference", "auto", "--reference-days", 1,
              "--json"), 2, needle="no reference")
    local = json.loads(Path(s2_items["tile_local"]).read_text())  # no root link: no catalogue
    p = tmp_path / "item.json"
    p.write_text(json.dumps(local))
    fails(run("measure", p, "--road", sc.road, "--reference", "auto", "--json"), 2, needle="--stac")
    fails(run("measure", s2_items["tile_stack"], "--road", sc.road, "--reference", "auto", "--json"), 2,
          needle="STAC item")


# ---------------------------------------------------------------------- check
VERDICT_CASES = [
    # claim, kind, measurement (length, range, truncated), verdict
    (20, "about", (16.2, (16.0, 16.5), True), "lower_bound"),       # runs off the image before 20
    (20, "at-least", (16.2, (16.0, 16.5), True), "lower_bound"),
    (20, "at-least", (21.2, (21.0, 21.5), True), "consistent"),      # the bound already reaches it
    (15, "about", (16.2, (16.0, 16.5), True), "consistent"),         # 16.0 within 13.5-16.5
    (5, "about", (16.2, (16.0, 16.5), True), "contradicted"),        # understates even the bound
    (5, "at-most", (16.2, (16.0, 16.5), True), "contradicted"),
    (20, "about", (12.0, (11.6, 12.4), False), "contradicted"),      # overstates a whole queue
    (20, "about", (19.5, (19.0, 20.4), False), "consistent"),
    (20, "about", (23.0, (22.5, 23.5), False), "contradicted"),      # 22.0 < 22.5
    (20, "at-least", (23.0, (22.5, 23.5), False), "consistent"),
    (20, "at-most", (23.0, (22.5, 23.5), False), "contradicted"),
    (20, "about", (0.0, (0.0, 0.0), True), "cannot_tell"),           # nothing seen before the cut
]


@pytest.mark.parametrize("claim,kind,meas,expected", VERDICT_CASES)
def test_verdict_rules(claim, kind, meas, expected):
    from queuemeasure.check import verdict

    length, rng, trunc = meas
    v = verdict({"length_km": length, "length_km_range": list(rng), "truncated": trunc,
                 "truncation_reason": "image_edge" if trunc else None}, claim, claim_kind=kind)
    assert v.verdict == expected, v.summary
    d = v.to_dict()
    assert d["verdict"] == expected and d["claim_km"] == claim and d["length_km_range"] == list(rng)
    if expected == "contradicted":
        assert d["difference_km"] == pytest.approx(claim - length) and d["gap_km"] > 0
    json.dumps(d, allow_nan=False)


def test_verdict_low_confidence_and_counts():
    from queuemeasure.check import verdict

    weak = {"length_km": 19.0, "length_km_range": [18, 20], "truncated": False, "low_confidence": True,
            "notes": ["low confidence: no reference, 10 m pixels"]}
    assert verdict(weak, 20).verdict == "cannot_tell"
    m = {"length_km": 12.0, "length_km_range": [11.6, 12.4], "truncated": False, "mode": "occupancy",
         "vehicle_count_estimate": [1400, 1900]}
    v = verdict(m, 12, 3500, lanes=1)  # 12 km of one lane cannot hold 3 500 vehicles (3.4 m each)
    assert v.verdict == "consistent" and v.count["agrees"] is False and "too many" in v.count["sentence"]
    v2 = verdict(m, 12, 3500, lanes=2)  # two lanes: 6.6-7.1 m per vehicle per lane
    assert v2.count["agrees"] is True and v2.count["measured_count"] == [1400, 1900]
    assert "above the measured estimate" in v2.count["sentence"]
    assert verdict(m, 12).count["count_source"] == "estimated"
    v3 = verdict(m, 12, 200, lanes=1)  # 58-62 m per vehicle: too few
    assert v3.count["agrees"] is False and "too few" in v3.count["sentence"]


def test_check_cli(s2_items, tmp_path):
    sc = s2_items["scene"]
    head = f"{sc.head[0]},{sc.head[1]}"
    res = run("check", "--claim-km", 20, "--claim-count", 3500, s2_items["tile_local"], "--road", sc.road,
              "--head", head, "--reference", s2_items["ref_local"], "--json", "--quicklook", tmp_path / "q.png")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["verdict"] in ("consistent", "contradicted", "lower_bound", "cannot_tell")
    for key in ("claim_km", "length_km", "length_km_range", "reasons", "summary", "count_agrees"):
        assert key in d
    assert d["claim_km"] == 20 and (tmp_path / "q.png").stat().st_size > 10000
    measured = d["measurement"]
    # a saved result gives the same verdict without measuring again
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(measured))
    again = run("check", "--claim-km", 20, "--claim-count", 3500, saved, "--json")
    assert json.loads(again.stdout)["verdict"] == d["verdict"]
    human = run("check", "--claim-km", 20, saved)
    assert human.exit_code == 0 and human.stdout.split(":")[0] in (
        "CONSISTENT", "CONTRADICTED", "LOWER BOUND ONLY", "CANNOT TELL")
    assert measured["tile"] == str(s2_items["tile_local"])
    plain = run("check", "--claim-km", 20, s2_items["tile_stack"], "--road", sc.road, "--head", head,
                "--reference", s2_items["ref_stack"], "--json")  # a GeoTIFF, not an item
    assert json.loads(plain.stdout)["length_km"] == pytest.approx(d["length_km"], abs=1e-6)
    fails(run("check", "--claim-km", -3, saved), 2, needle="positive")
    fails(run("check", "--claim-km", 3, s2_items["tile_local"]), 2, needle="--road")
    # options that would measure again are refused with a saved result, not ignored
    fails(run("check", "--claim-km", 20, saved, "--road", sc.road, "--head", head), 2,
          needle="saved result")
    fails(run("check", "--claim-km", 20, saved, "--quicklook", tmp_path / "q2.png"), 2,
          needle="saved result")


def test_a_read_failing_after_open_is_a_server_failure(grid_assets, tmp_path):
    """The asset host answers the header, then fails on the blocks: exit 1's error."""
    from queuemeasure.corridor import BlockSampler

    out, paths = grid_assets
    with RangeServer() as srv:
        hrefs = {k: srv.add_file(f"/late/{p.name}", p) for k, p in paths.items()}
        item = make_item(hrefs, item_id="LATE", when="2022-09-26T08:00:00Z")
        with pytest.raises(RemoteError, match="LATE"):
            with open_tile(item) as ds:
                for p in paths.values():
                    srv.fail[f"/late/{p.name}"] = 503
                sampler = BlockSampler(ds, [1, 2, 3])
                sampler.sample(np.array([300.0]), np.array([300.0]))


def test_an_asset_that_is_not_a_raster_is_the_catalogues_failure(grid_assets, server, tmp_path):
    """Unlike a plain URL the user typed (exit 2), an item's asset is the catalogue's content."""
    out, paths = grid_assets
    page = tmp_path / "page.html"
    page.write_text("<html><body>Sign in</body></html>\n")
    hrefs = {k: server.add_file(f"/html/{p.name}", p) for k, p in paths.items()}
    hrefs["red"] = server.add_file("/html/red-page.tif", page)
    with pytest.raises(RemoteError, match="asset 'red'"):
        with open_tile(make_item(hrefs, item_id="HTML", when="2022-09-26T08:00:00Z")):
            pass


def test_item_without_scl_has_no_corridor_cloud(grid_assets):
    from queuemeasure.search import corridor_cover

    out, paths = grid_assets
    hrefs = {k: str(p) for k, p in paths.items() if k != "scl"}
    item = make_item(hrefs, item_id="NOSCL", when="2022-09-26T08:00:00Z")
    ring = item["geometry"]["coordinates"][0]
    mid = [(ring[0][0] + ring[2][0]) / 2, (ring[0][1] + ring[2][1]) / 2]
    road = {"type": "LineString", "coordinates": [mid, [mid[0] + 0.01, mid[1]]]}
    cover = corridor_cover(item, road)
    assert cover.covered_share == pytest.approx(1.0) and cover.cloud_share is None and cover.clear_km is None


def test_footprint_share_of_the_real_item():
    """Against the real item's footprint polygon (MGRS 13TDE, Colorado), geodesic."""
    from queuemeasure.search import footprint_share, road_sides

    inside = {"type": "LineString", "coordinates": [[-105.6, 40.1], [-105.5, 40.1]]}
    half = {"type": "LineString", "coordinates": [[-104.95, 40.2], [-104.80, 40.2]]}
    outside = {"type": "LineString", "coordinates": [[-103.0, 40.1], [-102.9, 40.1]]}
    item = real_item()
    km, share = footprint_share(item, road_sides(inside))
    assert share == pytest.approx(1.0) and km == pytest.approx(8.52, abs=0.05)
    assert 0.3 < footprint_share(item, road_sides(half))[1] < 0.7
    assert footprint_share(item, road_sides(outside))[1] == 0.0
