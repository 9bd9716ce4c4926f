"""What every vehicle detector returns: the vehicles found in a straightened strip.

A detector takes a strip (rows along the road, columns across it, both ``step_m`` metres;
see :mod:`queuemeasure.corridor`) and returns a :class:`StripDetections`. The rest of the
pipeline sees only these two types, never which detector made them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["StripVehicle", "StripDetections"]


@dataclass(frozen=True)
class StripVehicle:
    """One vehicle found in a strip, in strip pixel coordinates.

    Attributes
    ----------
    row0, row1 : float
        Along-road extent; ``row1`` is exclusive, so the length is ``(row1 - row0) * step_m``.
    col0, col1 : float
        Across-road extent (``col1`` exclusive).
    col_center : float
        Centre of the footprint across the road.
    score : float
        ``>= 1`` means accepted at the default sensitivity; weaker candidates down to
        ``min_score`` are returned too, for uncertainty ranges.
    kind : str
        ``"car"``, ``"van"``, ``"truck"`` (trucks and buses) or ``"unknown"``.
    polygon : numpy.ndarray
        ``(N, 2)`` closed outline ``(row, col)`` of the footprint.
    """

    row0: float
    row1: float
    col0: float
    col1: float
    col_center: float
    score: float
    kind: str
    polygon: np.ndarray = field(repr=False, compare=False)

    @property
    def row_center(self) -> float:
        """Centre of the footprint along the road, in rows."""
        return 0.5 * (self.row0 + self.row1)


@dataclass(frozen=True)
class StripDetections:
    """Everything :func:`detect_vehicles` found in a strip.

    Attributes
    ----------
    vehicles : list of StripVehicle
        Objects with ``score >= min_score`` whose centre lies within ``half_width_m`` of the
        centreline, sorted by ``row0``.
    occluded : numpy.ndarray
        ``(rows,)`` bool: stations where the carriageway is hidden (canopy) or has no valid
        data, where a vehicle could stand unseen.
    anomaly : numpy.ndarray
        ``(rows, cols)`` float32 anomaly score, in units of the threshold-free surface noise.
    surface : numpy.ndarray
        ``(rows, bands)`` float32 road-surface model (what empty road looks like there).
    carriageway : numpy.ndarray
        ``(rows, 2)`` float32 estimated carriageway extent ``[col0, col1)`` (NaN where unknown).
    threshold : float
        The anomaly threshold used (``>= threshold`` seeds an accepted vehicle).
    """

    vehicles: list[StripVehicle]
    occluded: np.ndarray
    anomaly: np.ndarray
    surface: np.ndarray
    carriageway: np.ndarray
    threshold: float
