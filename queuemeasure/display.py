"""Short views of results for a terminal and a notebook: ``repr`` and ``_repr_html_``.

A result holds every vehicle's outline and every vertex of the queue line: printing them
would freeze a notebook. These views show the facts a person reads first -- length and
range, count, truncation, mode, the tile -- in a few lines, or in a small HTML table with
a thumbnail of the map (:func:`queuemeasure.quicklook.thumbnail`, when matplotlib is
installed).
"""

from __future__ import annotations

import base64
import html
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .result import QueueResult, Vehicle

__all__ = ["result_facts", "result_repr", "result_html", "vehicle_repr"]

_REASONS = {
    "image_edge": "runs off the edge of the image",
    "nodata": "runs into missing data",
    "road_end": "reaches the end of the road",
}


def _tile_name(tile: str, limit: int = 60) -> str:
    name = os.path.basename(str(tile)) or str(tile)
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _lonlat(p: Any) -> str:
    return "-" if p is None else f"{p[0]:.6f}, {p[1]:.6f}"


def result_facts(result: "QueueResult") -> list[tuple[str, str]]:
    """The facts shown by both views, as (label, text) pairs; short strings only."""
    lo, hi = result.length_km_range
    bound = "at least " if result.truncated else ""
    mode = getattr(result, "mode", "vehicles")
    count = getattr(result, "vehicle_count_estimate", None)
    count_text = f"{result.vehicle_count}" + (f" (estimate {count[0]}-{count[1]})" if count else "")
    crs = result.raster_crs if len(result.raster_crs) < 40 else "custom (WKT)"
    trunc = "no"
    if result.truncated:
        why = _REASONS.get(str(result.truncation_reason), str(result.truncation_reason))
        trunc = f"yes: the queue {why}; the length is a lower bound"
    facts = [
        ("length", f"{bound}{result.length_km:.3f} km (range {lo:.3f}-{hi:.3f} km)"),
        ("vehicles queued", f"{count_text} of {len(result.vehicles)} detected"),
        ("truncated", trunc),
        ("mode", mode + (" (low confidence)" if getattr(result, "low_confidence", False) else "")),
        ("occluded in queue", f"{result.occluded_km:.3f} km in {len(result.occluded_stretches_km)} stretch(es)"),
        ("head", _lonlat(result.head_lonlat) + f" ({result.direction})"),
        ("tail", _lonlat(result.tail_lonlat)),
        ("tile", f"{_tile_name(result.tile)} ({crs}, {result.gsd_m:.2f} m pixel)"
                 + (" SYNTHETIC" if result.synthetic else "")),
        ("searched", f"{result.road_km_searched:.3f} km of road, max gap {result.max_gap_m:g} m"),
    ]
    detector = getattr(result, "detector", None)
    if detector:
        facts.insert(4, ("detector", str(detector)))
    if result.notes:
        facts.append(("notes", f"{len(result.notes)} (see .notes)"))
    return facts


def result_repr(result: "QueueResult") -> str:
    """A few lines: the facts of :func:`result_facts`, never the arrays."""
    facts = result_facts(result)
    lines = [f"<QueueResult {facts[0][1]}, {result.vehicle_count} vehicles"]
    lines += [f"  {label}: {text}" for label, text in facts[1:]]
    return "\n".join(lines) + ">"


def vehicle_repr(v: "Vehicle") -> str:
    """One line: kind, interval along the road, offset, score, queued or not."""
    lon, lat = v.centre_lonlat
    return (
        f"Vehicle({v.kind}, s {v.s0_m:.1f}-{v.s1_m:.1f} m, offset {v.offset_m:+.1f} m, "
        f"score {v.score:.2f}, {'in queue' if v.in_queue else 'not queued'}, {v.side}, "
        f"at {lon:.6f},{lat:.6f})"
    )


def _thumbnail_img(result: "QueueResult") -> str:
    """An <img> with the map's thumbnail inline, or "" without matplotlib or pixels."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ""
    from .errors import QueueMeasureError
    from .quicklook import thumbnail

    try:
        jpeg = thumbnail(result)
    except (QueueMeasureError, OSError, ValueError):  # the tile moved, or cannot be read
        return ""
    b64 = base64.b64encode(jpeg).decode("ascii")
    return (f'<img src="data:image/jpeg;base64,{b64}" alt="map of the queue" '
            f'style="max-width:280px;border:1px solid #ccc"/>')


def result_html(result: "QueueResult") -> str:
    """A compact HTML table of the facts, with the map's thumbnail beside it."""
    rows = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{html.escape(k)}</th>'
        f'<td style="text-align:left">{html.escape(v)}</td></tr>'
        for k, v in result_facts(result)
    )
    note = ""
    if result.synthetic:
        from .result import SYNTHETIC_NOTE

        note = f'<p style="color:#c0392b;font-weight:bold">{html.escape(SYNTHETIC_NOTE)}</p>'
    table = (f'<div><b>QueueResult</b>{note}'
             f'<table style="font-size:90%">{rows}</table></div>')
    img = _thumbnail_img(result)
    return (f'<div style="display:flex;gap:1em;align-items:flex-start">{table}'
            f'{f"<div>{img}</div>" if img else ""}</div>')
