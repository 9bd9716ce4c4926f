"""``queuemeasure search``: the STAC items over a road on some dates, with their cloud."""

from __future__ import annotations

import json
from typing import Any

import click

from .options import CRSParam, LonLat, osm_road_options, stac_opt, stac_timeout_opt


@click.command("search")
@click.option("--road", "road", metavar="ROAD", required=True,
              help="Road centreline: GeoJSON or WKT file (WGS84 lon/lat unless --road-crs), "
                   "or OSM data (.osm, .osm.pbf, Overpass .json, .gpkg, .fgb) with --road-ref etc.")
@osm_road_options
@click.option("--road-crs", type=CRSParam, default=None, help="CRS of the road's coordinates.")
@click.option("--head", type=LonLat, default=None,
              help="The checkpoint holding the queue, LON,LAT (default: the road's first vertex).")
@click.option("--dates", required=True, metavar="START/END",
              help="Acquisition dates, inclusive, e.g. 2022-09-20/2022-09-30.")
@click.option("--collection", default="sentinel-2-l2a", show_default=True, help="STAC collection.")
@stac_opt
@stac_timeout_opt
@click.option("--cloud/--no-cloud", "read_cloud", default=True, show_default=True,
              help="Read each item's scene classification (SCL) over the road's corridor.")
@click.option("--max-items", type=click.IntRange(1, 10000), default=200, show_default=True,
              help="Stop after this many items from the catalogue.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def search(road: str, road_crs: Any, head: Any, dates: str, collection: str, stac: str | None,
           timeout: float, read_cloud: bool, max_items: int, as_json: bool,
           road_select: Any = None) -> None:
    """List the STAC items covering ROAD between --dates, with the cloud over the road.

    The cloud is the share of the road's corridor (30 m each side) whose Sentinel-2
    scene classification (SCL) shows cloud, shadow, cirrus, snow or defective pixels,
    read for the corridor only; not the scene-wide percentage (also shown).

    ROAD may be OpenStreetMap data: --road-ref, --road-name, --road-id, --road-tag,
    --head and --toward choose the road as `queuemeasure measure` does.
    """
    from ..search import DEFAULT_STAC, search_items

    url = stac or DEFAULT_STAC
    hits = search_items(road, dates, head=head, road_crs=road_crs, road_select=road_select,
                        collection=collection, stac=url,
                        read_cloud=read_cloud, max_items=max_items, timeout=timeout)
    if as_json:
        click.echo(json.dumps({"stac": url, "collection": collection, "dates": dates,
                               "items": [h.to_dict() for h in hits]}))
        return
    if not hits:
        click.echo(f"no {collection} item covers the road between {dates.replace('/', ' and ')} ({url})")
        return
    click.echo(f"{'date':<11}{'road':>6}{'cloud':>7}{'clear km':>10}{'scene':>7}  orbit  item")
    for h in hits:
        cloud = "-" if h.cloud_pct_corridor is None else f"{h.cloud_pct_corridor:.0f}%"
        clear = "-" if h.clear_km is None else f"{h.clear_km:.1f}"
        scene = "-" if h.scene_cloud_pct is None else f"{h.scene_cloud_pct:.0f}%"
        orbit = "-" if h.orbit is None else f"R{h.orbit:03d}"
        click.echo(f"{h.datetime[:10]:<11}{h.road_covered_pct:>5.0f}%{cloud:>7}{clear:>10}{scene:>7}  "
                   f"{orbit:<5}  {h.href or h.id}")
    click.echo("road = share of the road inside the item's footprint; cloud = over the road's "
               "corridor (SCL); scene = the item's own cloud cover")
