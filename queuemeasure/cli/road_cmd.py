"""``queuemeasure road``: build one road centreline from OpenStreetMap data."""

from __future__ import annotations

import json
from typing import Any

import click

from .options import LonLat, osm_road_options, overwrite_opt, precision_opt


@click.command("road")
@click.argument("osmdata")
@osm_road_options
@click.option("--head", type=LonLat, default=None,
              help="The checkpoint, LON,LAT: the road starts there and runs upstream "
                   "(default: the longest path between the selection's ends).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the centreline as a GeoJSON Feature (WGS84) to this .geojson; default: stdout.")
@overwrite_opt
@precision_opt
def road(osmdata: str, head: Any, out: str | None, overwrite: bool, precision: int | None,
         road_select: dict[str, Any] | None) -> None:
    """Build the road centreline from OSMDATA (.osm XML, .osm.pbf, Overpass JSON, a
    GeoPackage/FlatGeobuf of OSM lines): the selected ways joined into one path from
    --head toward --toward. The Feature's properties hold the OSM way ids and the
    attribution (© OpenStreetMap contributors, ODbL)."""
    from ..export import check_output_path, write_json
    from ..osm import osm_road

    select = dict(road_select or {})
    if select.get("toward") is not None and head is None:
        raise click.UsageError("--toward needs --head (where the road starts)")
    if out:
        from ..formats import road_format

        check_output_path(out, overwrite=overwrite, inputs=[osmdata])
        road_format(out)
    built = osm_road(osmdata, head=head, **select)
    feat = built.to_feature(precision)
    if out:
        write_json(out, feat, overwrite=overwrite)
        click.echo(f"wrote {out} ({built.length_m / 1000:.3f} km on {len(built.way_ids)} OSM ways; "
                   f"{built.attribution})", err=True)
    else:
        click.echo(json.dumps(feat, ensure_ascii=False))
