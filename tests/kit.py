"""The KIT AIS Munich frames as GeoTIFFs with a local transform, and their box truth.

The frames are not georeferenced: they get a nominal 0.12 m pixel (an estimate from car
sizes, see realdata SOURCE.md) in UTM 32N near Munich. The road centreline runs along the
upper carriageway, 33 px south of the kerb-side parking line fitted through the labelled
parked cars; the head is the stop line at x = 330 px.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from skimage.transform import resize

from queuemeasure import geo

KIT = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "kit_ais_munich_queue"
FRAMES = ["MOS155", "MOS160", "MOS170", "MOS179"]
GSD = 0.12
W, H = 1764, 430
HEAD_X = 330.0
ORIGIN = (691000.0, 5335000.0)  # UTM 32N, Munich
UTM32 = "EPSG:32632"


@dataclass
class KitFrame:
    name: str
    tif: Path
    road: dict
    head: tuple[float, float]
    boxes_px: np.ndarray        # (N, 4) x0, y0, x1, y1 in full-resolution pixels
    classes: np.ndarray
    centre_y: tuple[float, float]  # centreline y at x=0 and slope


def _boxes(name: str) -> tuple[np.ndarray, np.ndarray]:
    b = np.loadtxt(KIT / f"{name}.txt", ndmin=2)
    cx, cy, w, h = b[:, 1] * W, b[:, 2] * H, b[:, 3] * W, b[:, 4] * H
    return np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), b[:, 0].astype(int)


def _centreline(boxes: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    # the kerb-side parked row: the northernmost cars east of x = 560 in the band 160-250
    m = (cx > 560) & (cy > 160) & (cy < 250) & (classes == 0)
    xs, ys = cx[m], cy[m]
    # keep the upper envelope (parked row), drop second-lane cars
    slope, icpt = np.polyfit(xs, ys, 1)
    resid = ys - (slope * xs + icpt)
    keep = resid < 8
    slope, icpt = np.polyfit(xs[keep], ys[keep], 1)
    return icpt + 33.0, slope


def px_to_map(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ORIGIN[0] + np.asarray(x) * GSD, ORIGIN[1] - np.asarray(y) * GSD


def make_frame(name: str, out_dir: Path, gsd: float = GSD) -> KitFrame:
    """Write ``name`` as a GeoTIFF at ``gsd`` (area-averaged when coarser than 0.12 m)."""
    img = np.asarray(Image.open(KIT / f"{name}.png").convert("RGB"))
    if gsd > GSD:
        shape = (int(round(H * GSD / gsd)), int(round(W * GSD / gsd)))
        img = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True)
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    px = GSD * W / w
    py = GSD * H / h
    tif = out_dir / f"{name}_{gsd:.2f}.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8",
                       crs=UTM32, transform=from_origin(ORIGIN[0], ORIGIN[1], px, py),
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate") as ds:
        ds.write(np.moveaxis(img, -1, 0))
        ds.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                          rasterio.enums.ColorInterp.blue]
    boxes, classes = _boxes(name)
    y0, slope = _centreline(boxes, classes)
    xs = np.array([HEAD_X, W + 400.0])  # the road goes on beyond the frame, as in OSM
    mx, my = px_to_map(xs, y0 + slope * xs)
    lon, lat = geo.transformer(UTM32, 4326).transform(mx, my)
    road = {"type": "LineString", "coordinates": np.column_stack([lon, lat]).tolist()}
    return KitFrame(name, tif, road, (float(lon[0]), float(lat[0])), boxes, classes, (y0, slope))


def truth_queue(frame: KitFrame, *, half_width_m: float, max_gap_m: float) -> tuple[float, int, np.ndarray]:
    """Queue length (m) and count from the labelled boxes by DESIGN.md's rule.

    Returns the length, the count and a mask of the boxes on the carriageway.
    """
    y0, slope = frame.centre_y
    b = frame.boxes_px
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    cos = 1 / np.sqrt(1 + slope**2)
    offset = (cy - (y0 + slope * cx)) * cos * GSD
    along0 = (b[:, 0] - HEAD_X) * cos * GSD
    along1 = (b[:, 2] - HEAD_X) * cos * GSD
    on = (np.abs(offset) <= half_width_m) & (cx >= HEAD_X) & (frame.classes != 4)
    s0 = np.clip(along0[on], 0, None)
    s1 = along1[on]
    order = np.argsort(s0)
    reach, start, n = 0.0, None, 0
    for a, c in zip(s0[order], s1[order]):
        if a - reach > max_gap_m:
            break
        start = a if start is None else start
        reach = max(reach, c)
        n += 1
    return (reach - start if n else 0.0), n, on


if __name__ == "__main__":  # pragma: no cover - writes a preview of the geometry
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for f in FRAMES:
        fr = make_frame(f, out)
        print(f, json.dumps(fr.road)[:80], truth_queue(fr, half_width_m=6.0, max_gap_m=20.0)[:2])


def match_boxes(frame: KitFrame, result, on: np.ndarray) -> tuple[int, int, int]:
    """Match detections to boxes on the carriageway: a detection matches a box when its
    centre lies in it, one to one. Returns (true positives, detections, boxes)."""
    b = frame.boxes_px[on]
    used = np.zeros(len(b), bool)
    tp = 0
    inv = geo.transformer(4326, UTM32)
    for v in result.vehicles:
        x, y = inv.transform(*v.centre_lonlat)
        px, py = (x - ORIGIN[0]) / GSD, (ORIGIN[1] - y) / GSD
        hit = np.flatnonzero((b[:, 0] <= px) & (px <= b[:, 2]) & (b[:, 1] <= py) & (py <= b[:, 3]) & ~used)
        if hit.size:
            used[hit[0]] = True
            tp += 1
    return tp, len(result.vehicles), len(b)
