"""Roads from OpenStreetMap: read OSM data, choose a road's ways, build one path.

>>> import queuemeasure as qm
>>> road = qm.osm_road("a161.json", ref="А-161", head=(44.631, 42.768),
...                    toward=(44.6819, 43.0206))  # doctest: +SKIP
>>> road.line, road.way_ids, road.length_m, road.attribution  # doctest: +SKIP

The three steps are pure functions that can be used alone: :func:`read_osm` (a file or
Overpass JSON → :class:`OsmData`), :func:`select_ways` (→ the ways of one road),
:func:`shortest_path` (→ the path from the head upstream, over the ways' graph).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
from shapely.geometry import LineString

from .. import geo
from ..errors import RoadGapWarning, RoadWarning
from .model import ATTRIBUTION, OsmData, OsmRelation, OsmWay
from .path import MAX_GAP_M, PathResult, shortest_path, traffic_directions
from .readers import is_osm_source, read_osm, read_overpass
from .selection import Selection, normalise_ref, select_ways

__all__ = [
    "ATTRIBUTION",
    "MAX_GAP_M",
    "OsmData",
    "OsmRelation",
    "OsmRoad",
    "OsmWay",
    "PathResult",
    "Selection",
    "is_osm_source",
    "normalise_ref",
    "osm_road",
    "read_osm",
    "read_overpass",
    "select_ways",
    "shortest_path",
    "traffic_directions",
]


@dataclass(frozen=True)
class OsmRoad:
    """A road centreline built from OSM ways.

    Attributes
    ----------
    line : shapely.LineString
        WGS84 lon/lat, from the head upstream (toward ``toward``).
    way_ids : list of int
        The OSM ways the line runs on, in order.
    length_m : float
        Geodesic length on the WGS84 ellipsoid.
    notes : list of str
        What was done that the user should know (gaps bridged, one-way ignored, ...).
    selection : Selection
    source : str
    head, toward : (lon, lat) or None
    attribution : str
        ``© OpenStreetMap contributors, ODbL``.
    """

    line: LineString
    way_ids: list[int]
    length_m: float
    notes: list[str] = field(default_factory=list)
    selection: Selection = field(default_factory=Selection)
    source: str = ""
    head: tuple[float, float] | None = None
    toward: tuple[float, float] | None = None
    gaps_m: list[float] = field(default_factory=list)
    attribution: str = ATTRIBUTION

    @property
    def __geo_interface__(self) -> dict[str, Any]:
        return self.to_feature()

    def properties(self) -> dict[str, Any]:
        """The line's GeoJSON properties: OSM way ids, attribution, selection, length."""
        return {
            "osm_way_ids": list(self.way_ids),
            "osm_ids": [f"way/{i}" for i in self.way_ids],
            "attribution": self.attribution,
            "license": "ODbL-1.0",
            "length_m": round(self.length_m, 3),
            "selection": self.selection.as_dict(),
            "head_lonlat": list(self.head) if self.head else None,
            "toward_lonlat": list(self.toward) if self.toward else None,
            "gaps_bridged_m": [round(g, 2) for g in self.gaps_m],
            "notes": list(self.notes),
            "source": os.path.basename(self.source) if self.source else None,
        }

    def to_feature(self, precision: int | None = None) -> dict[str, Any]:
        """A GeoJSON Feature (WGS84) of the line with :meth:`properties`."""
        from ..export import round_coords

        coords = np.asarray(self.line.coords).tolist()
        return {"type": "Feature", "properties": self.properties(),
                "geometry": {"type": "LineString", "coordinates": round_coords(coords, precision)}}


def osm_road(
    source: Any,
    *,
    ref: str | None = None,
    name: str | None = None,
    ids: Iterable[Any] = (),
    tags: Mapping[str, str | None] | Iterable[str] | None = None,
    head: tuple[float, float] | None = None,
    toward: tuple[float, float] | None = None,
    layer: str | None = None,
    selection: Selection | None = None,
) -> OsmRoad:
    """Build one road centreline from OSM data.

    Parameters
    ----------
    source : str, os.PathLike, dict or OsmData
        ``.osm`` XML, ``.osm.pbf``, Overpass API JSON (file or mapping), a GeoPackage or
        FlatGeobuf layer of OSM lines, or data already read.
    ref, name, ids, tags
        Which ways make the road (see :class:`Selection`): ``ref="А-161"``,
        ``name="Военно-Грузинская дорога"``, ``ids=["way/123"]``,
        ``tags={"highway": "primary"}``. Nothing: every highway way.
    head : (lon, lat), optional
        The checkpoint. The path starts at its projection on the nearest suitable way and
        runs upstream (against the direction of traffic: on a dual carriageway, on the
        carriageway that drives toward the head). Without a head, the longest path
        between the selection's ends.
    toward : (lon, lat), optional
        Where the path ends (its projection on the selection). Default: the farthest point
        upstream of the head.
    layer : str, optional
        The GeoPackage layer (default ``lines``/``edges``/the only line layer).
    selection : Selection, optional
        Instead of ``ref``/``name``/``ids``/``tags``.

    Returns
    -------
    OsmRoad

    Raises
    ------
    queuemeasure.errors.RoadError
        When the data cannot be read, nothing matches, or the selection cannot be made
        into one path (the message names the ways of each piece).
    queuemeasure.errors.HeadError
        When ``head`` or ``toward`` is more than 100 m from the selected ways.

    Warns
    -----
    RoadGapWarning
        For each gap between ways that was bridged.
    RoadWarning
        When the path had to run against one-way tags (naming those ways), when the
        head has road on both sides and no ``toward`` chose one, or when Overpass
        relation members come without their ways' tags.
    """
    from ..road import _check_lonlat

    sel = selection if selection is not None else Selection.make(ref, name, ids, tags)
    hd = _check_lonlat(head, "head") if head is not None else None
    tw = _check_lonlat(toward, "toward") if toward is not None else None
    if tw is not None and hd is None:
        from ..errors import HeadError

        raise HeadError("toward needs a head (where the path starts)")
    data = source if isinstance(source, OsmData) else read_osm(source, layer=layer)
    ways = select_ways(data, sel)
    found = shortest_path(ways, hd, tw)
    if len(found.lonlat) < 2:
        from ..errors import RoadError

        raise RoadError("the road from the head toward --toward has no length: they meet the "
                        "selected ways at the same point")
    for note in found.notes:
        warnings.warn(note, RoadGapWarning if note.startswith("bridged") else RoadWarning, stacklevel=2)
    length = geo.geodesic_length(found.lonlat[:, 0], found.lonlat[:, 1])
    return OsmRoad(LineString(found.lonlat), found.way_ids, length, found.notes, sel,
                   data.source, hd, tw, found.gaps_m)
