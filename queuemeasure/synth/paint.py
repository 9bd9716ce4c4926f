"""Painting of one supersampled block: terrain, river bed, road, markings, shadows,
vehicles, buildings, trees, atmosphere. Pure numpy on arrays; no I/O.

Colours are display-referred reflectances 0..1 in four channels (R, G, B, NIR); the
block image has shape (4, rows, cols).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .noise import fbm, value_noise

__all__ = ["BlockGeom", "paint_ground", "paint_objects", "atmosphere"]


@dataclass
class BlockGeom:
    """Per-sample geometry of a block: local x, y, station s, offset o (float arrays of
    the sample grid), the coarse versions, the sample size in metres and the block rng."""

    x: np.ndarray
    y: np.ndarray
    s: np.ndarray
    o: np.ndarray
    coarse: dict
    upsample: callable
    ds: float
    rng: np.random.Generator


def _cov(dist: np.ndarray, ds: float) -> np.ndarray:
    """Anti-aliased coverage of a signed distance (positive inside)."""
    return np.clip(dist / ds + 0.5, 0.0, 1.0)


def _blend(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    """img = img * (1 - alpha) + colour * alpha (in place); colour (4,) or (4, ...)."""
    colour = np.asarray(colour, dtype=np.float32)
    if colour.ndim == 1:
        colour = colour.reshape((4,) + (1,) * alpha.ndim)
    alpha = np.asarray(alpha, np.float32)
    img *= (1 - alpha)[None]
    img += alpha[None] * colour


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    n = rng.standard_normal(shape, dtype=np.float32)
    if sigma > 0.3:
        n = gaussian_filter(n, sigma, mode="nearest", truncate=3.0)
        n /= max(float(n.std()), 1e-6)
    return n


_TERRAIN = {
    # rgb, nir, texture amplitude
    "grass": ((0.40, 0.41, 0.27), 0.42, 0.07),
    "green": ((0.29, 0.34, 0.22), 0.55, 0.06),
    "scrub": ((0.30, 0.31, 0.20), 0.45, 0.14),
    "rock": ((0.52, 0.50, 0.46), 0.50, 0.16),
    "soil": ((0.42, 0.34, 0.27), 0.40, 0.08),
    "stubble": ((0.62, 0.56, 0.40), 0.50, 0.05),
    "paved": ((0.55, 0.54, 0.52), 0.50, 0.05),
}
_PARCELS = ["stubble", "soil", "green", "grass", "stubble", "green", "soil"]


def _tcol(name):
    rgb, nir, amp = _TERRAIN[name]
    return np.array([*rgb, nir], np.float32), amp


def _smoothstep(e0, e1, v):
    t = np.clip((v - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def _terrain(scene, g: BlockGeom) -> tuple[np.ndarray, np.ndarray]:
    """Terrain colour (4, rows, cols) and texture amplitude (rows, cols)."""
    seed = scene.spec.seed * 977 + 3
    kind = scene.spec.terrain
    xc, yc = g.coarse["x"], g.coarse["y"]
    m1 = fbm(xc, yc, 350.0, seed, octaves=3)
    m2 = fbm(xc, yc, 60.0, seed + 1, octaves=3)
    m3 = fbm(xc, yc, 12.0, seed + 2, octaves=2)

    def mix(a, b, w):
        (ca, aa), (cb, ab) = a, b
        return ca[:, None, None] * (1 - w[None]) + cb[:, None, None] * w[None], aa * (1 - w) + ab * w

    if kind == "valley":
        c, a = mix(_tcol("grass"), _tcol("scrub"), _smoothstep(0.40, 0.55, m1))
        w = _smoothstep(0.56, 0.68, m1 + 0.15 * (m2 - 0.5))
        rc, ra = _tcol("rock")
        c = c * (1 - w[None]) + rc[:, None, None] * w[None]
        a = a * (1 - w) + ra * w
        bush = _smoothstep(0.55, 0.65, m3) * _smoothstep(0.35, 0.6, m1)
        c = c * (1 - 0.35 * bush[None]) + 0.35 * bush[None] * np.array([0.16, 0.22, 0.12, 0.5], np.float32)[:, None, None]
        nat_w = None
    elif kind in ("fields", "mixed"):
        c = np.zeros((4,) + xc.shape, np.float32)
        a = np.zeros(xc.shape, np.float32)
        nat, na = mix(_tcol("grass"), _tcol("scrub"), _smoothstep(0.45, 0.6, m2))
        nat_w = _smoothstep(0.45, 0.58, m1) if kind == "mixed" else np.zeros_like(m1)
        c, a = nat, na
    else:  # urban: lawns and paved plots with sharp edges
        c, a = mix(_tcol("green"), _tcol("paved"), _smoothstep(0.49, 0.51, m2))
        nat_w = None
    c = c * (0.9 + 0.2 * m2[None])
    stack = np.concatenate([c, a[None]] + ([nat_w[None]] if nat_w is not None else []), axis=0)
    up = g.upsample(stack)
    col, amp = up[:4], up[4]
    if nat_w is not None:
        # agricultural parcels, sharp-edged, evaluated per sample
        from .noise import hash01
        th = (scene.spec.seed % 17) * 0.11
        u = g.x * np.cos(th) + g.y * np.sin(th)
        v = -g.x * np.sin(th) + g.y * np.cos(th)
        iu = np.floor(u / 140.0)
        iv = np.floor(v / 60.0 + hash01(iu, 0, seed + 5) * 3)
        h = hash01(iu, iv, seed + 6)
        k = (h * len(_PARCELS)).astype(np.int64)
        table = np.array([_tcol(n)[0] for n in _PARCELS], np.float32)
        amps = np.array([_tcol(n)[1] for n in _PARCELS], np.float32)
        tone = (0.85 + 0.3 * hash01(iu, iv, seed + 7)) * (1 + 0.04 * np.sin(u * (2 * np.pi / 2.5)))
        pc = table[k].transpose(2, 0, 1) * tone[None]
        w = up[5]
        col = col * w[None] + pc * (1 - w[None])
        amp = amp * w + amps[k] * (1 - w)
    return np.ascontiguousarray(col, np.float32), np.ascontiguousarray(amp, np.float32)


def _river_gravel(scene) -> np.ndarray:
    """The river bed's colour (4 bands): pale gravel, or the road's own tone and tint."""
    if not scene.spec.river_like_road:
        return np.array([0.62, 0.60, 0.56, 0.55], np.float32)
    st = scene.style
    t = st["road_tone"]
    return np.array([t * st["road_tint"][0], t * st["road_tint"][1], t * st["road_tint"][2],
                     st["road_nir"]], np.float32)


def paint_ground(scene, g: BlockGeom) -> np.ndarray:
    """Terrain, river bed, shoulders, carriageway, lay-bys and markings."""
    spec = scene.spec
    st = scene.style
    shape = g.x.shape
    img, amp = _terrain(scene, g)
    ds = g.ds
    fine = _smooth_noise(g.rng, shape, max(0.0, 0.15 / ds))
    mid = _smooth_noise(g.rng, shape, 0.6 / ds)
    img *= (1 + (0.5 * fine + 0.8 * mid) * amp)[None]
    flat = img.reshape(4, -1)
    assert np.shares_memory(flat, img)
    # river bed and water
    if "river_o" in scene.luts:
        roc = scene.lut("river_o", g.coarse["s"])
        if np.any(np.abs(g.coarse["o"] - roc) < scene.lut("river_bed", g.coarse["s"]) + 8):
            idx = np.flatnonzero(np.abs(g.o.ravel() - scene.lut("river_o", g.s.ravel()))
                                 < scene.lut("river_bed", g.s.ravel()) + 4)
            if idx.size:
                s, o = g.s.ravel()[idx], g.o.ravel()[idx]
                fi, mi = fine.ravel()[idx], mid.ravel()[idx]
                d = scene.lut("river_bed", s) - np.abs(o - scene.lut("river_o", s)) + 2.5 * mi
                a = _cov(d, 1.0)
                sub = flat[:, idx]
                pebble = 1 + 0.18 * fi + 0.08 * mi
                _blend(sub, a, _river_gravel(scene)[:, None] * pebble[None])
                dw = scene.lut("water_hw", s) - np.abs(o - scene.lut("water_o", s)) + 1.2 * mi
                aw = _cov(dw, 0.6) * a
                _blend(sub, aw, np.array([0.30, 0.37, 0.37, 0.10], np.float32)[:, None] * (1 + 0.05 * mi)[None])
                flat[:, idx] = sub
    # shoulders, carriageway, lay-bys, markings: only samples near the road
    reach = scene.half_width + 0.5 + 2.5 + max(scene.luts["lay_l"].max(), scene.luts["lay_r"].max()) + 1
    idx = np.flatnonzero(np.abs(g.o.ravel()) < reach)
    if idx.size == 0:
        return img
    s, o = g.s.ravel()[idx], g.o.ravel()[idx]
    x, y = g.x.ravel()[idx], g.y.ravel()[idx]
    fi, mi = fine.ravel()[idx], mid.ravel()[idx]
    ao = np.abs(o)
    left = o >= 0
    li = np.clip((s / scene.lut_step).astype(np.int64), 0, scene.luts["tone"].size - 1)
    L = scene.luts
    edge = np.where(left, L["edge_l"][li], L["edge_r"][li])
    lay = np.where(left, L["lay_l"][li], L["lay_r"][li])
    paved_to = edge + lay
    sub = flat[:, idx]
    ash = _cov(paved_to + L["shoulder"][li] + 0.2 * mi - ao, ds)
    sh = {"gravel": (0.50, 0.49, 0.46, 0.5), "dirt": (0.46, 0.41, 0.34, 0.42),
          "grass": (0.42, 0.42, 0.30, 0.45)}[str(st["shoulder"])]
    _blend(sub, ash * 0.75, np.array(sh, np.float32)[:, None] * (1 + 0.06 * fi + 0.05 * mi)[None])
    if spec.terrain == "urban":
        # kerb and sidewalk
        walk = _cov(paved_to + 4.0 - ao, ds) * (ao > paved_to - 0.5)
        _blend(sub, walk, np.array([0.62, 0.61, 0.58, 0.55], np.float32)[:, None] * (1 + 0.04 * fi)[None])
        kerb = _cov(0.12 - np.abs(ao - paved_to - 0.1), ds)
        _blend(sub, kerb, np.array([0.78, 0.78, 0.76, 0.7], np.float32))
    aroad = _cov(paved_to - ao, ds)
    road = _road_surface(scene, s, o, x, y, li, fi, mi, ds)
    _blend(sub, aroad, road)
    _markings(scene, s, o, x, y, ds, sub)
    flat[:, idx] = sub
    return img


def _road_surface(scene, s, o, x, y, li, fine, mid, ds) -> np.ndarray:
    spec, st = scene.spec, scene.style
    tone = st["road_tone"] * scene.luts["tone"][li]
    low = fbm(x, y, 25.0, spec.seed + 31, octaves=3)
    tone = tone * (1 + 0.10 * (low - 0.5))
    if len(scene.patches):
        p = scene.patches
        for a, b, o0, o1, dlt in p[(p[:, 1] >= s.min()) & (p[:, 0] <= s.max())]:
            inside = (s >= a) & (s <= b) & (o >= o0) & (o <= o1)
            tone = tone + np.float32(dlt * st["road_tone"]) * inside
    if spec.surface == "concrete":
        from .noise import hash01
        slab = np.floor(s / 5.0)
        tone = tone * (1 + 0.06 * (hash01(slab, (o > 0).astype(int), spec.seed + 33) - 0.5))
        jt = np.abs(((s + 2.5) % 5.0) - 2.5)
        tone = tone * (1 - 0.25 * _cov(0.04 - jt, ds))
        tone = tone * (1 - 0.2 * _cov(0.04 - np.abs(o), ds))
        grain = 0.02 * fine + 0.02 * mid
    else:
        grain = 0.045 * fine + 0.03 * mid
        # tyre tracks and the oily strip in the middle of each lane
        for lc in scene.lane_offsets[: max(1, spec.lanes)]:
            d = np.abs(o - lc)
            tr = np.clip(1 - np.abs(d - 0.85) / 0.45, 0, 1)
            tone = tone * (1 - st["track_dark"] * tr) * (1 - 0.04 * np.clip(1 - d / 0.4, 0, 1))
        # cracks: thin dark lines along iso-lines of a noise field
        cr = fbm(x, y, 4.0, spec.seed + 35, octaves=2)
        tone = tone * (1 - 0.10 * _cov(0.01 - np.abs(cr - 0.5), 0.01) * (low > 0.55))
    tone = (tone * (1 + grain)).astype(np.float32)
    tint = st["road_tint"]
    out = np.empty((4,) + s.shape, np.float32)
    for k in range(3):
        out[k] = tone * tint[k]
    out[3] = tone * (st["road_nir"] / st["road_tone"])
    return out


def _markings(scene, s, o, x, y, ds, sub: np.ndarray) -> None:
    spec, st = scene.spec, scene.style
    wear = st["marking_wear"] * (0.55 + 0.45 * fbm(x, y, 8.0, spec.seed + 41, octaves=2))
    white = np.array([0.86, 0.86, 0.84, 0.75], np.float32)
    alpha = np.zeros(s.shape, np.float32)
    hw = scene.half_width
    lw = spec.lane_width_m
    dash, gap = st["dash"]
    for k in range(1, spec.lanes):
        oc = -hw + k * lw
        line = _cov(0.075 - np.abs(o - oc), ds)
        if not (st["centre_solid"] and abs(oc) < 1e-6):
            line = line * _cov(dash / 2 - np.abs((s % (dash + gap)) - dash / 2), ds)
        alpha = np.maximum(alpha, line)
    if st["edge_lines"]:
        for side in (-1, 1):
            alpha = np.maximum(alpha, _cov(0.075 - np.abs(o - side * (hw - 0.3)), ds))
    alpha *= wear
    if alpha.any():
        _blend(sub, alpha, white)


# ----------------------------------------------------------------------------- objects

def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise) of a few 2-D points (monotone chain)."""
    pts = sorted(map(tuple, np.round(points, 6)))
    if len(pts) <= 2:
        return np.asarray(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1])


def _in_convex(x: np.ndarray, y: np.ndarray, hull: np.ndarray, ds: float) -> np.ndarray:
    """Anti-aliased coverage of a counter-clockwise convex polygon."""
    d = np.full(x.shape, np.inf, np.float32)
    for i in range(len(hull)):
        x0, y0 = hull[i]
        x1, y1 = hull[(i + 1) % len(hull)]
        ex, ey = x1 - x0, y1 - y0
        n = np.hypot(ex, ey)
        if n == 0:
            continue
        # signed distance to the left of the edge (inside for a CCW polygon)
        d = np.minimum(d, (ex * (y - y0) - ey * (x - x0)) / n)
    return _cov(d, ds).astype(np.float32)


def shadow_vector(scene, height: float) -> np.ndarray:
    """Ground displacement (dx, dy) in metres of the shadow of a point ``height`` m up."""
    az = np.radians(scene.spec.sun_azimuth_deg)
    d = height / np.tan(np.radians(scene.spec.sun_elevation_deg))
    return np.array([-np.sin(az) * d, -np.cos(az) * d])


def _sun_dir(scene) -> np.ndarray:
    az = np.radians(scene.spec.sun_azimuth_deg)
    return np.array([np.sin(az), np.cos(az)])


def paint_objects(scene, g: BlockGeom, img: np.ndarray, sel: dict, win) -> None:
    """Shadows, vehicles, buildings, tree shadows and canopies of the objects in ``sel``.

    ``win(cx, cy, reach)`` gives the sample-grid slices of a disc or ``None``.
    """
    st = scene.style
    shade_col = (st["shadow"] * np.concatenate([st["shadow_tint"], [0.9]])).astype(np.float32)
    shadow = np.zeros(g.x.shape, np.float32)
    corners = scene.v_corners
    # vehicle and building shadows (on the ground only)
    for k in sel["vehicles"]:
        v = scene.vehicles[k]
        c = corners[k]
        sw = win(*c.mean(axis=0), v.length / 2 + 1 + v.height * 2.5)
        if sw is None:
            continue
        sh = shadow_vector(scene, v.height * 0.9)
        # the body sits a little above ground: the shadow starts under it
        hull = _hull(np.vstack([c * 0.92 + c.mean(0) * 0.08, c + sh]))
        cov = _in_convex(g.x[sw], g.y[sw], hull, g.ds)
        shadow[sw] = np.maximum(shadow[sw], cov * 0.95)
    b = scene.buildings
    for k in sel["buildings"]:
        c = _rect(b["xy"][k], b["len"][k], b["wid"][k], b["yaw"][k])
        sh = shadow_vector(scene, b["h"][k])
        sw = win(*b["xy"][k], b["radius"][k] + np.hypot(*sh) + 1)
        if sw is None:
            continue
        hull = _hull(np.vstack([c, c + sh]))
        shadow[sw] = np.maximum(shadow[sw], _in_convex(g.x[sw], g.y[sw], hull, g.ds))
    if shadow.any():
        img *= (1 - shadow[None] * (1 - shade_col[:, None, None]))
    for k in sel["vehicles"]:
        _paint_vehicle(scene, g, img, k, win)
    for k in sel["buildings"]:
        _paint_building(scene, g, img, k, win)
    t = scene.trees
    if len(sel["trees"]):
        tshadow = np.zeros(g.x.shape, np.float32)
        for k in sel["trees"]:
            sh = shadow_vector(scene, t["h"][k] * 0.7)
            cx, cy = t["xy"][k] + sh
            sw = win(cx, cy, t["r"][k] * 1.4 + 1)
            if sw is None:
                continue
            a = _canopy_alpha(t, k, g.x[sw] - cx, g.y[sw] - cy, g.ds)
            tshadow[sw] = np.maximum(tshadow[sw], a * 0.92)
        if tshadow.any():
            tshadow *= (0.85 + 0.15 * np.clip(_smooth_noise(g.rng, tshadow.shape, 0.4 / g.ds), -1, 1))
            img *= (1 - tshadow[None] * (1 - shade_col[:, None, None]))
        sun = _sun_dir(scene)
        for k in sel["trees"]:
            cx, cy = t["xy"][k]
            sw = win(cx, cy, t["r"][k] * 1.4 + 1)
            if sw is None:
                continue
            dx, dy = g.x[sw] - cx, g.y[sw] - cy
            a = _canopy_alpha(t, k, dx, dy, g.ds)
            if not a.any():
                continue
            r = t["r"][k]
            lit = np.clip(0.85 + 0.4 * (dx * sun[0] + dy * sun[1]) / r, 0.45, 1.3)
            clump = value_noise(dx + cx, dy + cy, 1.1, int(t["seed"][k])) - 0.5
            clump2 = value_noise(dx + cx, dy + cy, 0.45, int(t["seed"][k]) + 1) - 0.5
            # sunlit crowns of clumps, dark gaps between them
            f = (lit * (1 + 0.9 * clump + 0.45 * clump2) * (1 + 0.25 * (clump > 0.15))).astype(np.float32)
            colour = np.concatenate([t["rgb"][k], [t["nir"][k]]]).astype(np.float32)
            col = colour[:, None, None] * f[None]
            col[3] = colour[3] * (0.85 + 0.3 * f)
            sub = img[:, sw[0], sw[1]]
            _blend(sub, a, col)
            img[:, sw[0], sw[1]] = sub


def _canopy_alpha(t: dict, k: int, dx: np.ndarray, dy: np.ndarray, ds: float) -> np.ndarray:
    th = np.arctan2(dy, dx)
    rr = np.full(dx.shape, t["r"][k], np.float32)
    for j in range(4):
        rr = rr * (1 + t["lobes"][k, j] * np.cos((j + 2) * th + t["phase"][k, j]))
    d = rr - np.hypot(dx, dy)
    return np.clip(d / max(0.35, ds), 0, 1).astype(np.float32)


def _rect(c, ln, wd, yaw) -> np.ndarray:
    f = np.array([np.cos(yaw), np.sin(yaw)])
    l = np.array([-f[1], f[0]])
    return np.array([c + ln / 2 * f + wd / 2 * l, c - ln / 2 * f + wd / 2 * l,
                     c - ln / 2 * f - wd / 2 * l, c + ln / 2 * f - wd / 2 * l])


def _paint_building(scene, g, img, k, win) -> None:
    b = scene.buildings
    c = b["xy"][k]
    sw = win(*c, b["radius"][k] + 1)
    if sw is None:
        return
    yaw = b["yaw"][k]
    f = np.array([np.cos(yaw), np.sin(yaw)])
    dx, dy = g.x[sw] - c[0], g.y[sw] - c[1]
    u = dx * f[0] + dy * f[1]
    v = -dx * f[1] + dy * f[0]
    hl, hw = b["len"][k] / 2, b["wid"][k] / 2
    a = np.minimum(_cov(hl - np.abs(u), g.ds), _cov(hw - np.abs(v), g.ds)).astype(np.float32)
    if not a.any():
        return
    rgb = b["rgb"][k]
    shade = np.ones_like(u, dtype=np.float32)
    if b["gable"][k]:
        sun = _sun_dir(scene)
        side = np.sign(-f[1] * sun[0] + f[0] * sun[1]) or 1.0
        shade = np.where(v * side > 0, 1.12, 0.82).astype(np.float32)
    edge = _cov(0.35 - (hw - np.abs(v)), g.ds) + _cov(0.35 - (hl - np.abs(u)), g.ds)
    shade = shade * (1 - 0.12 * np.clip(edge, 0, 1))
    col = np.array([*rgb, np.mean(rgb) * 0.9], np.float32)[:, None, None] * shade[None]
    sub = img[:, sw[0], sw[1]]
    _blend(sub, a, col)
    img[:, sw[0], sw[1]] = sub


_GLASS = np.array([0.09, 0.11, 0.14, 0.10], np.float32)


def _paint_vehicle(scene, g, img, k, win) -> None:
    v = scene.vehicles[k]
    c = scene.v_corners[k]
    centre = c.mean(axis=0)
    sw = win(*centre, v.length / 2 + 1)
    if sw is None:
        return
    f = (c[0] - c[3]) + (c[1] - c[2])
    f = f / np.hypot(*f)
    dx, dy = g.x[sw] - centre[0], g.y[sw] - centre[1]
    u = dx * f[0] + dy * f[1]           # forward
    w = -dx * f[1] + dy * f[0]          # left
    hl, hw = v.length / 2, v.width / 2
    # rounded footprint
    rad = 0.45 if v.cls == "car" else 0.25
    qu = np.maximum(np.abs(u) - (hl - rad), 0)
    qw = np.maximum(np.abs(w) - (hw - rad), 0)
    inside = np.minimum(hl - np.abs(u), hw - np.abs(w))
    inside = np.where((qu > 0) & (qw > 0), rad - np.hypot(qu, qw), inside)
    a = _cov(inside, g.ds).astype(np.float32)
    if not a.any():
        return
    body = np.array([*v.rgb, v.nir], np.float32)
    x = hl - u                          # 0 at the front, L at the rear
    L = v.length
    sun = _sun_dir(scene)
    sun_side = np.sign(-f[1] * sun[0] + f[0] * sun[1]) or 1.0
    aw = np.abs(w)
    side = np.clip((aw - (hw - 0.28)) / 0.28, 0, 1)       # sloping sides
    side_shade = np.where(w * sun_side > 0, 1.0 + 0.06 * side, 1.0 - 0.28 * side)
    glass = _GLASS * (1 - v.glint) + np.array([0.55, 0.6, 0.66, 0.4], np.float32) * v.glint * 0.8
    col = np.broadcast_to(body[:, None, None], (4,) + u.shape).copy()
    shade = side_shade * v.shade
    if v.cls in ("car", "van"):
        if v.cls == "car":
            ws0, ws1, rf1, rw1 = 0.24 * L, 0.40 * L, 0.74 * L, 0.86 * L
        else:
            ws0, ws1, rf1, rw1 = 0.10 * L, 0.24 * L, 0.985 * L, 0.99 * L
        roof = (x > ws1) & (x < rf1)
        # windscreen and rear window (narrower than the body)
        win_w = hw - 0.18
        wsm = ((x >= ws0) & (x <= ws1) | (x >= rf1) & (x <= rw1)) & (aw < win_w)
        sidew = roof & (aw > hw - 0.42) & (aw < hw - 0.16) & (v.cls == "car")
        gm = (wsm | sidew).astype(np.float32)
        # roof: a little brighter, with a soft highlight; bonnet with a soft crease
        shade = shade * np.where(roof, 1.05 + 0.05 * np.exp(-((w / (0.5 * hw)) ** 2)), 0.97)
        lum = float(np.mean(v.rgb))
        gloss = (0.10 * (1 - lum)) * roof * np.exp(-((w / (0.6 * hw)) ** 2))
        col = col * shade[None] + gloss[None]
        col = col * (1 - gm)[None] + glass[:, None, None] * gm[None]
    elif v.cls == "truck":
        cab = 2.2
        trailer = np.array([*v.rgb2, np.mean(v.rgb2)], np.float32)
        col = np.where((x > cab + 0.3)[None], trailer[:, None, None], col)
        rib = 1 + 0.03 * np.sin(x * 2 * np.pi / 1.2)
        gap = ((x > cab) & (x <= cab + 0.3)).astype(np.float32)
        wsm = ((x < 0.22) & (aw < hw - 0.15)).astype(np.float32)
        col = col * (shade * np.where(x > cab + 0.3, rib, 1.0))[None]
        col = col * (1 - gap)[None] + np.float32(0.12) * gap[None]
        col = col * (1 - wsm)[None] + glass[:, None, None] * wsm[None]
    else:  # bus
        ac = ((x > 0.35 * L) & (x < 0.5 * L) & (aw < 0.75)).astype(np.float32)
        wsm = ((x < 0.45) & (aw < hw - 0.1)).astype(np.float32)
        col = col * shade[None]
        col = col * (1 - ac)[None] + np.array([0.78, 0.79, 0.80, 0.7], np.float32)[:, None, None] * ac[None]
        col = col * (1 - wsm)[None] + glass[:, None, None] * wsm[None]
    sub = img[:, sw[0], sw[1]]
    _blend(sub, a, np.clip(col, 0, 1))
    img[:, sw[0], sw[1]] = sub


def atmosphere(scene, g: BlockGeom, img: np.ndarray) -> None:
    """Thin cloud and haze (in place)."""
    spec = scene.spec
    if spec.cloud > 0:
        a = g.upsample(scene.cloud_opacity(g.coarse["x"], g.coarse["y"])[None])[0]
        if a.any():
            _blend(img, a.astype(np.float32), np.array([0.86, 0.87, 0.89, 0.8], np.float32))
    if spec.haze > 0:
        h = spec.haze * 0.55 * (0.8 + 0.4 * g.upsample(fbm(g.coarse["x"], g.coarse["y"], 2000.0, spec.seed + 51, 2)[None])[0])
        _blend(img, h.astype(np.float32), np.array([0.66, 0.71, 0.80, 0.45], np.float32))
