"""Reading OSM data: .osm XML, .osm.pbf, Overpass API JSON, GeoPackage/FlatGeobuf layers.

Each reader returns :class:`~queuemeasure.osm.model.OsmData`: the ways that carry a
``highway`` tag, but not those proposed, under construction or gone (all line features,
for a layer without a ``highway`` column) with their WGS84 vertices,
and the route relations with their member way ids. Ways are kept whole; where a file
lacks some of a way's nodes (an extract cut through it), the way is kept as the runs of
nodes it has, never bridged by a straight line.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import RoadError, RoadWarning
from .model import OsmData, OsmRelation, OsmWay

__all__ = ["read_osm", "is_osm_source", "read_overpass", "OSM_SUFFIXES"]

#: File name endings read as OSM data.
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.xml", ".pbf", ".gpkg", ".fgb",
                ".overpass.json", ".osm.json")
_XML = (".osm", ".osm.bz2", ".osm.gz", ".osm.xml", ".xml")
_LAYERS = (".gpkg", ".fgb", ".geojson", ".shp", ".json")

Lookup = Callable[[int], "tuple[float, float] | None"]


def _name(source: Any) -> str:
    return os.fspath(source).lower() if isinstance(source, (str, os.PathLike)) else ""


def is_osm_source(source: Any) -> bool:
    """Whether ``source`` is OSM data rather than one road line.

    True for an Overpass JSON mapping, and for paths ending in ``.osm``, ``.osm.pbf``,
    ``.pbf``, ``.gpkg``, ``.fgb`` (and ``.osm.bz2``/``.osm.gz``), or a ``.json`` file
    that holds Overpass ``elements``.
    """
    if isinstance(source, dict):
        return isinstance(source.get("elements"), list)
    name = _name(source)
    if not name or "\n" in name:
        return False
    if name.endswith(OSM_SUFFIXES):
        return True
    if name.endswith(".json") and os.path.isfile(name):
        return _sniff_overpass(Path(os.fspath(source)))
    return False


def _sniff_overpass(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return re.search(r'"elements"\s*:', head) is not None and '"FeatureCollection"' not in head


def read_osm(source: Any, *, layer: str | None = None) -> OsmData:
    """Read the highway ways and route relations of an OSM source.

    Parameters
    ----------
    source : str, os.PathLike or dict
        An ``.osm`` XML file (optionally ``.bz2``/``.gz``), an ``.osm.pbf`` file (needs
        pyosmium: ``pip install 'queuemeasure[osm]'``), an Overpass API JSON file or
        mapping (``out geom``, or nodes and ways), or a GeoPackage/FlatGeobuf/GeoJSON layer
        of OSM lines (needs pyogrio).
    layer : str, optional
        The layer of a GeoPackage (default: ``lines``, ``edges`` or the only line layer).

    Returns
    -------
    OsmData

    Raises
    ------
    RoadError
        When the source cannot be read or holds no way.
    """
    if isinstance(source, dict):
        data = read_overpass(source)
    else:
        path = Path(os.fspath(source))
        if not path.exists():
            raise RoadError(f"road file not found: {path}")
        if path.is_dir():
            raise RoadError(f"road file is a directory, not a file: {path}")
        name = path.name.lower()
        if name.endswith(".pbf"):
            data = _read_pbf(path)
        elif name.endswith(_XML):
            data = _read_xml(path)
        elif name.endswith(".json") and _sniff_overpass(path):
            data = read_overpass(_load_json(path))
        elif name.endswith(_LAYERS):
            data = _read_layer(path, layer)
        else:
            raise RoadError(
                f"cannot tell the OSM format of {path.name}: name it .osm, .osm.pbf, .json "
                "(Overpass), .gpkg or .fgb"
            )
        data.source = str(path)
    if not data.ways:
        raise RoadError(f"{data.source or 'the OSM data'} holds no highway way")
    return data


# ----------------------------------------------------------------------------- shared


def _runs(node_ids: Iterable[int], lookup: Lookup) -> Iterator[np.ndarray]:
    """The runs of consecutive nodes whose positions are known, as (N, 2) arrays."""
    run: list[tuple[float, float]] = []
    for nid in node_ids:
        ll = lookup(nid)
        if ll is None:
            if len(run) >= 2:
                yield np.asarray(run, dtype=float)
            run = []
        else:
            run.append(ll)
    if len(run) >= 2:
        yield np.asarray(run, dtype=float)


def _way_pieces(wid: int, tags: dict[str, str], node_ids: list[int], lookup: Lookup) -> list[OsmWay]:
    return [OsmWay(wid, tags, ll) for ll in _runs(node_ids, lookup)]


#: ``highway`` values of ways that carry no traffic (yet, or any more).
_NOT_ROADS = {"proposed", "construction", "planned", "abandoned", "disused", "razed"}


def _keep(tags: dict[str, str]) -> bool:
    """A way that can carry a queue: a highway, not proposed, under construction or gone."""
    return "highway" in tags and tags["highway"] not in _NOT_ROADS


def _route(tags: dict[str, str]) -> bool:
    """A road route relation (not a bus, bicycle or hiking route of the same ref)."""
    return tags.get("type") in ("route", "superroute") and tags.get("route") == "road"


# ----------------------------------------------------------------------------- XML


def _open_xml(path: Path) -> Any:
    name = path.name.lower()
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_xml(path: Path) -> OsmData:
    """Read OSM XML with the standard library (streamed: elements are freed as read)."""
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[OsmWay] = []
    rels: list[OsmRelation] = []
    try:
        with _open_xml(path) as f:
            for _, el in ET.iterparse(f, events=("end",)):
                tag = el.tag
                if tag == "node":
                    nodes[int(el.get("id"))] = (float(el.get("lon")), float(el.get("lat")))
                elif tag == "way":
                    tags = {t.get("k"): t.get("v") for t in el.iter("tag")}
                    if _keep(tags):
                        ids = [int(nd.get("ref")) for nd in el.iter("nd")]
                        ways.extend(_way_pieces(int(el.get("id")), tags, ids, nodes.get))
                elif tag == "relation":
                    tags = {t.get("k"): t.get("v") for t in el.iter("tag")}
                    if _route(tags):
                        wids = tuple(int(m.get("ref")) for m in el.iter("member") if m.get("type") == "way")
                        rels.append(OsmRelation(int(el.get("id")), tags, wids))
                else:
                    continue
                el.clear()
    except (ET.ParseError, OSError, EOFError, ValueError, TypeError) as exc:
        raise RoadError(f"cannot read OSM XML {path.name}: {' '.join(str(exc).split())}") from None
    return OsmData(ways, rels)


# ----------------------------------------------------------------------------- PBF


def _read_pbf(path: Path) -> OsmData:
    """Read an .osm.pbf file with pyosmium (node locations kept in memory)."""
    try:
        import osmium
    except ImportError:  # pragma: no cover - depends on the environment
        raise RoadError(
            ".osm.pbf roads need pyosmium: pip install 'queuemeasure[osm]' (or give .osm XML)"
        ) from None
    ways: list[OsmWay] = []
    rels: list[OsmRelation] = []
    try:
        # nodes are read for their locations but not handed to Python
        fp = (osmium.FileProcessor(str(path)).with_locations()
              .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY | osmium.osm.RELATION)))
        for o in fp:
            tags = {t.k: t.v for t in o.tags}
            if o.is_way():
                if _keep(tags):
                    locs = {n.ref: ((n.lon, n.lat) if n.location.valid() else None) for n in o.nodes}
                    ids = [n.ref for n in o.nodes]
                    ways.extend(_way_pieces(o.id, tags, ids, locs.get))
            elif _route(tags):
                wids = tuple(m.ref for m in o.members if m.type == "w")
                rels.append(OsmRelation(o.id, tags, wids))
    except RuntimeError as exc:
        raise RoadError(f"cannot read OSM PBF {path.name}: {' '.join(str(exc).split())}") from None
    return OsmData(ways, rels)


# ----------------------------------------------------------------------------- Overpass


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RoadError(f"cannot read {path.name}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RoadError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None


def _geometry(points: Any) -> list[tuple[float, float] | None]:
    """Overpass ``geometry`` ([{"lat", "lon"}, ... or null]) as positions or None."""
    out: list[tuple[float, float] | None] = []
    for p in points or []:
        out.append((float(p["lon"]), float(p["lat"])) if isinstance(p, dict) else None)
    return out


def read_overpass(obj: Any) -> OsmData:
    """Read Overpass API JSON: ``out geom`` (positions inside the ways and relation
    members) or the nodes-and-ways form (``out body; >; out skel qt;``)."""
    elements = obj.get("elements") if isinstance(obj, dict) else None
    if not isinstance(elements, list):
        raise RoadError("Overpass JSON has no 'elements' list")
    nodes = {e["id"]: (float(e["lon"]), float(e["lat"]))
             for e in elements if isinstance(e, dict) and e.get("type") == "node" and "lat" in e}
    ways: list[OsmWay] = []
    rels: list[OsmRelation] = []
    seen: set[int] = set()
    member_geoms: list[tuple[int, dict[str, str], list[Any]]] = []
    try:
        for e in elements:
            kind = e.get("type") if isinstance(e, dict) else None
            tags = dict(e.get("tags") or {}) if kind else {}
            if kind == "way":
                seen.add(int(e["id"]))
                if not _keep(tags) and tags:
                    continue
                ways.extend(_overpass_way(int(e["id"]), tags, e, nodes))
            elif kind == "relation" and _route(tags):
                members = [m for m in e.get("members") or [] if m.get("type") == "way"]
                rels.append(OsmRelation(int(e["id"]), tags, tuple(int(m["ref"]) for m in members)))
                member_geoms.extend((int(m["ref"]), {}, m["geometry"]) for m in members if m.get("geometry"))
    except (KeyError, TypeError, ValueError) as exc:
        raise RoadError(f"Overpass JSON element is malformed ({type(exc).__name__}: {exc})") from None
    untagged = 0
    for wid, tags, geom in member_geoms:  # relation members given only inside the relation
        if wid not in seen:
            seen.add(wid)
            untagged += 1
            pts = _geometry(geom)
            ways.extend(_way_pieces(wid, tags, list(range(len(pts))), dict(enumerate(pts)).get))
    if untagged:
        warnings.warn(f"{untagged} ways come only as relation members, without their tags: "
                      "one-way roads and roundabouts are not known; add 'way(r);' to the "
                      "Overpass query (see the README)", RoadWarning, stacklevel=3)
    if elements and not ways and not nodes and any(e.get("type") == "way" for e in elements):
        raise RoadError("Overpass JSON ways carry no positions: run the query with 'out geom;' "
                        "(or 'out body; >; out skel qt;')")
    return OsmData(ways, rels)


def _overpass_way(wid: int, tags: dict[str, str], e: dict, nodes: dict[int, tuple[float, float]]) -> list[OsmWay]:
    if e.get("geometry"):
        geom = _geometry(e["geometry"])
        return _way_pieces(wid, tags, list(range(len(geom))), dict(enumerate(geom)).get)
    return _way_pieces(wid, tags, [int(n) for n in e.get("nodes") or []], nodes.get)


# ----------------------------------------------------------------------------- layers

_ID_FIELDS = ("osm_id", "osm_way_id", "osmid", "@id", "id", "way_id")
_HSTORE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')


def _layer_name(path: Path, layer: str | None) -> str | None:
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:  # pyogrio raises DataSourceError and others
        raise RoadError(f"cannot open {path.name}: {' '.join(str(exc).split())}") from None
    names = [str(n) for n, _ in layers]
    if layer is not None:
        if layer not in names:
            raise RoadError(f"{path.name} has no layer {layer!r} (it has: {', '.join(names)})")
        return layer
    lines = [str(n) for n, g in layers if g and "LineString" in str(g)]
    for want in ("lines", "edges"):
        if want in lines:
            return want
    if len(lines) == 1 or (not lines and len(names) == 1):
        return (lines or names)[0]
    raise RoadError(f"{path.name} has several layers ({', '.join(names)}): choose one with --road-layer")


def _read_layer(path: Path, layer: str | None) -> OsmData:
    """Read OSM lines from a GeoPackage/FlatGeobuf/GeoJSON layer (pyogrio).

    Tags come from the layer's columns and, for GDAL's OSM driver output, from its
    ``other_tags`` column; the way id from ``osm_id``/``osmid``/``@id``/``id``.
    """
    try:
        import pyogrio
    except ImportError:  # pragma: no cover - depends on the environment
        raise RoadError("GeoPackage/FlatGeobuf roads need pyogrio: pip install 'queuemeasure[osm]'") from None
    import shapely

    name = _layer_name(path, layer)
    try:
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=name)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types
        raise RoadError(f"cannot read {path.name}: {' '.join(str(exc).split())}") from None
    _check_layer_crs(meta.get("crs"), path)
    fields = [str(f) for f in meta["fields"]]
    geoms = shapely.from_wkb(wkb)
    ways: list[OsmWay] = []
    for i, g in enumerate(geoms):
        tags = _row_tags(fields, columns, i)
        if "highway" in fields and not _keep(tags):
            continue
        wid = _row_id(fields, columns, i)
        for part in _line_parts(g):
            ways.append(OsmWay(wid, tags, part))
    return OsmData(ways)


def _check_layer_crs(crs: Any, path: Path) -> None:
    if crs is None:
        return
    from .. import geo

    try:
        ok = geo.parse_crs(crs).equals(geo.WGS84, ignore_axis_order=True)
    except Exception:  # noqa: BLE001
        ok = False
    if not ok:
        raise RoadError(f"{path.name} is in {crs}, not WGS84 lon/lat: export OSM lines in EPSG:4326")


def _line_parts(g: Any) -> list[np.ndarray]:
    if g is None or g.is_empty:
        return []
    if g.geom_type == "LineString":
        return [np.asarray(g.coords, dtype=float)[:, :2]]
    if g.geom_type == "MultiLineString":
        return [np.asarray(p.coords, dtype=float)[:, :2] for p in g.geoms]
    return []


def _row_tags(fields: list[str], columns: list[Any], i: int) -> dict[str, str]:
    tags: dict[str, str] = {}
    for f, col in zip(fields, columns):
        v = col[i]
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "":
            continue
        if f == "other_tags":
            tags.update((k.replace('\\"', '"'), w.replace('\\"', '"')) for k, w in _HSTORE.findall(str(v)))
        elif f not in _ID_FIELDS:
            tags[f] = _tag_text(v)
    return tags


def _tag_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


def _row_id(fields: list[str], columns: list[Any], i: int) -> int:
    for f in _ID_FIELDS:
        if f in fields:
            m = re.search(r"-?\d+", str(columns[fields.index(f)][i]))
            if m:
                return int(m.group())
    return -(i + 1)
