"""Scene layout: the road in the local frame, and every object placed on and beside it
(vehicles, lay-bys, trees, buildings, river bed, surface patches), plus the truth.

Layout is made once, with ``numpy.random.default_rng(seed)``, before any pixel is
rendered; rendering only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import CRS

from .. import geo
from .noise import fbm
from .roads import Centreline, generate_centreline
from .spec import SceneSpec
from .vehicles import Vehicle, chain, draw_vehicle, place_traffic

__all__ = ["Scene", "build_scene", "noise1d"]


def noise1d(s: np.ndarray, scale: float, seed: int, octaves: int = 3) -> np.ndarray:
    """Smooth 1-D noise in about [0, 1] along a station coordinate."""
    s = np.asarray(s, dtype=float)
    return fbm(s, np.zeros_like(s) + 0.5, scale, seed, octaves=octaves)


@dataclass
class Scene:
    """The laid-out scene (internal). Stations are planar metres of the local frame."""

    spec: SceneSpec
    local_crs: CRS
    head_lonlat: tuple[float, float]
    road_local: np.ndarray            # written road vertices in the local frame
    road_lonlat: np.ndarray           # the same in WGS84
    line: Centreline
    planar_at_vertex: np.ndarray
    geod_at_vertex: np.ndarray
    half_width: float
    lane_offsets: list
    vehicles: list[Vehicle]
    v_corners: np.ndarray             # (n, 4, 2) local xy footprint corners
    lut_step: float
    luts: dict                        # 1-D lookups along the road, step lut_step
    patches: np.ndarray               # (k, 5): s0, s1, o0, o1, delta
    trees: dict
    buildings: dict
    cut: tuple | None                 # (point, direction, planar station)
    style: dict
    chain_full: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    chain_visible: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    visible: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def geodesic(self, s_planar: np.ndarray) -> np.ndarray:
        """Geodesic metres from the head for planar stations."""
        return np.interp(s_planar, self.planar_at_vertex, self.geod_at_vertex)

    def planar(self, s_geod: np.ndarray) -> np.ndarray:
        """Planar stations for geodesic metres from the head."""
        return np.interp(s_geod, self.geod_at_vertex, self.planar_at_vertex)

    def lut(self, name: str, s: np.ndarray) -> np.ndarray:
        """Look up a 1-D along-road table at planar stations ``s`` (nearest sample)."""
        table = self.luts[name]
        i = np.clip((np.asarray(s) / self.lut_step).astype(np.int64), 0, table.size - 1)
        return table[i]

    def cloud_opacity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Thin-cloud opacity 0..1 at local coordinates."""
        c = self.spec.cloud
        if c <= 0:
            return np.zeros(np.shape(x), dtype=np.float32)
        n = fbm(x, y, 600.0, self.spec.seed + 901, octaves=4)
        thr = 0.62 - 0.3 * c
        return np.clip((n - thr) / 0.12, 0, 1).astype(np.float32) * np.float32(min(1.0, 0.4 + 0.6 * c))


def _road_vertices(spec: SceneSpec, rng: np.random.Generator) -> tuple[np.ndarray, CRS, tuple]:
    if spec.road_lonlat is not None:
        ll = np.asarray(spec.road_lonlat, dtype=float)
        if ll.ndim != 2 or ll.shape[0] < 2 or ll.shape[1] != 2:
            from ..errors import RoadError
            raise RoadError("road_lonlat must be a sequence of at least two (lon, lat) pairs")
        head = (float(ll[0, 0]), float(ll[0, 1]))
        local = geo.local_metric_crs(*head)
        x, y = geo.transformer(geo.WGS84, local).transform(ll[:, 0], ll[:, 1])
        return np.column_stack([x, y]), local, head
    head = (float(spec.origin_lonlat[0]), float(spec.origin_lonlat[1]))
    local = geo.local_metric_crs(*head)
    bearing = spec.road_bearing_deg
    if spec.toward_lonlat is not None:
        az, _, _ = geo.GEOD.inv(head[0], head[1], spec.toward_lonlat[0], spec.toward_lonlat[1])
        bearing = float(az)
    xy = generate_centreline(spec.road, spec.road_length_m, rng=rng, bearing_deg=bearing, step=1.0)
    # write a vertex every 4 m (and the last one); the renderer uses the same polyline
    keep = np.unique(np.concatenate([np.arange(0, len(xy), 4), [len(xy) - 1]]))
    return xy[keep], local, head


def _style(spec: SceneSpec, rng: np.random.Generator) -> dict:
    """Scene-wide appearance choices (varied per seed)."""
    if spec.surface == "concrete":
        tone = spec.asphalt_tone if spec.asphalt_tone is not None else rng.uniform(0.62, 0.74)
        tint = np.array([1.0, 1.0, 0.98]) + rng.normal(0, 0.01, 3)
    else:
        tone = spec.asphalt_tone if spec.asphalt_tone is not None else rng.uniform(0.27, 0.52)
        tint = np.array([1.0, 1.0, 1.02]) + rng.normal(0, 0.012, 3)
    return {
        "road_tone": float(tone),
        "road_tint": tint,
        "road_nir": float(tone * rng.uniform(0.95, 1.15)),
        "shadow": float(rng.uniform(0.45, 0.62)),   # multiplicative darkness of shadows
        "shadow_tint": np.array([0.92, 0.97, 1.12]),
        "marking_wear": float(rng.uniform(0.5, 1.0)),
        "edge_lines": bool(rng.random() < 0.8),
        "centre_solid": bool(rng.random() < 0.25),
        "dash": (float(rng.choice([3.0, 4.0, 6.0])), float(rng.choice([6.0, 9.0, 12.0]))),
        "shoulder": rng.choice(["gravel", "dirt", "grass"]),
        "track_dark": float(rng.uniform(0.02, 0.08)),
    }


def _luts(spec: SceneSpec, length: float, half_width: float, rng: np.random.Generator,
          seed: int, river: bool, tail: float) -> tuple[float, dict, list]:
    step = 0.5
    s = np.arange(0.0, length + step, step)
    luts = {}
    luts["edge_l"] = half_width + 0.18 * (noise1d(s, 6.0, seed + 11) - 0.5) + 0.25 * (noise1d(s, 60.0, seed + 12) - 0.5)
    luts["edge_r"] = half_width + 0.18 * (noise1d(s, 6.0, seed + 13) - 0.5) + 0.25 * (noise1d(s, 60.0, seed + 14) - 0.5)
    luts["shoulder"] = 0.6 + 1.8 * noise1d(s, 150.0, seed + 15)
    luts["tone"] = (1.0 + 0.16 * (noise1d(s, 400.0, seed + 16) - 0.5)
                    + 0.08 * (noise1d(s, 40.0, seed + 17) - 0.5)).astype(np.float32)
    # lay-bys: extra paved depth on either side
    lay_l = np.zeros_like(s)
    lay_r = np.zeros_like(s)
    laybys = []
    n = rng.poisson(spec.laybys * 1.6 * length / 1000.0)
    for _ in range(n):
        ln = rng.uniform(40, 90)
        a = rng.uniform(30, max(31.0, length - ln - 30))
        if tail > 0 and a < tail + 3 * spec.max_gap_m + 20 and a + ln > tail - 10:
            continue
        side = 1.0 if rng.random() < 0.65 else -1.0
        depth = rng.uniform(4.5, 5.5)
        taper = 10.0
        prof = np.clip(np.minimum(s - a, a + ln - s) / taper, 0, 1) * depth
        (lay_l if side > 0 else lay_r)[:] = np.maximum(lay_l if side > 0 else lay_r, prof)
        laybys.append((a, ln, side, depth))
    luts["lay_l"] = lay_l
    luts["lay_r"] = lay_r
    if river:
        side = 1.0 if rng.random() < 0.5 else -1.0
        bed = 14 + 30 * noise1d(s, 700.0, seed + 21)
        extra = 90 * noise1d(s, 1500.0, seed + 22, octaves=2) ** 2
        inner = half_width + spec.river_gap_m + np.maximum(lay_l if side > 0 else lay_r, 0)
        centre = inner + bed + extra
        luts["river_o"] = side * centre
        luts["river_bed"] = bed
        luts["water_o"] = side * centre + (bed - 6) * 1.4 * (noise1d(s, 250.0, seed + 23) - 0.5)
        luts["water_hw"] = 3.5 + 6 * noise1d(s, 300.0, seed + 24)
    return step, luts, laybys


def _patches(spec: SceneSpec, length: float, half_width: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.poisson(10 * length / 1000.0)
    out = []
    for _ in range(n):
        ln = rng.uniform(1.5, 25.0)
        a = rng.uniform(0, max(1.0, length - ln))
        if rng.random() < 0.4:
            o0, o1 = -half_width, half_width
        else:
            c = rng.choice([-1, 1]) * spec.lane_width_m / 2 + rng.normal(0, 0.4)
            w = rng.uniform(0.8, spec.lane_width_m)
            o0, o1 = c - w / 2, c + w / 2
        delta = rng.choice([-1, 1]) * rng.uniform(0.03, 0.10)
        out.append((a, a + ln, o0, o1, delta))
    return np.asarray(out, dtype=float).reshape(-1, 5)


def _footprints(line: Centreline, vehicles: list[Vehicle]) -> np.ndarray:
    if not vehicles:
        return np.zeros((0, 4, 2))
    sc = np.array([v.s_c for v in vehicles])
    oc = np.array([v.o_c for v in vehicles])
    centre = line.point(sc, oc)
    tx, ty = line.direction(sc)
    sign = np.array([-1.0 if v.towards_head else 1.0 for v in vehicles])
    yaw = np.array([v.yaw_jitter for v in vehicles])
    fx, fy = sign * tx, sign * ty
    c, s = np.cos(yaw), np.sin(yaw)
    fx, fy = fx * c - fy * s, fx * s + fy * c
    lx, ly = -fy, fx
    hl = np.array([v.length for v in vehicles]) / 2
    hw = np.array([v.width for v in vehicles]) / 2
    corners = np.empty((len(vehicles), 4, 2))
    for k, (a, b) in enumerate([(1, 1), (1, -1), (-1, -1), (-1, 1)]):
        corners[:, k, 0] = centre[:, 0] + a * hl * fx + b * hw * lx
        corners[:, k, 1] = centre[:, 1] + a * hl * fy + b * hw * ly
    return corners


def _trees(spec: SceneSpec, line: Centreline, scene_luts, half_width: float,
           rng: np.random.Generator, buildings: dict) -> dict:
    length = line.length
    n = rng.poisson(spec.tree_cover * 110 * length / 1000.0)
    s = []
    o = []
    r = []
    # groves and rows along the road, plus scattered trees; a few overhang the road
    centres = rng.uniform(0, length, max(1, n // 8))
    for _ in range(n):
        side = rng.choice([-1.0, 1.0])
        if rng.random() < 0.6:
            sc = rng.choice(centres) + rng.normal(0, 25)
        else:
            sc = rng.uniform(0, length)
        rad = rng.uniform(1.8, 5.5)
        if rng.random() < 0.10:
            oo = half_width + rng.uniform(-0.5, 2.0)          # overhanging
            rad = rng.uniform(3.0, 6.0)
        else:
            oo = half_width + rad * 0.6 + rng.uniform(1.5, max(2.0, spec.margin_m))
        s.append(sc)
        o.append(side * oo)
        r.append(rad)
    s = np.clip(np.asarray(s, float), 0, length)
    o = np.asarray(o, float)
    r = np.asarray(r, float)
    keep = np.ones(s.size, bool)
    if "river_o" in scene_luts[1] and s.size:
        i = np.clip((s / scene_luts[0]).astype(int), 0, scene_luts[1]["river_o"].size - 1)
        ro = scene_luts[1]["water_o"][i]
        keep &= np.abs(o - ro) > scene_luts[1]["water_hw"][i] + r * 0.5
    xy = line.point(s, o) if s.size else np.zeros((0, 2))
    if s.size and spec.road == "switchback":
        # placed beside one leg, a tree must not stand on another (the older road kinds
        # keep their scenes as they were)
        keep &= line.tree.query(xy)[0] >= np.abs(o) - 1.0
    if buildings["xy"].shape[0] and s.size:
        d = np.hypot(xy[:, None, 0] - buildings["xy"][None, :, 0], xy[:, None, 1] - buildings["xy"][None, :, 1])
        keep &= np.all(d > buildings["radius"][None, :] + r[:, None] * 0.5, axis=1)
    xy, r = xy[keep], r[keep]
    m = xy.shape[0]
    h = r * rng.uniform(1.6, 2.6, m) + 2.0
    green = np.stack([rng.uniform(0.15, 0.26, m), rng.uniform(0.20, 0.31, m), rng.uniform(0.13, 0.21, m)], 1)
    grey = green.mean(axis=1, keepdims=True)
    green = grey + (green - grey) * rng.uniform(0.5, 0.9, (m, 1))
    autumn = rng.random(m) < 0.15
    green[autumn] = np.stack([rng.uniform(0.34, 0.44, autumn.sum()), rng.uniform(0.32, 0.40, autumn.sum()),
                              rng.uniform(0.16, 0.22, autumn.sum())], 1)
    return {"xy": xy, "r": r, "h": h, "rgb": green, "nir": rng.uniform(0.45, 0.65, m),
            "lobes": rng.normal(0, 0.07, (m, 4)), "phase": rng.uniform(0, 2 * np.pi, (m, 4)),
            "seed": rng.integers(0, 2**31, m)}


_ROOFS = [(0.55, 0.56, 0.58), (0.32, 0.33, 0.35), (0.55, 0.30, 0.22), (0.78, 0.78, 0.76),
          (0.30, 0.45, 0.36), (0.35, 0.45, 0.62), (0.62, 0.52, 0.42)]


def _buildings(spec: SceneSpec, line: Centreline, luts: dict, half_width: float,
               rng: np.random.Generator) -> dict:
    length = line.length
    n = rng.poisson(spec.buildings * 7 * length / 1000.0)
    if spec.terrain == "urban":
        n *= 3
    rows = []
    for _ in range(n):
        ln, wd = rng.uniform(7, 24), rng.uniform(6, 14)
        side = rng.choice([-1.0, 1.0])
        sc = rng.uniform(0, length)
        oo = side * (half_width + 8.0 + rng.uniform(0, max(1.0, spec.margin_m - 10)) + max(ln, wd) / 2)
        if "river_o" in luts:
            i = min(int(sc / 0.5), luts["river_o"].size - 1)
            if abs(oo - luts["river_o"][i]) < luts["river_bed"][i] + max(ln, wd):
                continue
        lay = luts["lay_l" if side > 0 else "lay_r"][min(int(sc / 0.5), luts["lay_l"].size - 1)]
        if lay > 0:
            continue
        xy = line.point(sc, oo)
        radius = np.hypot(ln, wd) / 2
        if spec.road == "switchback" and line.tree.query(xy)[0] < abs(oo) - 1.0:
            continue  # placed beside one leg, it would stand on another
        if any(np.hypot(*(xy - r[0])) < radius + r[1] + 3 for r in rows):
            continue
        tx, ty = line.direction(sc)
        yaw = np.arctan2(ty, tx) + (0 if rng.random() < 0.7 else np.pi / 2) + rng.normal(0, 0.05)
        roof = np.array(_ROOFS[rng.integers(len(_ROOFS))]) * rng.normal(1, 0.05)
        rows.append((xy, radius, ln, wd, yaw, rng.uniform(3, 10), roof, rng.random() < 0.5))
    if not rows:
        return {"xy": np.zeros((0, 2)), "radius": np.zeros(0)}
    return {
        "xy": np.array([r[0] for r in rows]), "radius": np.array([r[1] for r in rows]),
        "len": np.array([r[2] for r in rows]), "wid": np.array([r[3] for r in rows]),
        "yaw": np.array([r[4] for r in rows]), "h": np.array([r[5] for r in rows]),
        "rgb": np.array([r[6] for r in rows]), "gable": np.array([r[7] for r in rows]),
    }


def _parked(spec: SceneSpec, laybys: list, half_width: float, rng: np.random.Generator) -> list[Vehicle]:
    out = []
    for a, ln, side, depth in laybys:
        s = a + 12 + rng.uniform(0, 6)
        while s < a + ln - 12:
            v = draw_vehicle(rng, 0.05, spec.colour_mix)
            if s + v.length > a + ln - 10:
                break
            if rng.random() < 0.75:
                v.s_c = s + v.length / 2
                v.o_c = side * (half_width + depth - 1.6 + rng.normal(0, 0.15))
                v.towards_head = bool(rng.random() < 0.5)
                v.parked, v.on_carriageway = True, False
                out.append(v)
            s += v.length + rng.uniform(0.8, 8)
    return out


def build_scene(spec: SceneSpec) -> Scene:
    """Lay out the scene described by ``spec`` (no pixels yet).

    Parameters
    ----------
    spec : SceneSpec

    Returns
    -------
    Scene
    """
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    road_local, local, head = _road_vertices(spec, rng)
    line = Centreline(road_local, spacing=0.5)
    inv = geo.transformer(local, geo.WGS84)
    lon, lat = inv.transform(road_local[:, 0], road_local[:, 1])
    road_lonlat = np.column_stack([lon, lat])
    geod = np.concatenate([[0.0], np.cumsum(geo.geodesic_segment_lengths(lon, lat))])
    planar = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(road_local, axis=0).T))])
    half_width = spec.lanes * spec.lane_width_m / 2
    # lane centres: queue lane first (left of travel away from the head = right of a
    # vehicle driving toward the head), then the opposite lane
    lw = spec.lane_width_m
    lane_offsets = [half_width - lw / 2, -(half_width - lw / 2) if spec.lanes > 1 else half_width - lw / 2]
    style = _style(spec, rng)
    qlen_planar = float(np.interp(spec.queue_length_m, geod, planar)) if spec.queue_length_m > 0 else 0.0
    vehicles = place_traffic(
        rng, road_length=line.length, queue_length=qlen_planar, lane_offsets=lane_offsets,
        max_gap=spec.max_gap_m, truck_fraction=spec.truck_fraction,
        two_lane_fraction=spec.two_lane_queue_fraction if spec.lanes > 1 else 0.0,
        mix=spec.colour_mix, gap_scale=spec.gap_scale,
        oncoming_per_km=spec.oncoming_per_km if spec.lanes > 1 else 0.0,
        free_per_km=spec.free_per_km)
    tail_planar = max((v.s_c + v.length / 2 for v in vehicles if v.in_queue), default=0.0)
    river = spec.river if spec.river is not None else spec.terrain == "valley"
    lut_step, luts, laybys = _luts(spec, line.length, half_width, rng, spec.seed * 131 + 7, river, tail_planar)
    vehicles += _parked(spec, laybys, half_width, rng)
    patches = _patches(spec, line.length, half_width, rng)
    buildings = _buildings(spec, line, luts, half_width, rng)
    trees = _trees(spec, line, (lut_step, luts), half_width, rng, buildings)
    corners = _footprints(line, vehicles)
    scene = Scene(spec=spec, local_crs=local, head_lonlat=head, road_local=road_local,
                  road_lonlat=road_lonlat, line=line, planar_at_vertex=planar,
                  geod_at_vertex=geod, half_width=half_width, lane_offsets=lane_offsets,
                  vehicles=vehicles, v_corners=corners, lut_step=lut_step, luts=luts,
                  patches=patches, trees=trees, buildings=buildings, cut=None, style=style)
    if spec.extent_limit_m is not None and spec.extent_limit_m < geod[-1]:
        sp = float(np.interp(spec.extent_limit_m, geod, planar))
        p = line.point(sp)
        a = line.point(max(0.0, sp - 150))
        b = line.point(min(line.length, sp + 150))
        d = (b - a) / np.hypot(*(b - a))
        scene.cut = (p, d, sp)
    _finish_truth(scene)
    return scene


def _finish_truth(scene: Scene) -> None:
    """Stations, occlusion, visibility and the queue chain of every vehicle."""
    vs = scene.vehicles
    n = len(vs)
    if n == 0:
        return
    corners = scene.v_corners
    s_c, _ = scene.line.station_offset(corners[:, :, 0].ravel(), corners[:, :, 1].ravel())
    s_c = s_c.reshape(n, 4)
    s0 = scene.geodesic(s_c.min(axis=1))
    s1 = scene.geodesic(s_c.max(axis=1))
    # occlusion by canopies (>= 30 % of the footprint) or by thick cloud at the centre
    polys = shapely.polygons(corners)
    occl = np.zeros(n, bool)
    t = scene.trees
    if t["xy"].shape[0]:
        discs = shapely.buffer(shapely.points(t["xy"]), t["r"] * 0.95, quad_segs=8)
        tree_idx = shapely.STRtree(discs)
        pairs = tree_idx.query(polys, predicate="intersects")
        if pairs.size:
            area = np.zeros(n)
            for vi in np.unique(pairs[0]):
                u = shapely.union_all(discs[pairs[1][pairs[0] == vi]])
                area[vi] = shapely.area(shapely.intersection(polys[vi], u))
            occl |= area >= 0.3 * shapely.area(polys)
    cen = corners.mean(axis=1)
    occl |= scene.cloud_opacity(cen[:, 0], cen[:, 1]) >= 0.5
    visible = np.ones(n, bool)
    if scene.cut is not None:
        p, d, _ = scene.cut
        visible = np.all(((corners - p) @ d) <= 0, axis=1)
    for k, v in enumerate(vs):
        v.s0, v.s1, v.occluded = float(s0[k]), float(s1[k]), bool(occl[k])
    on = np.array([v.on_carriageway for v in vs])
    idx_on = np.flatnonzero(on)
    full = idx_on[chain(s0[idx_on], s1[idx_on], scene.spec.max_gap_m)]
    idx_vis = np.flatnonzero(on & visible)
    vis = idx_vis[chain(s0[idx_vis], s1[idx_vis], scene.spec.max_gap_m)]
    intended = {k for k, v in enumerate(vs) if v.in_queue}
    if not intended <= set(full.tolist()):  # pragma: no cover - a layout bug
        raise RuntimeError("synth: the queue as laid out is not one chain")
    in_chain = set(full.tolist())
    for k, v in enumerate(vs):
        v.in_queue = k in in_chain
    scene.chain_full = full
    scene.chain_visible = vis
    scene.visible = visible
