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
from click.testing import CliRunner
from pyproj import Transformer

from httpserver import RangeServer
from stacfix import REAL_ITEM, make_assets, make_item, real_item, split_stack

from queuemeasure.cli.main import cli
from queuemeasure.errors import ItemError, RemoteError
from queuemeasure.raster import open_tile
from queuemeasure.stac import band_assets, gdal_path, is_stac_item, item_grid_code, item_orbit, load_item


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def fails(res, code, needle=None):
    """The failure contract: exit code, one 'Error:' line on stderr, nothing on stdout."""
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    assert "Traceback" not in res.output and res.stdout == ""
    if needle:
        assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def server():
    with RangeServer() as srv:
        yield srv


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
    sc = coarse_scene(cache, "stacq", gsd_m=10.0, with_reference=True, product="l2a",
                      road_length_m=5000.0, queue_length_m=3000.0)
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
