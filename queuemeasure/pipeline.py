"""The measuring pipeline: road → corridor → strip → vehicles → queue → result.

This module only orchestrates; each step lives in its own module (:mod:`.road`,
:mod:`.corridor`, :mod:`.detect`, :mod:`.queue`, :mod:`.result`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import geo
from .corridor import BlockSampler, Piece, Scaler, Strip, coverage_chords, iter_strips, prefetched
from .errors import OptionError, RoadError
from .parallel import Workers, resolve_workers
from .queue import QueueChain, chain_queue_bridged, length_range, merge_intervals
from .raster import choose_bands, crs_name, ground_pixel_size, is_synthetic, open_tile
from .result import QueueResult, Vehicle
from .road import MAX_HEAD_DISTANCE_M, Direction, RoadPath, prepare_road
from .occupancy_pipeline import VEHICLES_MAX_GSD_M, measure_occupancy, resolve_mode, tile_gsd

__all__ = ["measure", "check_options", "DEFAULT_MAX_GAP_M", "DEFAULT_HALF_WIDTH_M"]

#: Default largest gap inside a queue (metres).
DEFAULT_MAX_GAP_M = 50.0
#: Default half-width of the carriageway in which vehicles count: what a two-lane road
#: needs (7-8 m wide, so vehicle centres within about 3 m of its centre) plus 1.5 m for a
#: centreline a little off; verges and lay-bys stay out (--half-width for wider roads).
DEFAULT_HALF_WIDTH_M = 4.5
#: Extra corridor either side of the carriageway, read as context for the detector.
CONTEXT_M = 4.0
#: Road is measured in pieces of this length, each read with this much more before and
#: after as context for the detector (the strip's statistics, e.g. its sun direction, are
#: its own: 50 m changed the results of one-piece roads, gap-under-0.8 by 7 %).
PIECE_M = 1500.0
OVERLAP_M = 100.0
#: Share of a row's carriageway that must hold valid pixels for the row to be observed.
MIN_VALID_SHARE = 0.5

Progress = Callable[[float, float], None]

#: Test-only hook (inert unless set): a path. After the first piece of a road side has been
#: read, the run creates this file and waits, in the main thread, while the file exists.
#: A test can then interrupt the run at a known point instead of after a guessed delay.
HOLD_ENV = "QUEUEMEASURE_TEST_HOLD"


def _hold_if_asked() -> None:
    """Signal and wait at the test hold point when ``$QUEUEMEASURE_TEST_HOLD`` is set."""
    path = os.environ.get(HOLD_ENV)
    if not path:
        return
    open(path, "a").close()
    while os.path.exists(path):  # a SIGINT lands here as KeyboardInterrupt
        time.sleep(0.02)


@dataclass
class _SideMeasurement:
    path: RoadPath
    vehicles: list[Vehicle]
    s0: np.ndarray
    s1: np.ndarray
    score: np.ndarray
    offset: np.ndarray
    occluded: np.ndarray
    observed_end_m: float
    end_reason: str
    chain: QueueChain
    blocks: int = 0
    notes: list[str] = field(default_factory=list)


def check_options(max_gap: float, half_width: float, sensitivity: float) -> None:
    """Raise :class:`OptionError` for an out-of-range option of :func:`measure`."""
    if not np.isfinite(max_gap) or max_gap <= 0:
        raise OptionError(f"max gap must be a positive number of metres, not {max_gap}")
    if max_gap > 1000:
        raise OptionError(f"max gap of {max_gap} m is absurd for a queue (at most 1000 m)")
    if not np.isfinite(half_width) or not 1.0 <= half_width <= 50.0:
        raise OptionError(f"half width must be between 1 and 50 m, not {half_width}")
    if not np.isfinite(sensitivity) or not 0.2 <= sensitivity <= 5.0:
        raise OptionError(f"sensitivity must be between 0.2 and 5, not {sensitivity}")


def measure(
    tile: Any,
    road: Any,
    *,
    head: Sequence[float] | None = None,
    max_gap: float = DEFAULT_MAX_GAP_M,
    direction: Direction = "both",
    road_crs: Any = None,
    bands: Sequence[int] | None = None,
    half_width: float = DEFAULT_HALF_WIDTH_M,
    sensitivity: float = 1.0,
    max_head_distance: float = MAX_HEAD_DISTANCE_M,
    progress: Progress | None = None,
    workers: int | None = None,
    reference: Any = None,
    mode: str = "auto",
    cloud_mask: Any = None,
    road_select: Any = None,
    detector: str = "auto",
) -> QueueResult:
    """Measure the vehicle queue standing on ``road`` in ``tile``.

    Parameters
    ----------
    tile : str, os.PathLike or rasterio dataset
        A GeoTIFF (any CRS) path, a URL GDAL reads, or an open dataset.
    road : str, os.PathLike, dict or shapely geometry
        The road centreline: GeoJSON (file, string or mapping), WKT or shapely, WGS84
        unless ``road_crs`` says otherwise; or OpenStreetMap data (``.osm``, ``.osm.pbf``,
        Overpass JSON, GeoPackage/FlatGeobuf), with ``road_select``.
    head : (lon, lat), optional
        The checkpoint holding the queue, WGS84. Default: the road's first vertex.
    max_gap : float
        Largest gap (metres) between vehicles of one queue.
    direction : {"both", "forward", "backward"}
        Side(s) of the head to search; with "both" the longer queue is kept.
    road_crs : CRS-like, optional
        CRS of the road's coordinates.
    bands : sequence of int, optional
        1-based bands to analyse (default: RGB by colour interpretation, or band 1).
    half_width : float
        Half-width (metres) of the carriageway on which vehicles count.
    sensitivity : float
        Detector sensitivity (1 = default; higher finds fainter vehicles).
    max_head_distance : float
        Refuse a head farther than this from the road (metres).
    progress : callable(done_m, total_m), optional
        Called after each piece of road is processed.
    workers : int, optional
        Worker processes that detect pieces of a long road while the next ones are read
        (1: none). Default: ``$QUEUEMEASURE_WORKERS``, else 2 where forking is safe (a
        program with no other thread, on Linux); see :mod:`queuemeasure.parallel`. The
        result does not depend on it.
    reference : str, os.PathLike or rasterio dataset, optional
        Occupancy mode: the same road on a date when it was free (any CRS, a pixel size
        near the tile's); the queue is then what changed on the carriageway.
    mode : {"auto", "vehicles", "occupancy"}
        The regime: vehicles resolved and chained (fine pixels) or occupied stretches of
        the carriageway (coarse pixels, :mod:`queuemeasure.occupancy_pipeline`); "auto"
        chooses by the tile's pixel size (vehicles up to 1.3 m).
    cloud_mask : str, os.PathLike or rasterio dataset, optional
        Occupancy mode: a raster (any CRS) whose pixels >= 1 are cloud; cloud counts as
        occluded (as does a band described "SCL", read without asking).
    road_select : Selection or mapping, optional
        When ``road`` is OpenStreetMap data: which ways make the road and where it
        leads, e.g. ``{"ref": "А-161", "toward": (44.67, 42.81)}`` (see
        :func:`queuemeasure.osm.osm_road`).
    detector : {"auto", "rules", "learned"}
        The vehicle detector (:mod:`queuemeasure.detect`); ``"auto"`` is
        :data:`queuemeasure.detect.DEFAULT_DETECTOR` for colour tiles and the rule detector
        for a single (panchromatic) band. ``QueueResult.detector`` says which one ran.

    Returns
    -------
    QueueResult

    Raises
    ------
    queuemeasure.errors.InputError
        For a bad tile, road, head or option.
    queuemeasure.errors.RasterReadError
        When pixels cannot be read.

    Examples
    --------
    >>> import queuemeasure as qm
    >>> r = qm.measure("sample_tiles/curve_utm_SYNTHETIC.tif",
    ...                road="sample_tiles/curve_utm_SYNTHETIC.road.geojson")  # doctest: +SKIP
    >>> round(r.length_km, 2)  # doctest: +SKIP
    0.6
    """
    t0 = time.perf_counter()
    check_options(max_gap, half_width, sensitivity)
    from .detect import resolve_detector

    resolve_detector(detector)  # checks the name before anything is read
    resolve_workers(workers, pieces=0)  # checks workers and $QUEUEMEASURE_WORKERS
    chosen = resolve_mode(mode, tile_gsd(tile) if mode == "auto" else 0.0)
    if chosen == "occupancy":
        return _measure_occupancy(
            tile, road, head=head, max_gap=max_gap, direction=direction, road_crs=road_crs,
            bands=bands, half_width=half_width, max_head_distance=max_head_distance,
            progress=progress, reference=reference, cloud_mask=cloud_mask, t0=t0,
            road_select=road_select,
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sides = _road_sides(road, road_crs, head, direction, max_head_distance, road_select)
        with open_tile(tile) as ds:
            band_idx = choose_bands(ds, bands)
            detector = resolve_detector(detector, n_bands=len(band_idx))
            sampler = BlockSampler(ds, band_idx)
            hx, hy = geo.transformer(geo.WGS84, ds.crs).transform(*sides.head_lonlat)
            dx, dy = ground_pixel_size(ds, (hx, hy))
            if not (np.isfinite(dx) and np.isfinite(dy)) or min(dx, dy) <= 0:
                raise RoadError("the head does not map onto the tile's grid (is it far outside?)")
            gsd = float(np.sqrt(dx * dy))
            step = max(gsd, 0.05)
            scaler = Scaler(ds.dtypes[band_idx[0] - 1])
            tick = progress_ticker(sum(p.length_m for p in sides.sides), progress)
            measured = [
                _measure_side(
                    sampler, ds.crs, p, scaler, step=step, gsd=gsd, max_gap=max_gap,
                    half_width=half_width, sensitivity=sensitivity, tick=tick,
                    workers=workers, detector=detector,
                )
                for p in sides.sides
            ]
            any_coverage = any(m.observed_end_m > 0 for m in measured)
            if not any_coverage:
                raise RoadError(_no_coverage_message(ds, sides))
            synthetic = is_synthetic(ds)
            raster_crs = crs_name(ds.crs)
            tile_name = ds.name if not isinstance(tile, (str, os.PathLike)) else os.fspath(tile)
            blocks = sampler.blocks_read
    best = max(measured, key=lambda m: (m.chain.length_m, m.chain.count, m.path.side == "forward"))
    notes = _warnings_to_notes(caught, list(sides.notes))
    result = _to_result(
        best, sides.head_lonlat, gsd=gsd, max_gap=max_gap, raster_crs=raster_crs,
        road_km=sum(p.length_m for p in sides.sides) / 1000.0, tile=tile_name,
        synthetic=synthetic, notes=notes,
    )
    result.detector = detector
    result.profile.update(
        other_road_lonlat=[p.lonlat for p in sides.sides if p is not best.path],
        bands=band_idx,
    )
    if len(sides.sides) == 2:
        other = [m for m in measured if m is not best][0]
        result.notes.append(
            f"searched both sides of the head; kept the {best.path.side} side "
            f"({best.chain.length_m / 1000:.3f} km vs {other.chain.length_m / 1000:.3f} km)"
        )
    result.blocks_read = blocks
    _vehicle_mode_flags(result, gsd, reference)
    result.elapsed_s = time.perf_counter() - t0
    return result


def progress_ticker(total: float, progress: Progress | None) -> Callable[[float], None]:
    """``tick(metres)``: adds up the metres done and reports them to ``progress``."""
    done = [0.0]

    def tick(m: float) -> None:
        done[0] += m
        if progress is not None:
            progress(min(done[0], total), total)

    return tick


def _warnings_to_notes(caught: Sequence[Any], notes: list[str]) -> list[str]:
    """Record caught warnings in ``notes`` and pass them on to the caller (the CLI prints
    them)."""
    for w in caught:
        msg = str(w.message)
        if msg not in notes:
            notes.append(msg)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return notes


def _vehicle_mode_flags(result: QueueResult, gsd: float, reference: Any) -> None:
    """Mode and confidence of a vehicles-mode result."""
    result.mode = "vehicles"
    if gsd > VEHICLES_MAX_GSD_M:
        result.low_confidence = True
        result.notes.append(
            f"low confidence: pixels of {gsd:.2f} m are too coarse for the vehicle detector "
            f"(trusted up to {VEHICLES_MAX_GSD_M} m); use --mode occupancy (the default for them)")
    if reference is not None:
        result.notes.append("the reference is used only in occupancy mode; it was not read")


def _road_sides(road: Any, road_crs: Any, head: Sequence[float] | None, direction: Direction,
                max_head_distance: float, road_select: Any) -> Any:
    """The road cut at the head into the side(s) to search (both regimes)."""
    return prepare_road(
        road, crs=road_crs, head=tuple(head) if head is not None else None,
        direction=direction, max_head_distance_m=max_head_distance, road_select=road_select,
    )


def _measure_occupancy(tile: Any, road: Any, *, head: Sequence[float] | None, max_gap: float,
                       direction: Direction, road_crs: Any, bands: Sequence[int] | None,
                       half_width: float, max_head_distance: float, progress: Progress | None,
                       reference: Any, cloud_mask: Any, t0: float,
                       road_select: Any = None) -> QueueResult:
    """:func:`measure` in occupancy mode (coarse pixels)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sides = _road_sides(road, road_crs, head, direction, max_head_distance, road_select)
        result, _ = measure_occupancy(tile, sides, max_gap=max_gap, bands=bands,
                                      half_width=half_width, reference=reference,
                                      cloud_mask=cloud_mask, progress=progress)
    result.notes = _warnings_to_notes(caught, result.notes)
    result.detector = "occupancy"  # no vehicle detector ran
    result.elapsed_s = time.perf_counter() - t0
    return result


def _no_coverage_message(ds: Any, sides: Any) -> str:
    """Say why the road has no valid pixels, hinting at swapped axes when they fit."""
    from .raster import tile_bounds_lonlat

    w, s, e, n = tile_bounds_lonlat(ds)
    ll = np.concatenate([p.lonlat for p in sides.sides])
    lon, lat = ll[:, 0], ll[:, 1]
    inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    swapped = (lat >= w) & (lat <= e) & (lon >= s) & (lon <= n)
    if swapped.any() and not inside.any():
        return ("the road lies outside the tile, but would lie on it with its axes swapped: "
                "GeoJSON wants lon,lat (x,y) order")
    if not inside.any():
        return (f"the road lies entirely outside the tile (road lon {lon.min():.5f}..{lon.max():.5f}, "
                f"lat {lat.min():.5f}..{lat.max():.5f}; tile lon {w:.5f}..{e:.5f}, lat {s:.5f}..{n:.5f})")
    return "the tile has no valid data along the road (all nodata or masked)"


def _measure_side(
    sampler: BlockSampler,
    raster_crs: Any,
    path: RoadPath,
    scaler: Scaler,
    *,
    step: float,
    gsd: float,
    max_gap: float,
    half_width: float,
    sensitivity: float,
    tick: Callable[[float], None],
    workers: int | None = None,
    detector: str = "rules",
    piece_m: float = PIECE_M,
    overlap_m: float = OVERLAP_M,
) -> _SideMeasurement:
    # imported here, before any worker forks: they inherit it instead of importing it
    from .detect import get_detector

    get_detector(detector)

    strip_half = half_width + CONTEXT_M
    # which pieces can touch the tile at all (reads no pixels)
    # 2 m steps, coarser only for roads far longer than any tile (10 000+ km)
    chords, inside = coverage_chords(sampler, path, raster_crs,
                                     step_m=max(2.0, path.length_m / 2_000_000))
    n_total = max(1, int(np.ceil(path.chord_m[-1] / step)))

    has_data = np.zeros(n_total, dtype=bool)
    occluded = np.zeros(n_total, dtype=bool)
    vehicles: list[Vehicle] = []
    core_rows = max(1, int(round(piece_m / step)))
    n_workers = resolve_workers(workers, pieces=-(-n_total // core_rows))
    # the footprints' reprojection, made here: a worker must not open anything in PROJ's
    # database (an SQLite connection is not to be used across a fork; this transformer is
    # an explicit pipeline, see geo.transformer)
    context = _PieceContext(path, step, half_width, sensitivity,
                            geo.transformer(path.local_crs, geo.WGS84), detector)

    def take(found: tuple[list[Vehicle], np.ndarray, slice]) -> None:
        piece_vehicles, piece_occluded, glob = found
        occluded[glob] = piece_occluded
        vehicles.extend(piece_vehicles)
        tick(piece_m)

    # pieces are detected on worker processes (or here) while the next ones are read and
    # resampled on a second thread
    with Workers(_detect_piece, context, workers=n_workers) as pool:
        for piece in prefetched(iter_strips(
            sampler, path, raster_crs, scaler, step_m=step, half_width_m=strip_half,
            piece_m=piece_m, overlap_m=overlap_m, coverage=(chords, inside),
        )):
            if piece.index == 0:
                _hold_if_asked()
            strip = piece.strip
            row_a = int(round(strip.chord0 / step))
            core = slice(piece.core_start, piece.core_stop)
            glob = slice(row_a + piece.core_start, row_a + piece.core_stop)
            offs = strip.offset_at_col(np.arange(strip.image.shape[1]) + 0.5)
            # at least the column nearest the centreline, whatever the pixel size
            carriage = np.abs(offs) <= max(half_width, step / 2 + 1e-9)
            share = strip.valid[:, carriage].mean(axis=1)
            has_data[glob] = share[core] >= MIN_VALID_SHARE
            if piece.off_tile or not strip.valid.any():
                tick(piece_m)
                continue
            pool.submit(strip.image, strip.valid, strip.half_width_m, strip.chord0,
                        piece.core_start, piece.core_stop, glob)
            for found in pool.ready():
                take(found)
        for found in pool.drain():
            take(found)

    # rows -> stations
    edges = path.station_at_chord(np.arange(n_total + 1) * step)
    edges[-1] = min(edges[-1], path.length_m)
    if has_data.any():
        last = int(np.flatnonzero(has_data)[-1])
        observed_end = float(edges[last + 1])
    else:
        last, observed_end = -1, 0.0
    if observed_end >= path.length_m - 2 * step:
        reason, observed_end = "road_end", path.length_m
    else:
        beyond = path.chord_at(observed_end) + 4 * step
        reason = "image_edge" if not inside[np.searchsorted(chords, min(beyond, chords[-1]))] else "nodata"
    hidden = (occluded | ~has_data)[: last + 1]
    occ = _row_runs_to_intervals(hidden, edges)

    s0 = np.array([v.s0_m for v in vehicles])
    s1 = np.array([v.s1_m for v in vehicles])
    score = np.array([v.score for v in vehicles])
    offset = np.array([v.offset_m for v in vehicles])
    chain = chain_queue_bridged(s0, s1, score, max_gap_m=max_gap, occluded=occ,
                                observed_end_m=observed_end, end_reason=reason, offset=offset)
    return _SideMeasurement(path, vehicles, s0, s1, score, offset, occ, observed_end, reason, chain)


@dataclass(frozen=True)
class _PieceContext:
    """What every piece of one road side shares (reaches worker processes by fork)."""

    path: RoadPath
    step: float
    half_width: float
    sensitivity: float
    to_lonlat: Any
    detector: str = "rules"


def _detect_piece(
    ctx: _PieceContext, image: np.ndarray, valid: np.ndarray, strip_half: float, chord0: float,
    core_start: int, core_stop: int, glob: slice,
) -> tuple[list[Vehicle], np.ndarray, slice]:
    """Detect one piece: the vehicles it owns and its core rows' occlusion."""
    from .detect import get_detector

    detect_vehicles = get_detector(ctx.detector)
    strip = Strip(image=image, valid=valid, step_m=ctx.step, half_width_m=strip_half,
                  chord0=chord0, path=ctx.path)
    det = detect_vehicles(
        image, valid, step_m=ctx.step, half_width_m=ctx.half_width, sensitivity=ctx.sensitivity,
        # only vehicles centred in the core are kept (_piece_vehicles): the overlap's
        # blobs need not be analysed
        centre_rows=(core_start - 0.5, core_stop - 0.5),
    )
    piece = Piece(strip, core_start, core_stop, 0)
    found = _piece_vehicles(det.vehicles, piece, ctx.half_width, ctx.path.side, ctx.to_lonlat)
    return found, np.asarray(det.occluded, dtype=bool)[core_start:core_stop], glob


def _piece_vehicles(
    found: Sequence[Any], piece: Any, half_width: float, side: str, to_lonlat: Any
) -> list[Vehicle]:
    """The detections a piece owns (centre in its core rows, on the carriageway), with
    their footprints in WGS84 and their stations; all of a piece's footprints are mapped
    in one vectorised call (one reprojection per piece, not per vehicle)."""
    strip = piece.strip
    kept, rings = [], []
    offs = strip.offset_at_col(np.array([v.col_center for v in found], dtype=float) + 0.5)
    for v, off in zip(found, offs.tolist()):
        # the detector centres pixel k at k; the strip's edge coordinates at k + 0.5
        rc = 0.5 * (v.row0 + v.row1) + 0.5
        if not piece.core_start <= rc < piece.core_stop:
            continue
        if abs(off) > half_width:
            continue
        kept.append((v, off))
        rings.append(np.asarray(v.polygon, dtype=float).reshape(-1, 2) + 0.5)
    if not kept:
        return []
    pts = np.concatenate(rings)
    xy = strip.xy_at(pts[:, 0], pts[:, 1])
    ll = np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))
    rows = np.array([[v.row0, v.row1] for v, _ in kept], dtype=float) + 0.5
    st = strip.station_at_row(rows)
    # which rings are closed already, all at once
    sizes = np.array([len(r) for r in rings])
    ends = np.cumsum(sizes)
    closed = np.ones(len(rings), bool)
    some = sizes > 0
    if some.any():
        closed[some] = np.all(ll[(ends - sizes)[some]] == ll[(ends - 1)[some]], axis=1)
    out = []
    at = 0
    for (v, off), r, (s0, s1), shut in zip(kept, rings, st, closed.tolist()):
        ring = ll[at:at + len(r)]
        at += len(r)
        if not shut:
            ring = np.vstack([ring, ring[:1]])
        out.append(Vehicle(
            footprint_lonlat=ring, s0_m=float(s0), s1_m=float(s1), offset_m=off,
            score=float(v.score), kind=v.kind, side=side,
        ))
    return out


def _row_runs_to_intervals(flag: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Runs of True rows as [start, end] station intervals (merged)."""
    if not flag.any():
        return np.zeros((0, 2))
    d = np.diff(np.concatenate([[0], flag.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return merge_intervals(np.column_stack([edges[starts], edges[stops]]))


def queue_geometry(
    path: RoadPath, chain: QueueChain, occluded: np.ndarray
) -> tuple[tuple[float, float] | None, np.ndarray, list[tuple[float, float]]]:
    """The chained queue's tail (lon, lat), its line along the road (WGS84) and the
    occluded stretches within it (km from the head)."""
    if chain.count:
        tail = path.lonlat_at(chain.end_m)
        tail_lonlat: tuple[float, float] | None = (float(tail[0]), float(tail[1]))
        line = path.substring_lonlat(chain.start_m, chain.end_m)
    else:
        tail_lonlat, line = None, np.zeros((0, 2))
    occ_in = [
        (float(a) / 1000.0, float(b) / 1000.0)
        for a, b in occluded
        if chain.count and b > chain.start_m and a < chain.end_m
    ]
    return tail_lonlat, line, occ_in


def _to_result(
    m: _SideMeasurement,
    head_lonlat: tuple[float, float],
    *,
    gsd: float,
    max_gap: float,
    raster_crs: str,
    road_km: float,
    tile: str,
    synthetic: bool,
    notes: list[str],
) -> QueueResult:
    chain = m.chain
    members = set(chain.members.tolist())
    vehicles = [
        Vehicle(v.footprint_lonlat, v.s0_m, v.s1_m, v.offset_m, v.score, v.kind, i in members, v.side)
        for i, v in enumerate(m.vehicles)
    ]
    lo, hi = length_range(
        m.s0, m.s1, m.score, max_gap_m=max_gap, gsd_m=gsd, occluded=m.occluded,
        observed_end_m=m.observed_end_m, offset=m.offset,
    )
    length_m = chain.length_m
    lo, hi = min(lo, length_m), max(hi, length_m)
    tail_lonlat, line, occ_in = queue_geometry(m.path, chain, m.occluded)
    return QueueResult(
        length_km=length_m / 1000.0,
        length_km_range=(lo / 1000.0, hi / 1000.0),
        vehicle_count=chain.count,
        head_lonlat=(float(head_lonlat[0]), float(head_lonlat[1])),
        tail_lonlat=tail_lonlat,
        truncated=chain.truncated,
        truncation_reason=chain.reason,
        occluded_km=chain.occluded_m / 1000.0,
        max_gap_m=float(max_gap),
        gsd_m=gsd,
        raster_crs=raster_crs,
        road_km_searched=road_km,
        direction=m.path.side,
        vehicles=vehicles,
        queue_lonlat=line,
        occluded_stretches_km=occ_in,
        tile=tile,
        synthetic=synthetic,
        notes=notes,
        profile={"observed_end_m": m.observed_end_m, "end_reason": m.end_reason,
                 "occluded_m": m.occluded.tolist(), "road_lonlat": m.path.lonlat,
                 "road_station_m": m.path.station_m},
    )
