"""Batch measurement on a real Dask LocalCluster: same results as measure(), failing rows
recorded without stopping the others, --resume skipping done rows, crash-safe output."""

from __future__ import annotations

import csv
import json
import os
import sys

import click
import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

import queuemeasure as qm  # noqa: E402
from queuemeasure.batch import (  # noqa: E402
    ManifestError,
    measure_many,
    parse_manifest_rows,
    read_manifest,
)
from queuemeasure.cli.batch_cmd import batch  # noqa: E402
from queuemeasure.cli.main import _Group  # noqa: E402
from queuemeasure import measure  # noqa: E402
from scenes import paint_scene  # noqa: E402


@click.group(cls=_Group)
def cli() -> None:
    """A standalone group holding only ``batch`` (the lead registers it in the real one)."""


cli.add_command(batch)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def cluster():
    env = dict(os.environ)  # Dask's nannies export OMP_NUM_THREADS etc. into this process
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c, distributed.Client(c) as client:
        os.environ.clear()
        os.environ.update(env)
        yield c, client


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    a = paint_scene(d, crs="utm", gsd=0.5, road_len=300, queue_len=120, name="a")
    b = paint_scene(d, crs="EPSG:4326", gsd=0.5, road_len=300, queue_len=80, name="b", seed=1)
    (d / "garbage.tif").write_bytes(b"II*\x00" + b"\x17garbage" * 500)
    raw = a.path.read_bytes()
    (d / "truncated.tif").write_bytes(raw[: len(raw) // 3])
    (d / "bad.road.geojson").write_text('{"type": "Point", "coordinates": [44.6, 42.7]}')
    return d, a, b


def write_manifest(d, a, b, name="manifest.csv"):
    ah, bh = a.head, b.head
    text = "\n".join([
        "id,site,date,tile,road,head,max_gap,direction",
        f'a1,Lars,2022-09-20,a.tif,a.road.geojson,"{ah[0]},{ah[1]}",50,',
        f'b1,Sarpi,2022-09-20,b.tif,b.road.geojson,"{bh[0]},{bh[1]}",,',
        f'junk,Sarpi,2022-09-22,garbage.tif,b.road.geojson,"{bh[0]},{bh[1]}",,',
        f'a2,Lars,2022-09-26T08:15:00Z,{a.path},a.road.geojson,"{ah[0]},{ah[1]}",30,forward',
        f'cut,Lars,2022-09-28,truncated.tif,a.road.geojson,"{ah[0]},{ah[1]}",,',
        f'noroad,Sarpi,2022-09-28,b.tif,bad.road.geojson,"{bh[0]},{bh[1]}",,',
        f'b2,Sarpi,2022-09-30,b.tif,b.road.geojson,"{bh[0]},{bh[1]}",60,',
    ]) + "\n"
    p = d / name
    p.write_text(text)
    return p


GOOD = {"a1", "b1", "a2", "b2"}
BAD = {"junk", "cut", "noroad"}


def direct(row):
    return measure(row.tile, row.road, **row.measure_kwargs()).to_dict()


def same(batch_dict, direct_dict):
    skip = {"elapsed_s"}
    assert {k: v for k, v in batch_dict.items() if k not in skip} == \
        {k: v for k, v in direct_dict.items() if k not in skip}


def read_csv(p):
    with open(p, newline="", encoding="utf-8") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


# ------------------------------------------------------------------ manifest
def test_manifest_parsing(data, tmp_path):
    d, a, b = data
    rows = read_manifest(write_manifest(d, a, b))
    assert [r.id for r in rows] == ["a1", "b1", "junk", "a2", "cut", "noroad", "b2"]
    r = rows[3]
    assert r.tile == str(a.path) and r.road == str(d / "a.road.geojson")  # relative -> manifest folder
    assert r.date == "2022-09-26T08:15:00+00:00" and r.head == pytest.approx(a.head)
    assert r.options == {"max_gap": 30.0, "direction": "forward"}
    assert rows[1].options == {}
    # semicolons, head_lon/head_lat, default ids, comments, URL kept as is
    m = tmp_path / "m.csv"
    m.write_text("Site;Date;Tile;Road;Head_Lon;Head_Lat;Bands\n# a comment\n"
                 "x;2022-01-02;https://example.org/t.tif;r.geojson;44.6;42.7;3,2,1\n"
                 "y;2022-01-03;t.tif;r.geojson;;;\n")
    rows = read_manifest(m)
    assert [r.id for r in rows] == ["1", "2"]
    assert rows[0].tile == "https://example.org/t.tif" and rows[0].head == (44.6, 42.7)
    assert rows[0].options == {"bands": [3, 2, 1]} and rows[1].head is None
    assert rows[1].road == str(tmp_path / "r.geojson")


@pytest.mark.parametrize("header,row,needle", [
    ("site,date,tile", "x,2022-01-01,t.tif", "missing column 'road'"),
    ("site,date,tile,road", "x,2022-13-01,t.tif,r.json", "line 2, column 'date'"),
    ("site,date,tile,road,head", 'x,2022-01-01,t.tif,r.json,"44.6"', "line 2, column 'head'"),
    ("site,date,tile,road,head", 'x,2022-01-01,t.tif,r.json,"42.7,144.6"', "lon first"),
    ("site,date,tile,road,max_gap", "x,2022-01-01,t.tif,r.json,fifty", "column 'max_gap'"),
    ("site,date,tile,road,max_gap", "x,2022-01-01,t.tif,r.json,5000", "column 'max_gap': max gap of 5000"),
    ("site,date,tile,road,half_width", "x,2022-01-01,t.tif,r.json,-1", "column 'half_width': half width"),
    ("site,date,tile,road,direction", "x,2022-01-01,t.tif,r.json,up", "column 'direction'"),
    ("site,date,tile,road,bands", "x,2022-01-01,t.tif,r.json,0", "column 'bands'"),
    ("site,date,tile,road,road_crs", "x,2022-01-01,t.tif,r.json,EPSG:0", "column 'road_crs'"),
    ("site,date,tile,road", ",2022-01-01,t.tif,r.json", "column 'site': is empty"),
    ("id,site,date,tile,road", "7,x,2022-01-01,t.tif,r.json\n7,y,2022-01-02,t.tif,r.json",
     "line 3, column 'id': '7' repeats"),
])
def test_manifest_errors(tmp_path, header, row, needle):
    m = tmp_path / "m.csv"
    m.write_text(f"{header}\n{row}\n")
    with pytest.raises(ManifestError, match="m.csv") as exc:
        read_manifest(m)
    assert needle in str(exc.value)
    assert isinstance(exc.value, qm.InputError)


def test_manifest_error_counts_more_problems(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("site,date,tile,road\nx,bad,t.tif,r.json\ny,worse,t.tif,r.json\nz,2022-01-01,,r.json\n")
    with pytest.raises(ManifestError, match=r"line 2, column 'date'.*\(and 2 more problems\)"):
        read_manifest(m)


# ------------------------------------------------------------------ measure_many
def test_measure_many_matches_measure(cluster, data):
    _, client = cluster
    d, a, b = data
    rows = read_manifest(write_manifest(d, a, b))
    got = {r.id: r for r in measure_many(rows, client)}
    assert set(got) == GOOD | BAD  # every row comes back, bad ones did not stop the others
    for row in rows:
        r = got[row.id]
        assert (r.site, r.date, r.tile) == (row.site, row.date, row.tile)
        if row.id in GOOD:
            assert r.status == "ok" and r.error is None, r.error
            same(r.result, direct(row))
            f = r.feature
            assert f["properties"]["id"] == row.id and f["properties"]["site"] == row.site
            if r.result["vehicle_count"]:
                assert f["geometry"]["type"] == "LineString"
        else:
            assert r.status == "error" and r.error and "\n" not in r.error
            assert r.result is None and r.feature is None
            with pytest.raises(qm.QueueMeasureError):  # the same error measure() raises
                direct(row)
    assert "not a readable raster" in got["junk"].error
    assert "read" in got["cut"].error.lower()
    assert got["a2"].result["max_gap_m"] == 30.0 and got["a2"].result["direction"] == "forward"


def test_measure_many_defaults_and_mappings(cluster, data):
    _, client = cluster
    d, a, _ = data
    rows = [{"site": "Lars", "date": "2022-09-20", "tile": str(a.path), "road": str(a.road_path),
             "head_lon": a.head[0], "head_lat": a.head[1]}]
    (r,) = list(measure_many(rows, client, max_gap=40))
    assert r.ok and r.id == "1" and r.result["max_gap_m"] == 40.0
    same(r.result, measure(a.path, a.road_path, head=a.head, max_gap=40).to_dict())
    with pytest.raises(TypeError, match="defaults may be"):
        next(measure_many(rows, client, maxgap=40))


# ------------------------------------------------------------------ CLI, resume, crash safety
def test_cli_batch_resume(cluster, data, tmp_path):
    c, _ = cluster
    d, a, b = data
    manifest = write_manifest(d, a, b, "cli.csv")
    out, gj, png = tmp_path / "r.csv", tmp_path / "r.geojson", tmp_path / "r.png"
    res = run("batch", manifest, "--out", out, "--geojson", gj, "--plot", png,
              "--scheduler", c.scheduler_address)
    assert res.exit_code == 1, res.output  # some rows failed: exit 1, one line naming them
    assert "3 of 7 rows failed" in res.stderr
    assert "7 rows: 4 ok, 3 failed" in res.stdout
    first = read_csv(out)
    assert list(first) == ["a1", "b1", "junk", "a2", "cut", "noroad", "b2"]  # manifest order
    assert {i for i, r in first.items() if r["status"] == "ok"} == GOOD
    assert all(first[i]["error"] for i in BAD)
    rows = {r.id: r for r in read_manifest(manifest)}
    for i in GOOD:  # CSV values are the JSON fields of measure
        dd = direct(rows[i])
        assert json.loads(first[i]["length_km"]) == dd["length_km"]
        assert json.loads(first[i]["vehicle_count"]) == dd["vehicle_count"]
        assert json.loads(first[i]["tail_lonlat"] or "null") == dd["tail_lonlat"]
        assert first[i]["raster_crs"] == dd["raster_crs"]
    fc = json.loads(gj.read_text())
    assert fc["type"] == "FeatureCollection" and {f["id"] for f in fc["features"]} == GOOD
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # without --resume or --overwrite the output is not clobbered
    before = out.read_bytes()
    res = run("batch", manifest, "--out", out, "--scheduler", c.scheduler_address)
    assert res.exit_code == 2 and "exists" in res.stderr and out.read_bytes() == before

    # --resume: the ok rows are not measured again, even with their tile gone
    moved = d / "b.moved"
    (d / "b.tif").rename(moved)
    try:
        res = run("batch", manifest, "--out", out, "--geojson", gj, "--plot", png, "--resume",
                  "--scheduler", c.scheduler_address)
    finally:
        moved.rename(d / "b.tif")
    assert res.exit_code == 1 and "4 already done, skipped" in res.stdout
    second = read_csv(out)
    assert list(second) == list(first)  # still one row per input
    for i in GOOD:
        assert second[i] == first[i]  # untouched, same measured_at
    for i in BAD:  # failed rows were tried again
        assert second[i]["status"] == "error" and second[i]["measured_at"] > first[i]["measured_at"]
    assert {f["id"] for f in json.loads(gj.read_text())["features"]} == GOOD


def test_crash_loses_only_rows_in_flight(cluster, data, tmp_path):
    c, _ = cluster
    d, a, b = data
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,site,date,tile,road,head\n"
        f'1,Lars,2022-09-20,{a.path},{a.road_path},"{a.head[0]},{a.head[1]}"\n'
        f'2,Sarpi,2022-09-20,{b.path},{b.road_path},"{b.head[0]},{b.head[1]}"\n'
        f'3,Lars,2022-09-21,{a.path},{a.road_path},"{a.head[0]},{a.head[1]}"\n'
    )
    out = tmp_path / "r.csv"
    res = run("batch", manifest, "--out", out, "--scheduler", c.scheduler_address)
    assert res.exit_code == 0, res.output
    full = read_csv(out)
    # a crash: header, one complete row and half of the next were on disk
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])
    res = run("batch", manifest, "--out", out, "--resume", "--scheduler", c.scheduler_address)
    assert res.exit_code == 0, res.output
    assert "1 already done" in res.stdout
    after = read_csv(out)
    assert list(after) == ["1", "2", "3"]
    kept = lines[1].split(",")[0]
    assert after[kept] == full[kept]
    for i in set(after) - {kept}:
        assert after[i]["status"] == "ok" and after[i]["measured_at"] > full[i]["measured_at"]
        assert after[i]["length_km"] == full[i]["length_km"]


def test_cli_local_cluster_and_bad_manifest(data, tmp_path):
    d, a, _ = data
    manifest = tmp_path / "m.csv"
    manifest.write_text(f'site,date,tile,road,head\nLars,2022-09-20,{a.path},{a.road_path},'
                        f'"{a.head[0]},{a.head[1]}"\n')
    out = tmp_path / "r.csv"
    res = run("batch", manifest, "--out", out, "--workers", 1, "--precision", 6)
    assert res.exit_code == 0, res.output
    row = read_csv(out)["1"]
    assert row["status"] == "ok" and json.loads(row["head_lonlat"]) == [round(a.head[0], 6), round(a.head[1], 6)]
    bad = tmp_path / "bad.csv"
    bad.write_text("site,date,tile\nx,2022-01-01,t.tif\n")
    res = run("batch", bad, "--out", tmp_path / "r2.csv")
    assert res.exit_code == 2 and "missing column 'road'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r2.csv").exists()
    res = run("batch", manifest, "--out", tmp_path / "r3.csv", "--max-gap", 0)
    assert res.exit_code == 2 and "max gap" in res.stderr and not (tmp_path / "r3.csv").exists()
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    res = run("batch", manifest, "--out", other, "--resume")
    assert res.exit_code == 2 and "cannot resume" in res.stderr and other.read_text() == "a,b\n1,2\n"


def test_without_dask(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    res = run("batch", tmp_path / "m.csv", "--out", tmp_path / "r.csv")
    assert res.exit_code == 2
    assert "batch needs Dask: pip install 'queuemeasure[dask]'" in res.stderr
    rows = parse_manifest_rows([{"site": "x", "date": "2022-01-01", "tile": "t.tif", "road": "r.json"}])
    with pytest.raises(ImportError, match=r"queuemeasure\[dask\]"):
        next(measure_many(rows))
