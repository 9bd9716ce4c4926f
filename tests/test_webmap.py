"""The interactive map (issue 20): explore(), --map, and the page in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import queuemeasure as qm
from conftest import lars_args
from queuemeasure.cli.main import cli
from queuemeasure.errors import MissingDependencyError, OutputError
from scenes import blank_across_road, paint_scene

folium = pytest.importorskip("folium")

from queuemeasure.webmap import map_html  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    s = paint_scene(tmp_path_factory.mktemp("webmap"), road_len=600, queue_len=200, name="webmap")
    return s, qm.measure(s.path, s.road_path, head=s.head)


def _queue_coords_in(page, r, precision=7):
    """Whether the queue line's vertices (rounded as in the page) are in the page."""
    q = np.round(np.asarray(r.queue_lonlat), precision)
    return all(f"[{x!r}, {y!r}]" in page for x, y in q[:: max(1, len(q) // 20)].tolist())


def test_explore_of_the_20_km_queue_saves_a_page_holding_it(lars_result, tmp_path):
    r = lars_result
    m = r.explore(tiles=None)
    assert isinstance(m, folium.Map)
    m.save(str(tmp_path / "q.html"))
    page = (tmp_path / "q.html").read_text()
    assert "qm-queue" in page and _queue_coords_in(page, r)
    # the vehicles are one GeoJSON layer, not thousands
    assert page.count("L.geoJson(") <= 6
    assert page.count('"role": "vehicle"') == 0 and page.count('"kind": ') == len(r.vehicles)
    assert "SYNTHETIC" in page


def test_page_is_self_contained_without_tiles(short):
    _, r = short
    page = map_html(r.explore(tiles=None))
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=\"https?:", page)
    assert "L.tileLayer" not in page
    assert "L.control.scale" in page and "L.control.layers" in page
    with_tiles = map_html(r.explore())
    assert "L.tileLayer" in with_tiles and "openstreetmap" in with_tiles.lower()


def test_layers_of_the_map(short):
    _, r = short
    page = map_html(r.explore(tiles=None))
    for name in ("tile footprint", "searched road", "vehicles (", "queue: ", "head and tail"):
        assert name in page, name
    assert "qm-head" in page and "qm-tail" in page and "qm-tile" in page


def test_occluded_stretches_are_drawn(tmp_path):
    s = paint_scene(tmp_path, road_len=700, queue_len=500, name="occ")
    blank_across_road(s, 200.0, 230.0)
    r = qm.measure(s.path, s.road_path, head=s.head)
    assert r.occluded_stretches_km
    page = map_html(r.explore(tiles=None))
    assert "occluded stretches (" in page and "qm-occluded" in page


def test_write_map_refuses_other_extensions_and_overwrites_only_when_asked(short, tmp_path):
    _, r = short
    with pytest.raises(OutputError, match=r"should end in \.html"):
        r.write_map(tmp_path / "q.png")
    assert not (tmp_path / "q.png").exists()
    out = tmp_path / "q.html"
    r.write_map(out, tiles=None)
    first = out.read_text()
    with pytest.raises(OutputError, match="exists"):
        r.write_map(out, tiles=None)
    r.write_map(out, tiles=None, overwrite=True)
    def ids(t):  # folium names its elements with random hex ids
        return re.sub(r"_[0-9a-f]{32}", "_ID", t)

    assert ids(out.read_text()) == ids(first)
    assert [p.name for p in tmp_path.iterdir()] == ["q.html"]  # no temporary file left


def test_explore_without_folium_says_how_to_install(short, monkeypatch):
    _, r = short
    monkeypatch.setitem(sys.modules, "folium", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'queuemeasure\[map\]'"):
        r.explore()


# ------------------------------------------------------------------------ CLI
def test_cli_map_writes_the_page_of_the_20_km_queue(tmp_path, lars_result):
    tile, road, kw = lars_args()
    out = tmp_path / "q.html"
    head = kw["head"]
    res = CliRunner().invoke(cli, ["measure", str(tile), "--road", str(road), "--head",
                                   f"{head[0]},{head[1]}", "--max-gap", str(kw["max_gap"]),
                                   "--json", "--map", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["length_km"] == pytest.approx(lars_result.length_km)
    page = out.read_text()
    assert "qm-queue" in page and _queue_coords_in(page, lars_result)


@pytest.mark.parametrize("name, extra, message", [
    ("q.png", [], "should end in .html"),
    # the same file as --out: refused (no vector format ends in .html)
    ("q.html", ["--out", "{dir}/q.html"], "extension .html"),
])
def test_cli_map_refusals(short, tmp_path, name, extra, message):
    s, _ = short
    extra = [e.format(dir=tmp_path) for e in extra]
    res = CliRunner().invoke(cli, ["measure", str(s.path), "--road", str(s.road_path),
                                   "--map", str(tmp_path / name), *extra])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_map_no_overwrite_without_flag(short, tmp_path):
    s, _ = short
    out = tmp_path / "q.html"
    out.write_text("keep")
    args = ["measure", str(s.path), "--road", str(s.road_path), "--head", f"{s.head[0]},{s.head[1]}",
            "--map", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "exists" in res.stderr and out.read_text() == "keep"
    res = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "qm-queue" in out.read_text() and f"wrote {out}" in res.stdout


def test_cli_map_without_folium_is_one_line_before_measuring(short, tmp_path, monkeypatch):
    s, _ = short
    monkeypatch.setitem(sys.modules, "folium", None)
    called = []
    monkeypatch.setattr("queuemeasure.pipeline.measure", lambda *a, **k: called.append(1))
    res = CliRunner().invoke(cli, ["measure", str(s.path), "--road", str(s.road_path),
                                   "--map", str(tmp_path / "q.html")])
    assert res.exit_code == 2 and not called
    assert res.stderr.strip() == "Error: interactive maps need folium: pip install 'queuemeasure[map]'"


# ------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium, headless and offline, driven by chromedriver (selenium)."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does it)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1200,900",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, path):
    """Load ``path``; return the browser's console entries of level SEVERE (errors)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_a_javascript_error_is_seen(browser, tmp_path):
    """The check below can fail: a page that throws is reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    errors = _open(browser, bad)
    assert errors and "undefinedFunction" in errors[0]["message"]


def test_map_of_the_20_km_queue_in_headless_chromium(browser, lars_result, tmp_path):
    from PIL import Image

    r = lars_result
    page = tmp_path / "q.html"
    r.write_map(page, tiles=None)
    errors = _open(browser, page)
    assert errors == [], errors
    found = browser.execute_script("""
        const q = document.querySelector('svg path.qm-queue');
        const box = q ? q.getBoundingClientRect() : null;
        return {leaflet: typeof L, queue: q ? q.getAttribute('d').length : 0,
                w: box ? box.width : 0, h: box ? box.height : 0,
                vehicles: document.querySelectorAll('svg path.qm-vehicle').length,
                head: document.querySelectorAll('path.qm-head').length,
                tail: document.querySelectorAll('path.qm-tail').length,
                layers: document.querySelectorAll('.leaflet-control-layers-overlays label').length,
                scale: document.querySelectorAll('.leaflet-control-scale').length};
    """)
    assert found["leaflet"] == "object"
    assert found["queue"] > 100 and max(found["w"], found["h"]) > 300  # the line spans the view
    assert found["vehicles"] == len(r.vehicles)
    assert found["head"] == 1 and found["tail"] == 1 and found["scale"] == 1
    assert found["layers"] >= 5
    shot = tmp_path / "map.png"
    assert browser.save_screenshot(str(shot))
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 200) & (rgb[..., 0] - rgb[..., 1] > 80) & (rgb[..., 0] - rgb[..., 2] > 80)
    assert red.sum() > 500  # the queue line is drawn in its colour (translucent red)
