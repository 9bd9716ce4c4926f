"""Outputs in every format: GeoJSON, GeoPackage, FlatGeobuf read back with pyogrio and
compared with the GeoJSON feature by feature; pictures by extension; refusals; atomicity."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import queuemeasure as qm
from queuemeasure.cli.main import cli
from queuemeasure.formats import image_format, road_format, table_format, vector_format

pyogrio = pytest.importorskip("pyogrio")
shapely = pytest.importorskip("shapely")

from conftest import SAMPLES  # noqa: E402

TILE = SAMPLES / "curve_utm_SYNTHETIC.tif"
ROAD = SAMPLES / "curve_utm_SYNTHETIC.road.geojson"
EMPTY_TILE = SAMPLES / "empty_road_SYNTHETIC.tif"
EMPTY_ROAD = SAMPLES / "empty_road_SYNTHETIC.road.geojson"

#: The documented split of pairs into two fields (README, queuemeasure.vector).
PAIRS = {"length_km_range": ("length_km_low", "length_km_high"),
         "head_lonlat": ("head_lon", "head_lat"), "tail_lonlat": ("tail_lon", "tail_lat"),
         "vehicle_count_estimate": ("vehicle_count_estimate_low", "vehicle_count_estimate_high")}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, code=2):
    assert res.exit_code == code, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


@pytest.fixture(scope="module")
def result():
    return qm.measure(str(TILE), road=str(ROAD))


@pytest.fixture(scope="module")
def empty_result():
    return qm.measure(str(EMPTY_TILE), road=str(EMPTY_ROAD))


# ------------------------------------------------------------------ reading back
def read_layer(path, layer=None):
    """Features of one layer as (geometry, {field: value}) with GDAL's own types."""
    meta, _, geoms, data = pyogrio.raw.read(path, layer=layer)
    assert meta["crs"] == "EPSG:4326"
    rows = [{f: col[i] for f, col in zip(meta["fields"], data)} for i in range(len(geoms))]
    return meta, [(None if g is None else shapely.from_wkb(g), r) for g, r in zip(geoms, rows)]


def is_null(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def same_value(expected, got):
    if expected is None:
        return is_null(got)
    if isinstance(expected, bool):
        return not is_null(got) and got in (0, 1) and bool(got) == expected
    if isinstance(expected, (int, float)):
        return not is_null(got) and float(got) == float(expected)  # REAL keeps the double exactly
    if isinstance(expected, str):
        return got == expected
    return isinstance(got, str) and json.loads(got) == expected  # other lists: JSON text


def compare_feature(feature, geom, row, fields):
    """One GeoJSON Feature against one feature read back: geometry and every field."""
    if feature["geometry"] is None:
        assert geom is None
    else:
        ref = shapely.geometry.shape(feature["geometry"])
        assert geom.geom_type == ref.geom_type
        assert np.array_equal(shapely.get_coordinates(geom), shapely.get_coordinates(ref))
    props = dict(feature["properties"])
    expected = {}
    for key, value in props.items():
        if key in PAIRS:
            lo, hi = PAIRS[key]
            expected[lo], expected[hi] = (None, None) if value is None else value
            assert key not in fields
        else:
            expected[key] = value
    assert set(expected) <= set(fields)
    for name in fields:  # a field of another kind of feature is null here
        assert same_value(expected.get(name), row[name]), (name, expected.get(name), row[name])


def by_geometry(features):
    keyed = {}
    for geom, row in features:
        key = (row["role"], geom.wkb)
        assert key not in keyed
        keyed[key] = (geom, row)
    return keyed


def check_against_geojson(fc_features, read_features, fields):
    got = by_geometry(read_features)
    assert len(got) == len(fc_features)
    for feat in fc_features:
        key = (feat["properties"]["role"], shapely.geometry.shape(feat["geometry"]).wkb)
        compare_feature(feat, *got[key], fields)


# ------------------------------------------------------------------ the formats table
def test_format_table():
    assert vector_format("q.geojson").key == "geojson" and vector_format("Q.JSON").key == "geojson"
    assert vector_format("q.GPKG").key == "gpkg" and vector_format("a/b.c/q.fgb").key == "fgb"
    assert vector_format("q.dat", "GPKG").key == "gpkg"  # --format for an extension nobody claims
    assert vector_format("q.gpkg", "geopackage").key == "gpkg"
    for bad, needle in [(("q.xyz",), r"GeoPackage \(.gpkg\)"), (("q",), r"\(none\)"),
                        (("q.gpkg", "fgb"), "another format"), (("q.dat", "kml"), "unknown vector format"),
                        (("q.shp",), "GeoPackage"), (("q.gpkg", "shp"), "GeoPackage")]:
        with pytest.raises(qm.OutputFormatError, match=needle) as exc:
            vector_format(*bad)
        assert "\n" not in str(exc.value) and isinstance(exc.value, qm.InputError)
    assert [image_format(p).key for p in ("a.png", "a.JPG", "a.jpeg", "a.pdf", "a.svg")] == \
        ["png", "jpeg", "jpeg", "pdf", "svg"]
    with pytest.raises(qm.OutputFormatError, match=r"PNG \(.png\), JPEG \(.jpg/.jpeg\), PDF"):
        image_format("q.tif")
    assert table_format("r.csv").key == "csv"
    with pytest.raises(qm.OutputFormatError, match="--vector"):
        table_format("r.gpkg")
    assert road_format("road.geojson").key == "geojson"
    with pytest.raises(qm.OutputFormatError, match="GeoJSON, the format --road reads"):
        road_format("road.gpkg")


def test_trace_writes_geojson_only(tmp_path):
    res = run("trace", TILE, "--from", "44.631,42.768", "--to", "44.6305,42.7745", "--out", tmp_path / "r.gpkg")
    assert "the format --road reads" in one_line_error(res)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ read back, feature by feature
def test_geopackage_reads_back_like_the_geojson(result, tmp_path):
    path = tmp_path / "q.gpkg"
    result.to_file(path)
    assert os.listdir(tmp_path) == ["q.gpkg"]  # no journal, no temporary left beside it
    fc = result.to_geojson()
    roles = {"queue": ["queue"], "vehicles": ["vehicle"], "endpoints": ["head", "tail"]}
    layers = pyogrio.list_layers(path)
    assert [tuple(x) for x in layers] == [("queue", "LineString"), ("vehicles", "Polygon"),
                                         ("endpoints", "Point")]
    for layer, wanted in roles.items():
        meta, feats = read_layer(path, layer)
        expected = [f for f in fc["features"] if f["properties"]["role"] in wanted]
        assert expected, layer
        check_against_geojson(expected, feats, list(meta["fields"]))
        # and in the GeoJSON's order
        assert [shapely.geometry.shape(f["geometry"]).wkb for f in expected] == [g.wkb for g, _ in feats]
    info = pyogrio.read_info(path, layer="vehicles")
    assert info["layer_metadata"]["DESCRIPTION"].startswith("SYNTHETIC")
    # typed fields: floats REAL, booleans INTEGER 0/1, the range as two REAL fields
    con = sqlite3.connect(path)
    try:
        decl = {r[1]: r[2] for r in con.execute("PRAGMA table_info(queue)")}
        assert decl["length_km"] == "REAL" and decl["length_km_low"] == "REAL" and decl["length_km_high"] == "REAL"
        assert decl["vehicle_count"] == "INTEGER" and decl["truncated"] == "BOOLEAN"
        assert "length_km_range" not in decl
        typed = con.execute("SELECT typeof(length_km), typeof(length_km_low), typeof(truncated), truncated, "
                            "typeof(synthetic), synthetic, length_km_low, length_km_high FROM queue").fetchall()
        assert typed == [("real", "real", "integer", int(result.truncated), "integer", 1,
                          *result.length_km_range)]
        flags = {r[0] for r in con.execute("SELECT DISTINCT in_queue FROM vehicles")}
        assert flags == {0, 1}
        assert con.execute("SELECT DISTINCT typeof(in_queue) FROM vehicles").fetchall() == [("integer",)]
        assert con.execute("SELECT count(*) FROM vehicles WHERE in_queue = 1").fetchone()[0] == result.vehicle_count
    finally:
        con.close()


def test_flatgeobuf_reads_back_like_the_geojson(result, tmp_path):
    path = tmp_path / "q.fgb"
    result.to_file(path, precision=7)
    assert path.read_bytes()[:3] == b"fgb" and os.listdir(tmp_path) == ["q.fgb"]
    fc = result.to_geojson(precision=7)
    meta, feats = read_layer(path)
    assert meta["geometry_type"] == "Unknown"  # one layer: line, polygons and points
    assert pyogrio.read_info(path)["layer_metadata"]["DESCRIPTION"].startswith("SYNTHETIC")
    check_against_geojson(fc["features"], feats, list(meta["fields"]))
    assert set(PAIRS["length_km_range"]) <= set(meta["fields"])


def test_geojson_is_as_before(result, tmp_path):
    path = tmp_path / "q.geojson"
    result.to_file(path)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result.to_geojson()))
    meta, _, geoms, _ = pyogrio.raw.read(path)
    assert meta["crs"] == "EPSG:4326" and len(geoms) == len(result.to_geojson()["features"])


def test_empty_queue_keeps_the_three_layers(empty_result, tmp_path):
    assert empty_result.vehicle_count == 0
    path = tmp_path / "empty.gpkg"
    empty_result.to_file(path)
    layers = {name: pyogrio.read_info(path, layer=name)["features"] for name, _ in pyogrio.list_layers(path)}
    fc = empty_result.to_geojson()
    assert layers == {"queue": 0, "vehicles": len(empty_result.vehicles),
                      "endpoints": sum(f["properties"]["role"] in ("head", "tail") for f in fc["features"])}
    meta, feats = read_layer(path, "vehicles")
    check_against_geojson([f for f in fc["features"] if f["properties"]["role"] == "vehicle"], feats,
                          list(meta["fields"]))


# ------------------------------------------------------------------ the CLI contract
def test_cli_out_gpkg_fgb_and_refusals(tmp_path):
    gpkg, fgb = tmp_path / "q.gpkg", tmp_path / "q.fgb"
    res = run("measure", TILE, "--road", ROAD, "--out", gpkg, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    _, (queue,) = read_layer(gpkg, "queue")
    assert queue[0].geom_type == "LineString" and queue[1]["length_km"] == summary["length_km"]
    _, vehicles = read_layer(gpkg, "vehicles")
    assert {g.geom_type for g, _ in vehicles} == {"Polygon"} and len(vehicles) == summary["vehicles_detected"]
    res = run("measure", TILE, "--road", ROAD, "--out", fgb)
    assert res.exit_code == 0, res.output
    assert fgb.read_bytes()[:4] == b"fgb\x03"
    # never overwritten without --overwrite; the file is left as it was
    before = gpkg.read_bytes()
    assert "exists" in one_line_error(run("measure", TILE, "--road", ROAD, "--out", gpkg))
    assert gpkg.read_bytes() == before
    res = run("measure", TILE, "--road", ROAD, "--out", gpkg, "--overwrite", "--precision", 5)
    assert res.exit_code == 0, res.output
    _, (queue,) = read_layer(gpkg, "queue")
    assert np.array_equal(shapely.get_coordinates(queue[0]), np.round(shapely.get_coordinates(queue[0]), 5))
    # --format for an extension nobody claims
    dat = tmp_path / "q.dat"
    assert run("measure", TILE, "--road", ROAD, "--out", dat, "--format", "gpkg").exit_code == 0
    assert [n for n, _ in pyogrio.list_layers(dat)] == ["queue", "vehicles", "endpoints"]
    for args, needle in [(["--out", tmp_path / "q.xyz"], "vector outputs are GeoJSON"),
                         (["--out", tmp_path / "q.shp"], "GeoPackage"),
                         (["--quicklook", tmp_path / "q.tif"], "pictures are PNG"),
                         (["--out", tmp_path / "q.geojson", "--format", "fgb"], "another format"),
                         (["--format", "gpkg"], "give --out too")]:
        assert needle in one_line_error(run("measure", TILE, "--road", ROAD, *args))
    assert sorted(os.listdir(tmp_path)) == ["q.dat", "q.fgb", "q.gpkg"]


@pytest.mark.parametrize("name,magic", [("q.jpg", b"\xff\xd8\xff"), ("q.pdf", b"%PDF"),
                                        ("q.svg", b"<?xml"), ("q.png", b"\x89PNG\r\n\x1a\n")])
def test_quicklook_follows_its_extension(result, tmp_path, name, magic):
    pytest.importorskip("matplotlib")
    path = tmp_path / name
    result.quicklook(path, road=str(ROAD))
    data = path.read_bytes()
    assert data.startswith(magic)
    if name.endswith(".svg"):
        assert b"<svg" in data[:2000]


def test_cli_quicklook_jpeg(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "q.jpg"
    res = run("measure", TILE, "--road", ROAD, "--quicklook", path)
    assert res.exit_code == 0, res.output
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"


def test_failed_write_leaves_nothing(result, tmp_path, monkeypatch):
    import pyogrio.raw

    real = pyogrio.raw.write
    calls = []
    failure = [pyogrio.errors.DataSourceError("disk full (simulated)")]

    def fail_on_second_layer(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the first layer is on disk, with GDAL's own files
            raise failure[0]
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pyogrio.raw, "write", fail_on_second_layer)
    path = tmp_path / "q.gpkg"
    with pytest.raises(qm.OutputError, match=r"cannot write .*q.gpkg \(GeoPackage, layer vehicles\): disk full"):
        result.to_file(path)
    assert os.listdir(tmp_path) == []
    # with --overwrite, a failed write leaves the old file as it was
    path.write_bytes(b"old")
    calls.clear()
    assert "disk full" in one_line_error(run("measure", TILE, "--road", ROAD, "--out", path, "--overwrite"))
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["q.gpkg"]
    # Ctrl-C in the middle of the write: the same
    failure[0] = KeyboardInterrupt()
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        result.to_file(path, overwrite=True)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["q.gpkg"]


def test_without_pyogrio(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyogrio", None)
    line = one_line_error(run("measure", TILE, "--road", ROAD, "--out", tmp_path / "q.gpkg"))
    assert "GeoPackage output needs pyogrio: pip install 'queuemeasure[vector]'" in line
    assert "pip install 'queuemeasure[vector]'" in one_line_error(
        run("measure", TILE, "--road", ROAD, "--out", tmp_path / "q.fgb"))
    res = run("measure", TILE, "--road", ROAD, "--out", tmp_path / "q.geojson")
    assert res.exit_code == 0, res.output
    assert os.listdir(tmp_path) == ["q.geojson"]


# ------------------------------------------------------------------ batch --vector
def test_batch_vector_in_every_format(tmp_path):
    pytest.importorskip("distributed")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"site,date,tile,road\nA,2022-09-20,{TILE},{ROAD}\nB,2022-09-21,{EMPTY_TILE},{EMPTY_ROAD}\n")
    gpkg, gj, fgb = tmp_path / "q.gpkg", tmp_path / "q.geojson", tmp_path / "q.fgb"
    res = run("batch", manifest, "--out", tmp_path / "r.csv", "--workers", 1, "--vector", gpkg)
    assert res.exit_code == 0, res.output
    res = run("batch", manifest, "--out", tmp_path / "r.csv", "--workers", 1, "--resume",
              "--geojson", gj, "--plot", tmp_path / "lengths.svg")  # the old name still works
    assert res.exit_code == 0, res.output
    assert (tmp_path / "lengths.svg").read_bytes().startswith(b"<?xml")
    res = run("batch", manifest, "--out", tmp_path / "r.csv", "--workers", 1, "--resume", "--vector", fgb)
    assert res.exit_code == 0, res.output
    fc = json.loads(gj.read_text())
    assert [tuple(x) for x in pyogrio.list_layers(gpkg)] == [("queues", "LineString")]
    for path in (gpkg, fgb):
        meta, feats = read_layer(path)
        assert len(feats) == len(fc["features"]) == 2
        rows = {r["id"]: (g, r) for g, r in feats}
        for feat in fc["features"]:
            compare_feature(feat, *rows[feat["id"]], list(meta["fields"]))
        assert sum(g is None for g, _ in feats) == 1  # the empty road: no queue line
    for args, needle in [(["--vector", tmp_path / "q.xyz"], "vector outputs are"),
                         (["--plot", tmp_path / "p.gif"], "pictures are"),
                         (["--out", tmp_path / "r.gpkg"], "--vector")]:
        full = ["--out", tmp_path / "r2.csv", *args] if args[0] != "--out" else args
        assert needle in one_line_error(run("batch", manifest, *full))
