"""The road centreline: load, join its parts, cut it at the head, measure stations.

A road comes in as GeoJSON (file or string; a geometry, Feature or FeatureCollection of
LineStrings/MultiLineStrings), WKT, or a shapely geometry, in WGS84 lon/lat unless a CRS
is given, or as OpenStreetMap data from which :mod:`queuemeasure.osm` builds the line.
It leaves as one or two :class:`RoadPath` objects that start at the head and carry their
vertices in WGS84, in a local metric frame, and as geodesic stations (true ground metres
on the WGS84 ellipsoid) from the head.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import LineString, MultiLineString, Point
from shapely.geometry.base import BaseGeometry

from . import geo
from .errors import CRSError, HeadError, OptionError, RoadError, RoadGapWarning
from .textfile import read_text_file

__all__ = [
    "RoadPath",
    "RoadSides",
    "load_road",
    "osm_line",
    "join_parts",
    "prepare_road",
    "cut_at_head",
]

Direction = Literal["both", "forward", "backward"]

#: Parts whose ends are closer than this (metres) are joined silently.
SNAP_TOLERANCE_M = 0.5
#: Parts whose ends are farther apart than this are not one path.
MAX_JOIN_GAP_M = 30.0
#: A head farther than this from the road is refused.
MAX_HEAD_DISTANCE_M = 100.0
#: A head closer than this to an end of the road leaves only one side to search.
END_TOLERANCE_M = 1.0
#: A longer road is refused: it cannot be one road in one tile (and the local metric
#: frame is only meant for hundreds of kilometres).
MAX_ROAD_LENGTH_M = 2_000_000.0


@dataclass(frozen=True)
class RoadPath:
    """A road polyline that starts at the head, with geodesic stations.

    Attributes
    ----------
    lonlat : ndarray, shape (N, 2)
        Vertices in WGS84 lon/lat, first vertex = head.
    xy : ndarray, shape (N, 2)
        The same vertices in the local metric frame ``local_crs``.
    local_crs : pyproj.CRS
        An azimuthal equidistant frame centred near the head.
    station_m : ndarray, shape (N,)
        Geodesic distance along the road from the head to each vertex, in metres.
    chord_m : ndarray, shape (N,)
        Cumulative planar length in the local frame (used to interpolate positions).
    side : str
        ``"forward"`` (along the road's own direction from the head), ``"backward"``.
    """

    lonlat: np.ndarray
    xy: np.ndarray
    local_crs: CRS
    station_m: np.ndarray
    chord_m: np.ndarray
    side: str = "forward"

    @classmethod
    def from_xy(cls, xy: np.ndarray, local_crs: CRS, side: str = "forward") -> "RoadPath":
        """Build a path from local-frame vertices (the first one is the head)."""
        xy = _dedupe(np.asarray(xy, dtype=float))
        lon, lat = geo.transformer(local_crs, geo.WGS84).transform(xy[:, 0], xy[:, 1])
        lonlat = np.column_stack([lon, lat])
        seg = geo.geodesic_segment_lengths(lon, lat)
        station = np.concatenate([[0.0], np.cumsum(seg)])
        chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        return cls(lonlat, xy, local_crs, station, chord, side)

    @property
    def length_m(self) -> float:
        """Geodesic length of the path in metres."""
        return float(self.station_m[-1])

    def chord_at(self, station_m: np.ndarray | float) -> np.ndarray:
        """Local planar arc length at geodesic stations (vectorised)."""
        return np.interp(station_m, self.station_m, self.chord_m)

    def station_at_chord(self, chord_m: np.ndarray | float) -> np.ndarray:
        """Geodesic station at local planar arc lengths (vectorised)."""
        return np.interp(chord_m, self.chord_m, self.station_m)

    def xy_at_chord(self, chord_m: np.ndarray | float) -> np.ndarray:
        """Local-frame (x, y) at planar arc lengths; shape (..., 2).

        Beyond either end the path is extended straight along its end segment, so that
        a corridor can show what stands just before the head (context for the detector).
        """
        c = np.asarray(chord_m, dtype=float)
        x = np.interp(c, self.chord_m, self.xy[:, 0])
        y = np.interp(c, self.chord_m, self.xy[:, 1])
        out = np.stack([x, y], axis=-1)
        for beyond, (i, j), ref in (
            (c < 0.0, (0, 1), 0.0),
            (c > self.chord_m[-1], (-1, -2), float(self.chord_m[-1])),
        ):
            if np.any(beyond):
                d = self.xy[i] - self.xy[j]
                d = d / max(float(np.hypot(*d)), 1e-12)
                extra = np.abs(c - ref)[..., None] * d
                out = np.where(beyond[..., None], self.xy[i] + extra, out)
        return out

    def xy_at(self, station_m: np.ndarray | float) -> np.ndarray:
        """Local-frame (x, y) at geodesic stations; shape (..., 2)."""
        return self.xy_at_chord(self.chord_at(station_m))

    def lonlat_at(self, station_m: np.ndarray | float) -> np.ndarray:
        """WGS84 (lon, lat) at geodesic stations; shape (..., 2)."""
        xy = self.xy_at(station_m)
        lon, lat = geo.transformer(self.local_crs, geo.WGS84).transform(xy[..., 0], xy[..., 1])
        return np.stack([np.asarray(lon), np.asarray(lat)], axis=-1)

    def substring_lonlat(self, s0: float, s1: float, step_m: float = 5.0) -> np.ndarray:
        """Vertices (lon, lat) of the path between stations ``s0`` and ``s1``.

        Keeps the original vertices in between and adds points at ``s0``/``s1``; long
        straight pieces are not densified (``step_m`` only bounds a curve's sampling).
        """
        s0, s1 = float(max(0.0, s0)), float(min(self.length_m, s1))
        if s1 <= s0:
            return self.lonlat_at(np.array([s0, s0]))
        inner = self.station_m[(self.station_m > s0) & (self.station_m < s1)]
        stations = np.concatenate([[s0], inner, [s1]])
        return self.lonlat_at(stations)


@dataclass(frozen=True)
class RoadSides:
    """The road cut at the head: the sides to search, and how the head was placed."""

    sides: list[RoadPath]
    head_lonlat: tuple[float, float]
    head_offset_m: float
    road_length_m: float
    local_crs: CRS
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- loading


def _looks_like_path(text: str) -> bool:
    t = text.strip()
    if not t or t[0] in "{[" or "\n" in t:
        return False
    # WKT: a keyword (optionally Z/M/SRID=...;) followed by a parenthesis or EMPTY
    return re.match(r"^(SRID=\d+;)?[A-Za-z]+(\s+[ZM]{1,2})?\s*(\(|EMPTY\b)", t, re.I) is None


_GEOJSON_TYPES = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection", "Feature", "FeatureCollection",
}


def _geometries_from_geojson(obj: Any) -> tuple[list[BaseGeometry], str | None]:
    """Flatten GeoJSON into shapely geometries; return them and a legacy ``crs`` name."""
    if not isinstance(obj, dict) or "type" not in obj:
        raise RoadError("road JSON is not GeoJSON (no 'type' member): give a GeoJSON LineString")
    if not isinstance(obj["type"], str) or obj["type"] not in _GEOJSON_TYPES:
        raise RoadError(
            f"road JSON is not GeoJSON (unknown type {str(obj['type'])[:40]!r}): give a GeoJSON LineString"
        )
    crs_name = None
    legacy = obj.get("crs")
    if isinstance(legacy, dict) and isinstance(legacy.get("properties"), dict):
        name = legacy["properties"].get("name")
        crs_name = name if isinstance(name, str) else None
    kind = obj["type"]
    if kind == "FeatureCollection":
        feats = obj.get("features")
        if not isinstance(feats, list):
            raise RoadError("road GeoJSON FeatureCollection has no 'features' list")
        geoms: list[BaseGeometry] = []
        for f in feats:
            g, _ = _geometries_from_geojson(f)
            geoms.extend(g)
        return geoms, crs_name
    if kind == "Feature":
        g = obj.get("geometry")
        if g is None:
            return [], crs_name
        return _geometries_from_geojson(g)[0], crs_name
    coords = obj.get("coordinates")
    if kind != "GeometryCollection" and not isinstance(coords, list):
        raise RoadError(f"road GeoJSON {kind} has no 'coordinates' list")
    if kind == "LineString" and len(coords) < 2:
        raise RoadError("road line has fewer than two points: it has no segment of non-zero length")
    try:
        return [shapely.geometry.shape(obj)], crs_name
    except Exception as exc:  # shapely raises several types for malformed input
        raise RoadError(f"road GeoJSON geometry is malformed: {exc}") from None


def _lines_of(geoms: Sequence[BaseGeometry]) -> list[np.ndarray]:
    parts: list[np.ndarray] = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        if isinstance(g, LineString):
            parts.append(np.asarray(g.coords, dtype=float)[:, :2])
        elif isinstance(g, MultiLineString):
            parts.extend(np.asarray(p.coords, dtype=float)[:, :2] for p in g.geoms)
        elif g.geom_type == "GeometryCollection":
            parts.extend(_lines_of(list(g.geoms)))
        else:
            raise RoadError(
                f"road must be a LineString or MultiLineString, got a {g.geom_type}"
            )
    return parts


def load_road(source: Any, crs: Any = None) -> tuple[list[np.ndarray], CRS]:
    """Load a road's parts and its CRS.

    Parameters
    ----------
    source : str, os.PathLike, dict or shapely geometry
        A path to a GeoJSON/WKT file, a GeoJSON string or mapping, a WKT string, or a
        shapely LineString/MultiLineString.
    crs : CRS-like, optional
        The road's CRS. Default: WGS84 lon/lat (RFC 7946), or the legacy ``crs`` member
        of the GeoJSON when it names one.

    Returns
    -------
    parts : list of ndarray, each (N, 2)
        The line parts' (x, y) coordinates in ``crs``.
    crs : pyproj.CRS

    Raises
    ------
    RoadError
        When the source cannot be read or holds no usable line.
    """
    legacy = None
    if _is_osm(source):
        source = osm_line(source).line
    if isinstance(source, BaseGeometry):
        geoms: list[BaseGeometry] = [source]
    elif isinstance(source, dict):
        geoms, legacy = _geometries_from_geojson(source)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(source, os.PathLike) or _looks_like_path(text):
            text = read_text_file(text, "road file", RoadError)
        text = text.strip()
        if not text:
            raise RoadError("road is empty")
        if text[0] in "{[":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RoadError(f"road is not valid JSON: {exc.msg} at line {exc.lineno}") from None
            geoms, legacy = _geometries_from_geojson(obj)
        else:
            try:
                geoms = [shapely.from_wkt(text)]
            except Exception:
                raise RoadError("road is neither GeoJSON nor WKT") from None
    else:
        raise RoadError(f"cannot read a road from a {type(source).__name__}")

    parts = [p for p in _lines_of(geoms) if len(p)]
    if not parts:
        raise RoadError("road holds no line: give a GeoJSON or WKT LineString")
    if not all(np.isfinite(p).all() for p in parts):
        raise RoadError("road has non-finite coordinates")
    if crs is not None:
        road_crs = geo.parse_crs(crs)
    elif legacy:
        try:
            road_crs = geo.parse_crs(legacy)
        except CRSError:
            raise RoadError(
                f"road GeoJSON names an unknown CRS {legacy[:60]!r}: fix its 'crs' member or give --road-crs"
            ) from None
    else:
        road_crs = geo.WGS84
    if road_crs.is_geographic:
        allxy = np.concatenate(parts)
        if (np.abs(allxy[:, 0]) > 180).any() or (np.abs(allxy[:, 1]) > 90).any():
            if (np.abs(allxy[:, 0]) <= 90).all() and (np.abs(allxy[:, 1]) <= 180).all():
                raise RoadError(
                    "road coordinates are out of lon/lat range (latitude beyond 90): are "
                    "the axes swapped? GeoJSON wants lon,lat (x,y) order"
                )
            raise RoadError(
                "road coordinates are out of lon/lat range: is it in a projected CRS? "
                "give it with --road-crs"
            )
    return parts, road_crs


def _is_osm(source: Any) -> bool:
    if not isinstance(source, (str, os.PathLike, dict)):
        return False
    from .osm import is_osm_source

    return is_osm_source(source)


def osm_line(source: Any, select: Any = None, head: tuple[float, float] | None = None) -> Any:
    """The road built from OSM data: an :class:`~queuemeasure.osm.OsmRoad` (its ``line``
    in WGS84, its way ids, its attribution; see :func:`queuemeasure.osm.osm_road`).

    ``select`` is a :class:`~queuemeasure.osm.Selection` or a mapping of
    :func:`~queuemeasure.osm.osm_road`'s keywords (``ref``, ``name``, ``ids``, ``tags``,
    ``toward``, ``layer``, ``selection``); None selects every highway way.
    """
    from .osm import Selection, osm_road

    if isinstance(select, Selection):
        return osm_road(source, selection=select, head=head)
    opts = dict(select or {})
    unknown = set(opts) - {"ref", "name", "ids", "tags", "toward", "layer", "selection"}
    if unknown:
        raise OptionError(f"unknown road selection key(s): {', '.join(sorted(unknown))}")
    return osm_road(source, head=head, **opts)


def read_osm_once(source: Any, road_select: Any = None) -> tuple[Any, Any]:
    """``(source, road_select)`` for several :func:`prepare_road` calls on one OSM road.

    When ``source`` is OSM data (or ``road_select`` is given), it is read here once
    (:func:`queuemeasure.osm.read_osm`, with the selection's ``layer``) and the
    :class:`~queuemeasure.osm.OsmData` is returned with the selection (``{}``: every
    highway way), so that each later call builds the same road without reading the file
    again. Anything else is returned as it is.
    """
    from .osm import OsmData, read_osm

    if isinstance(source, OsmData) or (road_select is None and not _is_osm(source)):
        return source, road_select
    layer = road_select.get("layer") if isinstance(road_select, dict) else None
    return read_osm(source, layer=layer), ({} if road_select is None else road_select)


# ----------------------------------------------------------------------------- joining


def _dedupe(xy: np.ndarray) -> np.ndarray:
    if len(xy) < 2:
        return xy
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-6])
    return xy[keep]


def join_parts(
    parts: Sequence[np.ndarray], *, max_gap_m: float = MAX_JOIN_GAP_M
) -> tuple[np.ndarray, list[str]]:
    """Join line parts (in a metric frame) into one path.

    Parts are chained greedily from the longest one: at each step the part whose end is
    nearest to either end of the chain is attached, reversed as needed. Ends closer than
    :data:`SNAP_TOLERANCE_M` are merged; gaps up to ``max_gap_m`` are bridged with a
    straight segment and reported.

    Returns
    -------
    xy : ndarray, shape (N, 2)
    notes : list of str
        One sentence per bridged gap.

    Raises
    ------
    RoadError
        When a part's nearest end is more than ``max_gap_m`` from the chain, or the
        joined path has no length.
    """
    pieces = [_dedupe(np.asarray(p, dtype=float)) for p in parts]
    pieces = [p for p in pieces if len(p) >= 2]
    if not pieces:
        raise RoadError("road has no segment of non-zero length (a single point or repeated points)")
    lengths = [float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in pieces]
    order = int(np.argmax(lengths))
    chain = pieces.pop(order)
    notes: list[str] = []
    while pieces:
        best = None
        for i, p in enumerate(pieces):
            # distances: chain end to part start/end, chain start to part start/end
            cands = [
                (np.hypot(*(chain[-1] - p[0])), i, "end", False),
                (np.hypot(*(chain[-1] - p[-1])), i, "end", True),
                (np.hypot(*(chain[0] - p[-1])), i, "start", False),
                (np.hypot(*(chain[0] - p[0])), i, "start", True),
            ]
            c = min(cands, key=lambda t: t[0])
            if best is None or c[0] < best[0]:
                best = c
        assert best is not None
        gap, i, where, rev = best
        if gap > max_gap_m:
            raise RoadError(
                f"road parts do not form one path: a part lies {gap:.0f} m from the rest "
                f"(more than {max_gap_m:.0f} m); give one connected road"
            )
        p = pieces.pop(i)
        if rev:
            p = p[::-1]
        if gap > SNAP_TOLERANCE_M:
            notes.append(f"bridged a {gap:.1f} m gap between road parts")
        if where == "end":
            chain = np.concatenate([chain, p[1:] if gap <= SNAP_TOLERANCE_M else p])
        else:
            chain = np.concatenate([p[:-1] if gap <= SNAP_TOLERANCE_M else p, chain])
    chain = _dedupe(chain)
    if len(chain) < 2:
        raise RoadError("road has zero length")
    # A path that doubles back on itself onto the same ground (e.g. two overlapping
    # copies of a way) is not one road.
    line = LineString(chain)
    if line.length > 1.0 and not line.is_simple:
        # self-intersections are legitimate for serpentines crossing over bridges, so
        # only refuse when a large share of the path overlaps itself
        if shapely.get_num_geometries(shapely.line_merge(shapely.unary_union(line))) > 1:
            merged = shapely.unary_union(line).length
            if merged < 0.8 * line.length:
                raise RoadError("road parts overlap each other: give one path, not duplicates")
    return chain, notes


# ----------------------------------------------------------------------------- the head


def prepare_road(
    source: Any,
    *,
    crs: Any = None,
    head: tuple[float, float] | None = None,
    direction: Direction = "both",
    max_head_distance_m: float = MAX_HEAD_DISTANCE_M,
    max_join_gap_m: float = MAX_JOIN_GAP_M,
    road_select: Any = None,
) -> RoadSides:
    """Load a road, join it into one path and cut it at the head.

    Parameters
    ----------
    source
        See :func:`load_road`; or OSM data (``.osm``, ``.osm.pbf``, Overpass JSON,
        GeoPackage/FlatGeobuf of OSM lines), from which the road is built from the head
        upstream (:func:`queuemeasure.osm.osm_road`).
    crs : CRS-like, optional
        The road's CRS (default WGS84).
    head : (lon, lat), optional
        The checkpoint in WGS84. Default: the road's first vertex.
    direction : {"both", "forward", "backward"}
        Which side(s) of the head to search. "forward" follows the road's own vertex
        order away from the head.
    max_head_distance_m : float
        Refuse a head farther than this from the road.
    max_join_gap_m : float
        Largest gap between parts that is bridged.
    road_select : Selection or mapping, optional
        Which OSM ways make the road, and ``toward`` (see :func:`osm_line`); the source
        is then read as OSM data whatever its name.

    Returns
    -------
    RoadSides
    """
    osm_notes = []
    if road_select is not None or _is_osm(source):
        if crs is not None and not geo.parse_crs(crs).equals(geo.WGS84):
            raise RoadError("OSM data is WGS84 lon/lat: drop the road CRS")
        built = osm_line(source, road_select, head)
        source, crs = built.line, None
        ids = [f"way/{i}" for i in built.way_ids]
        shown = ", ".join(ids) if len(ids) <= 6 else f"{', '.join(ids[:3])}, …, {', '.join(ids[-2:])}"
        osm_notes.append(f"road built from {len(ids)} OpenStreetMap ways ({shown}); {built.attribution}")
    parts, road_crs = load_road(source, crs)
    # the local frame: centred on the head, or on the road's first vertex
    first = parts[0][0]
    lon0, lat0 = geo.transformer(road_crs, geo.WGS84).transform(first[0], first[1])
    if head is not None:
        lon0, lat0 = _check_lonlat(head, "head")
    local = geo.local_metric_crs(lon0, lat0)
    to_local = geo.transformer(road_crs, local)
    local_parts = []
    for p in parts:
        x, y = to_local.transform(p[:, 0], p[:, 1])
        q = np.column_stack([x, y])
        if not np.isfinite(q).all():
            raise RoadError("road coordinates cannot be projected (out of range?)")
        local_parts.append(q)
    xy, notes = join_parts(local_parts, max_gap_m=max_join_gap_m)
    length = float(np.hypot(*np.diff(xy, axis=0).T).sum())
    if length > MAX_ROAD_LENGTH_M:
        raise RoadError(
            f"road is {length / 1000:,.0f} km long (more than {MAX_ROAD_LENGTH_M / 1000:,.0f} km): "
            "clip it to the area of the tile"
        )
    for n in notes:
        warnings.warn(n, RoadGapWarning, stacklevel=2)
    return cut_at_head(
        xy, local, head=head, direction=direction,
        max_head_distance_m=max_head_distance_m, notes=osm_notes + notes,
    )


def _check_lonlat(value: Sequence[float], what: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in value)
    except (TypeError, ValueError):
        raise HeadError(f"{what} must be two numbers LON,LAT") from None
    if not (np.isfinite(lon) and np.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
        raise HeadError(f"{what} {lon},{lat} is not a valid LON,LAT")
    return lon, lat


def _substring(line: LineString, xy: np.ndarray, start: float, end: float) -> np.ndarray:
    """The vertices of ``shapely.ops.substring(line, start, end)`` for 0 <= start < end <=
    length, as an array: the same interpolated ends and the same vertices between them (the
    same running sum of segment lengths), without shapely's loop and list of tuples over
    every vertex of a long road (10 ms for 8 600 vertices)."""
    a = line.interpolate(start)
    b = line.interpolate(end)
    d = np.diff(xy, axis=0)
    at_vertex = np.concatenate([[0.0], np.cumsum(np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2))])[:-1]
    inside = xy[:-1][(start < at_vertex) & (at_vertex < end)]
    return np.vstack([[a.x, a.y], inside, [b.x, b.y]])


def cut_at_head(
    xy: np.ndarray,
    local_crs: CRS,
    *,
    head: tuple[float, float] | None = None,
    direction: Direction = "both",
    max_head_distance_m: float = MAX_HEAD_DISTANCE_M,
    notes: Sequence[str] = (),
) -> RoadSides:
    """Cut a local-frame path at the head and return the sides to search.

    The head is projected onto the path. Each side becomes a :class:`RoadPath` that
    starts at the projected head. A side shorter than :data:`END_TOLERANCE_M` is dropped.

    Raises
    ------
    HeadError
        When the head is farther than ``max_head_distance_m`` from the road, or the
        requested direction has no road.
    """
    if direction not in ("both", "forward", "backward"):
        raise HeadError(f"direction must be both, forward or backward, not {direction!r}")
    line = LineString(xy)
    total = line.length
    notes = list(notes)
    if head is None:
        at = 0.0
        head_offset = 0.0
    else:
        lon, lat = _check_lonlat(head, "head")
        hx, hy = geo.transformer(geo.WGS84, local_crs).transform(lon, lat)
        hp = Point(hx, hy)
        head_offset = float(line.distance(hp))
        if head_offset > max_head_distance_m:
            raise HeadError(
                f"head {lon:.6f},{lat:.6f} is {head_offset:,.0f} m from the road "
                f"(more than {max_head_distance_m:.0f} m): check --head (LON,LAT order) or the road"
            )
        at = float(line.project(hp))
    paths: dict[str, RoadPath] = {}
    if total - at > END_TOLERANCE_M:
        fwd = _substring(line, xy, at, total)
        paths["forward"] = RoadPath.from_xy(fwd, local_crs, "forward")
    if at > END_TOLERANCE_M:
        bwd = _substring(line, xy, 0.0, at)[::-1]
        paths["backward"] = RoadPath.from_xy(bwd, local_crs, "backward")
    wanted = ("forward", "backward") if direction == "both" else (direction,)
    sides = [paths[k] for k in wanted if k in paths]
    if not sides:
        if not paths:
            raise RoadError(f"road is too short to search ({total:.1f} m)")
        raise HeadError(f"there is no road on the {direction} side of the head")
    hlon, hlat = sides[0].lonlat[0]
    full = sum(p.length_m for p in paths.values())
    return RoadSides(sides, (float(hlon), float(hlat)), head_offset, float(full), local_crs, notes)
