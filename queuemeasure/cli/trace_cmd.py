"""``queuemeasure trace``: find a road's centreline on the image between points, or snap
a rough road onto it."""

from __future__ import annotations

import json
from typing import Any

import click

from .options import BandList, CRSParam, LonLat, overwrite_opt, precision_opt


@click.command("trace")
@click.argument("tile")
@click.option("--from", "start", type=LonLat, default=None,
              help="A point on the road where the centreline starts, LON,LAT.")
@click.option("--to", "end", type=LonLat, default=None,
              help="A point on the road where the centreline ends, LON,LAT.")
@click.option("--via", type=LonLat, multiple=True,
              help="A point the road passes between --from and --to (repeat, in order).")
@click.option("--snap", "snap", metavar="ROAD", default=None,
              help="Instead of tracing between points, move this rough road (GeoJSON/WKT, "
                   "e.g. OpenStreetMap) onto the road in the image.")
@click.option("--road-crs", type=CRSParam, default=None, help="CRS of --snap's coordinates.")
@click.option("--max-shift", type=float, default=30.0, show_default=True,
              help="With --snap: largest distance in metres between the rough and the real road.")
@click.option("--bands", type=BandList, default=None,
              help="Bands to analyse, e.g. 3,2,1 or 1 (default: RGB by colour interpretation).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the centreline as a GeoJSON Feature (WGS84) to this .geojson; default: stdout.")
@overwrite_opt
@precision_opt
def trace(tile: str, start: Any, end: Any, via: tuple, snap: str | None, road_crs: Any,
          max_shift: float, bands: Any, out: str | None, overwrite: bool,
          precision: int | None) -> None:
    """Find the road centreline in TILE between --from and --to (through any --via), or
    move a rough road onto it with --snap. Writes a WGS84 GeoJSON LineString Feature."""
    if snap is not None:
        if start is not None or end is not None or via:
            raise click.UsageError("give either --snap ROAD or --from/--to/--via, not both")
    elif start is None or end is None:
        raise click.UsageError("give --from and --to (two points on the road), or --snap ROAD")
    elif road_crs is not None:
        raise click.UsageError("--road-crs applies to --snap only")
    from ..export import check_output_path, write_json
    from ..trace import TraceInfo, feature, snap_road, trace_road

    if out:
        from ..formats import road_format

        check_output_path(out, overwrite=overwrite, inputs=[tile, snap])
        road_format(out)
    info = TraceInfo()
    if snap is not None:
        line = snap_road(tile, snap, max_shift_m=max_shift, road_crs=road_crs, bands=bands, info=info)
        props: dict[str, Any] = {"method": "snap", "max_shift_m": max_shift}
    else:
        line = trace_road(tile, start, end, via=via, bands=bands, info=info)
        props = {"method": "trace", "from_lonlat": list(start), "to_lonlat": list(end),
                 "via_lonlat": [list(v) for v in via]}
    props.update(tile=tile, carriageway_width_m=info.width_m,
                 band_seen_share=round(info.seen_share, 3), coarse_cell_m=round(info.cell_m, 2))
    feat = feature(line, props, precision)
    if out:
        write_json(out, feat, overwrite=overwrite)
        click.echo(f"wrote {out} ({feat['properties']['length_m'] / 1000:.3f} km)", err=True)
    else:
        click.echo(json.dumps(feat))
