"""Training and validation *sheets*: images on the learned detector's working grid with
their vehicle boxes, from the three sources, cached as ``.npz``.

A sheet is what the network sees: a working-grid image (0.25 m pixels, rows along the
road where there is one), its valid mask, the vehicles as axis-aligned boxes
``(row0, row1, col0, col1)`` in working pixels (edge-based), and boxes whose region is
ignored by the loss (vehicles under a canopy, cyclists, an unlabelled border band).

Sources
-------
``synth``
    SYNTHETIC scenes of :mod:`queuemeasure.synth`, drawn at random over pixel size,
    surface, fleet, lighting, haze, noise, JPEG, terrain; each is straightened along its
    road by the pipeline's own corridor code (:func:`queuemeasure.corridor.build_strip`).
``kit``
    The KIT AIS Munich frames (CC BY 3.0, labels CC BY-SA by Yauhen Kharuzhy), 0.12 m,
    turned so that the street runs down the rows; split by time.
``minsk``
    The Minsk drone photos (CC BY-SA, Yauhen Kharuzhy and the Minsk OSM community), their
    pixel size estimated from the car boxes (4.5 m a car); split by flight.

Real images are also degraded to coarser pixel sizes (area average, 8-bit) and brought
back to the working grid, as a 0.5 or 1.0 m tile would be.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..detect.learned._grid import WORK_STEP_M, resample

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
CACHE = Path(os.environ.get("QUEUEMEASURE_TRAIN_CACHE", Path.home() / ".cache" / "queuemeasure-train"))
#: KIT frames by time: these train, the later ones validate.
KIT_TRAIN = [f"MOS{i}" for i in range(155, 173)]
KIT_VAL = [f"MOS{i}" for i in range(173, 180)]
KIT_GSD = 0.12
#: Minsk flights held out for validation (the flight is the file-name prefix).
MINSK_VAL_FLIGHTS = ("DJI_0762",)
#: Minsk photos left out altogether: oblique views (the pixel size changes across the frame
#: several-fold) in which most vehicles are not labelled: trained on, they teach the network
#: that rows of parked cars are background (DJI_0030: 3 labels, over 40 unlabelled cars).
#: (DJI_0019 and DJI_0020 label the avenue but not a car park beside it; leaving them out
#: too was tried, runs G2 and K3 of MODEL.md, and did not help.)
MINSK_EXCLUDED = ("DJI_0028", "DJI_0030", "DJI_0031")
#: Coarser pixel sizes real images are degraded to (besides their own).
DEGRADE_M = (0.3, 0.5, 0.75, 1.0)
CAR_LENGTH_M = 4.5
CYCLIST = 4


@dataclass
class Sheet:
    """One working-grid image and its boxes (working pixels, edge-based)."""

    name: str
    image: np.ndarray          # (R, C, 3) float32 about 0..1
    valid: np.ndarray          # (R, C) bool
    boxes: np.ndarray          # (N, 4) row0, row1, col0, col1
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (M, 4) likewise
    source: str = ""
    gsd_m: float = WORK_STEP_M  # the pixel size the image had before the working grid
    work_step_m: float = WORK_STEP_M  # the working grid's pixel size (metres)


def flight_of(name: str) -> str:
    """The flight (sequence) a Minsk photo belongs to: its name before the frame number."""
    stem = Path(name).stem
    return stem.rsplit("-", 1)[0] if "-" in stem else "single"


# ------------------------------------------------------------------ real images
def _yolo(path: Path, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLO labels as pixel boxes (x0, y0, x1, y1) and classes."""
    b = np.loadtxt(path, ndmin=2)
    if b.size == 0:
        return np.zeros((0, 4)), np.zeros(0, int)
    cx, cy, bw, bh = b[:, 1] * w, b[:, 2] * h, b[:, 3] * w, b[:, 4] * h
    return np.column_stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]), b[:, 0].astype(int)


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def real_versions(name: str, img: np.ndarray, gsd: float, xyxy: np.ndarray, classes: np.ndarray, *,
                  transpose: bool, border_m: float = 0.0, source: str,
                  degrade: tuple[float, ...] = DEGRADE_M, work_step_m: float = WORK_STEP_M,
                  min_gsd: float = 0.0) -> list[Sheet]:
    """A real image at its own pixel size and degraded ones, each on the working grid of
    ``work_step_m``; versions finer than ``min_gsd`` are left out.

    ``transpose`` turns image x into rows (a street running across the image then runs
    down the rows). ``border_m`` ignores a band at the image's edges (unlabelled vehicles).
    """
    out = []
    ok = np.ones(img.shape[:2], bool)
    for g in (gsd, *[d for d in degrade if d > gsd * 1.2]):
        if g < min_gsd:
            continue
        im, v = img, ok
        if g != gsd:
            im, v, _ = resample(img, ok, gsd, g)
            im = np.round(np.clip(im, 0, 1) * 255) / 255  # 8-bit like a delivered tile
        w, wv, (sy, sx) = resample(im, v, g, work_step_m)
        # boxes: image pixels -> metres -> working pixels
        k = gsd / np.array([sx, sy, sx, sy])
        b = xyxy * k
        if transpose:
            w, wv = w.transpose(1, 0, 2), wv.T
            b = b[:, [0, 2, 1, 3]]      # rows = x, cols = y
        else:
            b = b[:, [1, 3, 0, 2]]
        veh = classes != CYCLIST
        ign = [b[~veh]]
        if border_m > 0:
            R, C = wv.shape
            e = border_m / work_step_m
            ign.append(np.array([[0, e, 0, C], [R - e, R, 0, C], [0, R, 0, e], [0, R, C - e, C]]))
        out.append(Sheet(f"{name}@{g:.2f}", np.ascontiguousarray(w), wv, b[veh],
                         np.concatenate(ign) if ign else np.zeros((0, 4)), source, g, work_step_m))
    return out


def kit_sheets(frames: list[str], degrade: tuple[float, ...] = DEGRADE_M, **grid: float) -> list[Sheet]:
    """KIT AIS Munich frames (the street runs along image x: turned to the rows); ``grid``:
    ``work_step_m`` and ``min_gsd`` of :func:`real_versions`."""
    d = REALDATA / "kit_ais_munich_queue"
    out = []
    for f in frames:
        img = _load_rgb(d / f"{f}.png")
        xyxy, cls = _yolo(d / f"{f}.txt", img.shape[1], img.shape[0])
        out += real_versions(f"kit-{f}", img, KIT_GSD, xyxy, cls, transpose=True, source="kit",
                             degrade=degrade, **grid)
    return out


def minsk_gsd(xyxy: np.ndarray, classes: np.ndarray) -> float:
    """Pixel size of a drone photo from its car boxes (a car is about 4.5 m long)."""
    cars = xyxy[classes == 0]
    if len(cars) < 3:
        cars = xyxy
    long_side = np.maximum(cars[:, 2] - cars[:, 0], cars[:, 3] - cars[:, 1])
    return float(CAR_LENGTH_M / np.median(long_side))


def _minsk_photos() -> list[Path]:
    """Every Minsk photo but those of :data:`MINSK_EXCLUDED`, sorted."""
    d = REALDATA / "minsk_drone_cars"
    return sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.stem not in MINSK_EXCLUDED)


def minsk_files(val: bool, test_flights: tuple[str, ...] = ()) -> list[Path]:
    """The Minsk photos of the validation flights (``val``) or of the others, without the
    flights of ``test_flights`` (held out from training and from selection alike)."""
    return [p for p in _minsk_photos()
            if (flight_of(p.name) in MINSK_VAL_FLIGHTS) == val and flight_of(p.name) not in test_flights]


def minsk_test_files(test_flights: tuple[str, ...]) -> list[Path]:
    """The Minsk photos of the flights ``test_flights``."""
    return [p for p in _minsk_photos() if flight_of(p.name) in test_flights]


def minsk_sheets(val: bool, degrade: tuple[float, ...] = DEGRADE_M, base_m: float = 0.12,
                 test_flights: tuple[str, ...] = (), test: bool = False, **grid: float) -> list[Sheet]:
    """Minsk drone photos, area-averaged to ``base_m`` (and coarser), a 4 m border ignored;
    the validation flights (``val``), the test flights (``test``: those of ``test_flights``)
    or the training ones (neither); ``grid``: ``work_step_m`` and ``min_gsd`` of
    :func:`real_versions`."""
    out = []
    for p in (minsk_test_files(test_flights) if test else minsk_files(val, test_flights)):
        img = _load_rgb(p)
        h, w = img.shape[:2]
        xyxy, cls = _yolo(p.with_suffix(".txt"), w, h)
        gsd = minsk_gsd(xyxy, cls)
        im, ok, (sy, sx) = resample(img, np.ones((h, w), bool), gsd, base_m)
        xyxy = xyxy * gsd / np.array([sx, sy, sx, sy])
        out += real_versions(f"minsk-{p.stem}", im, base_m, xyxy, cls, transpose=False,
                             border_m=4.0, source="minsk", degrade=degrade, **grid)
    return out


# ------------------------------------------------------------------ synthetic scenes
def random_spec(rng: np.random.Generator, seed: int) -> dict:
    """Keyword arguments of a random small :class:`~queuemeasure.synth.SceneSpec`."""
    gsd = float(np.clip(np.exp(rng.uniform(np.log(0.12), np.log(1.0))), 0.12, 1.0))
    return dict(
        seed=int(seed), road=str(rng.choice(["straight", "curving", "serpentine"])),
        road_bearing_deg=float(rng.uniform(0, 360)), road_length_m=float(rng.uniform(220, 320)),
        queue_length_m=float(rng.choice([0.0, rng.uniform(60, 260)], p=[0.1, 0.9])),
        gsd_m=round(gsd, 3), crs=str(rng.choice(["utm", "EPSG:4326", "EPSG:3857"])),
        bands=int(rng.choice([1, 3], p=[0.15, 0.85])), surface=str(rng.choice(["asphalt", "concrete"])),
        lanes=int(rng.integers(2, 5)), lane_width_m=float(rng.uniform(3.0, 3.8)),
        two_lane_queue_fraction=float(rng.uniform(0, 0.8)), truck_fraction=float(rng.uniform(0, 0.5)),
        colour_mix=str(rng.choice(["mixed", "silver"], p=[0.7, 0.3])), gap_scale=float(rng.uniform(0.3, 1.5)),
        oncoming_per_km=float(rng.uniform(0, 30)), free_per_km=float(rng.uniform(0, 20)),
        terrain=str(rng.choice(["mixed", "valley", "fields", "urban"])),
        tree_cover=float(rng.uniform(0, 0.8)), buildings=float(rng.uniform(0, 1)),
        laybys=float(rng.uniform(0, 0.8)), haze=float(rng.uniform(0, 0.6)), cloud=float(rng.choice([0.0, rng.uniform(0, 0.4)], p=[0.8, 0.2])),
        noise=float(rng.uniform(0.004, 0.03)), blur_px=float(rng.uniform(0.3, 1.2)),
        jpeg=bool(rng.random() < 0.3), jpeg_quality=int(rng.integers(60, 95)),
        sun_azimuth_deg=float(rng.uniform(0, 360)), sun_elevation_deg=float(rng.uniform(20, 80)),
        margin_m=20.0, supersample=2, workers=1,
    )


def synth_sheet(kw: dict, workdir: Path, half_width_m: float, work_step_m: float = WORK_STEP_M) -> Sheet:
    """Render one SYNTHETIC scene and straighten it along its road (as the pipeline does)."""
    import rasterio

    from ..corridor import BlockSampler, Scaler, build_strip
    from ..raster import choose_bands
    from ..road import prepare_road
    from ..synth import SceneSpec, render_scene

    tif = workdir / "scene.tif"
    truth = render_scene(SceneSpec(**kw), tif)
    road = workdir / "scene.road.geojson"
    path = prepare_road(str(road), head=tuple(truth.checkpoint_lonlat)).sides[0]
    step = float(kw["gsd_m"])
    with rasterio.open(tif) as ds:
        bands = choose_bands(ds, None)
        n = int(path.chord_m[-1] / step)
        strip = build_strip(BlockSampler(ds, bands), path, ds.crs, Scaler(ds.dtypes[0]), chord_start=0.0,
                            n_rows=n, step_m=step, half_width_m=half_width_m)
    img, ok, (sy, sx) = resample(strip.image, strip.valid, step, work_step_m)
    boxes, ignore = [], []
    from .. import geo

    to_local = geo.transformer(geo.WGS84, path.local_crs)
    for v in truth.vehicles:
        if not v.visible:
            continue
        r0 = (path.chord_at(v.s0_m) - strip.chord0) / sy
        r1 = (path.chord_at(v.s1_m) - strip.chord0) / sy
        xy = np.column_stack(to_local.transform(v.footprint_lonlat[:4, 0], v.footprint_lonlat[:4, 1]))
        sides = np.hypot(*np.diff(np.vstack([xy, xy[:1]]), axis=0).T)
        width = float(min(sides[0], sides[1]))
        c = (v.offset_m + strip.half_width_m) / sx
        b = [float(min(r0, r1)), float(max(r0, r1)), c - width / 2 / sx, c + width / 2 / sx]
        (ignore if v.occluded else boxes).append(b)
    return Sheet(f"synth-{kw['seed']}@{step:.2f}", img, ok, np.array(boxes).reshape(-1, 4),
                 np.array(ignore).reshape(-1, 4), "synth", step, work_step_m)


def synth_sheets(seeds: range, log: Callable[[str], None] = print, work_step_m: float = WORK_STEP_M,
                 min_gsd: float = 0.0) -> Iterator[Sheet]:
    """SYNTHETIC sheets, one per seed (random spec, random strip half-width 7-14 m); seeds
    whose pixel size is under ``min_gsd`` are skipped (the same scenes as without it)."""
    for seed in seeds:
        rng = np.random.default_rng(10_000 + seed)
        kw = random_spec(rng, seed)
        half_width = float(rng.uniform(7.0, 14.0))
        if kw["gsd_m"] < min_gsd:
            continue
        with tempfile.TemporaryDirectory(prefix="qm-train-") as d:
            try:
                yield synth_sheet(kw, Path(d), half_width_m=half_width, work_step_m=work_step_m)
            except Exception as exc:  # a scene the renderer or the road code refuses: skip it
                log(f"  synth seed {seed} skipped: {type(exc).__name__}: {exc}")


# ------------------------------------------------------------------ cache
def save(sheets: list[Sheet], path: Path) -> None:
    """Write sheets to one ``.npz`` (images as uint8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrs: dict[str, np.ndarray] = {}
    meta = []
    for i, s in enumerate(sheets):
        arrs[f"i{i}"] = np.round(np.clip(s.image, 0, 1) * 255).astype(np.uint8)
        arrs[f"v{i}"] = s.valid
        arrs[f"b{i}"] = s.boxes.astype(np.float32)
        arrs[f"g{i}"] = s.ignore.astype(np.float32)
        meta.append({"name": s.name, "source": s.source, "gsd_m": s.gsd_m, "work_step_m": s.work_step_m})
    arrs["meta"] = np.array(json.dumps(meta))
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrs)
    os.replace(tmp, path)


def load(path: Path) -> list[Sheet]:
    """Read sheets written by :func:`save`."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return [Sheet(m["name"], z[f"i{i}"].astype(np.float32) / 255.0, z[f"v{i}"], z[f"b{i}"].astype(float),
                      z[f"g{i}"].astype(float), m["source"], m["gsd_m"], m.get("work_step_m", WORK_STEP_M))
                for i, m in enumerate(meta)]


def cached(key: str, make: Callable[[], list[Sheet]], log: Callable[[str], None] = print) -> list[Sheet]:
    """Sheets from the cache, made (and cached) when missing."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    path = CACHE / f"{key.split(':')[0]}-{digest}.npz"
    if path.exists():
        return load(path)
    log(f"making {key} -> {path}")
    sheets = make()
    save(sheets, path)
    return sheets


#: Seeds of the SYNTHETIC training scenes, in chunks cached one by one, and of the
#: validation scenes (disjoint).
SYNTH_CHUNK = 40
SYNTH_TRAIN = range(0, 240)
SYNTH_VAL = range(100_000, 100_030)


def _synth_list(seeds: range, log: Callable[[str], None], **grid: float) -> list[Sheet]:
    out = []
    for k, s in enumerate(synth_sheets(seeds, log, **grid)):
        out.append(s)
        if k % 10 == 0:
            log(f"  synth {k + 1}/{len(seeds)}: {s.name}, {len(s.boxes)} vehicles")
    return out


def _synth_cached(seeds: range, v: str, log: Callable[[str], None], grid: dict[str, float]) -> list[Sheet]:
    out = []
    for a in range(seeds.start, seeds.stop, SYNTH_CHUNK):
        r = range(a, min(seeds.stop, a + SYNTH_CHUNK))
        out += cached(f"synth:{v}:{r.start}-{r.stop}{_grid_key(grid)}", lambda r=r: _synth_list(r, log, **grid), log)
    return out


def _grid_key(grid: dict[str, float]) -> str:
    """Cache-key suffix of a working grid other than the default (keeps the old keys)."""
    if grid["work_step_m"] == WORK_STEP_M and grid["min_gsd"] == 0.0:
        return ""
    return f":w{grid['work_step_m']:g}:g{grid['min_gsd']:g}"


def datasets(*, synth_train: range = SYNTH_TRAIN, synth_val: range = SYNTH_VAL, work_step_m: float = WORK_STEP_M,
             min_gsd: float = 0.0, test_flights: tuple[str, ...] = (),
             log: Callable[[str], None] = print) -> dict[str, list[Sheet]]:
    """Every sheet, by split: ``train`` and the validation sets ``val-kit``, ``val-minsk``,
    ``val-synth`` (never trained on), on the working grid of ``work_step_m``, without the
    versions whose own pixel size is under ``min_gsd`` (a model for coarse tiles). With
    ``test_flights``, those Minsk flights leave the training set and form ``test-minsk``,
    which is neither trained on nor used to choose the epoch or the threshold. Made once
    and cached in :data:`CACHE`."""
    v = "v1"  # bump when the sheets change
    if work_step_m == WORK_STEP_M and min_gsd > 0:  # the default sheets, the coarse ones only
        full = datasets(synth_train=synth_train, synth_val=synth_val, test_flights=test_flights, log=log)
        return {k: [s for s in sh if s.gsd_m >= min_gsd] for k, sh in full.items()}
    g = {"work_step_m": float(work_step_m), "min_gsd": float(min_gsd)}
    k = _grid_key(g)
    kit_tr = cached(f"kit:{v}:{KIT_TRAIN}:{DEGRADE_M}{k}", lambda: kit_sheets(KIT_TRAIN, **g), log)
    kit_va = cached(f"kit:{v}:{KIT_VAL}:(0.3,0.5){k}", lambda: kit_sheets(KIT_VAL, (0.3, 0.5), **g), log)
    tf = tuple(sorted(test_flights))
    # the Minsk training photos' key names the flights held out for a test and the photos left out
    t = (f":test{list(tf)}" if tf else "") + (f":x{list(MINSK_EXCLUDED)}" if MINSK_EXCLUDED else "")
    mi_tr = cached(f"minsk:{v}:train:{MINSK_VAL_FLIGHTS}{t}:{DEGRADE_M}{k}",
                   lambda: minsk_sheets(False, test_flights=tf, **g), log)
    mi_va = cached(f"minsk:{v}:val:{MINSK_VAL_FLIGHTS}:(0.3,0.5){k}",
                   lambda: minsk_sheets(True, (0.3, 0.5), **g), log)
    sy_va = _synth_cached(synth_val, v, log, g)
    sy_tr = _synth_cached(synth_train, v, log, g)
    out = {"train": kit_tr + mi_tr + sy_tr, "val-kit": kit_va, "val-minsk": mi_va, "val-synth": sy_va}
    if tf:
        out["test-minsk"] = cached(f"minsk:{v}:testset{t}:(0.3,0.5){k}",
                                   lambda: minsk_sheets(False, (0.3, 0.5), test_flights=tf, test=True, **g), log)
    return out
