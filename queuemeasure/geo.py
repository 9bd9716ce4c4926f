"""Coordinate reference systems, reprojection and geodesic lengths.

Every reprojection in queuemeasure goes through :func:`transformer`, which always uses
``always_xy=True`` (x = longitude/easting first), so that the latitude/longitude trap
described in pyproj's gotchas cannot happen. Every length is measured on the WGS84
ellipsoid with :class:`pyproj.Geod`; planar lengths in degrees or in Web Mercator
"metres" are never used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError as _PyprojCRSError

from .errors import CRSError

__all__ = [
    "WGS84",
    "GEOD",
    "parse_crs",
    "transformer",
    "local_metric_crs",
    "utm_crs",
    "geodesic_segment_lengths",
    "geodesic_length",
]

WGS84 = CRS.from_epsg(4326)
GEOD = Geod(ellps="WGS84")


def parse_crs(value: Any) -> CRS:
    """Parse a CRS given as EPSG:NNNN, WKT, PROJJSON, a PROJ string or a CRS object.

    Parameters
    ----------
    value : str, int, dict or CRS-like
        Anything :meth:`pyproj.CRS.from_user_input` accepts, or a rasterio CRS.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    queuemeasure.errors.CRSError
        When the value is not a CRS.
    """
    if value is None:
        raise CRSError("no CRS given")
    if hasattr(value, "to_wkt") and not isinstance(value, CRS):
        value = value.to_wkt()
    try:
        return CRS.from_user_input(value)
    except (_PyprojCRSError, TypeError, ValueError) as exc:
        raise CRSError(f"not a CRS: {str(value)[:80]!r}") from exc


def _local_origin(crs: CRS) -> tuple[float, float] | None:
    """(lat_0, lon_0) when ``crs`` is a frame of :func:`local_metric_crs` (an azimuthal
    equidistant projection of the WGS84 ellipsoid, no datum, no false origin), else None."""
    if not crs.is_projected:
        return None
    d = crs.to_json_dict()
    try:
        if d["base_crs"]["datum"]["name"] != "Unknown based on WGS 84 ellipsoid":
            return None
        conv = d["conversion"]
        if conv["method"].get("id", {}).get("code") != 1125:  # EPSG: Azimuthal Equidistant
            return None
        par = {p["id"]["code"]: p for p in conv["parameters"]}
        if set(par) != {8801, 8802, 8806, 8807} or par[8806]["value"] or par[8807]["value"]:
            return None
        if any(par[k]["unit"] != "degree" for k in (8801, 8802)):
            return None
        axes = d["coordinate_system"]["axis"]
        if [(a["direction"], a["unit"]) for a in axes] != [("east", "metre"), ("north", "metre")]:
            return None
        return float(par[8801]["value"]), float(par[8802]["value"])
    except (KeyError, TypeError):
        return None


def _aeqd(origin: tuple[float, float]) -> str:
    return f"+proj=aeqd +lat_0={origin[0]!r} +lon_0={origin[1]!r} +x_0=0 +y_0=0 +ellps=WGS84"


class _Chain:
    """Transformers applied one after the other (the same ``transform`` call)."""

    def __init__(self, *steps: Transformer) -> None:
        self.steps = steps

    def transform(self, x: Any, y: Any) -> tuple[Any, Any]:
        for t in self.steps:
            x, y = t.transform(x, y)
        return x, y


@lru_cache(maxsize=64)
def _cached_transformer(src_wkt: str, dst_wkt: str) -> Transformer | _Chain:
    src, dst = CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt)
    o_src, o_dst = _local_origin(src), _local_origin(dst)
    if o_src is None and o_dst is None:
        return Transformer.from_crs(src, dst, always_xy=True)
    # A local frame holds WGS84 positions (it is built from WGS84 lon/lat on the WGS84
    # ellipsoid): reproject it through EPSG:4326, with an explicit pipeline for the frame
    # (the same operation PROJ chooses, in 0.1 ms instead of 10-20 ms of searching its
    # database) and then the datum shift from WGS84 that PROJ chooses for the other side.
    # Directly, PROJ would take the frame's datum as unknown and make no shift at all:
    # 104 m wrong on a Pulkovo 1942 / Gauss-Kruger zone 8 (EPSG:28408) raster at Upper Lars.
    steps = []
    if o_src is not None:
        steps.append(Transformer.from_pipeline(
            f"+proj=pipeline +step +inv {_aeqd(o_src)} +step +proj=unitconvert +xy_in=rad +xy_out=deg"))
    elif not src.equals(WGS84):
        steps.append(_cached_transformer(src_wkt, WGS84.to_wkt()))
    if o_dst is not None:
        steps.append(Transformer.from_pipeline(
            f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step {_aeqd(o_dst)}"))
    elif not dst.equals(WGS84):
        steps.append(_cached_transformer(WGS84.to_wkt(), dst_wkt))
    return steps[0] if len(steps) == 1 else _Chain(*steps)


def transformer(src: Any, dst: Any) -> Transformer | _Chain:
    """Return a cached transformer from ``src`` to ``dst`` with ``always_xy=True``.

    Local frames (:func:`local_metric_crs`) are reprojected through WGS84, so that the
    datum shift from WGS84 to the other CRS is applied (see ``_cached_transformer``).

    Parameters
    ----------
    src, dst : CRS-like
        Source and destination CRS (see :func:`parse_crs`).

    Returns
    -------
    pyproj.Transformer or an object with the same ``transform(x, y)``
        Takes and returns (x, y) = (lon, lat) or (easting, northing), whatever the CRS's
        declared axis order.
    """
    return _cached_transformer(parse_crs(src).to_wkt(), parse_crs(dst).to_wkt())


def local_metric_crs(lon: float, lat: float) -> CRS:
    """An azimuthal equidistant CRS on the WGS84 ellipsoid centred at (lon, lat).

    Within 50 km of its centre its scale error is below 3e-5, so it serves as the local
    metric frame in which corridors are built; lengths are still taken geodesically.
    """
    return CRS.from_proj4(
        f"+proj=aeqd +lat_0={lat:.9f} +lon_0={lon:.9f} +x_0=0 +y_0=0 "
        "+ellps=WGS84 +units=m +no_defs +type=crs"
    )


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone CRS (EPSG:326NN north, 327NN south) holding (lon, lat)."""
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def geodesic_segment_lengths(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Geodesic length in metres of each segment of a lon/lat polyline (vectorised)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.size < 2:
        return np.zeros(0)
    _, _, dist = GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return np.asarray(dist, dtype=float)


def geodesic_length(lon: np.ndarray, lat: np.ndarray) -> float:
    """Geodesic length in metres of a lon/lat polyline on the WGS84 ellipsoid."""
    return float(geodesic_segment_lengths(lon, lat).sum())
