"""``queuemeasure info``: what a tile is, and how much of a road it covers."""

from __future__ import annotations

import json
from typing import Any

import click

from .options import CRSParam


@click.command("info")
@click.argument("tile")
@click.option("--road", default=None, help="Also report how many km of this road lie on valid data.")
@click.option("--road-crs", type=CRSParam, default=None, help="CRS of the road's coordinates.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def info(tile: str, road: str | None, road_crs: Any, as_json: bool) -> None:
    """Describe TILE: CRS, ground pixel size, bands, tiling, WGS84 bounds."""
    from ..info import tile_info

    ti = tile_info(tile, road, road_crs=road_crs)
    if as_json:
        click.echo(json.dumps(ti.to_dict()))
        return
    w, s, e, n = ti.bounds_lonlat
    lines = [
        f"{ti.path}" + ("  [SYNTHETIC]" if ti.synthetic else ""),
        f"  driver {ti.driver}, {ti.width} x {ti.height} px, {ti.count} band(s) {', '.join(ti.dtypes)}",
        f"  CRS {ti.crs if len(ti.crs) < 60 else ti.crs[:57] + '...'}",
        f"  ground pixel {ti.pixel_size_m[0]:.3f} x {ti.pixel_size_m[1]:.3f} m",
        f"  blocks {ti.block_shape[0]} x {ti.block_shape[1]} ({'tiled' if ti.tiled else 'striped: slow windowed reads'}),"
        f" compression {ti.compression or 'none'}, nodata {ti.nodata}",
        f"  colour {', '.join(ti.colorinterp)}; bands used {ti.bands_used}",
        f"  bounds lon {w:.6f}..{e:.6f}, lat {s:.6f}..{n:.6f}",
    ]
    if ti.road_km is not None:
        lines.append(f"  road {ti.road_km:.3f} km, of which {ti.road_km_on_valid_data:.3f} km on valid data")
    click.echo("\n".join(lines))
