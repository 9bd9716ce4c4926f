"""What every vehicle detector returns: the vehicles found in a straightened strip.

A detector takes a strip (rows along the road, columns across it, both ``step_m`` metres;
see :mod:`queuemeasure.corridor`) and returns a :class:`StripDetections`. The rest of the
pipeline sees only these two types, never which detector made them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["StripVehicle", "StripDetections", "strip_input"]


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


def strip_input(image: np.ndarray, valid: np.ndarray | None, step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A detector's input checked: the strip as (rows, cols, bands) float32 and the mask of
    its usable pixels (finite in every band and ``valid``).

    Raises
    ------
    ValueError
        For a strip that is not (rows, cols[, bands]), a step that is not positive, or a
        ``valid`` mask of another shape.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] < 1:
        raise ValueError(f"image must be (rows, cols[, bands]), got shape {np.shape(image)}")
    if not step_m or step_m <= 0:
        raise ValueError("step_m must be positive")
    img = img.astype(np.float32, copy=False)
    rows, cols = img.shape[:2]
    ok = np.isfinite(img[..., 0])  # band by band: np.all over a short last axis is slow
    for b in range(1, img.shape[2]):
        ok &= np.isfinite(img[..., b])
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (rows, cols):
            raise ValueError(f"valid must have shape {(rows, cols)}, got {valid.shape}")
        ok &= valid
    return img, ok
