"""Speed-up of ``measure_many`` with 2 Dask workers over 1, on this machine.

Paints a few test tiles (tests/scenes.py), writes a manifest that measures each of them
on several "dates", and runs it on a LocalCluster of 1 and then 2 single-threaded worker
processes. Times are taken on started, warmed clusters (workers have imported queuemeasure),
from the first submission to the last result; cluster start-up is reported apart. A
plain in-process loop of ``measure()`` is the serial baseline. The three are run in
turn, ``repeats`` rounds, and the best of each is compared, so that load from other
processes on the machine hits all three alike (the load average is recorded).

    python benchmarks/batch_speedup.py            # 4 tiles x 4 dates, 1.5 km roads
    python benchmarks/batch_speedup.py --quick    # 2 tiles x 4 dates, 0.6 km roads

Writes benchmarks/results/batch_speedup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def make_manifest(d: Path, n_tiles: int, dates: int, road_len: float) -> Path:
    from scenes import paint_scene

    lines = ["id,site,date,tile,road,head,max_gap"]
    for t in range(n_tiles):
        s = paint_scene(d, crs=("utm", "EPSG:4326", "EPSG:3857", "utm")[t % 4], gsd=0.5,
                        road_len=road_len, queue_len=0.6 * road_len, name=f"tile{t}", seed=t)
        for k in range(dates):
            lines.append(f'{t}-{k},site{t},2022-09-{10 + 2 * k:02d},{s.path.name},{s.road_path.name},'
                         f'"{s.head[0]},{s.head[1]}",50')
    p = d / "manifest.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def serial_once(rows) -> tuple[float, dict]:
    from queuemeasure import measure

    t0 = time.perf_counter()
    out = {r.id: measure(r.tile, r.road, **r.measure_kwargs()).to_dict() for r in rows}
    return time.perf_counter() - t0, out


def dask_once(rows, client) -> tuple[float, dict]:
    from queuemeasure.batch import measure_many

    t0 = time.perf_counter()
    results = {r.id: r for r in measure_many(rows, client)}
    wall = time.perf_counter() - t0
    bad = [f"{r.id}: {r.error}" for r in results.values() if not r.ok]
    if bad:
        raise SystemExit(f"rows failed: {bad}")
    return wall, {k: r.result for k, r in results.items()}


def run_all(rows, repeats: int) -> dict:
    """Serial, 1 worker and 2 workers, interleaved so that background load hits all alike."""
    import contextlib

    from queuemeasure.batch import local_client

    timings: dict[str, list[float]] = {"serial": [], "1": [], "2": []}
    startup: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        clients = {}
        for n in (1, 2):
            t0 = time.perf_counter()
            clients[str(n)] = c = stack.enter_context(local_client(n))
            c.wait_for_workers(n)
            startup[str(n)] = time.perf_counter() - t0
            dask_once(rows[:n], c)  # warm: every worker imports queuemeasure
        _, direct = serial_once(rows[:1])
        for rep in range(repeats):
            t, direct = serial_once(rows)
            timings["serial"].append(t)
            for n, c in clients.items():
                t, got = dask_once(rows, c)
                timings[n].append(t)
                for k, v in got.items():  # the batch gives measure()'s numbers
                    assert v["length_km"] == direct[k]["length_km"], k
                    assert v["vehicle_count"] == direct[k]["vehicle_count"], k
            print(f"round {rep + 1}: serial {timings['serial'][-1]:.2f} s, 1 worker {timings['1'][-1]:.2f} s, "
                  f"2 workers {timings['2'][-1]:.2f} s  (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
    return {"wall_s": timings, "best_s": {k: min(v) for k, v in timings.items()},
            "median_s": {k: statistics.median(v) for k, v in timings.items()},
            "cluster_startup_s": startup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (about 20 s)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of (serial, 1 worker, 2 workers); the best of each counts "
                         "(default 3 quick, 4 full; raise it on a busy machine)")
    ap.add_argument("--out", default=str(HERE / "results" / "batch_speedup.json"))
    args = ap.parse_args()
    n_tiles, dates, road_len, repeats = (2, 4, 600.0, 3) if args.quick else (4, 4, 1500.0, 4)
    repeats = args.rounds or repeats

    from queuemeasure.batch import read_manifest

    with tempfile.TemporaryDirectory(prefix="qm-bench-") as tmp:
        t = time.perf_counter()
        rows = read_manifest(make_manifest(Path(tmp), n_tiles, dates, road_len))
        print(f"painted {n_tiles} tiles ({road_len / 1000:g} km of road each) in "
              f"{time.perf_counter() - t:.1f} s; {len(rows)} rows", file=sys.stderr)
        load_before = os.getloadavg()
        r = run_all(rows, repeats)
        load_after = os.getloadavg()
    best, med = r["best_s"], r["median_s"]
    speedup = best["1"] / best["2"]
    report = {
        "benchmark": "batch_speedup",
        "quick": args.quick, "rounds": repeats,
        "rows": len(rows), "tiles": n_tiles, "road_km_per_row": road_len / 1000,
        "cores": os.cpu_count(), "python": platform.python_version(),
        "loadavg_before": load_before, "loadavg_after": load_after,
        **r,
        "speedup_2_over_1_best": speedup,
        "speedup_2_over_1_median": med["1"] / med["2"],
        "dask_overhead_per_row_s": (best["1"] - best["serial"]) / len(rows),
        "seconds_per_row_1_worker": best["1"] / len(rows),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"speed-up of 2 workers over 1: {speedup:.2f}x (best of {repeats}: {best['1']:.2f} s -> "
          f"{best['2']:.2f} s for {len(rows)} rows; serial loop {best['serial']:.2f} s; "
          f"median speed-up {report['speedup_2_over_1_median']:.2f}x); wrote {out}")


if __name__ == "__main__":  # required: Dask's worker processes are spawned and re-import __main__
    main()
