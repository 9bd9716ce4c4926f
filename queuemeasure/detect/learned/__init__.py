"""Find vehicles in a straightened road strip with a small convolutional network.

The networks (architecture, training data, licence and metrics: ``MODEL.md``) ship as
ONNX weights inside the package (:data:`MODEL_FILES`) and run on the CPU under
onnxruntime; nothing is downloaded. Each model stores the pixel size of the grid it works
on (``work_step_m``; a model without it is refused) and the finest strip pixel it serves
(``min_step_m``, 0 for the model that serves every strip) in its metadata; a strip is run
by the model serving the finest pixels not finer than its own (:func:`_model_for`). Two
ship: ``vehicles.onnx`` on a 0.25 m grid for strips finer than 0.455 m, and
``vehicles_0.5m.onnx`` on a 0.5 m grid for the coarser ones -- four times fewer pixels
through the network, and never a grid coarser than the strip by more than 10 %.
:func:`detect_vehicles` works in four steps:

1. **Working grid.** The strip is resampled to the model's working pixel size --
   area-averaged when finer, interpolated when coarser, as it is when equal -- and
   normalised (band medians off, divided by the brightness spread), so any pixel size
   from 0.12 to 1.0 m and any sensor's levels look alike to the network.
2. **Network.** A fully convolutional CenterNet-style network outputs, every two working
   pixels, the probability that a vehicle's centre lies there and that vehicle's length
   along the road and width across it. Centres of vehicles standing bumper to bumper are metres apart, so
   they stay separate peaks; a truck has one centre, so it is counted once.
3. **Decoding.** Local maxima of the probability are vehicles, unless centred in or
   overlapping a stronger one; ``score`` is the probability over the detector's threshold
   (``>= 1``: accepted at ``sensitivity`` 1); weak candidates (0.6-1) are peaks a little
   below it.
4. **Cover.** Pixels clearly greener than the road are vegetation: a detection mostly on
   vegetation is dropped (a tree's crown), and rows whose carriageway (``half_width_m``
   either side of the centreline) has under half of its pixels valid and not vegetation
   are ``occluded`` (canopy, nodata). A detection whose difference from the road is a
   narrow stripe along it with road on either side is a marking (a dash of the centre
   line), not a vehicle, and is dropped (:mod:`._markings`).

The session is created once per process (lazily, so worker processes forked by the
pipeline make their own) with one thread in those workers -- the pipeline's parallelism is
its workers -- and in daemonic processes (Dask, ``multiprocessing``), and two threads,
without spinning, when the measuring process detects its pieces itself.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

import numpy as np

from ...errors import ModelError
from .._types import StripDetections, StripVehicle, strip_input
from ._decode import Boxes, decode
from ._grid import STRIDE, WORK_STEP_M, normalise, pad_to, to_working
from ._markings import off_markings

__all__ = ["detect_vehicles", "model_info", "model_grid", "MODEL_FILES", "MODEL_FILE", "WORK_STEP_M"]

#: The weights, package data of this module: one model per working grid (0.25 m, 0.5 m).
MODEL_FILES = ("vehicles.onnx", "vehicles_0.5m.onnx")
#: The finest model (0.25 m working grid; serves every strip the others do not).
MODEL_FILE = MODEL_FILES[0]
#: Centre probability that is a detection at sensitivity 1 (unless the model says otherwise).
DEFAULT_THRESHOLD = 0.35
#: Strips are run through the network in windows of this many working rows (plus context
#: either side), which bounds memory for long roads.
_WINDOW_ROWS = 4096
_CONTEXT_ROWS = 64
_MIN_COVER = 0.5
#: Vegetation: excess green (share of brightness) this far above the road's; a detection
#: whose footprint is mostly vegetation is a tree's crown, and a row whose carriageway is
#: mostly vegetation is hidden by canopy (occluded).
_GREEN = 0.15
#: Weak candidates (scores 0.6-1) are peaks within this share of the threshold below it.
_WEAK_SPAN = 0.15
_VEG_SHARE = 0.5

_lock = threading.Lock()
_sessions: dict[int, tuple["_Model", ...]] = {}
#: Sessions a forked process inherited: never used nor destroyed there (destroying one
#: would join thread-pool threads that the fork did not copy).
_inherited: list[Any] = []


#: Intra-op threads of the sessions made from now on; None: automatic (:func:`_threads`).
THREADS: int | None = None


def _threads() -> int:
    """Intra-op threads of this process's session: :data:`THREADS` if set, else 1 in the
    pipeline's worker processes and in daemonic ones, else up to 2 (the usable cores)."""
    import multiprocessing

    from ...parallel import _usable_cpus, in_worker

    if THREADS is not None:
        return max(1, int(THREADS))
    if in_worker() or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(2, _usable_cpus()))


@dataclass(frozen=True)
class _Model:
    """A loaded model: its session and what its metadata says."""

    name: str
    session: Any
    work_step_m: float   # the working grid's pixel size
    min_step_m: float    # the finest strip pixel it serves
    threshold: float     # centre probability accepted at sensitivity 1


def model_grid(meta: Mapping[str, str], name: str) -> tuple[float, float]:
    """A model's working pixel size and the finest strip pixel it serves, from its ONNX
    metadata (``work_step_m``, required; ``min_step_m``, default 0).

    Raises
    ------
    ModelError
        When ``work_step_m`` is missing or not a positive number: such a model cannot be
        fed the grid it was trained on.
    """
    try:
        work = float(meta["work_step_m"])
        min_step = float(meta.get("min_step_m", 0.0))
    except (KeyError, ValueError):
        raise ModelError(f"model {name} has no valid 'work_step_m' in its metadata (the pixel size of "
                         "the grid it was trained on); re-export it with python -m queuemeasure.train") from None
    if not (0.0 < work < 10.0) or not (0.0 <= min_step < 10.0):
        raise ModelError(f"model {name}: work_step_m {work} or min_step_m {min_step} out of range")
    return work, min_step


def _load(name: str, data: bytes) -> _Model:
    """An onnxruntime session of a model's bytes, with its metadata checked."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = _threads()
    opts.inter_op_num_threads = 1
    # idle pool threads sleep: the other core reads the corridor meanwhile
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    work, min_step = model_grid(meta, name)
    return _Model(name, sess, work, min_step, float(meta.get("threshold", DEFAULT_THRESHOLD)))


def _models() -> tuple[_Model, ...]:
    """The shipped models, loaded in this process on first use, finest first."""
    pid = os.getpid()
    with _lock:
        models = _sessions.get(pid)
        if models is None:
            pkg = resources.files(__name__)
            models = tuple(sorted((_load(f, pkg.joinpath(f).read_bytes()) for f in MODEL_FILES),
                                  key=lambda m: m.min_step_m))
            _inherited.extend(_sessions.values())
            _sessions.clear()
            _sessions[pid] = models
    return models


def _model_for(step_m: float | None) -> _Model:
    """The model that runs a strip of ``step_m`` pixels: the one serving the finest pixels
    not finer than the strip's (its ``min_step_m`` at most ``step_m``); the finest model
    when ``step_m`` is None."""
    models = _models()
    if step_m is None:
        return models[0]
    fit = [m for m in models if m.min_step_m <= step_m * (1 + 1e-9)]
    return fit[-1] if fit else models[0]


def _session(step_m: float | None = None) -> Any:
    """The onnxruntime session of the model for ``step_m`` (see :func:`_model_for`)."""
    return _model_for(step_m).session


def model_info(step_m: float | None = None) -> dict[str, str]:
    """The metadata stored in the shipped ONNX model that runs strips of ``step_m`` pixels
    (version, threshold, working grid, training data); the finest model by default."""
    return dict(_session(step_m).get_modelmeta().custom_metadata_map)


def _has_valid(x: np.ndarray) -> bool:
    """Whether a network input (channels, rows, cols) has a valid pixel (its last channel)."""
    return bool(x[-1].any())


def _run(x: np.ndarray, sess: Any) -> np.ndarray:
    """The network's (5, R/STRIDE, C/STRIDE) output for a (4, R, C) input, in windows."""
    name = sess.get_inputs()[0].name
    R, C = x.shape[1:]
    hs, ws = -(-R // STRIDE), -(-C // STRIDE)
    if R <= _WINDOW_ROWS + 2 * _CONTEXT_ROWS:
        return sess.run(None, {name: pad_to(x)[None]})[0][0][:, :hs, :ws]
    parts = []
    for a in range(0, R, _WINDOW_ROWS):
        b = min(R, a + _WINDOW_ROWS)
        if not _has_valid(x[:, a:b]):   # no centre can be kept there (zeroed on nodata)
            parts.append(np.zeros((5, -(-(b - a) // STRIDE), ws), np.float32))
            continue
        lo, hi = max(0, a - _CONTEXT_ROWS), min(R, b + _CONTEXT_ROWS)
        y = sess.run(None, {name: pad_to(x[:, lo:hi])[None]})[0][0]
        k = (a - lo) // STRIDE   # a and lo are even: window rows map to whole cells
        parts.append(y[:, k:k - (-(b - a) // STRIDE), :ws])
    return np.concatenate(parts, axis=1)


def _score(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Probability -> score: ``prob / threshold`` from the threshold up (1 = accepted);
    below it, the band of :data:`_WEAK_SPAN` x threshold maps linearly onto 0.6..1, the
    weak candidates the queue chaining may bridge with (weaker peaks are mostly not
    vehicles: F1 falls off fast below the threshold on the validation frames)."""
    prob = np.asarray(prob, dtype=float)
    weak = 1.0 - 0.4 * (threshold - prob) / (_WEAK_SPAN * threshold)
    return np.where(prob >= threshold, prob / threshold, weak)


def _min_prob(min_score: float, threshold: float) -> float:
    """The probability that scores ``min_score`` (inverse of :func:`_score`)."""
    if min_score >= 1.0:
        return min_score * threshold
    return threshold * (1.0 - _WEAK_SPAN * (1.0 - min_score) / 0.4)


def _to_vehicles(boxes: Boxes, scale: tuple[float, float], step: float, rows: int, cols: int,
                 threshold: float, min_score: float, half_width_m: float) -> list[StripVehicle]:
    """Working-grid boxes as :class:`StripVehicle` in the input's pixels (pixel k centred at k)."""
    rc = boxes.row * scale[0] / step - 0.5
    cc = boxes.col * scale[1] / step - 0.5
    hl = 0.5 * boxes.length_m / step
    hw = 0.5 * boxes.width_m / step
    score = _score(boxes.prob, threshold)
    centre = (cols - 1) / 2.0
    keep = (score >= min_score) & (np.abs(cc - centre) <= half_width_m / step)
    out = []
    for k in np.flatnonzero(keep):
        r0, r1 = max(-0.5, rc[k] - hl[k]), min(rows - 0.5, rc[k] + hl[k])
        c0, c1 = max(-0.5, cc[k] - hw[k]), min(cols - 0.5, cc[k] + hw[k])
        length = float(boxes.length_m[k])
        kind = "truck" if length >= 7.5 else "van" if length >= 5.6 else "car" if length >= 2.8 else "unknown"
        poly = np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0], [r0, c0]], dtype=float)
        out.append(StripVehicle(float(r0), float(r1), float(c0), float(c1), float(cc[k]),
                                float(score[k]), kind, poly))
    out.sort(key=lambda v: (v.row0, v.col0))
    return out


def _vegetation(wimg: np.ndarray, wok: np.ndarray, carriage: np.ndarray) -> np.ndarray:
    """Working pixels clearly greener than the road (excess green, as a share of brightness,
    :data:`_GREEN` above the carriageway's median): tree crowns and grass. None for fewer
    than three bands."""
    if wimg.shape[2] < 3:
        return np.zeros_like(wok)
    r, g, b = wimg[..., 0], wimg[..., 1], wimg[..., 2]
    exg = (2 * g - r - b) / (r + g + b + 0.05)
    road = wok & carriage[None, :]
    ref = float(np.median(exg[road])) if road.any() else 0.0
    return (exg - ref > _GREEN) & wok


def _on_input(grid: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A coarser grid covering the same ground, sampled at the input's pixels (nearest)."""
    gr, gc = grid.shape
    ri = np.minimum((np.arange(rows) + 0.5) * gr / rows, gr - 1).astype(int)
    ci = np.minimum((np.arange(cols) + 0.5) * gc / cols, gc - 1).astype(int)
    return grid[np.ix_(ri, ci)]


def _cover(img: np.ndarray, ok: np.ndarray, half_width_px: float, heat: np.ndarray,
           hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Occluded rows, per-row surface (carriageway mean), carriageway columns, and the
    centre probability on the input's pixels (the ``anomaly`` of this detector).

    A row is occluded when under half of its carriageway is valid and not ``hidden``
    (vegetation on the working grid)."""
    rows, cols = ok.shape
    carr = np.abs(np.arange(cols) - (cols - 1) / 2.0) <= half_width_px
    okc = ok[:, carr]
    seen = okc & ~_on_input(hidden, rows, cols)[:, carr]
    occluded = seen.sum(axis=1) < _MIN_COVER * max(1, int(carr.sum()))
    n = okc.sum(axis=1)
    sums = np.einsum("rcb,rc->rb", img[:, carr], okc.astype(np.float32))
    surface = np.where(n[:, None] > 0, sums / np.maximum(n, 1)[:, None], np.nan).astype(np.float32)
    c0, c1 = np.flatnonzero(carr)[[0, -1]] if carr.any() else (0, cols - 1)
    carriageway = np.tile(np.array([c0, c1 + 1], np.float32), (rows, 1))
    carriageway[occluded] = np.nan
    return occluded, surface, carriageway, _on_input(heat, rows, cols).astype(np.float32)


def _off_vegetation(boxes: Boxes, veg: np.ndarray, work_step_m: float) -> Boxes:
    """The boxes whose footprint (working grid) is not mostly vegetation."""
    if not veg.any() or not len(boxes.prob):
        return boxes
    cum = np.pad(veg.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    R, C = veg.shape
    r0 = np.clip(np.round(boxes.row - 0.5 * boxes.length_m / work_step_m), 0, R).astype(int)
    r1 = np.clip(np.round(boxes.row + 0.5 * boxes.length_m / work_step_m), 0, R).astype(int)
    c0 = np.clip(np.round(boxes.col - 0.5 * boxes.width_m / work_step_m), 0, C).astype(int)
    c1 = np.clip(np.round(boxes.col + 0.5 * boxes.width_m / work_step_m), 0, C).astype(int)
    area = np.maximum((r1 - r0) * (c1 - c0), 1)
    green = cum[r1, c1] - cum[r0, c1] - cum[r1, c0] + cum[r0, c0]
    keep = green < _VEG_SHARE * area
    return Boxes(boxes.row[keep], boxes.col[keep], boxes.length_m[keep], boxes.width_m[keep], boxes.prob[keep])


def detect_vehicles(
    image: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    step_m: float,
    half_width_m: float = 6.0,
    sensitivity: float = 1.0,
    min_score: float = 0.6,
    centre_rows: tuple[float, float] | None = None,
) -> StripDetections:
    """Find the vehicles in a straightened road strip with the learned detector.

    Parameters
    ----------
    image : (rows, cols, bands) or (rows, cols) array
        The strip, values scaled to about 0..1. Rows are stations along the road (row 0
        nearest the head), columns offsets across it (centreline in the middle column).
    valid : (rows, cols) bool array, optional
        False where the tile has no data.
    step_m : float
        Ground sampling of the strip in metres (rows and columns).
    half_width_m : float
        Vehicles whose centre lies within this distance of the centreline are returned.
    sensitivity : float
        Divides the probability threshold: above 1 finds fainter vehicles.
    min_score : float
        Weaker candidates down to this score are returned.
    centre_rows : (float, float), optional
        Accepted for the common interface; the network runs on the whole strip anyway.

    Returns
    -------
    StripDetections
        ``anomaly`` is the centre probability, ``threshold`` the probability that scores 1.
    """
    img, ok = strip_input(image, valid, step_m)
    rows, cols = ok.shape
    img = np.where(ok[..., None], img, 0.0).astype(np.float32)
    step = float(step_m)
    model = _model_for(step)
    work = model.work_step_m
    threshold = float(np.clip(model.threshold / max(sensitivity, 1e-6), 0.02, 0.98))
    if rows < 2 or cols < 2 or not ok.any():
        return StripDetections([], np.ones(rows, bool), np.zeros((rows, cols), np.float32),
                               np.full((rows, img.shape[2]), np.nan, np.float32),
                               np.full((rows, 2), np.nan, np.float32), threshold)
    wimg, wok, scale = to_working(img, ok, step, work)
    out = _run(normalise(wimg, wok), _session(step))
    out[0][~wok[::STRIDE, ::STRIDE]] = 0.0   # no vehicle centred on nodata
    wcols = wok.shape[1]
    carriage = np.abs((np.arange(wcols) + 0.5) * scale[1] - 0.5 * cols * step) <= half_width_m
    veg = _vegetation(wimg, wok, carriage)
    boxes = _off_vegetation(decode(out, _min_prob(min_score, threshold), work), veg, work)
    boxes = off_markings(boxes, wimg, wok, carriage, work, step)
    vehicles = _to_vehicles(boxes, scale, step, rows, cols, threshold, min_score, half_width_m)
    occluded, surface, carriageway, heat = _cover(img, ok, half_width_m / step, out[0], veg)
    return StripDetections(vehicles, occluded, heat, surface, carriageway, threshold)
