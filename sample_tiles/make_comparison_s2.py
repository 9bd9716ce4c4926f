"""Build realism_comparison_s2.png: a real Sentinel-2 crop beside a SYNTHETIC one.

Left: the A2 motorway near Braunschweig (S2TD test crop, Fisser et al. 2022; MIT; contains
modified Copernicus Sentinel data), bands B04/B03/B02. Right: a SYNTHETIC 4-lane road with
moving trucks and cars rendered by ``queuemeasure.synth.render_sensor_scene`` as
Sentinel-2 sees it. Each is shown with one percentile stretch for its three bands, 10 m pixels enlarged
4 times.

    python sample_tiles/make_comparison_s2.py [S2TD_TIF]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "realdata" / "s2td_fisser_a2_braunschweig" / "S2_test_data.tif"


def _stretch(rgb: np.ndarray) -> np.ndarray:
    """One 1-99 % stretch for the three bands together, to uint8 (bands first)."""
    lo, hi = np.nanpercentile(rgb, [1, 99])
    return np.clip((np.nan_to_num(rgb, nan=lo) - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)


def _synthetic(tmp: Path, shape: tuple[int, int]) -> np.ndarray:
    from queuemeasure.synth import SceneSpec, render_sensor_scene
    spec = SceneSpec(seed=31, road="straight", road_bearing_deg=110.0, road_length_m=2600.0,
                     queue_length_m=0.0, lanes=4, terrain="fields", buildings=0.6, tree_cover=0.3,
                     free_per_km=40.0, oncoming_per_km=40.0, truck_fraction=0.6, margin_m=400.0,
                     haze=0.1, asphalt_tone=0.3, origin_lonlat=(10.49, 52.32))
    path = tmp / "synthetic_s2_SYNTHETIC.tif"
    render_sensor_scene(spec, path, sensor="sentinel2", product="reflectance")
    with rasterio.open(path) as ds:
        a = ds.read()
    rows = np.flatnonzero(np.isfinite(a[0]).sum(axis=1) >= shape[1])
    cols = np.flatnonzero(np.isfinite(a[0]).sum(axis=0) > 0)
    r0 = rows[len(rows) // 2] - shape[0] // 2
    c0 = cols[len(cols) // 2] - shape[1] // 2
    return a[[2, 1, 0], r0:r0 + shape[0], c0:c0 + shape[1]]


def main(real: Path = REAL) -> Path:
    with rasterio.open(real) as ds:
        rgb = ds.read([1, 2, 3]).astype(np.float32)          # B04, B03, B02
    with tempfile.TemporaryDirectory() as tmp:
        syn = _synthetic(Path(tmp), rgb.shape[1:])
    gap = np.full((3, rgb.shape[1], 4), 255, np.uint8)
    img = np.concatenate([_stretch(rgb), gap, _stretch(syn)], axis=2)
    img = np.repeat(np.repeat(img.transpose(1, 2, 0), 4, axis=0), 4, axis=1)
    out = HERE / "realism_comparison_s2.png"
    Image.fromarray(img).save(out, optimize=True)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REAL))
