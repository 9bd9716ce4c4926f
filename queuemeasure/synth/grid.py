"""The raster grid of a scene in its target CRS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS

from .. import geo

__all__ = ["Grid", "make_grid", "target_crs"]


def target_crs(crs: str, head_lonlat: tuple[float, float]) -> CRS:
    """Resolve ``"utm"`` to the UTM zone of the head, else parse the CRS."""
    if str(crs).lower() == "utm":
        return geo.utm_crs(*head_lonlat)
    return geo.parse_crs(crs)


@dataclass
class Grid:
    """Raster grid: CRS, affine transform, size, and the pixel size in ground metres."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    pixel_m: tuple[float, float]

    def pixel_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (col, row) of target-CRS coordinates."""
        inv = ~self.transform
        x, y = np.asarray(x, float), np.asarray(y, float)
        return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f

    def xy_of(self, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Target-CRS coordinates of fractional pixel coordinates (col, row)."""
        t = self.transform
        col, row = np.asarray(col, float), np.asarray(row, float)
        return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def _pixel_size(crs: CRS, gsd: float, lon: float, lat: float) -> tuple[float, float]:
    if crs.is_geographic:
        _, _, dx = geo.GEOD.inv(lon - 0.005, lat, lon + 0.005, lat)
        _, _, dy = geo.GEOD.inv(lon, lat - 0.005, lon, lat + 0.005)
        return gsd * 0.01 / dx, gsd * 0.01 / dy
    # numerically: CRS units per ground metre at the head, in x and y
    tf = geo.transformer(geo.WGS84, crs)
    _, _, dx = geo.GEOD.inv(lon - 0.001, lat, lon + 0.001, lat)
    _, _, dy = geo.GEOD.inv(lon, lat - 0.001, lon, lat + 0.001)
    x0, y0 = tf.transform(lon - 0.001, lat)
    x1, y1 = tf.transform(lon + 0.001, lat)
    x2, y2 = tf.transform(lon, lat - 0.001)
    x3, y3 = tf.transform(lon, lat + 0.001)
    kx = np.hypot(x1 - x0, y1 - y0) / dx
    ky = np.hypot(x3 - x2, y3 - y2) / dy
    if 0.995 < kx < 1.005 and 0.995 < ky < 1.005:
        # conformal projections in metres (UTM, TM, LCC ...): the nominal pixel size
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        return gsd / unit, gsd / unit
    return gsd * kx, gsd * ky


def make_grid(scene, footprint_local: shapely.Geometry) -> Grid:
    """A north-up grid of the requested ground pixel size that covers the footprint.

    Parameters
    ----------
    scene : Scene
    footprint_local : shapely geometry
        Area to cover, in the local frame.
    """
    spec = scene.spec
    crs = target_crs(spec.crs, scene.head_lonlat)
    lon, lat = scene.head_lonlat
    px, py = _pixel_size(crs, spec.gsd_m, lon, lat)
    ring = shapely.segmentize(shapely.boundary(footprint_local), 5.0)
    xy = shapely.get_coordinates(ring)
    tx, ty = geo.transformer(scene.local_crs, crs).transform(xy[:, 0], xy[:, 1])
    x0 = np.floor(np.min(tx) / px) * px
    y1 = np.ceil(np.max(ty) / py) * py
    width = int(np.ceil((np.max(tx) - x0) / px))
    height = int(np.ceil((y1 - np.min(ty)) / py))
    transform = Affine(px, 0.0, x0, 0.0, -py, y1)
    return Grid(crs=crs, transform=transform, width=width, height=height,
                pixel_m=(spec.gsd_m, spec.gsd_m))
