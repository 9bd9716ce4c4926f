"""``queuemeasure check``: a claimed queue length (and count) against the image."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from .options import CRSParam, LonLat, osm_road_options, overwrite_opt, reference_days_opt, stac_opt


@click.command("check")
@click.argument("source", metavar="TILE|ITEM|RESULT.json")
@click.option("--claim-km", type=float, required=True, help="The claimed queue length in km.")
@click.option("--claim-count", type=click.IntRange(1, None), default=None, help="The claimed number of vehicles.")
@click.option("--claim-kind", type=click.Choice(["about", "at-least", "at-most"]), default="about",
              show_default=True, help="How to read the claim: about K km (± --tolerance), "
                                      "at least ('more than') K km, at most K km.")
@click.option("--tolerance", type=click.FloatRange(0, 0.99), default=0.10, show_default=True,
              help="Relative tolerance of an 'about' claim (0.1: 20 km allows 18-22 km).")
@click.option("--lanes", type=click.IntRange(1, 8), default=None,
              help="Lanes the queue stands in, for metres per vehicle (default 1 to 2).")
@click.option("--road", "road", metavar="ROAD", default=None,
              help="Road centreline: GeoJSON or WKT file, or OSM data (.osm, .osm.pbf, Overpass "
                   ".json, .gpkg, .fgb) with --road-ref etc. (not needed for a RESULT.json).")
@osm_road_options
@click.option("--road-crs", type=CRSParam, default=None, help="CRS of the road's coordinates.")
@click.option("--head", type=LonLat, default=None, help="The checkpoint holding the queue, LON,LAT.")
@click.option("--reference", default=None, metavar="REF|auto",
              help="The same road on a date when it was free: a tile, a STAC item, or 'auto' "
                   "(a STAC item's clearest item of the same orbit within --reference-days).")
@reference_days_opt
@stac_opt
@click.option("--max-gap", type=float, default=50.0, show_default=True,
              help="Largest gap in metres between vehicles of one queue.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quicklook", type=click.Path(dir_okay=False), default=None,
              help="Write the quicklook PNG with the verdict as its banner.")
@overwrite_opt
def check(source: str, claim_km: float, claim_count: int | None, claim_kind: str, tolerance: float,
          lanes: int | None, road: str | None, road_crs: Any, head: Any, reference: str | None,
          reference_days: int, stac: str | None, max_gap: float, as_json: bool, quicklook: str | None,
          overwrite: bool, road_select: Any = None) -> None:
    """Say whether a claim about the queue holds: consistent, contradicted, lower_bound
    (the queue runs off the image or into cloud) or cannot_tell (weak evidence).

    SOURCE is a tile or STAC item to measure (with --road and --head), or the JSON of an
    earlier `queuemeasure measure --json`. ROAD may be OpenStreetMap data, the road
    chosen with --road-ref, --road-name, --road-id, --road-tag, --head and --toward as
    `queuemeasure measure` does.
    """
    from ..check import check_claim, read_measurement
    from ..export import check_output_path

    if read_measurement(source) is not None:
        # a saved result is judged as it was measured: options that would measure again
        # would be ignored, so they are refused
        given = [name for name, value in (("--quicklook", quicklook), ("--road", road),
                                          ("--head", head), ("--reference", reference),
                                          ("the road options", road_select))
                 if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} need an image to measure; SOURCE is a saved "
                                   "result, judged as it was measured")
    if quicklook:
        check_output_path(quicklook, overwrite=overwrite, inputs=[source, road])
    v, result = check_claim(
        source, claim_km, claim_count, road=road, head=head, road_crs=road_crs, road_select=road_select,
        reference=reference,
        reference_days=reference_days, stac=stac, claim_kind=claim_kind, tolerance=tolerance, lanes=lanes,
        max_gap=max_gap,
    )
    if quicklook:
        result.quicklook(quicklook, road=road, road_crs=road_crs, overwrite=overwrite)
    if as_json:
        d = v.to_dict()
        if result is not None:
            d["measurement"] = result.to_dict()
        click.echo(json.dumps(d))
    else:
        click.echo(v.summary)
        if quicklook:
            click.echo(f"wrote {os.fspath(quicklook)}")
