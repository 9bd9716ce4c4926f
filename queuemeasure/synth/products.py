"""Coarse products as people download them: encoding of reflectance blocks and the
GeoTIFF layout (dtype, bands, descriptions, nodata, tags) of each product kind.

* ``tci`` -- true colour, uint8 RGB (B04, B03, B02), DN = reflectance * 1275 clipped to
  1..255 (Sentinel-2's TCI maps reflectance 0..0.2 onto 0..255), 0 = nodata, colour
  interpretation RGB, no band descriptions (like the real TCI).
* ``l2a`` -- a 4-band uint16 stack. Sentinel-2: bands B02, B03, B04, B08 with
  DN = reflectance * 10000 + 1000 and the tag ``BOA_ADD_OFFSET=-1000`` (processing
  baseline 04.00 on), 0 = nodata; when the scene has cloud, a fifth band ``SCL``
  (scene classification). PlanetScope: analytic surface reflectance, bands blue, green,
  red, nir, DN = reflectance * 10000.
* ``reflectance`` -- float32, 4 bands with descriptions, NaN = nodata.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError

__all__ = ["PRODUCTS", "BOA_ADD_OFFSET", "Product", "get_product", "scl_classes"]

PRODUCTS = ("tci", "l2a", "reflectance")
#: Sentinel-2 L2A offset from processing baseline 04.00 (January 2022 on).
BOA_ADD_OFFSET = -1000

# SCL classes (Sentinel-2 L2A): 0 no data, 4 vegetation, 5 not vegetated, 6 water,
# 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus.
SCL_NODATA, SCL_VEG, SCL_BARE, SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS = 0, 4, 5, 8, 9, 10


class Product:
    """Encoder of one product kind for one sensor."""

    def __init__(self, kind: str, sensor, with_scl: bool) -> None:
        self.kind = kind
        self.sensor = sensor
        self.s2 = sensor.name == "sentinel2"
        self.with_scl = bool(with_scl and kind == "l2a" and self.s2)

    @property
    def count(self) -> int:
        """Number of bands written."""
        if self.kind == "tci":
            return 3
        return 5 if self.with_scl else 4

    @property
    def dtype(self) -> str:
        return {"tci": "uint8", "l2a": "uint16", "reflectance": "float32"}[self.kind]

    @property
    def nodata(self) -> float:
        return float("nan") if self.kind == "reflectance" else 0

    def descriptions(self) -> list[str | None]:
        """Band descriptions (None for the TCI, like the real product)."""
        if self.kind == "tci":
            return [None, None, None]
        names = list(self.sensor.band_names)
        return names + (["SCL"] if self.with_scl else [])

    def tags(self) -> dict:
        """Dataset tags of the product (the BOA offset for Sentinel-2 L2A)."""
        tags = {"PRODUCT": self.kind, "SENSOR": self.sensor.name}
        if self.kind == "l2a" and self.s2:
            tags.update(BOA_ADD_OFFSET=str(BOA_ADD_OFFSET), BOA_QUANTIFICATION_VALUE="10000",
                        PROCESSING_BASELINE="04.00")
        elif self.kind == "l2a":
            tags.update(REFLECTANCE_COEFFICIENT="0.0001")
        elif self.kind == "tci":
            tags.update(TCI_REFLECTANCE_PER_DN=f"{1 / 1275:.8f}")
        return tags

    def band_tags(self, i: int) -> dict:
        """Tags of band ``i`` (1-based)."""
        if self.kind == "l2a" and self.s2 and i <= 4:
            return {"BOA_ADD_OFFSET": str(BOA_ADD_OFFSET)}
        return {}

    def encode(self, refl: np.ndarray, valid: np.ndarray, scl: np.ndarray | None = None) -> np.ndarray:
        """Reflectance (4, h, w; blue, green, red, NIR) to the product's pixel values."""
        if self.kind == "tci":
            rgb = refl[[2, 1, 0]]
            out = np.clip(np.rint(rgb * 1275.0), 1, 255).astype(np.uint8)
            out[:, ~valid] = 0
            return out
        if self.kind == "reflectance":
            out = refl.astype(np.float32).copy()
            out[:, ~valid] = np.nan
            return out
        add = -BOA_ADD_OFFSET if self.s2 else 0
        out = np.clip(np.rint(refl * 10000.0) + add, 1, 65535).astype(np.uint16)
        out[:, ~valid] = 0
        if self.with_scl:
            s = np.zeros(valid.shape, np.uint16) if scl is None else scl.astype(np.uint16)
            s[~valid] = SCL_NODATA
            out = np.concatenate([out, s[None]], axis=0)
        return out


def get_product(kind: str, sensor, *, with_scl: bool = False) -> Product:
    """The encoder for ``kind`` ("tci", "l2a" or "reflectance")."""
    if kind not in PRODUCTS:
        raise OptionError(f"unknown product {kind!r}: choose tci, l2a or reflectance")
    return Product(kind, sensor, with_scl)


def scl_classes(refl: np.ndarray, cloud: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """An SCL-like classification: cloud by opacity (>= 0.5 high probability, >= 0.2
    medium, >= 0.05 thin cirrus), else vegetation where NDVI > 0.3, else not vegetated."""
    red, nir = refl[2], refl[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    out = np.where(ndvi > 0.3, SCL_VEG, SCL_BARE).astype(np.uint8)
    out[cloud >= 0.05] = SCL_CIRRUS
    out[cloud >= 0.2] = SCL_CLOUD_MED
    out[cloud >= 0.5] = SCL_CLOUD_HIGH
    out[~valid] = SCL_NODATA
    return out
