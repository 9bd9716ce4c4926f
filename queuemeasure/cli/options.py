"""Click parameter types and options shared by the commands."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["LonLat", "BandList", "CRSParam", "overwrite_opt", "precision_opt", "stac_opt", "reference_days_opt"]


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

stac_opt = click.option(
    "--stac", metavar="URL", default=None,
    help="STAC API to search (default: Element84 Earth Search v1, "
         "https://earth-search.aws.element84.com/v1; for --reference auto: the item's own catalogue).",
)
reference_days_opt = click.option(
    "--reference-days", type=click.IntRange(1, 366), default=30, show_default=True, metavar="N",
    help="--reference auto: look this many days before and after the image.",
)
