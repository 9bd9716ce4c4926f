"""A STAC item as a tile: its band assets stacked into an in-memory GDAL VRT.

A Sentinel-2 L2A item (Element84's Earth Search ``sentinel-2-l2a`` keys ``blue``,
``green``, ``red``, ``nir``, ``scl``; also ``B02``-style keys or ``eo:bands`` common names)
becomes one VRT whose bands are described ``B02``, ``B03``, ``B04``, ``B08`` and ``SCL``
(the band roles of the rest of queuemeasure), each with the Scale/Offset of the item's
``raster:bands`` (else of the product's processing baseline). The 20 m ``SCL`` is put on
the 10 m grid by nearest neighbour. Remote assets are read through GDAL's ``/vsicurl/``:
the corridor code then fetches, with HTTP range requests, only the blocks the road's
corridor touches, and nothing of the rest of the 110 km scene.

Nothing here reads pixels; :func:`open_item` opens one asset's header (for the grid and
block size, and to fail early on an unreachable or missing asset).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping
from xml.sax.saxutils import escape

from .errors import ItemError, RasterError, RemoteError

__all__ = [
    "BANDS",
    "BandAsset",
    "is_stac_item",
    "load_item",
    "band_assets",
    "item_vrt",
    "open_item",
    "item_datetime",
    "item_orbit",
    "item_grid_code",
    "item_links",
]

#: The bands a STAC item supplies, by the description they carry in the VRT.
BANDS = ("B02", "B03", "B04", "B08", "SCL")
#: Bands without which a measurement is impossible.
REQUIRED = ("B02", "B03", "B04")
#: Asset keys tried for each band, in order (Earth Search v1, then Sentinel-2 band names).
_KEYS = {
    "B02": ("blue", "B02", "b02", "B2"),
    "B03": ("green", "B03", "b03", "B3"),
    "B04": ("red", "B04", "b04", "B4"),
    "B08": ("nir", "B08", "b08", "B8"),
    "SCL": ("scl", "SCL"),
}
_COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
_COLOR = {"B02": "Blue", "B03": "Green", "B04": "Red"}
#: Seconds to wait for a STAC item or catalogue before giving up.
HTTP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class BandAsset:
    """One band of an item: where it is and how to turn its numbers into reflectance."""

    band: str
    key: str
    href: str
    scale: float
    offset: float
    nodata: float | None
    shape: tuple[int, int] | None
    transform: tuple[float, ...] | None

    @property
    def gdal_path(self) -> str:
        """The path GDAL opens: ``/vsicurl/`` for http(s), ``/vsis3/`` for s3, else as is."""
        return gdal_path(self.href)


def gdal_path(href: str) -> str:
    """The GDAL path of an asset href (``/vsicurl/`` for http(s), ``/vsis3/`` for s3)."""
    low = href.lower()
    if low.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if low.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if low.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlparse(href).path)
    return href


def _is_url(s: str) -> bool:
    return s.lower().startswith(("http://", "https://"))


def is_stac_item(tile: Any) -> bool:
    """True when ``tile`` is a STAC item: a mapping with assets, a pystac Item, a ``.json``
    file path or URL (a query string after it allowed), or a STAC API item URL
    (``.../collections/{collection}/items/{id}``)."""
    if isinstance(tile, Mapping):
        return "assets" in tile
    if hasattr(tile, "assets") and hasattr(tile, "to_dict"):
        return True
    if isinstance(tile, (str, os.PathLike)):
        name = os.fspath(tile)
        if _is_url(name):
            path = urllib.parse.urlparse(name).path
            # a STAC API's item: .../collections/{collection}/items/{id}
            return path.lower().endswith(".json") or re.search(r"/collections/[^/]+/items/[^/]+/?$", path) is not None
        return name.lower().endswith(".json")
    return False


def _fetch_json(url: str, what: str, timeout: float = HTTP_TIMEOUT_S) -> Any:
    """GET ``url`` and parse it as JSON; server failures raise :class:`RemoteError`."""
    req = urllib.request.Request(url, headers={"Accept": "application/json, application/geo+json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise RemoteError(f"cannot fetch {what} {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"cannot reach {what} {url}: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ItemError(f"{what} {url} is not JSON") from None


def load_item(source: Any) -> dict[str, Any]:
    """A STAC item as a dict, from a dict, a pystac Item, a JSON file or an http(s) URL.

    Relative asset hrefs are resolved against the item's location, and the location is
    kept (as a ``self`` link) so that a search for a reference knows the catalogue.

    Raises
    ------
    ItemError
        The file is missing, not JSON, or not a STAC item.
    RemoteError
        The URL cannot be fetched (unreachable, 404, timeout).
    """
    base: str | None = None
    if isinstance(source, Mapping):
        item = dict(source)
    elif hasattr(source, "to_dict") and hasattr(source, "assets"):
        item = source.to_dict()
        base = getattr(source, "get_self_href", lambda: None)()
    else:
        name = os.fspath(source)
        if _is_url(name):
            item = _fetch_json(name, "STAC item")
            base = name
        else:
            p = Path(name)
            if not p.is_file():
                raise ItemError(f"STAC item not found: {name}")
            try:
                item = json.loads(p.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ItemError(f"STAC item {name} is not JSON") from None
            base = str(p.resolve())
    if not isinstance(item, dict) or item.get("type") != "Feature" or not isinstance(item.get("assets"), dict):
        raise ItemError(f"not a STAC item (a GeoJSON Feature with assets): {source if not isinstance(source, Mapping) else item.get('id', '?')}")
    if base is not None:
        item["assets"] = {k: _resolved(a, base) for k, a in item["assets"].items()}
        links = [ln for ln in item.get("links", []) if ln.get("rel") != "self"]
        item["links"] = [{"rel": "self", "href": base}, *links]
    return item


def _resolved(asset: Any, base: str) -> Any:
    """The asset with its href made absolute against ``base`` (a file path or URL)."""
    if not isinstance(asset, dict) or "href" not in asset:
        return asset
    href = str(asset["href"])
    if "://" in href or href.startswith("/"):
        return asset
    if _is_url(base):
        return {**asset, "href": urllib.parse.urljoin(base, href)}
    return {**asset, "href": str((Path(base).parent / href).resolve())}


def _asset_for(band: str, assets: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The asset holding ``band``: by key first, then by ``eo:bands`` name or common name."""
    lower = {k.lower(): k for k in assets}
    for key in _KEYS[band]:
        if key.lower() in lower:
            k = lower[key.lower()]
            return k, assets[k]
    for k, a in assets.items():
        if not isinstance(a, dict) or "jp2" in str(a.get("type", "")).lower():
            continue
        listed = a.get("eo:bands") or a.get("bands") or []
        if len(listed) != 1:  # a one-band asset only (not the 3-band true-colour "visual")
            continue
        names = {str(listed[0].get("name", "")).upper(), str(listed[0].get("common_name", "")).lower()}
        if band in names or _COMMON.get(band) in names:
            return k, a
    return None


def _product_scale_offset(item: Mapping[str, Any], band: str) -> tuple[float, float]:
    """Scale and offset from the product metadata when ``raster:bands`` gives none.

    Sentinel-2 L2A: reflectance = (DN + BOA_ADD_OFFSET) / 10000, the offset -1000 from
    processing baseline 04.00 (January 2022) on and 0 before. SCL is a class map.
    """
    if band == "SCL":
        return 1.0, 0.0
    props = item.get("properties", {})
    baseline = props.get("s2:processing_baseline") or props.get("sentinel:processing_baseline")
    offset = 0.0
    if baseline is not None:
        try:
            offset = -0.1 if float(baseline) >= 4.0 else 0.0
        except ValueError:
            offset = 0.0
    return 1e-4, offset


def band_assets(item: Mapping[str, Any], *, required: tuple[str, ...] = REQUIRED) -> dict[str, BandAsset]:
    """The item's band assets by band name (``B02``... ``SCL``), those it has.

    Raises
    ------
    ItemError
        When a band of ``required`` has no asset.
    """
    assets = item.get("assets", {})
    found: dict[str, BandAsset] = {}
    for band in BANDS:
        hit = _asset_for(band, assets)
        if hit is None:
            continue
        key, a = hit
        if "href" not in a:
            raise ItemError(f"asset {key!r} of STAC item {item.get('id', '?')} has no href")
        rb = (a.get("raster:bands") or [{}])[0]
        scale, offset = _product_scale_offset(item, band)
        if "scale" in rb or "offset" in rb:
            scale, offset = float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0))
        shape = a.get("proj:shape")
        tr = a.get("proj:transform")
        found[band] = BandAsset(
            band=band, key=key, href=str(a["href"]), scale=scale, offset=offset,
            nodata=rb.get("nodata"),
            shape=(int(shape[0]), int(shape[1])) if shape else None,
            transform=tuple(float(v) for v in tr[:6]) if tr else None,
        )
    missing = [b for b in required if b not in found]
    if missing:
        names = ", ".join(f"{b} ({_COMMON.get(b, b.lower())})" for b in missing)
        raise ItemError(
            f"STAC item {item.get('id', '?')} has no asset for band {names}; it has "
            f"{', '.join(sorted(assets)) or 'no assets'}"
        )
    return found


@dataclass(frozen=True)
class _Grid:
    width: int
    height: int
    transform: Any
    crs_wkt: str
    block: tuple[int, int]
    dtype: str
    synthetic: bool


def _open_asset(asset: BandAsset) -> Any:
    """Open one asset's header with rasterio; failures as Remote/Raster errors."""
    import rasterio
    from rasterio.errors import RasterioIOError

    path = asset.gdal_path
    if not path.startswith("/vsi") and not Path(path).is_file():
        raise ItemError(f"asset {asset.key!r} ({asset.band}) not found: {path}")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "unreadable"
        if path.startswith("/vsi"):
            raise RemoteError(f"cannot read asset {asset.key!r} ({asset.band}) at {asset.href}: {msg}") from None
        raise RasterError(f"asset {asset.key!r} ({asset.band}) is not a readable raster: {path}: {msg}") from None


def _grid_of(asset: BandAsset) -> _Grid:
    with _open_asset(asset) as ds:
        if ds.crs is None:
            raise RasterError(f"asset {asset.key!r} ({asset.band}) has no CRS: {asset.href}")
        bh, bw = ds.block_shapes[0]
        synthetic = str(ds.tags().get("SYNTHETIC", "")).lower() in {"yes", "true", "1"}
        return _Grid(ds.width, ds.height, ds.transform, ds.crs.to_wkt(), (bh, bw), ds.dtypes[0], synthetic)


def _dst_rect(asset: BandAsset, grid: _Grid) -> tuple[float, float, float, float, int, int]:
    """(xoff, yoff, xsize, ysize) on the VRT grid and the source's (width, height)."""
    from affine import Affine

    if asset.shape is not None and asset.transform is not None:
        h, w = asset.shape
        t = Affine(*asset.transform)
    else:
        with _open_asset(asset) as ds:
            h, w, t = ds.height, ds.width, ds.transform
    inv = ~grid.transform

    def px(x: float, y: float) -> tuple[float, float]:
        return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f

    x0, y0 = px(t.c, t.f)
    x1, y1 = px(t.c + t.a * w, t.f + t.e * h)
    return x0, y0, x1 - x0, y1 - y0, w, h


def item_vrt(item: Mapping[str, Any], bands: Mapping[str, BandAsset] | None = None) -> str:
    """The VRT XML stacking the item's bands on the grid of its red (B04) asset.

    Bands are UInt16 (SCL's bytes included, so that any subset reads into one array),
    described ``B02``... ``SCL``, blue/green/red carry their colour interpretation, and
    each has the Scale/Offset and nodata of its asset. Opens the red asset's header.
    """
    bands = dict(bands or band_assets(item))
    grid = _grid_of(bands["B04"])
    t = grid.transform
    bh, bw = grid.block
    props = item.get("properties", {})
    meta = {
        "STAC_ITEM": str(item.get("id", "")),
        "STAC_DATETIME": str(props.get("datetime", "")),
        "STAC_COLLECTION": str(item.get("collection", "")),
    }
    if grid.synthetic or props.get("synthetic") is True:  # labelled SYNTHETIC as its assets are
        meta["SYNTHETIC"] = "yes"
    out = [
        f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">',
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(grid.crs_wkt)}</SRS>',
        f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>",
        "  <Metadata>" + "".join(f'<MDI key="{k}">{escape(v)}</MDI>' for k, v in meta.items()) + "</Metadata>",
    ]
    for i, (name, a) in enumerate(((b, bands[b]) for b in BANDS if b in bands), start=1):
        x, y, xs, ys, w, h = _dst_rect(a, grid)
        src_type = "Byte" if name == "SCL" else "UInt16"
        out += [
            f'  <VRTRasterBand dataType="UInt16" band="{i}" blockXSize="{bw}" blockYSize="{bh}">',
            f"    <Description>{name}</Description>",
        ]
        if name in _COLOR:
            out.append(f"    <ColorInterp>{_COLOR[name]}</ColorInterp>")
        if a.nodata is not None:
            out.append(f"    <NoDataValue>{a.nodata!r}</NoDataValue>")
        if name != "SCL":
            out += [f"    <Offset>{a.offset!r}</Offset>", f"    <Scale>{a.scale!r}</Scale>"]
        out += [
            "    <SimpleSource>",
            f'      <SourceFilename relativeToVRT="0">{escape(a.gdal_path)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="{src_type}"/>',
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
            f'      <DstRect xOff="{x!r}" yOff="{y!r}" xSize="{xs!r}" ySize="{ys!r}"/>',
            "    </SimpleSource>",
            "  </VRTRasterBand>",
        ]
    out.append("</VRTDataset>")
    return "\n".join(out)


def _remote_of(bands: Mapping[str, BandAsset]) -> str:
    """An asset path whose GDAL settings the VRT needs (a remote one if any)."""
    paths = [a.gdal_path for a in bands.values()]
    return next((p for p in paths if p.startswith("/vsi")), paths[0])


@contextlib.contextmanager
def open_item(source: Any, *, required: tuple[str, ...] = REQUIRED) -> Iterator[Any]:
    """Open a STAC item as one rasterio dataset (a VRT in ``/vsimem/``), see module doc.

    Used by :func:`queuemeasure.raster.open_tile`; the dataset's ``name`` is
    ``/vsimem/queuemeasure-stac/<item id>.vrt``. A read that fails on an asset server
    (timeout, connection lost) raises :class:`RemoteError`.

    Raises
    ------
    ItemError
        Not an item, or a band of ``required`` missing.
    RemoteError
        The item or an asset cannot be fetched.
    """
    import rasterio
    from rasterio.io import MemoryFile

    from .errors import RasterReadError
    from .raster import check_georeferenced, gdal_env_options

    item = load_item(source)
    bands = band_assets(item, required=required)
    ident = re.sub(r"[^A-Za-z0-9_.-]", "_", str(item.get("id", "item")))[:100] or "item"
    with rasterio.Env(**gdal_env_options(_remote_of(bands))):
        xml = item_vrt(item, bands)
        with MemoryFile(xml.encode("utf-8"), dirname="queuemeasure-stac", filename=f"{ident}.vrt") as mem:
            with mem.open() as ds:
                check_georeferenced(ds)
                try:
                    yield ds
                except RasterReadError as exc:
                    if not _remote_of(bands).startswith("/vsi"):
                        raise
                    msg = str(exc).split(": ", 1)[-1]
                    raise RemoteError(
                        f"reading the assets of STAC item {item.get('id', '?')} failed "
                        f"(server unreachable, timed out or refused): {msg}"
                    ) from None


# ---------------------------------------------------------------------- metadata
def item_datetime(item: Mapping[str, Any]) -> str:
    """The item's acquisition time (``datetime``, else ``start_datetime``), as given."""
    props = item.get("properties", {})
    return str(props.get("datetime") or props.get("start_datetime") or "")


def item_orbit(item: Mapping[str, Any]) -> int | None:
    """The relative orbit: ``sat:relative_orbit``, else the ``_R###_`` of the product name."""
    props = item.get("properties", {})
    if props.get("sat:relative_orbit") is not None:
        return int(props["sat:relative_orbit"])
    for key in ("s2:product_uri", "s2:product_id", "sentinel:product_id"):
        m = re.search(r"_R(\d{3})_", str(props.get(key, "")))
        if m:
            return int(m.group(1))
    return None


def item_grid_code(item: Mapping[str, Any]) -> str | None:
    """The MGRS tile (``grid:code`` or the ``mgrs:`` properties), e.g. ``MGRS-38TMN``."""
    props = item.get("properties", {})
    if props.get("grid:code"):
        return str(props["grid:code"])
    parts = [props.get("mgrs:utm_zone"), props.get("mgrs:latitude_band"), props.get("mgrs:grid_square")]
    if all(p is not None for p in parts):
        return f"MGRS-{parts[0]}{parts[1]}{parts[2]}"
    return None


def item_links(item: Mapping[str, Any]) -> dict[str, str]:
    """The item's links by relation (``self``, ``root``, ``collection``...)."""
    return {str(ln.get("rel")): str(ln.get("href")) for ln in item.get("links", []) if ln.get("href")}
