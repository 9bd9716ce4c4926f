"""Road centreline generators and the station/offset frame of a road.

All geometry here lives in a local metric frame (an azimuthal equidistant projection
centred on the head, see :func:`queuemeasure.geo.local_metric_crs`); x is east, y north,
in metres. The head is station 0; stations grow away from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from ..errors import OptionError

__all__ = ["Centreline", "generate_centreline", "ROAD_KINDS"]

ROAD_KINDS = ("straight", "curving", "serpentine", "valley", "switchback")
#: Hairpin radii (m) and distances (m) between neighbouring legs of a "switchback" road.
HAIRPIN_RADIUS_M = (17.0, 24.0)
LEG_SPACING_M = (20.0, 40.0)


def _integrate(heading: np.ndarray, step: float) -> np.ndarray:
    """Integrate a heading (radians, clockwise from north) sampled every ``step`` metres."""
    dx = np.sin(heading[:-1]) * step
    dy = np.cos(heading[:-1]) * step
    xy = np.zeros((heading.size, 2))
    xy[1:, 0] = np.cumsum(dx)
    xy[1:, 1] = np.cumsum(dy)
    return xy


def _smooth_curvature(n: int, step: float, rng: np.random.Generator, min_radius: float,
                      wavelengths: tuple[float, float]) -> np.ndarray:
    s = np.arange(n) * step
    k = np.zeros(n)
    for _ in range(5):
        wl = rng.uniform(*wavelengths)
        k += rng.normal() * np.sin(2 * np.pi * s / wl + rng.uniform(0, 2 * np.pi))
    peak = np.abs(k).max() or 1.0
    return k / peak / min_radius


def _serpentine_curvature(n: int, step: float, rng: np.random.Generator,
                          min_radius: float, max_turn_deg: float) -> np.ndarray:
    """Straights joined by circular arcs of alternating sign, with eased transitions."""
    k = np.zeros(n)
    i = 0
    sign = rng.choice([-1.0, 1.0])
    heading_dev = 0.0
    while i < n:
        i += int(rng.uniform(40, 350) / step)
        if i >= n:
            break
        radius = rng.uniform(min_radius, 3.0 * min_radius)
        turn = np.radians(rng.uniform(35.0, max_turn_deg))
        # keep the road progressing along its bearing
        if abs(heading_dev + sign * turn) > np.radians(100):
            sign = -sign
        length = int(turn * radius / step)
        k[i:i + length] = sign / radius
        heading_dev += sign * turn
        i += length
        sign = -sign if rng.random() < 0.8 else sign
    # ease in and out of arcs (clothoid-like) with a short moving average
    w = max(3, int(20 / step))
    return np.convolve(k, np.ones(w) / w, mode="same")


def _switchback_curvature(n: int, step: float, rng: np.random.Generator) -> np.ndarray:
    """A stack of hairpins: straight legs joined by turns of nearly 180 degrees of radius
    :data:`HAIRPIN_RADIUS_M`, alternately left and right (a road climbing a slope).

    Two legs leave a hairpin about its diameter apart and converge to
    :data:`LEG_SPACING_M` at their other end, where the next hairpin turns the other way
    (so each leg runs 20-40 m from the next one along its far half).
    """
    k = np.zeros(n)
    i = int(rng.uniform(40, 80) / step)
    sign = rng.choice([-1.0, 1.0])
    leg = rng.uniform(70, 150)
    while i < n:
        radius = rng.uniform(*HAIRPIN_RADIUS_M)
        spacing = min(rng.uniform(*LEG_SPACING_M), 2 * radius - 1.0)
        # the next leg converges on this one: 2R apart at the hairpin, `spacing` at its end
        converge = np.arcsin(np.clip((2 * radius - spacing) / leg, 0.0, 0.5))
        length = int((np.pi + converge) * radius / step)
        k[i:i + length] = sign / radius
        i += length
        # a leg that diverges again by the same angle keeps the stack's legs in line
        leg = leg * rng.uniform(0.9, 1.1)
        i += int(leg / step)
        sign = -sign
    w = max(3, int(8 / step))
    return np.convolve(k, np.ones(w) / w, mode="same")


def _clear(xy: np.ndarray, step: float, clearance: float) -> bool:
    """True when no two parts of the road more than 3*clearance apart along it come closer
    than ``clearance`` metres."""
    tree = cKDTree(xy[:: max(1, int(2 / step))])
    pairs = tree.query_pairs(clearance, output_type="ndarray")
    if pairs.size == 0:
        return True
    ds = np.abs(pairs[:, 0] - pairs[:, 1]) * max(1, int(2 / step)) * step
    return bool(np.all(ds < 3 * clearance + 10))


def generate_centreline(kind: str, length_m: float, *, rng: np.random.Generator,
                        bearing_deg: float = 0.0, step: float = 1.0,
                        clearance_m: float = 60.0) -> np.ndarray:
    """Generate a road centreline starting at (0, 0) in the local metric frame.

    Parameters
    ----------
    kind : {"straight", "curving", "serpentine", "valley", "switchback"}
        "valley" is serpentine-like for its first third, then curving (a gorge road
        opening into a valley); "switchback" is a stack of hairpins of 17-24 m radius
        whose legs run 20-40 m apart (its clearance is at most 15 m).
    length_m : float
        Road length in metres.
    rng : numpy.random.Generator
        Source of randomness (scene layout generator).
    bearing_deg : float
        General direction of the road from the head, clockwise from north.
    step : float
        Vertex spacing in metres.
    clearance_m : float
        Minimum distance between parts of the road that are far apart along it.

    Returns
    -------
    ndarray, shape (n, 2)
        x, y in metres.
    """
    if kind not in ROAD_KINDS:
        raise OptionError(f"road must be one of {', '.join(ROAD_KINDS)}, not {kind!r}")
    n = int(np.ceil(length_m / step)) + 1
    b = np.radians(bearing_deg)
    for _attempt in range(60):
        if kind == "straight":
            k = np.zeros(n)
        elif kind == "curving":
            k = _smooth_curvature(n, step, rng, rng.uniform(180, 350), (300.0, 1500.0))
        elif kind == "serpentine":
            k = _serpentine_curvature(n, step, rng, 45.0, 150.0)
        elif kind == "switchback":
            k = _switchback_curvature(n, step, rng)
        else:
            k = _smooth_curvature(n, step, rng, rng.uniform(200, 400), (400.0, 2000.0))
            gorge = int(n * 0.33)
            k[:gorge] += _serpentine_curvature(gorge, step, rng, 60.0, 110.0)
        heading = b + np.concatenate([[0.0], np.cumsum(k[:-1]) * step])
        # pull the heading back toward the bearing so the road makes progress
        dev = np.angle(np.exp(1j * (heading - b)))
        if kind != "switchback" and np.any(np.abs(dev) > np.radians(120)):
            continue
        xy = _integrate(heading, step)
        clearance = min(clearance_m, 0.75 * LEG_SPACING_M[0]) if kind == "switchback" else clearance_m
        if kind == "straight" or _clear(xy, step, clearance):
            return xy
    raise OptionError(f"could not generate a {kind} road of {length_m:.0f} m; try another seed")


@dataclass
class Centreline:
    """A road centreline in the local metric frame, densified, with station lookup.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Vertices in metres, head first.
    spacing : float
        Densification step in metres.
    """

    xy: np.ndarray
    spacing: float = 0.5
    s: np.ndarray = field(init=False, repr=False)
    tangent: np.ndarray = field(init=False, repr=False)
    normal: np.ndarray = field(init=False, repr=False)
    tree: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy, dtype=float)
        seg = np.hypot(*np.diff(xy, axis=0).T)
        keep = np.concatenate([[True], seg > 1e-9])
        xy = xy[keep]
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        s = np.arange(0.0, cum[-1] + 1e-9, self.spacing)
        if s[-1] < cum[-1]:
            s = np.append(s, cum[-1])
        dense = np.column_stack([np.interp(s, cum, xy[:, 0]), np.interp(s, cum, xy[:, 1])])
        t = np.gradient(dense, axis=0)
        t /= np.hypot(t[:, 0], t[:, 1])[:, None]
        self.xy = dense
        self.s = s
        self.tangent = t
        # left of the direction of travel away from the head
        self.normal = np.column_stack([-t[:, 1], t[:, 0]])
        self.tree = cKDTree(dense)

    @property
    def length(self) -> float:
        """Planar length in metres of the local frame."""
        return float(self.s[-1])

    def station_offset(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map local coordinates to (station, signed offset); offset > 0 left of travel."""
        pts = np.column_stack([np.ravel(x), np.ravel(y)])
        _, i = self.tree.query(pts, workers=-1)
        d = pts - self.xy[i]
        along = np.einsum("ij,ij->i", d, self.tangent[i])
        s = np.clip(self.s[i] + along, 0.0, self.length)
        o = np.einsum("ij,ij->i", d, self.normal[i])
        # beyond the ends of the road there is no road: report a huge offset there
        beyond = (self.s[i] + along < -0.01) | (self.s[i] + along > self.length + 0.01)
        if np.any(beyond):
            o[beyond] = np.where(o[beyond] >= 0, 1.0, -1.0) * 1e4
        shape = np.shape(x)
        return s.reshape(shape), o.reshape(shape)

    def point(self, s: np.ndarray, o: np.ndarray | float = 0.0) -> np.ndarray:
        """Local coordinates of station ``s`` at offset ``o``; shape (..., 2)."""
        s = np.asarray(s, dtype=float)
        x = np.interp(s, self.s, self.xy[:, 0])
        y = np.interp(s, self.s, self.xy[:, 1])
        tx, ty = self.direction(s)
        o = np.asarray(o, dtype=float)
        return np.stack([x - ty * o, y + tx * o], axis=-1)

    def direction(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit tangent (tx, ty) at station ``s``."""
        s = np.asarray(s, dtype=float)
        tx = np.interp(s, self.s, self.tangent[:, 0])
        ty = np.interp(s, self.s, self.tangent[:, 1])
        n = np.hypot(tx, ty)
        return tx / n, ty / n
