"""Vehicle detectors: a straightened strip in, vehicles out.

Two detectors stand behind one interface, :func:`detect_vehicles`:

``rules`` (:mod:`queuemeasure.detect.rules`)
    Hand-written image analysis: a road-surface model, an anomaly score, segmentation and
    splitting by rules sized in metres. No weights.
``learned`` (:mod:`queuemeasure.detect.learned`)
    A small convolutional network (ONNX weights shipped in the package, run by onnxruntime
    on the CPU) that finds vehicle centres and sizes; see ``MODEL.md``.

Both take the strip made by :mod:`queuemeasure.corridor` (rows along the road, columns
across it, ``step_m`` metres each) and return a :class:`StripDetections`; the rest of the
pipeline does not know which one ran. ``"auto"`` is the default detector,
:data:`DEFAULT_DETECTOR` -- the one that measures better on real frames not used in
development (see MODEL.md and benchmarks/accuracy.py) -- on colour images, and the rule
detector on panchromatic ones.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import OptionError
from ._types import StripDetections, StripVehicle

__all__ = ["StripVehicle", "StripDetections", "detect_vehicles", "get_detector", "resolve_detector",
           "DETECTORS", "DEFAULT_DETECTOR"]

#: The detectors by name.
DETECTORS = ("rules", "learned")
#: What ``"auto"`` means: the detector that measures better on held-out real frames.
DEFAULT_DETECTOR = "learned"


def resolve_detector(name: str | None, n_bands: int = 3) -> str:
    """The detector a name stands for.

    ``None`` and ``"auto"`` stand for :data:`DEFAULT_DETECTOR` on colour images
    (``n_bands >= 3``) and for the rule detector on a single band: the network saw grey
    only in SYNTHETIC training scenes and fails on painted panchromatic test scenes.

    Raises
    ------
    queuemeasure.errors.OptionError
        For an unknown name.
    """
    if name is None or name == "auto":
        return DEFAULT_DETECTOR if n_bands >= 3 else "rules"
    if name not in DETECTORS:
        raise OptionError(f"unknown detector {name!r} (choose from auto, {', '.join(DETECTORS)})")
    return name


def get_detector(name: str | None = "auto") -> Callable[..., StripDetections]:
    """The ``detect_vehicles`` function of the detector ``name``.

    Parameters
    ----------
    name : {"auto", "rules", "learned"}
        ``"auto"`` (or ``None``) is :data:`DEFAULT_DETECTOR`.

    Returns
    -------
    callable
        ``f(image, valid=None, *, step_m, half_width_m=6.0, sensitivity=1.0, min_score=0.6,
        centre_rows=None) -> StripDetections``.
    """
    name = resolve_detector(name)
    if name == "learned":
        from .learned import detect_vehicles as learned

        return learned
    from .rules import detect_vehicles as rules

    return rules


def detect_vehicles(image: np.ndarray, valid: np.ndarray | None = None, *, detector: str | None = "auto",
                    **kw: Any) -> StripDetections:
    """Find the vehicles in a straightened road strip with the chosen detector.

    Parameters
    ----------
    image : (rows, cols, bands) or (rows, cols) array
        The strip, values scaled to about 0..1; rows along the road, columns across it.
    valid : (rows, cols) bool array, optional
        False where the tile has no data.
    detector : {"auto", "rules", "learned"}
        Which detector runs (``"auto"``: :data:`DEFAULT_DETECTOR`).
    **kw
        ``step_m`` (required), ``half_width_m``, ``sensitivity``, ``min_score``,
        ``centre_rows``: see :func:`queuemeasure.detect.rules.detect_vehicles`.

    Returns
    -------
    StripDetections

    Examples
    --------
    >>> import numpy as np
    >>> strip = np.full((200, 40, 3), 0.35, np.float32)   # 0.5 m/px: 100 m x 20 m of asphalt
    >>> strip[50:59, 15:19] = (0.1, 0.2, 0.8)              # a blue car, 4.5 m x 2 m
    >>> found = detect_vehicles(strip, step_m=0.5, detector="rules").vehicles
    >>> len(found), found[0].kind
    (1, 'car')
    """
    return get_detector(detector)(image, valid, **kw)
