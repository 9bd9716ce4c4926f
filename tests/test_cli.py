"""The CLI contract: JSON keys, one-line errors with exit 2, atomic outputs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from queuemeasure.cli.main import cli

KEYS = {"length_km", "length_km_range", "vehicle_count", "head_lonlat", "tail_lonlat", "truncated",
        "occluded_km", "max_gap_m", "gsd_m", "raster_crs", "road_km_searched"}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line_error(res, code=2):
    assert res.exit_code == code, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error:")
    assert "Traceback" not in res.output
    return lines[0]


@pytest.fixture(scope="module")
def scene(curve_scenes):
    return curve_scenes["utm"]


def test_measure_json(scene):
    res = run("measure", scene.path, "--road", scene.road_path, "--head",
              f"{scene.head[0]},{scene.head[1]}", "--max-gap", 50, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert KEYS <= set(d)
    assert d["length_km"] == pytest.approx(scene.length_m / 1000, rel=0.01)


def test_measure_summary_and_geojson_out(scene, tmp_path):
    out = tmp_path / "q.geojson"
    res = run("measure", scene.path, "--road", scene.road_path, "--out", out)
    assert res.exit_code == 0, res.output
    assert "queue length" in res.stdout
    fc = json.loads(out.read_text())
    assert fc["type"] == "FeatureCollection"
    # refuses to overwrite without --overwrite, and leaves the file as it was
    before = out.read_bytes()
    res = run("measure", scene.path, "--road", scene.road_path, "--out", out)
    assert "exists" in _one_line_error(res)
    assert out.read_bytes() == before
    res = run("measure", scene.path, "--road", scene.road_path, "--out", out, "--overwrite")
    assert res.exit_code == 0
    assert not list(tmp_path.glob(".*part"))


@pytest.mark.parametrize("extra,needle", [
    (["--head", "44.7,42.9"], "from the road"),
    (["--head", "nonsense"], "LON,LAT"),
    (["--max-gap", "0"], "max gap"),
    (["--max-gap", "-5"], "max gap"),
    (["--max-gap", "100000"], "absurd"),
    (["--bands", "7"], "band 7"),
    (["--bands", "x"], "band numbers"),
    (["--road-crs", "EPSG:0"], "CRS"),
])
def test_bad_options(scene, extra, needle):
    res = run("measure", scene.path, "--road", scene.road_path, *extra)
    assert needle in _one_line_error(res)


def test_bad_inputs(scene, tmp_path):
    assert "not found" in _one_line_error(run("measure", tmp_path / "none.tif", "--road", scene.road_path))
    assert "directory" in _one_line_error(run("measure", tmp_path, "--road", scene.road_path))
    fake = tmp_path / "fake.tif"
    fake.write_text('{"type": "not a tiff"}')
    assert "not a readable raster" in _one_line_error(run("measure", fake, "--road", scene.road_path))
    empty = tmp_path / "empty.geojson"
    empty.write_text("")
    assert "empty" in _one_line_error(run("measure", scene.path, "--road", empty))
    far = tmp_path / "far.geojson"
    far.write_text(json.dumps({"type": "LineString", "coordinates": [[10.0, 50.0], [10.01, 50.01]]}))
    assert "outside the tile" in _one_line_error(run("measure", scene.path, "--road", far))
    road = json.loads(scene.road_path.read_text())
    road["geometry"]["coordinates"] = [[y, x] for x, y in road["geometry"]["coordinates"]]
    swapped = tmp_path / "swapped.geojson"
    swapped.write_text(json.dumps(road))
    msg = _one_line_error(run("measure", scene.path, "--road", swapped))
    assert "swapped" in msg or "outside" in msg


def test_output_problems(scene, tmp_path):
    res = run("measure", scene.path, "--road", scene.road_path, "--out", tmp_path / "no" / "q.geojson")
    assert "does not exist" in _one_line_error(res)
    res = run("measure", scene.path, "--road", scene.road_path, "--out", scene.road_path, "--overwrite")
    assert "same file" in _one_line_error(res)


def test_verbose_shows_traceback(tmp_path, scene):
    res = CliRunner().invoke(cli, ["-v", "measure", str(tmp_path / "none.tif"), "--road", str(scene.road_path)])
    assert res.exit_code == 2
    assert "Traceback" in res.stderr


def test_info(scene):
    res = run("info", scene.path, "--road", scene.road_path, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["crs"] == "EPSG:32638"
    assert d["pixel_size_m"][0] == pytest.approx(0.5, rel=0.01)
    assert d["road_km"] == pytest.approx(0.5, rel=0.01)
    assert d["road_km_on_valid_data"] == pytest.approx(0.5, rel=0.02)
    res = run("info", scene.path)
    assert "ground pixel 0.500" in res.stdout


def test_version_and_help():
    res = run("--version")
    assert "GDAL" in res.stdout and "PROJ" in res.stdout and "GEOS" in res.stdout
    assert run("--help").exit_code == 0
