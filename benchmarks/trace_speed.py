"""Benchmark of ``queuemeasure trace`` (issue 8): a 20 km road on a 0.5 m tile.

Makes (once) a 40 000 x 20 000 px, 0.5 m, 3-band UTM tile with a gently curving 20 km
road, in a cache folder outside the repository (``~/.cache/queuemeasure-bench/``,
or ``$QUEUEMEASURE_BENCH_CACHE``), then traces the road end to end in a fresh
subprocess and reports wall time, CPU time and peak RSS (``ru_maxrss`` of that
subprocess, imports included), plus the traced line's offset from the true centreline.

    python benchmarks/trace_speed.py            # the 20 km case (tile made once, ~2 min)
    python benchmarks/trace_speed.py --quick    # a 3 km road on a 7000 x 3500 tile, < 30 s

Writes ``benchmarks/results/trace_speed.json``.
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
CACHE = Path(os.environ.get("QUEUEMEASURE_BENCH_CACHE", Path.home() / ".cache" / "queuemeasure-bench"))
ORIGIN = (44.631, 42.768)
GSD = 0.5


def centreline(width_m: float, height_m: float, length_m: float) -> np.ndarray:
    """A sinuous road across the tile, from 150 m inside its west edge, ``length_m`` long."""
    x = np.arange(150.0, width_m - 150.0, 0.5)
    amp, wl = 0.03 * height_m, 0.25 * width_m
    y = height_m / 2 + amp * np.sin(2 * np.pi * x / wl) + 0.4 * amp * np.sin(2 * np.pi * x / (0.37 * wl))
    xy = np.column_stack([x, y])
    s = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    return xy[s <= length_m]


def make_tile(path: Path, width: int, height: int, length_m: float) -> None:
    """Write the tile strip by strip (bounded memory); the road is painted where it is."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree

    from queuemeasure import geo

    rng = np.random.default_rng(0)
    utm = geo.utm_crs(*ORIGIN)
    e0, n0 = geo.transformer(geo.WGS84, utm).transform(*ORIGIN)
    W_m, H_m = width * GSD, height * GSD
    cl = centreline(W_m, H_m, length_m)        # metres from the north-west corner, y down
    dense = cl[::1]
    tree = cKDTree(dense)
    # terrain: low-frequency tone and field patches from a 1/32 grid
    lowres = ndi.gaussian_filter(rng.normal(0, 1, (height // 32 + 2, width // 32 + 2)), 6)
    lowres /= lowres.std()
    fields = ndi.gaussian_filter(rng.normal(0, 1, (height // 32 + 2, width // 32 + 2)), 3)
    fields /= fields.std()
    grass = np.array([0.28, 0.36, 0.18], np.float32)
    soil = np.array([0.45, 0.38, 0.30], np.float32)
    asphalt = np.array([0.34, 0.34, 0.35], np.float32)
    tmp = path.with_suffix(".part.tif")
    prof = dict(driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                crs=utm.to_wkt(), transform=from_origin(e0 - 1000, n0 + H_m / 2, GSD, GSD),
                tiled=True, blockxsize=512, blockysize=512, compress="zstd", zstd_level=1,
                interleave="pixel", photometric="rgb", BIGTIFF="YES", num_threads="ALL_CPUS")
    rows_per = 512
    with rasterio.open(tmp, "w", **prof) as ds:
        for r0 in range(0, height, rows_per):
            h = min(rows_per, height - r0)
            yy = (r0 + np.arange(h) + 0.5) * GSD
            lr = ndi.zoom(lowres[r0 // 32: (r0 + h) // 32 + 2], 32, order=1)[: h, :width]
            fl = ndi.zoom(fields[r0 // 32: (r0 + h) // 32 + 2], 32, order=0)[: h, :width]
            img = grass + (0.035 * lr)[..., None].astype(np.float32)
            img[fl > 1.2] = soil
            # road pixels: only those near the centreline in this strip
            near = np.flatnonzero((dense[:, 1] > yy[0] - 10) & (dense[:, 1] < yy[-1] + 10))
            if near.size:
                xs = dense[near, 0]
                c0 = max(0, int((xs.min() - 10) / GSD))
                c1 = min(width, int((xs.max() + 10) / GSD) + 1)
                X, Y = np.meshgrid((np.arange(c0, c1) + 0.5) * GSD, yy)
                d, _ = tree.query(np.column_stack([X.ravel(), Y.ravel()]), distance_upper_bound=6.0)
                cover = np.clip((3.5 - d.reshape(X.shape)) / GSD + 0.5, 0, 1)[..., None]
                sub = img[:, c0:c1]
                img[:, c0:c1] = sub * (1 - cover) + asphalt * cover
            noise = rng.integers(-6, 7, size=(h, width, 1), dtype=np.int16)
            data = np.clip(img * 254 + 1, 0, 255).astype(np.int16) + noise
            data = np.clip(data, 0, 255).astype(np.uint8)
            ds.write(np.moveaxis(data, -1, 0), window=((r0, r0 + h), (0, width)))
            print(f"\r  writing {path.name}: {100 * (r0 + h) / height:5.1f}%", end="", file=sys.stderr)
    print(file=sys.stderr)
    os.replace(tmp, path)
    # the truth, in lon/lat
    x, y = e0 - 1000 + cl[:, 0], n0 + H_m / 2 - cl[:, 1]
    lon, lat = geo.transformer(utm, geo.WGS84).transform(x, y)
    path.with_suffix(".truth.json").write_text(json.dumps(np.column_stack([lon, lat]).tolist()))


CHILD = r"""
import json, resource, sys, time
import numpy as np
t0 = time.perf_counter(); c0 = time.process_time()
from queuemeasure.trace import trace_road, TraceInfo
tile, start, end = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
info = TraceInfo()
line = trace_road(tile, start, end, info=info)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vm_hwm_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
                  if sys.platform.startswith("linux") else None,
                  "coords": np.asarray(line.coords).tolist(), "cell_m": info.cell_m,
                  "coarse_shape": list(info.coarse_shape), "width_m": info.width_m,
                  "blocks_read": info.blocks_read}))
"""


def run_case(name: str, width: int, height: int, length_m: float) -> dict:
    import shapely
    from shapely.geometry import LineString

    from queuemeasure import geo

    CACHE.mkdir(parents=True, exist_ok=True)
    tif = CACHE / f"trace_{width}x{height}.tif"
    if not tif.exists():
        t = time.perf_counter()
        make_tile(tif, width, height, length_m)
        print(f"  made {tif} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    truth = np.array(json.loads(tif.with_suffix(".truth.json").read_text()))
    start, end = truth[0].tolist(), truth[-1].tolist()
    out = subprocess.run([sys.executable, "-c", CHILD, str(tif), json.dumps(start), json.dumps(end)],
                         capture_output=True, text=True, check=False, cwd=HERE.parent)
    if out.returncode:
        raise SystemExit(out.stderr)
    res = json.loads(out.stdout)
    utm = geo.utm_crs(*start)
    fwd = geo.transformer(geo.WGS84, utm)
    tl = LineString(np.column_stack(fwd.transform(truth[:, 0], truth[:, 1])))
    c = np.array(res.pop("coords"))
    ln = LineString(np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
    d = shapely.distance(shapely.line_interpolate_point(ln, np.arange(0, ln.length, 1.0)), tl)
    Lt = geo.geodesic_length(truth[:, 0], truth[:, 1])
    Ln = geo.geodesic_length(c[:, 0], c[:, 1])
    res.update(case=name, tile_px=[width, height], gsd_m=GSD, road_km=Lt / 1000,
               offset_mean_m=float(d.mean()), offset_p95_m=float(np.percentile(d, 95)),
               length_error_pct=100 * (Ln / Lt - 1), tile_mb=tif.stat().st_size / 2**20)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 3 km road on a 7000 x 3500 px tile")
    args = ap.parse_args()
    cases = [("3 km / 7000x3500", 7000, 3500, 3000.0)]
    if not args.quick:
        cases.append(("20 km / 40000x20000", 40000, 20000, 20000.0))
    rows = [run_case(*c) for c in cases]
    hdr = f"{'case':22s} {'road km':>8s} {'wall s':>7s} {'cpu s':>7s} {'peak RSS MB':>12s} {'cell m':>7s} {'mean m':>7s} {'p95 m':>6s} {'len %':>6s}"
    print(hdr)
    for r in rows:
        print(f"{r['case']:22s} {r['road_km']:8.2f} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['peak_rss_mb']:12.0f} "
              f"{r['cell_m']:7.1f} {r['offset_mean_m']:7.2f} {r['offset_p95_m']:6.2f} {r['length_error_pct']:+6.2f}")
    out = HERE / "results" / "trace_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "platform": platform.platform()},
                               "quick": args.quick, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
