"""Opening tiles: checks, band choice, ground pixel size and a summary of the tile.

Nothing here reads pixels except :func:`tile_info`'s optional road coverage, which goes
through :mod:`queuemeasure.corridor`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from . import geo
from .errors import RasterError, SlowReadWarning

__all__ = [
    "open_tile",
    "choose_bands",
    "ground_pixel_size",
    "is_remote",
    "gdal_env_options",
    "TileInfo",
    "BandRoles",
    "band_roles",
    "band_scaling",
    "SCL_OCCLUDED",
]

#: Sentinel-2 L2A scene classes that hide the ground: 0 no data, 1 saturated or
#: defective, 3 cloud shadow, 8 and 9 cloud (medium, high probability), 10 thin cirrus,
#: 11 snow or ice (Sentinel-2 L2A product specification, scene classification).
SCL_OCCLUDED = (0, 1, 3, 8, 9, 10, 11)

#: band description -> role ("B02" blue, "B03" green, "B04" red, "B08"/"B8A" NIR)
_ROLE_NAMES = {
    "b04": "red", "b4": "red", "red": "red",
    "b03": "green", "b3": "green", "green": "green",
    "b02": "blue", "b2": "blue", "blue": "blue",
    "b08": "nir", "b8": "nir", "b8a": "nir", "nir": "nir",
    "scl": "scl",
}

_REMOTE_PREFIXES = ("http://", "https://", "s3://", "gs://", "az://", "/vsicurl", "/vsis3",
                    "/vsigs", "/vsiaz", "ftp://")


def is_remote(tile: str) -> bool:
    """True when ``tile`` names a network resource rather than a local file."""
    t = str(tile).lower()
    return t.startswith(_REMOTE_PREFIXES) or "://" in t and not t.startswith(("zip://", "file://", "tar://"))


def gdal_env_options(tile: str) -> dict[str, Any]:
    """GDAL configuration for reading ``tile``: no directory listing, short timeouts.

    A server that does not answer is given up after ``GDAL_HTTP_CONNECTTIMEOUT`` (5 s)
    to connect or ``GDAL_HTTP_LOW_SPEED_TIME`` (8 s) without a byte, instead of GDAL's
    default of waiting and retrying for minutes; slow but live transfers go on. Each
    setting can be overridden by the environment variable of the same name.
    """
    opts: dict[str, Any] = {"GDAL_CACHEMAX": 256}
    if is_remote(tile):
        defaults = {
            "GDAL_HTTP_CONNECTTIMEOUT": "5",
            "GDAL_HTTP_LOW_SPEED_TIME": "8",
            "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
            "GDAL_HTTP_TIMEOUT": "120",
            "GDAL_HTTP_MAX_RETRY": "1",
            "GDAL_HTTP_RETRY_DELAY": "1",
            # /vsicurl/'s process-wide cache of fetched ranges (default 16 MB): a 20 km
            # corridor's blocks of five bands, kept for a second read (STAC items, a reference)
            "CPL_VSIL_CURL_CACHE_SIZE": str(256 * 1024 * 1024),
        }
        opts.update({k: os.environ.get(k, v) for k, v in defaults.items()})
        opts.update(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", VSI_CACHE=True)
    return opts


@contextlib.contextmanager
def open_tile(tile: Any) -> Iterator[Any]:
    """Open a tile for reading inside a suitable ``rasterio.Env``; check it is usable.

    Parameters
    ----------
    tile : str, os.PathLike, dict or rasterio dataset
        A path, a URL GDAL reads (``https://`` COG, ``zip://``, ``/vsi...``), a STAC
        item (a ``.json`` file or URL, or its dict: see :mod:`queuemeasure.stac`), or
        an already opened dataset (yielded as is).

    Yields
    ------
    rasterio.io.DatasetReader

    Raises
    ------
    RasterError
        When the tile is missing, not a raster, or has no CRS or no geotransform.
    RemoteError
        When a remote tile's server fails: an HTTP error status (404 included), no
        answer, a timeout; also when a read fails after the tile was opened.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    if hasattr(tile, "read") and hasattr(tile, "transform"):
        check_georeferenced(tile)
        yield tile
        return
    from .remote import open_failure, remote_reads
    from .stac import is_stac_item, open_item

    if is_stac_item(tile):  # a STAC item (dict, file or URL): its assets as one VRT
        with open_item(tile) as ds:
            yield ds
        return
    name = os.fspath(tile)
    if not is_remote(name) and "://" not in name and not name.startswith("/vsi"):
        p = Path(name)
        if not p.exists():
            raise RasterError(f"tile not found: {name}")
        if p.is_dir():
            raise RasterError(f"tile is a directory, not a raster file: {name}")
    with rasterio.Env(**gdal_env_options(name)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                ds = rasterio.open(name)
        except RasterioIOError as exc:
            msg = str(exc).splitlines()[0] if str(exc) else "unreadable"
            if is_remote(name):  # the server's failure (exit 1) or not a raster (exit 2)
                raise open_failure(name, exc) from None
            raise RasterError(
                f"not a readable raster: {name} (is it a GeoTIFF, complete and uncorrupted?): {msg}"
            ) from None
        with ds:
            check_georeferenced(ds)
            with remote_reads(ds.name) if is_remote(name) else contextlib.nullcontext():
                yield ds


def check_georeferenced(ds: Any) -> None:
    """Raise :class:`RasterError` unless ``ds`` has a CRS and a real geotransform."""
    from affine import Affine

    if ds.transform == Affine.identity() and ds.gcps[0]:
        raise RasterError(
            f"tile is georeferenced by GCPs only: {ds.name} (warp it first, e.g. gdalwarp)"
        )
    if ds.crs is None:
        raise RasterError(f"tile has no CRS: {ds.name} (assign one, e.g. with gdal_edit.py -a_srs)")
    if ds.transform == Affine.identity():
        raise RasterError(
            f"tile has no geotransform: {ds.name} (georeference it, e.g. with gdal_edit.py -a_ullr)"
        )
    t = ds.transform
    if not all(np.isfinite(v) for v in t[:6]) or abs(t.determinant) < 1e-300:
        raise RasterError(f"tile has a degenerate geotransform {tuple(t[:6])}: {ds.name}")
    if ds.count < 1:
        raise RasterError(f"tile has no bands: {ds.name}")


def choose_bands(ds: Any, bands: Sequence[int] | None = None) -> list[int]:
    """Pick the 1-based band indexes to analyse.

    Red, green and blue by colour interpretation when the tile declares them, else by
    band descriptions ("Red", "Green", "Blue"); 8 undescribed bands are taken in the
    WorldView-2/3 order (red 5, green 3, blue 2); otherwise the first three non-alpha
    bands (or the single band of a panchromatic tile).
    ``bands`` overrides, and is checked against the tile.
    """
    from rasterio.enums import ColorInterp

    if bands:
        idx = _checked_bands(ds, bands)
        return idx[:3] if len(idx) == 4 else idx
    roles = _described_roles(ds)
    if all(r in roles for r in ("red", "green", "blue")):
        return [roles["red"], roles["green"], roles["blue"]]
    return _choose_by_colour(ds)


def _checked_bands(ds: Any, bands: Sequence[int]) -> list[int]:
    """``bands`` as ints, each an existing band of ``ds``."""
    idx = [int(b) for b in bands]
    bad = [b for b in idx if b < 1 or b > ds.count]
    if bad:
        raise RasterError(
            f"band {bad[0]} does not exist: the tile has {ds.count} band(s) (1..{ds.count})"
        )
    return idx


def _described_roles(ds: Any) -> dict[str, int]:
    """Role -> 1-based band from band descriptions ("B04", "red", "SCL", ...)."""
    roles: dict[str, int] = {}
    for i, d in enumerate(ds.descriptions):
        key = str(d or "").strip().lower().replace(" ", "").replace("_", "")
        role = _ROLE_NAMES.get(key)
        if role and role not in roles:
            roles[role] = i + 1
    return roles


def _choose_by_colour(ds: Any) -> list[int]:
    from rasterio.enums import ColorInterp

    ci = list(ds.colorinterp)
    rgb = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in ci for c in rgb):
        return [ci.index(c) + 1 for c in rgb]
    # band descriptions such as "Red", "green", "Blue band"
    desc = [str(d or "").strip().lower() for d in ds.descriptions]
    found = [next((i + 1 for i, d in enumerate(desc) if d.startswith(name)), None)
             for name in ("red", "green", "blue")]
    if all(found):
        return [int(b) for b in found if b is not None]
    if ds.count == 8 and all(c in (ColorInterp.undefined, ColorInterp.gray) for c in ci):
        # 8 undescribed bands: WorldView-2/3 multispectral order (coastal, blue, green,
        # yellow, red, red edge, NIR1, NIR2)
        return [5, 3, 2]
    scl = _described_roles(ds).get("scl")
    usable = [i + 1 for i, c in enumerate(ci) if c != ColorInterp.alpha and i + 1 != scl]
    if not usable:
        usable = list(range(1, ds.count + 1))
    return usable[:3] if len(usable) >= 3 else usable[:1]


@dataclass(frozen=True)
class BandRoles:
    """Which bands of a tile are image bands and which one classifies the scene.

    Attributes
    ----------
    image : list of int
        1-based image bands in the order red, green, blue, then NIR when known (all of
        them for occupancy; the first three are the detector's RGB).
    scl : int or None
        A Sentinel-2 scene-classification band (described "SCL"), never an image band.
    names : list of str
        The role of each image band ("red", "green", "blue", "nir" or "band N").
    """

    image: list[int]
    scl: int | None
    names: list[str]


def band_roles(ds: Any, bands: Sequence[int] | None = None) -> BandRoles:
    """The image bands of ``ds`` (all of them: RGB and NIR) and its SCL band.

    Roles come from band descriptions ("B02" blue, "B03" green, "B04" red, "B08" NIR,
    "SCL"; also "blue", "green", "red", "nir"), else colour interpretation, else
    ``bands`` (R,G,B[,NIR] or one band), else the first four non-alpha bands in the order
    stored (a 4-band export is most often B04,B03,B02,B08 or R,G,B,NIR).
    """
    from rasterio.enums import ColorInterp

    roles = _described_roles(ds)
    scl = roles.get("scl")
    if bands:
        idx = _checked_bands(ds, bands)
        names = ["red", "green", "blue", "nir"][: len(idx)] if len(idx) in (3, 4) else ["band"]
        return BandRoles(idx, scl, names)
    if all(r in roles for r in ("red", "green", "blue")):
        order = [r for r in ("red", "green", "blue", "nir") if r in roles]
        return BandRoles([roles[r] for r in order], scl, order)
    rgb = _choose_by_colour(ds)
    ci = list(ds.colorinterp)
    rest = [i + 1 for i, c in enumerate(ci)
            if i + 1 not in rgb and i + 1 != scl and c != ColorInterp.alpha]
    if len(rgb) == 3:
        nir = roles.get("nir") or (rest[0] if len(rest) == 1 else None)
        idx = rgb + ([nir] if nir else [])
        return BandRoles(idx, scl, ["red", "green", "blue", "nir"][: len(idx)])
    return BandRoles(rgb, scl, [f"band {b}" for b in rgb])


def band_scaling(ds: Any, bands: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-band (scale, offset) giving physical values ``DN * scale + offset``.

    From the dataset's own scales and offsets (GDAL Scale/Offset, as a STAC VRT carries
    them) when any differs from (1, 0); else from a Sentinel-2 ``BOA_ADD_OFFSET`` tag
    (dataset or band metadata, reflectance = (DN + offset) / 10000, processing baseline
    04.00 on); else None (values are used as stored).
    """
    idx = [b - 1 for b in bands]
    scales = np.array([ds.scales[i] if ds.scales[i] is not None else 1.0 for i in idx], float)
    offsets = np.array([ds.offsets[i] if ds.offsets[i] is not None else 0.0 for i in idx], float)
    if np.any(scales != 1.0) or np.any(offsets != 0.0):
        return scales, offsets
    boa = []
    for b in bands:
        tags = {k.upper(): v for k, v in {**ds.tags(), **ds.tags(b)}.items()}
        val = tags.get("BOA_ADD_OFFSET")
        if val is None:
            return None
        try:
            boa.append(float(val))
        except ValueError:
            raise RasterError(f"BOA_ADD_OFFSET of band {b} is not a number: {val!r}") from None
    return np.full(len(bands), 1e-4), np.asarray(boa) * 1e-4


def ground_pixel_size(ds: Any, at_xy: tuple[float, float] | None = None) -> tuple[float, float]:
    """Ground size in metres of one pixel step along columns and rows (geodesic).

    Measured at ``at_xy`` (raster CRS) or at the tile centre, by reprojecting the pixel's
    corners to WGS84 and measuring on the ellipsoid; right for projected, geographic and
    Web Mercator rasters alike, and for rotated geotransforms.
    """
    t = ds.transform
    if at_xy is None:
        col, row = ds.width / 2.0, ds.height / 2.0
    else:
        inv = ~t
        col = inv.a * at_xy[0] + inv.b * at_xy[1] + inv.c
        row = inv.d * at_xy[0] + inv.e * at_xy[1] + inv.f
    pts_c = np.array([col, col + 1, col])
    pts_r = np.array([row, row, row + 1])
    xs = t.a * pts_c + t.b * pts_r + t.c
    ys = t.d * pts_c + t.e * pts_r + t.f
    lon, lat = geo.transformer(ds.crs, geo.WGS84).transform(np.asarray(xs), np.asarray(ys))
    _, _, d = geo.GEOD.inv(lon[[0, 0]], lat[[0, 0]], lon[[1, 2]], lat[[1, 2]])
    return float(d[0]), float(d[1])


def block_shape(ds: Any) -> tuple[int, int, bool]:
    """Return (block rows, block cols, tiled) for reading ``ds`` in corridor pieces.

    A striped (untiled) tile gets virtual 512-column blocks: bounded memory, but GDAL
    decodes whole strips, so :class:`SlowReadWarning` is issued when the strips are wide.
    """
    bh, bw = ds.block_shapes[0]
    tiled = bw < ds.width or ds.width <= 1024
    if bw >= ds.width and ds.width > 1024:
        if ds.width * bh > 4_000_000 or ds.width > 8192:
            warnings.warn(
                f"tile is not tiled (strips of {bh} x {bw} px): windowed reads decode whole "
                "strips and will be slow; convert it with `gdal_translate -co TILED=YES`",
                SlowReadWarning,
                stacklevel=3,
            )
        bh = max(bh, int(np.ceil(256 / bh)) * bh) if bh < 256 else bh
        bw = 512
    return int(bh), int(bw), tiled


@dataclass(frozen=True)
class TileInfo:
    """A summary of a tile for ``queuemeasure info``."""

    path: str
    driver: str
    width: int
    height: int
    count: int
    dtypes: list[str]
    crs: str
    pixel_size_m: tuple[float, float]
    block_shape: tuple[int, int]
    tiled: bool
    compression: str | None
    nodata: float | None
    colorinterp: list[str]
    bands_used: list[int]
    bounds_lonlat: tuple[float, float, float, float]
    synthetic: bool
    road_km: float | None = None
    road_km_on_valid_data: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        from dataclasses import asdict

        d = asdict(self)
        d["pixel_size_m"] = list(self.pixel_size_m)
        d["block_shape"] = list(self.block_shape)
        d["bounds_lonlat"] = list(self.bounds_lonlat)
        return d


def crs_name(crs: Any) -> str:
    """A short name for a CRS: EPSG:NNNN when it has one, else its WKT."""
    c = geo.parse_crs(crs)
    epsg = c.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg else c.to_wkt()


def is_synthetic(ds: Any) -> bool:
    """True when the tile says it was made by queuemeasure.synth."""
    tags = {k.upper(): str(v) for k, v in ds.tags().items()}
    return tags.get("SYNTHETIC", "").lower() in {"yes", "true", "1"}


def tile_bounds_lonlat(ds: Any) -> tuple[float, float, float, float]:
    """The tile's footprint in WGS84 (west, south, east, north), densified edges."""
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    return float(w), float(s), float(e), float(n)
