"""Accuracy benchmark (issue 4): how right is the queue length, and how sure are we?

Measures a suite of synthetic scenes from :mod:`queuemeasure.synth` (known truth) and the
KIT AIS Munich aerial frames (truth from their labelled boxes) and reports, per case:
truth and measured length, relative error, truth and measured vehicle count, vehicle
precision / recall / F1, whether the truth lies inside ``length_km_range`` (and how wide
that range is) and the run time; then a summary against the targets of issue 4.

    python benchmarks/accuracy.py --quick     # 10 small scenes + 2 KIT frames, < 3 min
    python benchmarks/accuracy.py             # full suite (41 scenes + 12 KIT cases)
    python benchmarks/accuracy.py --cases gap,kit --quicklooks /tmp/ql   # a subset, PNGs
    python benchmarks/accuracy.py --coarse    # coarse pixels (3 m, 10 m): occupancy mode,
                                              # see benchmarks/coarse_accuracy.py

Full mode writes ``benchmarks/results/accuracy.json``, quick mode
``benchmarks/results/accuracy_quick.json`` (``--json PATH`` to choose). ``--markdown``
prints the table as markdown (for the README).

How each number is defined
--------------------------
* Every case is measured as the CLI does it (``queuemeasure measure TILE --road ROAD
  --head LON,LAT --max-gap M``): in-process through :func:`queuemeasure.measure` by
  default, through the real CLI in a subprocess with ``--cli``.
* Synthetic truth: the ``.truth.geojson`` the renderer writes. When a case measures with a
  ``max_gap`` other than the scene's, the truth queue is re-chained from the truth
  vehicles (every visible vehicle on the carriageway, either direction) by the rule of
  DESIGN.md, exactly as the renderer chains it.
* KIT truth: ``tests/kit.py`` — the labelled boxes on the upper carriageway (half-width
  5 m), chained with ``max_gap`` 50 m; the frames are measured with ``--half-width 5``.
* Relative error = (measured − truth) / truth; undefined for an empty road (its measured
  length is checked against < 0.1 km instead).
* Vehicle matching: a detection matches a truth vehicle when the detection's centre lies
  in the truth footprint (box for KIT), one to one (detections taken by descending
  score). Truth vehicles hidden under a canopy or cloud (``occluded`` in the truth) are
  *ignored*: they do not count as misses and a detection on one counts neither way.

  - **queue P/R/F1** (the headline): truth vehicles with ``in_queue`` against detections
    with ``in_queue``. A queued detection on a free vehicle beyond the tail is a false
    positive, a truth queue vehicle the chain missed is a miss: this scores the detector
    and the chaining together.
  - **all P/R/F1**: every visible truth vehicle whose centre lies within the measured
    corridor (|offset| ≤ half-width) against every accepted detection (score ≥ 1); truth
    vehicles outside the corridor are ignored. This scores the detector alone.
* Range coverage: truth inside ``length_km_range`` (inclusive, 1 m slack for rounding).
  The width is reported in km and relative to the truth.
* Time: ``QueueResult.elapsed_s`` (the library's own timer); wall time includes imports
  in ``--cli`` mode.

Scenes are rendered once into ``~/.cache/queuemeasure-bench/accuracy/`` (or
``$QUEUEMEASURE_BENCH_CACHE/accuracy``), keyed by a hash of the spec, the package version
and the synth source code, so re-runs only measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TESTS = ROOT / "tests"
RESULTS = HERE / "results"
CACHE = Path(os.environ.get("QUEUEMEASURE_BENCH_CACHE",
                            Path.home() / ".cache" / "queuemeasure-bench")) / "accuracy"
KIT_DIR = ROOT.parent / "shared" / "realdata" / "kit_ais_munich_queue"

#: Issue 4's targets.
TARGETS = {
    "median_abs_length_error": 0.02,
    "max_abs_length_error": 0.05,
    "empty_road_km": 0.1,
    "f1_fine": 0.90,      # <= 0.5 m per pixel
    "f1_coarse": 0.80,    # 0.8-1.0 m per pixel
    "range_coverage": 0.90,
}
#: The CI test fails above this median |length error| (quick mode).
CI_MEDIAN_LIMIT = 0.03

KIT_HALF_WIDTH = 5.0
KIT_MAX_GAP = 50.0
RANGE_SLACK_KM = 0.001


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One benchmark case: a synthetic scene (``spec``) or a KIT frame (``kit``)."""

    name: str
    what: str                                 # short description for the table
    spec: dict | None = None                  # SceneSpec keyword arguments
    road_mode: str = "plain"                  # plain | head_inside | multipart
    gap_delta: float | None = None            # measure with max_gap = largest gap + delta
    kit: tuple[str, float] | None = None      # (frame, gsd)
    tags: tuple[str, ...] = ()


# a 1.5 km road with a 600 m queue unless a case says otherwise; 40 m of terrain each side
BASE = dict(road="curving", road_length_m=1500.0, queue_length_m=600.0, margin_m=40.0,
            workers=2)
# the quick mode's small scenes
SMALL = dict(road="curving", road_length_m=700.0, queue_length_m=300.0, margin_m=30.0,
             workers=2)


def _c(name: str, what: str, base: dict = BASE, tags: tuple[str, ...] = (), **kw: Any) -> Case:
    extra = {k: kw.pop(k) for k in ("road_mode", "gap_delta") if k in kw}
    return Case(name, what, spec={**base, **kw}, tags=tags, **extra)


def full_cases() -> list[Case]:
    c = [
        # pixel size x CRS x road shape
        _c("utm-0.3-curving", "0.3 m, UTM, curving", seed=101, gsd_m=0.3),
        _c("utm-0.5-curving", "0.5 m, UTM, curving", seed=102, gsd_m=0.5),
        _c("utm-0.8-curving", "0.8 m, UTM, curving", seed=103, gsd_m=0.8),
        _c("utm-1.0-curving", "1.0 m, UTM, curving", seed=104, gsd_m=1.0),
        _c("utm-0.5-straight", "0.5 m, UTM, straight", seed=105, gsd_m=0.5, road="straight"),
        _c("utm-0.8-serpentine", "0.8 m, UTM, serpentine", seed=106, gsd_m=0.8, road="serpentine"),
        _c("4326-0.3-straight", "0.3 m, EPSG:4326, straight", seed=111, gsd_m=0.3, crs="EPSG:4326",
           road="straight"),
        _c("4326-0.5-curving", "0.5 m, EPSG:4326, curving", seed=112, gsd_m=0.5, crs="EPSG:4326"),
        _c("4326-0.8-curving", "0.8 m, EPSG:4326, curving", seed=113, gsd_m=0.8, crs="EPSG:4326"),
        _c("4326-1.0-serpentine", "1.0 m, EPSG:4326, serpentine", seed=114, gsd_m=1.0,
           crs="EPSG:4326", road="serpentine"),
        _c("3857-0.3-serpentine", "0.3 m, EPSG:3857, serpentine", seed=121, gsd_m=0.3,
           crs="EPSG:3857", road="serpentine"),
        _c("3857-0.5-straight", "0.5 m, EPSG:3857, straight", seed=122, gsd_m=0.5, crs="EPSG:3857",
           road="straight"),
        _c("3857-0.8-curving", "0.8 m, EPSG:3857, curving", seed=123, gsd_m=0.8, crs="EPSG:3857"),
        _c("3857-1.0-curving", "1.0 m, EPSG:3857, curving", seed=124, gsd_m=1.0, crs="EPSG:3857"),
        _c("valley-0.5-serpentine", "0.5 m, valley terrain, serpentine", seed=125, gsd_m=0.5,
           road="serpentine", terrain="valley"),
        # surface and contrast
        _c("concrete-0.3", "0.3 m, concrete", seed=131, gsd_m=0.3, surface="concrete"),
        _c("concrete-0.5", "0.5 m, concrete", seed=132, gsd_m=0.5, surface="concrete"),
        _c("concrete-1.0", "1.0 m, concrete", seed=133, gsd_m=1.0, surface="concrete"),
        _c("lowcontrast-0.5", "0.5 m, concrete + silver cars (low contrast)", seed=134, gsd_m=0.5,
           surface="concrete", colour_mix="silver"),
        _c("lowcontrast-0.8", "0.8 m, concrete + silver cars + haze 0.4", seed=135, gsd_m=0.8,
           surface="concrete", colour_mix="silver", haze=0.4),
        _c("haze-0.5", "0.5 m, haze 0.7", seed=136, gsd_m=0.5, haze=0.7),
        _c("haze-1.0", "1.0 m, haze 0.6, noise 0.025", seed=137, gsd_m=1.0, haze=0.6, noise=0.025),
        _c("cloud-0.5", "0.5 m, thin cloud 0.4", seed=138, gsd_m=0.5, cloud=0.4),
        _c("jpeg-0.5", "0.5 m, JPEG q75", seed=139, gsd_m=0.5, jpeg=True, jpeg_quality=75),
        _c("uint16-grey-0.5", "0.5 m, 1 band uint16", seed=140, gsd_m=0.5, bands=1, dtype="uint16"),
        # occlusion
        _c("trees-0.5", "0.5 m, dense trees over the queue", seed=141, gsd_m=0.5, tree_cover=1.0),
        _c("trees-0.8", "0.8 m, dense trees over the queue", seed=142, gsd_m=0.8, tree_cover=1.0),
        # gaps just under / just over max_gap (the largest gap inside the scene's queue is
        # ~38 m; the case measures with max_gap = gap + delta)
        _c("gap-under-0.5", "0.5 m, a 38 m gap, max_gap = gap + 3 m", seed=38, gsd_m=0.5,
           road_length_m=1200.0, queue_length_m=500.0, max_gap_m=60.0, gap_delta=3.0),
        _c("gap-over-0.5", "0.5 m, a 38 m gap, max_gap = gap - 3 m", seed=38, gsd_m=0.5,
           road_length_m=1200.0, queue_length_m=500.0, max_gap_m=60.0, gap_delta=-3.0),
        _c("gap-under-0.8", "0.8 m, a 38 m gap, max_gap = gap + 3 m", seed=13, gsd_m=0.8,
           road_length_m=1200.0, queue_length_m=500.0, max_gap_m=60.0, gap_delta=3.0),
        _c("gap-over-0.8", "0.8 m, a 38 m gap, max_gap = gap - 3 m", seed=13, gsd_m=0.8,
           road_length_m=1200.0, queue_length_m=500.0, max_gap_m=60.0, gap_delta=-3.0),
        # lanes and vehicle mix
        _c("twolane-0.5", "0.5 m, 60 % two abreast", seed=151, gsd_m=0.5, two_lane_queue_fraction=0.6),
        _c("twolane-1.0", "1.0 m, 60 % two abreast", seed=152, gsd_m=1.0, two_lane_queue_fraction=0.6),
        _c("trucks-0.5", "0.5 m, 60 % trucks", seed=153, gsd_m=0.5, truck_fraction=0.6),
        _c("trucks-0.8", "0.8 m, 60 % trucks", seed=154, gsd_m=0.8, truck_fraction=0.6),
        # special cases
        _c("empty-0.5", "0.5 m, empty road (free traffic only)", seed=161, gsd_m=0.5,
           queue_length_m=0.0, tags=("empty",)),
        _c("empty-1.0", "1.0 m, empty road, concrete", seed=162, gsd_m=1.0, queue_length_m=0.0,
           surface="concrete", tags=("empty",)),
        _c("long-15km-0.5", "0.5 m, 15 km queue on a 16 km valley road", seed=171, gsd_m=0.5,
           road="serpentine", terrain="valley", road_length_m=16000.0, queue_length_m=15000.0,
           margin_m=25.0),
        _c("head-inside-0.5", "0.5 m, road runs 300 m on past the head", seed=181, gsd_m=0.5,
           road_mode="head_inside"),
        _c("multipart-0.5", "0.5 m, road as 3 parts, one reversed", seed=182, gsd_m=0.5,
           crs="EPSG:3857", road_mode="multipart"),
        _c("cut-0.5", "0.5 m, image edge cuts the queue at 450 m", seed=183, gsd_m=0.5,
           extent_limit_m=450.0),
    ]
    c += [Case(f"kit-{f}-{g:.2f}", f"KIT {f} at {g:.2f} m", kit=(f, g), tags=("kit",))
          for g in (0.12, 0.3, 0.5) for f in ("MOS155", "MOS160", "MOS170", "MOS179")]
    return c


def quick_cases() -> list[Case]:
    return [
        _c("q-utm-0.3", "0.3 m, UTM, curving", SMALL, seed=201, gsd_m=0.3),
        _c("q-4326-0.5-straight", "0.5 m, EPSG:4326, straight", SMALL, seed=202, gsd_m=0.5,
           crs="EPSG:4326", road="straight"),
        _c("q-3857-0.8-serpentine", "0.8 m, EPSG:3857, serpentine", SMALL, seed=203, gsd_m=0.8,
           crs="EPSG:3857", road="serpentine"),
        _c("q-concrete-1.0", "1.0 m, concrete", SMALL, seed=204, gsd_m=1.0, surface="concrete"),
        _c("q-trees-0.5", "0.5 m, dense trees", SMALL, seed=205, gsd_m=0.5, tree_cover=1.0),
        _c("q-twolane-trucks-0.5", "0.5 m, two abreast, trucks", SMALL, seed=206, gsd_m=0.5,
           two_lane_queue_fraction=0.5, truck_fraction=0.5),
        _c("q-haze-silver-0.8", "0.8 m, haze, silver cars", SMALL, seed=207, gsd_m=0.8, haze=0.5,
           colour_mix="silver"),
        _c("q-empty-0.5", "0.5 m, empty road", SMALL, seed=208, gsd_m=0.5, queue_length_m=0.0,
           tags=("empty",)),
        _c("q-head-inside-0.5", "0.5 m, road on past the head", SMALL, seed=209, gsd_m=0.5,
           road_mode="head_inside"),
        _c("q-multipart-0.5", "0.5 m, road as 3 parts", SMALL, seed=210, gsd_m=0.5,
           road_mode="multipart"),
        Case("kit-MOS160-0.30", "KIT MOS160 at 0.30 m", kit=("MOS160", 0.3), tags=("kit",)),
        Case("kit-MOS155-0.12", "KIT MOS155 at 0.12 m", kit=("MOS155", 0.12), tags=("kit",)),
    ]


# --------------------------------------------------------------------------- rendering
def _synth_digest() -> str:
    """Version + source digest of queuemeasure.synth: a changed renderer re-renders."""
    import queuemeasure.synth as synth
    from queuemeasure._version import __version__

    h = hashlib.sha256(__version__.encode())
    for p in sorted(Path(synth.__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def scene_files(case: Case, *, rerender: bool = False, log: Callable[[str], None] = print) -> dict:
    """Render ``case``'s scene once into the cache; return paths and render seconds."""
    from queuemeasure.synth import SceneSpec, render_scene, sidecar_paths

    spec = SceneSpec(**case.spec)
    key_src = json.dumps(spec.as_dict(), sort_keys=True) + _synth_digest()
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    d = CACHE / f"{case.name}-{key}"
    paths = sidecar_paths(d / "scene.tif")
    done = d / "DONE"
    render_s = 0.0
    if rerender or not done.exists():
        if d.exists():
            shutil.rmtree(d)
        tmp = Path(tempfile.mkdtemp(prefix=f".{case.name}-", dir=_mkdir(CACHE)))
        t0 = time.perf_counter()
        render_scene(spec, tmp / "scene.tif")
        render_s = time.perf_counter() - t0
        (tmp / "spec.json").write_text(json.dumps(spec.as_dict(), indent=1))
        (tmp / "DONE").write_text(f"{render_s:.2f}\n")
        os.replace(tmp, d)
        log(f"  rendered {case.name} in {render_s:.1f} s")
    return {k: Path(v) for k, v in paths.items()} | {"dir": d, "render_s": render_s}


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# --------------------------------------------------------------------------- truth
@dataclass
class TruthVehicle:
    ring: np.ndarray          # (5, 2) lon/lat (synthetic) or box x0,y0,x1,y1 px (KIT)
    s0: float
    s1: float
    offset: float
    in_queue: bool
    occluded: bool
    visible: bool
    parked: bool


def chain_rule(s0: np.ndarray, s1: np.ndarray, max_gap: float) -> np.ndarray:
    """DESIGN.md's queue rule: indices of the chained intervals, in order."""
    order = np.argsort(s0, kind="stable")
    out, reach = [], 0.0
    for i in order:
        if s0[i] - reach > max_gap:
            break
        out.append(int(i))
        reach = max(reach, s1[i])
    return np.asarray(out, dtype=int)


def synth_truth(truth_path: Path, max_gap: float) -> tuple[float, int, bool, list[TruthVehicle]]:
    """Truth length (km), count, truncation and vehicles, re-chained for ``max_gap``."""
    doc = json.loads(truth_path.read_text())
    props = doc["properties"]
    vs = []
    for f in doc["features"]:
        p = f["properties"]
        if p.get("role") != "vehicle":
            continue
        vs.append(TruthVehicle(np.asarray(f["geometry"]["coordinates"][0], float), p["s0_m"],
                               p["s1_m"], p["offset_m"], bool(p["in_queue"]), bool(p["occluded"]),
                               bool(p["visible"]), bool(p["parked"])))
    cand = [i for i, v in enumerate(vs) if v.visible and not v.parked]
    s0 = np.array([vs[i].s0 for i in cand])
    s1 = np.array([vs[i].s1 for i in cand])
    members = [cand[k] for k in chain_rule(s0, s1, max_gap)] if cand else []
    length = (max(vs[i].s1 for i in members) - vs[members[0]].s0) / 1000.0 if members else 0.0
    if abs(max_gap - props["max_gap_m"]) < 1e-9 and abs(length - props["length_km"]) > 1e-6:
        raise RuntimeError(f"{truth_path}: re-chained truth {length} km != {props['length_km']} km")
    # the queue flag of the re-chained truth (visible part)
    mem = set(members)
    for i, v in enumerate(vs):
        v.in_queue = i in mem
    truncated = bool(props["truncated"]) and abs(max_gap - props["max_gap_m"]) < 1e-9
    return length, len(members), truncated, vs


# --------------------------------------------------------------------------- roads
def _load_road_coords(road_path: Path) -> np.ndarray:
    doc = json.loads(road_path.read_text())
    geom = doc.get("geometry", doc)
    return np.asarray(geom["coordinates"], float)


def road_variant(mode: str, road_path: Path, out_dir: Path) -> Path:
    """The road as the case gives it: as rendered, extended past the head, or in parts."""
    if mode == "plain":
        return road_path
    from queuemeasure import geo

    ll = _load_road_coords(road_path)
    if mode == "head_inside":
        # reverse-extrapolate the first 20 m of road by 300 m: the head is now inside
        local = geo.local_metric_crs(*ll[0])
        x, y = geo.transformer(geo.WGS84, local).transform(ll[:, 0], ll[:, 1])
        xy = np.column_stack([x, y])
        seg = np.hypot(*np.diff(xy, axis=0).T)
        k = int(np.searchsorted(np.cumsum(seg), 20.0)) + 1
        u = xy[0] - xy[k]
        u /= np.hypot(*u)
        back = xy[0] + np.outer(np.arange(300.0, 0.0, -50.0), u)
        lon, lat = geo.transformer(local, geo.WGS84).transform(back[:, 0], back[:, 1])
        coords = np.vstack([np.column_stack([lon, lat]), ll])
        geom = {"type": "LineString", "coordinates": coords.tolist()}
    elif mode == "multipart":
        n = len(ll)
        a, b = n // 3, 2 * n // 3
        parts = [ll[: a + 1], ll[a: b + 1][::-1], ll[b:]]
        geom = {"type": "MultiLineString", "coordinates": [p.tolist() for p in parts]}
    else:
        raise ValueError(mode)
    out = out_dir / f"road_{mode}.geojson"
    out.write_text(json.dumps({"type": "Feature", "properties": {"variant": mode}, "geometry": geom}))
    return out


# --------------------------------------------------------------------------- measuring
@dataclass
class Measured:
    length_km: float
    length_km_range: tuple[float, float]
    vehicle_count: int
    truncated: bool
    direction: str
    elapsed_s: float
    wall_s: float
    # centre lon, lat, in_queue, score, s0_m, s1_m, offset_m, kind
    vehicles: list[tuple[float, float, bool, float, float, float, float, str]]
    result: Any = None


def run_measure(tile: Path, road: Path | dict, head: tuple[float, float], max_gap: float, *,
                half_width: float | None = None, cli: bool = False) -> Measured:
    if cli:
        return _run_cli(tile, road, head, max_gap, half_width=half_width)
    import queuemeasure as qm

    kw = {} if half_width is None else {"half_width": half_width}
    t0 = time.perf_counter()
    r = qm.measure(tile, road, head=head, max_gap=max_gap, **kw)
    wall = time.perf_counter() - t0
    vs = [(*v.centre_lonlat, bool(v.in_queue), float(v.score), float(v.s0_m), float(v.s1_m),
           float(v.offset_m), v.kind) for v in r.vehicles]
    return Measured(r.length_km, tuple(r.length_km_range), r.vehicle_count, r.truncated,
                    r.direction, r.elapsed_s, wall, vs, r)


def _run_cli(tile: Path, road: Path | dict, head, max_gap, *, half_width=None) -> Measured:
    with tempfile.TemporaryDirectory() as td:
        if isinstance(road, dict):
            rp = Path(td) / "road.geojson"
            rp.write_text(json.dumps(road))
            road = rp
        out = Path(td) / "result.geojson"
        cmd = ["queuemeasure", "measure", str(tile), "--road", str(road),
               "--head", f"{head[0]!r},{head[1]!r}", "--max-gap", repr(float(max_gap)), "--json",
               "--out", str(out)]
        if half_width is not None:
            cmd += ["--half-width", repr(float(half_width))]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
        d = json.loads(p.stdout)
        vs = []
        for f in json.loads(out.read_text())["features"]:
            if f["properties"].get("role") == "vehicle":
                ring = np.asarray(f["geometry"]["coordinates"][0], float)
                c = ring[:-1].mean(axis=0)
                q = f["properties"]
                vs.append((float(c[0]), float(c[1]), bool(q["in_queue"]), float(q["score"]),
                           float(q["s0_m"]), float(q["s1_m"]), float(q["offset_m"]), q["kind"]))
    return Measured(d["length_km"], tuple(d["length_km_range"]), d["vehicle_count"], d["truncated"],
                    d.get("direction", ""), d.get("elapsed_s", wall), wall, vs)


# --------------------------------------------------------------------------- matching
def match(points: np.ndarray, scores: np.ndarray, contains: Callable[[np.ndarray], np.ndarray],
          n_truth: int, target: np.ndarray, ignore: np.ndarray) -> dict:
    """One-to-one centre-in-footprint matching.

    ``contains(points)`` gives (point index, truth index) pairs where the point lies in
    the footprint. ``target`` / ``ignore`` flag truth vehicles that count / are ignored.
    Returns tp, fp, fn, precision, recall, f1.
    """
    used = np.zeros(n_truth, bool)
    hits: dict[int, list[int]] = {}
    if len(points):
        pairs = contains(points)
        for pi, ti in zip(*pairs):
            hits.setdefault(int(pi), []).append(int(ti))
    tp = fp = 0
    for pi in np.argsort(-scores, kind="stable") if len(points) else []:
        cands = [t for t in hits.get(int(pi), []) if not used[t] and (target[t] or ignore[t])]
        tgt = [t for t in cands if target[t]]
        if tgt:
            used[tgt[0]] = True
            tp += 1
        elif cands:
            used[cands[0]] = True            # on an ignored vehicle: neither way
        else:
            fp += 1
    n_target = int(target.sum())
    fn = n_target - tp
    return _prf(tp, fp, fn)


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f1}


def _synth_scores(m: Measured, vs: list[TruthVehicle], half_width: float) -> tuple[dict, dict]:
    import shapely

    polys = shapely.polygons([v.ring for v in vs]) if vs else np.zeros(0, object)
    tree = shapely.STRtree(polys)

    def contains(pts):
        return tree.query(shapely.points(pts), predicate="within")

    vis = np.array([v.visible for v in vs], bool)
    occ = np.array([v.occluded for v in vs], bool)
    inq = np.array([v.in_queue for v in vs], bool)
    inside = np.array([abs(v.offset) <= half_width for v in vs], bool)
    acc = [v for v in m.vehicles if v[3] >= 1.0]
    pts_all = np.array([(v[0], v[1]) for v in acc]).reshape(-1, 2)
    sc_all = np.array([v[3] for v in acc])
    q = [v for v in m.vehicles if v[2]]
    pts_q = np.array([(v[0], v[1]) for v in q]).reshape(-1, 2)
    sc_q = np.array([v[3] for v in q])
    queue = match(pts_q, sc_q, contains, len(vs), inq & vis & ~occ, inq & vis & occ)
    everything = match(pts_all, sc_all, contains, len(vs), vis & ~occ & inside,
                       vis & (occ | ~inside))
    hit = np.full(len(m.vehicles), -1)
    if m.vehicles and vs:
        pi, ti = contains(np.array([(v[0], v[1]) for v in m.vehicles]))
        hit[pi[::-1]] = ti[::-1]
    return queue, everything, hit


# --------------------------------------------------------------------------- diagnosis
def diagnose(dets: list, hit: np.ndarray, t_s0: np.ndarray, t_s1: np.ndarray, t_inq: np.ndarray,
             t_occ: np.ndarray, *, max_gap: float, gsd: float) -> str:
    """Why the measured queue ends differ from the truth, in words (empty when they agree).

    ``dets``: detection tuples (see :class:`Measured`); ``hit[d]``: index of the truth
    vehicle whose footprint holds detection ``d``'s centre (-1: none); ``t_*``: truth
    stations, queue flags and occlusion flags.
    """
    tol = max(3.0, 3 * gsd)
    out = []
    dq = [k for k, d in enumerate(dets) if d[2]]
    tq = np.flatnonzero(t_inq)

    def what(k):
        d = dets[k]
        t = hit[k]
        who = ("no vehicle there" if t < 0 else
               "a queued vehicle" if t_inq[t] else "a real vehicle outside the queue")
        return f"s={d[4]:.0f} m, offset {d[6]:+.1f} m, score {d[3]:.1f}, {d[7]} ({who})"

    if not tq.size:
        if dq:
            fp = sum(hit[k] < 0 for k in dq)
            out.append(f"false queue of {len(dq)} detection(s), {fp} on no vehicle; first at "
                       + what(min(dq, key=lambda k: dets[k][4])))
        return "; ".join(out)
    t_start, t_end = float(t_s0[tq].min()), float(t_s1[tq].max())
    if not dq:
        first = [k for k, d in enumerate(dets) if d[3] >= 1.0]
        out.append("no queue found" + (f"; nearest detection at {what(min(first, key=lambda k: dets[k][4]))}"
                                       if first else "; nothing detected"))
        return "; ".join(out)
    m_start = min(dets[k][4] for k in dq)
    m_end = max(dets[k][5] for k in dq)
    if m_start < t_start - tol:
        k = min(dq, key=lambda k: dets[k][4])
        out.append(f"head {t_start - m_start:.0f} m early: queued {what(k)}")
    elif m_start > t_start + tol:
        missed = int(((t_s0[tq] < m_start - 1)).sum())
        out.append(f"head {m_start - t_start:.0f} m late: the first {missed} queued vehicle(s) missed")
    if m_end > t_end + tol:
        extra = [k for k in dq if dets[k][5] > t_end + 1.0]
        extra.sort(key=lambda k: dets[k][4])
        fp = sum(hit[k] < 0 for k in extra)
        out.append(f"tail {m_end - t_end:.0f} m long: {len(extra)} queued detection(s) beyond the "
                   f"true tail ({fp} on no vehicle); first at {what(extra[0])}")
    elif m_end < t_end - tol:
        found = set(int(hit[k]) for k, d in enumerate(dets) if d[3] >= 1.0 and hit[k] >= 0)
        weak = set(int(hit[k]) for k, d in enumerate(dets) if d[3] < 1.0 and hit[k] >= 0)
        nxt = [t for t in tq if m_end - 1 < t_s0[t] <= m_end + max_gap]
        miss = [t for t in nxt if t not in found]
        occ = sum(bool(t_occ[t]) for t in miss)
        wk = sum(t in weak for t in miss)
        later = sorted(d[4] for d in dets if d[3] >= 1.0 and d[4] > m_end)
        gap = f"next detection {later[0] - m_end:.0f} m on" if later else "no detection beyond"
        out.append(f"tail {t_end - m_end:.0f} m short: chain broke at s={m_end:.0f} m ({gap}; "
                   f"max_gap {max_gap:.0f} m); {len(miss)} of the {len(nxt)} true queued vehicles in "
                   f"the next {max_gap:.0f} m undetected ({occ} occluded, {wk} below threshold)")
    return "; ".join(out)


# --------------------------------------------------------------------------- cases -> rows
def run_synth(case: Case, *, cli: bool, rerender: bool, quicklooks: Path | None,
              log: Callable[[str], None]) -> dict:
    from queuemeasure.pipeline import DEFAULT_HALF_WIDTH_M

    files = scene_files(case, rerender=rerender, log=log)
    props = json.loads(files["truth"].read_text())["properties"]
    max_gap = float(props["max_gap_m"])
    if case.gap_delta is not None:
        max_gap = round(float(props["largest_gap_m"]) + case.gap_delta, 2)
    truth_km, truth_n, truth_trunc, vs = synth_truth(files["truth"], max_gap)
    road = road_variant(case.road_mode, files["road"], files["dir"])
    head = tuple(props["checkpoint_lonlat"])
    m = run_measure(files["tif"], road, head, max_gap, cli=cli)
    queue, allv, hit = _synth_scores(m, vs, DEFAULT_HALF_WIDTH_M)
    vis_idx = [i for i, v in enumerate(vs) if v.visible]
    pos = {i: k for k, i in enumerate(vis_idx)}
    vis = [vs[i] for i in vis_idx]
    hit = np.array([pos.get(int(t), -1) for t in hit], int)
    why = diagnose(m.vehicles, hit, np.array([v.s0 for v in vis]), np.array([v.s1 for v in vis]),
                   np.array([v.in_queue for v in vis], bool), np.array([v.occluded for v in vis], bool),
                   max_gap=max_gap, gsd=case.spec["gsd_m"])
    if quicklooks is not None and m.result is not None:
        m.result.quicklook(_mkdir(quicklooks) / f"{case.name}.png", road=road, overwrite=True)
    return _row(case, gsd=case.spec["gsd_m"], crs=props["crs"], truth_km=truth_km, truth_n=truth_n,
                truth_trunc=truth_trunc, m=m, queue=queue, allv=allv, max_gap=max_gap,
                render_s=files["render_s"], tile=str(files["tif"]), diagnosis=why)


def run_kit(case: Case, *, cli: bool, quicklooks: Path | None, log: Callable[[str], None]) -> dict:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import kit
    from queuemeasure import geo

    name, gsd = case.kit
    out = _mkdir(CACHE / "kit")
    fr = kit.make_frame(name, out, gsd)
    truth_m, truth_n, on = kit.truth_queue(fr, half_width_m=KIT_HALF_WIDTH, max_gap_m=KIT_MAX_GAP)
    m = run_measure(fr.tif, fr.road, fr.head, KIT_MAX_GAP, half_width=KIT_HALF_WIDTH, cli=cli)
    # queue membership of the boxes, by the same rule as kit.truth_queue
    y0, slope = fr.centre_y
    b = fr.boxes_px
    cos = 1 / np.sqrt(1 + slope**2)
    s0 = np.clip((b[:, 0] - kit.HEAD_X) * cos * kit.GSD, 0, None)
    s1 = (b[:, 2] - kit.HEAD_X) * cos * kit.GSD
    idx = np.flatnonzero(on)
    inq = np.zeros(len(b), bool)
    inq[idx[chain_rule(s0[idx], s1[idx], KIT_MAX_GAP)]] = True
    if inq.sum() != truth_n:
        raise RuntimeError(f"{case.name}: box chain {inq.sum()} != kit.truth_queue {truth_n}")
    inv = geo.transformer(geo.WGS84, kit.UTM32)

    def to_px(vlist):
        if not vlist:
            return np.zeros((0, 2))
        x, y = inv.transform(np.array([v[0] for v in vlist]), np.array([v[1] for v in vlist]))
        return np.column_stack([(np.asarray(x) - kit.ORIGIN[0]) / kit.GSD,
                                (kit.ORIGIN[1] - np.asarray(y)) / kit.GSD])

    def contains(px):
        inside = ((b[None, :, 0] <= px[:, None, 0]) & (px[:, None, 0] <= b[None, :, 2])
                  & (b[None, :, 1] <= px[:, None, 1]) & (px[:, None, 1] <= b[None, :, 3]))
        return np.nonzero(inside)

    none = np.zeros(len(b), bool)
    q = [v for v in m.vehicles if v[2]]
    acc = [v for v in m.vehicles if v[3] >= 1.0]
    queue = match(to_px(q), np.array([v[3] for v in q]), contains, len(b), inq, none)
    allv = match(to_px(acc), np.array([v[3] for v in acc]), contains, len(b), on, ~on)
    if quicklooks is not None and m.result is not None:
        m.result.quicklook(_mkdir(quicklooks) / f"{case.name}.png", road=fr.road, overwrite=True)
    hit = np.full(len(m.vehicles), -1)
    if m.vehicles:
        pi, ti = contains(to_px(m.vehicles))
        hit[pi[::-1]] = ti[::-1]
    why = diagnose(m.vehicles, hit, s0, s1, inq,
                   np.zeros(len(b), bool), max_gap=KIT_MAX_GAP, gsd=gsd)
    # the queue runs on beyond the frame's east edge: the truth is truncated there too
    return _row(case, gsd=gsd, crs=kit.UTM32, truth_km=truth_m / 1000.0, truth_n=truth_n,
                truth_trunc=True, m=m, queue=queue, allv=allv, max_gap=KIT_MAX_GAP, render_s=0.0,
                tile=str(fr.tif), diagnosis=why)


def _row(case: Case, *, gsd, crs, truth_km, truth_n, truth_trunc, m: Measured, queue, allv,
         max_gap, render_s, tile, diagnosis="") -> dict:
    lo, hi = m.length_km_range
    rel = (m.length_km - truth_km) / truth_km if truth_km > 0 else None
    return {
        "case": case.name, "what": case.what, "kind": "kit" if case.kit else "synthetic",
        "empty": "empty" in case.tags, "gsd_m": gsd, "crs": crs, "max_gap_m": max_gap,
        "truth_km": truth_km, "measured_km": m.length_km, "rel_error": rel,
        "abs_error_km": m.length_km - truth_km,
        "range_km": [lo, hi], "range_width_km": hi - lo,
        "range_width_rel": (hi - lo) / truth_km if truth_km > 0 else None,
        "in_range": bool(lo - RANGE_SLACK_KM <= truth_km <= hi + RANGE_SLACK_KM),
        "range_miss_m": 1000.0 * max(0.0, lo - truth_km, truth_km - hi),
        "truth_count": truth_n, "measured_count": m.vehicle_count,
        "truth_truncated": truth_trunc, "measured_truncated": m.truncated,
        "direction": m.direction,
        "queue": queue, "all": allv,
        "elapsed_s": m.elapsed_s, "wall_s": m.wall_s, "render_s": render_s, "tile": tile,
        "diagnosis": diagnosis,
    }


# --------------------------------------------------------------------------- summary
def _pool(rows: list[dict], key: str) -> dict:
    tp = sum(r[key]["tp"] for r in rows)
    fp = sum(r[key]["fp"] for r in rows)
    fn = sum(r[key]["fn"] for r in rows)
    out = _prf(tp, fp, fn)
    out["cases"] = len(rows)
    out["median_case_f1"] = statistics.median(r[key]["f1"] for r in rows) if rows else None
    out["min_case_f1"] = min((r[key]["f1"] for r in rows), default=None)
    return out


def _count_errors(rows: list[dict]) -> dict | None:
    """Relative error of ``vehicle_count`` against the truth's queued vehicles."""
    e = [(r["measured_count"] - r["truth_count"]) / r["truth_count"] for r in rows if r["truth_count"]]
    if not e:
        return None
    return {"cases": len(e), "median": statistics.median(e),
            "median_abs": statistics.median(abs(x) for x in e), "max_abs": max(abs(x) for x in e),
            "within_10pct": sum(abs(x) <= 0.10 for x in e) / len(e)}


def summarise(rows: list[dict]) -> dict:
    nonempty = [r for r in rows if r["truth_km"] > 0]

    def errstats(rs):
        e = [abs(r["rel_error"]) for r in rs if r["rel_error"] is not None]
        if not e:
            return None
        worst = max(rs, key=lambda r: abs(r["rel_error"]) if r["rel_error"] is not None else -1)
        return {"cases": len(e), "median": statistics.median(e), "max": max(e),
                "mean": float(np.mean(e)), "worst_case": worst["case"]}

    synth = [r for r in nonempty if r["kind"] == "synthetic"]
    kitr = [r for r in nonempty if r["kind"] == "kit"]
    empties = [r for r in rows if r["empty"]]
    fine = [r for r in rows if r["gsd_m"] <= 0.5 + 1e-9 and not r["empty"]]
    coarse = [r for r in rows if 0.8 - 1e-9 <= r["gsd_m"] <= 1.0 + 1e-9 and not r["empty"]]
    by_gsd = {}
    for g in sorted({r["gsd_m"] for r in rows}):
        rs = [r for r in rows if r["gsd_m"] == g and not r["empty"]]
        by_gsd[f"{g:.2f}"] = {"queue": _pool(rs, "queue"), "all": _pool(rs, "all")}
    widths = [r["range_width_km"] for r in rows]
    rel_widths = [r["range_width_rel"] for r in nonempty]
    s = {
        "cases": len(rows),
        "length_error": errstats(nonempty),
        "length_error_synthetic": errstats(synth),
        "length_error_kit": errstats(kitr),
        "empty_road_km": {r["case"]: r["measured_km"] for r in empties},
        "count_error": _count_errors(nonempty),
        "f1_fine": {"queue": _pool(fine, "queue"), "all": _pool(fine, "all")},
        "f1_fine_synthetic": {"queue": _pool([r for r in fine if r["kind"] == "synthetic"], "queue"),
                              "all": _pool([r for r in fine if r["kind"] == "synthetic"], "all")},
        "f1_coarse": {"queue": _pool(coarse, "queue"), "all": _pool(coarse, "all")},
        "f1_by_gsd": by_gsd,
        "range_coverage": sum(r["in_range"] for r in rows) / len(rows) if rows else None,
        "range_misses": [r["case"] for r in rows if not r["in_range"]],
        "range_median_width_km": statistics.median(widths) if widths else None,
        "range_median_width_rel": statistics.median(rel_widths) if rel_widths else None,
        "range_miss_m": {r["case"]: r["range_miss_m"] for r in rows if not r["in_range"]},
        "elapsed_s_total": sum(r["elapsed_s"] for r in rows),
        "elapsed_s_max": max((r["elapsed_s"] for r in rows), default=None),
    }
    T = TARGETS
    le = s["length_error"]
    checks = {
        "median |length error| <= 2 %": le is not None and le["median"] <= T["median_abs_length_error"],
        "max |length error| <= 5 %": le is not None and le["max"] <= T["max_abs_length_error"],
        "empty road < 0.1 km": all(v < T["empty_road_km"] for v in s["empty_road_km"].values()),
        "queue F1 >= 0.90 at <= 0.5 m": s["f1_fine"]["queue"]["f1"] >= T["f1_fine"],
        "queue F1 >= 0.80 at 0.8-1.0 m": s["f1_coarse"]["queue"]["f1"] >= T["f1_coarse"],
        "truth in range >= 90 %": (s["range_coverage"] or 0) >= T["range_coverage"],
    }
    s["targets"] = checks
    s["length_error_misses_5pct"] = [r["case"] for r in nonempty
                                     if abs(r["rel_error"]) > T["max_abs_length_error"]]
    s["f1_misses"] = [r["case"] for r in rows if not r["empty"] and r["queue"]["f1"] < (
        T["f1_fine"] if r["gsd_m"] <= 0.5 + 1e-9 else T["f1_coarse"])]
    return s


# --------------------------------------------------------------------------- printing
COLS = ["case", "px m", "CRS", "truth km", "meas. km", "err %", "range km", "in", "width %",
        "truth n", "meas. n", "queue P/R/F1", "all F1", "s"]


def _cells(r: dict) -> list[str]:
    lo, hi = r["range_km"]
    q = r["queue"]
    crs = r["crs"].replace("EPSG:", "")
    if crs.startswith("326"):
        crs = "UTM"
    return [
        r["case"], f"{r['gsd_m']:.2f}", crs, f"{r['truth_km']:.3f}", f"{r['measured_km']:.3f}",
        "—" if r["rel_error"] is None else f"{100 * r['rel_error']:+.1f}",
        f"{lo:.3f}–{hi:.3f}", "✓" if r["in_range"] else "✗",
        "—" if r["range_width_rel"] is None else f"{100 * r['range_width_rel']:.0f}",
        str(r["truth_count"]), str(r["measured_count"]),
        f"{q['precision']:.2f}/{q['recall']:.2f}/{q['f1']:.2f}", f"{r['all']['f1']:.2f}",
        f"{r['elapsed_s']:.1f}",
    ]


def table_text(rows: list[dict]) -> str:
    cells = [COLS] + [_cells(r) for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(COLS))]
    lines = ["  ".join(c[i].ljust(w[i]) if i == 0 else c[i].rjust(w[i]) for i in range(len(COLS)))
             for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def table_markdown(rows: list[dict]) -> str:
    out = ["| " + " | ".join(COLS) + " |", "|" + "|".join(["---"] + ["--:"] * (len(COLS) - 1)) + "|"]
    out += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(out)


def summary_text(s: dict) -> str:
    def pct(x):
        return "—" if x is None else f"{100 * x:.1f} %"

    L = []
    for label, key in (("all", "length_error"), ("synthetic", "length_error_synthetic"),
                       ("KIT", "length_error_kit")):
        e = s[key]
        if e:
            L.append(f"|length error| ({label}, {e['cases']} cases): median {pct(e['median'])}, "
                     f"max {pct(e['max'])} ({e['worst_case']})")
    c = s.get("count_error")
    if c:
        L.append(f"vehicle_count vs truth ({c['cases']} cases): median {100 * c['median']:+.1f} %, "
                 f"median |error| {pct(c['median_abs'])}, max {pct(c['max_abs'])}, "
                 f"within 10 %: {pct(c['within_10pct'])}")
    if s["empty_road_km"]:
        L.append("empty road: " + ", ".join(f"{k} {v:.3f} km" for k, v in s["empty_road_km"].items()))
    for label, key in (("<= 0.5 m", "f1_fine"), ("<= 0.5 m synthetic only", "f1_fine_synthetic"),
                       ("0.8-1.0 m", "f1_coarse")):
        q, a = s[key]["queue"], s[key]["all"]
        L.append(f"F1 {label}: queue {q['f1']:.3f} (P {q['precision']:.3f}, R {q['recall']:.3f}, "
                 f"{q['cases']} cases), all vehicles {a['f1']:.3f}")
    L.append("F1 by pixel size (queue / all): " + ", ".join(
        f"{g} m {v['queue']['f1']:.2f}/{v['all']['f1']:.2f}" for g, v in s["f1_by_gsd"].items()))
    L.append(f"truth inside length_km_range: {pct(s['range_coverage'])}"
             + (" (missed by: " + ", ".join(f"{k} {v:.0f} m" for k, v in s["range_miss_m"].items())
                + ")" if s["range_misses"] else "")
             + f"; median width {1000 * s['range_median_width_km']:.0f} m"
             f" ({pct(s['range_median_width_rel'])} of the truth)")
    L.append(f"measure time: total {s['elapsed_s_total']:.1f} s, max {s['elapsed_s_max']:.1f} s")
    L.append("targets: " + "; ".join(f"{k}: {'PASS' if v else 'MISS'}" for k, v in s["targets"].items()))
    if s["length_error_misses_5pct"]:
        L.append("cases over 5 % length error: " + ", ".join(s["length_error_misses_5pct"]))
    if s["f1_misses"]:
        n = len(s["f1_misses"])
        L.append(f"cases under their queue-F1 target: {n} of {s['cases'] - len(s['empty_road_km'])}"
                 + (": " + ", ".join(s["f1_misses"]) if n <= 12 else ""))
    return "\n".join(L)


# --------------------------------------------------------------------------- driver
def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return None


def run(mode: str = "quick", *, json_path: Path | None | bool = True, cases: list[str] | None = None,
        cli: bool = False, rerender: bool = False, quicklooks: Path | None = None,
        log: Callable[[str], None] | None = None) -> dict:
    """Run the benchmark; return the report (``rows``, ``summary``, ``meta``).

    ``json_path``: True for the default results file, a path, or None/False for none.
    """
    import queuemeasure

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    todo = quick_cases() if mode == "quick" else full_cases()
    if cases:
        todo = [c for c in todo if any(p in c.name for p in cases)]
    kit_ok = KIT_DIR.exists()
    rows, skipped = [], []
    t0 = time.perf_counter()
    for c in todo:
        if c.kit and not kit_ok:
            skipped.append(c.name)
            continue
        log(f"{c.name} ...")
        if c.kit:
            rows.append(run_kit(c, cli=cli, quicklooks=quicklooks, log=log))
        else:
            rows.append(run_synth(c, cli=cli, rerender=rerender, quicklooks=quicklooks, log=log))
        r = rows[-1]
        log(f"  truth {r['truth_km']:.3f} km, measured {r['measured_km']:.3f} km, "
            f"queue F1 {r['queue']['f1']:.2f}, {r['elapsed_s']:.1f} s")
    total = time.perf_counter() - t0
    summary = summarise(rows)
    summary["wall_s"] = total
    summary["render_s"] = sum(r["render_s"] for r in rows)
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "worktree_dirty": bool(_git("status", "--porcelain", "--", "queuemeasure")),
        "mode": mode, "via": "cli" if cli else "python", "queuemeasure": queuemeasure.__version__,
        "synth_digest": _synth_digest(), "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "skipped": skipped,
        "targets": TARGETS,
    }
    report = {"meta": meta, "summary": summary, "rows": rows}
    if json_path:
        p = (RESULTS / ("accuracy_quick.json" if mode == "quick" else "accuracy.json")
             if json_path is True else Path(json_path))
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(report, indent=1, default=float))
        os.replace(tmp, p)
        report["json_path"] = str(p)
    return report


README = HERE / "README.md"
MARK0, MARK1 = "<!-- accuracy-table", "<!-- /accuracy-table -->"


def update_readme(rep: dict) -> None:
    """Replace the results section of benchmarks/README.md between its markers."""
    m = rep["meta"]
    text = README.read_text()
    a = text.index(MARK0)
    a = text.index("\n", a) + 1
    b = text.index(MARK1)
    dirty = " plus uncommitted changes to `queuemeasure/`" if m["worktree_dirty"] else ""
    body = (f"Measured on {m['date'][:10]} at commit `{m['commit']}`{dirty}, {m['cpus']} cores, "
            f"Python {m['python']}, via {m['via']}.\n\n" + table_markdown(rep["rows"])
            + "\n\n```text\n" + summary_text(rep["summary"]) + "\n```\n")
    README.write_text(text[:a] + body + text[b:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 small scenes + 2 KIT frames (< 3 min)")
    ap.add_argument("--json", type=Path, default=None, help="write the report here")
    ap.add_argument("--cases", default=None, help="comma-separated substrings of case names")
    ap.add_argument("--cli", action="store_true", help="measure through the CLI in a subprocess")
    ap.add_argument("--rerender", action="store_true", help="render the scenes again")
    ap.add_argument("--quicklooks", type=Path, default=None, help="write a quicklook PNG per case here")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--update-readme", action="store_true",
                    help="put the table and summary into benchmarks/README.md (full mode)")
    ap.add_argument("--coarse", action="store_true",
                    help="the coarse-pixel suite instead (3 m, 10 m; benchmarks/coarse_accuracy.py)")
    a = ap.parse_args(argv)
    if a.coarse:
        sys.path.insert(0, str(HERE))
        import coarse_accuracy

        return coarse_accuracy.main((["--quick"] if a.quick else [])
                                    + (["--cases", a.cases] if a.cases else [])
                                    + (["--json", str(a.json)] if a.json else []))
    mode = "quick" if a.quick else "full"
    rep = run(mode, json_path=a.json or True, cases=a.cases.split(",") if a.cases else None,
              cli=a.cli, rerender=a.rerender, quicklooks=a.quicklooks)
    m = rep["meta"]
    print(f"queuemeasure accuracy ({mode}), {m['date']}, commit {m['commit']}"
          f"{' + uncommitted changes' if m['worktree_dirty'] else ''}, via {m['via']}")
    print(table_markdown(rep["rows"]) if a.markdown else table_text(rep["rows"]))
    print()
    print(summary_text(rep["summary"]))
    print(f"\nwall time {rep['summary']['wall_s']:.0f} s (rendering {rep['summary']['render_s']:.0f} s)"
          f"; report: {rep.get('json_path')}")
    why = [r for r in rep["rows"] if r["diagnosis"] and (
        not r["in_range"] or r["rel_error"] is None or abs(r["rel_error"]) > 0.02)]
    if why:
        print("\nwhere the measured queue ends differ from the truth:")
        for r in why:
            err = "" if r["rel_error"] is None else f" ({100 * r['rel_error']:+.1f} %)"
            print(f"  {r['case']}{err}: {r['diagnosis']}")
    if a.update_readme and mode == "full" and not a.cases:
        update_readme(rep)
    if m["skipped"]:
        print("skipped (no ../shared/realdata): " + ", ".join(m["skipped"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
