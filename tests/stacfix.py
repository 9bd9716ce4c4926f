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
    ``red`` = 2000 + (row + col) % 97) plus noise (``nir``: noise only), so that blocks
    compress to realistic sizes and reads can be checked against the files.
    ``scl(rows, cols)`` gives the SCL classes on its 20 m grid (default 4, vegetation).
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:size, 0:size]
    noise = rng.integers(0, 200, (size, size))  # realistic block sizes after compression
    values = {
        "blue": 1000 + r + noise,
        "green": 1000 + c + noise[::-1],
        "red": 2000 + (r + c) % 97 + noise[:, ::-1],
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


def make_item(hrefs: dict[str, str], *, item_id: str, when: str, size: int | tuple[int, int] = 512,
              x0: float = 470000.0, y0: float = 4735000.0, res: float = 10.0, orbit: int = 35,
              tile: str = "38TMN", crs: int = UTM38N, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Earth Search-shaped item over the assets: the real item's metadata, rewritten.

    ``size`` (height, width) in pixels of ``res`` metres from the corner ``x0, y0``.
    """
    from pyproj import Transformer

    h, w = (size, size) if isinstance(size, int) else size
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
    ex, ey = w * res, h * res
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    xs = [x0, x0 + ex, x0 + ex, x0, x0]
    ys = [y0, y0, y0 - ey, y0 - ey, y0]
    lon, lat = t.transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat)]
    item["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    item["bbox"] = [min(lon), min(lat), max(lon), max(lat)]
    keep = {}
    for key, href in hrefs.items():
        a = copy.deepcopy(item["assets"][key])
        a["href"] = href
        r = 2 * res if key == "scl" else res
        a["proj:shape"] = [int(round(ey / r)), int(round(ex / r))]
        a["proj:transform"] = [r, 0, x0, 0, -r, y0]
        keep[key] = a
    item["assets"] = keep
    item["links"] = [ln for ln in item["links"] if ln["rel"] not in ("self", "root", "parent", "collection")]
    return item


def split_stack(stack: Path, out: Path, *, scl: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                block: int = 256) -> tuple[dict[str, Path], dict[str, Any]]:
    """Split a 4-band L2A stack (B02, B03, B04, B08 with BOA_ADD_OFFSET) into one COG per
    band plus a 20 m SCL (``scl(rows, cols)``, else the stack's own SCL band, else all
    class 4); returns the paths
    (``"stack"``: the stack cut to the same even size, with the SCL as a fifth band, to
    compare with) and the grid
    keywords of :func:`make_item`."""
    import rasterio

    with rasterio.open(stack) as ds:
        data = ds.read()
        descs = ds.descriptions
        t = ds.transform
        epsg = ds.crs.to_epsg()
    h, w = (data.shape[1] // 2) * 2, (data.shape[2] // 2) * 2
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, name in ASSETS.items():
        if key == "scl":
            rr, cc = np.mgrid[0:h // 2, 0:w // 2]
            if scl is not None:
                cls = scl(rr, cc).astype(np.uint8)
            elif "SCL" in descs:  # the stack's own 10 m classes, one in four kept
                cls = data[descs.index("SCL"), :h:2, :w:2].astype(np.uint8)
            else:
                cls = np.full(rr.shape, 4, np.uint8)
            paths[key] = write_cog(out / "SCL.tif", cls, x0=t.c, y0=t.f, res=2 * t.a, crs=epsg, block=block)
            scl10 = np.repeat(np.repeat(cls, 2, axis=0), 2, axis=1).astype(data.dtype)
        else:
            band = data[descs.index(name), :h, :w]
            paths[key] = write_cog(out / f"{name}.tif", band, x0=t.c, y0=t.f, res=t.a, crs=epsg, block=block)
    with rasterio.open(stack) as ds:  # the stack cut the same way, with its SCL, to compare with
        data = data[[descs.index(b) for b in ("B02", "B03", "B04", "B08")]]
        descs = ("B02", "B03", "B04", "B08")
        prof = dict(ds.profile, width=w, height=h, count=data.shape[0] + 1)
        tags = ds.tags()
    with rasterio.open(out / "stack.tif", "w", **prof) as dst:
        dst.write(np.concatenate([data[:, :h, :w], scl10[None]]))
        dst.update_tags(**tags)
        for i, d in enumerate([*descs, "SCL"], 1):
            if d:
                dst.set_band_description(i, d)
    paths["stack"] = out / "stack.tif"
    return paths, dict(size=(h, w), x0=t.c, y0=t.f, res=t.a, crs=epsg)


def crop_stack(src: Path, dst: Path, *, keep_rows: float) -> Path:
    """The southern ``keep_rows`` share of a stack (an image whose edge cuts the road)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as ds:
        h = int(ds.height * keep_rows) // 2 * 2
        win = Window(0, ds.height - h, ds.width, h)
        data = ds.read(window=win)
        prof = dict(ds.profile, height=h, transform=ds.window_transform(win))
        tags, descs = ds.tags(), ds.descriptions
    with rasterio.open(dst, "w", **prof) as out:
        out.write(data)
        out.update_tags(**tags)
        for i, d in enumerate(descs, 1):
            if d:
                out.set_band_description(i, d)
    return dst
