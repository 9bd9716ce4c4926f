"""The truth of a rendered scene: :class:`SceneTruth` and its GeoJSON files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .. import geo
from ..export import write_json
from .._version import __version__

__all__ = ["SceneTruth", "VehicleTruth", "make_truth", "write_truth", "write_road"]

NOTE = ("SYNTHETIC scene made by queuemeasure.synth: not a real image. Vehicles, road and "
        "surroundings are simulated; the road is a generated stand-in, not a surveyed road.")


@dataclass
class VehicleTruth:
    """One vehicle of the truth.

    Attributes
    ----------
    footprint_lonlat : ndarray, shape (5, 2)
        Closed footprint ring in WGS84 lon/lat.
    cls : str
        "car", "van", "truck" or "bus".
    in_queue : bool
        Member of the queue (the whole queue, also beyond a cut footprint).
    s0_m, s1_m : float
        Along-road interval, geodesic metres from the head.
    offset_m : float
        Lateral offset of the centre from the centreline (positive left, looking away
        from the head).
    occluded, parked, visible : bool
        Hidden by a canopy or cloud; parked in a lay-by; inside the raster footprint.
    """

    footprint_lonlat: np.ndarray
    cls: str
    in_queue: bool
    s0_m: float
    s1_m: float
    offset_m: float
    occluded: bool
    parked: bool
    visible: bool = True
    oncoming: bool = False

    @property
    def lonlat(self) -> tuple[float, float]:
        """Centre of the footprint (lon, lat)."""
        c = self.footprint_lonlat[:4].mean(axis=0)
        return float(c[0]), float(c[1])


@dataclass
class SceneTruth:
    """What a correct measurement of the rendered scene must find.

    ``length_km`` and ``vehicle_count`` describe the queue *visible* in the raster; when
    ``truncated`` the whole queue is ``full_length_km`` / ``full_vehicle_count``.
    """

    length_km: float
    vehicle_count: int
    max_gap_m: float
    gsd_m: float
    head_lonlat: tuple[float, float]
    tail_lonlat: tuple[float, float] | None
    road_lonlat: np.ndarray
    vehicles: list[VehicleTruth]
    truncated: bool
    full_length_km: float
    full_vehicle_count: int
    crs: str
    seed: int
    checkpoint_lonlat: tuple[float, float]
    queue_s0_m: float = 0.0
    queue_s1_m: float = 0.0
    largest_gap_m: float = 0.0
    occluded_vehicle_count: int = 0
    paths: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)

    @property
    def queue_vehicles(self) -> list[VehicleTruth]:
        """Visible queued vehicles, in order from the head."""
        return sorted([v for v in self.vehicles if v.in_queue and v.visible], key=lambda v: v.s0_m)


def _crs_name(crs) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def make_truth(scene, grid) -> SceneTruth:
    """Collect the truth of a laid-out scene rendered on ``grid``."""
    spec = scene.spec
    inv = geo.transformer(scene.local_crs, geo.WGS84)
    vs = scene.vehicles
    out = []
    if vs:
        c = scene.v_corners
        ring = np.concatenate([c, c[:, :1]], axis=1)
        lon, lat = inv.transform(ring[..., 0].ravel(), ring[..., 1].ravel())
        ll = np.column_stack([lon, lat]).reshape(len(vs), 5, 2)
        for k, v in enumerate(vs):
            out.append(VehicleTruth(footprint_lonlat=ll[k], cls=v.cls, in_queue=bool(v.in_queue),
                                    s0_m=v.s0, s1_m=v.s1, offset_m=float(v.o_c),
                                    occluded=bool(v.occluded), parked=bool(v.parked),
                                    visible=bool(scene.visible[k]),
                                    oncoming=not v.towards_head))

    def stats(idx):
        if len(idx) == 0:
            return 0.0, 0, 0.0, 0.0, 0.0
        s0 = np.array([vs[i].s0 for i in idx])
        s1 = np.array([vs[i].s1 for i in idx])
        reach = np.maximum.accumulate(s1)
        gaps = s0[1:] - reach[:-1]
        return (float(reach[-1] - s0[0]), len(idx), float(s0[0]), float(reach[-1]),
                float(max(gaps.max(), 0.0)) if gaps.size else 0.0)

    full = stats(scene.chain_full)
    vis = stats(scene.chain_visible)
    truncated = len(scene.chain_visible) < len(scene.chain_full)
    head = scene.head_lonlat

    def at(s_geod):
        p = scene.line.point(scene.planar(s_geod))
        lon, lat = inv.transform(p[0], p[1])
        return (float(lon), float(lat))

    length, count, q0, q1, largest = vis
    t = SceneTruth(
        length_km=length / 1000.0, vehicle_count=count, max_gap_m=float(spec.max_gap_m),
        gsd_m=float(spec.gsd_m), head_lonlat=at(q0) if count else head,
        tail_lonlat=at(q1) if count else None, road_lonlat=scene.road_lonlat.copy(),
        vehicles=out, truncated=bool(truncated), full_length_km=full[0] / 1000.0,
        full_vehicle_count=full[1], crs=_crs_name(grid.crs), seed=int(spec.seed),
        checkpoint_lonlat=head, queue_s0_m=q0, queue_s1_m=q1, largest_gap_m=largest,
        occluded_vehicle_count=int(sum(1 for i in scene.chain_visible if vs[i].occluded)))
    return t


def _ll(a) -> list:
    return [[float(x), float(y)] for x, y in np.asarray(a)]


def truth_properties(truth: SceneTruth, scene, extra: dict | None = None) -> dict:
    """The top-level ``properties`` member of the truth FeatureCollection (``extra``
    members are added, e.g. the sensor of a coarse scene)."""
    spec = scene.spec
    note = NOTE + (" " + spec.description if spec.description else "")
    return {
        "synthetic": True,
        "generator": f"queuemeasure.synth {__version__}",
        "note": note,
        "length_km": truth.length_km,
        "vehicle_count": truth.vehicle_count,
        "max_gap_m": truth.max_gap_m,
        "gsd_m": truth.gsd_m,
        "crs": truth.crs,
        "seed": truth.seed,
        "truncated": truth.truncated,
        "full_length_km": truth.full_length_km,
        "full_vehicle_count": truth.full_vehicle_count,
        "head_lonlat": list(truth.head_lonlat),
        "tail_lonlat": list(truth.tail_lonlat) if truth.tail_lonlat else None,
        "checkpoint_lonlat": list(truth.checkpoint_lonlat),
        "queue_s0_m": truth.queue_s0_m,
        "queue_s1_m": truth.queue_s1_m,
        "largest_gap_m": truth.largest_gap_m,
        "occluded_vehicle_count": truth.occluded_vehicle_count,
        "length_method": "geodesic metres on the WGS84 ellipsoid along the road, from the "
                         "front of the first queued vehicle to the rear of the last",
        "road_km": float(scene.geod_at_vertex[-1] / 1000.0),
        "spec": spec.as_dict(),
        **(extra or {}),
    }


def write_truth(truth: SceneTruth, scene, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write the truth FeatureCollection (RFC 7946, WGS84) to ``path`` (``extra``: more
    top-level properties)."""
    props = truth_properties(truth, scene, extra)
    truth.properties = props
    feats = [{"type": "Feature", "properties": {"role": "road"},
              "geometry": {"type": "LineString", "coordinates": _ll(truth.road_lonlat)}}]
    if truth.vehicle_count:
        sp0, sp1 = scene.planar(truth.queue_s0_m), scene.planar(truth.queue_s1_m)
        inner = scene.planar_at_vertex[(scene.planar_at_vertex > sp0) & (scene.planar_at_vertex < sp1)]
        p = scene.line.point(np.concatenate([[sp0], inner, [sp1]]))
        lon, lat = geo.transformer(scene.local_crs, geo.WGS84).transform(p[:, 0], p[:, 1])
        feats.append({"type": "Feature",
                      "properties": {"role": "queue", "length_km": truth.length_km,
                                     "vehicle_count": truth.vehicle_count,
                                     "truncated": truth.truncated,
                                     "s0_m": truth.queue_s0_m, "s1_m": truth.queue_s1_m},
                      "geometry": {"type": "LineString", "coordinates": _ll(np.column_stack([lon, lat]))}})
        feats.append({"type": "Feature", "properties": {"role": "head", "s_m": truth.queue_s0_m},
                      "geometry": {"type": "Point", "coordinates": list(truth.head_lonlat)}})
        feats.append({"type": "Feature", "properties": {"role": "tail", "s_m": truth.queue_s1_m},
                      "geometry": {"type": "Point", "coordinates": list(truth.tail_lonlat)}})
    for v in truth.vehicles:
        feats.append({"type": "Feature",
                      "properties": {"role": "vehicle", "class": v.cls, "in_queue": v.in_queue,
                                     "s0_m": v.s0_m, "s1_m": v.s1_m, "offset_m": v.offset_m,
                                     "occluded": v.occluded, "parked": v.parked,
                                     "visible": v.visible, "oncoming": v.oncoming},
                      "geometry": {"type": "Polygon", "coordinates": [_ll(v.footprint_lonlat)]}})
    doc = {"type": "FeatureCollection", "properties": props, "features": feats}
    write_json(path, doc, overwrite=True)


def write_road(truth: SceneTruth, scene, path: str | os.PathLike) -> None:
    """Write the road centreline as a GeoJSON Feature (WGS84, head first)."""
    doc = {"type": "Feature",
           "properties": {"role": "road", "synthetic": True, "note": NOTE,
                          "head_lonlat": list(truth.checkpoint_lonlat),
                          "length_km": float(scene.geod_at_vertex[-1] / 1000.0)},
           "geometry": {"type": "LineString", "coordinates": _ll(truth.road_lonlat)}}
    write_json(path, doc, overwrite=True)
