"""Many crossings, many dates: measure the rows of a manifest on Dask.

A *manifest* is a CSV file with one measurement per row (a tile, a road, a head, a date
and a site name). :func:`read_manifest` checks it and names the line and column of every
mistake; :func:`measure_many` sends one task per row to a ``dask.distributed`` cluster
and yields a :class:`BatchResult` per row as the tasks complete. Tasks receive plain
paths and values, never open datasets: each worker opens its tile and reads only the
corridor of its road, as :func:`queuemeasure.measure` always does.

:class:`ResultsLog` is the CSV of results: one line appended, flushed and fsynced per
completed row (so a crash loses at most the rows in flight), read back to resume, and
compacted at the end to one row per input in manifest order. :func:`write_vector` and
:func:`plot_lengths` derive the vector file of all queues (GeoJSON, GeoPackage,
FlatGeobuf) and the length-vs-date plot from it.

Dask is an optional extra: ``pip install 'queuemeasure[dask]'``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from .errors import InputError, QueueMeasureError, QueueMeasureWarning
from .export import atomic_writer, round_coords
from .textfile import read_text_file

__all__ = [
    "ManifestError",
    "ManifestRow",
    "BatchResult",
    "ResultsLog",
    "read_manifest",
    "parse_manifest_rows",
    "measure_many",
    "local_client",
    "write_geojson",
    "write_vector",
    "plot_lengths",
    "check_options",
    "measure_row",
    "DASK_HINT",
]

DASK_HINT = "batch needs Dask: pip install 'queuemeasure[dask]'"

#: Options a manifest row (or a default of :func:`measure_many`) may set.
OPTION_KEYS = ("max_gap", "direction", "half_width", "bands", "road_crs", "sensitivity", "detector")
#: Columns choosing the road in OSM data, as ``measure --road-ref`` etc. (one ``road_select``).
OSM_KEYS = ("road_ref", "road_name", "road_id", "road_tag", "toward")
_COLUMNS = {"id", "site", "date", "tile", "road", "head", "head_lon", "head_lat", *OPTION_KEYS, *OSM_KEYS}
_REQUIRED = ("site", "date", "tile", "road")
_DIRECTIONS = ("both", "forward", "backward")

#: First columns of the results CSV; the fields of ``QueueResult.to_dict()`` follow, then
#: ``queue_wkt`` (the queue line, WGS84 lon lat, for QGIS's delimited-text reader).
BASE_COLUMNS = ("id", "site", "date", "status", "error", "tile", "road", "options", "measured_at")
GEOMETRY_COLUMN = "queue_wkt"


class ManifestError(InputError):
    """The manifest cannot be read, or a row of it is invalid (names line and column)."""


# ---------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class ManifestRow:
    """One measurement to make: plain paths and values, ready to send to a worker.

    Attributes
    ----------
    id : str
        Unique row id (the manifest's ``id`` column, or the row number from 1).
    site, date : str
        Site name and ISO date (or date-time) of the image.
    tile : str
        Absolute path or URL of the GeoTIFF.
    road : str
        Absolute path of the road file, or inline GeoJSON/WKT.
    head : (lon, lat) or None
    options : dict
        Other keyword arguments of :func:`queuemeasure.measure` set by this row.
    line : int
        Line of the manifest the row came from (0 when not from a file).
    """

    id: str
    site: str
    date: str
    tile: str
    road: str
    head: tuple[float, float] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0

    def measure_kwargs(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for :func:`queuemeasure.measure`: the row's over ``defaults``."""
        kw = {k: v for k, v in (defaults or {}).items() if v is not None}
        kw.update(self.options)
        if self.head is not None:
            kw["head"] = self.head
        return kw


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Read and check a manifest CSV; relative paths resolve against its folder.

    Columns (case-insensitive; ``-`` and ``_`` alike): ``site``, ``date`` (ISO),
    ``tile`` (path or URL), ``road`` (path, or inline GeoJSON/WKT) are required;
    ``id`` (default: the row number), ``head`` (``lon,lat``) or ``head_lon`` and
    ``head_lat``, ``max_gap``, ``direction``, ``half_width``, ``bands`` (``3,2,1``),
    ``road_crs`` and ``sensitivity`` are optional. When ``road`` is OpenStreetMap data,
    ``road_ref``, ``road_name``, ``road_id`` (``way/1;way/2``), ``road_tag``
    (``highway=primary;bridge=*``) and ``toward`` (``lon,lat``) choose the road as
    ``measure``'s options of those names do. Empty cells take the defaults. The
    delimiter may be ``,``, ``;`` or a tab; lines whose first cell starts with ``#`` are
    comments.

    Raises
    ------
    ManifestError
        Naming the file, line and column of the first problem (and how many more).
    """
    p = Path(os.fspath(path))
    text = read_text_file(p, "manifest", ManifestError)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = max(",;\t", key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    records: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = cells
            continue
        if cells[0].lstrip().startswith("#"):
            continue
        records.append((reader.line_num, cells))
    if header is None:
        raise ManifestError(f"{p}: the manifest is empty (a header line and one row per measurement)")
    return parse_manifest_rows(records, header=header, base=p.parent, source=str(p))


def parse_manifest_rows(
    rows: Iterable[Any],
    *,
    header: Sequence[str] | None = None,
    base: str | os.PathLike[str] | None = None,
    source: str = "rows",
) -> list[ManifestRow]:
    """Check rows given as mappings (or ``(line, cells)`` with ``header``); see :func:`read_manifest`.

    Relative paths resolve against ``base`` (default: the working directory).
    """
    base_dir = Path(os.fspath(base)) if base is not None else Path.cwd()
    cols = [_norm_col(h) for h in header] if header is not None else None
    if cols is not None:
        _check_header(cols, source)
    problems: list[str] = []
    out: list[ManifestRow] = []
    seen: dict[str, int] = {}
    for n, item in enumerate(rows, start=1):
        if cols is not None:
            line, cells = item
            if len(cells) > len(cols) and any(c.strip() for c in cells[len(cols):]):
                problems.append(f"{source} line {line}: {len(cells)} cells but {len(cols)} columns "
                                "(quote values holding the delimiter, e.g. \"44.6,42.7\")")
                continue
            rec = {c: (cells[i] if i < len(cells) else "") for i, c in enumerate(cols)}
        elif isinstance(item, ManifestRow):
            if item.id in seen:
                problems.append(f"{source} row {n}, column 'id': {item.id!r} repeats the id of row {seen[item.id]}")
                continue
            seen[item.id] = n
            out.append(item)
            continue
        elif isinstance(item, Mapping):
            line = n
            rec = {_norm_col(k): ("" if v is None else v) for k, v in item.items()}
            _check_header(list(rec), source)
        else:
            raise TypeError(f"a manifest row must be a mapping or a ManifestRow, not {type(item).__name__}")
        where = f"{source} line {line}" if cols is not None else f"{source} row {n}"
        try:
            row = _parse_row(rec, default_id=str(n), line=line if cols is not None else 0,
                             base=base_dir, where=where)
        except ManifestError as exc:
            problems.append(str(exc))
            continue
        if row.id in seen:
            problems.append(f"{where}, column 'id': {row.id!r} repeats the id of "
                            f"{'line' if cols is not None else 'row'} {seen[row.id]}")
            continue
        seen[row.id] = line
        out.append(row)
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        raise ManifestError(problems[0] + more)
    if not out:
        raise ManifestError(f"{source}: no rows to measure")
    return out


def _norm_col(name: Any) -> str:
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def _check_header(cols: Sequence[str], source: str) -> None:
    missing = [c for c in _REQUIRED if c not in cols]
    if missing:
        raise ManifestError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"(columns are id, site, date, tile, road, head or head_lon/head_lat, "
            f"and optionally {', '.join(OPTION_KEYS + OSM_KEYS)})"
        )
    dup = sorted({c for c in cols if cols.count(c) > 1 and c})
    if dup:
        raise ManifestError(f"{source}: column {dup[0]!r} appears more than once")
    if "head" in cols and ("head_lon" in cols or "head_lat" in cols):
        raise ManifestError(f"{source}: give either a 'head' column or 'head_lon' and 'head_lat', not both")
    if ("head_lon" in cols) != ("head_lat" in cols):
        raise ManifestError(f"{source}: 'head_lon' and 'head_lat' go together")
    unknown = [c for c in cols if c and c not in _COLUMNS]
    if unknown:
        warnings.warn(f"{source}: ignoring unknown column{'s' if len(unknown) > 1 else ''} "
                      f"{', '.join(repr(u) for u in unknown)}", QueueMeasureWarning, stacklevel=3)


def _parse_row(rec: Mapping[str, Any], *, default_id: str, line: int, base: Path, where: str) -> ManifestRow:
    def cell(col: str) -> str:
        return str(rec.get(col, "")).strip()

    def bad(col: str, msg: str) -> ManifestError:
        return ManifestError(f"{where}, column {col!r}: {msg}")

    for col in _REQUIRED:
        if not cell(col):
            raise bad(col, "is empty")
    rid = cell("id") or default_id
    date = _parse_date(cell("date"))
    if date is None:
        raise bad("date", f"{cell('date')!r} is not an ISO date like 2022-09-26 or 2022-09-26T08:15:00Z")
    head: tuple[float, float] | None = None
    if cell("head"):
        parts = [s for s in re.split(r"[,;\s]+", cell("head")) if s]
        head = _lonlat(parts, lambda m: bad("head", m), cell("head"))
    elif cell("head_lon") or cell("head_lat"):
        for c in ("head_lon", "head_lat"):
            if not cell(c):
                raise bad(c, "is empty while the other head coordinate is given")
        head = _lonlat([cell("head_lon"), cell("head_lat")], lambda m: bad("head_lon", m),
                       f"{cell('head_lon')},{cell('head_lat')}")
    opts: dict[str, Any] = {}
    for col in ("max_gap", "half_width", "sensitivity"):
        if cell(col):
            try:
                v = float(cell(col))
            except ValueError:
                raise bad(col, f"{cell(col)!r} is not a number") from None
            opts[col] = v
            try:
                check_options(**{col: v})
            except QueueMeasureError as exc:
                raise bad(col, str(exc)) from None
    if cell("detector"):
        from .detect import DETECTORS

        if cell("detector").lower() not in ("auto", *DETECTORS):
            raise bad("detector", f"{cell('detector')!r} is not one of auto, {', '.join(DETECTORS)}")
        opts["detector"] = cell("detector").lower()
    if cell("direction"):
        d = cell("direction").lower()
        if d not in _DIRECTIONS:
            raise bad("direction", f"{cell('direction')!r} is not one of {', '.join(_DIRECTIONS)}")
        opts["direction"] = d
    if cell("bands"):
        try:
            bands = [int(b) for b in re.split(r"[,;\s]+", cell("bands")) if b]
        except ValueError:
            raise bad("bands", f"{cell('bands')!r} is not a list of band numbers like 3,2,1") from None
        if len(bands) not in (1, 3) or min(bands) < 1:
            raise bad("bands", f"{cell('bands')!r}: give one band or three (R,G,B), numbered from 1")
        opts["bands"] = bands
    if cell("road_crs"):
        from .geo import parse_crs

        try:
            parse_crs(cell("road_crs"))
        except QueueMeasureError as exc:
            raise bad("road_crs", str(exc)) from None
        opts["road_crs"] = cell("road_crs")
    select = _road_select(cell, bad, head)
    if select is not None:
        opts["road_select"] = select
    return ManifestRow(
        id=rid, site=cell("site"), date=date, tile=_resolve_tile(cell("tile"), base),
        road=_resolve_road(cell("road"), base), head=head, options=opts, line=line,
    )


def _road_select(cell: Any, bad: Any, head: tuple[float, float] | None) -> dict[str, Any] | None:
    """The row's OSM road selection (a plain mapping for :func:`queuemeasure.measure`'s
    ``road_select``), checked as the command line checks it; None without one."""
    from .osm import Selection

    if not any(cell(c) for c in OSM_KEYS):
        return None
    ids = [s for s in re.split(r"[;,\s]+", cell("road_id")) if s]
    tags = [s.strip() for s in cell("road_tag").split(";") if s.strip()]
    for col, args in (("road_ref", (cell("road_ref") or None,)), ("road_id", (None, None, ids)),
                      ("road_tag", (None, None, (), tags))):
        try:
            Selection.make(*args)
        except QueueMeasureError as exc:
            raise bad(col, str(exc)) from None
    select: dict[str, Any] = {"ref": cell("road_ref") or None, "name": cell("road_name") or None,
                              "ids": ids, "tags": tags}
    if cell("toward"):
        if head is None:
            raise bad("toward", "needs a head (where the road starts)")
        parts = [s for s in re.split(r"[,;\s]+", cell("toward")) if s]
        select["toward"] = _lonlat(parts, lambda m: bad("toward", m), cell("toward"))
    return select


def check_options(*, max_gap: float | None = None, half_width: float | None = None,
                  sensitivity: float | None = None) -> None:
    """Check option values as :func:`queuemeasure.measure` will (raises OptionError)."""
    from .pipeline import DEFAULT_HALF_WIDTH_M, DEFAULT_MAX_GAP_M
    from .pipeline import check_options as _check_options

    _check_options(DEFAULT_MAX_GAP_M if max_gap is None else max_gap,
                   DEFAULT_HALF_WIDTH_M if half_width is None else half_width,
                   1.0 if sensitivity is None else sensitivity)


def _lonlat(parts: list[str], bad: Any, text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(s) for s in parts)
    except ValueError:
        raise bad(f"{text!r} is not LON,LAT (two numbers)") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise bad(f"{text!r} is out of range (LON in -180..180, LAT in -90..90; lon first)")
    return lon, lat


def _parse_date(text: str) -> str | None:
    try:
        if len(text) <= 10:
            return _dt.date.fromisoformat(text).isoformat()
        return _dt.datetime.fromisoformat(text).isoformat()
    except ValueError:
        return None


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("/vsi")


def _resolve_tile(text: str, base: Path) -> str:
    if _is_url(text):
        return text
    return str((base / Path(text).expanduser()).resolve())


def _resolve_road(text: str, base: Path) -> str:
    from .road import _looks_like_path

    if _is_url(text) or not _looks_like_path(text):
        return text  # inline GeoJSON or WKT
    return str((base / Path(text).expanduser()).resolve())


# ---------------------------------------------------------------------------- results
@dataclass
class BatchResult:
    """What became of one manifest row.

    Attributes
    ----------
    id, site, date, tile, road : str
        From the row.
    status : {"ok", "error"}
    error : str or None
        One line: why the row failed.
    result : dict or None
        ``QueueResult.to_dict()``: every JSON field of ``queuemeasure measure --json``.
    queue_lonlat : list of [lon, lat]
        The queue line (empty when there is no queue or on error).
    options : dict
        The keyword arguments :func:`queuemeasure.measure` was called with.
    measured_at : str
        UTC time the row finished (ISO 8601).
    """

    id: str
    site: str
    date: str
    tile: str
    road: str
    status: str
    error: str | None = None
    result: dict[str, Any] | None = None
    queue_lonlat: list[list[float]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    measured_at: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        """One line: the row, and its length and count (or its error); no geometry."""
        head = f"BatchResult(id={self.id!r}, site={self.site!r}, date={self.date!r}, {self.status}"
        r = self.result or {}
        if not self.ok:
            return f"{head}: {self.error})"
        lo, hi = r.get("length_km_range") or (float("nan"), float("nan"))
        bound = "at least " if r.get("truncated") else ""
        return (f"{head}: {bound}{r.get('length_km', float('nan')):.3f} km "
                f"(range {lo:.3f}-{hi:.3f}), {r.get('vehicle_count')} vehicles, "
                f"truncated={bool(r.get('truncated'))}, tile={os.path.basename(self.tile)!r})")

    @property
    def feature(self) -> dict[str, Any] | None:
        """The queue as a GeoJSON Feature (WGS84); null geometry when there is no queue.

        None for a row that failed.
        """
        return self.to_feature()

    def to_feature(self, precision: int | None = None) -> dict[str, Any] | None:
        if not self.ok or self.result is None:
            return None
        props = {"id": self.id, "site": self.site, "date": self.date, **_finite(self.result)}
        for k in ("head_lonlat", "tail_lonlat"):
            if props.get(k) is not None:
                props[k] = round_coords(props[k], precision)
        geom = ({"type": "LineString", "coordinates": round_coords(self.queue_lonlat, precision)}
                if len(self.queue_lonlat) >= 2 else None)
        return {"type": "Feature", "id": self.id, "geometry": geom, "properties": props}

    def to_record(self, precision: int | None = None) -> dict[str, str]:
        """The row of the results CSV: strings; lists, numbers and booleans as JSON."""
        rec = {
            "id": self.id, "site": self.site, "date": self.date, "status": self.status,
            "error": self.error or "", "tile": self.tile, "road": self.road,
            "options": json.dumps(self.options), "measured_at": self.measured_at,
        }
        for k, v in (self.result or {}).items():
            if k in rec:
                continue
            if k in ("head_lonlat", "tail_lonlat") and v is not None:
                v = round_coords(v, precision)
            rec[k] = _encode(v)
        if len(self.queue_lonlat) >= 2:
            pts = round_coords(self.queue_lonlat, precision)
            rec[GEOMETRY_COLUMN] = "LINESTRING (" + ", ".join(f"{x!r} {y!r}" for x, y in pts) + ")"
        else:
            rec[GEOMETRY_COLUMN] = ""
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, str]) -> BatchResult:
        """Inverse of :meth:`to_record` (for resuming and for the final GeoJSON)."""
        base = set(BASE_COLUMNS) | {GEOMETRY_COLUMN}
        status = rec.get("status") or "error"
        result = {k: (v or None) if k in _STRING_FIELDS else _decode(v)
                  for k, v in rec.items() if k not in base and k is not None}
        if "tile" in rec:
            result.setdefault("tile", rec["tile"])
        wkt = (rec.get(GEOMETRY_COLUMN) or "").strip()
        line: list[list[float]] = []
        m = re.match(r"^LINESTRING\s*\((.*)\)$", wkt, re.I)
        if m:
            line = [[float(a) for a in pt.split()] for pt in m.group(1).split(",")]
        try:
            options = json.loads(rec.get("options") or "{}")
        except ValueError:
            options = {}
        return cls(
            id=rec.get("id", ""), site=rec.get("site", ""), date=rec.get("date", ""),
            tile=rec.get("tile", ""), road=rec.get("road", ""), status=status,
            error=rec.get("error") or None, result=result if status == "ok" else None,
            queue_lonlat=line, options=options, measured_at=rec.get("measured_at", ""),
        )


#: Fields of ``to_dict()`` that are strings (kept as read, even when they look like numbers).
_STRING_FIELDS = {"raster_crs", "direction", "truncation_reason", "length_method", "tile",
                  "queuemeasure_version"}


def _finite(v: Any) -> Any:
    """``v`` with NaN and infinities replaced by None (GeoJSON is strict JSON)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _encode(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v, allow_nan=True)


def _decode(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        return json.loads(v)
    except ValueError:
        return v


def result_columns() -> list[str]:
    """Columns of the results CSV: the base columns, ``to_dict()``'s keys, ``queue_wkt``."""
    import numpy as np

    from .result import QueueResult

    try:
        keys = list(QueueResult(
            length_km=0.0, length_km_range=(0.0, 0.0), vehicle_count=0, head_lonlat=(0.0, 0.0),
            tail_lonlat=None, truncated=False, truncation_reason=None, occluded_km=0.0,
            max_gap_m=0.0, gsd_m=0.0, raster_crs="", road_km_searched=0.0, direction="forward",
            vehicles=[], queue_lonlat=np.zeros((0, 2)), occluded_stretches_km=[], tile="",
        ).to_dict())
    except TypeError:  # pragma: no cover - QueueResult grew a required field
        keys = ["length_km", "length_km_range", "length_is_lower_bound", "vehicle_count",
                "m_per_vehicle", "head_lonlat", "tail_lonlat", "truncated", "truncation_reason",
                "occluded_km", "occluded_stretches_km", "max_gap_m", "gsd_m", "raster_crs",
                "road_km_searched", "direction", "vehicles_detected", "length_method", "synthetic",
                "notes", "elapsed_s", "queuemeasure_version"]
    return list(BASE_COLUMNS) + [k for k in keys if k not in BASE_COLUMNS] + [GEOMETRY_COLUMN]


# ---------------------------------------------------------------------------- worker
def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, QueueMeasureError):
        return msg
    return f"internal error ({type(exc).__name__}): {msg}"


def measure_row(tile: str, road: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The task a worker runs: measure one row from plain paths and values.

    Never raises: any error becomes ``{"status": "error", "error": "<one line>"}``.
    """
    from .pipeline import measure

    try:
        res = measure(tile, road, **kwargs)
        out: dict[str, Any] = {"status": "ok", "error": None, "result": res.to_dict(),
                               "queue_lonlat": [[float(x), float(y)] for x, y in res.queue_lonlat]}
    except Exception as exc:  # noqa: BLE001 - a failing row must not stop the others
        out = {"status": "error", "error": _one_line(exc), "result": None, "queue_lonlat": []}
    out["measured_at"] = _now()
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(DASK_HINT) from exc
    return distributed


@contextlib.contextmanager
def local_client(n_workers: int | None = None, **cluster_kwargs: Any) -> Iterator[Any]:
    """A ``distributed.Client`` on a ``LocalCluster`` of processes, one thread each.

    ``n_workers`` defaults to the number of cores. The workers keep glibc's default
    memory allocator settings: Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (which also pins
    the mmap threshold) makes every large numpy temporary a fresh ``mmap`` and slows
    :func:`~queuemeasure.measure` down by about half.
    """
    distributed = _import_distributed()
    import dask

    kw: dict[str, Any] = {"n_workers": n_workers, "threads_per_worker": 1, "processes": True,
                          "dashboard_address": ":0"}
    kw.update(cluster_kwargs)
    with contextlib.ExitStack() as stack:
        with _environ_kept(), dask.config.set(
            {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        ):  # the nannies export their workers' settings into this process's environment
            cluster = stack.enter_context(distributed.LocalCluster(**kw))
            client = stack.enter_context(distributed.Client(cluster))
        yield client


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    before = dict(os.environ)
    try:
        yield
    finally:
        for k in set(os.environ) - set(before):
            del os.environ[k]
        os.environ.update(before)


def measure_many(
    rows: Any,
    client: Any = None,
    **defaults: Any,
) -> Iterator[BatchResult]:
    """Measure many rows on Dask; yield one :class:`BatchResult` per row as they complete.

    Parameters
    ----------
    rows : path of a manifest CSV, or iterable of ManifestRow or mappings
        Mappings use the manifest's column names; relative paths in them resolve
        against the working directory.
    client : distributed.Client, optional
        The cluster to use. Default: a ``LocalCluster`` with one single-threaded
        worker process per core, closed when the iteration ends.
    **defaults
        ``max_gap``, ``direction``, ``half_width``, ``bands``, ``road_crs``,
        ``sensitivity``, ``detector``: values for rows that do not set them.

    Yields
    ------
    BatchResult
        In completion order. A row that fails yields ``status="error"`` with its
        error; the others go on.

    Examples
    --------
    >>> import queuemeasure as qm
    >>> for r in qm.measure_many("manifest.csv"):  # doctest: +SKIP
    ...     print(r.site, r.date, r.status, r.result and r.result["length_km"])
    """
    unknown = set(defaults) - set(OPTION_KEYS)
    if unknown:
        raise TypeError(f"measure_many() got unexpected option(s) {', '.join(sorted(unknown))}; "
                        f"defaults may be {', '.join(OPTION_KEYS)}")
    if isinstance(rows, (str, os.PathLike)):
        todo = read_manifest(rows)
    else:
        todo = parse_manifest_rows(list(rows))
    distributed = _import_distributed()
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(local_client())
        pending: dict[str, ManifestRow] = {}
        futures = []
        for row in todo:
            fut = client.submit(measure_row, row.tile, row.road, row.measure_kwargs(defaults),
                                key=f"queuemeasure-{row.id}-{os.urandom(6).hex()}", pure=False)
            pending[fut.key] = row
            futures.append(fut)
        ac = distributed.as_completed(futures)
        del futures
        for fut in ac:
            row = pending.pop(fut.key)
            kw = row.measure_kwargs(defaults)
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the worker died on this row
                out = {"status": "error", "error": f"task failed ({type(exc).__name__}): "
                       f"{' '.join(str(exc).split())}", "result": None, "queue_lonlat": [],
                       "measured_at": _now()}
            fut.release()
            yield BatchResult(
                id=row.id, site=row.site, date=row.date, tile=row.tile, road=row.road,
                status=out["status"], error=out["error"], result=out["result"],
                queue_lonlat=out["queue_lonlat"], options=_jsonable(kw), measured_at=out["measured_at"],
            )


def _jsonable(kw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}


# ---------------------------------------------------------------------------- results log
class ResultsLog:
    """The results CSV, written as a journal: one fsynced line per completed row.

    Open it with :meth:`open`; :meth:`append` each :class:`BatchResult`; :meth:`finish`
    rewrites it atomically with one row per id (the latest), in manifest order.
    """

    def __init__(self, path: Path, columns: list[str], fh: IO[str], done: dict[str, BatchResult],
                 precision: int | None = None) -> None:
        self.path = path
        self.columns = columns
        self._fh = fh
        self._writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        self.records = done
        self.precision = precision

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False,
             precision: int | None = None) -> ResultsLog:
        """Open ``path`` for appending (``resume``) or start it afresh.

        Raises
        ------
        OutputError
            When it exists and neither ``resume`` nor ``overwrite`` is set, or cannot be written.
            Also when resuming from a file that is not a results CSV.
        """
        from .errors import OutputError
        from .export import check_output_path

        p = Path(os.fspath(path))
        existing = resume and p.is_file() and p.stat().st_size > 0
        if not existing:
            check_output_path(p, overwrite=overwrite or resume)
        records: dict[str, BatchResult] = {}
        columns = result_columns()
        if existing:
            _drop_partial_line(p)
            with open(p, encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is None or not {"id", "status"} <= set(reader.fieldnames):
                    raise OutputError(f"cannot resume: {p} is not a results file of queuemeasure batch "
                                        "(no 'id' and 'status' columns)")
                columns = list(reader.fieldnames)
                for rec in reader:
                    if rec.get("id"):
                        records[rec["id"]] = BatchResult.from_record(rec)
        try:
            fh = open(p, "a" if existing else "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise OutputError(f"cannot write {p}: {exc}") from None
        log = cls(p, columns, fh, records, precision)
        if not existing:
            log._writer.writeheader()
            log._sync()
        return log

    def done_ids(self) -> set[str]:
        """Ids whose latest record has status ok."""
        return {k for k, r in self.records.items() if r.ok}

    def append(self, res: BatchResult) -> None:
        """Append one row and make it durable (flush + fsync)."""
        self._writer.writerow(res.to_record(self.precision))
        self._sync()
        self.records[res.id] = res

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def finish(self, order: Sequence[str] = ()) -> list[BatchResult]:
        """Close, then rewrite atomically: one row per id, ``order`` first, others after."""
        self.close()
        ids = [i for i in order if i in self.records] + [i for i in self.records if i not in set(order)]
        rows = [self.records[i] for i in ids]
        with atomic_writer(self.path, "w", overwrite=True) as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow(r.to_record(self.precision))
        return rows

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _drop_partial_line(p: Path) -> None:
    """Cut a last line that a crash left without its newline (a row in flight)."""
    with open(p, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)


# ---------------------------------------------------------------------------- derived outputs
def write_geojson(path: str | os.PathLike[str], results: Iterable[BatchResult], *,
                  overwrite: bool = False, precision: int | None = None) -> int:
    """Write the queues of the ok rows as one FeatureCollection (WGS84), atomically.

    Each Feature is a queue LineString (null geometry when the row found no queue) whose
    properties are the row's id, site, date and every field of ``to_dict()``. Returns
    the number of features.
    """
    feats = [f for f in (r.to_feature(precision) for r in results) if f is not None]
    text = json.dumps({"type": "FeatureCollection", "features": feats}, allow_nan=False)
    with atomic_writer(path, "w", overwrite=overwrite) as fh:
        fh.write(text + "\n")
    return len(feats)


def write_vector(path: str | os.PathLike[str], results: Iterable[BatchResult], *,
                 format: str | None = None, overwrite: bool = False,
                 precision: int | None = None) -> int:
    """Write the queues of the ok rows as GeoJSON, GeoPackage or FlatGeobuf, atomically.

    The format is ``format`` or the extension of ``path`` (see
    :func:`queuemeasure.formats.vector_format`). GeoJSON is :func:`write_geojson`; the
    others hold the same features in one layer (``queues`` in a GeoPackage), with the
    fields typed as in :mod:`queuemeasure.vector`. Returns the number of features.
    """
    from .formats import vector_format
    from .vector import layer_tables, write_layers

    fmt = vector_format(path, format)
    if fmt.key == "geojson":
        return write_geojson(path, results, overwrite=overwrite, precision=precision)
    feats = [f for f in (r.to_feature(precision) for r in results) if f is not None]
    name = Path(os.fspath(path)).stem if fmt.key == "fgb" else "queues"
    write_layers(path, layer_tables(feats, lambda f: name, {name: "LineString"}), fmt,
                 overwrite=overwrite)
    return len(feats)


def plot_lengths(path: str | os.PathLike[str], results: Iterable[BatchResult], *,
                 overwrite: bool = False) -> None:
    """Plot queue length against date, one line per site (matplotlib Agg), to a PNG, JPEG,
    PDF or SVG by the extension of ``path``.

    Error bars show ``length_km_range``; hollow markers are lower bounds (truncated).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .formats import image_format, savefig_kwargs

    fmt = image_format(path)
    by_site: dict[str, list[tuple[_dt.datetime, float, float, float, bool]]] = {}
    for r in results:
        if not r.ok or not r.result:
            continue
        d = _dt.datetime.fromisoformat(r.date if "T" in r.date else r.date + "T00:00:00")
        if d.tzinfo is not None:
            d = d.astimezone(_dt.timezone.utc)
        lo, hi = r.result.get("length_km_range") or [r.result["length_km"]] * 2
        by_site.setdefault(r.site, []).append(
            (d.replace(tzinfo=None), float(r.result["length_km"]), float(lo), float(hi),
             bool(r.result.get("truncated"))))
    fig = Figure(figsize=(9, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for site, pts in sorted(by_site.items()):
        pts.sort()
        x = [p[0] for p in pts]
        y = [p[1] for p in pts]
        err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=site)
        colour = line[0].get_color()
        low = [p for p in pts if p[4]]
        if low:
            ax.scatter([p[0] for p in low], [p[1] for p in low], s=70, facecolors="white",
                       edgecolors=colour, zorder=3)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("date")
    ax.set_ylabel("queue length (km, geodesic)")
    ax.set_title("Queue length by site (hollow: lower bound, queue runs off the data)")
    ax.grid(alpha=0.3)
    if by_site:
        ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_writer(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, **savefig_kwargs(fmt))
