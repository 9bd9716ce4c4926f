"""The OSM data the road builder works on: ways (tags + WGS84 vertices) and route
relations (tags + member way ids), whatever file they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["OsmWay", "OsmRelation", "OsmData", "ATTRIBUTION", "node_keys"]

#: The attribution every output built from OpenStreetMap data carries.
ATTRIBUTION = "© OpenStreetMap contributors, ODbL"

#: OSM stores coordinates as integers of 1e-7 degree.
_SCALE = 1e7


@dataclass(frozen=True)
class OsmWay:
    """One OSM way (or a piece of one, where the file lacks some of its nodes).

    Attributes
    ----------
    id : int
        The OSM way id (a feature's position, negative, when the file has none).
    tags : dict
        The way's tags.
    lonlat : ndarray, shape (N, 2)
        Vertices in WGS84 lon/lat, in the way's own order.
    """

    id: int
    tags: dict[str, str]
    lonlat: np.ndarray

    @property
    def label(self) -> str:
        """``way/ID`` (or ``feature N`` for a feature without an OSM id)."""
        return f"way/{self.id}" if self.id >= 0 else f"feature {-self.id}"


@dataclass(frozen=True)
class OsmRelation:
    """A route relation: its tags and the ids of its member ways."""

    id: int
    tags: dict[str, str]
    way_ids: tuple[int, ...]


@dataclass
class OsmData:
    """The highway ways and route relations read from one source."""

    ways: list[OsmWay]
    relations: list[OsmRelation] = field(default_factory=list)
    source: str = ""


def node_keys(lonlat: np.ndarray) -> np.ndarray:
    """An integer key per vertex: equal for vertices at the same OSM position.

    OSM positions are integers of 1e-7 degree, so ways that share a node share the key,
    whether the file gave node ids (XML, PBF, Overpass) or only coordinates (``out geom``,
    GeoPackage, FlatGeobuf).
    """
    ll = np.asarray(lonlat, dtype=float)
    lon = np.rint(ll[:, 0] * _SCALE).astype(np.int64) + 2_000_000_000
    lat = np.rint(ll[:, 1] * _SCALE).astype(np.int64) + 1_000_000_000
    return lon * 4_000_000_000 + lat
