"""Real public data: KIT AIS Munich aerial frames (with labelled boxes) and the
SpaceNet Las Vegas WorldView-3 tile with real road centrelines (see realdata SOURCE.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import queuemeasure as qm
from conftest import REALDATA
from queuemeasure import geo

kit = pytest.importorskip("kit")

pytestmark = pytest.mark.skipif(not REALDATA.exists(), reason="../shared/realdata not present")

VEGAS_TIF = REALDATA / "spacenet_vegas_solaris" / "road_mask_input.tif"
VEGAS_ROADS = REALDATA / "spacenet_vegas_solaris" / "sample_roads_for_masking.geojson"

HALF_WIDTH = 5.0   # the upper carriageway: three lanes and the kerb-side parking
MAX_GAP = 50.0


@pytest.fixture(scope="module")
def kit_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit")
    runs = {}
    for gsd in (0.12, 0.3, 0.5):
        for name in kit.FRAMES:
            fr = kit.make_frame(name, out, gsd)
            r = qm.measure(fr.tif, fr.road, head=fr.head, max_gap=MAX_GAP, half_width=HALF_WIDTH,
                           direction="forward")
            L, n, on = kit.truth_queue(fr, half_width_m=HALF_WIDTH, max_gap_m=MAX_GAP)
            tp, nd, nb = kit.match_boxes(fr, r, on)
            runs[name, gsd] = dict(result=r, truth_m=L, truth_n=n, tp=tp, nd=nd, nb=nb)
    return runs


@pytest.mark.parametrize("gsd", [0.12, 0.3, 0.5])
def test_kit_queue_length_against_boxes(kit_runs, gsd):
    errs = []
    for name in kit.FRAMES:
        run = kit_runs[name, gsd]
        r = run["result"]
        # the parked row and the queue run to the east edge of the frame
        assert r.truncated and r.truncation_reason == "image_edge"
        errs.append(abs(r.length_km * 1000 / run["truth_m"] - 1))
    assert np.median(errs) <= 0.08, errs
    assert max(errs) <= 0.15, errs


@pytest.mark.parametrize("gsd", [0.12, 0.3, 0.5])
def test_kit_vehicles_against_boxes(kit_runs, gsd):
    tp = sum(kit_runs[n, gsd]["tp"] for n in kit.FRAMES)
    nd = sum(kit_runs[n, gsd]["nd"] for n in kit.FRAMES)
    nb = sum(kit_runs[n, gsd]["nb"] for n in kit.FRAMES)
    precision, recall = tp / max(nd, 1), tp / max(nb, 1)
    assert precision >= 0.40, (precision, recall)
    assert recall >= 0.40, (precision, recall)


def _vegas_roads():
    return json.loads(VEGAS_ROADS.read_text())["features"]


def test_vegas_roads_load_with_geodesic_lengths():
    fc = json.loads(VEGAS_ROADS.read_text())
    # the legacy 'crs' member (CRS84) is honoured
    for feat in fc["features"]:
        c = np.asarray(feat["geometry"]["coordinates"])
        sides = qm.prepare_road(feat)
        assert sides.sides[0].length_m == pytest.approx(geo.geodesic_length(c[:, 0], c[:, 1]), rel=1e-6)
    with pytest.raises(qm.RoadError, match="one path"):
        qm.prepare_road(fc)


def test_vegas_info_and_corridor_on_real_tile():
    feat = _vegas_roads()[2]
    ti = qm.tile_info(VEGAS_TIF, feat)
    assert ti.crs == "EPSG:4326"
    # 2.7e-6 degrees at 36.14 N: 0.243 m east-west, 0.300 m north-south
    assert ti.pixel_size_m[0] == pytest.approx(0.2426, rel=0.01)
    assert ti.pixel_size_m[1] == pytest.approx(0.2997, rel=0.01)
    assert ti.dtypes == ["uint16"] and ti.bands_used == [1]
    assert ti.road_km_on_valid_data == pytest.approx(ti.road_km, rel=0.01)


def test_vegas_measure_runs_on_every_street():
    for feat in _vegas_roads():
        r = qm.measure(VEGAS_TIF, feat)
        c = np.asarray(feat["geometry"]["coordinates"])
        assert r.road_km_searched == pytest.approx(geo.geodesic_length(c[:, 0], c[:, 1]) / 1000, rel=1e-6)
        assert r.raster_crs == "EPSG:4326"
        # a suburban grid with a handful of cars: no street holds a long queue
        assert r.length_km <= r.road_km_searched
        assert r.vehicle_count <= 8
