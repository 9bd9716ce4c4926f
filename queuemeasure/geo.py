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


@lru_cache(maxsize=64)
def _cached_transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)


def transformer(src: Any, dst: Any) -> Transformer:
    """Return a cached transformer from ``src`` to ``dst`` with ``always_xy=True``.

    Parameters
    ----------
    src, dst : CRS-like
        Source and destination CRS (see :func:`parse_crs`).

    Returns
    -------
    pyproj.Transformer
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
