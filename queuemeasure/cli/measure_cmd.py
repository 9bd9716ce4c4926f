"""``queuemeasure measure``: measure the queue on a road in a tile."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click

from .options import (
    BandList, CRSParam, LonLat, detector_opt, osm_road_options, overwrite_opt, precision_opt,
    reference_days_opt, stac_opt, vector_format_opt,
)


@click.command("measure")
@click.argument("tile")
@click.option("--road", "road", metavar="ROAD", default=None,
              help="Road centreline: GeoJSON or WKT file (WGS84 lon/lat unless --road-crs), "
                   "or OSM data (.osm, .osm.pbf, Overpass .json, .gpkg, .fgb) with --road-ref etc.")
@osm_road_options
@click.option("--trace-to", type=LonLat, default=None,
              help="No road file: trace the road on the image from --head to this LON,LAT.")
@click.option("--road-crs", type=CRSParam, default=None, help="CRS of the road's coordinates.")
@click.option("--head", type=LonLat, default=None,
              help="The checkpoint holding the queue, LON,LAT (default: the road's first vertex).")
@click.option("--direction", type=click.Choice(["both", "forward", "backward"]), default="both",
              show_default=True, help="Side(s) of the head to search; 'both' keeps the longer queue.")
@click.option("--max-gap", type=float, default=50.0, show_default=True,
              help="Largest gap in metres between vehicles of one queue.")
@click.option("--half-width", type=float, default=4.5, show_default=True,
              help="Half-width in metres of the carriageway on which vehicles count.")
@click.option("--bands", type=BandList, default=None,
              help="Bands to analyse: R,G,B[,NIR] e.g. 3,2,1 or 1,2,3,4, or one band (default: "
                   "from band descriptions B02/B03/B04/B08, else colour interpretation).")
@click.option("--sensitivity", type=float, default=1.0, show_default=True,
              help="Detector sensitivity (higher finds fainter vehicles).")
# -- occupancy mode (coarse pixels)
@click.option("--reference", default=None, metavar="REF",
              help="Occupancy mode: the same road on a date when it was free (any CRS, a "
                   "pixel size near the tile's); the queue is what changed on the carriageway.")
@click.option("--mode", type=click.Choice(["auto", "vehicles", "occupancy"]), default="auto",
              show_default=True,
              help="Resolve vehicles (fine pixels) or measure the carriageway's occupancy "
                   "(coarse pixels: 3 m, 10 m); auto chooses by pixel size.")
@click.option("--cloud-mask", default=None, metavar="MASK",
              help="Occupancy mode: raster of cloud (>= 1) over the tile, counted as occluded "
                   "(an SCL band in the tile is used without it).")
@detector_opt
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the queue, vehicles, head and tail (WGS84) as GeoJSON (.geojson), "
                   "GeoPackage (.gpkg: layers queue, vehicles, endpoints) or FlatGeobuf (.fgb).")
@vector_format_opt
@click.option("--quicklook", type=click.Path(dir_okay=False), default=None,
              help="Write a quicklook picture (.png, .jpg, .pdf or .svg): map, full-resolution "
                   "excerpts, occupancy profile.")
@click.option("--map", "map_path", type=click.Path(dir_okay=False), default=None, metavar="MAP.html",
              help="Write an interactive HTML map (Leaflet inside: opens offline; OSM basemap "
                   "online): road, queue, vehicles, occlusions. Needs queuemeasure[map].")
@overwrite_opt
@precision_opt
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--workers", type=click.IntRange(1, 64), default=None, metavar="N",
              help="Processes that detect vehicles while the road is read (default: "
                   "$QUEUEMEASURE_WORKERS, else 2 on Linux; 1 = none). Same result.")
# -- STAC items: --reference auto chooses a clear pass of the same orbit
@reference_days_opt
@stac_opt
@click.pass_context
def measure(ctx: click.Context, tile: str, road: str | None, trace_to: Any, road_crs: Any,
            head: Any, direction: str,
            max_gap: float, half_width: float, bands: Any, sensitivity: float, as_json: bool,
            out: str | None, vector_format: str | None, quicklook: str | None, overwrite: bool,
            precision: int | None,
            progress: bool | None, workers: int | None, map_path: str | None = None,
            road_select: Any = None, detector: str = "auto", reference: str | None = None,
            mode: str = "auto", cloud_mask: str | None = None, reference_days: int = 30,
            stac: str | None = None) -> None:
    """Measure the vehicle queue on ROAD in TILE (a GeoTIFF path or a URL GDAL reads)."""
    _without_boto3_for_local(tile)
    from ..check import measure_source as run
    from ..export import check_output_path

    if (road is None) == (trace_to is None):
        raise click.UsageError("give --road ROAD, or --head with --trace-to LON,LAT")
    if trace_to is not None and head is None:
        raise click.UsageError("--trace-to needs --head (where the traced road starts)")
    for path in (out, quicklook):
        if path:
            check_output_path(path, overwrite=overwrite, inputs=[tile, road])
    _check_formats(out, vector_format, quicklook)
    if trace_to is not None:
        from ..trace import trace_road

        road = trace_road(tile, head, trace_to, bands=bands)
    if out and quicklook and os.path.abspath(out) == os.path.abspath(quicklook):
        raise click.UsageError("--out and --quicklook must be different files")
    if map_path:  # --map: checked before measuring (extension, path, folium installed)
        _check_map(map_path, overwrite, [tile, road], [out, quicklook])
    quiet = (ctx.obj or {}).get("quiet", False)
    show = progress if progress is not None else (sys.stderr.isatty() and not quiet)
    bar = _progress_bar() if show else None
    try:
        result = run(
            tile, road, head=head, max_gap=max_gap, direction=direction, road_crs=road_crs,
            bands=bands, half_width=half_width, sensitivity=sensitivity,
            progress=bar.update_to if bar is not None else None, workers=workers,
            reference=reference, mode=mode, cloud_mask=cloud_mask,
            road_select=road_select,
            detector=detector,
            reference_days=reference_days, stac=stac,
        )
    finally:
        if bar is not None:
            bar.close()
    # the picture first (the likelier to fail), then the vector file; a failure of either
    # leaves no output of this run behind
    if quicklook:
        result.quicklook(quicklook, road=road, road_crs=road_crs, overwrite=overwrite)
    if out:
        try:
            result.to_file(out, format=vector_format, overwrite=overwrite, precision=precision)
        except BaseException:
            if quicklook:
                with contextlib.suppress(OSError):
                    os.unlink(quicklook)
            raise
    if map_path:
        _write_map(result, map_path, overwrite, road, road_crs, written=[out, quicklook])
    if as_json:
        click.echo(json.dumps(result.to_dict(precision)))
    else:
        click.echo(result.summary())
        for path in (out, quicklook, map_path):
            if path:
                click.echo(f"wrote {path}")


def _check_formats(out: str | None, vector_format: str | None, quicklook: str | None) -> None:
    """Refuse, before any work, an output whose format is unknown or cannot be written."""
    from ..formats import image_format, vector_format as check_vector

    if vector_format is not None and not out:
        raise click.UsageError("--format chooses the format of --out: give --out too")
    if out:
        check_vector(out, vector_format)
    if quicklook:
        image_format(quicklook)


def _check_map(map_path: str, overwrite: bool, inputs: list[Any], others: list[str | None]) -> None:
    """--map: an .html path that can be written, not another output, and folium installed."""
    from ..webmap import require_folium, check_map_path

    if any(o and os.path.abspath(o) == os.path.abspath(map_path) for o in others):
        raise click.UsageError("--map must be a file of its own (not --out or --quicklook)")
    check_map_path(map_path, overwrite=overwrite, inputs=inputs)
    require_folium()


def _write_map(result: Any, map_path: str, overwrite: bool, road: Any, road_crs: Any,
               written: list[str | None]) -> None:
    """Write the --map page; on failure remove this run's other outputs too."""
    try:
        result.write_map(map_path, overwrite=overwrite, road=road, road_crs=road_crs)
    except BaseException:
        for path in written:
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        raise


def _without_boto3_for_local(tile: str) -> None:
    """Import rasterio without boto3 when the tile is a local file.

    rasterio imports boto3, when installed, only to sign requests to S3 (0.1-0.4 s of
    this short-lived process's start); a local file needs none. Remote paths and URLs
    keep it.
    """
    if "rasterio" in sys.modules or "boto3" in sys.modules:
        return
    if "://" in tile or tile.startswith("/vsi") or not os.path.isfile(tile):
        return
    sys.modules["boto3"] = None  # type: ignore[assignment]  # "import boto3" fails
    try:
        import rasterio.session  # noqa: F401  (remembers that boto3 is unavailable)
    finally:
        del sys.modules["boto3"]


def _progress_bar() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    class _Bar(tqdm):  # type: ignore[misc]
        # no monitor thread: the bar is refreshed on every update, and a thread would keep
        # measure() from forking its detection workers (queuemeasure.parallel)
        monitor_interval = 0

        def update_to(self, done: float, total: float) -> None:
            self.total = round(total / 1000.0, 2)
            self.n = round(done / 1000.0, 2)
            self.refresh()

    return _Bar(unit="km", desc="measuring", file=sys.stderr, leave=False,
                bar_format="{desc}: {n:.1f}/{total:.1f} km {bar} {elapsed}")
