"""A claim about a queue ("more than 20 km", "3 500 vehicles") against a measurement.

:func:`verdict` compares a claimed length (and optionally a count) with a measurement
(a :class:`~queuemeasure.result.QueueResult` or its ``to_dict()``, e.g. a saved
``measure --json``) and gives one of four verdicts:

``cannot_tell``
    The evidence is too weak to say anything: the measurement is flagged
    ``low_confidence``, or it is cut off (image edge, cloud, no data) before any queue
    was seen.
``consistent``
    The claim's interval and the measurement's meet. For a measurement cut off at the
    edge of what the image shows (``truncated``: a lower bound), the bound must already
    reach the claim (the image shows at least as much queue as claimed).
``lower_bound``
    The measurement is a lower bound that falls short of the claim: the queue runs off
    the image or into cloud before reaching the claimed length, so the claim can be
    neither confirmed nor refuted above the measured bound.
``contradicted``
    The claim's interval and the measurement's do not meet: the claim overstates an
    untruncated queue, or understates even the measured lower bound. ``difference_km``
    says by how much (claim minus measured length; the minimum correction is
    ``gap_km``).

A claim's interval: ``about`` K (the default; figures in the news are rounded) is
K ± ``tolerance`` (10 %); ``at-least`` ("more than K") is [K, ∞); ``at-most`` [0, K].
The measurement's interval is ``length_km_range``, open upwards when truncated.

Count and length agree when the metres of queue per vehicle per lane that they imply
(length × lanes / count, over the length's range and the lanes) can lie between
:data:`SPACING_M` (5 m: cars bumper to bumper, to 25 m: trucks with gaps). Lanes are
``lanes`` when given, else 1 to 2. The count is the claimed count, else the measured
``vehicle_count_estimate`` (occupancy mode) or ``vehicle_count``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import OptionError

__all__ = ["VERDICTS", "CLAIM_KINDS", "SPACING_M", "Verdict", "verdict", "claim_interval"]

VERDICTS = ("consistent", "contradicted", "lower_bound", "cannot_tell")
CLAIM_KINDS = ("about", "at-least", "at-most")
#: Default relative tolerance of an "about K km" claim.
DEFAULT_TOLERANCE = 0.10
#: Plausible queue metres per vehicle per lane: cars bumper to bumper to trucks with gaps.
SPACING_M = (5.0, 25.0)
#: Lanes assumed when neither the caller nor the measurement says.
DEFAULT_LANES = (1, 2)


@dataclass
class Verdict:
    """The verdict on a claim, with its reasons; :meth:`to_dict` is ``check --json``."""

    verdict: str
    claim_km: float
    claim_kind: str
    claim_range_km: tuple[float, float]
    length_km: float
    length_km_range: tuple[float, float]
    lower_bound: bool
    difference_km: float | None
    gap_km: float | None
    reasons: list[str]
    claim_count: int | None = None
    count: dict[str, Any] | None = None
    measurement: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def summary(self) -> str:
        """A human summary: the verdict in capitals, then the reasons."""
        head = {
            "consistent": "CONSISTENT",
            "contradicted": "CONTRADICTED",
            "lower_bound": "LOWER BOUND ONLY",
            "cannot_tell": "CANNOT TELL",
        }[self.verdict]
        return "\n".join([f"{head}: {self.reasons[0]}", *self.reasons[1:]])

    @property
    def banner(self) -> str:
        """One short line for a picture: the verdict, the claim and the measurement."""
        head = self.summary.split(":", 1)[0]
        lo, hi = self.length_km_range
        claim = {"about": "about", "at-least": "at least", "at-most": "at most"}[self.claim_kind]
        meas = (f"at least {self.length_km:.1f} km (image cut off)" if self.lower_bound
                else f"{self.length_km:.1f} km (range {lo:.1f}-{hi:.1f} km)")
        count = ""
        if self.count is not None and self.claim_count is not None:
            count = f"; {self.claim_count} vehicles {'fit' if self.count['agrees'] else 'do not fit'} it"
        return f"claim {head}: {claim} {self.claim_km:g} km vs measured {meas}{count}"

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return None if v is None or math.isinf(v) else v

        return {
            "verdict": self.verdict,
            "claim_km": self.claim_km,
            "claim_kind": self.claim_kind,
            "claim_range_km": [num(self.claim_range_km[0]), num(self.claim_range_km[1])],
            "claim_count": self.claim_count,
            "length_km": self.length_km,
            "length_km_range": [self.length_km_range[0], self.length_km_range[1]],
            "length_is_lower_bound": self.lower_bound,
            "difference_km": self.difference_km,
            "gap_km": self.gap_km,
            "count_check": self.count,
            "count_agrees": None if self.count is None else self.count.get("agrees"),
            "reasons": list(self.reasons),
            "summary": self.summary,
            "measurement": self.measurement,
        }


def claim_interval(claim_km: float, kind: str = "about", tolerance: float = DEFAULT_TOLERANCE) -> tuple[float, float]:
    """The lengths (km) a claim allows; see the module doc."""
    if not (isinstance(claim_km, (int, float)) and math.isfinite(claim_km) and claim_km > 0):
        raise OptionError(f"the claimed length must be a positive number of km, not {claim_km}")
    if kind not in CLAIM_KINDS:
        raise OptionError(f"claim kind must be one of {', '.join(CLAIM_KINDS)}, not {kind!r}")
    if not 0 <= tolerance < 1:
        raise OptionError(f"tolerance must be between 0 and 1 (a fraction), not {tolerance}")
    if kind == "at-least":
        return float(claim_km), math.inf
    if kind == "at-most":
        return 0.0, float(claim_km)
    return claim_km * (1 - tolerance), claim_km * (1 + tolerance)


def _as_dict(result: Any) -> dict[str, Any]:
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if isinstance(result, Mapping):
        if result.get("type") == "FeatureCollection" and "length_km" in result.get("properties", {}):
            return dict(result["properties"])  # a measure --out GeoJSON
        if "length_km" in result:
            return dict(result)
    raise OptionError("not a measurement: expected the JSON of `queuemeasure measure --json` (with length_km)")


def _km(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.1f}"


def _length_phrase(m: dict[str, Any], lo: float, hi: float, lower: bool) -> str:
    L = float(m["length_km"])
    if lower:
        return f"at least {L:.1f} km (lower end {lo:.1f} km)"
    return f"{L:.1f} km (range {lo:.1f}-{hi:.1f} km)"


def _why_truncated(m: dict[str, Any]) -> str:
    return {
        "image_edge": "the queue runs off the edge of the image",
        "nodata": "the queue runs into missing data",
        "road_end": "the queue reaches the end of the given road (give a longer road)",
        "cloud": "the queue runs into cloud",
        "occluded": "the queue runs into cloud or an occlusion",
    }.get(str(m.get("truncation_reason")), f"the measurement is truncated ({m.get('truncation_reason')})")


def _measured_count(m: dict[str, Any]) -> tuple[int, int] | None:
    """The measurement's vehicle count estimate (occupancy) or count (vehicles mode)."""
    if m.get("vehicle_count_estimate"):
        a, b = (int(v) for v in m["vehicle_count_estimate"])
        return a, b
    if m.get("vehicle_count"):
        return int(m["vehicle_count"]), int(m["vehicle_count"])
    return None


def _count_check(m: dict[str, Any], claim_count: int | None, lo: float, hi: float,
                 lanes: tuple[int, int] | None) -> dict[str, Any] | None:
    """Whether a count and the measured length agree (metres per vehicle per lane)."""
    if claim_count is not None:
        n_lo = n_hi = int(claim_count)
        source = "claimed"
    elif _measured_count(m) is not None:
        n_lo, n_hi = _measured_count(m)  # type: ignore[misc]
        source = "estimated" if m.get("vehicle_count_estimate") else "measured"
    else:
        return None
    if n_hi <= 0:
        return None
    if lanes is None:
        lanes = (int(m["lanes"]), int(m["lanes"])) if m.get("lanes") else DEFAULT_LANES
    s_lo = lo * 1000.0 * lanes[0] / n_hi
    s_hi = hi * 1000.0 * lanes[1] / max(n_lo, 1)
    agrees = s_lo <= SPACING_M[1] and s_hi >= SPACING_M[0]
    lane_txt = f"{lanes[0]}" if lanes[0] == lanes[1] else f"{lanes[0]}-{lanes[1]}"
    count_txt = f"{n_lo}" if n_lo == n_hi else f"{n_lo}-{n_hi}"
    if agrees:
        sentence = (f"the {source} count of {count_txt} vehicles fits the measured length: "
                    f"{_km(s_lo)}-{_km(s_hi)} m per vehicle per lane over {lane_txt} lane(s), "
                    f"within the {SPACING_M[0]:g}-{SPACING_M[1]:g} m of a real queue")
    else:
        side = "too many vehicles for" if s_hi < SPACING_M[0] else "too few vehicles for"
        sentence = (f"the {source} count of {count_txt} vehicles does not fit the measured length ({side} it): "
                    f"{_km(s_lo)}-{_km(s_hi)} m per vehicle per lane over {lane_txt} lane(s), "
                    f"outside {SPACING_M[0]:g}-{SPACING_M[1]:g} m")
    measured = _measured_count(m)
    if claim_count is not None and measured is not None:
        a, b = measured
        where = "within" if a <= claim_count <= b else ("above" if claim_count > b else "below")
        what = "estimate" if m.get("vehicle_count_estimate") else "count"
        sentence += f"; the claimed count is {where} the measured {what} of {a}-{b}" if a != b else \
            f"; the claimed count is {where} the measured {what} of {a}"
    elif source == "estimated":
        sentence += " (the estimate comes from the length itself: a check of the spacing prior only)"
    return {
        "count": [n_lo, n_hi], "count_source": source, "lanes": list(lanes),
        "measured_count": None if measured is None else list(measured),
        "m_per_vehicle_per_lane": [s_lo, None if math.isinf(s_hi) else s_hi],
        "plausible_m_per_vehicle_per_lane": list(SPACING_M), "agrees": agrees, "sentence": sentence,
    }


def _judge(m: dict[str, Any], claim: str, claim_km: float, c: tuple[float, float],
           r: tuple[float, float], lower: bool) -> tuple[str, str, float | None, float | None]:
    """The verdict, its first reason, and for a contradiction the difference and the gap."""
    (c_lo, c_hi), (lo, hi) = c, r
    L = float(m["length_km"])
    m_hi = math.inf if lower else hi
    length = _length_phrase(m, lo, hi, lower)
    if m.get("low_confidence"):
        why = [n for n in m.get("notes", []) if "confiden" in n.lower() or "weak" in n.lower()]
        return "cannot_tell", (f"the measurement is flagged low_confidence: the image's evidence is too weak "
                               f"to set against a claim of {claim}" + (f" ({why[0]})" if why else "")), None, None
    if lower and hi <= 0:
        return "cannot_tell", (f"the image shows no queue before it is cut off ({_why_truncated(m)}), so it "
                               f"says nothing about a claim of {claim}"), None, None
    if max(lo, c_lo) <= min(m_hi, c_hi):  # the intervals meet
        if not lower or lo >= c_lo:
            return "consistent", (f"the claim of {claim} agrees with the measured {length}"
                                  + ("; the image already shows at least as much queue as claimed"
                                     if lower else "")), None, None
        return "lower_bound", (f"the image shows {length} but {_why_truncated(m)}: the claim of {claim} "
                               f"can be neither confirmed nor refuted above {lo:.1f} km"), None, None
    if c_lo > m_hi:
        gap = c_lo - m_hi
        pct = f" ({100 * (claim_km - L) / L:.0f} % longer than measured)" if L >= 0.1 else ""
        return "contradicted", (f"the claim of {claim} overstates the measured {length}: by "
                                f"{claim_km - L:.1f} km{pct}, at least {gap:.1f} km beyond the measured "
                                "range"), claim_km - L, gap
    gap = lo - c_hi
    return "contradicted", (f"the claim of {claim} understates the measured {length}: the queue is at "
                            f"least {gap:.1f} km longer than the claim allows"), claim_km - L, gap


def _context(m: dict[str, Any], cc: dict[str, Any] | None) -> list[str]:
    """The reasons after the first: occlusion, the count, the mode, synthetic data."""
    out = []
    if m.get("occluded_km"):
        out.append(f"{float(m['occluded_km']):.1f} km of the queue was hidden (cloud, trees, no data) "
                   "and bridged; the range allows for it")
    if cc is not None:
        out.append(cc["sentence"])
    if m.get("mode") == "occupancy":
        out.append("measured in occupancy mode (coarse pixels): vehicles are not resolved, "
                   "the count is an estimate")
    if m.get("synthetic"):
        out.append("SYNTHETIC image: a demonstration, not evidence about the real event")
    return out


def verdict(result: Any, claim_km: float, claim_count: int | None = None, *, claim_kind: str = "about",
            tolerance: float = DEFAULT_TOLERANCE, lanes: tuple[int, int] | int | None = None) -> Verdict:
    """Judge a claimed queue length (and count) against a measurement.

    Parameters
    ----------
    result : QueueResult or mapping
        The measurement, or its ``to_dict()`` (``measure --json``; a ``--out`` GeoJSON).
    claim_km : float
        The claimed length in km.
    claim_count : int, optional
        The claimed number of vehicles.
    claim_kind : {"about", "at-least", "at-most"}
        How to read the claim (see the module doc).
    tolerance : float
        Relative tolerance of an "about" claim (0.10: "20 km" allows 18-22 km).
    lanes : int or (int, int), optional
        Lanes the queue stands in (default: the measurement's, else 1 to 2).

    Returns
    -------
    Verdict

    Examples
    --------
    >>> v = verdict({"length_km": 16.2, "length_km_range": [16.0, 16.5], "truncated": True}, 20)
    >>> v.verdict
    'lower_bound'
    >>> verdict({"length_km": 12.0, "length_km_range": [11.6, 12.4], "truncated": False}, 20).verdict
    'contradicted'
    """
    m = _as_dict(result)
    if claim_count is not None and (int(claim_count) != claim_count or claim_count <= 0):
        raise OptionError(f"the claimed count must be a positive whole number, not {claim_count}")
    lanes_t = (lanes, lanes) if isinstance(lanes, int) else (tuple(lanes) if lanes else None)
    if lanes_t is not None and not (1 <= lanes_t[0] <= lanes_t[1] <= 8):
        raise OptionError(f"lanes must be between 1 and 8, not {lanes}")
    c_lo, c_hi = claim_interval(claim_km, claim_kind, tolerance)
    L = float(m["length_km"])
    lo, hi = (float(v) for v in (m.get("length_km_range") or (L, L)))
    lower = bool(m.get("truncated", m.get("length_is_lower_bound", False)))
    m_hi = math.inf if lower else hi
    claim = {"about": f"about {claim_km:g} km", "at-least": f"at least {claim_km:g} km",
             "at-most": f"at most {claim_km:g} km"}[claim_kind]
    kind, first, diff, gap = _judge(m, claim, claim_km, (c_lo, c_hi), (lo, hi), lower)
    cc = _count_check(m, claim_count, lo, m_hi, lanes_t)
    reasons = [first, *_context(m, cc)]
    return Verdict(
        verdict=kind, claim_km=float(claim_km), claim_kind=claim_kind, claim_range_km=(c_lo, c_hi),
        length_km=L, length_km_range=(lo, hi), lower_bound=lower, difference_km=diff, gap_km=gap,
        reasons=reasons, claim_count=None if claim_count is None else int(claim_count), count=cc,
        measurement=m,
    )


def read_measurement(source: Any) -> dict[str, Any] | None:
    """The measurement saved in ``source`` (``measure --json`` output or ``--out`` GeoJSON),
    or None when ``source`` is not such a file (a tile or a STAC item)."""
    import json
    import os
    from pathlib import Path

    if not isinstance(source, (str, os.PathLike)):
        return dict(source) if isinstance(source, Mapping) and "length_km" in source else None
    p = Path(source)
    if p.suffix.lower() not in (".json", ".geojson") or not p.is_file():
        return None
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise OptionError(f"{source} is not JSON") from None
    try:
        return _as_dict(obj)
    except OptionError:
        return None  # a STAC item, say


def check_claim(source: Any, claim_km: float, claim_count: int | None = None, *, road: Any = None,
                head: Any = None, road_select: Any = None, reference: Any = None, reference_days: int = 30, stac: str | None = None,
                claim_kind: str = "about", tolerance: float = DEFAULT_TOLERANCE,
                lanes: int | None = None, **measure_options: Any) -> tuple[Verdict, Any]:
    """Measure ``source`` (a tile or STAC item) or read it (a saved result), then judge.

    Parameters
    ----------
    source : path, URL, dict
        A saved measurement (``measure --json`` or ``--out`` GeoJSON), a tile, or a STAC
        item (file, URL or dict).
    claim_km, claim_count, claim_kind, tolerance, lanes
        As for :func:`verdict`.
    road, head, road_select, reference, measure_options
        As for :func:`queuemeasure.measure` (needed unless ``source`` is a saved result):
        ``road`` may be OpenStreetMap data with ``road_select`` (e.g.
        ``{"ref": "А-161", "toward": (lon, lat)}``), the road ``measure`` would build.
        ``reference`` may be ``"auto"`` for a STAC item (see
        :func:`queuemeasure.search.choose_reference`, with ``reference_days`` and ``stac``).

    Returns
    -------
    (Verdict, QueueResult or None)
        The result is None when ``source`` was a saved measurement.
    """
    saved = read_measurement(source)
    if saved is not None:
        return verdict(saved, claim_km, claim_count, claim_kind=claim_kind, tolerance=tolerance, lanes=lanes), None
    if road is None:
        raise OptionError("give --road ROAD to measure the image (or a saved result JSON)")
    claim_interval(claim_km, claim_kind, tolerance)  # bad claims fail before any reading
    result = measure_source(source, road, head=head, road_select=road_select, reference=reference,
                            reference_days=reference_days, stac=stac, **measure_options)
    v = verdict(result, claim_km, claim_count, claim_kind=claim_kind, tolerance=tolerance, lanes=lanes)
    result.profile.update(verdict=v.verdict, verdict_banner=v.banner)
    return v, result


def measure_source(tile: Any, road: Any, *, head: Any = None, reference: Any = None, reference_days: int = 30,
                   stac: str | None = None, road_crs: Any = None, road_select: Any = None,
                   **options: Any) -> Any:
    """:func:`queuemeasure.measure` with STAC items checked for a clear corridor first,
    and ``reference="auto"`` resolved; the chosen reference is said in the notes. The
    corridor checked and the reference's corridor are those of the road measured (OSM
    data with ``road_select`` included)."""
    import os

    from .pipeline import measure
    from .road import read_osm_once
    from .search import require_clear, resolve_reference
    from .stac import is_stac_item, load_item

    name = os.fspath(tile) if isinstance(tile, (str, os.PathLike)) else None
    road, road_select = read_osm_once(road, road_select)  # not once per step below
    if is_stac_item(tile):
        tile = load_item(tile)  # fetched once, not by every step
        require_clear(tile, road, head=head, road_crs=road_crs, road_select=road_select)
    ref, why = resolve_reference(tile, reference, road, head=head, road_crs=road_crs, road_select=road_select,
                                 days=reference_days, stac=stac)
    if ref is not None:
        options["reference"] = load_item(ref) if is_stac_item(ref) else ref
    result = measure(tile, road, head=head, road_crs=road_crs, road_select=road_select, **options)
    if name is not None:
        result.tile = name  # the item's path or URL, not its in-memory VRT
    if isinstance(options.get("reference"), dict) and result.profile.get("reference"):
        # the reference item's in-memory VRT is gone after the run: name what can be reopened
        # (the quicklook's reference excerpt), the item's path or URL, else nothing
        result.profile["reference"] = os.fspath(ref) if isinstance(ref, (str, os.PathLike)) else None
    if why:
        result.notes.append(why)
    return result
