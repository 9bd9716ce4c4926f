"""A small painter of test GeoTIFFs: vehicles at known stations along a curved road.

Independent of ``queuemeasure.synth`` on purpose (a second renderer keeps the detector
honest): a road of a given tone, grass beside it, a dashed centre line, and rectangles
of many colours at known along-road intervals, rendered at 3x and area-averaged, in any
CRS. The truth queue is computed by the DESIGN.md rule from the painted intervals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from scipy.spatial import cKDTree

from queuemeasure import geo

COLOURS = np.array([
    [0.92, 0.92, 0.93], [0.08, 0.08, 0.09], [0.45, 0.46, 0.48], [0.70, 0.71, 0.73],
    [0.15, 0.25, 0.60], [0.65, 0.10, 0.10], [0.93, 0.93, 0.90], [0.12, 0.12, 0.12],
], dtype=np.float32)


@dataclass
class PaintedScene:
    path: Path
    road_path: Path
    head: tuple[float, float]
    intervals: np.ndarray  # (N, 2) s0, s1 along the road (geodesic ≈ local metres)
    offsets: np.ndarray
    length_m: float        # truth queue length
    count: int


def centreline(length_m: float, kind: str = "curve") -> np.ndarray:
    """A road in a local metric frame starting at (0, 0), heading north."""
    s = np.linspace(0, length_m, int(length_m // 2) + 2)
    if kind == "straight":
        return np.column_stack([np.zeros_like(s), s])
    x = 60.0 * np.sin(s / 150.0)
    y = s
    xy = np.column_stack([x, y])
    # rescale so that the arc length is length_m
    seg = np.hypot(*np.diff(xy, axis=0).T)
    return xy * (length_m / seg.sum())


def truth_chain(iv: np.ndarray, max_gap: float) -> tuple[float, int]:
    order = np.argsort(iv[:, 0])
    reach, start, n = 0.0, None, 0
    for a, b in iv[order]:
        if a - reach > max_gap:
            break
        start = a if start is None else start
        reach = max(reach, b)
        n += 1
    return (reach - start if n else 0.0), n


def paint_scene(
    tmp: Path,
    *,
    crs: str = "utm",
    gsd: float = 0.5,
    road_len: float = 600.0,
    queue_len: float = 300.0,
    kind: str = "curve",
    head_lonlat: tuple[float, float] = (44.631, 42.768),
    seed: int = 0,
    name: str = "scene",
    extent_m: float | None = None,
    max_gap: float = 50.0,
    road_tone: float = 0.33,
    dtype: str = "uint8",
    bands: int = 3,
) -> PaintedScene:
    rng = np.random.default_rng(seed)
    local = geo.local_metric_crs(*head_lonlat)
    xy = centreline(road_len, kind)
    chord = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    # vehicles: one lane (offset -1.75), bumper gaps 1-5 m
    iv, offs = [], []
    s = 3.0
    while s < queue_len:
        L = rng.uniform(4.2, 4.9) if rng.random() > 0.08 else rng.uniform(9, 14)
        iv.append((s, s + L))
        offs.append(-1.75 + rng.uniform(-0.2, 0.2))
        s += L + rng.uniform(1.0, 5.0)
    # a few free vehicles far beyond the tail
    for extra in (queue_len + 120, queue_len + 200):
        if extra + 5 < road_len - 20:
            iv.append((extra, extra + 4.5))
            offs.append(1.75)
    iv_a = np.array(iv) if iv else np.zeros((0, 2))
    offs_a = np.array(offs)
    cols = COLOURS[rng.integers(0, len(COLOURS), len(iv_a))]

    # raster grid in the target CRS
    if crs == "utm":
        dst = geo.utm_crs(*head_lonlat)
    else:
        dst = geo.parse_crs(crs)
    to_dst = geo.transformer(local, dst)
    pad = 30.0
    ext_xy = xy if extent_m is None else xy[chord <= extent_m]
    bx, by = to_dst.transform(
        np.concatenate([ext_xy[:, 0] - pad, ext_xy[:, 0] + pad]),
        np.concatenate([ext_xy[:, 1] - pad, ext_xy[:, 1] + pad]),
    )
    lon0, lat0 = head_lonlat
    if dst.is_geographic:
        px = gsd / (111320.0 * np.cos(np.radians(lat0)))
        py = gsd / 110574.0
    elif dst.to_epsg() == 3857:
        px = py = gsd / np.cos(np.radians(lat0))
    else:
        px = py = gsd
    west, east, south, north = min(bx), max(bx), min(by), max(by)
    width = int(np.ceil((east - west) / px))
    height = int(np.ceil((north - south) / py))
    transform = from_origin(west, north, px, py)

    # pixel centres at 3x supersampling -> local -> (s, o)
    ss = 3
    # reproject a coarse grid exactly and interpolate it (the map is smooth at this scale)
    from scipy.ndimage import map_coordinates

    cs = 16
    gc = np.arange(0, width + cs, cs, dtype=float)
    gr = np.arange(0, height + cs, cs, dtype=float)
    GC, GR = np.meshgrid(gc, gr)
    gx, gy = geo.transformer(dst, local).transform(west + GC.ravel() * px, north - GR.ravel() * py)
    gx = np.asarray(gx).reshape(GC.shape)
    gy = np.asarray(gy).reshape(GC.shape)
    jj, ii = np.meshgrid((np.arange(width * ss) + 0.5) / ss, (np.arange(height * ss) + 0.5) / ss)
    coords = np.array([ii.ravel() / cs, jj.ravel() / cs])
    lx = map_coordinates(gx, coords, order=1, mode="nearest")
    ly = map_coordinates(gy, coords, order=1, mode="nearest")
    dense_c = np.arange(0, chord[-1], 0.25)
    dxy = np.column_stack([np.interp(dense_c, chord, xy[:, 0]), np.interp(dense_c, chord, xy[:, 1])])
    tree = cKDTree(dxy)
    dist, k = tree.query(np.column_stack([lx, ly]), workers=-1, distance_upper_bound=8.0)
    near = np.isfinite(dist)
    k = np.clip(np.where(near, k, 1), 1, len(dxy) - 2)
    t = dxy[k + 1] - dxy[k - 1]
    t /= np.hypot(t[:, 0], t[:, 1])[:, None]
    d = np.column_stack([lx, ly]) - dxy[k]
    s_ = dense_c[k] + (d * t).sum(1)
    o_ = t[:, 0] * d[:, 1] - t[:, 1] * d[:, 0]  # positive = left

    img = np.empty((s_.size, 3), np.float32)
    grass = np.array([0.28, 0.36, 0.18], np.float32)
    img[:] = grass + rng.normal(0, 0.03, (s_.size, 1)).astype(np.float32)
    on_road = near & (np.abs(o_) <= 3.8) & (s_ > -2) & (s_ < chord[-1] + 2)
    img[on_road] = road_tone
    dash = on_road & (np.abs(o_) < 0.08) & ((s_ % 12.0) < 3.0)
    img[dash] = 0.85
    road_idx = np.flatnonzero(on_road)
    road_idx = road_idx[np.argsort(s_[road_idx])]
    rs = s_[road_idx]
    for (a, b), o, c in zip(iv_a, offs_a, cols):
        cand = road_idx[np.searchsorted(rs, a):np.searchsorted(rs, b)]
        oc = o_[cand]
        m = cand[np.abs(oc - o) <= 0.9]
        img[m] = c
        ws = m[(s_[m] >= a + 0.25 * (b - a)) & (s_[m] < a + 0.38 * (b - a))]
        img[ws] = img[ws] * 0.35
    img = img.reshape(height * ss, width * ss, 3)
    img = img.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    if dtype == "uint16":
        data = (img * 2047).round().astype(np.uint16)
    else:
        data = (img * 254 + 1).round().astype(np.uint8)
    if bands == 1:
        data = data.mean(axis=2, keepdims=True).astype(data.dtype)

    out = tmp / f"{name}.tif"
    prof = dict(driver="GTiff", width=width, height=height, count=data.shape[2], dtype=data.dtype,
                crs=dst.to_wkt(), transform=transform, tiled=True, blockxsize=256, blockysize=256,
                compress="deflate")
    with rasterio.open(out, "w", **prof) as ds:
        ds.write(np.moveaxis(data, -1, 0))
    lon, lat = geo.transformer(local, geo.WGS84).transform(xy[:, 0], xy[:, 1])
    road_path = tmp / f"{name}.road.geojson"
    road_path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {
        "type": "LineString", "coordinates": np.column_stack([lon, lat]).tolist()}}))
    keep = iv_a[:, 1] <= (extent_m if extent_m is not None else np.inf) if len(iv_a) else np.zeros(0, bool)
    # geodesic stations equal local chord lengths to < 1e-4 here (AEQD at the head)
    L, n = truth_chain(iv_a[keep] if len(iv_a) else iv_a, max_gap)
    return PaintedScene(out, road_path, (float(lon[0]), float(lat[0])), iv_a, offs_a, L, n)


def blank_across_road(scene: PaintedScene, s0_m: float, s1_m: float) -> None:
    """Set to nodata (0) the rows of ``scene``'s tile between stations s0 and s1 of its road."""
    import queuemeasure as qm

    ll = qm.prepare_road(scene.road_path, head=scene.head).sides[0].lonlat_at(np.array([s0_m, s1_m]))
    with rasterio.open(scene.path, "r+") as ds:
        ds.nodata = 0
        x, y = geo.transformer(4326, ds.crs).transform(ll[:, 0], ll[:, 1])
        rows, _ = rasterio.transform.rowcol(ds.transform, x, y)
        data = ds.read()
        data[:, min(rows):max(rows), :] = 0
        ds.write(data)
