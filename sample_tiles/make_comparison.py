"""Make realism_comparison.png: a real aerial frame (KIT AIS, Munich, ~0.12 m/px)
area-averaged to 0.5 m next to a SYNTHETIC excerpt rendered by queuemeasure.synth at 0.5 m,
plus both at ~0.12 m.

Usage: python sample_tiles/make_comparison.py [KIT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from queuemeasure.synth import SceneSpec, render_scene

HERE = Path(__file__).resolve().parent
KIT = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/realdata/kit_ais_munich_queue")
KIT_GSD = 0.12   # estimated from car lengths (see the data set's SOURCE.md)


def synthetic(gsd: float, width_m: float, height_m: float) -> np.ndarray:
    spec = SceneSpec(seed=155, road="straight", road_bearing_deg=90.0, road_length_m=260.0,
                     queue_length_m=150.0, gsd_m=gsd, terrain="urban", lanes=2,
                     two_lane_queue_fraction=0.6, tree_cover=0.6, buildings=0.5, laybys=1.0,
                     haze=0.3, asphalt_tone=0.55, sun_azimuth_deg=200.0, sun_elevation_deg=50.0,
                     margin_m=height_m / 2 + 2, workers=2)
    with tempfile.TemporaryDirectory() as tmp:
        render_scene(spec, Path(tmp) / "cmp.tif")
        with rasterio.open(Path(tmp) / "cmp.tif") as src:
            a = src.read()
    a = np.moveaxis(a, 0, -1)
    h = int(round(height_m / gsd))
    w = int(round(width_m / gsd))
    r0 = max(0, a.shape[0] // 2 - h // 2)
    c0 = int(np.argmax(a[a.shape[0] // 2].max(axis=-1) > 0))   # the head (start of valid data)
    return a[r0:r0 + h, c0:c0 + w]


def main() -> None:
    kit = np.asarray(Image.open(KIT / "MOS155.png").convert("RGB"))
    h_m, w_m = kit.shape[0] * KIT_GSD, kit.shape[1] * KIT_GSD
    size05 = (int(round(w_m / 0.5)), int(round(h_m / 0.5)))
    kit05 = np.asarray(Image.fromarray(kit).resize(size05, Image.Resampling.BOX))
    syn05 = synthetic(0.5, w_m, h_m)
    # 0.12 m crops of 60 m x h_m
    kit12 = kit[:, 200:200 + int(60 / KIT_GSD)]
    syn12 = synthetic(0.12, 60.0, h_m)
    z = 3
    up = lambda a, k: np.asarray(Image.fromarray(a).resize((a.shape[1] * k, a.shape[0] * k), Image.Resampling.NEAREST))
    rows = [up(kit05, z), up(syn05, z)]
    w = max(r.shape[1] for r in rows)
    pad = lambda a: np.pad(a, ((0, 0), (0, w - a.shape[1]), (0, 0)), constant_values=255)
    sep = np.full((12, w, 3), 255, np.uint8)
    small = np.concatenate([kit12, np.full((kit12.shape[0], 12, 3), 255, np.uint8),
                            syn12[:kit12.shape[0], :kit12.shape[1]]], axis=1)
    out = np.concatenate([pad(rows[0]), sep, pad(rows[1]), sep, pad(small)], axis=0)
    Image.fromarray(out).save(HERE / "realism_comparison.png", optimize=True)


if __name__ == "__main__":
    main()
