"""The quicklook picture: what was measured, for a person to check by eye.

One picture (:func:`write_quicklook`; PNG, JPEG, PDF or SVG by extension) with

A. a map of the searched road with the queue drawn on it, head and tail marked, the
   excerpt frames, a scale bar and a north arrow, drawn on the tile's own grid with equal
   ground metres across and along (pixel coordinates, so a rotated or geographic grid is
   right too);
B. full-resolution excerpts at the head, at the tail and at the worst occluded stretch,
   every detected vehicle outlined (queued / not queued / below threshold);
C. the occupancy profile: vehicles per 100 m against km from the head, with the queue,
   the tail's ``length_km_range``, the occluded stretches and the end of the observed road;
D. a caption with the length, its range, the count, metres per vehicle, truncation, pixel
   size and CRS.

Pixels come from ``result.tile`` again: small windowed reads around the excerpts and a
decimated (``out_shape``) read of the map, chunk by chunk and only near the road, capped
at :data:`OVERVIEW_MAX_PX` on the long side -- never a full-resolution read of the tile.
matplotlib is imported inside the functions (it is the optional ``plot`` extra);
:func:`write_quicklook` draws on an Agg canvas and never touches pyplot's state.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import geo
from .errors import OutputError, QueueMeasureError

if TYPE_CHECKING:  # pragma: no cover
    from .result import QueueResult

__all__ = ["write_quicklook", "plot_result", "quicklook_figure", "thumbnail", "OVERVIEW_MAX_PX"]

#: Longest side, in pixels, of the decimated map image.
OVERVIEW_MAX_PX = 1500
#: Ground width of an excerpt (metres), within the pixel bounds below.
EXCERPT_GROUND_M = 90.0
EXCERPT_MIN_PX, EXCERPT_MAX_PX = 96, 520
#: Source pixels per side of one chunk of the decimated map read.
_CHUNK_PX = 1024

#: One lane, bumper to bumper, at 7 m per vehicle.
_JAM_PER_100M = 100.0 / 7.0

C_QUEUE = "#ff3b1f"
C_QUEUED = "#ffd21f"
C_FREE = "#19e3ff"
C_WEAK = "#f0f0f0"
C_HEAD = "#21c45a"
C_TAIL = "#ff3b1f"
C_OCC = "#c03cff"
C_ROAD = "#ffffff"


# ------------------------------------------------------------------------ data
@dataclass
class _Excerpt:
    key: str
    title: str
    centre_px: np.ndarray                      # (col, row) full-resolution
    window: tuple[int, int, int, int] | None   # col0, row0, col1, row1 (clipped)
    image: np.ndarray | None = None            # (h, w, 4) RGBA float
    side_px: int = 0
    view: tuple[float, float, float, float] = (0, 1, 1, 0)  # col0, col1, row1, row0 shown


@dataclass
class _Scene:
    """Everything drawn, in the tile's full-resolution pixel coordinates (col, row)."""

    width: int
    height: int
    gsd_xy: tuple[float, float]                # ground metres per pixel step along col, row
    road_px: np.ndarray                        # searched side, (N, 2)
    road_station: np.ndarray                   # geodesic metres from the head, (N,)
    road_lonlat: np.ndarray
    other_px: list[np.ndarray]                 # the other side(s) of the head
    queue_px: np.ndarray
    head_px: np.ndarray
    tail_px: np.ndarray | None
    vehicles_px: list[np.ndarray]
    north: tuple[float, float]                 # unit vector of north, (dcol, drow)
    lonlat_to_px: Any
    overview: np.ndarray | None = None         # RGBA float
    overview_extent: tuple[float, float, float, float] | None = None
    map_box: tuple[float, float, float, float] = (0, 0, 1, 1)  # col0, col1, row0, row1
    excerpts: list[_Excerpt] = field(default_factory=list)
    road_exact: bool = True                    # False: only the queue line was known


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise QueueMeasureError(
            "quicklook pictures need matplotlib: pip install 'queuemeasure[plot]'"
        ) from None


def _searched_road(result: "QueueResult", road: Any, road_crs: Any) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], bool]:
    """lon/lat and stations of the searched side, the other side(s), and whether exact.

    Uses ``result.profile["road_lonlat"]`` (+ ``"road_station_m"``, ``"other_road_lonlat"``)
    when the pipeline provides them, else the ``road`` given here, else only the queue line.
    """
    prof = result.profile or {}
    if prof.get("road_lonlat") is not None:
        ll = np.asarray(prof["road_lonlat"], dtype=float).reshape(-1, 2)
        st = prof.get("road_station_m")
        st = np.asarray(st, float) if st is not None else _stations(ll)
        others = [np.asarray(o, float).reshape(-1, 2) for o in prof.get("other_road_lonlat") or []]
        return ll, st, others, True
    if road is not None:
        from .road import prepare_road

        sides = prepare_road(road, crs=road_crs, head=result.head_lonlat, direction="both",
                             max_head_distance_m=1e9)
        keep = [p for p in sides.sides if p.side == result.direction] or sides.sides[:1]
        others = [p.lonlat for p in sides.sides if p is not keep[0]]
        return keep[0].lonlat, keep[0].station_m, others, True
    q = np.asarray(result.queue_lonlat, dtype=float).reshape(-1, 2)
    if len(q) >= 2:
        start = min((v.s0_m for v in result.queued), default=0.0)
        ll = np.vstack([np.asarray(result.head_lonlat, float)[None], q])
        st = np.concatenate([[0.0], start + _stations(q)])
        return ll, st, [], False
    h = np.asarray(result.head_lonlat, float)[None]
    return np.vstack([h, h]), np.array([0.0, 0.0]), [], False


def _stations(ll: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(geo.geodesic_segment_lengths(ll[:, 0], ll[:, 1]))])


def _at_station(ll: np.ndarray, st: np.ndarray, s: float) -> np.ndarray:
    return np.array([np.interp(s, st, ll[:, 0]), np.interp(s, st, ll[:, 1])])


def _densify(px: np.ndarray, step: float) -> np.ndarray:
    """The polyline ``px`` with points added so that none is more than ``step`` apart."""
    if len(px) < 2:
        return px
    d = np.diff(px, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(d[:, 0], d[:, 1]) / step).astype(np.int64))
    seg = np.repeat(np.arange(len(d)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + 1  # 1..n in each segment
    t = (k / np.repeat(n, n))[:, None]
    return np.vstack([px[:1], px[seg] + d[seg] * t])


def _display_bands(ds: Any, result: "QueueResult") -> list[int]:
    from .raster import choose_bands

    bands = (result.profile or {}).get("bands")
    try:
        return choose_bands(ds, bands)
    except Exception:
        return choose_bands(ds, None)


class _Stretch:
    """Percentile stretch of display values to 0..1, fitted once per picture."""

    def __init__(self) -> None:
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None

    def fit(self, data: np.ndarray, mask: np.ndarray) -> None:
        if self.lo is not None or not mask.any():
            return
        v = data[:, mask].astype(np.float64)
        if v.shape[1] > 400_000:
            v = v[:, :: v.shape[1] // 400_000 + 1]
        # one stretch for all bands, so that grey stays grey
        lo = float(np.percentile(v, 0.5, axis=1).min())
        hi = float(np.percentile(v, 99.5, axis=1).max())
        if data.dtype == np.uint8:  # 8-bit is display-ready: stretch gently
            lo = 0.5 * lo
        hi = hi if hi > lo else lo + 1.0
        self.lo = np.full(v.shape[0], lo)
        self.hi = np.full(v.shape[0], hi)

    def rgba(self, data: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(bands, h, w) raw + (h, w) mask -> (h, w, 4) float RGBA (nodata transparent)."""
        self.fit(data, mask)
        lo = self.lo if self.lo is not None else np.zeros(data.shape[0])
        hi = self.hi if self.hi is not None else np.ones(data.shape[0])
        x = (data.astype(np.float32) - lo[:, None, None].astype(np.float32)) / (hi - lo)[:, None, None].astype(np.float32)
        x = np.clip(x, 0, 1)
        if x.shape[0] == 1:
            x = np.repeat(x, 3, axis=0)
        out = np.empty(x.shape[1:] + (4,), np.float32)
        out[..., :3] = np.moveaxis(x[:3], 0, -1)
        out[..., 3] = mask
        return out


def _gather(result: "QueueResult", road: Any, road_crs: Any, *, overview: bool,
            excerpts: Sequence[str], max_px: int = OVERVIEW_MAX_PX,
            map_ratio: float | None = None, near_px: float | None = None,
            max_reads: int | None = None) -> _Scene:
    from .raster import ground_pixel_size, open_tile

    ll, st, others, exact = _searched_road(result, road, road_crs)
    with open_tile(result.tile) as ds:
        to_crs = geo.transformer(geo.WGS84, ds.crs)
        inv = ~ds.transform

        def lonlat_to_px(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a, dtype=float).reshape(-1, 2)
            x, y = to_crs.transform(a[:, 0], a[:, 1])
            x, y = np.asarray(x, float), np.asarray(y, float)
            return np.column_stack([inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f])

        head_px = lonlat_to_px(np.asarray(result.head_lonlat))[0]
        hx, hy = to_crs.transform(*result.head_lonlat)
        gsd_xy = ground_pixel_size(ds, (hx, hy))
        lon0, lat0 = result.head_lonlat
        npx = lonlat_to_px(np.array([[lon0, lat0], [lon0, lat0 + 1e-4]]))
        d = npx[1] - npx[0]
        north = tuple(d / (np.hypot(*d) or 1.0))
        vehicles_px = []
        if result.vehicles:
            rings = [np.asarray(v.footprint_lonlat, float).reshape(-1, 2) for v in result.vehicles]
            allpx = lonlat_to_px(np.vstack(rings))
            cut = np.cumsum([len(r) for r in rings])[:-1]
            vehicles_px = np.split(allpx, cut)
        q = np.asarray(result.queue_lonlat, float).reshape(-1, 2)
        sc = _Scene(
            width=ds.width, height=ds.height, gsd_xy=(float(gsd_xy[0]), float(gsd_xy[1])),
            road_px=lonlat_to_px(ll), road_station=np.asarray(st, float), road_lonlat=ll,
            other_px=[lonlat_to_px(o) for o in others],
            queue_px=lonlat_to_px(q) if len(q) else np.zeros((0, 2)),
            head_px=head_px,
            tail_px=lonlat_to_px(np.asarray(result.tail_lonlat))[0] if result.tail_lonlat else None,
            vehicles_px=vehicles_px, north=(float(north[0]), float(north[1])),
            lonlat_to_px=lonlat_to_px, road_exact=exact,
        )
        sc.map_box = _map_box(sc, map_ratio)
        bands = _display_bands(ds, result)
        stretch = _Stretch()
        if overview:
            _read_overview(ds, bands, sc, stretch, max_px, near_px, max_reads)
        for key in excerpts:
            ex = _plan_excerpt(result, sc, key)
            if ex is not None:
                if key == "reference":
                    _read_reference_excerpt(ds, result, ex)
                else:
                    _read_excerpt(ds, bands, ex, stretch)
                sc.excerpts.append(ex)
    return sc


def _map_box(sc: _Scene, ratio: float | None = None) -> tuple[float, float, float, float]:
    """The map's extent (col0, col1, row0, row1): the road on the tile, queue and head.

    ``ratio`` (width / height on screen) widens the shorter side to fill the axes.
    """
    pts = [sc.road_px, *sc.other_px]
    allp = np.vstack(pts)
    inside = (allp[:, 0] >= 0) & (allp[:, 0] <= sc.width) & (allp[:, 1] >= 0) & (allp[:, 1] <= sc.height)
    dense = _densify(sc.road_px, max(2.0, 20.0 / max(sc.gsd_xy[0], 1e-6)))
    dinside = (dense[:, 0] >= 0) & (dense[:, 0] <= sc.width) & (dense[:, 1] >= 0) & (dense[:, 1] <= sc.height)
    keep = [sc.head_px[None]]
    if dinside.any():
        keep.append(dense[dinside])
    if inside.any():
        keep.append(allp[inside])
    if len(sc.queue_px):
        keep.append(sc.queue_px)
    if sc.tail_px is not None:
        keep.append(sc.tail_px[None])
    k = np.vstack(keep)
    c0, r0 = k.min(axis=0)
    c1, r1 = k.max(axis=0)
    # at least 150 m across, plus a margin of 6 %
    cc, rc = (c0 + c1) / 2, (r0 + r1) / 2
    hw, hh = (c1 - c0) / 2, (r1 - r0) / 2
    long_m = 2 * max(hw * sc.gsd_xy[0], hh * sc.gsd_xy[1])
    if long_m < 150.0:  # at least 150 m on the long side
        k = 150.0 / max(long_m, 1e-9)
        hw, hh = max(hw * k, 1.0), max(hh * k, 1.0)
    pad = 0.06 * max(hw * sc.gsd_xy[0], hh * sc.gsd_xy[1])
    hw += pad / sc.gsd_xy[0]
    hh += pad / sc.gsd_xy[1]
    if ratio:
        wm, hm = hw * sc.gsd_xy[0], hh * sc.gsd_xy[1]  # ground metres
        if wm / hm < ratio:
            hw = hm * ratio / sc.gsd_xy[0]
        else:
            hh = wm / ratio / sc.gsd_xy[1]
    return cc - hw, cc + hw, rc - hh, rc + hh


def _read_overview(ds: Any, bands: list[int], sc: _Scene, stretch: _Stretch, max_px: int,
                   near_px: float | None = None, max_reads: int | None = None) -> None:
    """Decimated read of the map's extent, chunk by chunk, only near the road.

    ``near_px`` (output pixels) narrows the band read around the road, in chunks of a
    block, for a thumbnail; by default the band is 12 % of the map's long side wide.
    The tile's overviews serve the decimated reads when it has them; without overviews,
    more than ``max_reads`` chunks to read leaves the map without an image.
    """
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    c0, c1, r0, r1 = sc.map_box
    f = max(1, int(math.ceil(max(c1 - c0, r1 - r0) / max_px)))
    cc0, rr0 = max(0, int(math.floor(c0))), max(0, int(math.floor(r0)))
    cc1, rr1 = min(sc.width, int(math.ceil(c1))), min(sc.height, int(math.ceil(r1)))
    if cc1 <= cc0 or rr1 <= rr0:
        return
    w, h = -(-(cc1 - cc0) // f), -(-(rr1 - rr0) // f)
    long_m = max((c1 - c0) * sc.gsd_xy[0], (r1 - r0) * sc.gsd_xy[1])
    if near_px is None:
        chunk = f * max(1, _CHUNK_PX // f)
        buf_px = max(150.0, 0.12 * long_m) / min(sc.gsd_xy)
    else:
        chunk = f * max(1, int(ds.block_shapes[0][1]) // f)
        buf_px = near_px * f
    plan = _chunks_near_road(sc, (cc0, cc1, rr0, rr1), chunk, buf_px)
    if max_reads is not None and len(plan) > max_reads and not ds.overviews(bands[0]):
        return
    nb = len(bands)
    data = np.zeros((nb, h, w), dtype=ds.dtypes[bands[0] - 1])
    mask = np.zeros((h, w), bool)
    rs = Resampling.average if f > 1 and near_px is None else Resampling.nearest
    for c, r, wc, wr in plan:
        win = Window(c, r, wc, wr)
        oh, ow = -(-wr // f), -(-wc // f)
        oy, ox = (r - rr0) // f, (c - cc0) // f
        oh, ow = min(oh, h - oy), min(ow, w - ox)
        d = ds.read(bands, window=win, out_shape=(nb, oh, ow), resampling=rs)
        m = ds.dataset_mask(window=win, out_shape=(oh, ow)) > 0
        if d.dtype.kind == "f":
            m &= np.isfinite(d).all(axis=0)
            d = np.where(np.isfinite(d), d, 0)
        data[:, oy:oy + oh, ox:ox + ow] = d
        mask[oy:oy + oh, ox:ox + ow] = m
    stretch.fit(data, mask)
    sc.overview = stretch.rgba(data, mask)
    sc.overview_extent = (cc0, cc0 + w * f, rr0 + h * f, rr0)


def _chunks_near_road(sc: _Scene, box: tuple[int, int, int, int], chunk: int,
                      buf_px: float) -> list[tuple[int, int, int, int]]:
    """The (col, row, width, height) chunks of ``box`` within ``buf_px`` of the road.

    Candidates are the chunks that the square of side ``2 * buf_px`` around a point of the
    road touches (vectorised); each is then kept only if a point is within ``buf_px``.
    """
    cc0, cc1, rr0, rr1 = box
    roads = [sc.road_px, *sc.other_px]
    pts = np.vstack([_densify(r, chunk / 3.0) for r in roads] + [sc.head_px[None]])
    ncx, ncy = -(-(cc1 - cc0) // chunk), -(-(rr1 - rr0) // chunk)
    lo = np.floor((pts - buf_px - (cc0, rr0)) / chunk).astype(np.int64)
    hi = np.floor((pts + buf_px - (cc0, rr0)) / chunk).astype(np.int64)
    lo, hi = np.maximum(lo, 0), np.minimum(hi, (ncx - 1, ncy - 1))
    keep = (lo <= hi).all(axis=1)
    lo, hi = lo[keep], hi[keep]
    grid = np.zeros((ncy, ncx), bool)
    span = int((hi - lo).max()) + 1 if len(lo) else 0
    for dy in range(span):
        for dx in range(span):
            cx, cy = lo[:, 0] + dx, lo[:, 1] + dy
            ok = (cx <= hi[:, 0]) & (cy <= hi[:, 1])
            grid[cy[ok], cx[ok]] = True
    plan = []
    for j, i in np.argwhere(grid):
        c, r = cc0 + int(i) * chunk, rr0 + int(j) * chunk
        wc, wr = min(chunk, cc1 - c), min(chunk, rr1 - r)
        dx = np.maximum(0, np.maximum(c - pts[:, 0], pts[:, 0] - (c + wc)))
        dy = np.maximum(0, np.maximum(r - pts[:, 1], pts[:, 1] - (r + wr)))
        if np.min(np.hypot(dx, dy)) <= buf_px:
            plan.append((c, r, wc, wr))
    return plan


def _worst_occlusion(result: "QueueResult") -> tuple[float, float] | None:
    occ = list(result.occluded_stretches_km or [])
    if occ:
        a, b = max(occ, key=lambda ab: ab[1] - ab[0])
        return a * 1000.0, b * 1000.0
    return None


def _queue_span_m(result: "QueueResult") -> tuple[float, float] | None:
    q = result.queued
    start = (result.profile or {}).get("queue_start_m")
    if getattr(result, "mode", "vehicles") == "occupancy" and start is not None:
        # occupancy mode: the chained stretches, no vehicles
        return float(start), float(start) + result.length_km * 1000.0
    if not q:
        return None
    s0 = min(v.s0_m for v in q)
    return s0, s0 + result.length_km * 1000.0


def _plan_excerpt(result: "QueueResult", sc: _Scene, key: str) -> _Excerpt | None:
    gsd = max(min(sc.gsd_xy), 1e-6)
    side = int(np.clip(round(EXCERPT_GROUND_M / gsd), EXCERPT_MIN_PX, EXCERPT_MAX_PX))
    span = _queue_span_m(result)
    if key == "head":
        centre = sc.head_px
        title = "A  head"
    elif key == "tail":
        if sc.tail_px is None or span is None:
            return None
        centre = sc.tail_px
        reason = str(result.truncation_reason or "").replace("_", " ")
        title = f"B  tail, km {span[1] / 1000:.2f}" + (f" ({reason})" if result.truncated else "")
    elif key == "reference":
        # the reference date at the tail (at the head without a queue), on the tile's grid
        centre = sc.tail_px if sc.tail_px is not None else sc.head_px
        where = f"tail, km {span[1] / 1000:.2f}" if (span is not None and sc.tail_px is not None) else "head"
        title = f"C  reference date at the {where}"
    elif key == "occlusion":
        occ = _worst_occlusion(result)
        if occ is not None:
            a, b = occ
            centre = sc.lonlat_to_px(_at_station(sc.road_lonlat, sc.road_station, (a + b) / 2))[0]
            side = int(np.clip(max(side, 1.3 * (b - a) / gsd), EXCERPT_MIN_PX, EXCERPT_MAX_PX))
            title = f"C  worst occlusion, km {a / 1000:.2f}-{b / 1000:.2f} ({b - a:.0f} m)"
        elif span is not None:
            mid = (span[0] + span[1]) / 2
            centre = sc.lonlat_to_px(_at_station(sc.road_lonlat, sc.road_station, mid))[0]
            title = f"C  mid-queue, km {mid / 1000:.2f} (no occlusion)"
        else:
            return None
    else:
        raise ValueError(f"unknown excerpt {key!r}: head, tail, occlusion or reference")
    ex = _Excerpt(key, title, np.asarray(centre, float), None, side_px=side)
    c0 = int(round(centre[0] - side / 2))
    r0 = int(round(centre[1] - side / 2))
    a0, b0 = max(0, c0), max(0, r0)
    a1, b1 = min(sc.width, c0 + side), min(sc.height, r0 + side)
    if a1 > a0 and b1 > b0:
        ex.window = (a0, b0, a1, b1)
    ex.view = (c0, c0 + side, r0 + side, r0)
    return ex


def _read_excerpt(ds: Any, bands: list[int], ex: _Excerpt, stretch: _Stretch) -> None:
    from rasterio.windows import Window

    if ex.window is None:
        return
    a0, b0, a1, b1 = ex.window
    win = Window(a0, b0, a1 - a0, b1 - b0)
    d = ds.read(bands, window=win)
    m = ds.dataset_mask(window=win) > 0
    if d.dtype.kind == "f":
        m &= np.isfinite(d).all(axis=0)
        d = np.where(np.isfinite(d), d, 0)
    ex.image = stretch.rgba(d, m)


def _read_reference_excerpt(ds: Any, result: "QueueResult", ex: _Excerpt) -> None:
    """The reference (occupancy mode) warped onto the tile's grid in the excerpt's window
    (any CRS; GDAL's warper reads only the blocks the window needs), with its own stretch."""
    import rasterio
    from rasterio.warp import Resampling, reproject
    from rasterio.windows import Window

    from .raster import band_roles, open_tile

    ref = (result.profile or {}).get("reference")
    if ref is None or ex.window is None:
        return
    a0, b0, a1, b1 = ex.window
    win = Window(a0, b0, a1 - a0, b1 - b0)
    with open_tile(ref) as rds:
        bands = band_roles(rds).image[:3]
        out = np.full((len(bands), b1 - b0, a1 - a0), np.nan, np.float32)
        for i, b in enumerate(bands):
            reproject(source=rasterio.band(rds, b), destination=out[i],
                      dst_transform=ds.window_transform(win), dst_crs=ds.crs, dst_nodata=np.nan,
                      resampling=Resampling.bilinear)
    m = np.isfinite(out).all(axis=0)
    if rds.nodata is not None:
        m &= ~np.all(out == rds.nodata, axis=0)
    ex.image = _Stretch().rgba(np.nan_to_num(out), m)


# --------------------------------------------------------------------- drawing
def _stroke(lw: float = 3.0, colour: str = "black") -> list[Any]:
    import matplotlib.patheffects as pe

    return [pe.Stroke(linewidth=lw, foreground=colour), pe.Normal()]


def _nice(x: float) -> float:
    if x <= 0:
        return 1.0
    p = 10 ** math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * p <= x:
            return m * p
    return p


def _km(x: float, ref: float | None = None) -> str:
    """Kilometres with 3 decimals below 2 km (metres matter there), else 2."""
    return f"{x:.3f}" if (ref if ref is not None else x) < 2.0 else f"{x:.2f}"


def _fmt_m(m: float) -> str:
    return f"{m / 1000:g} km" if m >= 1000 else f"{m:g} m"


def _scale_bar(ax: Any, sc: _Scene, width_px: float, fontsize: float = 8) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    metres = _nice(0.22 * width_px * sc.gsd_xy[0])
    bar = AnchoredSizeBar(ax.transData, metres / sc.gsd_xy[0], _fmt_m(metres), "lower left",
                          pad=0.4, borderpad=0.5, sep=3, color="black", frameon=True,
                          size_vertical=max(width_px / 150, 1e-9),
                          fontproperties={"size": fontsize})
    bar.patch.set_alpha(0.75)
    ax.add_artist(bar)


def _north_arrow(ax: Any, sc: _Scene) -> None:
    """A north arrow in the upper right corner (call after limits and aspect are set)."""
    p0 = np.array([sum(ax.get_xlim()) / 2, sum(ax.get_ylim()) / 2])
    span = abs(ax.get_xlim()[1] - ax.get_xlim()[0]) * 0.05
    p1 = p0 + np.array(sc.north) * span
    d = ax.transData.transform(p1) - ax.transData.transform(p0)  # screen pixels
    d = d / (np.hypot(*d) or 1.0)
    w, h = max(ax.bbox.width, 1.0), max(ax.bbox.height, 1.0)
    size = 0.10 * min(w, h, 500.0)
    px = np.array([w, h])
    base = 1.0 - (np.array([26.0, 22.0]) + size * np.maximum(d, 0) + 0.4 * size) / px
    base = np.maximum(base, 0.5)
    tip = base + d * size / px
    ax.annotate("", xy=tip, xytext=base, xycoords="axes fraction",
                arrowprops=dict(facecolor="white", edgecolor="black", width=3, headwidth=10,
                                headlength=9))
    lab = tip + d * 11.0 / px
    ax.text(lab[0], lab[1], "N", transform=ax.transAxes, ha="center", va="center", fontsize=10,
            fontweight="bold", path_effects=_stroke(3, "white"))


def _draw_vehicles(ax: Any, result: "QueueResult", sc: _Scene, lw: float, box: tuple[float, float, float, float] | None = None) -> None:
    from matplotlib.collections import PolyCollection

    groups: dict[str, list[np.ndarray]] = {"queued": [], "free": [], "weak": []}
    for v, px in zip(result.vehicles, sc.vehicles_px):
        if box is not None:
            c = px.mean(axis=0)
            if not (box[0] - 50 <= c[0] <= box[1] + 50 and min(box[2], box[3]) - 50 <= c[1] <= max(box[2], box[3]) + 50):
                continue
        k = "queued" if v.in_queue else ("free" if v.score >= 1.0 else "weak")
        groups[k].append(px)
    style = {"queued": (C_QUEUED, "-", "vehicle in queue"), "free": (C_FREE, "-", "vehicle not in queue"),
             "weak": (C_WEAK, ":", "candidate below threshold")}
    for k, polys in groups.items():
        col, ls, label = style[k]
        if polys:
            ax.add_collection(PolyCollection(polys, closed=True, facecolors="none", edgecolors=col,
                                             linewidths=lw, linestyles=ls, label=label, zorder=4))


def _setup_image_axes(ax: Any, sc: _Scene, box: tuple[float, float, float, float]) -> None:
    ax.set_facecolor("#d9d9d9")
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(max(box[2], box[3]), min(box[2], box[3]))  # rows grow downwards
    ax.set_aspect(sc.gsd_xy[1] / sc.gsd_xy[0])
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_map(ax: Any, result: "QueueResult", sc: _Scene, *, legend: bool = True) -> None:
    import matplotlib.patches as mpatches

    c0, c1, r0, r1 = sc.map_box
    ax.set_facecolor("#d9d9d9")
    if sc.overview is not None and sc.overview_extent is not None:
        ax.imshow(sc.overview, extent=sc.overview_extent, interpolation="antialiased", zorder=1)
    ax.add_patch(mpatches.Rectangle((0, 0), sc.width, sc.height, fill=False, ec="black", lw=1.0,
                                    ls="--", zorder=2, label="tile edge"))
    for o in sc.other_px:
        ax.plot(o[:, 0], o[:, 1], color=C_ROAD, lw=1.0, ls="--", alpha=0.8, zorder=3,
                path_effects=_stroke(2.2, "#555555"))
    width_m = (c1 - c0) * sc.gsd_xy[0]
    short = width_m < 2500  # vehicles are visible: keep the road line out of their way
    ax.plot(sc.road_px[:, 0], sc.road_px[:, 1], color=C_ROAD, lw=0.8 if short else 1.3, zorder=3,
            alpha=0.7 if short else 1.0, path_effects=None if short else _stroke(2.8, "#444444"),
            label="searched road" if sc.road_exact else "queue line (road not given)")
    if short:
        _draw_vehicles(ax, result, sc, lw=0.6)
    # occluded stretches within the queue
    for a, b in result.occluded_stretches_km or []:
        s = np.linspace(a * 1000, b * 1000, 20)
        pts = sc.lonlat_to_px(np.column_stack([np.interp(s, sc.road_station, sc.road_lonlat[:, 0]),
                                               np.interp(s, sc.road_station, sc.road_lonlat[:, 1])]))
        ax.plot(pts[:, 0], pts[:, 1], color=C_OCC, lw=6, alpha=0.9, zorder=5, solid_capstyle="butt")
    if len(sc.queue_px) >= 2 and width_m > 2500:
        ax.plot(sc.queue_px[:, 0], sc.queue_px[:, 1], color=C_QUEUE, lw=3.2, zorder=6,
                path_effects=_stroke(5.0, "white"), label=f"queue {_km(result.length_km)} km")
    elif len(sc.queue_px) >= 2:  # vehicles are visible: a translucent band under them
        ax.plot(sc.queue_px[:, 0], sc.queue_px[:, 1], color=C_QUEUE, alpha=0.35, zorder=3.5,
                lw=float(np.clip(2000.0 / max(width_m, 1.0), 3.0, 6.0)), solid_capstyle="butt",
                label=f"queue {_km(result.length_km)} km")
    ax.plot(*sc.head_px, marker="o", ms=10, mfc=C_HEAD, mec="white", mew=2, zorder=8, ls="none",
            label="head")
    def _side(p: np.ndarray) -> tuple[float, str]:  # put labels toward the map's inside
        return (-8.0, "right") if p[0] > c0 + 0.7 * (c1 - c0) else (8.0, "left")

    dx, ha = _side(sc.head_px)
    ax.annotate("head", sc.head_px, xytext=(dx, 8), textcoords="offset points", fontsize=9, ha=ha,
                fontweight="bold", color="black", path_effects=_stroke(3, "white"), zorder=9)
    if sc.tail_px is not None:
        ax.plot(*sc.tail_px, marker="X", ms=11, mfc=C_TAIL, mec="white", mew=1.5, zorder=8, ls="none",
                label="tail" + (" (truncated)" if result.truncated else ""))
        dx, ha = _side(sc.tail_px)
        ax.annotate("tail" + (" (lower bound)" if result.truncated else ""), sc.tail_px, xytext=(dx, -14), ha=ha,
                    textcoords="offset points", fontsize=9, fontweight="bold", color="black",
                    path_effects=_stroke(3, "white"), zorder=9)
    for ex in sc.excerpts:
        v = ex.view
        ax.add_patch(mpatches.Rectangle((v[0], v[3]), v[1] - v[0], v[2] - v[3], fill=False,
                                        ec="white", lw=1.2, zorder=7))
        ax.annotate(ex.title[0], (v[1], v[3]), xytext=(2, 2), textcoords="offset points", fontsize=9,
                    fontweight="bold", color="black", path_effects=_stroke(3, "white"), zorder=9)
    _setup_image_axes(ax, sc, (c0, c1, r0, r1))
    _scale_bar(ax, sc, c1 - c0)
    if legend:
        ax.legend(loc="best", fontsize=7.5, framealpha=0.8)


def _draw_excerpt(ax: Any, result: "QueueResult", sc: _Scene, ex: _Excerpt) -> None:
    v = ex.view
    if ex.image is not None and ex.window is not None:
        a0, b0, a1, b1 = ex.window
        ax.imshow(ex.image, extent=(a0, a1, b1, b0), interpolation="nearest", zorder=1)
    else:
        ax.text(0.5, 0.5, "outside the tile", transform=ax.transAxes, ha="center", va="center")
    ax.plot(sc.road_px[:, 0], sc.road_px[:, 1], color=C_ROAD, lw=0.8, ls=(0, (6, 4)), alpha=0.7, zorder=2)
    # occluded stretches as thick translucent bands
    for a, b in result.occluded_stretches_km or []:
        s = np.linspace(a * 1000, b * 1000, 20)
        pts = sc.lonlat_to_px(np.column_stack([np.interp(s, sc.road_station, sc.road_lonlat[:, 0]),
                                               np.interp(s, sc.road_station, sc.road_lonlat[:, 1])]))
        ax.plot(pts[:, 0], pts[:, 1], color=C_OCC, lw=10, alpha=0.35, zorder=3, solid_capstyle="butt")
    _draw_vehicles(ax, result, sc, lw=1.1, box=v)
    if ex.key == "head":
        ax.plot(*sc.head_px, marker="o", ms=9, mfc=C_HEAD, mec="white", mew=2, zorder=8)
    if ex.key == "tail" and sc.tail_px is not None:
        ax.plot(*sc.tail_px, marker="X", ms=10, mfc=C_TAIL, mec="white", mew=1.5, zorder=8)
    _setup_image_axes(ax, sc, v)
    _scale_bar(ax, sc, v[1] - v[0], fontsize=7)
    ax.set_title(ex.title, fontsize=9, loc="left")


def _density(centres: np.ndarray, x: np.ndarray, w: float) -> np.ndarray:
    c = np.sort(centres)
    n = np.searchsorted(c, x + w / 2, side="right") - np.searchsorted(c, x - w / 2, side="left")
    return n * (100.0 / w)


def _draw_occupancy_profile(ax: Any, result: "QueueResult", *, compact: bool = False) -> None:
    """Occupancy mode: the evidence along the road (noise units) with its thresholds,
    the occupied stretches, the queue's extent and its range."""
    prof = result.profile or {}
    st = np.asarray(prof.get("occupancy_station_m", np.zeros(0)), float)
    sc = np.asarray(prof.get("occupancy_score", np.zeros(0)), float)
    high, low = prof.get("occupancy_threshold", (5.0, 2.0))
    km = st / 1000.0
    ax.plot(km, sc, color="0.25", lw=0.8, label="evidence (noise units)")
    for i, (a, b) in enumerate(prof.get("occupied_m") or []):
        ax.axvspan(a / 1000, b / 1000, color=C_QUEUED, alpha=0.35, lw=0,
                   label="occupied stretches" if i == 0 else None)
    ax.axhline(high, color=C_TAIL, lw=0.9, ls="--", label=f"threshold {high:g} / {low:g}")
    ax.axhline(low, color=C_TAIL, lw=0.7, ls=":")
    for i, (a, b) in enumerate(np.asarray(prof.get("occluded_m") or np.zeros((0, 2))).reshape(-1, 2)):
        ax.axvspan(a / 1000, b / 1000, color=C_OCC, alpha=0.2, lw=0,
                   label="occluded / no data" if i == 0 else None)
    ax.axvline(0, color=C_HEAD, lw=2)
    span = _queue_span_m(result)
    if span is not None and result.length_km > 0:
        lo, hi = result.length_km_range
        s0, s1 = span
        ax.axvspan((s0 + lo * 1000) / 1000, (s0 + hi * 1000) / 1000, color=C_TAIL, alpha=0.12, lw=0,
                   label=f"tail range {_km(lo, hi)}-{_km(hi)} km")
        ax.axvline(s1 / 1000, color=C_TAIL, lw=2)
        ax.annotate("", xy=(s1 / 1000, 0.93), xytext=(s0 / 1000, 0.93), xycoords=ax.get_xaxis_transform(),
                    arrowprops=dict(arrowstyle="<->", color=C_TAIL, lw=1.2))
        ax.text((s0 + s1) / 2000, 0.95, ("\u2265 " if result.truncated else "") + f"{_km(result.length_km)} km",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8,
                color=C_TAIL, fontweight="bold", path_effects=_stroke(3, "white"))
    finite = sc[np.isfinite(sc)]
    top = float(np.percentile(finite, 99)) if finite.size else high
    ax.set_ylim(min(-1.0, float(finite.min()) if finite.size else -1.0), max(2 * high, top * 1.15))
    ax.set_xlim(-0.01 * max(km.max(initial=1.0), 1e-3), km.max(initial=1.0) * 1.01)
    ax.set_xlabel(f"km from the head along the road ({result.direction})", fontsize=9)
    ax.set_ylabel("change on the carriageway\n(noise units)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right" if compact else "upper center", fontsize=7.5,
              **({} if compact else dict(bbox_to_anchor=(0.5, -0.17), ncol=6, frameon=False)))


def _draw_profile(ax: Any, result: "QueueResult", *, compact: bool = False) -> None:
    if getattr(result, "mode", "vehicles") == "occupancy":
        _draw_occupancy_profile(ax, result, compact=compact)
        return
    prof = result.profile or {}
    span = _queue_span_m(result)
    lo, hi = result.length_km_range
    obs_end = float(prof.get("observed_end_m") or 0.0)
    s_max = max([obs_end, 1.0] + [v.s1_m for v in result.vehicles]
                + ([span[0] + hi * 1000.0] if span else []))
    x_end = s_max * 1.03
    w = 100.0 if x_end > 2000 else (50.0 if x_end > 400 else 25.0)
    x = np.linspace(0, x_end, 1200)
    cen = np.array([(v.s0_m + v.s1_m) / 2 for v in result.vehicles if v.score >= 1.0 or v.in_queue])
    qcen = np.array([(v.s0_m + v.s1_m) / 2 for v in result.vehicles if v.in_queue])
    km = x / 1000.0
    if len(cen):
        ax.plot(km, _density(cen, x, w), color="0.45", lw=1.0, label="all detections")
    if len(qcen):
        ax.fill_between(km, _density(qcen, x, w), color=C_QUEUED, alpha=0.85, lw=0, step=None,
                        label=f"queued vehicles ({result.vehicle_count})")
    ax.axhline(_JAM_PER_100M, color="0.3", lw=0.8, ls=":", label="1 lane, 7 m per vehicle")
    # occluded stretches (all on the searched side; the ones inside the queue darker)
    occ_all = np.asarray(prof.get("occluded_m") or np.zeros((0, 2)), float).reshape(-1, 2)
    first = True
    for a, b in occ_all:
        ax.axvspan(a / 1000, b / 1000, color=C_OCC, alpha=0.15, lw=0,
                   label="occluded / no data" if first else None)
        first = False
    for i, (a, b) in enumerate(result.occluded_stretches_km or []):
        ax.axvspan(a, b, color=C_OCC, alpha=0.4, lw=0, label="occluded in queue" if i == 0 else None)
    ax.axvline(0, color=C_HEAD, lw=2)
    ax.text(0, 1.01, " head", transform=ax.get_xaxis_transform(), color=C_HEAD, fontsize=8,
            fontweight="bold", va="bottom")
    if span is not None:
        s0, s1 = span
        t_lo, t_hi = s0 + lo * 1000.0, s0 + hi * 1000.0
        ax.axvspan(t_lo / 1000, t_hi / 1000, ymin=0, ymax=1, color=C_TAIL, alpha=0.15, lw=0,
                   label=f"tail range {_km(lo, hi)}-{_km(hi)} km")
        ax.axvline(s1 / 1000, color=C_TAIL, lw=2)
        near_end = s1 > 0.85 * x_end
        ax.text(s1 / 1000, 1.01, "tail" + (" (truncated)" if result.truncated else "") + (" " if near_end else ""),
                transform=ax.get_xaxis_transform(), color=C_TAIL, fontsize=8, fontweight="bold",
                va="bottom", ha="right" if near_end else "center")
        ax.annotate("", xy=(s1 / 1000, 0.93), xytext=(s0 / 1000, 0.93),
                    xycoords=ax.get_xaxis_transform(),
                    arrowprops=dict(arrowstyle="<->", color=C_TAIL, lw=1.2))
        ax.text((s0 + s1) / 2000, 0.95,
                ("\u2265 " if result.truncated else "") + f"{_km(result.length_km)} km",transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8, color=C_TAIL, fontweight="bold",
                path_effects=_stroke(3, "white"))
    if obs_end > 0 and prof.get("end_reason") in ("image_edge", "nodata"):
        ax.axvline(obs_end / 1000, color="black", lw=1.2, ls="--")
        ax.text(obs_end / 1000, 0.5, " end of " + ("image" if prof["end_reason"] == "image_edge" else "valid data"),
                transform=ax.get_xaxis_transform(), rotation=90, va="center", ha="right", fontsize=8)
    ax.set_xlim(-0.01 * x_end / 1000, x_end / 1000)
    ymax = max(_JAM_PER_100M * 1.6, float(_density(cen, x, w).max()) * 1.25 if len(cen) else 0)
    ax.set_ylim(0, ymax)
    ax.set_xlabel(f"km from the head along the road ({result.direction})", fontsize=9)
    ax.set_ylabel(f"vehicles per 100 m\n({w:g} m window)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if compact:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    else:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=7.5, ncol=7,
                  frameon=False, handlelength=1.5, columnspacing=1.2)


def _caption(result: "QueueResult") -> str:
    lo, hi = result.length_km_range
    bound = "at least " if result.truncated else ""
    mpv = f"{result.m_per_vehicle:.1f} m per vehicle" if result.m_per_vehicle else "no vehicles queued"
    est = getattr(result, "vehicle_count_estimate", None)
    counted = (f"an estimated {est[0]}-{est[1]} vehicles (occupancy mode)" if est is not None
               else f"{result.vehicle_count} vehicles, {mpv}")
    lines = [
        ("LOW CONFIDENCE (see notes)   " if getattr(result, "low_confidence", False) else "")
        + f"Queue length {bound}{_km(result.length_km)} km  (range {_km(lo, hi)}-{_km(hi)} km)   "
        f"{counted}   max gap {result.max_gap_m:g} m",
    ]
    if result.truncated:
        reason = str(result.truncation_reason or "").replace("_", " ")
        lines.append(f"TRUNCATED at the {reason}: the queue may go on; the length is a lower bound.")
    else:
        lines.append("Not truncated: the queue ends inside the observed road.")
    occ = result.occluded_stretches_km or []
    crs = result.raster_crs if len(result.raster_crs) < 40 else "custom (WKT)"
    lines.append(
        f"Occluded within the queue {result.occluded_km:.2f} km in {len(occ)} stretch(es).   "
        f"Pixel {result.gsd_m:.2f} m, CRS {crs}, lengths geodesic (WGS84).   "
        f"Searched {result.road_km_searched:.2f} km of road, {result.direction} of the head."
    )
    return "\n".join(lines)


def _axes_ratio(ax: Any) -> float:
    bb = ax.get_position()
    w, h = ax.figure.get_size_inches()
    return float(bb.width * w / max(bb.height * h, 1e-9))


def quicklook_figure(result: "QueueResult", *, road: Any = None, road_crs: Any = None,
                     figsize: tuple[float, float] = (16.0, 10.0)) -> Any:
    """Build the quicklook as a matplotlib ``Figure`` on an Agg canvas (no pyplot).

    Parameters
    ----------
    result : QueueResult
    road : road source, optional
        The road given to :func:`queuemeasure.measure`, to draw all of the searched road;
        not needed when the result carries it (``result.profile["road_lonlat"]``).
        Without either, only the queue line is drawn.
    road_crs : CRS-like, optional
        CRS of ``road`` (default WGS84).
    figsize : (float, float)
        Inches.
    """
    _need_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=None)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(3, 2, width_ratios=[1.45, 3], height_ratios=[1.0, 0.78, 0.24],
                          left=0.015, right=0.985, top=0.93, bottom=0.015, wspace=0.06, hspace=0.32)
    ax_map = fig.add_subplot(gs[0:2, 0])
    gs_ex = gs[0, 1].subgridspec(1, 3, wspace=0.12)
    gs_pr = gs[1, 1].subgridspec(1, 1)
    third = ("reference" if getattr(result, "mode", "vehicles") == "occupancy"
             and (result.profile or {}).get("reference") else "occlusion")
    sc = _gather(result, road, road_crs, overview=True, excerpts=("head", "tail", third),
                 map_ratio=_axes_ratio(ax_map))
    _draw_map(ax_map, result, sc)
    ax_map.set_title("Map of the searched road", fontsize=10, loc="left")
    for i in range(3):
        ax = fig.add_subplot(gs_ex[0, i])
        if i < len(sc.excerpts):
            _draw_excerpt(ax, result, sc, sc.excerpts[i])
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, "no queue: nothing more to show", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9)
    ax_prof = fig.add_subplot(gs_pr[0, 0])
    pos = ax_prof.get_position()
    ax_prof.set_position([pos.x0 + 0.03, pos.y0, pos.width - 0.03, pos.height])
    _draw_profile(ax_prof, result)
    ax_prof.set_title("Occupancy along the road", fontsize=10, loc="left", pad=14)
    fig.canvas.draw()
    _north_arrow(ax_map, sc)
    ax_cap = fig.add_subplot(gs[2, :])
    ax_cap.axis("off")
    ax_cap.text(0.0, 0.95, _caption(result), va="top", ha="left", fontsize=10.5, family="monospace",
                transform=ax_cap.transAxes)
    name = os.path.basename(str(result.tile)) or str(result.tile)
    title = f"queuemeasure quicklook: {name}"
    fig.suptitle(title, x=0.015, ha="left", fontsize=13, fontweight="bold")
    if result.synthetic:
        fig.text(0.985, 0.965, "SYNTHETIC IMAGE - not a real scene", ha="right", va="center",
                 fontsize=12, fontweight="bold", color="white",
                 bbox=dict(facecolor="#c0392b", edgecolor="none", pad=4))
    _verdict_banner(fig, result)
    from ._version import __version__

    fig.text(0.985, 0.005, f"queuemeasure {__version__}; excerpts at full resolution; "
             "yellow = queued, cyan = not queued, dotted = below threshold",
             ha="right", va="bottom", fontsize=7, color="0.35")
    return fig


_VERDICT_COLOURS = {"consistent": "#1e8449", "contradicted": "#c0392b", "lower_bound": "#b9770e",
                    "cannot_tell": "#5d6d7e"}


def _verdict_banner(fig: Any, result: "QueueResult") -> None:
    """The verdict on a claim (set by ``queuemeasure check`` in ``result.profile``)."""
    banner = result.profile.get("verdict_banner")
    if banner:
        colour = _VERDICT_COLOURS.get(str(result.profile.get("verdict")), "#5d6d7e")
        text = banner if len(banner) <= 130 else banner[:127] + "..."
        fig.text(0.015, 0.032, text, ha="left", va="center", fontsize=10, fontweight="bold",
                 color="white", bbox=dict(facecolor=colour, edgecolor="none", pad=3))


def write_quicklook(result: "QueueResult", path: str | os.PathLike[str], *, road: Any = None,
                    road_crs: Any = None, dpi: float = 100.0, overwrite: bool = False) -> str:
    """Write the quicklook picture of ``result`` to ``path`` (atomically).

    Parameters
    ----------
    result : QueueResult
    path : path-like
        Output picture; its extension chooses the format: PNG, JPEG (.jpg/.jpeg), PDF
        or SVG (see :data:`queuemeasure.formats.IMAGE_FORMATS`).
    road, road_crs : optional
        See :func:`quicklook_figure`.
    dpi : float
        Resolution; the picture is 16 x 10 inches (1600 x 1000 px at the default 100).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    OutputFormatError
        When the extension is not that of a picture format.
    OutputError
        When ``path`` exists and ``overwrite`` is false, or cannot be written. Nothing
        is left behind when drawing or writing fails.
    """
    from .export import atomic_writer, check_output_path
    from .formats import image_format, savefig_kwargs

    fmt = image_format(path)
    check_output_path(path, overwrite=overwrite, inputs=[result.tile])
    if not 10 <= float(dpi) <= 600:
        raise OutputError(f"dpi must be between 10 and 600, not {dpi}")
    fig = quicklook_figure(result, road=road, road_crs=road_crs)
    with atomic_writer(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, dpi=dpi, **savefig_kwargs(fmt))
    return os.fspath(path)


def plot_result(result: "QueueResult", ax: Any = None, *, what: str = "map", road: Any = None,
                road_crs: Any = None) -> Any:
    """Draw one panel of the quicklook on a matplotlib ``ax`` and return the ax.

    Parameters
    ----------
    result : QueueResult
    ax : matplotlib Axes, optional
        Created with ``pyplot.subplots`` when not given.
    what : {"map", "profile", "head", "tail", "occlusion"}
        The map with the queue, the occupancy profile, or a full-resolution excerpt.
    road, road_crs : optional
        See :func:`quicklook_figure`.
    """
    _need_matplotlib()
    if what not in ("map", "profile", "head", "tail", "occlusion"):
        raise ValueError(f"what must be map, profile, head, tail or occlusion, not {what!r}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(9, 3.2) if what == "profile" else (7, 7))
    if what == "profile":
        _draw_profile(ax, result, compact=True)
        return ax
    sc = _gather(result, road, road_crs, overview=what == "map",
                 excerpts=() if what == "map" else (what,),
                 map_ratio=_axes_ratio(ax) if what == "map" else None)
    if what == "map":
        _draw_map(ax, result, sc)
        ax.figure.canvas.draw()
        _north_arrow(ax, sc)
    elif sc.excerpts:
        _draw_excerpt(ax, result, sc, sc.excerpts[0])
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, f"nothing to show at the {what}", ha="center", va="center",
                transform=ax.transAxes)
    return ax


#: Side of the thumbnail, in pixels; the width of the band read around the road in
#: thumbnail pixels (a decimated read of the blocks there only); and, for a tile without
#: overviews, the most chunks (about a block each) read for its image.
THUMBNAIL_PX = 280
_THUMB_NEAR_PX = 3.0
THUMBNAIL_MAX_READS = 120


def thumbnail(result: "QueueResult", *, size_px: int = THUMBNAIL_PX, quality: int = 70) -> bytes:
    """A small JPEG of the quicklook's map: the searched road, the queue, head and tail.

    Made for ``QueueResult._repr_html_``: a decimated read (the tile's overviews when
    it has them) of only the blocks within a few thumbnail pixels of the road, and the
    picture is a few tens of kB. Without overviews, a long road (more than
    :data:`THUMBNAIL_MAX_READS` chunks of about a block to decode) or a remote tile gets
    the lines on a grey ground, with no image: at that scale the road is a pixel wide and
    the read would cost seconds. Vehicles are drawn only when the map is short enough for
    them to be seen.

    Parameters
    ----------
    result : QueueResult
    size_px : int
        Width and height of the picture in pixels.
    quality : int
        JPEG quality (1-95).

    Returns
    -------
    bytes
        The JPEG file's bytes.
    """
    _need_matplotlib()
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 80.0
    fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    sc = _gather(result, None, None, overview=_overview_is_cheap(result.tile), excerpts=(),
                 max_px=size_px, map_ratio=1.0, near_px=_THUMB_NEAR_PX,
                 max_reads=THUMBNAIL_MAX_READS)
    _draw_map(ax, result, sc, legend=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": int(quality), "optimize": True})
    return buf.getvalue()


def _overview_is_cheap(tile: str) -> bool:
    """Whether a decimated read of the map is cheap: a local file, or a tile with overviews."""
    t = str(tile)
    if "://" not in t and not t.startswith("/vsi"):
        return True
    from .raster import open_tile

    with open_tile(t) as ds:
        return bool(ds.overviews(1))
