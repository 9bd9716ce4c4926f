"""Speed and memory of ``queuemeasure measure`` against merely opening the tile (issue 5).

The reference case is a 40 000 x 20 000 px, 3-band uint8 GeoTIFF in UTM at 0.5 m, tiled
512 x 512, DEFLATE, with a 20 km queue along a winding road. Only the road's corridor is
rendered by :mod:`queuemeasure.synth`; the rest of the tile is a cheap textured background
(a few pre-generated 512 x 512 texture tiles, compressible but not trivially so). Tiles are
built once and cached under ``~/.cache/queuemeasure-bench/speed/`` (or
``$QUEUEMEASURE_BENCH_CACHE``), keyed by their parameters.

Every case runs in a fresh subprocess; wall time is taken around the process (or around
the call, for the in-process rows), CPU time and peak RSS come from ``os.wait4``'s rusage
of that process alone. Files are read once before timing so that they sit in the page
cache, as in the issue's numbers. Each case is run ``--repeats`` times and the fastest run
is reported (its CPU time and peak RSS with it).

    python benchmarks/speed.py            # full: 5/10/20/40 km at 0.5 m, 20 km at 0.3 m
    python benchmarks/speed.py --quick    # smoke: 8 000 x 4 000 px, 2 and 4 km, < 60 s
    python benchmarks/speed.py --only q20km --detector rules   # one case (only its tile is built)
    python benchmarks/speed.py --interleave 5   # 20 km: rounds of whole read, learned, rules

Writes ``benchmarks/results/speed.json`` (``speed_quick.json`` with ``--quick``) and prints
a markdown table and the ratios the issue sets as targets.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: bump when the way tiles are built changes (invalidates the cache)
BUILD_VERSION = 1
HEAD_LONLAT = (44.631, 42.768)   # Upper Lars checkpoint; UTM zone 38N


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Region:
    """The ground area a tile covers, in metres of the local frame centred on the head."""

    width_m: float
    height_m: float
    road_max_m: float        # length of the full meander (the longest road of a series)
    margin_m: float          # kept between the meander and the tile's edge


def meander(region: Region, step_m: float = 5.0):
    """A winding road filling ``region``: local (x, y) every ~``step_m``, head first.

    The head is at the west edge, mid-height; the road meanders east with two sine
    harmonics whose amplitude is solved so that the whole road is ``road_max_m`` long.
    """
    import numpy as np

    x0, x1 = region.margin_m, region.width_m - region.margin_m
    amp_max = region.height_m / 2 - region.margin_m
    wl = region.width_m / 5.5

    def curve(a: float, n: int = 200_000):
        x = np.linspace(x0, x1, n)
        y = a * (0.85 * np.sin(2 * np.pi * (x - x0) / wl)
                 + 0.15 * np.sin(2 * np.pi * (x - x0) / (0.37 * wl) + 1.0))
        return x, y

    def length(a: float) -> float:
        x, y = curve(a)
        return float(np.hypot(np.diff(x), np.diff(y)).sum())

    lo, hi = 0.0, amp_max
    if length(hi) < region.road_max_m:
        raise SystemExit(f"a {region.road_max_m} m road does not fit in {region}")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if length(mid) < region.road_max_m else (lo, mid)
    x, y = curve(hi)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    t = np.arange(0.0, s[-1], step_m)
    xy = np.column_stack([np.interp(t, s, x), np.interp(t, s, y)])
    # local frame: head at (0, 0); tile spans x in [-margin, W - margin], y in [-H/2, H/2]
    return xy - np.array([x0, 0.0])


def local_crs():
    from queuemeasure import geo

    return geo.local_metric_crs(*HEAD_LONLAT)


def prefix_lonlat(region: Region, length_m: float):
    """WGS84 vertices of the first ``length_m`` of the meander."""
    import numpy as np

    from queuemeasure import geo

    xy = meander(region)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    keep = xy[s <= length_m]
    lon, lat = geo.transformer(local_crs(), geo.WGS84).transform(keep[:, 0], keep[:, 1])
    return np.column_stack([lon, lat])


def tile_grid(region: Region, gsd: float):
    """(crs, transform, width, height) of the north-up UTM tile that covers ``region``."""
    import numpy as np
    from affine import Affine

    from queuemeasure import geo

    utm = geo.utm_crs(*HEAD_LONLAT)
    tf = geo.transformer(local_crs(), utm)
    xw, yn = tf.transform(-region.margin_m, region.height_m / 2)
    x0 = np.floor(xw / gsd) * gsd
    y1 = np.ceil(yn / gsd) * gsd
    width = int(round(region.width_m / gsd))
    height = int(round(region.height_m / gsd))
    return utm, Affine(gsd, 0.0, x0, 0.0, -gsd, y1), width, height


# ----------------------------------------------------------------------------- building


def cache_root() -> Path:
    root = os.environ.get("QUEUEMEASURE_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "queuemeasure-bench" / "speed"


def key_of(**params) -> str:
    blob = json.dumps({"v": BUILD_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def textures(n: int = 8, size: int = 512, seed: int = 7):
    """``n`` background textures (3, size, size) uint8: fields, furrows and grain."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for k in range(n):
        base = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 24, mode="wrap")
        base = (base - base.min()) / (np.ptp(base) + 1e-6)
        ang = rng.uniform(0, np.pi)
        furrows = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * rng.uniform(0.2, 0.5))
        grain = rng.standard_normal((3, size, size)).astype(np.float32)
        tone = rng.uniform(0.3, 0.6, 3).astype(np.float32)
        img = (tone[:, None, None] + 0.18 * (base - 0.5) + 0.02 * furrows
               + 0.012 * grain)
        out.append(np.clip(np.rint(img * 255), 1, 255).astype(np.uint8))
    return out


def build_background(path: Path, region: Region, gsd: float, *, tiled: bool = True) -> None:
    """Write the textured background tile (atomically) at ``path``."""
    import rasterio
    from rasterio.crs import CRS as RioCRS
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    crs, transform, width, height = tile_grid(region, gsd)
    tex = textures()
    profile = dict(driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                   crs=RioCRS.from_wkt(crs.to_wkt()), transform=transform, tiled=True,
                   blockxsize=512, blockysize=512, compress="DEFLATE", predictor=2, zlevel=6,
                   interleave="pixel", bigtiff="YES", num_threads="ALL_CPUS")
    tmp = path.with_name(path.name + ".part")
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            nby, nbx = -(-height // 512), -(-width // 512)
            for by in range(nby):
                for bx in range(nbx):
                    h = min(512, height - by * 512)
                    w = min(512, width - bx * 512)
                    t = tex[(by * 7 + bx * 3 + (by * bx) % 5) % len(tex)]
                    dst.write(t[:, :h, :w], window=Window(bx * 512, by * 512, w, h))
    os.replace(tmp, path)


@dataclass
class Case:
    """One measured tile: a prefix of the meander with a queue on it."""

    name: str
    tile: str
    road: str
    head: str
    queue_km: float
    road_km: float
    gsd_m: float
    width: int
    height: int
    tiled: bool = True
    truth_km: float | None = None


def build_case(name: str, region: Region, gsd: float, queue_m: float, free_m: float,
               *, log) -> Case:
    """Background + the synth-rendered corridor of a ``queue_m`` queue (cached)."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from queuemeasure.synth import SceneSpec, render_scene

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    bkey = key_of(kind="bg", region=asdict(region), gsd=gsd)
    bg = root / f"bg-{bkey}.tif"
    if not bg.exists():
        t0 = time.perf_counter()
        log(f"  building background {bg.name} ({region.width_m / gsd:.0f} px wide) ...")
        build_background(bg, region, gsd)
        log(f"  ... {time.perf_counter() - t0:.0f} s")
    road_m = queue_m + free_m
    ckey = key_of(kind="case", bkey=bkey, queue_m=queue_m, road_m=road_m)
    tile = root / f"{name}-{ckey}.tif"
    meta = root / f"{name}-{ckey}.json"
    _, _, width, height = tile_grid(region, gsd)
    if meta.exists() and tile.exists():
        return Case(**json.loads(meta.read_text()))
    t0 = time.perf_counter()
    log(f"  building {tile.name}: {queue_m / 1000:g} km queue at {gsd} m ...")
    ll = prefix_lonlat(region, road_m)
    spec = SceneSpec(seed=11, road_lonlat=[tuple(p) for p in ll], queue_length_m=queue_m,
                     gsd_m=gsd, crs="utm", margin_m=30.0, workers=2,
                     description="queuemeasure speed benchmark corridor")
    with tempfile.TemporaryDirectory(dir=root) as td:
        truth = render_scene(spec, Path(td) / "corridor.tif")
        part = tile.with_name(tile.name + ".part")
        shutil.copyfile(bg, part)
        with rasterio.Env(GDAL_CACHEMAX=2048, GDAL_NUM_THREADS="ALL_CPUS"):
            with rasterio.open(Path(td) / "corridor.tif") as src, rasterio.open(part, "r+") as dst:
                ox = (src.transform.c - dst.transform.c) / gsd
                oy = (dst.transform.f - src.transform.f) / gsd
                ox, oy = int(round(ox)), int(round(oy))
                if ox < 0 or oy < 0 or ox + src.width > dst.width or oy + src.height > dst.height:
                    raise SystemExit(f"corridor of {name} does not fit in the tile")
                for _, win in src.block_windows(1):
                    m = src.dataset_mask(window=win) > 0
                    if not m.any():
                        continue
                    data = src.read(window=win)
                    dwin = Window(win.col_off + ox, win.row_off + oy, win.width, win.height)
                    cur = dst.read(window=dwin)
                    dst.write(np.where(m[None], data, cur), window=dwin)
                dst.update_tags(SYNTHETIC="yes", GENERATOR="queuemeasure benchmarks/speed.py",
                                DESCRIPTION="SYNTHETIC speed benchmark tile: textured background, "
                                "corridor rendered by queuemeasure.synth")
        os.replace(part, tile)
        road_path = tile.with_suffix(".road.geojson")
        road_path.write_text(json.dumps({"type": "LineString",
                                         "coordinates": [list(map(float, p)) for p in ll]}))
    case = Case(name=name, tile=str(tile), road=str(road_path), head=f"{float(ll[0, 0])!r},{float(ll[0, 1])!r}",
                queue_km=queue_m / 1000, road_km=road_m / 1000, gsd_m=gsd, width=width,
                height=height, truth_km=float(truth.length_km))
    meta.write_text(json.dumps(asdict(case)))
    log(f"  ... {time.perf_counter() - t0:.0f} s")
    return case


def build_striped(case: Case, *, log) -> Case:
    """An untiled (striped, DEFLATE) copy of ``case``'s tile."""
    import rasterio
    import rasterio.shutil

    src = Path(case.tile)
    out = src.with_name(src.stem + "-striped.tif")
    if not out.exists():
        t0 = time.perf_counter()
        log(f"  building {out.name} (striped copy) ...")
        part = out.with_name(out.name + ".part")
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=1024):
            rasterio.shutil.copy(src, part, driver="GTiff", tiled=False, compress="DEFLATE",
                                 predictor=2, zlevel=1, bigtiff="YES", num_threads="ALL_CPUS")
        os.replace(part, out)
        log(f"  ... {time.perf_counter() - t0:.0f} s")
    d = asdict(case)
    d.update(name=case.name + "-striped", tile=str(out), tiled=False)
    return Case(**d)


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    out: dict
    stderr: str = ""


# A small launcher runs each measured process: Linux keeps a process's peak RSS across
# exec, so a child forked straight from this (large) process would report this process's
# peak. The launcher is small; it forks and execs the command and reports the command's
# own rusage (os.wait4) and wall time as JSON on its stderr's last line.
_LAUNCHER = r"""
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
sys.stderr.write("\n" + json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                  "maxrss_kb": ru.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}) + "\n")
"""


def run_child(argv: list[str], *, timeout: float = 1800.0, env: dict | None = None) -> Run:
    """Run ``argv`` as a fresh process; wall, CPU and peak RSS of that process (``wait4``'s
    rusage: CPU adds the worker processes it forks and reaps, peak RSS is the largest)."""
    # this checkout's queuemeasure, not whichever one the environment has installed
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    p = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv], capture_output=True,
                       text=True, timeout=timeout, cwd=tempfile.gettempdir(),
                       env={**os.environ, **(env or {}), "PYTHONPATH": path})
    lines = p.stderr.rstrip().splitlines()
    try:
        ru = json.loads(lines[-1])
    except (json.JSONDecodeError, IndexError):
        raise SystemExit(f"launcher failed: {' '.join(argv)}\n{p.stderr[-2000:]}") from None
    stderr = "\n".join(lines[:-1])
    if ru["code"] != 0:
        raise SystemExit(f"failed ({ru['code']}): {' '.join(argv)}\n{stderr[-2000:]}")
    stdout = p.stdout
    try:
        data = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    except (json.JSONDecodeError, IndexError):
        data = {"stdout": stdout[-500:]}
    return Run(ru["wall"], ru["cpu"], ru["maxrss_kb"] / 1024.0, data, stderr)


def best_of(argv: list[str], repeats: int, env: dict | None = None) -> Run:
    runs = [run_child(argv, env=env) for _ in range(repeats)]
    return min(runs, key=lambda r: r.wall_s)


_READ_WHOLE = r"""
import json, sys, time
import rasterio
with rasterio.open(sys.argv[1]) as ds:
    t0 = time.perf_counter(); a = ds.read(); t1 = time.perf_counter()
print(json.dumps({"inner_s": t1 - t0, "shape": list(a.shape), "nbytes": int(a.nbytes)}))
"""

_DECODE = r"""
import json, sys, time
import numpy as np
import rasterio
from rasterio.windows import Window
from queuemeasure.raster import block_shape, choose_bands
ids = json.load(open(sys.argv[2]))
with rasterio.open(sys.argv[1]) as ds:
    bands = choose_bands(ds)
    bh, bw, _ = block_shape(ds)
    nbx = -(-ds.width // bw)
    t0 = time.perf_counter()
    for bid in ids:
        by, bx = divmod(bid, nbx)
        r0, c0 = by * bh, bx * bw
        win = Window(c0, r0, min(bw, ds.width - c0), min(bh, ds.height - r0))
        ds.read(bands, window=win)
        ds.dataset_mask(window=win)
    t1 = time.perf_counter()
print(json.dumps({"inner_s": t1 - t0, "blocks": len(ids)}))
"""

# In-process measure(), imports done first; hot steps timed by wrapping them (those that
# run in this process: with worker processes, detection is not among them); the ids of
# the blocks decoded are saved for the decode-only case.
_MEASURE_INPROC = r"""
import json, sys, time, warnings
t_imp = time.perf_counter()
import numpy as np, rasterio, scipy.ndimage, skimage.measure, shapely, pyproj
import queuemeasure as qm
from queuemeasure import pipeline, corridor, detect
t_imp = time.perf_counter() - t_imp
acc = {}
def wrap(mod, name, key):
    f = getattr(mod, name)
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t
    setattr(mod, name, g)
ids = []
read_block = corridor.BlockSampler._read_block
def rb(self, bid):
    ids.append(int(bid))
    return read_block(self, bid)
corridor.BlockSampler._read_block = rb
wrap(corridor.BlockSampler, "ensure", "decode_blocks")
wrap(corridor.BlockSampler, "sample", "sample_incl_decode")
wrap(corridor, "_sample_points", "sample_points")
wrap(corridor, "coverage_chords", "coverage")
wrap(detect, "detect_vehicles", "detect")
wrap(pipeline, "prepare_road", "road")
used = []
resolve = pipeline.resolve_workers
def rw(*a, **k):
    n = resolve(*a, **k)
    used.append(n)
    return n
pipeline.resolve_workers = rw
head = tuple(float(v) for v in sys.argv[3].split(","))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    r = qm.measure(sys.argv[1], sys.argv[2], head=head, detector=sys.argv[5])
    t1 = time.perf_counter()
json.dump(ids, open(sys.argv[4], "w"))
print(json.dumps({"inner_s": t1 - t0, "imports_s": t_imp, "steps": acc,
                  "workers": max(used[1:], default=0), "detector": r.detector,
                  "length_km": r.length_km, "vehicle_count": r.vehicle_count,
                  "blocks_read": r.blocks_read, "truncated": r.truncated}))
"""

_IMPORT = "import queuemeasure"


def qm_exe() -> list[str]:
    exe = shutil.which("queuemeasure")
    if exe and Path(exe).resolve().parent == Path(sys.executable).resolve().parent:
        return [exe]
    here = Path(sys.executable).parent / "queuemeasure"
    if here.exists():
        return [str(here)]
    return [sys.executable, "-m", "queuemeasure.cli.main"]


def warm(path: str) -> None:
    """Read a file once so that it sits in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def measure_case(case: Case, repeats: int, *, whole_read: bool, log, one_process: bool = False,
                 detector: str = "auto") -> dict:
    py = sys.executable
    warm(case.tile)
    rows: dict = {"case": asdict(case)}
    with tempfile.TemporaryDirectory() as td:
        ids_path = str(Path(td) / "ids.json")
        inproc = [py, "-c", _MEASURE_INPROC, case.tile, case.road, case.head, ids_path, detector]
        r = best_of(inproc, repeats)
        rows["measure_inproc"] = _row(r)
        if one_process:
            # the same on one core: no detection worker processes
            o = best_of(inproc, repeats, env={"QUEUEMEASURE_WORKERS": "1"})
            rows["measure_inproc_1proc"] = _row(o)
        d = best_of([py, "-c", _DECODE, case.tile, ids_path], repeats)
        rows["decode_corridor"] = _row(d)
    c = best_of(qm_exe() + ["measure", case.tile, "--road", case.road, "--head", case.head, "--json",
                            "--detector", detector], repeats)
    rows["measure_cli"] = _row(c, keep=("length_km", "vehicle_count", "truncated"))
    rows["measure_cli"]["warnings"] = [ln for ln in c.stderr.splitlines() if "arning" in ln][:3]
    if whole_read:
        w = best_of([py, "-c", _READ_WHOLE, case.tile], max(1, min(repeats, 2)))
        rows["read_whole"] = _row(w)
    log(f"  {case.name}: measure {c.wall_s:.2f} s / {c.peak_rss_mb:.0f} MB, in-process "
        f"{r.out['inner_s']:.2f} s, decode {d.out['inner_s']:.2f} s ({d.out['blocks']} blocks)"
        + (f", whole read {rows['read_whole']['inner_s']:.2f} s" if whole_read else ""))
    return rows


def interleaved(case: Case, rounds: int, *, log) -> dict:
    """``rounds`` rounds of (whole-tile read, ``measure`` with each detector), each process
    fresh: on a shared machine the load drifts, so each ratio is taken within its round and
    the spread over the rounds is reported."""
    warm(case.tile)
    cli = qm_exe() + ["measure", case.tile, "--road", case.road, "--head", case.head, "--json"]
    runs: dict[str, list] = {"read_whole": [], "learned": [], "rules": []}
    for k in range(rounds):
        runs["read_whole"].append(_row(run_child([sys.executable, "-c", _READ_WHOLE, case.tile])))
        for det in ("learned", "rules"):
            runs[det].append(_row(run_child(cli + ["--detector", det]),
                                  keep=("length_km", "vehicle_count", "detector")))
        log(f"  round {k + 1}: whole read {runs['read_whole'][-1]['inner_s']:.2f} s, learned "
            f"{runs['learned'][-1]['wall_s']:.2f} s, rules {runs['rules'][-1]['wall_s']:.2f} s")
    summary = {}
    for det in ("learned", "rules"):
        r = sorted(m["wall_s"] / w["inner_s"] for m, w in zip(runs[det], runs["read_whole"]))
        rss = max(m["peak_rss_mb"] for m in runs[det]) / 1024.0
        summary[det] = {"ratio_min": r[0], "ratio_median": r[len(r) // 2], "ratio_max": r[-1],
                        "peak_rss_gb_max": rss}
    return {"case": asdict(case), "runs": runs, "summary": summary}


def _row(r: Run, keep: tuple[str, ...] | None = None) -> dict:
    out = r.out if keep is None else {k: r.out.get(k) for k in keep}
    return {"wall_s": round(r.wall_s, 4), "cpu_s": round(r.cpu_s, 4),
            "peak_rss_mb": round(r.peak_rss_mb, 1), **out}


# ----------------------------------------------------------------------------- report


def git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ratios(res: dict, ref: str, series: list[str], fine: str | None, striped: str | None) -> dict:
    cases = res["cases"]
    R = cases[ref]
    whole = R["read_whole"]["inner_s"]
    out = {
        "cli_wall_over_whole_read": R["measure_cli"]["wall_s"] / whole,
        "cli_peak_rss_gb": R["measure_cli"]["peak_rss_mb"] / 1024.0,
        "inproc_over_decode": R["measure_inproc"]["inner_s"] / R["decode_corridor"]["inner_s"],
        "inproc_1proc_over_decode": (R["measure_inproc_1proc"]["inner_s"]
                                     / R["decode_corridor"]["inner_s"]),
        "import_s": res["startup"]["import"]["wall_s"],
        "help_s": res["startup"]["help"]["wall_s"],
    }
    if len(series) >= 2:
        a, b = cases[series[-2]], cases[series[-1]]
        out["longest_over_half_inproc"] = b["measure_inproc"]["inner_s"] / a["measure_inproc"]["inner_s"]
        out["longest_over_half_cli"] = b["measure_cli"]["wall_s"] / a["measure_cli"]["wall_s"]
        out["series"] = {n: cases[n]["measure_inproc"]["inner_s"] / cases[n]["case"]["road_km"]
                         for n in series}   # seconds per km of road
    if fine:
        f = cases[fine]
        out["fine_over_ref_inproc"] = f["measure_inproc"]["inner_s"] / R["measure_inproc"]["inner_s"]
        out["fine_expected"] = (R["case"]["gsd_m"] / f["case"]["gsd_m"]) ** 2
    if striped:
        out["striped_peak_rss_gb"] = cases[striped]["measure_cli"]["peak_rss_mb"] / 1024.0
        out["striped_warns"] = any("not tiled" in w for w in cases[striped]["measure_cli"]["warnings"])
    return out


TARGETS = {
    "cli_wall_over_whole_read": ("<=", 0.25),
    "cli_peak_rss_gb": ("<=", 0.6),
    "inproc_over_decode": ("<=", 3.0),
    "longest_over_half_inproc": ("<=", 2.3),
    "import_s": ("<=", 0.5),
    "help_s": ("<=", 0.5),
    "striped_peak_rss_gb": ("<=", 0.6),
}


def table(res: dict) -> str:
    lines = [
        f"Speed benchmark ({res['mode']}, detector {res.get('detector', 'auto')}), {res['date']}, commit {res['commit']}, "
        f"{res['machine']['cpus']} cores, Python {res['machine']['python']}, GDAL {res['machine']['gdal']}",
        "",
        "| case | tile (px) | road km | what | wall s | CPU s | peak RSS MB | blocks |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for name, c in res["cases"].items():
        cs = c["case"]
        size = f"{cs['width']:,} x {cs['height']:,} @ {cs['gsd_m']} m" + ("" if cs["tiled"] else " striped")
        for what, label in (("read_whole", "whole-tile `read()` (call only)"),
                            ("decode_corridor", "decode corridor blocks (loop only)"),
                            ("measure_inproc", "`measure()` in process (no imports)"),
                            ("measure_inproc_1proc", "the same, one process (`QUEUEMEASURE_WORKERS=1`)"),
                            ("measure_cli", "`queuemeasure measure` process")):
            if what not in c:
                continue
            r = c[what]
            wall = r.get("inner_s", r["wall_s"])
            blocks = r.get("blocks", r.get("blocks_read", ""))
            lines.append(f"| {name} | {size} | {cs['road_km']:g} | {label} | {wall:.2f} | "
                         f"{r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {blocks} |")
    s = res["startup"]
    lines.append(f"| startup | | | `import queuemeasure` | {s['import']['wall_s']:.2f} | "
                 f"{s['import']['cpu_s']:.2f} | {s['import']['peak_rss_mb']:.0f} | |")
    lines.append(f"| startup | | | `queuemeasure --help` | {s['help']['wall_s']:.2f} | "
                 f"{s['help']['cpu_s']:.2f} | {s['help']['peak_rss_mb']:.0f} | |")
    lines += ["", "CPU s is the whole process's with the detection workers it forks, peak RSS "
              "the largest of them; wall s is the call's for the first kinds of row and the "
              "whole process's for the last.", "",
              "| ratio | value | target |", "|---|---:|---|"]
    for k, v in res["ratios"].items():
        if isinstance(v, dict):
            v = ", ".join(f"{n}: {x:.3f}" for n, x in v.items())
            lines.append(f"| {k} (s per km, in process) | {v} | about constant |")
            continue
        tgt = TARGETS.get(k)
        if k == "fine_over_ref_inproc":
            tgt_s = f"<= about {res['ratios']['fine_expected']:.2f}"
        elif k == "fine_expected":
            continue
        else:
            tgt_s = f"{tgt[0]} {tgt[1]}" if tgt else ""
        val = f"{v:.3f}" if not isinstance(v, bool) else ("yes" if v else "NO")
        lines.append(f"| {k} | {val} | {tgt_s} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run (< 60 s)")
    ap.add_argument("--repeats", type=int, default=None, help="runs per case (best is kept)")
    ap.add_argument("--out", type=Path, default=None, help="JSON output path")
    ap.add_argument("--only", default=None,
                    help="comma-separated case names (e.g. q20km: the reference case alone); "
                    "only these tiles are built")
    ap.add_argument("--detector", default="auto", choices=("auto", "rules", "learned"),
                    help="vehicle detector measured (auto: the learned one on these colour tiles)")
    ap.add_argument("--interleave", type=int, default=0, metavar="N",
                    help="instead: N rounds of (whole read, measure --detector learned, "
                    "measure --detector rules) on the reference case; ratios per round")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    import rasterio

    if args.quick:
        region = Region(4000.0, 2000.0, 4500.0, 150.0)
        series = [(2000.0, 500.0), (4000.0, 500.0)]
        fine = None
        repeats = args.repeats or 1
        ref = "q4km"
    else:
        region = Region(20000.0, 10000.0, 41500.0, 400.0)
        series = [(5000.0, 1500.0), (10000.0, 1500.0), (20000.0, 1500.0), (40000.0, 1500.0)]
        fine = 0.3
        repeats = args.repeats or 3
        ref = "q20km"
    names = [f"q{q / 1000:g}km" for q, _ in series]
    only = set(args.only.split(",")) if args.only else ({ref} if args.interleave else None)
    log(f"building (or finding) tiles in {cache_root()} ...")
    cases: dict[str, Case] = {}
    def wanted(name: str) -> bool:
        return only is None or name in only

    for (q, free), n in zip(series, names):
        if wanted(n) or (n == ref and wanted(n + "-striped")):
            cases[n] = build_case(n, region, 0.5, q, free, log=log)
    striped = None
    if wanted(ref + "-striped"):
        striped = build_striped(cases[ref], log=log)
        cases[striped.name] = striped
    fine_name = None
    if fine and wanted(f"{ref}-{fine}m"):
        fine_name = f"{ref}-{fine}m"
        q, free = series[names.index(ref)]
        cases[fine_name] = build_case(fine_name, region, fine, q, free, log=log)

    if args.interleave:
        res = {"date": datetime.date.today().isoformat(), "commit": git_head(),
               "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
               **interleaved(cases[ref], args.interleave, log=log)}
        out = args.out or HERE / "results" / f"speed_{ref}_interleaved.json"
        out.write_text(json.dumps(res, indent=1) + "\n")
        for det, v in res["summary"].items():
            print(f"{ref} {det}: measure / whole read {v['ratio_min']:.3f} (min), "
                  f"{v['ratio_median']:.3f} (median), {v['ratio_max']:.3f} (max) over "
                  f"{args.interleave} rounds; peak RSS {v['peak_rss_gb_max']:.2f} GB (target 0.25, 0.6 GB)")
        log(f"wrote {out}")
        return 0
    log("measuring ...")
    res: dict = {
        "mode": "quick" if args.quick else "full",
        "date": datetime.date.today().isoformat(),
        "commit": git_head(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "gdal": rasterio.__gdal_version__, "platform": platform.platform(),
                    "loadavg": os.getloadavg()},
        "repeats": repeats,
        "detector": args.detector,
        "cases": {},
    }
    for name, case in cases.items():
        if only and name not in only:
            continue
        res["cases"][name] = measure_case(case, repeats if case.tiled else 1,
                                          whole_read=(name == ref), log=log,
                                          one_process=(name == ref), detector=args.detector)
    res["startup"] = {
        "import": _row(best_of([sys.executable, "-c", _IMPORT], max(3, repeats))),
        "help": _row(best_of(qm_exe() + ["--help"], max(3, repeats))),
    }
    done = res["cases"]
    if ref in done:
        res["ratios"] = ratios(res, ref, [n for n in names if n in done],
                               fine_name if fine_name in done else None,
                               striped.name if striped and striped.name in done else None)
    else:
        res["ratios"] = {}
    stem = "speed_quick" if args.quick else "speed"
    if only:
        stem += "_" + "-".join(sorted(only))
    if args.detector != "auto":
        stem += "_" + args.detector
    out = args.out or HERE / "results" / (stem + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(table(res))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
