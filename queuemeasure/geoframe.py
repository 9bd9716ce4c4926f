"""A result as GeoDataFrames (geopandas is the optional ``geo`` extra).

The rows are the features of :meth:`QueueResult.to_geojson` (WGS84, EPSG:4326) and the
columns their properties, with their types: the vehicles' ``s0_m``, ``s1_m``,
``offset_m`` and ``score`` are floats, ``in_queue`` a bool, ``kind``, ``side`` and
``role`` strings -- also when there is no row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import MissingDependencyError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    from .result import QueueResult

__all__ = ["to_geodataframe", "GEO_HINT", "WHAT", "VEHICLE_COLUMNS"]

GEO_HINT = "GeoDataFrames need geopandas: pip install 'queuemeasure[geo]'"
WHAT = ("vehicles", "queue", "all")

#: Columns of the vehicle rows and their dtypes (the vehicle Feature's properties).
VEHICLE_COLUMNS = {
    "role": "object", "kind": "object", "in_queue": "bool", "s0_m": "float64",
    "s1_m": "float64", "offset_m": "float64", "score": "float64", "side": "object",
}


def _geopandas() -> Any:
    try:
        import geopandas
    except ImportError:
        raise MissingDependencyError(GEO_HINT) from None
    return geopandas


def to_geodataframe(result: "QueueResult", what: str = "vehicles", *,
                    precision: int | None = None) -> Any:
    """The result's features as a ``geopandas.GeoDataFrame`` in EPSG:4326.

    Parameters
    ----------
    result : QueueResult
    what : {"vehicles", "queue", "all"}
        One row per detected vehicle (Polygon), the queue line (one LineString row, none
        when there is no queue; its columns are :meth:`QueueResult.to_dict`'s keys), or
        every feature of :meth:`QueueResult.to_geojson` (queue, head, tail, vehicles;
        the ``role`` column tells them apart).
    precision : int, optional
        Round coordinates to this many decimals.

    Raises
    ------
    MissingDependencyError
        When geopandas is not installed (the message says how to install it).
    OptionError
        When ``what`` is not one of the above.
    """
    if what not in WHAT:
        raise OptionError(f"what must be one of {', '.join(WHAT)}, not {what!r}")
    gpd = _geopandas()
    feats = result.to_geojson(precision)["features"]
    roles = {"vehicles": ("vehicle",), "queue": ("queue",), "all": None}[what]
    if roles is not None:
        feats = [f for f in feats if f["properties"]["role"] in roles]
    if what == "vehicles":
        columns = list(VEHICLE_COLUMNS)
    elif feats:
        columns = list(dict.fromkeys(k for f in feats for k in f["properties"]))
    else:
        columns = ["role", *result.to_dict()]
    gdf = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326", columns=[*columns, "geometry"])
    if what == "vehicles":
        gdf = gdf.astype(VEHICLE_COLUMNS)
    return gdf[[*columns, "geometry"]]
