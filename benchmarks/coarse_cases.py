"""Coarse accuracy cases (issue 15): SYNTHETIC 3 m (PlanetScope-like) and 10 m
(Sentinel-2-like) tiles with known queue length, rendered by
:func:`queuemeasure.synth.sensor_render.render_sensor_scene`.

    python benchmarks/coarse_cases.py               # build the quick set, print each truth
    python benchmarks/coarse_cases.py --full        # three variants of every kind
    python benchmarks/coarse_cases.py --kinds s2_ref,s2_cloud --out /tmp/cases

In Python (``benchmarks/accuracy.py`` wires these in)::

    from coarse_cases import build_cases          # with benchmarks/ on sys.path
    for case in build_cases(quick=True):
        case.tile, case.reference, case.road, case.head_lonlat, case.truth_km, ...

The tile is in UTM or Web Mercator; the reference is on the tile's grid or on its own grid in
another CRS (Web Mercator, WGS84 lon/lat, UTM with its own origin), as real pairs are.

Kinds (each at 3 m and 10 m): ``ref`` (with a reference date) and ``noref`` (the same
tile, no reference), ``empty`` (no queue), ``trucks`` (a truck queue), ``lowcontrast``
(pale road, silver cars, haze, noise), ``long`` (a 12-20 km queue), ``cloud`` (thin
cloud over part of the queue, with its SCL band / cloud mask). Each variant draws the
renderer's free parameters from its own seed -- road shape, asphalt tone, vehicle colours,
lanes, two-abreast share, haze, PSF width (MTF), SNR, co-registration shift, product kind
(tci / l2a / reflectance) -- so that a detector tuned on one case meets many others.
Deterministic: the same kind and variant give the same files and truth.

Scenes are cached in ``$QUEUEMEASURE_BENCH_CACHE/coarse`` (default
``~/.cache/queuemeasure-bench/coarse``), keyed by a hash of the case parameters and of the
synth source code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from queuemeasure.synth import SceneSpec, build_scene  # noqa: E402
from queuemeasure.synth.sensor_render import render_sensor_scene  # noqa: E402

CACHE = Path(os.environ.get("QUEUEMEASURE_BENCH_CACHE",
                            Path.home() / ".cache" / "queuemeasure-bench")) / "coarse"

#: Every kind, 3 m then 10 m.
KINDS = tuple(f"{s}_{k}" for s in ("ps", "s2")
              for k in ("ref", "noref", "empty", "trucks", "lowcontrast", "long", "cloud"))


@dataclass
class CoarseCase:
    """One coarse case: files to measure and the truth they must give.

    Attributes
    ----------
    name : str
        ``<kind>_<variant>``, e.g. ``s2_ref_0``.
    kind : str
        One of :data:`KINDS`.
    sensor : str
        "sentinel2" or "planetscope".
    gsd_m : float
        Pixel size of the tile (10 or 3 m).
    product : str
        "tci", "l2a" or "reflectance".
    tile, road, truth : str
        The GeoTIFF, the road GeoJSON and the truth GeoJSON.
    reference : str or None
        The reference date (None for ``noref`` kinds).
    cloud_mask : str or None
        The cloud mask GeoTIFF (1 cloud, 0 clear, 255 nodata) of cloudy cases; the L2A
        product also holds an ``SCL`` band.
    head_lonlat : (float, float)
        The checkpoint to pass as ``--head``.
    max_gap_m : float
    truth_km : float
        The true (visible) queue length.
    truth_count : int
    truncated : bool
    lanes : int
    queue_mean_lanes : float
    params : dict
        What was drawn for this variant (for the report).
    """

    name: str
    kind: str
    sensor: str
    gsd_m: float
    product: str
    tile: str
    road: str
    truth: str
    reference: str | None
    cloud_mask: str | None
    head_lonlat: tuple
    max_gap_m: float
    truth_km: float
    truth_count: int
    truncated: bool
    lanes: int
    queue_mean_lanes: float
    params: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No queue: the measurement must stay near 0 km."""
        return self.truth_km == 0.0


def _variant(kind: str, variant: int, seed: int) -> dict:
    """The scene, sensor and reference parameters of one case (drawn from its seed)."""
    sensor_key, what = kind.split("_", 1)
    rng = np.random.default_rng([seed, KINDS.index(kind), variant])
    s2 = sensor_key == "s2"
    qkm = float(rng.uniform(1.5, 4.0) if s2 else rng.uniform(0.8, 2.5))
    spec = dict(
        seed=int(rng.integers(1, 10**6)), road=str(rng.choice(["curving", "serpentine", "valley", "straight"])),
        road_bearing_deg=float(rng.uniform(0, 360)), max_gap_m=50.0,
        lanes=int(rng.choice([2, 2, 2, 3])), lane_width_m=float(rng.uniform(3.0, 3.8)),
        two_lane_queue_fraction=float(rng.uniform(0.0, 0.5)),
        truck_fraction=float(rng.uniform(0.02, 0.25)), colour_mix=str(rng.choice(["mixed", "mixed", "silver"])),
        gap_scale=float(rng.uniform(0.7, 1.6)), oncoming_per_km=float(rng.uniform(0, 8)),
        free_per_km=float(rng.uniform(0, 10)), terrain=str(rng.choice(["mixed", "valley", "fields", "urban"])),
        tree_cover=float(rng.uniform(0, 0.5)), buildings=float(rng.uniform(0, 0.5)),
        laybys=float(rng.uniform(0, 0.5)), haze=float(rng.uniform(0.0, 0.4)),
        sun_azimuth_deg=float(rng.uniform(120, 240)), sun_elevation_deg=float(rng.uniform(25, 65)),
        asphalt_tone=float(rng.uniform(0.25, 0.55)), margin_m=float(rng.uniform(45, 70)),
        queue_length_m=qkm * 1000.0)
    sens = dict(mtf_nyquist=float(rng.uniform(0.2, 0.36) if s2 else rng.uniform(0.14, 0.3)),
                snr_scale=float(rng.uniform(0.5, 1.5)))
    ref = dict(max_shift_m=float(rng.uniform(1.0, 3.0) if s2 else rng.uniform(1.5, 6.0)),
               traffic_per_km=float(rng.uniform(0, 3)))
    product = str(rng.choice(["l2a", "l2a", "tci", "reflectance"]))
    if what == "empty":
        spec["queue_length_m"] = 0.0
    elif what == "trucks":
        spec.update(truck_fraction=float(rng.uniform(0.7, 0.95)), two_lane_queue_fraction=0.1)
    elif what == "lowcontrast":
        spec.update(surface="concrete", colour_mix="silver", haze=float(rng.uniform(0.35, 0.6)),
                    asphalt_tone=None, two_lane_queue_fraction=float(rng.uniform(0, 0.15)))
        sens["snr_scale"] = float(rng.uniform(0.4, 0.7))
    elif what == "long":
        spec.update(queue_length_m=float(rng.uniform(12, 20) * 1000.0 if s2 else rng.uniform(12, 14) * 1000.0),
                    road="valley", terrain="valley", margin_m=45.0)
    elif what == "cloud":
        spec.update(cloud=float(rng.uniform(0.5, 0.8)), queue_length_m=float(rng.uniform(3.0, 5.0) * 1000.0))
        product = "l2a"
    spec["road_length_m"] = spec["queue_length_m"] + float(rng.uniform(1500, 3000))
    # drawn last, so that the draws above do not depend on them: the grids
    spec["crs"] = str(rng.choice(["utm", "utm", "utm", "utm", "EPSG:3857"]))
    ref["crs"] = [None, None, None, "EPSG:3857", "EPSG:4326", "utm"][int(rng.integers(6))]
    return {"spec": spec, "sensor": sens, "reference": ref, "product": product}


def _cloud_seed(spec: dict) -> dict:
    """For a cloudy case, the first seed (from the drawn one) whose cloud covers between
    10 % and 60 % of the queue -- decided on the layout, before any pixel is rendered."""
    base = spec["seed"]
    for k in range(60):
        s = SceneSpec(**{**spec, "seed": base + k})
        scene = build_scene(s)
        st = np.arange(0.0, min(s.queue_length_m, scene.line.length), 25.0)
        xy = scene.line.point(scene.planar(st))
        cover = float(np.mean(scene.cloud_opacity(xy[:, 0], xy[:, 1]) >= 0.5))
        if 0.1 <= cover <= 0.6:
            return {**spec, "seed": base + k}
    return spec


def _source_hash() -> str:
    src = ROOT / "queuemeasure" / "synth"
    h = hashlib.sha1()
    for p in sorted(src.glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


def build_case(kind: str, variant: int = 0, *, seed: int = 15, out_dir: str | Path | None = None,
               log=None) -> CoarseCase:
    """Render (or take from the cache) one coarse case.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    variant : int
        Variant number (another draw of the free parameters).
    seed : int
        Seed of the whole set.
    out_dir : path-like, optional
        Where to write (default: the cache).
    log : callable, optional
        Called with one line per rendered case.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    base_key = kind.replace("_noref", "_ref")            # noref measures the ref case's tile
    p = _variant(base_key, variant, seed)
    if kind.endswith("_cloud"):
        p["spec"] = _cloud_seed(p["spec"])
    sensor = "sentinel2" if kind.startswith("s2") else "planetscope"
    key = hashlib.sha1(json.dumps([p, _source_hash()], sort_keys=True).encode()).hexdigest()[:12]
    p["with_reference"] = not kind.endswith("_noref")
    out = Path(out_dir) if out_dir is not None else CACHE
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{base_key}_{variant}_{key}_SYNTHETIC"
    tif, ref = out / f"{stem}.tif", out / f"{stem}_reference.tif"
    truth_path = out / f"{stem}.truth.geojson"
    if not (tif.exists() and ref.exists() and truth_path.exists()):
        t0 = time.perf_counter()
        _render(p, sensor, tif, ref)
        if log:
            log(f"rendered {stem} in {time.perf_counter() - t0:.1f} s")
    props = json.loads(truth_path.read_text())["properties"]
    cm = out / f"{stem}.cloudmask.tif"
    return CoarseCase(
        name=f"{kind}_{variant}", kind=kind, sensor=sensor, gsd_m=float(props["gsd_m"]),
        product=p["product"], tile=str(tif), road=str(out / f"{stem}.road.geojson"),
        truth=str(truth_path), reference=str(ref) if p["with_reference"] else None,
        cloud_mask=str(cm) if cm.exists() else None,
        head_lonlat=tuple(props["checkpoint_lonlat"]), max_gap_m=float(props["max_gap_m"]),
        truth_km=float(props["length_km"]), truth_count=int(props["vehicle_count"]),
        truncated=bool(props["truncated"]), lanes=int(props["lanes"]),
        queue_mean_lanes=float(props["queue_mean_lanes"]), params=p)


def _render(p: dict, sensor: str, tif: Path, ref: Path) -> None:
    from queuemeasure.synth.sensor import SENSORS, random_reference_date
    spec = SceneSpec(**p["spec"], description="Coarse accuracy case (benchmarks/coarse_cases.py).",
                     workers=2)
    model = SENSORS[sensor]
    snr = tuple(v * p["sensor"]["snr_scale"] for v in model.snr)
    date = random_reference_date(spec.seed, model, sun_azimuth_deg=spec.sun_azimuth_deg,
                                 sun_elevation_deg=spec.sun_elevation_deg,
                                 max_shift_m=p["reference"]["max_shift_m"])
    render_sensor_scene(spec, tif, sensor=sensor, product=p["product"], reference=ref,
                        reference_date=date, reference_traffic_per_km=p["reference"]["traffic_per_km"],
                        reference_crs=p["reference"]["crs"],
                        mtf_nyquist=p["sensor"]["mtf_nyquist"], snr=snr)


def build_cases(quick: bool = True, *, kinds=None, variants: int | None = None, seed: int = 15,
                out_dir: str | Path | None = None, log=None) -> list[CoarseCase]:
    """Build the coarse cases: every kind once (``quick``) or ``variants`` times (3 by
    default in full mode); ``kinds`` restricts the set (names from :data:`KINDS`, or a
    prefix such as ``"s2"``)."""
    n = variants if variants is not None else (1 if quick else 3)
    want = KINDS if not kinds else [k for k in KINDS if any(k == q or k.startswith(q + "_") for q in kinds)]
    return [build_case(k, v, seed=seed, out_dir=out_dir, log=log) for v in range(n) for k in want]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="three variants of every kind")
    ap.add_argument("--variants", type=int, default=None)
    ap.add_argument("--kinds", default="", help="comma-separated kinds or prefixes (s2, ps_cloud ...)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", default=None, help="output directory (default: the cache)")
    ap.add_argument("--json", action="store_true", help="print the cases as JSON")
    a = ap.parse_args(argv)
    kinds = [k for k in a.kinds.split(",") if k] or None
    t0 = time.perf_counter()
    cases = build_cases(not a.full, kinds=kinds, variants=a.variants, seed=a.seed, out_dir=a.out,
                        log=lambda s: print(s, file=sys.stderr))
    if a.json:
        print(json.dumps([asdict(c) for c in cases], indent=1))
        return 0
    print(f"{'case':<20} {'sensor':<11} {'gsd':>4} {'product':<11} {'ref':<3} {'truth km':>9} "
          f"{'count':>6} {'lanes':>5} {'trunc':<5} cloud")
    for c in cases:
        print(f"{c.name:<20} {c.sensor:<11} {c.gsd_m:>4g} {c.product:<11} {'yes' if c.reference else 'no':<3} "
              f"{c.truth_km:>9.3f} {c.truth_count:>6d} {c.queue_mean_lanes:>5.2f} {str(c.truncated):<5} "
              f"{'yes' if c.cloud_mask else 'no'}")
    print(f"{len(cases)} cases in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
