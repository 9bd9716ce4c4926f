"""Coarse (3 m, 10 m) SYNTHETIC test scenes: a fine ``queuemeasure.synth`` scene
area-averaged to the coarse pixel, blurred (a Gaussian point-spread function), noised and
quantised like the products people download (TCI uint8, L2A uint16 with BOA_ADD_OFFSET,
float reflectance), and its reference: the same spec without the queue, with another
gain, offset and haze per band and a co-registration shift.

A stand-in until the sensor simulator of branch ``sensor`` is merged; used by the tests
and by ``benchmarks/accuracy.py --coarse``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

DESCRIPTIONS = ("B04", "B03", "B02", "B08")


@dataclass
class CoarseScene:
    tile: Path
    reference: Path | None
    road: Path
    head: tuple[float, float]
    truth_km: float
    gsd_m: float
    truncated: bool
    info: dict = field(default_factory=dict)


def render_fine(spec: Any, out: Path) -> dict:
    """Render ``spec`` (a SceneSpec) to ``out`` unless there already; return the truth
    properties."""
    from queuemeasure.synth import render_scene, sidecar_paths

    paths = sidecar_paths(out)
    if not (paths["tif"].exists() and paths["truth"].exists()):
        render_scene(spec, out)
    with open(paths["truth"], encoding="utf-8") as f:
        return json.load(f)["properties"]


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    b, h, w = a.shape
    h2, w2 = h // f, w // f
    return a[:, : h2 * f, : w2 * f].reshape(b, h2, f, w2, f).mean(axis=(2, 4))


def degrade(
    src: Path,
    dst: Path,
    *,
    gsd_m: float,
    psf_sigma_px: float = 0.45,
    noise: float = 0.006,
    product: str = "tci",
    gain: tuple[float, ...] | None = None,
    offset: tuple[float, ...] | None = None,
    shift_m: tuple[float, float] = (0.0, 0.0),
    seed: int = 0,
    cloud: tuple[float, float] | None = None,
) -> Path:
    """Area-average the fine tile ``src`` to ``gsd_m`` and write a product.

    ``product``: "tci" (3-band uint8 RGB), "l2a" (4-band uint16 B02,B03,B04,B08 with
    BOA_ADD_OFFSET=-1000), "float" (4-band float32 reflectance, B04,B03,B02,B08 without
    descriptions, like the Braunschweig export). ``shift_m`` moves the georeferencing
    (a co-registration error); ``cloud`` = (row fraction start, stop) paints an opaque
    bright cloud across those rows.
    """
    import rasterio
    from rasterio.transform import Affine
    from scipy import ndimage as ndi

    with rasterio.open(src) as ds:
        fine = ds.read().astype(np.float32) / 255.0
        t = ds.transform
        crs = ds.crs
    if fine.shape[0] == 3:
        fine = np.concatenate([fine, fine[:1] * 0.6 + 0.2])
    f = max(1, int(round(gsd_m / abs(t.a))))
    valid = fine.sum(axis=0) > 0
    img = _block_mean(fine, f)
    vmask = _block_mean(valid[None].astype(np.float32), f)[0] > 0.99
    rng = np.random.default_rng(seed)
    g = np.asarray(gain if gain is not None else (1.0,) * 4, np.float32)[:, None, None]
    o = np.asarray(offset if offset is not None else (0.0,) * 4, np.float32)[:, None, None]
    img = img * g + o
    img = np.stack([ndi.gaussian_filter(b, psf_sigma_px) for b in img])
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    if cloud is not None:
        r0, r1 = (int(c * img.shape[1]) for c in cloud)
        img[:, r0:r1] = 0.85
    tr = Affine(t.a * f, t.b, t.c + shift_m[0], t.d, t.e * f, t.f + shift_m[1])
    refl = np.clip(img * 0.35, 0.0, 1.0)  # 0..1 display values -> surface reflectance
    profile = dict(driver="GTiff", width=img.shape[2], height=img.shape[1], crs=crs,
                   transform=tr, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    if product == "tci":
        data = np.clip(img[:3] * 255.0 + 0.5, 1, 255).astype(np.uint8)
        data[:, ~vmask] = 0
        profile.update(count=3, dtype="uint8", nodata=0)
        descs = (None, None, None)
    elif product == "l2a":
        dn = np.clip(refl[[2, 1, 0, 3]] * 10000.0 + 1000.0 + 0.5, 1, 65535).astype(np.uint16)
        dn[:, ~vmask] = 0
        data = dn
        profile.update(count=4, dtype="uint16", nodata=0)
        descs = ("B02", "B03", "B04", "B08")
    elif product == "float":
        data = refl.astype(np.float32)
        data[:, ~vmask] = np.nan
        profile.update(count=4, dtype="float32", nodata=np.nan)
        descs = (None, None, None, None)
    else:
        raise ValueError(product)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.update_tags(SYNTHETIC="yes", NOTE="SYNTHETIC coarse scene (tests/coarse.py)")
        if product == "l2a":
            out.update_tags(BOA_ADD_OFFSET="-1000")
        if product == "tci":
            from rasterio.enums import ColorInterp

            out.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        for i, d in enumerate(descs, 1):
            if d:
                out.set_band_description(i, d)
    return dst


def coarse_scene(
    cache: Path,
    name: str,
    *,
    gsd_m: float,
    with_reference: bool,
    product: str = "tci",
    fine_gsd: float = 1.0,
    seed: int = 1,
    shift_m: tuple[float, float] = (3.0, -2.0),
    cloud: tuple[float, float] | None = None,
    **spec_kw: Any,
) -> CoarseScene:
    """A coarse scene (and its reference) rendered into ``cache``; re-used when there."""
    from queuemeasure.synth import SceneSpec, sidecar_paths

    kw = dict(road="curving", road_length_m=3000.0, queue_length_m=2000.0, gsd_m=fine_gsd,
              bands=4, seed=seed, oncoming_per_km=2.0, free_per_km=3.0, laybys=0.0,
              tree_cover=0.2)
    kw.update(spec_kw)
    spec = SceneSpec(**kw)
    cache.mkdir(parents=True, exist_ok=True)
    fine = cache / f"{name}_fine.tif"
    props = render_fine(spec, fine)
    tile = degrade(fine, cache / f"{name}_{gsd_m:g}m_{product}.tif", gsd_m=gsd_m, product=product,
                   seed=seed, cloud=cloud)
    ref = None
    if with_reference:
        rfine = cache / f"{name}_empty_fine.tif"
        # the same spec without the queue (every other random choice stays the same);
        # haze, gain and offset differ in degrade
        render_fine(replace(spec, queue_length_m=0.0), rfine)
        ref = degrade(rfine, cache / f"{name}_{gsd_m:g}m_{product}_ref.tif", gsd_m=gsd_m,
                      product=product, seed=seed + 100, gain=(1.12, 1.08, 1.15, 0.95),
                      offset=(0.05, 0.04, 0.06, -0.01), shift_m=shift_m)
    road = sidecar_paths(fine)["road"]
    with open(road, encoding="utf-8") as fh:
        head = tuple(json.load(fh)["properties"]["head_lonlat"])
    return CoarseScene(tile, ref, road, head, float(props["length_km"]), gsd_m,
                       bool(props["truncated"]), info={"spec": kw})
