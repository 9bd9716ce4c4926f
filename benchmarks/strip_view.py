"""Look at a stretch of an accuracy case the way the detector sees it.

Renders three panels of the straightened strip between two stations: the image, the
detector's anomaly score, and the image with the truth (green: queued, cyan: other) and the
detections (red: accepted, dashed yellow: weak, with their scores). This is how the
detector's failures in ``python benchmarks/accuracy.py`` were diagnosed: run it on the
stations its diagnosis names.

    python benchmarks/strip_view.py concrete-1.0 120 200            # -> strip_concrete-1.0_120.png
    python benchmarks/strip_view.py trees-0.8 590 660 --out /tmp/t.png
    python benchmarks/strip_view.py q-trees-0.5 280 420 --detector learned

Only synthetic cases (the truth needs the scene's footprints); the first piece of road
(1.5 km) is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", help="a synthetic case name of benchmarks/accuracy.py (full or quick)")
    ap.add_argument("s_from", type=float, help="first station, metres from the head")
    ap.add_argument("s_to", type=float, help="last station, metres from the head")
    ap.add_argument("--out", type=Path, default=None, help="PNG path")
    ap.add_argument("--detector", default="auto", help="rules, learned or auto")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import accuracy as A
    from queuemeasure import geo
    from queuemeasure.corridor import BlockSampler, Scaler, iter_strips
    from queuemeasure.detect import get_detector
    from queuemeasure.pipeline import CONTEXT_M, DEFAULT_HALF_WIDTH_M
    from queuemeasure.raster import choose_bands, ground_pixel_size, open_tile
    from queuemeasure.road import prepare_road

    cases = {c.name: c for c in A.full_cases() + A.quick_cases() if c.spec}
    if args.case not in cases:
        ap.error(f"unknown synthetic case {args.case!r}; one of: {', '.join(sorted(cases))}")
    case = cases[args.case]
    files = A.scene_files(case)
    props = json.loads(files["truth"].read_text())["properties"]
    _, _, _, truth = A.synth_truth(files["truth"], float(props["max_gap_m"]))
    road = A.road_variant(case.road_mode, files["road"], files["dir"])
    path = prepare_road(road, head=tuple(props["checkpoint_lonlat"]), direction="forward").sides[0]
    with open_tile(files["tif"]) as ds:
        bands = choose_bands(ds, None)
        sampler = BlockSampler(ds, bands)
        hx, hy = geo.transformer(geo.WGS84, ds.crs).transform(*path.lonlat[0])
        step = float(np.sqrt(np.prod(ground_pixel_size(ds, (hx, hy)))))
        piece = next(iter(iter_strips(sampler, path, ds.crs, Scaler(ds.dtypes[bands[0] - 1]),
                                      step_m=step, half_width_m=DEFAULT_HALF_WIDTH_M + CONTEXT_M)))
    strip = piece.strip
    det = get_detector(args.detector)(strip.image, strip.valid, step_m=step, half_width_m=DEFAULT_HALF_WIDTH_M)

    def row(s: float) -> float:
        return (path.chord_at(s) - strip.chord0) / step

    r0, r1 = int(round(row(args.s_from))), int(round(row(args.s_to)))
    r0, r1 = max(r0, 0), min(r1, strip.image.shape[0])
    if r1 <= r0:
        ap.error("the stations are outside the first piece of road")
    img = strip.image[r0:r1]
    img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]
    img = np.clip(img / max(float(np.percentile(img, 99.5)), 1e-6), 0, 1)
    ncol = img.shape[1]
    fig, axs = plt.subplots(3, 1, figsize=(16, 8))
    axs[0].imshow(np.transpose(img, (1, 0, 2)), interpolation="nearest")
    axs[1].imshow(det.anomaly[r0:r1].T, vmin=0, vmax=2 * det.threshold, cmap="magma",
                  interpolation="nearest")
    axs[2].imshow(np.transpose(img, (1, 0, 2)), interpolation="nearest")
    for v in truth:
        if not v.visible:
            continue
        a, b = row(v.s0) - r0, row(v.s1) - r0
        if b < 0 or a > r1 - r0:
            continue
        c = v.offset / step + (ncol - 1) / 2.0
        for ax in axs[1:]:
            ax.add_patch(plt.Rectangle((a - 0.5, c - 0.9 / step), b - a, 1.8 / step, fill=False,
                                       ec="lime" if v.in_queue else "cyan", lw=1))
    for d in det.vehicles:
        if d.row1 < r0 or d.row0 > r1:
            continue
        weak = d.score < 1
        axs[2].add_patch(plt.Rectangle((d.row0 - r0, d.col0), d.row1 - d.row0, d.col1 - d.col0,
                                       fill=False, ec="yellow" if weak else "red", lw=1.5,
                                       ls="--" if weak else "-"))
        axs[2].text(d.row0 - r0, d.col0 - 1, f"{d.score:.1f}", color="red", fontsize=6)
    titles = ["image", "anomaly (0 .. 2 x threshold)",
              "truth (green queued, cyan other) and detections (red, dashed yellow weak)"]
    for ax, t in zip(axs, titles):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{args.case} {args.s_from:.0f}-{args.s_to:.0f} m: {t}", fontsize=8)
    plt.tight_layout()
    out = args.out or Path(f"strip_{args.case}_{args.s_from:.0f}.png")
    plt.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
