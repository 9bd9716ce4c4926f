"""SYNTHETIC Sentinel-2-like assets (one COG per band, SCL at 20 m) and STAC items for them.

The items are the real Earth Search item in tests/data/stac (its keys, ``raster:bands``,
properties) with the id, date, orbit, footprint, ``proj:*`` and asset hrefs rewritten to
point at COGs made here. Every file made here is tagged SYNTHETIC.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATA = Path(__file__).parent / "data" / "stac"
REAL_ITEM = DATA / "S2A_13TDE_20231008_0_L2A.json"
#: Earth Search keys of the bands made here, and their file names.
ASSETS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "scl": "SCL"}
UTM38N = 32638


def real_item() -> dict[str, Any]:
    return json.loads(REAL_ITEM.read_text())


def write_cog(path: Path, data: np.ndarray, *, x0: float, y0: float, res: float, crs: int = UTM38N,
              block: int = 256, nodata: float | None = 0) -> Path:
    """Write a one-band tiled, DEFLATE-compressed COG tagged SYNTHETIC."""
    import rasterio
    from rasterio.transform import from_origin

    prof = dict(driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                crs=f"EPSG:{crs}", transform=from_origin(x0, y0, res, res), compress="DEFLATE",
                blocksize=block, nodata=nodata, overviews="NONE")
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data, 1)
        ds.update_tags(SYNTHETIC="yes", NOTE="SYNTHETIC Sentinel-2-like band made by the tests")
    return path


def make_assets(out: Path, *, size: int = 512, block: int = 256, x0: float = 470000.0,
                y0: float = 4735000.0, seed: int = 0,
                scl: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                bands: tuple[str, ...] = tuple(ASSETS)) -> dict[str, Path]:
    """Four 10 m uint16 bands (DN = 1000 + 10000 * reflectance) and a 20 m SCL.

    The pixel values encode their position (``blue`` = 1000 + row, ``green`` = 1000 + col,
    ``red`` = 2000 + (row + col) % 97, ``nir`` = random), so reads can be checked.
    ``scl(rows, cols)`` gives the SCL classes on its 20 m grid (default 4, vegetation).
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:size, 0:size]
    values = {
        "blue": 1000 + r,
        "green": 1000 + c,
        "red": 2000 + (r + c) % 97,
        "nir": 1500 + rng.integers(0, 400, (size, size)),
    }
    paths = {}
    for key in bands:
        name = ASSETS[key]
        if key == "scl":
            h = size // 2
            rr, cc = np.mgrid[0:h, 0:h]
            cls = np.full((h, h), 4, np.uint8) if scl is None else scl(rr, cc).astype(np.uint8)
            paths[key] = write_cog(out / f"{name}.tif", cls, x0=x0, y0=y0, res=20.0, block=block)
        else:
            paths[key] = write_cog(out / f"{name}.tif", values[key].astype(np.uint16), x0=x0, y0=y0,
                                   res=10.0, block=block)
    return paths


def make_item(hrefs: dict[str, str], *, item_id: str, when: str, size: int = 512, x0: float = 470000.0,
              y0: float = 4735000.0, orbit: int = 35, tile: str = "38TMN", crs: int = UTM38N,
              template: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Earth Search-shaped item over the assets: the real item's metadata, rewritten."""
    from pyproj import Transformer

    item = copy.deepcopy(template or real_item())
    item["id"] = item_id
    props = item["properties"]
    props["datetime"] = when
    props["proj:epsg"] = crs
    props["grid:code"] = f"MGRS-{tile}"
    props["mgrs:utm_zone"], props["mgrs:latitude_band"], props["mgrs:grid_square"] = int(tile[:2]), tile[2], tile[3:]
    stamp = when[:10].replace("-", "")
    props["s2:product_uri"] = f"S2A_MSIL2A_{stamp}T075000_N0400_R{orbit:03d}_T{tile}_{stamp}T100000.SAFE"
    props["synthetic"] = True
    ext = size * 10.0
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    xs = [x0, x0 + ext, x0 + ext, x0, x0]
    ys = [y0, y0, y0 - ext, y0 - ext, y0]
    lon, lat = t.transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat)]
    item["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    item["bbox"] = [min(lon), min(lat), max(lon), max(lat)]
    keep = {}
    for key, href in hrefs.items():
        a = copy.deepcopy(item["assets"][key])
        a["href"] = href
        res = 20.0 if key == "scl" else 10.0
        n = int(round(ext / res))
        a["proj:shape"] = [n, n]
        a["proj:transform"] = [res, 0, x0, 0, -res, y0]
        keep[key] = a
    item["assets"] = keep
    item["links"] = [ln for ln in item["links"] if ln["rel"] not in ("self", "root", "parent", "collection")]
    return item
