"""Bytes over HTTP: a 20 km road on a full 10 980 x 10 980 Sentinel-2-like tile (issue 16).

A SYNTHETIC Sentinel-2 L2A tile set (B02, B03, B04, B08 at 10 m, uint16; SCL at 20 m,
uint8; COGs with 512 x 512 DEFLATE tiles, like Earth Search's) is made once and cached
under ``~/.cache/queuemeasure-bench/http_reads`` (or ``$QUEUEMEASURE_BENCH_CACHE``; about
2.5 minutes the first time); its pixels are noise, so that each block compresses to about
the size of a real one (~1.1 bytes a pixel).
The tests' HTTP server (tests/httpserver.py: range requests, counts requests and bytes)
serves it on 127.0.0.1, with a STAC item whose assets point at it, and ``measure`` reads
the item through GDAL's /vsicurl/.

Printed: the blocks the corridor needed (those the corridor code decoded, per file), their
compressed bytes, the bytes and requests fetched (headers apart), the ratio, and the same
for a second run in the same process (what GDAL's caches spared); writes
``benchmarks/results/http_reads.json`` (``http_reads_quick.json``).

    python benchmarks/http_reads.py [--quick] [--road-km 20] [--runs 2]

``--quick``: a 5 km road on a 4 096 px tile set (~15 s cold).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BLOCK = 512
X0, Y0 = 399960.0, 4800000.0  # a UTM 38N tile corner, as Sentinel-2's are (x 399960)
EPSG = 32638
CACHE = Path(os.environ.get("QUEUEMEASURE_BENCH_CACHE", Path.home() / ".cache" / "queuemeasure-bench")) / "http_reads"
RESULTS = ROOT / "benchmarks" / "results"
BANDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "scl": "SCL"}


def make_tileset(out: Path, size: int) -> dict[str, Path]:
    """The SYNTHETIC COGs (cached): noise blocks, one 512-row strip at a time."""
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import from_origin

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    rng = np.random.default_rng(16)
    for i, (key, name) in enumerate(BANDS.items()):
        dst = out / f"{name}.tif"
        paths[key] = dst
        if dst.exists():
            continue
        scl = key == "scl"
        n, res = (size // 2, 20.0) if scl else (size, 10.0)
        dtype = "uint8" if scl else "uint16"
        tmp = out / f"{name}.tmp.tif"
        prof = dict(driver="GTiff", width=n, height=n, count=1, dtype=dtype, crs=f"EPSG:{EPSG}",
                    transform=from_origin(X0, Y0, res, res), tiled=True, blockxsize=BLOCK,
                    blockysize=BLOCK, compress="DEFLATE", nodata=0)
        # one strip of noise, shifted per strip: blocks differ, compress like real ones
        strip = (4 if scl else 1200 + 300 * i) + (np.zeros((BLOCK, n), np.int64) if scl
                                                   else rng.integers(0, 256, (BLOCK, n)))
        with rasterio.open(tmp, "w", **prof) as ds:
            ds.update_tags(SYNTHETIC="yes", NOTE="SYNTHETIC Sentinel-2-like band (benchmarks/http_reads.py)")
            for r0 in range(0, n, BLOCK):
                h = min(BLOCK, n - r0)
                ds.write(np.roll(strip, r0 // BLOCK * 37, axis=1)[:h].astype(dtype), 1,
                         window=((r0, r0 + h), (0, n)))
        part = out / f"{name}.part.tif"
        rio_copy(tmp, part, driver="COG", blocksize=BLOCK, compress="DEFLATE", overviews="NONE")
        os.replace(part, dst)  # never a half-made file in the cache
        tmp.unlink()
    return paths


def road_lonlat(km: float, size: int) -> list[list[float]]:
    """A winding road of ``km`` (geodesic), in lon/lat, from a quarter of the tile above its
    foot northward."""
    from pyproj import Transformer

    from queuemeasure import geo

    ext = size * 10.0
    s = np.arange(0.0, km * 1000.0 * 1.2, 25.0)
    x = X0 + 0.55 * ext + 1800.0 * np.sin(s / 2500.0) + 0.15 * s
    y = Y0 - 0.75 * ext + 0.95 * s
    lon, lat = Transformer.from_crs(EPSG, 4326, always_xy=True).transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    seg = geo.geodesic_segment_lengths(lon, lat)
    keep = np.concatenate([[True], np.cumsum(seg) <= km * 1000.0])
    return [[float(a), float(b)] for a, b in zip(lon[keep], lat[keep])]


def tile_bytes(path: Path) -> dict[tuple[int, int], int]:
    """Compressed size of every tile of a COG, by (block row, block col)."""
    import rasterio

    sizes = {}
    with rasterio.open(path) as ds:
        nb = -(-ds.width // BLOCK)
        for r in range(-(-ds.height // BLOCK)):
            for c in range(nb):
                sizes[(r, c)] = int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))
    return sizes


def instrument() -> dict[str, set[tuple[int, int]]]:
    """Record the blocks the corridor code decodes, per band description."""
    from queuemeasure import corridor

    seen: dict[str, set[tuple[int, int]]] = defaultdict(set)
    orig = corridor.BlockSampler._read_block

    def read_block(self, bid):  # noqa: ANN001
        by, bx = divmod(int(bid), self.nbx)
        for b in self.bands:
            seen[self.ds.descriptions[b - 1] or str(b)].add((by, bx))
        return orig(self, bid)

    corridor.BlockSampler._read_block = read_block
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 km on a 4 096 px tile set")
    ap.add_argument("--road-km", type=float, default=None)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    size = 4096 if args.quick else 10980
    km = args.road_km or (5.0 if args.quick else 20.0)

    from httpserver import RangeServer
    from stacfix import make_item

    from queuemeasure.pipeline import measure

    t0 = time.perf_counter()
    paths = make_tileset(CACHE / str(size), size)
    print(f"tile set: {size} x {size} px at 10 m (SCL {size // 2} at 20 m), {BLOCK} px DEFLATE tiles; "
          f"{sum(p.stat().st_size for p in paths.values()) / 1e6:.0f} MB in {CACHE} "
          f"({time.perf_counter() - t0:.1f} s to make or find)")
    road = {"type": "LineString", "coordinates": road_lonlat(km, size)}
    seen = instrument()
    sizes = {k: tile_bytes(p) for k, p in paths.items()}
    with RangeServer() as srv:
        hrefs = {k: srv.add_file(f"/s2/{p.name}", p) for k, p in paths.items()}
        item = make_item(hrefs, item_id="S2_BENCH_SYNTHETIC", when="2022-09-26T08:00:00Z",
                         size=size, x0=X0, y0=Y0, crs=EPSG)
        srv.add_route("/s2/item.json", lambda m, p, q, b: (200, "application/json", json.dumps(item).encode()))
        url = srv.url("/s2/item.json")
        runs = []
        for run in range(1, args.runs + 1):
            srv.reset_stats()
            seen.clear()
            t = time.perf_counter()
            r = measure(url, road, head=tuple(road["coordinates"][0]), direction="forward")
            dt = time.perf_counter() - t
            runs.append(report(run, r, srv.stats, seen, sizes, paths, dt))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("http_reads_quick.json" if args.quick else "http_reads.json")
    out.write_text(json.dumps({"tile_px": size, "block_px": BLOCK, "road_km": km,
                               "tileset_bytes": sum(p.stat().st_size for p in paths.values()),
                               "runs": runs}, indent=1) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


def report(run, result, stats, seen, sizes, paths, dt) -> dict:  # noqa: ANN001
    print(f"\nrun {run}: {result.road_km_searched:.1f} km of road, mode {result.mode}, "
          f"{dt:.1f} s, {stats.requests} requests, {stats.bytes / 1e6:.2f} MB")
    print(f"{'file':<8}{'blocks':>7}{'of':>6}{'corridor MB':>13}{'fetched MB':>12}{'header KB':>11}"
          f"{'requests':>10}{'ratio':>7}")
    tot_need = tot_got = 0
    files = {}
    for key, name in BANDS.items():
        file_sizes = sizes[key]
        first = _first_tile(paths[key])
        blocks = {(r // 2, c // 2) for r, c in seen.get(name, set())} if key == "scl" else seen.get(name, set())
        need = sum(file_sizes[b] for b in blocks)
        hits = [h for h in stats.for_path(f"/s2/{paths[key].name}") if h.method == "GET"]
        header = body = 0
        for h in hits:
            a, b = (int(v) for v in h.range.split("=")[1].split("-"))
            header += max(0, min(b + 1, first) - a)
            body += max(0, b + 1 - max(a, first))
        tot_need += need
        tot_got += body
        ratio = f"{body / need:.2f}" if need else "-"
        print(f"{name:<8}{len(blocks):>7}{len(file_sizes):>6}{need / 1e6:>13.2f}{body / 1e6:>12.2f}"
              f"{header / 1e3:>11.1f}{len(hits):>10}{ratio:>7}")
        files[name] = {"blocks": len(blocks), "blocks_in_file": len(file_sizes), "corridor_bytes": need,
                       "fetched_block_bytes": body, "header_bytes": header, "requests": len(hits)}
    if tot_need:
        print(f"{'all':<8}{'':>7}{'':>6}{tot_need / 1e6:>13.2f}{tot_got / 1e6:>12.2f}{'':>11}{'':>10}"
              f"{tot_got / tot_need:>7.2f}   (target: fetched <= 2 x the corridor's blocks)")
    return {"run": run, "seconds": dt, "requests": stats.requests, "bytes": stats.bytes,
            "mode": result.mode, "corridor_bytes": tot_need, "fetched_block_bytes": tot_got,
            "ratio": tot_got / tot_need if tot_need else None, "files": files}


def _first_tile(path: Path) -> int:
    """Where the first tile starts: the bytes before it are the COG's header."""
    import rasterio

    with rasterio.open(path) as ds:
        return int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))


if __name__ == "__main__":
    main()
