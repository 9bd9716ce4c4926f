"""Find the STAC items over a road, their cloud over the road's corridor, a clear reference.

:func:`search_items` asks a STAC API (pystac-client) for the items whose footprint meets
the road on the dates asked, keeps those whose footprint covers part of the road (the
footprint polygon against the road line, not the bounding box), and reads, for each, the
scene classification (SCL) over the road's corridor only (the blocks the corridor
touches, through the corridor code): the cloud *over the road*, not the scene's.
:func:`choose_reference` picks, for an item, the clearest item of the same orbit and tile
within some days whose corridor is cloud-free.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import geo
from .errors import CloudedError, ItemError, OptionError, RasterError, RasterReadError, RemoteError
from .raster import SCL_OCCLUDED
from .stac import (
    band_assets,
    item_datetime,
    item_grid_code,
    item_links,
    item_orbit,
    load_item,
)

__all__ = [
    "DEFAULT_STAC",
    "DEFAULT_COLLECTION",
    "CorridorCover",
    "SearchHit",
    "road_sides",
    "corridor_cover",
    "search_items",
    "choose_reference",
    "require_clear",
    "resolve_reference",
]

#: The default catalogue: Element84's Earth Search v1 (Sentinel-2 L2A COGs on AWS).
DEFAULT_STAC = "https://earth-search.aws.element84.com/v1"
DEFAULT_COLLECTION = "sentinel-2-l2a"
#: Half-width (m) of the corridor whose cloud is measured: the carriageway and what the
#: occupancy mode reads beside it, a few 10 m pixels each side.
CLOUD_HALF_WIDTH_M = 30.0
#: Spacing (m) of the corridor's cloud samples (the SCL is a 20 m grid).
CLOUD_STEP_M = 10.0
#: Seconds to wait for a STAC catalogue to connect, or to send the next byte of an answer.
STAC_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class CorridorCover:
    """How much of a road an item covers, and how cloudy it is over the road.

    Attributes
    ----------
    road_km : float
        Geodesic length of the road considered.
    covered_share : float
        Share (0-1) of the road inside the item's footprint polygon.
    cloud_share : float or None
        Share (0-1) of the corridor's stations with data that have an occluding SCL class
        (cloud, shadow, cirrus, snow, defective) anywhere across the corridor; None
        without an SCL asset.
    clear_km : float or None
        Road km with data and no occlusion across the corridor.
    """

    road_km: float
    covered_share: float
    cloud_share: float | None
    clear_km: float | None


@dataclass(frozen=True)
class SearchHit:
    """One item over the road."""

    id: str
    datetime: str
    collection: str
    road_covered_pct: float
    cloud_pct_corridor: float | None
    clear_km: float | None
    scene_cloud_pct: float | None
    orbit: int | None
    grid: str | None
    href: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def road_sides(road: Any, *, head: Sequence[float] | None = None, road_crs: Any = None,
               road_select: Any = None) -> list[Any]:
    """The road's sides from the head, as :func:`queuemeasure.measure` cuts them
    (:func:`queuemeasure.road.prepare_road`; OSM data with ``road_select`` built into the
    same road from the same head)."""
    from .road import prepare_road

    return list(prepare_road(road, crs=road_crs, head=tuple(head) if head is not None else None,
                             road_select=road_select).sides)


def _geodesic_km(lines: Any) -> float:
    from shapely.geometry.base import BaseMultipartGeometry

    parts = lines.geoms if isinstance(lines, BaseMultipartGeometry) else [lines]
    total = 0.0
    for g in parts:
        if g.geom_type == "LineString" and not g.is_empty:
            xy = np.asarray(g.coords)
            total += geo.geodesic_length(xy[:, 0], xy[:, 1])
        elif hasattr(g, "geoms"):
            total += _geodesic_km(g) * 1000.0
    return total / 1000.0


def footprint_share(item: Mapping[str, Any], sides: Sequence[Any]) -> tuple[float, float]:
    """(road km, share of it inside the item's footprint), geodesic, from the geometry."""
    from shapely.geometry import LineString, shape

    footprint = shape(item["geometry"]) if item.get("geometry") else None
    road_km = covered = 0.0
    for p in sides:
        line = LineString(p.lonlat)
        km = _geodesic_km(line)
        road_km += km
        if footprint is not None:
            covered += _geodesic_km(line.intersection(footprint))
    return road_km, (covered / road_km if road_km > 0 else 0.0)


def _scl_stations(ds: Any, path: Any, *, half_width_m: float, step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """For each station of ``path``: whether the SCL has data there, and whether occluded.

    Samples every ``step_m`` along and across the corridor, each at its nearest SCL pixel
    (the corridor code's sampling, at pixel centres); reads only the corridor's blocks.
    """
    from .corridor import BlockSampler, _sample_points

    sampler = BlockSampler(ds, [1])
    offsets = np.arange(-half_width_m, half_width_m + 1e-9, step_m)
    end = float(path.chord_m[-1])
    chord = np.arange(0.0, end + 1e-9, step_m)
    has = np.zeros(chord.size, bool)
    occ = np.zeros(chord.size, bool)
    bad = np.array(sorted(set(SCL_OCCLUDED) - {0}))
    for i in range(0, chord.size, 2000):
        c = chord[i:i + 2000]
        rows, cols = _sample_points(sampler, path, c, offsets, ds.crs)
        vals, valid = sampler.sample(np.round(rows), np.round(cols))
        cls = np.rint(vals[:, 0]).reshape(rows.shape)
        valid = valid.reshape(rows.shape) & (cls != 0)
        has[i:i + c.size] = valid.any(axis=1)
        occ[i:i + c.size] = (valid & np.isin(cls, bad)).any(axis=1)
        sampler.release()
    return has, occ


def corridor_cover(item: Any, road: Any = None, *, head: Sequence[float] | None = None,
                   road_crs: Any = None, road_select: Any = None, sides: Sequence[Any] | None = None,
                   half_width_m: float = CLOUD_HALF_WIDTH_M, step_m: float = CLOUD_STEP_M) -> CorridorCover:
    """Coverage of the road by ``item`` and cloud over its corridor from the SCL asset.

    Parameters
    ----------
    item : dict, path or URL
        A STAC item (see :func:`queuemeasure.stac.load_item`).
    road, head, road_crs, road_select
        The road, as for :func:`queuemeasure.measure` (or ``sides`` already prepared).
    half_width_m, step_m : float
        The corridor's half-width and the spacing of its samples (metres).

    Returns
    -------
    CorridorCover
        ``cloud_share`` None when the item has no SCL asset.
    """
    from .raster import open_tile

    it = load_item(item)
    sides = list(sides) if sides is not None else road_sides(road, head=head, road_crs=road_crs,
                                                             road_select=road_select)
    road_km, share = footprint_share(it, sides)
    scl = band_assets(it, required=()).get("SCL")
    if scl is None or share <= 0:
        return CorridorCover(road_km, share, None if scl is None else 0.0, None if scl is None else 0.0)
    has_n = occ_n = 0
    clear_m = 0.0
    try:
        with open_tile(scl.gdal_path) as ds:
            for p in sides:
                has, occ = _scl_stations(ds, p, half_width_m=half_width_m, step_m=step_m)
                has_n += int(has.sum())
                occ_n += int(occ.sum())
                clear_m += float((has & ~occ).sum()) * step_m * p.length_m / max(float(p.chord_m[-1]), 1e-9)
    except (RasterError, RasterReadError, RemoteError) as exc:
        if not scl.gdal_path.startswith("/vsi"):
            raise
        raise RemoteError(f"cannot read the SCL asset of {it.get('id', '?')} at {scl.href}: {_why(exc)}") from None
    cloud = occ_n / has_n if has_n else 1.0
    return CorridorCover(road_km, share, cloud, clear_m / 1000.0)


def _client(stac: str, timeout: float) -> Any:
    """Open a STAC API with pystac-client; server failures as :class:`RemoteError`."""
    try:
        from pystac_client import Client
    except ImportError:  # pragma: no cover - an optional extra
        raise OptionError("searching needs pystac-client: pip install 'queuemeasure[stac]'") from None
    try:
        return Client.open(stac, stac_io=_stac_io(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - requests, pystac and API errors alike
        raise _catalogue_error(f"cannot open the STAC catalogue {stac}", stac, timeout, exc) from None


def _stac_io() -> Any:
    """pystac-client's I/O without retrying a timed-out read.

    pystac-client retries every request 5 times by default, a timed-out one included: a
    silent catalogue would then be given six times the timeout. Here a failed connection
    is tried once more, nothing else.
    """
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    retry = Retry(total=None, connect=1, read=0, status=0, other=0, redirect=5, backoff_factor=0.5)
    return StacApiIO(max_retries=retry)  # the timeout is given to Client.open, which sets it


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` or what it wraps is a timeout (pystac-client re-raises requests'
    ``ReadTimeout`` as an ``APIError`` with the original as its context)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError) or type(seen).__name__ in ("ReadTimeout", "ConnectTimeout", "Timeout"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _catalogue_error(what: str, stac: str, timeout: float, exc: BaseException) -> RemoteError:
    if _timed_out(exc):
        return RemoteError(f"the STAC catalogue {stac} did not answer within {timeout:g} s "
                           "(slow or unreachable; search --timeout SECONDS waits longer)")
    return RemoteError(f"{what}: {_why(exc)}")


def check_timeout(timeout: float) -> float:
    """Check a catalogue timeout in seconds (positive and finite)."""
    t = float(timeout)
    if not (np.isfinite(t) and t > 0):
        raise OptionError(f"timeout {timeout!r}: give a positive number of seconds")
    return t


def _why(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return (msg[:200] + "...") if len(msg) > 200 else (msg or type(exc).__name__)


def _find(stac: str, *, collection: str, intersects: dict[str, Any], dates: str,
          max_items: int, timeout: float = STAC_TIMEOUT_S) -> list[dict[str, Any]]:
    client = _client(stac, timeout)
    try:
        found = client.search(collections=[collection], intersects=intersects, datetime=dates,
                              max_items=max_items)
        return [it.to_dict() for it in found.items()]
    except Exception as exc:  # noqa: BLE001
        raise _catalogue_error(f"searching the STAC catalogue {stac} failed", stac, timeout, exc) from None


def _road_geojson(sides: Sequence[Any]) -> dict[str, Any]:
    lines = [[[float(x), float(y)] for x, y in p.lonlat] for p in sides]
    if len(lines) == 1:
        return {"type": "LineString", "coordinates": lines[0]}
    return {"type": "MultiLineString", "coordinates": lines}


def check_dates(dates: str) -> str:
    """Check a ``START/END`` date range (ISO dates or datetimes; ``..`` open)."""
    parts = str(dates).split("/")
    if len(parts) > 2 or not parts[0]:
        raise OptionError(f"dates {dates!r}: give START/END, e.g. 2022-09-20/2022-09-30")
    for p in parts:
        if p in ("", ".."):
            continue
        try:
            _dt.datetime.fromisoformat(p.replace("Z", "+00:00"))
        except ValueError:
            raise OptionError(f"dates {dates!r}: {p!r} is not an ISO date (YYYY-MM-DD)") from None
    return dates


def search_items(road: Any, dates: str, *, head: Sequence[float] | None = None, road_crs: Any = None,
                 road_select: Any = None, collection: str = DEFAULT_COLLECTION, stac: str = DEFAULT_STAC,
                 read_cloud: bool = True, max_items: int = 200,
                 timeout: float = STAC_TIMEOUT_S) -> list[SearchHit]:
    """The items of ``collection`` covering part of ``road`` between ``dates``, by date.

    Parameters
    ----------
    road : path, str, dict or shapely geometry
        The road (as for :func:`queuemeasure.measure`): GeoJSON, WKT, or OpenStreetMap
        data with ``road_select``.
    dates : str
        ``START/END`` (``2022-09-20/2022-09-30``), inclusive.
    head, road_crs, road_select
        As for :func:`queuemeasure.measure`: the road searched (and whose corridor's cloud
        is read) is the one ``measure`` would measure with the same arguments.
    collection, stac : str
        The collection and the STAC API (default Earth Search v1, ``sentinel-2-l2a``).
    read_cloud : bool
        Read each item's SCL over the corridor (else ``cloud_pct_corridor`` is None).
    max_items : int
        Stop after this many items from the catalogue.
    timeout : float
        Seconds to wait for the catalogue to connect or to send the next byte of each
        answer (not the whole search); the SCL assets have GDAL's own timeouts.

    Raises
    ------
    RemoteError
        The catalogue or an SCL asset cannot be reached, or the catalogue did not
        answer within ``timeout``.
    """
    check_dates(dates)
    check_timeout(timeout)
    sides = road_sides(road, head=head, road_crs=road_crs, road_select=road_select)
    items = _find(stac, collection=collection, intersects=_road_geojson(sides), dates=dates,
                  max_items=max_items, timeout=timeout)
    hits = []
    for it in items:
        _, share = footprint_share(it, sides)
        if share <= 0:
            continue
        cover = corridor_cover(it, sides=sides) if read_cloud else None
        cloud = None if cover is None or cover.cloud_share is None else 100.0 * cover.cloud_share
        scene = it.get("properties", {}).get("eo:cloud_cover")
        hits.append(SearchHit(
            id=str(it.get("id")), datetime=item_datetime(it), collection=str(it.get("collection", collection)),
            road_covered_pct=100.0 * share, cloud_pct_corridor=cloud,
            clear_km=None if cover is None else cover.clear_km,
            scene_cloud_pct=None if scene is None else float(scene),
            orbit=item_orbit(it), grid=item_grid_code(it), href=item_links(it).get("self"),
        ))
    hits.sort(key=lambda h: h.datetime)
    return hits


def _when(item: Mapping[str, Any]) -> _dt.datetime:
    s = item_datetime(item).replace("Z", "+00:00")
    try:
        t = _dt.datetime.fromisoformat(s)
    except ValueError:
        raise ItemError(f"STAC item {item.get('id', '?')} has no usable datetime ({s!r})") from None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def catalogue_of(item: Mapping[str, Any]) -> str | None:
    """The STAC API an item came from: its ``root`` link (else None)."""
    return item_links(item).get("root")


def choose_reference(item: Any, road: Any, *, head: Sequence[float] | None = None, road_crs: Any = None,
                     road_select: Any = None, days: int = 30, stac: str | None = None, max_cloud: float = 0.0,
                     timeout: float = STAC_TIMEOUT_S) -> tuple[dict[str, Any], str]:
    """The clearest item of the same orbit and tile within ``days`` whose corridor is clear.

    Candidates: same collection, same relative orbit (``sat:relative_orbit`` or the
    product name's ``R###``) and same MGRS tile when the item says them, acquired within
    ``days`` before or after it (not the item itself), covering at least the share of the
    road the item covers, with cloud over the corridor at most ``max_cloud`` (0-1). Among
    them the least cloud, then the most road covered, then the nearest in time (before the
    image rather than after it on a tie). ``road``, ``head``, ``road_crs`` and
    ``road_select`` are as for :func:`queuemeasure.measure`; ``timeout`` is as for
    :func:`search_items`.

    Returns
    -------
    (item dict, a sentence saying why it was chosen)

    Raises
    ------
    OptionError
        No catalogue known (give ``stac``).
    CloudedError
        No candidate is clear enough.
    """
    it = load_item(item)
    cat = stac or catalogue_of(it)
    if not cat:
        raise OptionError(f"STAC item {it.get('id', '?')} names no catalogue (no root link): give --stac URL")
    sides = road_sides(road, head=head, road_crs=road_crs, road_select=road_select)
    _, share = footprint_share(it, sides)
    t0 = _when(it)
    span = _dt.timedelta(days=int(days))
    dates = f"{(t0 - span).strftime('%Y-%m-%dT%H:%M:%SZ')}/{(t0 + span).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    orbit, grid = item_orbit(it), item_grid_code(it)
    found = _find(cat, collection=str(it.get("collection") or DEFAULT_COLLECTION),
                  intersects=_road_geojson(sides), dates=dates, max_items=200, timeout=timeout)
    ranked = []
    for cand in found:
        if cand.get("id") == it.get("id"):
            continue
        if orbit is not None and item_orbit(cand) not in (None, orbit):
            continue
        if grid is not None and item_grid_code(cand) not in (None, grid):
            continue
        cover = corridor_cover(cand, sides=sides)
        if cover.cloud_share is None or cover.cloud_share > max_cloud or cover.covered_share < share - 1e-3:
            continue
        dt = (_when(cand) - t0).total_seconds()
        # least cloud, most road, nearest in time, before the image rather than after
        ranked.append((cover.cloud_share, -cover.covered_share, abs(dt), dt > 0, cand))
    where = f"orbit R{orbit:03d}" if orbit is not None else "any orbit"
    if grid:
        where += f", tile {grid}"
    if not ranked:
        raise CloudedError(
            f"no reference for {it.get('id', '?')}: no item of {where} within {days} days in {cat} "
            f"has a cloud-free corridor covering the road"
        )
    ranked.sort(key=lambda r: r[:4])
    cloud, _, dt_s, _, best = ranked[0]
    why = (f"reference {best.get('id')} ({item_datetime(best)[:10]}): {where}, {dt_s / 86400:.0f} days "
           f"from the image, {100 * cloud:.0f} % cloud over the corridor, chosen among {len(ranked)} clear item(s)")
    return best, why


def require_clear(item: Any, road: Any, *, head: Sequence[float] | None = None, road_crs: Any = None,
                  road_select: Any = None, what: str = "image") -> CorridorCover:
    """Raise :class:`CloudedError` when the item shows none of the road's corridor clear
    (the road as for :func:`queuemeasure.measure`)."""
    it = load_item(item)
    cover = corridor_cover(it, road, head=head, road_crs=road_crs, road_select=road_select)
    if cover.covered_share <= 0:
        raise ItemError(f"the {what} {it.get('id', '?')} does not cover the road (footprint and road do not meet)")
    if cover.clear_km is not None and cover.clear_km <= 0:
        raise CloudedError(
            f"the road's corridor is entirely under cloud (or shadow, snow, no data) in the {what} "
            f"{it.get('id', '?')} ({item_datetime(it)[:10]}, from its SCL): nothing to measure"
        )
    return cover


def resolve_reference(tile: Any, reference: Any, road: Any, *, head: Sequence[float] | None = None,
                      road_crs: Any = None, road_select: Any = None, days: int = 30,
                      stac: str | None = None) -> tuple[Any, str | None]:
    """The reference to measure ``tile`` against, and why it was chosen.

    ``None`` stays None; ``"auto"`` (``tile`` a STAC item) is :func:`choose_reference`;
    a STAC item is checked to show some of the corridor clear; anything else (a tile
    path or URL) is returned as it is.
    """
    from .stac import is_stac_item

    if reference is None:
        return None, None
    if isinstance(reference, str) and reference.lower() == "auto":
        if not is_stac_item(tile):
            raise OptionError("--reference auto needs a STAC item (JSON file or URL) as the image")
        return choose_reference(tile, road, head=head, road_crs=road_crs, road_select=road_select,
                                days=days, stac=stac)
    if is_stac_item(reference):
        require_clear(reference, road, head=head, road_crs=road_crs, road_select=road_select,
                      what="reference")
    return reference, None
