"""The occupancy pipeline, for pixels too coarse to resolve vehicles (3 m, 10 m).

road → corridor strips of the tile (and of a reference, aligned and normalised) →
evidence per station (:mod:`queuemeasure.detect.occupancy`) → occupied stretches →
the same queue chaining as vehicles (:mod:`queuemeasure.queue`) → :class:`QueueResult`
with ``mode="occupancy"``, ``low_confidence`` and ``vehicle_count_estimate``.

This module only orchestrates; the road, corridor and queue code is the vehicle
pipeline's.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import geo
from .coregister import ReferenceOnTile, TilePixels, clip_level, clipped_samples, tile_pixels
from .corridor import BlockSampler, Scaler, build_strip, coverage_chords, iter_strips, strip_points
from .detect import occupancy as occ
from .errors import OptionError, RasterError, RemoteError, RoadError
from .queue import QueueChain, chain_queue_bridged, length_range
from .raster import (SCL_OCCLUDED, band_roles, band_scaling, crs_name, ground_pixel_size,
                     is_synthetic, open_tile)
from .result import QueueResult
from .road import RoadPath

__all__ = ["measure_occupancy", "resolve_mode", "VEHICLES_MAX_GSD_M", "SPACING_PRIOR_M"]

#: Largest pixel at which the vehicle detector is trusted. Measured on SYNTHETIC scenes
#: area-averaged from 0.25-0.5 m (benchmarks/README.md): at 1.0 and 1.25 m the length was
#: within 5 % on every scene, at 1.5 m one scene in three measured 0.10 km for 0.59, at
#: 2 m none was right.
VEHICLES_MAX_GSD_M = 1.3
#: Below this pixel size the occupancy estimator is outside what it was checked on.
OCCUPANCY_MIN_GSD_M = 1.3
#: Occupancy is not attempted on pixels coarser than this (a car is a hundredth of one).
OCCUPANCY_MAX_GSD_M = 30.0
#: Spacing prior: road metres per queued vehicle per lane — cars 6.5-8.5 m (a 4.5 m car
#: and a 2-4 m gap); trucks and buses (12-18 m plus their gap) raise the mean: about
#: 10 m with a fifth of them, 12 m when they are more than half the queue.
SPACING_PRIOR_M = (6.5, 12.0)
#: Reference images farther off in pixel size than this factor are refused.
MAX_GSD_RATIO = 3.0
#: Corridor read beside the carriageway as context: this many pixels, at least 12 m.
CONTEXT_PX = 4.0
PIECE_M = 1500.0
MIN_VALID_SHARE = 0.5

Progress = Callable[[float, float], None]


def resolve_mode(mode: str, gsd_m: float) -> str:
    """The regime for a pixel size: "vehicles" up to :data:`VEHICLES_MAX_GSD_M`, else
    "occupancy"; ``mode`` other than "auto" forces it."""
    if mode not in ("auto", "vehicles", "occupancy"):
        raise OptionError(f"mode must be auto, vehicles or occupancy, not {mode!r}")
    if mode != "auto":
        return mode
    return "vehicles" if gsd_m <= VEHICLES_MAX_GSD_M else "occupancy"


def tile_gsd(tile: Any) -> float:
    """Ground pixel size (metres) at the tile's centre."""
    with open_tile(tile) as ds:
        dx, dy = ground_pixel_size(ds)
    return float(np.sqrt(abs(dx * dy)))


@dataclass
class _Source:
    """One image read along the road: sampler, scaler, optional scene-class sampler."""

    ds: Any
    sampler: BlockSampler
    scaler: Scaler
    names: list[str]
    gsd: float
    scl: BlockSampler | None = None
    mask: BlockSampler | None = None
    mask_crs: Any = None
    shift_px: tuple[float, float] = (0.0, 0.0)


@dataclass
class _Side:
    path: RoadPath
    edges: np.ndarray
    road: np.ndarray
    null: np.ndarray
    observed: np.ndarray
    occluded: np.ndarray
    observed_end_m: float
    end_reason: str
    shift_m: tuple[float, float] | None = None
    runs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chain: QueueChain | None = None
    intervals: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    occluded_iv: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    weak_intervals: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    interval_score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    thresholds: tuple[float, float] = (np.nan, np.nan)
    separation: float = 0.0
    unseparated_m: float = 0.0
    saturated_m: float = 0.0
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gap_m: float = 50.0
    share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tone: np.ndarray = field(default_factory=lambda: np.zeros(0))
    signed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    null_signed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _opened(opener: Callable[[Any], Any], source: Any, what: str) -> Iterator[Any]:
    """``opener(source)`` with its errors saying which input they are about."""
    try:
        cm = opener(source)
        ds = cm.__enter__()
    except (RasterError, RemoteError) as exc:
        raise type(exc)(f"{what}: {exc}") from None
    try:
        yield ds
    finally:
        cm.__exit__(None, None, None)


def _gsd_at(ds: Any, lonlat: tuple[float, float]) -> float:
    x, y = geo.transformer(geo.WGS84, ds.crs).transform(*lonlat)
    dx, dy = ground_pixel_size(ds, (x, y))
    if not (np.isfinite(dx) and np.isfinite(dy)) or min(dx, dy) <= 0:
        raise RoadError("the head does not map onto the tile's grid (is it far outside?)")
    return float(np.sqrt(dx * dy))


def _source(ds: Any, bands: Sequence[int] | None, lonlat: tuple[float, float],
            cloud_mask: Any = None) -> _Source:
    roles = band_roles(ds, bands)
    scaler = Scaler(ds.dtypes[roles.image[0] - 1], physical=band_scaling(ds, roles.image))
    src = _Source(ds, BlockSampler(ds, roles.image), scaler, roles.names, _gsd_at(ds, lonlat))
    if roles.scl is not None:
        src.scl = BlockSampler(ds, [roles.scl])
    return src


def _common_bands(tile: _Source, ref: _Source) -> tuple[list[int], list[int]]:
    """Positions (in each source's image bands) of the bands both images have."""
    named = [n for n in tile.names if n in ref.names and not n.startswith("band")]
    if named:
        return [tile.names.index(n) for n in named], [ref.names.index(n) for n in named]
    k = min(len(tile.names), len(ref.names))
    return list(range(k)), list(range(k))


def _occluded_rows(src: _Source, path: RoadPath, strip: Any, carriage: np.ndarray) -> np.ndarray | None:
    """Rows whose carriageway is mostly hidden: cloud, shadow, snow or nodata by the SCL
    band, or cloud by the cloud mask (nearest pixel, in each raster's own CRS)."""
    hidden = None
    offsets = strip.offset_at_col(np.arange(strip.image.shape[1]) + 0.5)[carriage]
    chord = strip.chord0 + (np.arange(strip.n_rows) + 0.5) * strip.step_m
    for sampler, crs, test in ((src.scl, src.ds.crs, _scl_hidden), (src.mask, src.mask_crs, _mask_hidden)):
        if sampler is None:
            continue
        from .corridor import _sample_points

        rows, cols = _sample_points(sampler, path, chord, offsets, crs)
        vals, ok = sampler.sample(np.round(rows), np.round(cols), segments=True)
        bad = (test(vals[:, 0]) & ok).reshape(rows.shape).mean(axis=1) >= MIN_VALID_SHARE
        hidden = bad if hidden is None else hidden | bad
    return hidden


def _scl_hidden(v: np.ndarray) -> np.ndarray:
    return np.isin(np.rint(v).astype(np.int64), SCL_OCCLUDED)


def _mask_hidden(v: np.ndarray) -> np.ndarray:
    return v >= 0.5


def measure_occupancy(
    tile: Any,
    sides: Any,
    *,
    max_gap: float,
    bands: Sequence[int] | None = None,
    half_width: float,
    reference: Any = None,
    cloud_mask: Any = None,
    progress: Progress | None = None,
) -> tuple[QueueResult, list[_Side]]:
    """Measure the queue as occupied stretches of the carriageway (coarse pixels).

    Parameters
    ----------
    tile : path, URL or dataset
    sides : queuemeasure.road.RoadSides
        The road prepared and cut at the head.
    max_gap : float
    bands : sequence of int, optional
        Image bands R,G,B[,NIR] (default from descriptions / colour interpretation).
    half_width : float
        Half-width of the carriageway (metres).
    reference : path, URL or dataset, optional
        The same road on a date when it was free.
    cloud_mask : path, URL or dataset, optional
        A raster (any CRS) whose pixels >= 1 are cloud over the tile (0 clear; nodata
        not known); cloud counts as occluded, like the SCL band's cloud classes.
    progress : callable(done_m, total_m), optional

    Returns
    -------
    (QueueResult, list of side records)
    """
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        ds = stack.enter_context(open_tile(tile))
        src = _source(ds, bands, sides.head_lonlat)
        if cloud_mask is not None:
            mds = stack.enter_context(_opened(open_tile, cloud_mask, "cloud mask"))
            src.mask, src.mask_crs = BlockSampler(mds, [1]), mds.crs
        ref = None
        if reference is not None:
            rds = stack.enter_context(_opened(open_tile, reference, "reference"))
            ref = _source(rds, None, sides.head_lonlat)
            ratio = max(ref.gsd, src.gsd) / min(ref.gsd, src.gsd)
            if ratio > MAX_GSD_RATIO:
                raise OptionError(
                    f"the reference's pixel ({ref.gsd:.2f} m) is too far from the tile's "
                    f"({src.gsd:.2f} m): give a reference within a factor {MAX_GSD_RATIO:g}")
        gsd = src.gsd if ref is None else max(src.gsd, ref.gsd)
        if gsd > OCCUPANCY_MAX_GSD_M:
            raise RasterError(f"pixels of {gsd:.1f} m are too coarse to see a queue of vehicles "
                              f"(at most {OCCUPANCY_MAX_GSD_M:g} m)")
        from .pipeline import progress_ticker

        tick = progress_ticker(sum(p.length_m for p in sides.sides), progress)
        measured = [_measure_side(src, ref, p, gsd=gsd, half_width=half_width,
                                  max_gap=max_gap, tick=tick) for p in sides.sides]
        if not any(m.observed_end_m > 0 for m in measured):
            from .pipeline import _no_coverage_message

            raise RoadError(_no_coverage_message(ds, sides))
        synthetic = is_synthetic(ds) or (ref is not None and is_synthetic(ref.ds))
        raster_crs = crs_name(ds.crs)
        tile_name = ds.name if not isinstance(tile, (str, os.PathLike)) else os.fspath(tile)
        blocks = src.sampler.blocks_read + (ref.sampler.blocks_read if ref else 0)
        band_names = src.names
        reference_name = None if ref is None else (
            os.fspath(reference) if isinstance(reference, (str, os.PathLike)) else ref.ds.name)
    best = max(measured, key=lambda m: (m.chain.length_m, m.path.side == "forward"))
    result = _to_result(best, sides, gsd=gsd, max_gap=max_gap, raster_crs=raster_crs,
                        tile=tile_name, synthetic=synthetic, with_reference=ref is not None,
                        half_width=half_width, bands=band_names, reference_name=reference_name)
    if len(sides.sides) == 2:
        other = [m for m in measured if m is not best][0]
        result.notes.append(
            f"searched both sides of the head; kept the {best.path.side} side "
            f"({best.chain.length_m / 1000:.3f} km vs {other.chain.length_m / 1000:.3f} km)")
    result.blocks_read = blocks
    result.elapsed_s = time.perf_counter() - t0
    return result, measured


# ---------------------------------------------------------------- reading one side
def _strip_half(half_width: float, gsd: float) -> float:
    return half_width + max(12.0, CONTEXT_PX * gsd)


def _measure_side(src: _Source, ref: _Source | None, path: RoadPath, *, gsd: float,
                  half_width: float, max_gap: float, tick: Callable[[float], None]) -> _Side:
    step = gsd / 2.0
    strip_half = _strip_half(half_width, gsd)
    chords, inside = coverage_chords(src.sampler, path, src.ds.crs,
                                     step_m=max(2.0, path.length_m / 2_000_000))
    n_total = max(1, int(np.ceil(path.chord_m[-1] / step)))
    road_e = np.full(n_total, np.nan)
    arrays: dict[str, np.ndarray] = {}
    observed = np.zeros(n_total, bool)
    occluded = np.zeros(n_total, bool)
    saturated = np.zeros(n_total, bool)
    shift_m = None
    if ref is not None:
        ref.shift_px, shift_m = _align(src, ref, path, chords, inside, step=step,
                                       strip_half=strip_half, half_width=half_width, gsd=gsd)
    for piece, clipped, rstrip in _pieces(src, ref, path, chords, inside, step, strip_half):
        strip = piece.strip
        row_a = int(round(strip.chord0 / step))
        core = slice(piece.core_start, piece.core_stop)
        glob = slice(row_a + piece.core_start, row_a + piece.core_stop)
        tick(PIECE_M)
        if piece.off_tile or not strip.valid.any():
            continue
        offs = strip.offset_at_col(np.arange(strip.image.shape[1]) + 0.5)
        carriage = np.abs(offs) <= max(half_width, step / 2 + 1e-9)
        # saturated samples (either image) show no change: hidden, like cloud
        tvalid = strip.valid if clipped is None else strip.valid & ~clipped
        seen = strip.valid if rstrip is None else strip.valid & (rstrip.valid | clipped)
        observed[glob] = seen[core][:, carriage].mean(axis=1) >= MIN_VALID_SHARE
        if clipped is not None:
            saturated[glob] = observed[glob] & (
                (seen & ~clipped)[core][:, carriage].mean(axis=1) < MIN_VALID_SHARE)
        cloud = _occluded_rows(src, path, strip, carriage)
        if rstrip is not None:
            rcloud = _occluded_rows(ref, path, rstrip, carriage)
            cloud = rcloud if cloud is None else (cloud | rcloud if rcloud is not None else cloud)
            ti, ri = _common_bands(src, ref)
            ev = occ.change_evidence(strip.image[..., ti], tvalid, rstrip.image[..., ri],
                                     rstrip.valid, offsets=offs, half_width_m=half_width,
                                     gsd_m=gsd)
        else:
            ev = occ.texture_evidence(strip.image, tvalid, offsets=offs,
                                      half_width_m=half_width, gsd_m=gsd, step_m=step)
        if cloud is not None:
            occluded[glob] = cloud[core]
            ev.road[cloud] = np.nan
            ev.null[cloud] = np.nan
            ev.signed[cloud] = np.nan
            ev.null_signed[cloud] = np.nan
        road_e[glob] = ev.road[core]
        if ev.scale.size:
            ev.scale = np.broadcast_to(ev.scale, (ev.road.size, ev.scale.size))
        for name in ("signed", "null", "null_signed", "scale"):
            if name == "scale" and not ev.scale.size:
                continue
            part = getattr(ev, name)[core]
            if name not in arrays:
                arrays[name] = np.full((n_total,) + part.shape[1:], np.nan)
            arrays[name][glob] = part
    edges = path.station_at_chord(np.arange(n_total + 1) * step)
    edges[-1] = min(edges[-1], path.length_m)
    if occluded.any():
        # a cloud's thin margin, outside the mask, veils the road too: its evidence is
        # not trusted either
        occluded = _dilate(occluded, int(round(CLOUD_MARGIN_M / step)))
    # a saturated carriageway is hidden too (without a cloud's veiled margin)
    occluded |= saturated
    if occluded.any():
        road_e[occluded] = np.nan
        for name in arrays:
            arrays[name][occluded] = np.nan
    if "scale" in arrays:
        road_e = _one_unit(road_e, arrays)
    end, reason = _observed_end(observed, edges, path, chords, inside, step)
    side = _Side(path, edges, road_e, arrays.get("null", np.zeros((n_total, 0))), observed,
                 occluded, end, reason, shift_m)
    side.signed = arrays.get("signed", np.zeros((n_total, 0)))
    side.null_signed = arrays.get("null_signed", np.zeros((n_total, 0, 0)))
    side.saturated_m = float(np.diff(edges)[saturated].sum())
    # a stretch's ends are each uncertain by a pixel: a gap between two counts as wider
    # than max_gap only when it is wider by more than those two pixels
    side.gap_m = max_gap + 2 * gsd
    _find_queue(side, gsd=gsd, step=step, max_gap=side.gap_m, with_reference=ref is not None)
    return side


#: a piece whose unit of change (its spread off the carriageway) exceeds the road's by more
#: than this factor in some band keeps its own unit (see _one_unit). Along the SYNTHETIC
#: 20 km Upper Lars sample the pieces' units lie within 0.6-1.7 times the median; an
#: unmasked thin cloud makes it 2.3-12.6 (benchmarks, cloud-10m)
VEIL_RATIO = 2.0


def _one_unit(road_e: np.ndarray, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The change evidence of every piece in one noise unit for the whole road.

    Each piece's change is first expressed in units of its own spread off the
    carriageway; where the verges changed between the dates (shadows under another sun,
    a slope's shading, fields), that spread is larger and a queue on the carriageway
    there would read weaker — kilometres of a queue fading into a false tail. The unit
    kept is the median of the pieces' units along the road (over the rows not hidden by
    cloud), per band; the no-vehicle level (pseudo-carriageways beside the road,
    :func:`_null_level`) is taken over the whole road in the same unit. A piece whose
    unit exceeds it by more than :data:`VEIL_RATIO` is veiled and keeps its own. Updates ``arrays`` and returns the road's energy.
    """
    scale = arrays.pop("scale")
    ok = np.isfinite(scale).all(axis=1) & (scale > 0).all(axis=1)
    if not ok.any():
        return road_e
    # the unit from the rows whose evidence is kept (not under cloud), but every piece
    # re-expressed in it
    seen = ok & np.isfinite(road_e)
    seen = seen if seen.any() else ok
    unit = np.median(scale[seen], axis=0)
    # a piece whose change beside the road is several times the road's usual is veiled
    # (thin cloud outside the mask, haze, a failed fit): everything there changed, and
    # its evidence stays in its own unit (nor does it count in the road's)
    veiled = (scale / unit).max(axis=1) > VEIL_RATIO
    if (seen & ~veiled).any():
        unit = np.median(scale[seen & ~veiled], axis=0)
        veiled = (scale / unit).max(axis=1) > VEIL_RATIO
    factor = np.where(ok[:, None], scale / unit, np.nan)
    factor[veiled] = 1.0
    road, null, arrays["signed"], arrays["null_signed"] = occ.rescale(
        arrays["signed"], arrays["null_signed"], factor)
    arrays["null"] = np.where(np.isfinite(arrays["null"]), null, np.nan)
    return np.where(np.isfinite(road_e), road, np.nan)


#: margin either side of a masked cloud along the road that counts as occluded too
CLOUD_MARGIN_M = 100.0


def _dilate(flag: np.ndarray, k: int) -> np.ndarray:
    """``flag`` grown by ``k`` rows either way."""
    if k <= 0 or not flag.any():
        return flag
    c = np.concatenate([[0], np.cumsum(flag)])
    n = flag.size
    i = np.arange(n)
    return (c[np.minimum(n, i + k + 1)] - c[np.maximum(0, i - k)]) > 0


def _pieces(src: _Source, ref: _Source | None, path: RoadPath, chords: np.ndarray,
            inside: np.ndarray, step: float, strip_half: float) -> Iterator[tuple[Any, Any, Any]]:
    """The tile's strips, which of their samples lean on a saturated tile pixel (None
    when none can), and, in step, the reference's strips on the same stations and
    offsets, resampled onto the tile's pixels first (:mod:`queuemeasure.coregister`)."""
    tiles = iter_strips(src.sampler, path, src.ds.crs, src.scaler, step_m=step,
                        half_width_m=strip_half, piece_m=PIECE_M, overlap_m=4 * step,
                        coverage=(chords, inside))
    on_tile = None if ref is None else _reference_on_tile(src, ref)
    clip = clip_level(src.ds.dtypes[src.sampler.bands[0] - 1])
    for p in tiles:
        if p.off_tile or not p.strip.valid.any() or (on_tile is None and clip is None):
            yield p, None, None
            continue
        px = _strip_pixels(src, path, p.strip, strip_half)
        clipped = clipped_samples(src.sampler, px, clip).reshape(px.shape) if clip is not None else None
        if on_tile is None:
            yield p, clipped, None
            continue
        rstrip, rclipped = on_tile.strip_like(p.strip, px, ref.shift_px)
        yield p, rclipped if clipped is None else clipped | rclipped, rstrip
        ref.sampler.release(ref.sampler.last_ids)


def _reference_on_tile(src: _Source, ref: _Source) -> ReferenceOnTile:
    return ReferenceOnTile(src.sampler, src.ds.crs, ref.sampler, ref.ds.crs, ref.scaler,
                           tile_gsd=src.gsd, ref_gsd=ref.gsd)


def _strip_pixels(src: _Source, path: RoadPath, strip: Any, strip_half: float) -> TilePixels:
    rows, cols = strip_points(src.sampler, path, src.ds.crs, chord_start=strip.chord0,
                              n_rows=strip.n_rows, step_m=strip.step_m, half_width_m=strip_half)
    return tile_pixels(rows, cols)


def _observed_end(observed: np.ndarray, edges: np.ndarray, path: RoadPath, chords: np.ndarray,
                  inside: np.ndarray, step: float) -> tuple[float, str]:
    if not observed.any():
        return 0.0, "nodata"
    last = int(np.flatnonzero(observed)[-1])
    end = float(edges[last + 1])
    if end >= path.length_m - 2 * step:
        return path.length_m, "road_end"
    beyond = path.chord_at(end) + 4 * step
    on_tile = inside[np.searchsorted(chords, min(beyond, chords[-1]))]
    return end, "nodata" if on_tile else "image_edge"


# ---------------------------------------------------------------- alignment
#: Largest co-registration error searched, in reference pixels (and at least 6 m).
MAX_SHIFT_PX = 2.0
ALIGN_M = 2000.0


def _align(src: _Source, ref: _Source, path: RoadPath, chords: np.ndarray, inside: np.ndarray, *,
           step: float, strip_half: float, half_width: float, gsd: float
           ) -> tuple[tuple[float, float], tuple[float, float]]:
    """The reference's shift (pixels) that best matches the tile's structure beside the
    road, and that shift in metres (east, north) for the notes.

    The reference is resampled onto the tile's pixels (:mod:`queuemeasure.coregister`)
    at each candidate shift, fitted to the tile's radiometry as the change evidence does
    it, and the shift kept is the one whose residual on the pixels off the carriageway
    (verges, field edges, buildings: what did not change) has the least robust spread,
    per band relative to the tile's own: whole-pixel shifts within :data:`MAX_SHIFT_PX`
    (at least 6 m), then every quarter pixel within half a pixel of the best; the fit is
    one reweighting round (more rounds chose the same shifts on every benchmark case, at
    twice the cost).

    A correlation of gradients, used before, chose a shift a quarter pixel off on a
    SYNTHETIC 10 m scene of the tests, and the queue was lost. Refining to a sixteenth of a
    pixel made two of the 10 m benchmark cases worse and none better: at 10 m the road
    line is aliased, and two dates resampled a tenth of a pixel apart differ on it by
    5-20 % of its contrast whatever the interpolator (see the README).
    """
    on = np.flatnonzero(inside)
    if not on.size:
        return (0.0, 0.0), (0.0, 0.0)
    c0 = float(chords[on[0]])
    length = min(ALIGN_M, float(chords[on[-1]]) - c0)
    n_rows = max(8, int(length / step))
    half = strip_half + 0.0
    tile_strip = build_strip(src.sampler, path, src.ds.crs, src.scaler, chord_start=c0,
                             n_rows=n_rows, step_m=step, half_width_m=half)
    offs = tile_strip.offset_at_col(np.arange(tile_strip.image.shape[1]) + 0.5)
    keep = np.abs(offs) >= half_width + gsd / 2
    ti, ri = _common_bands(src, ref)
    tile_img = tile_strip.image[..., ti]
    spread = np.maximum(occ._robust_sigma(tile_img[tile_strip.valid & keep[None, :]], axis=0), 1e-9)
    on_tile = _reference_on_tile(src, ref)
    px = _strip_pixels(src, path, tile_strip, half)
    pos = on_tile.positions(px)

    def score(dr: float, dc: float) -> float:
        img, valid, _ = on_tile.strip_image(px, pos, (dr, dc))
        ok = tile_strip.valid & valid & keep[None, :]
        if ok.sum() < 50:
            return -np.inf
        t, r = tile_img[ok], img[..., ri][ok]
        gain, offset = occ.fit_radiometry(t, r, iterations=1)
        return -float(np.sum(occ._robust_sigma(t - (r * gain + offset), axis=0) / spread))

    reach = int(np.ceil(max(MAX_SHIFT_PX, 6.0 / ref.gsd)))
    best, best_s = (0.0, 0.0), score(0.0, 0.0)
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            if dr == 0 and dc == 0:
                continue
            s = score(float(dr), float(dc))
            if s > best_s:
                best, best_s = (float(dr), float(dc)), s
    centre = best
    for dr in np.arange(-0.5, 0.51, 0.25):
        for dc in np.arange(-0.5, 0.51, 0.25):
            if dr == 0 and dc == 0:
                continue
            cand = (centre[0] + float(dr), centre[1] + float(dc))
            s = score(*cand)
            if s > best_s:
                best, best_s = cand, s
    ref.sampler.release()
    t = ref.ds.transform
    east = t.a * best[1] + t.b * best[0]
    north = t.d * best[1] + t.e * best[0]
    return best, (float(east), float(north))


# ---------------------------------------------------------------- from evidence to a queue
def _find_queue(side: _Side, *, gsd: float, step: float, max_gap: float, with_reference: bool) -> None:
    """Score the evidence against its no-vehicle level, find the stretches occupied at
    the queue's own density, place their ends, and chain them like vehicles."""
    width = max(3, int(round(max(6 * gsd, 24.0) / step)))
    e, base = _noise_score(side, width, with_reference)
    noisy = occ.occupied_runs(side.score, high=STRONG[0], low=STRONG[1])
    side.share = _share(side, _profiles(side, e - base, width, with_reference), noisy, max_gap=max_gap)
    q = side.share
    sc, sh = side.score, np.nan_to_num(side.share, nan=-1.0)
    strong = occ.hysteresis_runs((sc > STRONG[0]) & (sh > SHARE[0]), (sc > STRONG[1]) & (sh > SHARE[1]),
                                 min_rows=max(1, int(gsd / step)))
    strong = occ.outermost_edges(_fine_score(side, gsd, step), strong, width=width, level=EDGE_LEVEL)
    # weaker stretches bridge gaps between strong ones (never extend the tail: see
    # queue.chain_queue_bridged), as weak vehicle candidates do
    weak = occ.hysteresis_runs((sc > WEAK[0]) & (sh > WEAK_SHARE[0]), (sc > WEAK[1]) & (sh > WEAK_SHARE[1]))
    weak = _outside(weak, strong, len(sc))
    side.thresholds = STRONG
    side.runs = strong
    # a stretch reaching the queue's own density scores >= 1 (it may extend the queue);
    # a thinner one (a few free vehicles together) only bridges, like a weak one
    peak = np.array([np.nanmax(side.share[a:b]) for a, b in strong.tolist()]).reshape(-1)
    side.intervals = _stations(side.edges, strong)
    side.interval_score = np.where(peak >= FULL_SHARE, 2.0, THIN_SCORE)
    side.weak_intervals = _stations(side.edges, weak)
    side.chain = _chain(side, max_gap)
    inside = np.zeros(side.score.size, bool)
    if side.chain.count:
        s_mid = 0.5 * (side.edges[:-1] + side.edges[1:])
        inside = (s_mid >= side.chain.start_m) & (s_mid <= side.chain.end_m)
    side.separation = _separation(side.score, inside)
    # (not when road at the queue's density resumes beyond the tail: a queue whose chain
    # broke early has most of itself outside the chain, and the rest is no free road)
    if side.chain.count and side.separation < MIN_SEPARATION_NONE and _resumes_after(side) is None:
        # the stretch found stands no higher than the rest of the road: no queue is told
        # from the free road (an empty road's co-registration and haze residue); the
        # range keeps the stretch
        side.unseparated_m = side.chain.length_m
        side.chain = QueueChain(np.zeros(0, np.int64), 0.0, 0.0, False, None, 0.0)


#: noise units a pixel's own evidence must exceed to hold a stretch's first or last vehicle
EDGE_LEVEL = 4.0


def _fine_score(side: _Side, gsd: float, step: float) -> np.ndarray:
    """The evidence smoothed over one pixel only, in its own noise units (from the
    rows the smoothed score finds quiet)."""
    z = occ.smooth_rows(side.road, max(1, int(round(gsd / step))))
    quiet = np.isfinite(side.score) & (side.score < 1.0) & np.isfinite(z)
    if quiet.sum() < 10:
        quiet = np.isfinite(z)
    if not quiet.any():
        return z
    v = z[quiet]
    return (z - float(np.median(v))) / max(float(occ._robust_sigma(v)), 1e-9)


#: share of the rows, the least changed, from which the free carriageway's own change is taken
BIAS_QUANTILE = 15.0
#: smallest offset (noise units of a row's mean change) taken off
MIN_BIAS = 0.25


def _remove_road_bias(side: _Side) -> None:
    """Take off the change the free carriageway shows between the dates by itself.

    The radiometric fit is made on the pixels beside the road; asphalt, darker and
    greyer than verges, can come out of it a little off in some bands (haze, adjacency,
    a sensor's non-linearity), and that offset, sustained over kilometres, would read as
    a queue. It is the median change of the least changed rows (the lower
    :data:`BIAS_QUANTILE` percent of the change energy: free road), per band.
    """
    t = side.signed
    ok = np.isfinite(side.road) & np.isfinite(t).all(axis=1) if t.size else np.zeros(0, bool)
    if ok.sum() < 20:
        return
    quiet = ok & (side.road <= np.percentile(side.road[ok], BIAS_QUANTILE))
    bias = np.median(t[quiet], axis=0)
    # only an offset that stands out of the noise of a single row's mean change
    bias = np.where(np.abs(bias) >= MIN_BIAS, bias, 0.0)
    if not bias.any():
        return
    side.signed = t - bias
    side.road = np.where(ok, (side.signed ** 2).mean(axis=1), side.road)
    side.bias = bias


def _tone(side: _Side, width: int) -> tuple[np.ndarray | None, float, float]:
    """Without a reference: how far the carriageway's colour departs from the free
    road's, smoothed over ``width`` rows, and its no-vehicle level and spread.

    The free road's colour is the median tone of the rows whose texture is at the noise
    level (score below 1); a queue changes the tone (most vehicles are brighter or more
    colourful than asphalt) where its texture may be weak (vehicles of one colour bumper
    to bumper).
    """
    t = side.signed
    if not t.size or not np.isfinite(t).any():
        return None, 0.0, 1.0
    quiet = np.isfinite(side.score) & (side.score < 1.0) & np.isfinite(t).all(axis=1)
    if quiet.sum() < max(10, 3 * width):
        return None, 0.0, 1.0
    free = np.median(t[quiet], axis=0)
    sm = np.column_stack([occ.smooth_rows(t[:, b] - free[b], width) for b in range(t.shape[1])])
    noise = np.maximum(occ._robust_sigma(sm[quiet], axis=0), 1e-6)
    dist = np.sqrt(((sm / noise) ** 2).sum(axis=1))
    v = dist[quiet & np.isfinite(dist)]
    return dist, float(np.median(v)), max(float(occ._robust_sigma(v)), 1e-6)


def _outside(runs: np.ndarray, cut: np.ndarray, n: int) -> np.ndarray:
    """The parts of ``runs`` outside the runs ``cut`` (a weak stretch never overlaps a
    strong one, so it cannot carry the queue's rear past the strong one's end)."""
    mask = np.zeros(n, bool)
    for a, b in runs.tolist():
        mask[a:b] = True
    for a, b in cut.tolist():
        mask[a:b] = False
    return occ.hysteresis_runs(mask, mask)


def _noise_score(side: _Side, width: int, with_reference: bool) -> tuple[np.ndarray, float]:
    """Set ``side.score``: the smoothed evidence in noise units of its no-vehicle level
    (with a reference, the larger of the change energy's and the sustained colour
    change's). Returns the smoothed energy and its no-vehicle level."""
    if with_reference:
        _remove_road_bias(side)
    e = occ.smooth_rows(side.road, width)
    base, spread = _null_level(side, e, width, with_reference)
    side.score = (e - base) / spread
    if not with_reference:
        tone, t_base, t_spread = _tone(side, width)
        if tone is not None:
            side.tone = tone - t_base
            side.score = np.fmax(side.score, (tone - t_base) / t_spread)
    if with_reference and side.null_signed.size:
        # the sustained change of colour too (sub-pixel vehicles), against the same
        # statistic beside the road
        sus = occ.sustained_energy(side.signed, width)
        k = side.null_signed.shape[1]
        ns = np.column_stack([occ.sustained_energy(side.null_signed[:, j], width) for j in range(k)])
        v = ns[np.isfinite(ns)]
        if v.size > 20:
            b2, s2 = float(np.median(v)), max(float(occ._robust_sigma(v)), 1e-9)
            side.score = np.fmax(side.score, (sus - b2) / s2)
    return e, base


def _profiles(side: _Side, excess: np.ndarray, width: int, with_reference: bool) -> list[np.ndarray]:
    """Smoothed profiles about linear in the vehicles per metre: the excess change (or
    texture) energy, and with a reference the size of the sustained colour change (any
    colour: bright and dark stretches of a queue alike; a texture's second differences
    have none)."""
    out = [excess]
    if side.tone.size:
        out.append(side.tone)
    if with_reference and side.signed.size and np.isfinite(side.signed).any():
        sm = np.column_stack([occ.smooth_rows(side.signed[:, b], width)
                              for b in range(side.signed.shape[1])])
        out.append(np.sqrt((sm * sm).sum(axis=1)))
    return out


def _share(side: _Side, profiles: list[np.ndarray], runs: np.ndarray, *, max_gap: float) -> np.ndarray:
    """The occupied share relative to the queue's own density: each profile over its
    median in the stretches chained from the head (all stretches when none is), the
    larger of them; free traffic beyond the tail (a vehicle every 100 m is a tenth of a
    queue's density) is then not queue."""
    n = profiles[0].shape[0]
    iv = _stations(side.edges, runs)
    if not len(iv):
        return np.full(n, np.nan)
    c = chain_queue_bridged(iv[:, 0], iv[:, 1], np.ones(len(iv)), max_gap_m=max_gap, min_run=1)
    mask = np.zeros(n, bool)
    for a, b in runs[c.members].tolist() if c.count else runs.tolist():
        mask[a:b] = True
    share = np.full(n, np.nan)
    for q in profiles:
        level = np.nanmedian(np.where(mask, q, np.nan)) if mask.any() else np.nan
        if np.isfinite(level) and level > 0:
            share = np.fmax(share, q / level)
    return share


def _chain(side: _Side, max_gap: float) -> QueueChain:
    """Chain the strong and weak stretches from the head; unobserved rows are occluded."""
    from .pipeline import _row_runs_to_intervals

    hidden = side.occluded | ~side.observed
    last = int(np.flatnonzero(side.observed)[-1]) if side.observed.any() else -1
    side.occluded_iv = _row_runs_to_intervals(hidden[: last + 1], side.edges)
    s0, s1, sc = _candidates(side, max_gap)
    chain = chain_queue_bridged(s0, s1, sc, max_gap_m=max_gap, occluded=side.occluded_iv,
                                observed_end_m=side.observed_end_m, end_reason=side.end_reason,
                                min_run=BRIDGE_RUN)
    # across a hidden stretch the queue goes on only to a substantial stretch at its
    # density (two gaps of occupied road), not to a blip at a cloud's edge
    for a, b in side.occluded_iv.tolist():
        if not chain.count or not chain.start_m < a < chain.end_m:
            continue
        # the occupied road past the hidden stretch (a stretch that straddles it counts
        # from its far side)
        full = side.intervals[side.interval_score >= 1.0]
        after = full[full[:, 1] > b]
        occupied = np.clip(np.minimum(after[:, 1], chain.end_m) - np.maximum(after[:, 0], b), 0, None)
        if float(occupied.sum()) < 2 * max_gap:
            keep = s0 < a
            chain = chain_queue_bridged(s0[keep], s1[keep], sc[keep], max_gap_m=max_gap,
                                        occluded=side.occluded_iv, observed_end_m=side.observed_end_m,
                                        end_reason=side.end_reason, min_run=BRIDGE_RUN)
            break
    return chain


#: (high, low) hysteresis thresholds of an occupied stretch, in noise units of the
#: no-vehicle level: 5 sigma to start one (a false start in a few thousand stations),
#: 2 sigma to end it
STRONG = (5.0, 2.0)
#: the same for weaker stretches that may only bridge gaps between occupied ones
WEAK = (2.0, 1.0)
#: (high, low) occupied share relative to the queue's own density (see _share): a
#: stretch starts at half the queue's density and ends below 0.3 of it
SHARE = (0.5, 0.3)
WEAK_SHARE = (0.25, 0.15)
#: longest faint stretch (in max_gap) that may bridge two occupied ones
WEAK_MAX_GAPS = 4.0
#: chaining score of a weak stretch (queue.chain_queue_bridged's bridge <= it < accept)
WEAK_SCORE = 0.7
#: pieces of half max_gap (0.5-1 max_gap of occupied road) that must follow a gap closed only
#: by weak stretches
BRIDGE_RUN = 2
#: peak share (of the queue's median density) a stretch needs to extend the queue
FULL_SHARE = 0.8
#: chaining score of a thinner stretch: it bridges, and extends the queue only in the
#: lenient variant of length_range (its cut 0.75)
THIN_SCORE = 0.8


def _stations(edges: np.ndarray, runs: np.ndarray) -> np.ndarray:
    if not runs.size:
        return np.zeros((0, 2))
    return np.column_stack([edges[runs[:, 0]], edges[runs[:, 1]]])


def _candidates(side: _Side, max_gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The strong and weak stretches as chaining candidates (front, rear, score).

    Strong stretches are cut into pieces of at most half ``max_gap``: with
    :data:`BRIDGE_RUN` pieces needed after a gap that only weak stretches close
    (queue.chain_queue_bridged's ``min_run``), a queue goes on over a faint stretch only
    when half to one ``max_gap`` of road occupied at the queue's density follows it — not to a
    few free vehicles beyond the tail.
    """
    iv, sc = _pieces_of(side.intervals, side.interval_score, max_gap / 2.0)
    # the queue starts with a stretch at its density: faint ones before it do not carry
    # the head to it
    full = iv[sc >= 1.0]
    weak = side.weak_intervals
    weak = weak[weak[:, 0] >= (full[:, 0].min() if len(full) else np.inf)]
    # a faint stretch is a dip inside a queue only when short: a long one is another
    # regime (free traffic beyond the tail, a stretch of other tone), which bridges nothing
    weak = weak[weak[:, 1] - weak[:, 0] <= WEAK_MAX_GAPS * max_gap]
    iv = np.concatenate([iv, weak])
    sc = np.concatenate([sc, np.full(len(weak), WEAK_SCORE)])
    return iv[:, 0], iv[:, 1], sc


def _pieces_of(iv: np.ndarray, score: np.ndarray, piece_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Intervals cut into pieces of at most ``piece_m``, each with its interval's score."""
    if not len(iv):
        return np.zeros((0, 2)), np.zeros(0)
    n = np.maximum(1, np.ceil((iv[:, 1] - iv[:, 0]) / piece_m).astype(int))
    owner = np.repeat(np.arange(len(iv)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    size = (iv[:, 1] - iv[:, 0]) / n
    a = iv[owner, 0] + k * size[owner]
    return np.column_stack([a, a + size[owner]]), score[owner]


def _null_level(side: _Side, e: np.ndarray, width: int, with_reference: bool) -> tuple[float, float]:
    """The no-vehicle level of the smoothed evidence and its spread.

    With a reference: from the same statistic on pseudo-carriageways beside the road
    (what changed beside it). Without: from the road's own quietest stretches (its lower
    fifth; the road searched is assumed to be at least a fifth free).
    """
    if with_reference and side.null.size:
        sm = np.column_stack([occ.smooth_rows(side.null[:, k], width) for k in range(side.null.shape[1])])
        v = sm[np.isfinite(sm)]
        if v.size > 20:
            base = float(np.median(v))
            spread = float(occ._robust_sigma(v))
            return base, max(spread, 1e-3 * max(base, 1e-6))
    v = e[np.isfinite(e)]
    if v.size < 10:
        return 0.0, 1.0
    q = np.percentile(v, [20.0, 40.0])
    low = v[v <= q[1]]
    base = float(q[0])
    spread = float(occ._robust_sigma(low)) if low.size > 5 else float(np.std(v))
    return base, max(spread, 1e-3 * max(base, 1e-6), 1e-9)


def _separation(score: np.ndarray, inside: np.ndarray) -> float:
    """How far the queue's evidence stands above the free road's (in noise units)."""
    ok = np.isfinite(score)
    a, b = score[ok & inside], score[ok & ~inside]
    if a.size < 3 or b.size < 3:
        return float(np.median(a)) if a.size else 0.0
    return float((np.median(a) - np.median(b)) / max(float(occ._robust_sigma(b)), 1e-6))


# ---------------------------------------------------------------- result
def _range(side: _Side, *, gsd: float, max_gap: float) -> tuple[float, float]:
    """Length range: :func:`queue.length_range` over the stretches (acceptance cuts, max gap
    x 0.8-1.25, each end by 2 pixels, a missed rear), widened by the queue found with the
    noise thresholds at 0.8 and 1.25 times, and by a faint stretch going on from the rear."""
    s0, s1, sc = _candidates(side, max_gap)
    lo, hi = length_range(s0, s1, sc, max_gap_m=max_gap, gsd_m=gsd, occluded=side.occluded_iv,
                          observed_end_m=side.observed_end_m, spacing_m=2 * gsd, min_run=BRIDGE_RUN)
    high, low = side.thresholds
    weak = np.column_stack([side.weak_intervals, np.full(len(side.weak_intervals), WEAK_SCORE)])
    sh = np.nan_to_num(side.share, nan=-1.0)
    for f in (0.8, 1.25):
        runs = occ.hysteresis_runs((side.score > high * f) & (sh > SHARE[0]),
                                   (side.score > low * f) & (sh > SHARE[1]))
        pieces, ones = _pieces_of(_stations(side.edges, runs), np.full(len(runs), 2.0), max_gap / 2.0)
        v = np.concatenate([np.column_stack([pieces, ones]), weak])
        c = chain_queue_bridged(v[:, 0], v[:, 1], v[:, 2], max_gap_m=max_gap, min_run=BRIDGE_RUN,
                                occluded=side.occluded_iv, observed_end_m=side.observed_end_m)
        lo, hi = min(lo, c.length_m - 2 * gsd), max(hi, c.length_m + 2 * gsd)
    chain = side.chain
    if chain is not None and chain.count and len(side.weak_intervals):
        # the rear may lie anywhere in a faint stretch that goes on from it
        w = side.weak_intervals
        on = w[(w[:, 0] <= chain.end_m + gsd) & (w[:, 1] > chain.end_m)]
        if len(on):
            hi = max(hi, float(on[:, 1].max()) - chain.start_m + gsd)
    head = _hidden_before(side)
    if head is not None:
        # the queue's front may stand under what hides the road at the head (with no
        # queue seen, the queue may fill what is hidden)
        hi = hi + chain.start_m if chain is not None and chain.count else max(hi, head)
    return max(0.0, lo), hi


def _hidden_before(m: _Side) -> float | None:
    """Length of road hidden between the head and the queue's first visible stretch
    (an occluded stretch from within the gap of the head to within the gap of it). With
    no queue found: how far from the head the road is hidden, from a hidden stretch that
    starts within :data:`HEAD_CLEAR_GAPS` gaps of the head (a queue may stand there
    unseen), up to where the image's valid data end when it ends there."""
    chain = m.chain
    if chain is None:
        return None
    o = m.occluded_iv
    if not chain.count and m.end_reason == "nodata" and m.observed_end_m < m.path.length_m:
        o = np.vstack([o.reshape(-1, 2), [[m.observed_end_m, m.path.length_m]]])
    if not len(o):
        return None
    if chain.count:
        near = o[(o[:, 0] <= m.gap_m) & (o[:, 1] >= chain.start_m - m.gap_m)]
        hidden = float(near[:, 1].max() - near[:, 0].min()) if len(near) else 0.0
    else:
        hidden = _hidden_run_from_head(o, m.gap_m, HEAD_CLEAR_GAPS * m.gap_m)
    # a row or two of nodata at the head hides no queue
    return hidden if hidden >= m.gap_m / 2 else None


#: with no queue seen, a hidden stretch that starts within this many gaps of the head may
#: hide the queue: so little free road in front of it does not show that there is none
#: (a queue's front may be sparse, or faint under haze)
HEAD_CLEAR_GAPS = 4.0


def _hidden_run_from_head(o: np.ndarray, gap: float, within: float) -> float:
    """How far from the head hidden road reaches, from a hidden stretch that starts within
    ``within`` of the head, its stretches joined where they are less than ``gap`` apart."""
    o = o[np.argsort(o[:, 0])]
    o = o[o[:, 1] - o[:, 0] >= gap / 2]
    if not len(o) or o[0, 0] > within:
        return 0.0
    b = float(o[0, 1])
    for s0, s1 in o[1:].tolist():
        if s0 - b > gap:
            break
        b = max(b, s1)
    return b


def _count_estimate(length_m: float, lanes: tuple[int, int]) -> tuple[int, int] | None:
    if length_m <= 0:
        return (0, 0)
    lo = length_m * lanes[0] / SPACING_PRIOR_M[1]
    hi = length_m * lanes[1] / SPACING_PRIOR_M[0]
    return int(np.floor(lo)), int(np.ceil(hi))


def _to_result(m: _Side, sides: Any, *, gsd: float, max_gap: float, raster_crs: str, tile: str,
               synthetic: bool, with_reference: bool, half_width: float, bands: list[str],
               reference_name: str | None = None) -> QueueResult:
    chain = m.chain
    assert chain is not None
    lo, hi = _range(m, gsd=gsd, max_gap=m.gap_m)
    length_m = chain.length_m
    lo, hi = min(lo, length_m), max(hi, length_m, m.unseparated_m)
    resumes = _resumes_after(m)
    if resumes is not None:
        # the queue may go on over the stretch that resumes beyond its tail (or its head)
        hi = max(hi, resumes[2] + resumes[1] - (chain.start_m if chain.count else 0.0))
    notes = list(sides.notes)
    low_conf, why = _confidence(m, gsd=gsd, with_reference=with_reference)
    notes.extend(why)
    # lanes of 3.5 m on the carriageway less 1.5 m of slack for the centreline
    max_lanes = max(1, int(round((2 * half_width - 1.5) / 3.5)))
    lanes = (1, max_lanes)
    count = _count_estimate(length_m, lanes) if chain.count else (0, 0)
    notes.append(
        f"occupancy mode ({'change against the reference' if with_reference else 'texture, no reference'}"
        f", bands {','.join(bands)}): vehicle_count_estimate from the occupied length, "
        f"{lanes[0]}-{lanes[1]} lane(s) and {SPACING_PRIOR_M[0]:g}-{SPACING_PRIOR_M[1]:g} m "
        "per vehicle per lane (cars 6.5-8.5 m; trucks and buses raise it to 10-12 m)")
    if m.saturated_m > 0:
        notes.append(f"{m.saturated_m / 1000:.2f} km of the carriageway saturated (pixels at the "
                     "image type's largest value, as a TCI's 255 on bright ground) in the tile "
                     "or the reference: no change can be seen there; counted as hidden")
    if m.shift_m is not None:
        notes.append(f"reference aligned by {m.shift_m[0]:+.1f} m east, {m.shift_m[1]:+.1f} m north "
                     "(its CRS units)")
    from .pipeline import queue_geometry

    tail_lonlat, line, occ_in = queue_geometry(m.path, chain, m.occluded_iv)
    s_mid = 0.5 * (m.edges[:-1] + m.edges[1:])
    result = QueueResult(
        length_km=length_m / 1000.0, length_km_range=(lo / 1000.0, hi / 1000.0),
        vehicle_count=0, head_lonlat=(float(sides.head_lonlat[0]), float(sides.head_lonlat[1])),
        tail_lonlat=tail_lonlat, truncated=chain.truncated, truncation_reason=chain.reason,
        occluded_km=chain.occluded_m / 1000.0, max_gap_m=float(max_gap), gsd_m=gsd,
        raster_crs=raster_crs, road_km_searched=sum(p.length_m for p in sides.sides) / 1000.0,
        direction=m.path.side, vehicles=[], queue_lonlat=line, occluded_stretches_km=occ_in,
        tile=tile, synthetic=synthetic, notes=notes,
        profile={"observed_end_m": m.observed_end_m, "end_reason": m.end_reason,
                 "occluded_m": m.occluded_iv.tolist(), "road_lonlat": m.path.lonlat,
                 "road_station_m": m.path.station_m,
                 "occupancy_station_m": s_mid, "occupancy_score": m.score,
                 # the occupied share relative to the queue's own density (0-1), per station
                 "occupancy_share": np.clip(m.share, 0.0, 1.0) if m.share.size else m.share,
                 "occupancy_threshold": m.thresholds, "occupied_m": m.intervals.tolist(),
                 "queue_start_m": chain.start_m if chain.count else None,
                 "reference": reference_name},
    )
    result.mode = "occupancy"
    result.low_confidence = low_conf
    result.vehicle_count_estimate = count
    return result


#: Least separation (in noise units) between the queue's evidence and the free road's
#: for a number to be quoted without a reference at 10 m-class pixels.
MIN_SEPARATION = 8.0


#: occupied road (in gaps) that must resume after the tail for low_confidence
RESUME_GAPS = 4.0
#: ... starting within this many gaps of the tail (or of the faint stretches joined to it)
RESUME_WITHIN_GAPS = 4.0


def _resumes_after(m: _Side) -> tuple[float, float, float] | None:
    """(gap, length, start) of a long stretch at the queue's density that starts within
    :data:`RESUME_WITHIN_GAPS` gaps of the tail: a queue the chain may have cut at a faint
    stretch."""
    chain = m.chain
    if chain is None or not len(m.intervals):
        return None
    if chain.count:
        tail = chain.end_m
    else:
        # no queue chained from the head: from the head, or from the end of what hides
        # the road at the head (a queue held there may start unseen); a queue whose
        # front is too faint to chain starts a little beyond it
        o = m.occluded_iv
        at_head = o[o[:, 0] <= m.gap_m] if len(o) else o
        hidden = len(at_head) and float(at_head[:, 1].max()) - float(at_head[:, 0].min()) >= m.gap_m / 2
        tail = float(at_head[:, 1].max()) if hidden else 0.0
    iv, sc = m.intervals, m.interval_score
    # thinner and faint stretches joined to the tail carry the search on
    reach = tail
    for a, b in sorted(np.concatenate([iv, m.weak_intervals]).tolist()):
        if a > tail and a - reach <= m.gap_m:
            reach = max(reach, b)
    after = (iv[:, 0] > tail) & (iv[:, 0] <= reach + RESUME_WITHIN_GAPS * m.gap_m) & (sc >= 1.0)
    if not after.any():
        return None
    start = float(iv[after, 0].min())
    # what is occupied from there on (faint stretches too), joining stretches closer
    # than the gap
    both = np.concatenate([iv, m.weak_intervals])
    rest = both[both[:, 0] >= start]
    rest = rest[np.argsort(rest[:, 0])]
    end = float(rest[0, 1])
    for a, b in rest[1:].tolist():
        if a - end > m.gap_m:
            break
        end = max(end, b)
    # the stretches at the queue's density in that extent must add up to a queue (four
    # gaps), not a few free vehicles together
    full = iv[(sc >= 1.0) & (iv[:, 0] >= start) & (iv[:, 0] <= end)]
    if float((np.minimum(full[:, 1], end) - full[:, 0]).sum()) < RESUME_GAPS * m.gap_m:
        return None
    return start - tail, end - start, start


def _hidden_after(m: _Side) -> tuple[float, float] | None:
    """(distance, length) of an occluded stretch starting within the gap of the tail."""
    chain = m.chain
    if chain is None or not chain.count or chain.truncated or not len(m.occluded_iv):
        return None
    o = m.occluded_iv
    nxt = o[(o[:, 1] > chain.end_m) & (o[:, 0] <= chain.end_m + m.gap_m)]
    if not len(nxt):
        return None
    hidden = float(nxt[0, 1] - max(nxt[0, 0], chain.end_m))
    return (max(0.0, float(nxt[0, 0]) - chain.end_m), hidden) if hidden >= m.gap_m / 2 else None


#: ... and at any pixel size, with or without a reference
MIN_SEPARATION_ANY = 4.0
#: Below this separation the stretch found is not told from the free road: no queue is
#: reported (length 0, flagged, the range reaching the stretch). Measured
#: (benchmarks/coarse_accuracy.py): empty roads 0.8-1.6, real queues 1.6-316 (the 1.6 a
#: faint 3 m queue without a reference, flagged either way).
MIN_SEPARATION_NONE = 2.0
#: a queue shorter than this many pixels is not told from a few vehicles
MIN_QUEUE_PX = 10.0


def _confidence(m: _Side, *, gsd: float, with_reference: bool) -> tuple[bool, list[str]]:
    """Whether the number is too weakly supported to quote, and why."""
    why: list[str] = []
    chain = m.chain
    assert chain is not None
    if gsd < OCCUPANCY_MIN_GSD_M:
        why.append(f"low confidence: pixels of {gsd:.2f} m are finer than the occupancy estimator is checked for "
                   f"(>= {OCCUPANCY_MIN_GSD_M} m); use --mode vehicles")
    if not with_reference and gsd > 5.0:
        if chain.count == 0 or m.separation < MIN_SEPARATION:
            why.append(
                f"low confidence: at {gsd:.1f} m without a reference a vehicle is a fraction of a "
                f"pixel; the evidence (separation {m.separation:.1f} noise units, {MIN_SEPARATION:g} "
                "needed) does not support a length: give --reference (the road on a date it was free)")
    elif chain.count and m.separation < MIN_SEPARATION_ANY:
        why.append(f"low confidence: the queue's evidence stands only {m.separation:.1f} noise units "
                   f"above the free road's ({MIN_SEPARATION_ANY:g} needed): low contrast"
                   + ("" if with_reference else "; give --reference (the road on a date it was free)"))
    if m.unseparated_m > 0:
        why.append(f"low confidence: the {m.unseparated_m / 1000:.2f} km found from the head stand only "
                   f"{m.separation:.1f} noise units above the rest of the road ({MIN_SEPARATION_NONE:g} "
                   "needed to tell a queue from the free road): no queue is reported; the range's high "
                   "end includes that stretch")
    if chain.count and chain.length_m < MIN_QUEUE_PX * gsd:
        why.append(f"low confidence: a queue of {chain.length_m:.0f} m is under {MIN_QUEUE_PX:g} pixels: "
                   "too short to tell from a few vehicles (or a bright or dark patch) at this pixel size")
    observed = m.observed & ~m.occluded
    if chain.count and not with_reference:
        s_mid = 0.5 * (m.edges[:-1] + m.edges[1:])
        inq = (s_mid >= chain.start_m) & (s_mid <= chain.end_m) & observed
        if inq.sum() > 0.8 * max(1, observed.sum()):
            why.append("low confidence: the queue covers almost all the road searched, so the free "
                       "road's level (without a reference) is uncertain; search a longer road")
    resumes = _resumes_after(m)
    if resumes is not None:
        gap, length, start = resumes
        where = f"{gap:.0f} m beyond the tail" if chain.count else f"{start:.0f} m from the head"
        why.append(f"low confidence: {length / 1000:.2f} km of road occupied at a queue's density "
                   f"starts {where}: the queue may go on there (the range's high end includes "
                   "it); check the quicklook")
    hidden_head = _hidden_before(m)
    if hidden_head is not None:
        if chain.count:
            why.append(f"low confidence: the road at the head is hidden (cloud or missing data) for "
                       f"{hidden_head / 1000:.2f} km: the queue's front may stand there, so the length "
                       "from the first visible stretch is a lower bound (the range's high end includes it)")
        else:
            why.append(f"low confidence: no queue is seen, but the road near the head is hidden (cloud, "
                       f"saturated or missing data) up to {hidden_head / 1000:.2f} km from it: a queue "
                       "may stand there unseen (the range's high end includes it)")
    hidden_tail = _hidden_after(m)
    if hidden_tail is not None:
        why.append(f"low confidence: the queue runs into cloud or missing data {hidden_tail[0]:.0f} m "
                   f"beyond its last visible stretch, hidden for {hidden_tail[1] / 1000:.2f} km: its "
                   "tail may lie there (the range's high end reaches the far side)")
    if chain.count and chain.occluded_m > 0.5 * chain.length_m:
        why.append("low confidence: more than half of the queue is hidden (cloud or nodata)")
    return bool(why), why
