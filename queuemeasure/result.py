"""The result of a measurement: vehicles and the queue, with JSON and GeoJSON views."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._version import __version__
from .export import round_coords, write_json

__all__ = ["Vehicle", "QueueResult", "SYNTHETIC_NOTE"]

SYNTHETIC_NOTE = "SYNTHETIC tile made by queuemeasure.synth: not a real image"


@dataclass(frozen=True)
class Vehicle:
    """A detected vehicle.

    Attributes
    ----------
    footprint_lonlat : ndarray (N, 2)
        Closed outline in WGS84 lon/lat.
    s0_m, s1_m : float
        Along-road interval: geodesic metres from the head to its front and rear.
    offset_m : float
        Lateral offset of its centre from the centreline (positive = left looking away
        from the head).
    score : float
        Detection score; 1.0 is the default acceptance threshold.
    kind : str
        "car", "van", "truck" or "unknown".
    in_queue : bool
        Whether it is part of the queue.
    side : str
        Road side it was found on ("forward" or "backward").
    """

    footprint_lonlat: np.ndarray
    s0_m: float
    s1_m: float
    offset_m: float
    score: float
    kind: str
    in_queue: bool = False
    side: str = "forward"

    @property
    def length_m(self) -> float:
        """Along-road length in metres."""
        return self.s1_m - self.s0_m

    @property
    def centre_lonlat(self) -> tuple[float, float]:
        """Centre of the footprint's vertices (lon, lat)."""
        ring = self.footprint_lonlat[:-1] if len(self.footprint_lonlat) > 1 else self.footprint_lonlat
        c = ring.mean(axis=0)
        return float(c[0]), float(c[1])


@dataclass
class QueueResult:
    """What :func:`queuemeasure.measure` found.

    The JSON keys of ``queuemeasure measure --json`` are this object's
    :meth:`to_dict`. Lengths are geodesic (WGS84 ellipsoid); coordinates WGS84 lon/lat.
    """

    length_km: float
    length_km_range: tuple[float, float]
    vehicle_count: int
    head_lonlat: tuple[float, float]
    tail_lonlat: tuple[float, float] | None
    truncated: bool
    truncation_reason: str | None
    occluded_km: float
    max_gap_m: float
    gsd_m: float
    raster_crs: str
    road_km_searched: float
    direction: str
    vehicles: list[Vehicle]
    queue_lonlat: np.ndarray
    occluded_stretches_km: list[tuple[float, float]]
    tile: str
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    blocks_read: int = 0
    profile: dict[str, Any] = field(default_factory=dict, repr=False)
    #: "vehicles" (vehicles resolved and chained) or "occupancy" (coarse pixels: occupied
    #: stretches of the carriageway chained)
    mode: str = "vehicles"
    #: True when the evidence is too weak for the length to be quoted (reason in notes)
    low_confidence: bool = False
    #: occupancy mode: [low, high] vehicles from the occupied length, lanes and a
    #: spacing prior (not a count)
    vehicle_count_estimate: tuple[int, int] | None = None

    # ------------------------------------------------------------------ derived
    @property
    def queued(self) -> list[Vehicle]:
        """The vehicles in the queue, from the head."""
        return [v for v in self.vehicles if v.in_queue]

    @property
    def m_per_vehicle(self) -> float | None:
        """Queue metres per queued vehicle (a consistency check: ~6–8 m for cars)."""
        return self.length_km * 1000.0 / self.vehicle_count if self.vehicle_count else None

    @property
    def is_lower_bound(self) -> bool:
        """True when the queue may go on beyond what was observed."""
        return self.truncated

    # ------------------------------------------------------------------ views
    def to_dict(self, precision: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary (no per-vehicle geometry).

        Parameters
        ----------
        precision : int, optional
            Round coordinates to this many decimals (full precision by default).
        """
        def pt(p: tuple[float, float] | None) -> list[float] | None:
            return None if p is None else round_coords(p, precision)

        lo, hi = self.length_km_range
        est = self.vehicle_count_estimate
        return {
            "mode": self.mode,
            "length_km": self.length_km,
            "length_km_range": [lo, hi],
            "length_is_lower_bound": self.truncated,
            "vehicle_count": self.vehicle_count,
            "vehicle_count_estimate": None if est is None else [int(est[0]), int(est[1])],
            "low_confidence": self.low_confidence,
            "m_per_vehicle": self.m_per_vehicle,
            "head_lonlat": pt(self.head_lonlat),
            "tail_lonlat": pt(self.tail_lonlat),
            "truncated": self.truncated,
            "truncation_reason": self.truncation_reason,
            "occluded_km": self.occluded_km,
            "occluded_stretches_km": [list(s) for s in self.occluded_stretches_km],
            "max_gap_m": self.max_gap_m,
            "gsd_m": self.gsd_m,
            "raster_crs": self.raster_crs,
            "road_km_searched": self.road_km_searched,
            "direction": self.direction,
            "vehicles_detected": len(self.vehicles),
            "length_method": "geodesic, WGS84 ellipsoid",
            "tile": self.tile,
            "synthetic": self.synthetic,
            "notes": list(self.notes),
            "elapsed_s": self.elapsed_s,
            "queuemeasure_version": __version__,
        }

    def to_geojson(self, precision: int | None = None) -> dict[str, Any]:
        """A GeoJSON FeatureCollection in WGS84: queue line, vehicles, head and tail.

        The queue line's properties are :meth:`to_dict`; each vehicle Polygon carries
        its along-road interval, offset, score, kind and whether it is queued.
        """
        summary = self.to_dict(precision)
        feats: list[dict[str, Any]] = []
        if len(self.queue_lonlat) >= 2:
            feats.append({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": round_coords(self.queue_lonlat, precision)},
                "properties": {"role": "queue", **summary},
            })
        feats.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": round_coords(self.head_lonlat, precision)},
            "properties": {"role": "head"},
        })
        if self.tail_lonlat is not None:
            feats.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": round_coords(self.tail_lonlat, precision)},
                "properties": {"role": "tail", "truncated": self.truncated},
            })
        for v in self.vehicles:
            feats.append({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [round_coords(v.footprint_lonlat, precision)]},
                "properties": {
                    "role": "vehicle", "kind": v.kind, "in_queue": v.in_queue,
                    "s0_m": v.s0_m, "s1_m": v.s1_m, "offset_m": v.offset_m,
                    "score": v.score, "side": v.side,
                },
            })
        fc: dict[str, Any] = {"type": "FeatureCollection", "features": feats, "properties": summary}
        if self.synthetic:
            fc["properties"]["note"] = SYNTHETIC_NOTE
        return fc

    def write_geojson(self, path: str | os.PathLike[str], *, overwrite: bool = False,
                      precision: int | None = None) -> None:
        """Write :meth:`to_geojson` to ``path`` atomically."""
        write_json(path, self.to_geojson(precision), overwrite=overwrite)

    def quicklook(self, path: str | os.PathLike[str], *, road: Any = None, road_crs: Any = None,
                  dpi: float = 100.0, overwrite: bool = False) -> str:
        """Write the quicklook PNG (map, full-resolution excerpts, occupancy profile, caption).

        Written atomically; needs matplotlib. See :func:`queuemeasure.quicklook.write_quicklook`.
        """
        from .quicklook import write_quicklook

        return write_quicklook(self, path, road=road, road_crs=road_crs, dpi=dpi, overwrite=overwrite)

    def plot(self, ax: Any = None, *, what: str = "map", road: Any = None, road_crs: Any = None) -> Any:
        """Draw one quicklook panel ("map", "profile", "head", "tail", "occlusion") on ``ax``."""
        from .quicklook import plot_result

        return plot_result(self, ax, what=what, road=road, road_crs=road_crs)

    def summary(self) -> str:
        """A short human summary of the result."""
        lo, hi = self.length_km_range
        bound = "at least " if self.truncated else ""
        if self.vehicle_count_estimate is not None:
            a, b = self.vehicle_count_estimate
            counted = f"an estimated {a}-{b} vehicles (occupancy mode, pixel {self.gsd_m:.1f} m)"
        else:
            counted = (f"{self.vehicle_count} vehicles"
                       + (f", {self.m_per_vehicle:.1f} m per vehicle" if self.m_per_vehicle else ""))
        lines = [
            ("LOW CONFIDENCE: " if self.low_confidence else "")
            + f"queue length: {bound}{self.length_km:.3f} km (range {lo:.3f}-{hi:.3f} km), {counted}",
        ]
        if self.truncated:
            where = {
                "image_edge": "the queue runs off the edge of the image",
                "nodata": "the queue runs into missing data (the image's valid footprint ends)",
                "road_end": "the queue reaches the end of the given road",
            }.get(str(self.truncation_reason), f"truncated ({self.truncation_reason})")
            lines.append(f"truncated: {where}; it may continue, so the length is a lower bound")
        if self.occluded_km > 0:
            lines.append(f"occluded within the queue: {self.occluded_km:.3f} km")
        lines.append(
            f"head {self.head_lonlat[0]:.6f},{self.head_lonlat[1]:.6f}"
            + (f"  tail {self.tail_lonlat[0]:.6f},{self.tail_lonlat[1]:.6f}" if self.tail_lonlat else "")
            + f"  ({self.direction})"
        )
        lines.append(
            f"searched {self.road_km_searched:.3f} km of road; pixel {self.gsd_m:.2f} m; "
            f"CRS {self.raster_crs if len(self.raster_crs) < 40 else 'custom'}; max gap {self.max_gap_m:g} m"
        )
        if self.synthetic:
            lines.append(SYNTHETIC_NOTE)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)
