"""The detectors behind one interface, and the learned one (ONNX, onnxruntime) in particular."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import queuemeasure as qm
from queuemeasure.detect import (DEFAULT_DETECTOR, DETECTORS, StripDetections, detect_vehicles, get_detector,
                                 resolve_detector)
from queuemeasure.detect import learned, rules
from queuemeasure.detect.learned._decode import Boxes
from queuemeasure.detect.learned._grid import WORK_STEP_M, normalise, to_working
from queuemeasure.errors import ModelError, OptionError

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT.parent / "shared" / "realdata" / "kit_ais_munich_queue"


def test_dispatcher_names():
    assert resolve_detector("auto") == DEFAULT_DETECTOR in DETECTORS
    assert resolve_detector(None) == DEFAULT_DETECTOR
    assert resolve_detector("auto", n_bands=1) == "rules"      # panchromatic: the rule detector
    assert resolve_detector("learned", n_bands=1) == "learned"
    assert get_detector("rules") is rules.detect_vehicles
    assert get_detector("learned") is learned.detect_vehicles
    with pytest.raises(OptionError, match="unknown detector"):
        get_detector("magic")


def test_rules_through_the_dispatcher_is_the_rule_detector():
    strip = np.full((400, 80, 3), 0.35, np.float32)
    strip[100:118, 30:37] = (0.8, 0.1, 0.1)
    a = detect_vehicles(strip, step_m=0.25, detector="rules")
    b = rules.detect_vehicles(strip, step_m=0.25)
    assert [(v.row0, v.row1, v.col0, v.col1, v.score) for v in a.vehicles] == \
        [(v.row0, v.row1, v.col0, v.col1, v.score) for v in b.vehicles]
    assert np.array_equal(a.anomaly, b.anomaly)


@pytest.mark.parametrize("step", [0.12, 0.25, 0.5, 1.0])
def test_working_grid_keeps_levels_and_extent(step):
    rows, cols = int(60 / step), int(16 / step)
    img = np.full((rows, cols, 3), 0.4, np.float32)
    ok = np.ones((rows, cols), bool)
    ok[: rows // 4] = False
    w, v, (sy, sx) = to_working(img, ok, step)
    assert abs(w.shape[0] * sy - rows * step) < 1e-6 and abs(w.shape[1] * sx - cols * step) < 1e-6
    assert sy == pytest.approx(WORK_STEP_M, rel=0.05)
    assert np.allclose(w[v], 0.4, atol=1e-5)
    assert 0.7 < v.mean() < 0.8
    x = normalise(w, v)
    assert x.shape == (4,) + v.shape and np.array_equal(x[3] > 0, v)


def test_boxes_map_back_to_the_input_pixels():
    # a 4.5 x 1.8 m vehicle centred 10 m down and 4 m across, on a 0.12 m strip
    step, rows, cols = 0.12, 500, 100
    b = Boxes(row=np.array([10 / WORK_STEP_M]), col=np.array([4 / WORK_STEP_M]), length_m=np.array([4.5]),
              width_m=np.array([1.8]), prob=np.array([0.9]))
    (v,) = learned._to_vehicles(b, (WORK_STEP_M, WORK_STEP_M), step, rows, cols, threshold=0.45,
                                min_score=0.6, half_width_m=10.0)
    # pixel k is centred at k: metres m lie at m / step - 0.5
    assert v.row_center == pytest.approx(10 / step - 0.5)
    assert (v.row1 - v.row0) * step == pytest.approx(4.5)
    assert (v.col1 - v.col0) * step == pytest.approx(1.8)
    assert v.score == pytest.approx(2.0) and v.kind == "car"
    assert np.array_equal(v.polygon[0], v.polygon[-1])


def test_learned_output_contract():
    rng = np.random.default_rng(0)
    img = (0.35 + 0.02 * rng.standard_normal((600, 70, 3))).astype(np.float32)
    img[200:218, 30:37] = (0.8, 0.1, 0.1)
    valid = np.ones((600, 70), bool)
    valid[500:] = False
    det = learned.detect_vehicles(img, valid, step_m=0.25, half_width_m=6.0)
    assert isinstance(det, StripDetections)
    assert det.occluded.shape == (600,) and det.occluded[500:].all() and not det.occluded[:400].any()
    assert det.anomaly.shape == (600, 70) and det.anomaly.dtype == np.float32
    assert det.surface.shape == (600, 3) and det.carriageway.shape == (600, 2)
    assert 0 < det.threshold < 1
    assert all(v.score >= 0.6 for v in det.vehicles)
    assert [v.row0 for v in det.vehicles] == sorted(v.row0 for v in det.vehicles)
    empty = learned.detect_vehicles(np.zeros((50, 40, 3), np.float32), np.zeros((50, 40), bool), step_m=0.5)
    assert empty.vehicles == [] and empty.occluded.all()
    with pytest.raises(ValueError):
        learned.detect_vehicles(np.zeros((5,)), step_m=0.5)


def test_session_is_made_once_per_process():
    assert learned._session() is learned._session()
    assert learned._models() is learned._models()
    info = learned.model_info()
    assert "CC BY-SA" in info["licence"] and float(info["threshold"]) > 0
    for step in (0.12, 0.5):
        assert "CC BY-SA" in learned.model_info(step)["licence"]


def test_the_shipped_models_carry_their_working_grid():
    for m in learned._models():
        assert m.work_step_m > 0 and 0 < m.threshold < 1
        if m.min_step_m > 0:   # a model for coarse strips: its grid not coarser than theirs (10 %)
            assert m.work_step_m <= 1.1 * m.min_step_m
    assert learned._model_for(0.12).min_step_m == 0.0   # the finest serves every finer strip
    assert learned._model_for(0.12).work_step_m == 0.25
    assert learned._model_for(0.5).work_step_m == 0.5 and learned._model_for(1.0).work_step_m == 0.5
    assert float(learned.model_info(0.5)["work_step_m"]) == 0.5


@pytest.mark.parametrize("step, work", [(0.12, 0.25), (0.3, 0.25), (0.45, 0.25), (0.46, 0.5), (0.5, 0.5),
                                        (1.0, 0.5), (None, 0.25)])
def test_each_strip_runs_on_the_model_for_its_pixel_size(monkeypatch, step, work):
    """A strip runs on the model serving the finest pixels not finer than its own: with a
    0.25 m model for everything and a 0.5 m one for strips of 0.455 m and coarser (its
    ``min_step_m``), 0.46 m strips run on the 0.5 m one, 0.45 m strips on the 0.25 m one."""
    fine = learned._Model("f", None, 0.25, 0.0, 0.35)
    coarse = learned._Model("c", None, 0.5, 0.455, 0.4)
    monkeypatch.setattr(learned, "_models", lambda: (fine, coarse))
    assert learned._model_for(step).work_step_m == work


def test_a_model_without_its_working_grid_is_refused(tmp_path):
    assert learned.model_grid({"work_step_m": "0.5", "min_step_m": "0.455"}, "m") == (0.5, 0.455)
    assert learned.model_grid({"work_step_m": "0.25"}, "m") == (0.25, 0.0)
    with pytest.raises(ModelError, match="work_step_m"):
        learned.model_grid({"threshold": "0.4"}, "old.onnx")
    with pytest.raises(ModelError, match="work_step_m"):
        learned.model_grid({"work_step_m": "abc"}, "bad.onnx")
    with pytest.raises(ModelError, match="out of range"):
        learned.model_grid({"work_step_m": "0"}, "bad.onnx")
    # a real ONNX file without the key: refused when loaded, with one clear message
    import onnx

    from importlib import resources

    data = resources.files(learned.__name__).joinpath(learned.MODEL_FILE).read_bytes()
    model = onnx.load_model_from_string(data)
    keep = [p for p in model.metadata_props if p.key != "work_step_m"]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    with pytest.raises(ModelError, match="no valid 'work_step_m'"):
        learned._load("stripped.onnx", model.SerializeToString())


def test_a_strip_on_the_working_grid_is_not_resampled():
    rng = np.random.default_rng(4)
    img = rng.random((50, 20, 3), dtype=np.float32)
    ok = np.ones((50, 20), bool)
    ok[:5] = False
    w, v, scale = to_working(img, ok, 0.5, 0.5)
    assert scale == (0.5, 0.5) and np.array_equal(v, ok)
    assert np.array_equal(w[ok], img[ok]) and not w[~ok].any()


def _kit_strip(name: str, gsd: float):
    """A KIT frame as a road-aligned strip (rows along the street) at ``gsd``, and its boxes."""
    from PIL import Image

    from queuemeasure.detect.learned._grid import resample

    img = np.asarray(Image.open(KIT / f"{name}.png").convert("RGB"), np.float32) / 255
    b = np.loadtxt(KIT / f"{name}.txt", ndmin=2)
    h, w = img.shape[:2]
    cx, cy, bw, bh = b[:, 1] * w, b[:, 2] * h, b[:, 3] * w, b[:, 4] * h
    ok = np.ones((h, w), bool)
    if gsd > 0.12:
        img, ok, _ = resample(img, ok, 0.12, gsd)
    k = 0.12 / gsd
    # rows = image x, cols = image y; pixel k centred at k
    boxes = np.column_stack([(cx - bw / 2) * k, (cx + bw / 2) * k, (cy - bh / 2) * k, (cy + bh / 2) * k]) - 0.5
    return img.transpose(1, 0, 2), ok.T, boxes[b[:, 0] != 4]


@pytest.mark.skipif(not KIT.exists(), reason="needs ../shared/realdata")
@pytest.mark.parametrize("gsd", [0.12, 0.3, 0.5])
def test_learned_finds_the_cars_of_a_frame_it_never_saw(gsd):
    """KIT MOS176 (held out by time): vehicle F1 (centre inside a labelled box) >= 0.8."""
    img, ok, boxes = _kit_strip("MOS176", gsd)
    det = learned.detect_vehicles(img, ok, step_m=gsd, half_width_m=1000.0)
    acc = [v for v in det.vehicles if v.score >= 1]
    used = np.zeros(len(boxes), bool)
    tp = 0
    for v in sorted(acc, key=lambda v: -v.score):
        r, c = v.row_center, v.col_center
        hit = np.flatnonzero((boxes[:, 0] <= r) & (r <= boxes[:, 1]) & (boxes[:, 2] <= c) & (c <= boxes[:, 3]) & ~used)
        if hit.size:
            used[hit[0]] = True
            tp += 1
    f1 = 2 * tp / (len(acc) + len(boxes))
    assert f1 >= 0.8, (tp, len(acc), len(boxes))


def test_measure_with_each_detector(curve_scenes):
    s = curve_scenes["utm"]
    for name in DETECTORS:
        r = qm.measure(s.path, s.road_path, head=s.head, detector=name, workers=1)
        assert r.detector == name and r.to_dict()["detector"] == name
        assert r.length_km == pytest.approx(s.length_m / 1000.0, rel=0.05)
    assert qm.measure(s.path, s.road_path, head=s.head, workers=1).detector == DEFAULT_DETECTOR


def test_cli_detector_option(curve_scenes, tmp_path):
    from queuemeasure.cli.main import cli

    s = curve_scenes["utm"]
    out = tmp_path / "out.geojson"
    res = CliRunner().invoke(cli, ["measure", str(s.path), "--road", str(s.road_path), "--json",
                                   "--detector", "learned", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert '"detector": "learned"' in res.output
    bad = CliRunner().invoke(cli, ["measure", str(s.path), "--road", str(s.road_path), "--detector", "x"])
    assert bad.exit_code == 2


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the [train] extra (torch)")
@pytest.mark.skipif(not KIT.exists(), reason="needs ../shared/realdata")
def test_smoke_training_exports_a_model_onnxruntime_runs(tmp_path):
    out = tmp_path / "smoke.onnx"
    p = subprocess.run([sys.executable, "-m", "queuemeasure.train", "--smoke", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "epoch 1/1" in p.stdout and "F1" in p.stdout
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"strip": np.zeros((1, 4, 64, 48), np.float32)})[0]
    assert y.shape == (1, 5, 32, 24)


def test_long_strips_run_in_windows_like_one_piece(monkeypatch):
    rng = np.random.default_rng(1)
    x = np.zeros((4, 701, 40), np.float32)
    x[:3] = rng.standard_normal((3, 701, 40)).astype(np.float32) * 0.3
    x[3] = 1.0
    whole = learned._run(x, learned._session())
    monkeypatch.setattr(learned, "_WINDOW_ROWS", 200)
    monkeypatch.setattr(learned, "_CONTEXT_ROWS", 120)
    parts = learned._run(x, learned._session())
    assert parts.shape == whole.shape == (5, 351, 20)
    assert np.abs(parts - whole).max() < 1e-3


def test_manifest_detector_column(tmp_path):
    from queuemeasure.batch import ManifestError, read_manifest

    m = tmp_path / "m.csv"
    m.write_text("site,date,tile,road,detector\nx,2022-01-01,t.tif,r.json,Learned\ny,2022-01-02,t.tif,r.json,\n")
    rows = read_manifest(m)
    assert rows[0].options == {"detector": "learned"} and rows[1].options == {}
    m.write_text("site,date,tile,road,detector\nx,2022-01-01,t.tif,r.json,neural\n")
    with pytest.raises(ManifestError, match="column 'detector'"):
        read_manifest(m)


@pytest.mark.parametrize("shape", [(801, 67, 3), (40, 9), (1, 1, 4)])
def test_fast_doubling_is_the_scipy_zoom(shape):
    """0.5 m strips take a separable doubling path: the same as scipy's bilinear zoom."""
    from scipy import ndimage as ndi

    from queuemeasure.detect.learned._grid import _zoom

    a = np.random.default_rng(2).random(shape, dtype=np.float32)
    R, C = 2 * shape[0], 2 * shape[1]
    ref = ndi.zoom(a, (2.0, 2.0) + (1.0,) * (a.ndim - 2), order=1, grid_mode=True, mode="grid-constant")
    got = _zoom(a, R, C)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() < 1e-6


def test_windows_without_valid_pixels_are_skipped_with_the_same_result(monkeypatch):
    """A long nodata stretch is not run through the network; the detections are those of
    a run of every window (its centres are zeroed on nodata anyway)."""
    rng = np.random.default_rng(3)
    rows, cols = 1200, 34
    img = (0.35 + 0.03 * rng.standard_normal((rows, cols, 3))).astype(np.float32)
    for r in range(0, rows - 10, 14):
        img[r:r + 9, 15:19] = rng.uniform(0, 1, 3)
    ok = np.ones((rows, cols), bool)
    ok[300:900] = False
    work = learned._model_for(0.5).work_step_m
    monkeypatch.setattr(learned, "_WINDOW_ROWS", int(round(100 / work)))   # 100 m windows
    calls = []
    sess = learned._session(0.5)

    class Counting:
        def get_inputs(self):
            return sess.get_inputs()

        def get_modelmeta(self):
            return sess.get_modelmeta()

        def run(self, *a, **k):
            calls.append(1)
            return sess.run(*a, **k)

    monkeypatch.setattr(learned, "_session", lambda step=None: Counting())
    skipped = learned.detect_vehicles(img, ok, step_m=0.5, half_width_m=4.5)
    assert len(calls) == 4   # 600 m in six windows; 150-450 m are nodata
    monkeypatch.setattr(learned, "_has_valid", lambda x: True)
    calls.clear()
    every = learned.detect_vehicles(img, ok, step_m=0.5, half_width_m=4.5)
    assert len(calls) == 6
    assert len(skipped.vehicles) == len(every.vehicles) > 20
    for a, b in zip(skipped.vehicles, every.vehicles):
        assert abs(a.row0 - b.row0) < 1e-4 and abs(a.score - b.score) < 1e-4
    assert np.abs(skipped.anomaly - every.anomaly).max() < 1e-5


def test_session_threads_one_in_workers_two_otherwise(monkeypatch):
    from queuemeasure import parallel

    monkeypatch.setattr(parallel, "_usable_cpus", lambda: 8)
    assert learned._threads() == 2
    monkeypatch.setattr(parallel, "_FN", lambda c, x: x)
    assert learned._threads() == 1


def test_cli_refuses_a_model_without_its_grid_in_one_line(curve_scenes, monkeypatch):
    """Weights without ``work_step_m`` stop ``measure`` with one line, no traceback."""
    from queuemeasure.cli.main import cli

    def stripped():
        raise ModelError("model vehicles.onnx has no valid 'work_step_m' in its metadata (the pixel size "
                         "of the grid it was trained on); re-export it with python -m queuemeasure.train")

    monkeypatch.setattr(learned, "_models", stripped)
    s = curve_scenes["utm"]
    res = CliRunner().invoke(cli, ["measure", str(s.path), "--road", str(s.road_path), "--detector", "learned",
                                   "--workers", "1", "--json"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "work_step_m" in lines[0]


MINSK = ROOT.parent / "shared" / "realdata" / "minsk_drone_cars"


@pytest.mark.skipif(not MINSK.exists(), reason="needs ../shared/realdata")
def test_learned_on_the_held_out_minsk_flight():
    """The Minsk flight DJI_0762 (another place, never trained on), every labelled vehicle
    of its 8 photos at 0.12 and 0.3 m, through the detector the pipeline runs (marking and
    vegetation checks included): pooled vehicle F1 >= 0.90, the issue's target (0.93 with
    the shipped weights, 0.895 with the previous ones), and dark vehicles found as often as
    the others within 0.1 (0.91 / 0.94; the previous weights 0.80 / 0.91)."""
    from queuemeasure.train import sheets as S

    sheets = S.minsk_sheets(True, degrade=(0.3,))
    assert len(sheets) == 16
    tp = n_det = n_true = 0
    dark_hit, other_hit = [], []
    for s in sheets:
        det = learned.detect_vehicles(s.image, s.valid, step_m=s.work_step_m, half_width_m=1e4)
        pts = np.array([(v.row_center, v.col_center) for v in det.vehicles if v.score >= 1]).reshape(-1, 2)

        def inside(b: np.ndarray) -> np.ndarray:
            return (b[:, :1] <= pts[:, 0]) & (pts[:, 0] <= b[:, 1:2]) & (b[:, 2:3] <= pts[:, 1]) & (pts[:, 1] <= b[:, 3:])

        counted = ~inside(s.ignore).any(axis=0) if len(s.ignore) else np.ones(len(pts), bool)
        hit = inside(s.boxes)                                  # (boxes, detections)
        used = np.zeros(len(pts), bool)
        found = np.zeros(len(s.boxes), bool)
        for i in np.argsort(hit.sum(axis=1)):                   # boxes with fewest candidates first
            j = np.flatnonzero(hit[i] & ~used)
            if j.size:
                used[j[0]] = found[i] = True
        tp += int(found.sum())
        n_det += int((counted | used).sum())
        n_true += len(s.boxes)
        lum = s.image.mean(axis=2)
        med = np.median(lum[s.valid])
        for b, f in zip(s.boxes.astype(int), found):
            patch = lum[max(b[0], 0):b[1], max(b[2], 0):b[3]]
            (dark_hit if patch.size and np.median(patch) < med - 0.15 else other_hit).append(f)
    f1 = 2 * tp / (n_det + n_true)
    assert f1 >= 0.90, (tp, n_det, n_true)
    assert np.mean(dark_hit) >= np.mean(other_hit) - 0.1, (np.mean(dark_hit), np.mean(other_hit))
