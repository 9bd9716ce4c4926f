"""The accuracy benchmark's quick mode (benchmarks/accuracy.py, issue 4) as a CI test.

Renders (once, into the benchmark cache) ten small synthetic scenes, measures them and up
to two KIT frames, and fails when the median |length error| exceeds 3 % or an empty road
reports a queue of 0.1 km or more. Takes well under a minute on 2 cores.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"


def _load():
    if "qm_bench_accuracy" in sys.modules:
        return sys.modules["qm_bench_accuracy"]
    spec = importlib.util.spec_from_file_location("qm_bench_accuracy", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    acc = _load()
    out = tmp_path_factory.mktemp("accuracy") / "accuracy_quick.json"
    rep = acc.run("quick", json_path=out, log=lambda s: None)
    rep["_acc"] = acc
    return rep


def test_quick_median_length_error(report):
    s = report["summary"]
    errs = {r["case"]: r["rel_error"] for r in report["rows"] if r["rel_error"] is not None}
    assert len(errs) >= 9, errs
    assert s["length_error"]["median"] <= report["_acc"].CI_MEDIAN_LIMIT, errs


def test_quick_empty_road(report):
    empties = report["summary"]["empty_road_km"]
    assert empties, "the quick suite must hold an empty road"
    assert all(km < 0.1 for km in empties.values()), empties


def test_quick_report_is_complete(report):
    assert Path(report["json_path"]).exists()
    for r in report["rows"]:
        for key in ("truth_km", "measured_km", "truth_count", "measured_count", "in_range",
                    "elapsed_s"):
            assert key in r
        for part in ("queue", "all"):
            assert 0.0 <= r[part]["f1"] <= 1.0
    assert report["summary"]["wall_s"] < 180


def test_matching_is_one_to_one():
    acc = _load()
    import numpy as np

    # two detections inside one truth footprint: one true positive, one false positive
    pts = np.array([[0.5, 0.5], [0.6, 0.6], [5.0, 5.0]])

    def contains(p):
        inside = (p[:, 0] <= 1) & (p[:, 1] <= 1)
        idx = np.flatnonzero(inside)
        return idx, np.zeros(idx.size, int)

    m = acc.match(pts, np.array([2.0, 1.0, 1.0]), contains, 1, np.array([True]), np.array([False]))
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 0)
    # an ignored (occluded) truth vehicle absorbs one detection without counting
    m = acc.match(pts[:1], np.ones(1), contains, 1, np.array([False]), np.array([True]))
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 0)


def test_strip_view_renders_a_quick_case(report, tmp_path):
    # the diagnostic view of benchmarks/strip_view.py on a scene the quick run rendered
    spec = importlib.util.spec_from_file_location("qm_bench_strip_view", BENCH.parent / "strip_view.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "view.png"
    assert mod.main(["q-twolane-trucks-0.5", "20", "80", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as e:
        mod.main(["no-such-case", "0", "10"])
    assert e.value.code == 2
