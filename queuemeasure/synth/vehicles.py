"""Vehicles: sizes, colours, placement of the queue and of other traffic, and the queue
rule of DESIGN.md applied to the truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Vehicle", "draw_vehicle", "place_traffic", "chain"]

# (name, share, rgb, nir) -- display-referred reflectance 0..1
_MIXED = [
    ("white", 0.25, (0.90, 0.91, 0.91), 0.80),
    ("black", 0.20, (0.07, 0.075, 0.08), 0.20),
    ("grey", 0.20, (0.36, 0.37, 0.39), 0.35),
    ("silver", 0.15, (0.66, 0.67, 0.69), 0.60),
    ("blue", 0.08, (0.10, 0.17, 0.40), 0.30),
    ("red", 0.07, (0.62, 0.10, 0.09), 0.55),
    ("other", 0.05, None, 0.45),
]
_SILVER = [
    ("white", 0.25, (0.90, 0.91, 0.91), 0.80),
    ("black", 0.05, (0.07, 0.075, 0.08), 0.20),
    ("grey", 0.20, (0.42, 0.43, 0.45), 0.40),
    ("silver", 0.45, (0.68, 0.69, 0.70), 0.62),
    ("blue", 0.025, (0.10, 0.17, 0.40), 0.30),
    ("red", 0.025, (0.62, 0.10, 0.09), 0.55),
    ("other", 0.0, None, 0.45),
]
_OTHER = [(0.12, 0.30, 0.15), (0.80, 0.70, 0.15), (0.62, 0.55, 0.42), (0.35, 0.22, 0.12),
          (0.85, 0.45, 0.10), (0.20, 0.35, 0.38), (0.45, 0.10, 0.20)]
_TRAILER = [(0.88, 0.88, 0.86), (0.70, 0.71, 0.72), (0.20, 0.30, 0.55), (0.55, 0.15, 0.12),
            (0.25, 0.42, 0.28), (0.80, 0.65, 0.20), (0.45, 0.46, 0.48)]

CLASSES = ("car", "van", "truck", "bus")


@dataclass
class Vehicle:
    """One vehicle of the scene (internal, planar stations of the local frame)."""

    cls: str
    length: float
    width: float
    height: float
    s_c: float          # planar station of the centre
    o_c: float          # lateral offset of the centre (left positive)
    towards_head: bool  # faces the head (queue) or away (oncoming)
    yaw_jitter: float   # radians
    rgb: tuple
    nir: float
    rgb2: tuple         # trailer/box colour (trucks), roof detail colour otherwise
    in_queue: bool = False
    parked: bool = False
    on_carriageway: bool = True
    glint: float = 0.0  # windscreen reflection 0..1
    shade: float = 1.0  # per-vehicle brightness factor
    # filled in by the scene
    s0: float = 0.0
    s1: float = 0.0
    occluded: bool = False


def _colour(rng: np.random.Generator, mix: str) -> tuple[tuple, float]:
    table = _SILVER if mix == "silver" else _MIXED
    p = np.array([t[1] for t in table])
    k = rng.choice(len(table), p=p / p.sum())
    name, _, rgb, nir = table[k]
    if rgb is None:
        rgb = _OTHER[rng.integers(len(_OTHER))]
    f = rng.normal(1.0, 0.06)
    tint = rng.normal(0, 0.015, 3)
    rgb = tuple(float(np.clip(c * f + t, 0.02, 0.97)) for c, t in zip(rgb, tint))
    return rgb, float(np.clip(nir * f, 0.03, 0.95))


def draw_vehicle(rng: np.random.Generator, truck_fraction: float, mix: str,
                 allow_heavy: bool = True) -> Vehicle:
    """Draw the class, size and colours of one vehicle (not yet placed)."""
    u = rng.random()
    if allow_heavy and u < truck_fraction:
        if rng.random() < 0.15:
            cls, length, width, height = "bus", rng.uniform(10.5, 13.5), 2.55, rng.uniform(3.0, 3.4)
        else:
            cls = "truck"
            length = float(rng.choice([rng.uniform(8.0, 10.5), rng.uniform(13.5, 16.5)],
                                      p=[0.35, 0.65]))
            width, height = rng.uniform(2.45, 2.55), rng.uniform(3.2, 4.0)
    elif u < truck_fraction + (1 - truck_fraction) * 0.14:
        cls, length, width, height = "van", rng.uniform(5.0, 6.0), rng.uniform(1.9, 2.05), rng.uniform(2.0, 2.6)
    else:
        cls = "car"
        length = rng.uniform(4.2, 4.9) if rng.random() < 0.85 else rng.uniform(3.7, 4.2)
        width, height = rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.65)
    rgb, nir = _colour(rng, mix)
    if cls == "van" and rng.random() < 0.5:   # many vans are white
        rgb, nir = (0.90, 0.91, 0.90), 0.8
    if cls == "truck":
        rgb2 = _TRAILER[rng.integers(len(_TRAILER))]
        rgb2 = tuple(float(np.clip(c * rng.normal(1, 0.05), 0.03, 0.95)) for c in rgb2)
    elif cls == "bus" and rng.random() < 0.5:
        rgb, nir = (0.88, 0.87, 0.82), 0.75
        rgb2 = (0.75, 0.76, 0.77)
    else:
        rgb2 = (0.75, 0.76, 0.77)
    return Vehicle(cls=cls, length=float(length), width=float(width), height=float(height),
                   s_c=0.0, o_c=0.0, towards_head=True,
                   yaw_jitter=float(np.clip(rng.normal(0, np.radians(1.3)), -np.radians(3), np.radians(3))),
                   rgb=rgb, nir=nir, rgb2=rgb2,
                   glint=float(rng.random() ** 6 * 0.8), shade=float(rng.normal(1.0, 0.03)))


def _gap(rng: np.random.Generator, max_gap: float, scale: float) -> float:
    if rng.random() < 0.02:
        return float(rng.uniform(8.0, max(8.5, 0.7 * max_gap)))
    return float(np.clip(0.5 + rng.gamma(1.6, 1.2) * scale, 0.5, 6.0 * max(scale, 1.0)))


def _stretches(rng: np.random.Generator, start: float, end: float, fraction: float) -> list:
    """Intervals covering about ``fraction`` of [start, end]."""
    total = end - start
    if fraction <= 0 or total <= 50:
        return []
    out = []
    want = fraction * total
    n = max(1, int(round(want / min(max(total * 0.1, 100.0), 1200.0))))
    lengths = rng.dirichlet(np.ones(n)) * want
    free = total - want
    spaces = rng.dirichlet(np.ones(n + 1)) * free
    s = start
    for i in range(n):
        s += spaces[i]
        out.append((s, s + lengths[i]))
        s += lengths[i]
    return out


def place_traffic(rng: np.random.Generator, *, road_length: float, queue_length: float,
                  lane_offsets: list[float], max_gap: float, truck_fraction: float,
                  two_lane_fraction: float, mix: str, gap_scale: float,
                  oncoming_per_km: float, free_per_km: float) -> list[Vehicle]:
    """Place the queue, the oncoming and the free traffic in (station, offset).

    The queue stands in the first entry of ``lane_offsets`` (the lane heading toward the
    head), two abreast over stretches (second entry); oncoming traffic uses the second
    entry. Free traffic beyond the tail starts more than ``max_gap`` + 15 m behind it.
    """
    qlane, olane = lane_offsets[0], lane_offsets[1]
    vehicles: list[Vehicle] = []
    end_road = road_length - 20.0

    def put(lane_o: float, start: float, end: float, towards: bool, in_queue: bool,
            gaps: bool = True, heavy: bool = True) -> float:
        s = start
        while True:
            v = draw_vehicle(rng, truck_fraction, mix, allow_heavy=heavy)
            if s + v.length > end:
                return s
            v.s_c = s + v.length / 2
            v.o_c = lane_o + float(rng.normal(0, 0.18))
            v.towards_head = towards
            v.in_queue = in_queue
            vehicles.append(v)
            s += v.length + (_gap(rng, max_gap, gap_scale) if gaps else 0.0)

    tail = 0.0
    if queue_length > 0:
        q_end = min(queue_length, end_road)
        head_front = float(rng.uniform(3.0, 12.0))
        tail = put(qlane, head_front, q_end, True, True)
        # the last placed vehicle's rear
        tail = max((v.s_c + v.length / 2 for v in vehicles), default=0.0)
        for a, b in _stretches(rng, head_front + 30, tail - 30, two_lane_fraction):
            put(olane, a + rng.uniform(0, 3), b, True, True)
    # oncoming traffic, sparse: inside the queue extent where lane 2 is free, and beyond
    taken = sorted((v.s_c - v.length / 2, v.s_c + v.length / 2) for v in vehicles if v.o_c * olane > 0)
    n_on = rng.poisson(oncoming_per_km * road_length / 1000.0)
    for _ in range(n_on):
        v = draw_vehicle(rng, truck_fraction * 0.5, mix)
        if tail > 0 and rng.random() < 0.7:
            lo, hi = tail + max_gap + 20 + v.length, end_road
        else:
            lo, hi = (20.0, tail - 30.0) if tail > 100 else (max_gap + 20.0 + v.length, end_road)
        if hi - lo < v.length + 2:
            continue
        sc = float(rng.uniform(lo, hi))
        a, b = sc - v.length / 2 - 3, sc + v.length / 2 + 3
        if any(not (b < x0 or a > x1) for x0, x1 in taken):
            continue
        if tail > 0 and tail - 5 <= a <= tail + max_gap + 20:
            continue
        taken.append((a, b))
        v.s_c, v.o_c, v.towards_head = sc, olane + float(rng.normal(0, 0.2)), False
        v.yaw_jitter *= 0.7
        vehicles.append(v)
    # free traffic beyond the tail (or on the whole road when there is no queue)
    # (with no queue, nothing may stand within max_gap of the head either)
    s = (tail if tail > 0 else 0.0) + max_gap + float(rng.uniform(15.0, 150.0 if tail > 0 else 300.0))
    while free_per_km > 0 and s < end_road:
        v = draw_vehicle(rng, truck_fraction, mix)
        if s + v.length > end_road:
            break
        v.s_c, v.o_c, v.towards_head = s + v.length / 2, qlane + float(rng.normal(0, 0.2)), True
        vehicles.append(v)
        s += v.length + max(max_gap + 10.0, float(rng.exponential(1000.0 / free_per_km)))
    return vehicles


def chain(s0: np.ndarray, s1: np.ndarray, max_gap: float) -> np.ndarray:
    """Indices of the queued vehicles by the rule of DESIGN.md.

    Parameters
    ----------
    s0, s1 : ndarray
        Front and rear stations (metres from the head) of the candidate vehicles.
    max_gap : float
        The largest gap that does not end the queue.

    Returns
    -------
    ndarray of int
        Indices into ``s0`` in chain order (empty when no vehicle is within ``max_gap``
        of the head).
    """
    order = np.argsort(s0, kind="stable")
    out = []
    reach = 0.0
    for i in order:
        if s0[i] - reach > max_gap:
            break
        out.append(i)
        reach = max(reach, s1[i])
    return np.asarray(out, dtype=int)
