"""Vector outputs: a result's GeoJSON features as typed tables in GeoPackage or FlatGeobuf.

The GeoJSON FeatureCollection of :meth:`QueueResult.to_geojson` is the reference; the
other formats hold the same features with the same properties, in WGS84, through pyogrio
(the optional ``vector`` extra):

- **GeoPackage**: one layer per kind of feature -- ``queue`` (the queue LineString with
  every field of ``--json``), ``vehicles`` (one Polygon per detected vehicle) and
  ``endpoints`` (the head and tail Points);
- **FlatGeobuf**: one layer (a FlatGeobuf file holds one), all the features, told apart
  by their ``role`` field as in the GeoJSON.

Fields are typed from the values: floats REAL, integers INTEGER, booleans BOOLEAN
(stored as INTEGER 0/1), strings TEXT, no value NULL. A pair is two fields --
``length_km_range`` becomes ``length_km_low`` and ``length_km_high``, ``head_lonlat``
becomes ``head_lon`` and ``head_lat`` (any ``*_range`` and ``*_lonlat`` alike) -- and other
lists (``occluded_stretches_km``, ``notes``) are JSON text. Files are written in a private
temporary directory next to the target and renamed into place (see
:func:`queuemeasure.export.atomic_dir_path`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .errors import OutputError
from .export import atomic_dir_path
from .formats import Format, vector_format

if TYPE_CHECKING:  # pragma: no cover
    from .result import QueueResult

__all__ = ["Layer", "LAYER_OF_ROLE", "pair_fields", "flat_properties", "layer_tables",
           "result_layers", "write_layers", "write_result"]

#: GeoPackage layer of each GeoJSON ``role``; other roles get a layer of their own name.
LAYER_OF_ROLE = {"queue": "queue", "vehicle": "vehicles", "head": "endpoints", "tail": "endpoints"}
#: Layers a result's GeoPackage always has (empty when there is nothing to put in them).
RESULT_LAYERS = {"queue": "LineString", "vehicles": "Polygon", "endpoints": "Point"}
#: Pairs whose names do not end in ``_range`` or ``_lonlat``.
_PAIRS = {"vehicle_count_estimate"}


@dataclass
class Layer:
    """One table to write: WKB geometries and typed columns with null masks."""

    name: str
    geometry_type: str
    geometries: np.ndarray                      # object array of WKB bytes or None
    fields: list[str] = field(default_factory=list)
    columns: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.geometries)


def pair_fields(key: str) -> tuple[str, str] | None:
    """The two field names a pair-valued property is split into, or None.

    >>> pair_fields("length_km_range"), pair_fields("head_lonlat"), pair_fields("score")
    (('length_km_low', 'length_km_high'), ('head_lon', 'head_lat'), None)
    """
    if key.endswith("_lonlat"):
        return f"{key[:-len('_lonlat')]}_lon", f"{key[:-len('_lonlat')]}_lat"
    if key.endswith("_range"):
        return f"{key[:-len('_range')]}_low", f"{key[:-len('_range')]}_high"
    if key in _PAIRS:
        return f"{key}_low", f"{key}_high"
    return None


def flat_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """A feature's properties with each pair split into two fields (see :func:`pair_fields`)."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        names = pair_fields(key)
        if names is not None and (value is None or (isinstance(value, (list, tuple)) and len(value) == 2)):
            a, b = (None, None) if value is None else value
            out[names[0]], out[names[1]] = a, b
        else:
            out[key] = value
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _column(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Typed values and null mask: bool, int64, float64, str, else JSON text."""
    mask = np.array([v is None for v in values], dtype=bool)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return np.array([bool(v) if v is not None else False for v in values], dtype=bool), mask
    if present and all(_is_number(v) for v in present):
        if all(isinstance(v, (int, np.integer)) for v in present):
            return np.array([0 if v is None else int(v) for v in values], dtype=np.int64), mask
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64), mask
    if all(isinstance(v, str) for v in present):
        return np.array(values, dtype=object), mask
    text = [None if v is None else json.dumps(v, allow_nan=False) for v in values]
    return np.array(text, dtype=object), mask


def _wkb(geometries: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
    """GeoJSON geometries (or None) as an object array of WKB (or None), in one GEOS pass."""
    import shapely

    out = np.full(len(geometries), None, dtype=object)
    present = [i for i, g in enumerate(geometries) if g is not None]
    if present:
        text = [json.dumps(geometries[i]) for i in present]  # repr of floats: exact round trip
        out[present] = shapely.to_wkb(shapely.from_geojson(text))
    return out


def _geometry_type(features: Sequence[Mapping[str, Any]], default: str) -> str:
    kinds = {f["geometry"]["type"] for f in features if f.get("geometry")}
    return kinds.pop() if len(kinds) == 1 else (default if not kinds else "Unknown")


def layer_tables(features: Iterable[Mapping[str, Any]], layer_of: Callable[[Mapping[str, Any]], str],
                 geometry_types: Mapping[str, str] | None = None) -> list[Layer]:
    """Group GeoJSON features into :class:`Layer` tables (fields in order of appearance).

    Parameters
    ----------
    features : iterable of dict
        GeoJSON Features in WGS84 (null geometries allowed).
    layer_of : callable
        Feature -> name of its layer.
    geometry_types : mapping, optional
        Layers to create even when empty, with their geometry type (also the type of a
        layer whose features have no geometry); layers of mixed types are ``Unknown``.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {name: [] for name in (geometry_types or {})}
    for feat in features:
        groups.setdefault(layer_of(feat), []).append(feat)
    layers = []
    for name, feats in groups.items():
        rows = [flat_properties(f.get("properties") or {}) for f in feats]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        layer = Layer(name, _geometry_type(feats, (geometry_types or {}).get(name, "Unknown")),
                      _wkb([f.get("geometry") for f in feats]))
        for key in keys:
            values, mask = _column([r.get(key) for r in rows])
            layer.fields.append(key)
            layer.columns.append(values)
            layer.masks.append(mask)
        layers.append(layer)
    return layers


def result_layers(fc: Mapping[str, Any], *, single: str | None = None) -> list[Layer]:
    """The layers of a result's FeatureCollection: ``queue``, ``vehicles``, ``endpoints``.

    With ``single``, one layer of that name holding every feature (FlatGeobuf).
    """
    feats = fc.get("features", [])
    if single is not None:
        return layer_tables(feats, lambda f: single, {single: "Unknown"})
    return layer_tables(
        feats, lambda f: LAYER_OF_ROLE.get(str((f.get("properties") or {}).get("role")),
                                           str((f.get("properties") or {}).get("role"))),
        RESULT_LAYERS)


def write_layers(path: str | os.PathLike[str], layers: Sequence[Layer], fmt: Format, *,
                 overwrite: bool = False, description: str | None = None) -> Path:
    """Write ``layers`` to ``path`` in ``fmt`` (GeoPackage or FlatGeobuf), atomically.

    ``description`` goes into each layer's description (GeoPackage's gpkg_contents,
    FlatGeobuf's header), e.g. to mark a SYNTHETIC result. Returns the path.
    """
    from pyogrio.raw import write

    if fmt.key == "fgb" and len(layers) != 1:
        raise ValueError("a FlatGeobuf file holds exactly one layer")
    with atomic_dir_path(path, overwrite=overwrite) as tmp:
        for layer in layers:
            options: dict[str, str] = {}
            if description:
                options["DESCRIPTION"] = description
            if fmt.key == "fgb" and any(g is None for g in layer.geometries):
                options["SPATIAL_INDEX"] = "NO"  # its packed R-tree cannot hold a null geometry
            try:
                write(str(tmp), layer.geometries, layer.columns, layer.fields, field_mask=layer.masks,
                      layer=layer.name, driver=fmt.driver, geometry_type=layer.geometry_type,
                      crs="EPSG:4326", encoding="UTF-8", layer_options=options)
            except (RuntimeError, ValueError) as exc:  # pyogrio's errors: GDAL could not write
                raise OutputError(f"cannot write {os.fspath(path)} ({fmt.name}, layer {layer.name}): "
                                  f"{' '.join(str(exc).split())}") from exc
    return Path(os.fspath(path))


def write_result(result: "QueueResult", path: str | os.PathLike[str], *, format: str | None = None,
                 overwrite: bool = False, precision: int | None = None) -> Format:
    """Write ``result`` as a vector file chosen by ``format`` or by the extension of ``path``.

    GeoJSON is :meth:`QueueResult.write_geojson`; GeoPackage and FlatGeobuf hold the
    same features (see the module's description). Returns the format written.

    Raises
    ------
    OutputFormatError
        Unknown or refused format, or pyogrio missing for GeoPackage/FlatGeobuf.
    OutputError
        The file cannot be written (exists without ``overwrite``, directory missing, ...).
    """
    from .result import SYNTHETIC_NOTE

    fmt = vector_format(path, format)
    if fmt.key == "geojson":
        result.write_geojson(path, overwrite=overwrite, precision=precision)
        return fmt
    fc = result.to_geojson(precision)
    single = Path(os.fspath(path)).stem if fmt.key == "fgb" else None
    write_layers(path, result_layers(fc, single=single), fmt, overwrite=overwrite,
                 description=SYNTHETIC_NOTE if result.synthetic else None)
    return fmt
