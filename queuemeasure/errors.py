"""Errors and warnings of queuemeasure.

One root, :class:`QueueMeasureError`; each leaf is also the builtin a caller would
naturally catch (as in rasterio: ``class RasterioIOError(RasterioError, OSError)``).
The CLI turns every :class:`InputError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
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
    "RemoteError",
    "ItemError",
    "CloudedError",
    "QueueMeasureWarning",
    "SlowReadWarning",
    "RoadGapWarning",
    "RoadWarning",
    "WorkerLostWarning",
]


class QueueMeasureError(Exception):
    """Root of every error raised by queuemeasure."""


class InputError(QueueMeasureError, ValueError):
    """Bad input from the user: a file, a road, an option. The CLI exits 2 on it."""


class RasterError(InputError):
    """The tile cannot be opened or is not usable (no CRS, no geotransform, ...)."""


class RasterReadError(QueueMeasureError, OSError):
    """Reading pixels from an opened tile failed (corrupt blocks, network)."""


class RoadError(InputError):
    """The road cannot be parsed, joined into one path, or does not meet the tile."""


class HeadError(InputError):
    """The head (checkpoint) is unusable, e.g. too far from the road."""


class CRSError(InputError):
    """A coordinate reference system could not be understood."""


class OptionError(InputError):
    """An option value is out of its valid range."""


class OutputError(QueueMeasureError, OSError):
    """An output cannot be written (exists without overwrite, directory missing, ...)."""


class OutputFormatError(InputError):
    """An output's format is unknown, refused (Shapefile) or needs a missing package."""


class MissingDependencyError(QueueMeasureError, ImportError):
    """An optional extra is not installed; the message says which and how to install it."""


class RemoteError(QueueMeasureError, OSError):
    """A server failed: a STAC catalogue or an asset host unreachable, a 404, a timeout.

    Not the user's input: the CLI exits 1 on it (a server failure), with one line.
    """


class ItemError(InputError):
    """A STAC item is malformed or lacks a band the measurement needs."""


class CloudedError(InputError):
    """The road's corridor is entirely covered by cloud (or snow, shadow, no data)."""


class ModelError(QueueMeasureError, RuntimeError):
    """The learned detector's weights are unusable: a model file without the metadata
    inference needs (its working grid, ``work_step_m``) or not a valid ONNX model."""


class QueueMeasureWarning(UserWarning):
    """Root of queuemeasure's warnings."""


class SlowReadWarning(QueueMeasureWarning):
    """The tile is not tiled: windowed reads decode whole strips and will be slow."""


class RoadGapWarning(QueueMeasureWarning):
    """Parts of the road were joined across a small gap."""


class RoadWarning(QueueMeasureWarning):
    """The road was built with a caveat (e.g. OSM one-way tags ignored, a side chosen)."""


class WorkerLostWarning(QueueMeasureWarning):
    """A detection worker process died (e.g. killed for memory); the rest ran in process."""
