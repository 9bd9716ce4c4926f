"""Accuracy of ``queuemeasure trace`` on mountain roads (issue 18), SYNTHETIC scenes.

Renders (once, into ``~/.cache/queuemeasure-bench/`` or ``$QUEUEMEASURE_BENCH_CACHE``)
scenes of :mod:`queuemeasure.synth` — switchback stacks (hairpins of 17-24 m radius,
legs 20-40 m apart, a river bed of the road's own tone a few metres beside the road),
the generator's serpentines and valley roads — at 0.3 m and 0.5 m, traces each road
from near its head to near its end, and prints per case:

- ``mean`` / ``p95``: distance (m) from points every metre along the traced line to the
  true centreline (the measure of issue 18's targets: mean <= 1.5, p95 <= 4 m);
- ``back p95``: the same from the true centreline to the traced line (a bend cut short
  or a leg skipped shows here);
- ``len %``: traced geodesic length against the true one (target within 1 %);
- ``s``: wall time of the trace, in this process.

    python benchmarks/trace_accuracy.py           # all cases (~2 min on 2 cores)
    python benchmarks/trace_accuracy.py --quick   # one switchback and one valley at 0.5 m

Writes ``benchmarks/results/trace_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# measure the checkout this script lives in, not whatever ``queuemeasure`` is installed
sys.path.insert(0, str(HERE.parent))
CACHE = Path(os.environ.get("QUEUEMEASURE_BENCH_CACHE", Path.home() / ".cache" / "queuemeasure-bench"))
#: Road left out at each end of the trace (m): the user's points lie on the road.
END_M = 10.0

#: name -> SceneSpec keywords (all SYNTHETIC)
CASES = {
    "switchback 0.3 m s1": dict(road="switchback", gsd_m=0.3, seed=1),
    "switchback 0.3 m s2": dict(road="switchback", gsd_m=0.3, seed=2),
    "switchback 0.5 m s1": dict(road="switchback", gsd_m=0.5, seed=1),
    "switchback 0.5 m s3": dict(road="switchback", gsd_m=0.5, seed=3),
    "serpentine 0.3 m": dict(road="serpentine", gsd_m=0.3, seed=4, river_gap_m=14.0),
    "serpentine 0.5 m": dict(road="serpentine", gsd_m=0.5, seed=5, river_gap_m=14.0),
    "valley 0.3 m": dict(road="valley", gsd_m=0.3, seed=6, river_gap_m=14.0),
    "valley 0.5 m": dict(road="valley", gsd_m=0.5, seed=7, river_gap_m=14.0),
}
QUICK = ("switchback 0.5 m s1", "valley 0.5 m")
#: what every case shares: a valley with a river bed of the road's tone, a queue
COMMON = dict(road_length_m=1000.0, queue_length_m=400.0, terrain="valley", river=True,
              river_like_road=True, river_gap_m=4.0)


def scene(name: str) -> Path:
    """The case's tile, rendered once into the cache."""
    from queuemeasure import synth

    kw = {**COMMON, **CASES[name]}
    key = "_".join(f"{k}-{v}" for k, v in sorted(kw.items()))
    tif = CACHE / "trace_accuracy" / (key.replace("/", "-").replace(" ", "") + ".tif")
    if not tif.exists():
        tif.parent.mkdir(parents=True, exist_ok=True)
        synth.render_scene(synth.SceneSpec(**kw, description=f"trace accuracy: {name}"), tif)
    return tif


def truth(tif: Path) -> np.ndarray:
    """The true centreline (lon, lat), head first."""
    return np.array(json.loads(tif.with_suffix(".road.geojson").read_text())["geometry"]["coordinates"], float)


def score(traced: np.ndarray, true_ll: np.ndarray) -> dict:
    """Offsets both ways and the length error of a traced line against the truth."""
    import shapely
    from shapely.geometry import LineString
    from shapely.ops import substring

    from queuemeasure import geo

    utm = geo.utm_crs(*true_ll[0])
    fwd = geo.transformer(geo.WGS84, utm)
    tl = LineString(np.column_stack(fwd.transform(true_ll[:, 0], true_ll[:, 1])))
    tl = substring(tl, END_M, tl.length - END_M)
    ln = LineString(np.column_stack(fwd.transform(traced[:, 0], traced[:, 1])))
    d = shapely.distance(shapely.line_interpolate_point(ln, np.arange(0, ln.length, 1.0)), tl)
    back = shapely.distance(shapely.line_interpolate_point(tl, np.arange(0, tl.length, 1.0)), ln)
    tc = np.asarray(tl.coords)
    t_ll = np.column_stack(geo.transformer(utm, geo.WGS84).transform(tc[:, 0], tc[:, 1]))
    Lt = geo.geodesic_length(t_ll[:, 0], t_ll[:, 1])
    Ln = geo.geodesic_length(traced[:, 0], traced[:, 1])
    return {"offset_mean_m": float(d.mean()), "offset_p95_m": float(np.percentile(d, 95)),
            "back_p95_m": float(np.percentile(back, 95)), "length_error_pct": 100 * (Ln / Lt - 1),
            "road_m": Lt}


def run_case(name: str) -> dict:
    from shapely.geometry import LineString
    from shapely.ops import substring

    from queuemeasure import geo
    from queuemeasure.trace import TraceInfo, trace_road

    tif = scene(name)
    ll = truth(tif)
    utm = geo.utm_crs(*ll[0])
    fwd, inv = geo.transformer(geo.WGS84, utm), geo.transformer(utm, geo.WGS84)
    tl = LineString(np.column_stack(fwd.transform(ll[:, 0], ll[:, 1])))
    a, b = substring(tl, END_M, END_M).coords[0], substring(tl, tl.length - END_M, tl.length - END_M).coords[0]
    start, end = inv.transform(*a), inv.transform(*b)
    info = TraceInfo()
    t0 = time.perf_counter()
    line = trace_road(tif, start, end, info=info)
    wall = time.perf_counter() - t0
    res = score(np.asarray(line.coords), ll)
    res.update(case=name, wall_s=wall, cell_m=info.cell_m, width_m=info.width_m,
               spec={**COMMON, **CASES[name]})
    return res


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    args = ap.parse_args()
    names = [n for n in (QUICK if args.quick else CASES) if args.k in n]
    print(f"{'case (SYNTHETIC)':22s} {'road m':>7s} {'mean m':>7s} {'p95 m':>6s} {'back p95':>8s} "
          f"{'len %':>6s} {'s':>5s}")
    rows = []
    for n in names:
        r = run_case(n)
        rows.append(r)
        print(f"{n:22s} {r['road_m']:7.0f} {r['offset_mean_m']:7.2f} {r['offset_p95_m']:6.2f} "
              f"{r['back_p95_m']:8.2f} {r['length_error_pct']:+6.2f} {r['wall_s']:5.1f}", flush=True)
    out = HERE / "results" / "trace_accuracy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "commit": _commit(),
                               "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                               "results": rows}, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
