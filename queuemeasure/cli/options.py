"""Click parameter types and options shared by the commands."""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

__all__ = ["LonLat", "BandList", "CRSParam", "overwrite_opt", "precision_opt", "vector_format_opt",
           "osm_road_options", "detector_opt", "stac_opt", "stac_timeout_opt", "reference_days_opt"]


class LonLatType(click.ParamType):
    """A ``LON,LAT`` pair in WGS84 degrees."""

    name = "LON,LAT"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        parts = str(value).replace(" ", "").split(",")
        try:
            lon, lat = (float(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not LON,LAT (two numbers separated by a comma)", param, ctx)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            self.fail(f"{value!r} is out of range (LON in -180..180, LAT in -90..90)", param, ctx)
        return lon, lat


class BandListType(click.ParamType):
    """Comma-separated 1-based band indexes: R,G,B (e.g. ``3,2,1``), R,G,B,NIR or one band."""

    name = "B[,B...]"

    def convert(self, value: Any, param: Any, ctx: Any) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            bands = [int(b) for b in str(value).split(",") if b.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a list of band numbers like 3,2,1", param, ctx)
        if not bands or any(b < 1 for b in bands):
            self.fail(f"{value!r}: band numbers start at 1", param, ctx)
        if len(bands) not in (1, 3, 4):
            self.fail(f"{value!r}: give one band (panchromatic), three (R,G,B) or four "
                      "(R,G,B,NIR)", param, ctx)
        return bands


class CRSParamType(click.ParamType):
    """A CRS as EPSG:NNNN, WKT, PROJJSON or PROJ string."""

    name = "CRS"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from ..errors import CRSError
        from ..geo import parse_crs

        try:
            return parse_crs(value)
        except CRSError as exc:
            self.fail(str(exc), param, ctx)


LonLat = LonLatType()
BandList = BandListType()
CRSParam = CRSParamType()

overwrite_opt = click.option("--overwrite", is_flag=True, help="Replace output files that exist.")
precision_opt = click.option(
    "--precision", type=click.IntRange(0, 15), default=None,
    help="Round output coordinates to this many decimals (default: full precision).",
)

vector_format_opt = click.option(
    "--format", "vector_format", metavar="FORMAT", default=None,
    help="Vector format when the extension does not say: geojson, gpkg (GeoPackage) or fgb "
         "(FlatGeobuf) [default: by extension].",
)


_OSM_OPTIONS = (
    click.option("--road-ref", metavar="REF", default=None,
                 help="OSM road: the ways (or route relation) with this ref, e.g. А-161 "
                      "(matches ref lists like 'A 161;E 117'; Cyrillic or Latin letters)."),
    click.option("--road-name", metavar="NAME", default=None,
                 help="OSM road: the ways with this name (name, int_name or name:*)."),
    click.option("--road-id", metavar="way/ID", multiple=True,
                 help="OSM road: add this way (repeat for several)."),
    click.option("--road-tag", metavar="KEY=VALUE", multiple=True,
                 help="OSM road: only ways with this tag, e.g. highway=primary "
                      "(VALUE * for any, a|b for either; repeat: all must hold)."),
    click.option("--road-layer", metavar="LAYER", default=None,
                 help="OSM road: the GeoPackage layer (default: lines, edges or the only one)."),
    click.option("--toward", type=LonLat, default=None,
                 help="OSM road: build it from --head toward this LON,LAT (default: to the "
                      "end of the selected ways upstream of the head)."),
)


def osm_road_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the OSM road options; the command receives them as one ``road_select``
    mapping (None when none was given) for :func:`queuemeasure.road.prepare_road`.

    A command with a ``road`` parameter (``measure``, ``search``, ``check``) refuses
    the options without ``--road``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kw: Any) -> Any:
        from ..osm import Selection

        ref, name, ids, tags = (kw.pop(k) for k in ("road_ref", "road_name", "road_id", "road_tag"))
        layer, toward = kw.pop("road_layer"), kw.pop("toward")
        select: dict[str, Any] | None = None
        if ref is not None or name is not None or ids or tags or layer or toward:
            if "road" in kw and kw["road"] is None:
                raise click.UsageError("--road-ref/--road-name/--road-id/--road-tag/--toward need --road OSMDATA")
            select = {"selection": Selection.make(ref, name, ids, tags), "layer": layer,
                      "toward": toward}
        kw["road_select"] = select
        return f(*args, **kw)

    for opt in reversed(_OSM_OPTIONS):
        wrapper = opt(wrapper)
    return wrapper


detector_opt = click.option(
    "--detector", type=click.Choice(["auto", "rules", "learned"]), default="auto", show_default=True,
    help="Vehicle detector: rules (hand-written), learned (small network, see MODEL.md), "
         "auto (learned on colour tiles, rules on a single band).",
)

stac_opt = click.option(
    "--stac", metavar="URL", default=None,
    help="STAC API to search (default: Element84 Earth Search v1, "
         "https://earth-search.aws.element84.com/v1; for --reference auto: the item's own catalogue).",
)
stac_timeout_opt = click.option(
    "--timeout", "timeout", type=click.FloatRange(0, 3600, min_open=True), default=20.0, show_default=True,
    metavar="SECONDS",
    help="Give up on the STAC catalogue when it takes longer than this to connect or to send "
         "the next part of an answer (exit 1).",
)
reference_days_opt = click.option(
    "--reference-days", type=click.IntRange(1, 366), default=30, show_default=True, metavar="N",
    help="--reference auto: look this many days before and after the image.",
)
