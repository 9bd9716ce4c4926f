"""What each vehicle detector costs per megapixel of straightened strip.

Times :func:`queuemeasure.detect.detect_vehicles` with each detector on strips of a given
ground size (default 1 km x 17 m: a 1 km piece of road at the default half-width 4.5 m
plus 4 m of context either side) at several pixel sizes, on one thread (the pipeline's
workers are its parallelism), and prints seconds per call, per megapixel of the input strip
and per megapixel of the learned detector's working grid (what the network sees: 0.25 m for
strips finer than about 0.45 m, 0.5 m for coarser ones -- the model that runs the strip says
which; the "work m" column).
The strips are noise with painted rectangles: the cost does not depend on the content much.

    python benchmarks/detector_speed.py
    python benchmarks/detector_speed.py --length 500 --repeat 3 --gsd 0.3,0.5
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def strip(length_m: float, width_m: float, gsd: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = int(length_m / gsd), int(width_m / gsd)
    img = (0.35 + 0.03 * rng.standard_normal((rows, cols, 3))).astype(np.float32)
    for r in range(0, rows - int(5 / gsd), int(7 / gsd)):   # a queue: a car every 7 m
        c = cols // 2 + int(rng.integers(-4, 4) / gsd * 0.25)
        img[r:r + int(4.5 / gsd), c:c + max(1, int(1.8 / gsd))] = rng.uniform(0, 1, 3)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=1000.0, help="strip length, metres")
    ap.add_argument("--width", type=float, default=17.0, help="strip width, metres")
    ap.add_argument("--gsd", default="0.12,0.3,0.5,1.0", help="pixel sizes, metres")
    ap.add_argument("--detectors", default="rules,learned")
    ap.add_argument("--repeat", type=int, default=2, help="timed calls (best is kept)")
    ap.add_argument("--threads", type=int, default=1,
                    help="onnxruntime threads (1: as in the pipeline's worker processes)")
    a = ap.parse_args(argv)
    from queuemeasure.detect import learned

    if hasattr(learned, "THREADS"):
        learned.THREADS = a.threads
    from queuemeasure.detect import detect_vehicles

    print(f"strip {a.length:.0f} m x {a.width:.0f} m")
    print(f"{'detector':9s} {'px m':>5s} {'input MP':>9s} {'s/call':>7s} {'s/MP input':>11s} {'work m':>6s} "
          f"{'s/MP work':>10s} {'found':>6s}")
    for det in a.detectors.split(","):
        for g in (float(x) for x in a.gsd.split(",")):
            img = strip(a.length, a.width, g)
            mp = img.shape[0] * img.shape[1] / 1e6
            work = learned._model_for(g).work_step_m   # the learned detector's grid for this strip
            work_mp = (a.length / work) * (a.width / work) / 1e6
            detect_vehicles(img[:400], step_m=g, detector=det)   # warm up (the session, caches)
            best, n = np.inf, 0
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                res = detect_vehicles(img, step_m=g, half_width_m=4.5, detector=det)
                best = min(best, time.perf_counter() - t0)
                n = sum(v.score >= 1 for v in res.vehicles)
            print(f"{det:9s} {g:5.2f} {mp:9.2f} {best:7.3f} {best / mp:11.2f} {work:6.2f} {best / work_mp:10.2f} {n:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
