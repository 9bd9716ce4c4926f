"""Shared fixtures: painted test scenes (see tests/scenes.py) and paths to data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scenes import paint_scene  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REALDATA = SHARED / "realdata"
SAMPLES = ROOT / "sample_tiles"


@pytest.fixture(scope="session")
def scenes_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("scenes")


@pytest.fixture(scope="session")
def curve_scenes(scenes_dir):
    """The same curved-road scene painted in UTM, EPSG:4326 and EPSG:3857."""
    return {
        crs: paint_scene(scenes_dir, crs=crs, road_len=500, queue_len=260, name=f"curve_{crs[-4:]}")
        for crs in ("utm", "EPSG:4326", "EPSG:3857")
    }


LARS = SAMPLES / "upper_lars_2022-09-26_SYNTHETIC"


def lars_args():
    """Tile, road and measure() keywords of the 20 km Upper Lars sample (SYNTHETIC)."""
    import json

    truth = json.loads(LARS.with_suffix(".truth.geojson").read_text())["properties"]
    return (LARS.with_suffix(".tif"), LARS.with_suffix(".road.geojson"),
            {"head": tuple(truth["head_lonlat"]), "max_gap": truth["max_gap_m"]})


@pytest.fixture(scope="session")
def lars_result():
    """The 20 km Upper Lars sample measured once (about 3 s)."""
    import queuemeasure as qm

    tile, road, kw = lars_args()
    if not tile.exists():
        pytest.skip(f"needs {tile.name}")
    return qm.measure(tile, road, **kw)


@pytest.fixture
def read_calls(monkeypatch):
    """Every ``DatasetReader.read`` call made during the test, as (window, out_shape)."""
    import rasterio

    calls = []
    orig = rasterio.io.DatasetReader.read

    def spy(self, *a, **kw):
        calls.append((kw.get("window"), kw.get("out_shape")))
        return orig(self, *a, **kw)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    return calls


@pytest.fixture(scope="module")
def server():
    """A range-capable HTTP server on 127.0.0.1 (tests/httpserver.py), one per test module."""
    from httpserver import RangeServer

    with RangeServer() as srv:
        yield srv
