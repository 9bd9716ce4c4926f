"""Issue 7: bad input gets one clear line and exit 2, nothing half-written; odd but valid
input simply works.

Every failure is driven through the CLI and checked the same way (:func:`fails`): the exit
code, exactly one non-empty line on stderr starting with ``Error:``, no traceback, and an
output directory left empty (no result, no ``*.part`` leftovers). Valid unusual tiles are
made by re-writing a painted scene's pixels with rasterio (RGBA, RGBN, 8 bands, float32,
alpha, internal mask, rotated, sheared, striped, huge and sparse) and must measure the
painted queue. A few runs go through the installed ``queuemeasure`` script in a subprocess,
where GDAL's own stderr chatter and real signals can be seen.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window
from scipy.ndimage import map_coordinates

from conftest import ROOT

from queuemeasure import geo
from queuemeasure.cli.main import cli
from queuemeasure.errors import HeadError, InputError
from queuemeasure.pipeline import HOLD_ENV
from queuemeasure.queue import chain_queue
from queuemeasure.road import load_road, prepare_road

REL = 0.03  # painted truth vs measured length


# ----------------------------------------------------------------------------- helpers


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fails(res, outdir: Path | None = None, code: int = 2, needle: str | None = None) -> str:
    """Assert the failure contract and return the one error line."""
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error:"), lines[0]
    assert "Traceback" not in res.output
    assert res.stdout == ""
    if outdir is not None:
        assert list(outdir.iterdir()) == [], "a failed run left files behind"
    if needle is not None:
        assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]


def measured(res) -> dict:
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return json.loads(res.stdout)


@pytest.fixture
def out(tmp_path):
    """An empty directory for outputs, and the result path inside it."""
    d = tmp_path / "out"
    d.mkdir()
    return d / "q.geojson"


@pytest.fixture(scope="module")
def scene(curve_scenes):
    return curve_scenes["utm"]


@pytest.fixture(scope="module")
def wdir(tmp_path_factory):
    return tmp_path_factory.mktemp("bad_input")


def measure_args(tile, road, *extra, out=None):
    args = ["measure", tile, "--road", road, "--json", *extra]
    if out is not None:
        args += ["--out", out]
    return args


def rewrite(src: Path, dst: Path, pixels, *, mask=None, **profile) -> Path:
    """Copy ``src`` with its pixels replaced by ``pixels(data)``, optionally a mask."""
    with rasterio.open(src) as ds:
        data, prof = ds.read(), ds.profile
    new = pixels(data)
    prof.update(count=new.shape[0], dtype=new.dtype.name, **profile)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(dst, "w", **prof) as ds:
        ds.write(new)
        if mask is not None:
            ds.write_mask(mask(data))
    return dst


def regrid(src: Path, dst: Path, R: Affine) -> Path:
    """Resample ``src`` onto a grid with transform ``T * R`` (R rotates/shears pixels)."""
    with rasterio.open(src) as ds:
        data, prof, T = ds.read(), ds.profile, ds.transform
    h, w = data.shape[1:]
    xs, ys = zip(*[~R @ (x, y) for x in (0, w) for y in (0, h)])
    R = R @ Affine.translation(np.floor(min(xs)), np.floor(min(ys)))
    W, H = int(np.ceil(max(xs) - min(xs))) + 1, int(np.ceil(max(ys) - min(ys))) + 1
    cc, rr = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    oc, orow = R.a * cc + R.b * rr + R.c, R.d * cc + R.e * rr + R.f
    new = np.stack([map_coordinates(b.astype(np.float32), [orow - 0.5, oc - 0.5], order=1, cval=0)
                    for b in data])
    new[:, ~((oc >= 0) & (oc < w) & (orow >= 0) & (orow < h))] = 0
    prof.update(width=W, height=H, transform=T @ R, nodata=0)
    with rasterio.open(dst, "w", **prof) as ds:
        ds.write(np.round(new).astype(data.dtype))
    return dst


def band_hidden(data) -> np.ndarray:
    """A 0/255 mask hiding a band of rows across the middle of the queue (~30 m)."""
    m = np.full(data.shape[1:], 255, np.uint8)
    h = data.shape[1]
    m[h - 320:h - 260] = 0
    return m


def script() -> str:
    """The installed console script (not a pyenv shim, so that signals reach Python)."""
    p = Path(sys.executable).parent / "queuemeasure"
    return str(p) if p.exists() else shutil.which("queuemeasure")


def run_script(*args, timeout=120):
    return subprocess.run([script(), *map(str, args)], capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- tiles


def test_missing_tile_and_directory(scene, tmp_path, out):
    fails(run(*measure_args(tmp_path / "none.tif", scene.road_path, out=out)), out.parent, needle="not found")
    fails(run(*measure_args(tmp_path, scene.road_path, out=out)), out.parent, needle="directory")


@pytest.mark.parametrize("content", [b"hello, I am text\n", b'{"type": "FeatureCollection", "features": []}', b""])
def test_text_json_or_empty_file_named_tif(scene, tmp_path, out, content):
    fake = tmp_path / "fake.tif"
    fake.write_bytes(content)
    fails(run(*measure_args(fake, scene.road_path, out=out)), out.parent, needle="not a readable raster")


@pytest.mark.parametrize("keep", [200, 0.5, 0.97])
def test_truncated_geotiff(scene, tmp_path, out, keep):
    data = scene.path.read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(data[:n])
    msg = fails(run(*measure_args(bad, scene.road_path, out=out)), out.parent)
    assert "not a readable raster" in msg or "truncated or corrupt" in msg


def test_corrupt_blocks_fail_while_reading(scene, tmp_path, out):
    data = bytearray(scene.path.read_bytes())
    a = len(data) // 3
    data[a:a + 60000] = np.random.default_rng(1).integers(0, 256, 60000, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(bytes(data))
    with rasterio.open(bad) as ds:  # it opens: the failure comes while reading blocks
        assert ds.count == 3
    fails(run(*measure_args(bad, scene.road_path, out=out)), out.parent, needle="corrupt")


def test_no_crs_no_geotransform_gcps_only(scene, tmp_path, out):
    with rasterio.open(scene.path) as ds:
        data, prof = ds.read(), ds.profile
    nocrs = dict(prof)
    nocrs.pop("crs")
    with rasterio.open(tmp_path / "nocrs.tif", "w", **nocrs) as ds:
        ds.write(data)
    nogt = dict(prof)
    nogt.pop("transform")
    gcps = [GroundControlPoint(r, c, *(prof["transform"] @ (c, r))) for r, c in [(0, 0), (0, 200), (900, 0)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(tmp_path / "nogt.tif", "w", **nogt) as ds:
            ds.write(data)
        with rasterio.open(tmp_path / "gcps.tif", "w", **nogt) as ds:
            ds.write(data)
            ds.gcps = (gcps, prof["crs"])
    fails(run(*measure_args(tmp_path / "nocrs.tif", scene.road_path, out=out)), out.parent, needle="no CRS")
    fails(run(*measure_args(tmp_path / "nogt.tif", scene.road_path, out=out)), out.parent, needle="no geotransform")
    fails(run(*measure_args(tmp_path / "gcps.tif", scene.road_path, out=out)), out.parent, needle="GCPs")
    fails(run("info", tmp_path / "nocrs.tif"), needle="no CRS")


def test_remote_url_that_refuses_fails_fast(scene, out):
    t0 = time.perf_counter()
    res = run(*measure_args("http://127.0.0.1:9/tile.tif", scene.road_path, out=out))
    assert time.perf_counter() - t0 < 20
    fails(res, out.parent, code=1, needle="remote")  # the server's failure, not the input's


@pytest.fixture
def silent_server():
    """A local server that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns, stop = [], threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/tile.tif"
    stop.set()
    th.join(2)
    for c in conns:
        c.close()
    srv.close()


def test_remote_url_that_never_answers_times_out(scene, out, silent_server, monkeypatch):
    for k in ("GDAL_HTTP_TIMEOUT", "GDAL_HTTP_LOW_SPEED_TIME", "GDAL_HTTP_MAX_RETRY", "GDAL_HTTP_CONNECTTIMEOUT"):
        monkeypatch.delenv(k, raising=False)  # the defaults must not hang
    t0 = time.perf_counter()
    res = run(*measure_args(silent_server, scene.road_path, out=out))
    assert time.perf_counter() - t0 < 20
    fails(res, out.parent, code=1, needle="remote")  # the server's failure, not the input's


def test_all_nodata_on_the_road(scene, tmp_path, out):
    nd = rewrite(scene.path, tmp_path / "nodata.tif", np.zeros_like, nodata=0)
    fails(run(*measure_args(nd, scene.road_path, out=out)), out.parent, needle="no valid data")
    alpha = rewrite(scene.path, tmp_path / "alpha0.tif",
                    lambda d: np.concatenate([d, np.zeros_like(d[:1])]), photometric="RGB", alpha="YES")
    fails(run(*measure_args(alpha, scene.road_path, out=out)), out.parent, needle="no valid data")


def test_huge_sparse_tile_reads_only_the_corridor(scene, tmp_path):
    """A 100 000 x 100 000 px tile (30 GB of pixels) measures within little memory."""
    with rasterio.open(scene.path) as src:
        data, prof, T = src.read(), src.profile, src.transform
    r0, c0 = 60_000, 45_000
    prof.update(width=100_000, height=100_000, blockxsize=512, blockysize=512, sparse_ok=True,
                BIGTIFF="YES", transform=T @ Affine.translation(-c0, -r0))
    huge = tmp_path / "huge.tif"
    with rasterio.open(huge, "w", **prof) as ds:
        ds.write(data, window=Window(c0, r0, data.shape[2], data.shape[1]))
    assert huge.stat().st_size < 20e6
    # A small Python launches the run and reports its peak memory: measured from the test
    # process itself, the fork would inherit this big process's high-water mark.
    launcher = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                "sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", launcher, script(), "measure", huge, "--road", scene.road_path,
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["length_km"] * 1000 == pytest.approx(scene.length_m, rel=REL)
    if sys.platform.startswith("linux"):  # kB
        assert int(r.stderr.split()[-1]) < 600_000


def test_striped_tile_works_with_a_speed_warning(scene, tmp_path):
    with rasterio.open(scene.path) as src:
        data, prof, T = src.read(), src.profile, src.transform
    c0, W = 4000, 8400
    big = np.full((3, data.shape[1], W), 90, np.uint8)
    big[:, :, c0:c0 + data.shape[2]] = data
    prof.update(width=W, tiled=False, transform=T @ Affine.translation(-c0, 0))
    prof.pop("blockxsize")
    prof.pop("blockysize")
    striped = tmp_path / "striped.tif"
    with rasterio.open(striped, "w", **prof) as ds:
        ds.write(big)
    res = run(*measure_args(striped, scene.road_path))
    d = measured(res)
    assert d["length_km"] * 1000 == pytest.approx(scene.length_m, rel=REL)
    warn = [line for line in res.stderr.splitlines() if line.startswith("Warning:")]
    assert warn and "not tiled" in warn[0]
    assert any("not tiled" in n for n in d["notes"])


@pytest.mark.parametrize("R", [Affine.rotation(30), Affine.rotation(90), Affine.rotation(-135), Affine.shear(15, 0)],
                         ids=["rot30", "rot90", "rot-135", "shear15"])
def test_rotated_or_sheared_geotransform_measures_the_same(scene, tmp_path, R):
    tile = regrid(scene.path, tmp_path / "rot.tif", R)
    with rasterio.open(tile) as ds:
        assert ds.transform.b != 0 or ds.transform.d != 0
    base = measured(run(*measure_args(scene.path, scene.road_path)))
    d = measured(run(*measure_args(tile, scene.road_path)))
    assert d["length_km"] == pytest.approx(base["length_km"], rel=0.01)
    assert d["length_km"] * 1000 == pytest.approx(scene.length_m, rel=REL)


# ----------------------------------------------------------------------------- bands and types


@pytest.fixture(scope="module")
def painted(wdir, scene):
    """A scene as uint8 RGB, 1-band panchromatic and 11-bit uint16."""
    from scenes import paint_scene

    kw = dict(road_len=360, queue_len=200)
    return {
        "rgb": scene,
        "pan": paint_scene(wdir, name="pan", bands=1, **kw),
        "u16": paint_scene(wdir, name="u16", dtype="uint16", **kw),
    }


def _nir(d):
    return (0.2 * d[1] + 40).astype(d.dtype)


VARIANTS = {
    "pan": ("pan", None, {}),
    "rgb_uint8": ("rgb", None, {}),
    "rgb_uint16_11bit": ("u16", None, {}),
    "rgba": ("rgb", lambda d: np.concatenate([d, np.full_like(d[:1], 255)]), dict(photometric="RGB", alpha="YES")),
    "rgbn_uint16": ("u16", lambda d: np.concatenate([d, _nir(d)[None]]), {}),
    "bgrn_uint16": ("u16", lambda d: np.concatenate([d[::-1], _nir(d)[None]]), {}),
    "multispectral_8band": ("u16", lambda d: np.stack([d[2], d[2], d[1], d[1] // 2 + d[0] // 2, d[0],
                                                        _nir(d), _nir(d), _nir(d)]), {}),
    "float32_reflectance": ("rgb", lambda d: ((d.astype(np.float32) - 1) / 254 * 0.4), {}),
    "float32_nan_nodata": ("rgb", lambda d: np.where(np.arange(d.shape[2]) < 20, np.nan,
                                                     (d.astype(np.float32) - 1) / 254 * 0.4).astype(np.float32),
                           dict(nodata=np.nan)),
}


KNOWN_WEAK: dict[str, str] = {
    # variants the detector is known to get wrong (strict xfail). Empty since the colour
    # spread became robust: a B,G,R,N tile without colour interpretation is read as R,G,B
    # (red and blue swap) and its road-toned last truck is still found
}


KNOWN_WEAK_LEARNED: dict[str, str] = {
    # the learned detector's known failures on these painted scenes (strict xfail); the
    # 11-bit variants (queue 18 m short) pass since the 0.5 m model (December 2026)
    "pan": "learned detector on one band: +80 % (auto runs the rule detector on one band)",
}


@pytest.mark.parametrize("detector", ["rules", "learned"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_bands_and_types(painted, tmp_path, name, detector, request):
    weak = (KNOWN_WEAK if detector == "rules" else KNOWN_WEAK_LEARNED).get(name)
    if weak:
        request.applymarker(pytest.mark.xfail(strict=True, reason=weak))
    base, pixels, profile = VARIANTS[name]
    sc = painted[base]
    tile = sc.path if pixels is None else rewrite(sc.path, tmp_path / f"{name}.tif", pixels, **profile)
    d = measured(run(*measure_args(tile, sc.road_path, "--detector", detector)))
    assert d["length_km"] * 1000 == pytest.approx(sc.length_m, rel=REL)
    # bands read in the wrong order or scaled wrongly lose the colour and half the vehicles;
    # read right, three quarters or more are found (the 11-bit scene's run of four dark cars
    # at 95-118 m is lost to the shadow rules at 0.5 m: 19 of 24)
    assert d["vehicle_count"] >= 0.75 * sc.count


@pytest.mark.parametrize("how", ["alpha", "internal_mask", "nodata"])
def test_alpha_band_or_internal_mask_hides_pixels(painted, tmp_path, how):
    sc = painted["rgb"]
    if how == "alpha":
        tile = rewrite(sc.path, tmp_path / "a.tif", lambda d: np.concatenate([d, band_hidden(d)[None]]),
                       photometric="RGB", alpha="YES")
    elif how == "internal_mask":
        tile = rewrite(sc.path, tmp_path / "m.tif", lambda d: d, mask=band_hidden)
    else:
        tile = rewrite(sc.path, tmp_path / "n.tif", lambda d: np.where(band_hidden(d)[None] == 0, 0, d).astype(d.dtype),
                       nodata=0)
    with rasterio.open(tile) as ds:
        assert ds.mask_flag_enums[0] != [rasterio.enums.MaskFlags.all_valid]
        if how == "alpha":
            assert ds.colorinterp[3] == ColorInterp.alpha
    d = measured(run(*measure_args(tile, sc.road_path)))
    # the hidden stretch is occluded, does not break the queue, and is reported
    assert d["length_km"] * 1000 == pytest.approx(sc.length_m, rel=REL)
    assert d["occluded_km"] > 0.02


def test_band_options(painted):
    sc = painted["rgb"]
    d = measured(run(*measure_args(sc.path, sc.road_path, "--bands", "3,2,1")))
    assert d["length_km"] * 1000 == pytest.approx(sc.length_m, rel=REL)
    for bad, needle in [("7", "band 7"), ("0", "start at 1"), ("1,2", "one band"), ("red", "band numbers")]:
        fails(run(*measure_args(sc.path, sc.road_path, "--bands", bad)), needle=needle)


# ----------------------------------------------------------------------------- roads


def _coords(scene):
    return json.loads(scene.road_path.read_text())["geometry"]["coordinates"]


BAD_ROADS = {
    "empty": ("", "empty"),
    "blank": ("  \n\t\n", "empty"),
    "invalid_json": ("{not json", "not valid JSON"),
    "truncated_json": ('{"type": "LineString", "coordinates": [[44.6, 42.7], ', "not valid JSON"),
    "json_not_geojson": ('{"foo": 1}', "not GeoJSON"),
    "json_list": ("[1, 2, 3]", "not GeoJSON"),
    "json_string": ('"hello"', "neither GeoJSON nor WKT"),
    "unknown_type": ('{"type": "Road", "coordinates": []}', "not GeoJSON"),
    "type_not_a_string": ('{"type": ["LineString"], "coordinates": []}', "not GeoJSON"),
    "bad_legacy_crs": ('{"type": "LineString", "coordinates": [[44.6, 42.7], [44.7, 42.8]], '
                       '"crs": {"type": "name", "properties": {"name": "EPSG:99999999"}}}', "unknown CRS"),
    "no_coordinates": ('{"type": "LineString"}', "coordinates"),
    "point": ('{"type": "Point", "coordinates": [44.631, 42.768]}', "LineString"),
    "polygon": ('{"type": "Polygon", "coordinates": '
                '[[[44.63, 42.76], [44.64, 42.76], [44.64, 42.77], [44.63, 42.76]]]}',
                "LineString"),
    "empty_collection": ('{"type": "FeatureCollection", "features": []}', "no line"),
    "null_geometry": ('{"type": "Feature", "properties": {}, "geometry": null}', "no line"),
    "one_point": ('{"type": "LineString", "coordinates": [[44.631, 42.768]]}', "fewer than two points"),
    "repeated_points": ('{"type": "LineString", "coordinates": [[44.631, 42.768], [44.631, 42.768], [44.631, 42.768]]}',
                        "non-zero length"),
    "zero_length_parts": ('{"type": "MultiLineString", "coordinates": [[[44.631, 42.768], [44.631, 42.768]], '
                          '[[44.632, 42.769], [44.632, 42.769]]]}', "non-zero length"),
    "lon_out_of_range": ('{"type": "LineString", "coordinates": [[200.0, 42.7], [200.1, 42.8]]}',
                         "out of lon/lat range"),
    "lat_out_of_range": ('{"type": "LineString", "coordinates": [[42.768, 144.631], [42.770, 144.632]]}', "swapped"),
    "nan": ('{"type": "LineString", "coordinates": [[NaN, 42.7], [44.6, 42.8]]}', "non-finite"),
    "strings": ('{"type": "LineString", "coordinates": [["a", "b"], [44.6, 42.8]]}', "malformed"),
    "too_long": ('{"type": "LineString", "coordinates": [[0, 0], [100, 60]]}', "clip it"),
    "bad_wkt": ("LINESTRING (44.6 42.7, 44.7", "neither GeoJSON nor WKT"),
}


@pytest.mark.parametrize("name", list(BAD_ROADS))
def test_bad_roads(scene, tmp_path, out, name):
    text, needle = BAD_ROADS[name]
    road = tmp_path / "road.geojson"
    road.write_text(text)
    fails(run(*measure_args(scene.path, road, out=out)), out.parent, needle=needle)


def test_road_file_missing_directory_or_binary(scene, tmp_path, out):
    fails(run(*measure_args(scene.path, tmp_path / "none.geojson", out=out)), out.parent, needle="not found")
    fails(run(*measure_args(scene.path, tmp_path, out=out)), out.parent, needle="directory")
    binary = tmp_path / "road.geojson"
    binary.write_bytes(b"\xff\xfe\x00\x01\x02garbage")
    fails(run(*measure_args(scene.path, binary, out=out)), out.parent, needle="cannot read road")


def test_several_unrelated_lines(scene, tmp_path, out):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": _coords(scene)}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString",
                                                            "coordinates": [[44.70, 42.90], [44.71, 42.91]]}},
    ]}
    road = tmp_path / "fc.geojson"
    road.write_text(json.dumps(fc))
    fails(run(*measure_args(scene.path, road, out=out)), out.parent, needle="one path")


def test_lat_lon_swapped_road_says_so(scene, tmp_path, out):
    road = tmp_path / "swapped.geojson"
    road.write_text(json.dumps({"type": "LineString", "coordinates": [[y, x] for x, y in _coords(scene)]}))
    fails(run(*measure_args(scene.path, road, out=out)), out.parent, needle="swapped")


def test_road_entirely_outside_the_tile(scene, tmp_path, out):
    road = tmp_path / "far.geojson"
    road.write_text(json.dumps({"type": "LineString", "coordinates": [[10.0, 50.0], [10.01, 50.01]]}))
    fails(run(*measure_args(scene.path, road, out=out)), out.parent, needle="entirely outside the tile")


def test_road_partly_outside_the_tile_is_measured(scene, tmp_path):
    c = _coords(scene)
    longer = c + [[c[-1][0] + 0.001, c[-1][1] + 0.02]]   # runs ~2 km on beyond the tile
    earlier = [[c[0][0] - 0.003, c[0][1] - 0.004]] + c    # and starts ~500 m before it
    for coords in (longer, earlier):
        road = tmp_path / "partly.geojson"
        road.write_text(json.dumps({"type": "LineString", "coordinates": coords}))
        d = measured(run(*measure_args(scene.path, road, "--head", f"{scene.head[0]},{scene.head[1]}")))
        assert d["length_km"] * 1000 == pytest.approx(scene.length_m, rel=REL)
        assert d["road_km_searched"] > 0.9


def test_road_in_another_crs(scene, tmp_path, out):
    x, y = geo.transformer(4326, 32638).transform(*np.array(_coords(scene)).T)
    road = tmp_path / "utm.geojson"
    road.write_text(json.dumps({"type": "LineString", "coordinates": np.column_stack([x, y]).tolist()}))
    fails(run(*measure_args(scene.path, road, out=out)), out.parent, needle="--road-crs")
    d = measured(run(*measure_args(scene.path, road, "--road-crs", "EPSG:32638")))
    assert d["length_km"] * 1000 == pytest.approx(scene.length_m, rel=REL)
    fails(run(*measure_args(scene.path, road, "--road-crs", "EPSG:0", out=out)), out.parent, needle="CRS")


def test_unusual_but_valid_road_forms(scene, tmp_path):
    c = _coords(scene)
    forms = {
        "z.geojson": {"type": "LineString", "coordinates": [p + [512.0] for p in c]},
        "dupes.geojson": {"type": "LineString", "coordinates": [p for p in c for _ in (0, 1)]},
        "fc.geojson": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": None},
            {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": c[:120]}},
            {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": c[119:]}},
        ]},
    }
    for name, obj in forms.items():
        (tmp_path / name).write_text(json.dumps(obj))
    (tmp_path / "r.wkt").write_text(shapely.LineString(c).wkt)
    for name in [*forms, "r.wkt"]:
        d = measured(run(*measure_args(scene.path, tmp_path / name)))
        assert d["length_km"] * 1000 == pytest.approx(scene.length_m, rel=REL), name


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("extra,needle", [
    (["--head", "44.7,42.9"], "from the road"),
    (["--head", "42.768,44.631"], "LON,LAT"),              # swapped head
    (["--head", "200,1"], "out of range"),
    (["--head", "nonsense"], "LON,LAT"),
    (["--max-gap", "0"], "max gap"),
    (["--max-gap", "-5"], "max gap"),
    (["--max-gap", "1e9"], "absurd"),
    (["--max-gap", "nan"], "max gap"),
    (["--max-gap", "inf"], "max gap"),
    (["--max-gap", "abc"], "not a valid float"),
    (["--half-width", "0"], "half width"),
    (["--sensitivity", "100"], "sensitivity"),
    (["--direction", "sideways"], "sideways"),
    (["--precision", "99"], "precision"),
    (["--bogus"], "no such option"),
])
def test_bad_options(scene, out, extra, needle):
    fails(run(*measure_args(scene.path, scene.road_path, *extra, out=out)), out.parent, needle=needle)


def test_usage_errors_are_one_line(scene):
    fails(run("measure", scene.path), needle="--road")
    fails(run("measure"), needle="TILE")
    fails(run("no-such-command"), needle="no such command")
    fails(run("--bogus", "measure"), needle="no such option")


def test_output_directory_missing_or_not_writable(scene, tmp_path):
    fails(run(*measure_args(scene.path, scene.road_path, out=tmp_path / "no" / "q.geojson")),
          needle="does not exist")
    (tmp_path / "file").write_text("x")
    fails(run(*measure_args(scene.path, scene.road_path, out=tmp_path / "file" / "q.geojson")),
          needle="not a directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)  # refused even when the tests run as root
    try:
        fails(run(*measure_args(scene.path, scene.road_path, out=ro / "q.geojson")), ro, needle="not writable")
    finally:
        ro.chmod(0o755)
    fails(run(*measure_args(scene.path, scene.road_path, out=tmp_path)), needle="directory")


def test_output_exists_is_refused_without_overwrite(scene, tmp_path):
    out = tmp_path / "q.geojson"
    out.write_text("precious")
    fails(run(*measure_args(scene.path, scene.road_path, out=out)), needle="--overwrite")
    assert out.read_text() == "precious"
    d = measured(run(*measure_args(scene.path, scene.road_path, "--overwrite", out=out)))
    assert json.loads(out.read_text())["properties"]["length_km"] == d["length_km"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.geojson"]


def test_output_same_file_as_input(scene, tmp_path, monkeypatch):
    tile = tmp_path / "t.tif"
    road = tmp_path / "r.geojson"
    shutil.copy(scene.path, tile)
    shutil.copy(scene.road_path, road)
    (tmp_path / "link.tif").symlink_to(tile)
    before = tile.read_bytes(), road.read_bytes()
    monkeypatch.chdir(tmp_path)
    for target in (tile, road, "./t.tif", tmp_path / "link.tif", "r.geojson"):
        fails(run(*measure_args(tile, road, "--overwrite", out=target)), needle="same file")
        fails(run(*measure_args("t.tif", "./r.geojson", "--overwrite", out=target)), needle="same file")
    assert (tile.read_bytes(), road.read_bytes()) == before


# ----------------------------------------------------------------------------- faults


def test_interrupt_before_writing_leaves_nothing(scene, out, monkeypatch):
    from queuemeasure.result import QueueResult

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(QueueResult, "to_geojson", interrupted)
    fails(run(*measure_args(scene.path, scene.road_path, out=out)), out.parent, code=130, needle="interrupted")


@pytest.mark.parametrize("exc,code,needle", [
    (KeyboardInterrupt, 130, "interrupted"),
    (RuntimeError("boom"), 1, "internal error"),
    (OSError(28, "No space left on device"), 2, "No space left"),
])
def test_fault_mid_write_leaves_no_partial_file(scene, out, monkeypatch, exc, code, needle):
    """The temporary file is written and then the run dies: no result, no .part file."""
    import queuemeasure.export as export

    seen = []

    def dying_fsync(fd):
        seen.extend(p.name for p in out.parent.iterdir())
        raise exc

    monkeypatch.setattr(export.os, "fsync", dying_fsync)
    fails(run(*measure_args(scene.path, scene.road_path, out=out)), out.parent, code=code, needle=needle)
    assert seen and seen[0].endswith(".part")  # it did die mid-write


def test_fault_mid_overwrite_keeps_the_old_file(scene, out, monkeypatch):
    import queuemeasure.export as export

    out.write_text("old result")

    def dying_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(export.os, "fsync", dying_fsync)
    fails(run(*measure_args(scene.path, scene.road_path, "--overwrite", out=out)), code=130)
    assert out.read_text() == "old result"
    assert [p.name for p in out.parent.iterdir()] == ["q.geojson"]


def test_failed_run_leaves_no_output(scene, tmp_path, out):
    far = tmp_path / "far.geojson"
    far.write_text(json.dumps({"type": "LineString", "coordinates": [[10.0, 50.0], [10.01, 50.01]]}))
    fails(run(*measure_args(scene.path, far, out=out)), out.parent)


def test_real_gdal_chatter_stays_off_stderr(scene, tmp_path):
    """A damaged TIFF directory makes GDAL log warnings; only -v shows them."""
    data = bytearray(scene.path.read_bytes())
    data[60:120] = np.random.default_rng(0).integers(0, 256, 60, dtype=np.uint8).tobytes()
    bad = tmp_path / "header.tif"
    bad.write_bytes(bytes(data))
    out = tmp_path / "q.geojson"
    r = run_script("measure", bad, "--road", scene.road_path, "--out", out)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error:"), r.stderr
    assert not out.exists()
    r = run_script("-v", "measure", bad, "--road", scene.road_path)
    assert r.returncode == 2 and "CPLE_" in r.stderr and "Traceback" in r.stderr


def test_real_script_one_line_for_each_kind_of_failure(scene, tmp_path):
    road = tmp_path / "point.geojson"
    road.write_text('{"type": "Point", "coordinates": [44.631, 42.768]}')
    for code, args in ((2, ["measure", tmp_path / "none.tif", "--road", scene.road_path]),
                       (2, ["measure", scene.path, "--road", road]),
                       (2, ["measure", scene.path, "--road", scene.road_path, "--head", "x"]),
                       (1, ["measure", "http://127.0.0.1:9/x.tif", "--road", scene.road_path])):  # server
        r = run_script(*args)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == code and len(lines) == 1 and lines[0].startswith("Error:"), r.stderr
        assert r.stdout == ""


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
def test_sigint_leaves_no_partial_output(tmp_path):
    """Ctrl-C in the middle of a long run: exit 130, one line, nothing written."""
    prof = dict(driver="GTiff", width=100_000, height=100_000, count=3, dtype="uint8", crs="EPSG:32638",
                transform=from_origin(470000, 4760000, 0.5, 0.5), tiled=True, blockxsize=512,
                blockysize=512, sparse_ok=True, compress="deflate", BIGTIFF="YES")
    tile = tmp_path / "sparse.tif"
    with rasterio.open(tile, "w", **prof):
        pass
    ys = np.linspace(4759000, 4712000, 20)
    x, y = geo.transformer(32638, 4326).transform(495000 + 100 * np.sin(np.arange(20)), ys)
    road = tmp_path / "long.geojson"
    road.write_text(json.dumps({"type": "LineString", "coordinates": np.column_stack([x, y]).tolist()}))
    outdir = tmp_path / "out"
    outdir.mkdir()
    # the run holds after reading its first piece (pipeline.HOLD_ENV) until the hold file is
    # gone: the interrupt lands at that known point, whatever the machine's load
    hold = tmp_path / "hold"
    # PYTHONFAULTHANDLER: should the run ever not end after the interrupt, SIGABRT makes it
    # print every thread's stack, shown in the failure. That is how the cause of two hangs
    # was found: pytest run as a background job of a script (`cmd &`) inherits SIGINT
    # *ignored*, and so does the run; Python then installs no KeyboardInterrupt handler.
    # The run gets the default disposition back, as from an interactive shell.
    env = {**os.environ, HOLD_ENV: str(hold), "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "queuemeasure", "measure", tile, "--road", road,
                             "--out", outdir / "q.geojson"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing assumption
        while not hold.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hold.exists() and proc.poll() is None, f"no hold point reached (exit {proc.poll()})"
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stacks = proc.communicate(timeout=60)
        pytest.fail(f"no exit 120 s after the interrupt; the run's threads:\n{stacks}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 130, stderr
    assert len(lines) == 1 and lines[0].startswith("Error:") and "interrupted" in lines[0], stderr
    assert stdout == ""
    assert list(outdir.iterdir()) == []


# ----------------------------------------------------------------------------- properties

# (tests/test_road.py checks that the head cut neither loses nor adds road, and
# tests/test_queue.py that the queue never exceeds the road, that a vehicle beyond max_gap
# changes nothing and that a larger max_gap never shortens it; these add the rest.)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "coordinates", "features", "geometry", "geometries", "crs",
                         "properties", "name", "x"]),
        inner, max_size=4),
    max_leaves=12,
)
geo_types = st.sampled_from(["LineString", "MultiLineString", "Point", "Polygon", "Feature",
                             "FeatureCollection", "GeometryCollection", "Nope"])


@settings(max_examples=150, deadline=None)
@given(obj=json_values, kind=geo_types)
def test_any_json_road_loads_or_raises_road_error(obj, kind):
    if isinstance(obj, dict) and "type" in obj:
        obj = dict(obj, type=kind)
    for src in (obj, json.dumps(obj)):
        try:
            parts, _ = load_road(src)
        except InputError:  # a RoadError, or a CRSError for a bad legacy "crs" member
            continue
        assert parts and all(p.ndim == 2 and p.shape[1] == 2 and len(p) >= 1 for p in parts)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_road_loads_or_raises_road_error(text):
    if text.strip() and not text.lstrip().startswith(("{", "[")) and "\n" not in text.strip():
        text = "LINESTRING " + text  # reach the WKT parser rather than the file lookup
    try:
        load_road(text)
    except InputError:
        pass


lonlat_line = st.lists(st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05)), min_size=2, max_size=8)


@settings(max_examples=40, deadline=None)
@given(pts=lonlat_line, lon0=st.floats(-179, 179), lat0=st.floats(-80, 80))
def test_geojson_and_wkt_round_trip_anywhere(pts, lon0, lat0):
    xy = [[lon0 + a, lat0 + b] for a, b in pts]
    geom = {"type": "LineString", "coordinates": xy}
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": geom}]}
    for src in (geom, json.dumps(fc), shapely.LineString(xy).wkt):
        parts, crs = load_road(src)
        assert crs == geo.WGS84
        np.testing.assert_allclose(parts[0], xy, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(pts=lonlat_line, t=st.floats(0, 1), off=st.floats(-150, 150))
def test_head_cut_places_the_head_on_the_road_or_refuses(pts, t, off):
    xy = np.array([[44.6 + a, 42.7 + b] for a, b in pts])
    if (np.hypot(*np.diff(xy, axis=0).T) < 1e-4).any() or not shapely.LineString(xy).is_simple:
        return
    line = shapely.LineString(xy)
    p = line.interpolate(t, normalized=True)
    # move the head sideways by ~off metres
    head = (p.x, p.y + off / 111_000.0)
    try:
        sides = prepare_road(line, head=head)
    except HeadError:
        assert abs(off) > 90  # refused only when it is really off the road
        return
    d = sides.head_offset_m
    assert d <= 100.0 + 1e-6
    total = sum(s.length_m for s in sides.sides)
    assert total == pytest.approx(prepare_road(line).sides[0].length_m, rel=1e-6, abs=2.0)
    # reversing the road swaps the sides and keeps their lengths (head on the line, where
    # its projection is unique)
    on = (p.x, p.y)
    sides = prepare_road(line, head=on)
    rev = prepare_road(shapely.LineString(xy[::-1]), head=on)
    a = {s.side: s.length_m for s in sides.sides}
    b = {s.side: s.length_m for s in rev.sides}
    for side, other in (("forward", "backward"), ("backward", "forward")):
        if side in a and other in b:
            assert a[side] == pytest.approx(b[other], rel=1e-6, abs=0.5)


vehicles = st.lists(st.tuples(st.floats(0, 1500), st.floats(3.5, 16.0)), max_size=40)


@settings(max_examples=80, deadline=None)
@given(v=vehicles, gap=st.floats(5, 120), seed=st.integers(0, 2**16))
def test_chain_ignores_input_order_and_is_contiguous(v, gap, seed):
    s0 = np.array([a for a, _ in v], dtype=float)
    s1 = s0 + np.array([b for _, b in v], dtype=float)
    c = chain_queue(s0, s1, max_gap_m=gap)
    perm = np.random.default_rng(seed).permutation(len(v))
    c2 = chain_queue(s0[perm], s1[perm], max_gap_m=gap)
    assert c2.count == c.count and c2.length_m == pytest.approx(c.length_m)
    if c.count:
        # every vehicle starting inside the queue belongs to it
        inside = (s0 >= c.start_m) & (s0 <= c.end_m)
        assert inside.sum() == c.count
        assert c.length_m <= (s1.max() - s0.min()) + 1e-9


@settings(max_examples=60, deadline=None)
@given(v=vehicles, gap=st.floats(5, 120), occ=st.lists(st.tuples(st.floats(0, 1500), st.floats(1, 200)), max_size=4))
def test_occlusion_never_shortens_the_queue(v, gap, occ):
    s0 = np.array([a for a, _ in v], dtype=float)
    s1 = s0 + np.array([b for _, b in v], dtype=float)
    c = chain_queue(s0, s1, max_gap_m=gap)
    co = chain_queue(s0, s1, max_gap_m=gap, occluded=[(a, a + w) for a, w in occ])
    assert co.length_m >= c.length_m - 1e-9 and co.count >= c.count


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40) | json_values.map(json.dumps))
def test_cli_never_tracebacks_on_any_road(scene, tmp_path, text):
    road = tmp_path / "road.geojson"
    road.write_bytes(text.encode("utf-8", "surrogatepass"))
    res = run(*measure_args(scene.path, road))
    assert "Traceback" not in res.output
    if res.exit_code != 0:
        fails(res)
