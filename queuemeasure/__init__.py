"""queuemeasure: measure the length of a vehicle queue along a road from a GeoTIFF.

>>> import queuemeasure as qm
>>> result = qm.measure("tile.tif", road="road.geojson", head=(44.63, 42.74))  # doctest: +SKIP
>>> result.length_km, result.vehicle_count, result.truncated  # doctest: +SKIP

Heavy submodules are imported on first use, so ``import queuemeasure`` is fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    CRSError,
    HeadError,
    InputError,
    MissingDependencyError,
    OptionError,
    OutputError,
    OutputFormatError,
    QueueMeasureError,
    QueueMeasureWarning,
    RasterError,
    RasterReadError,
    RoadError,
    RoadGapWarning,
    RoadWarning,
    SlowReadWarning,
    WorkerLostWarning,
)
from .errors import CloudedError, ItemError, RemoteError

if TYPE_CHECKING:  # pragma: no cover
    from .batch import BatchResult, measure_many
    from .detect import detect_vehicles
    from .info import tile_info
    from .pipeline import measure
    from .result import QueueResult, Vehicle
    from .osm import OsmRoad, osm_road, read_osm
    from .road import load_road, prepare_road
    from .trace import snap_road, trace_road

__all__ = [
    "__version__",
    "measure",
    "measure_many",
    "BatchResult",
    "tile_info",
    "trace_road",
    "snap_road",
    "detect_vehicles",
    "load_road",
    "prepare_road",
    "osm_road",
    "read_osm",
    "OsmRoad",
    "QueueResult",
    "Vehicle",
    "QueueMeasureError",
    "InputError",
    "RasterError",
    "RasterReadError",
    "RoadError",
    "HeadError",
    "CRSError",
    "OptionError",
    "OutputError",
    "OutputFormatError",
    "MissingDependencyError",
    "QueueMeasureWarning",
    "SlowReadWarning",
    "RoadGapWarning",
    "WorkerLostWarning",
    "RemoteError",
    "ItemError",
    "CloudedError",
    "search_items",
    "choose_reference",
    "open_item",
    "verdict",
    "check_claim",
]

_LAZY = {
    "measure": ("pipeline", "measure"),
    "measure_many": ("batch", "measure_many"),
    "BatchResult": ("batch", "BatchResult"),
    "tile_info": ("info", "tile_info"),
    "trace_road": ("trace", "trace_road"),
    "snap_road": ("trace", "snap_road"),
    "detect_vehicles": ("detect", "detect_vehicles"),
    "load_road": ("road", "load_road"),
    "prepare_road": ("road", "prepare_road"),
    "osm_road": ("osm", "osm_road"),
    "read_osm": ("osm", "read_osm"),
    "OsmRoad": ("osm", "OsmRoad"),
    "QueueResult": ("result", "QueueResult"),
    "Vehicle": ("result", "Vehicle"),
    "search_items": ("search", "search_items"),
    "choose_reference": ("search", "choose_reference"),
    "open_item": ("stac", "open_item"),
    "verdict": ("check", "verdict"),
    "check_claim": ("check", "check_claim"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'queuemeasure' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
