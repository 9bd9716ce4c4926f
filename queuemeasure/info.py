"""A summary of a tile, and how much of a road lies on its valid data."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import geo
from .corridor import BlockSampler
from .raster import (
    TileInfo,
    block_shape,
    choose_bands,
    crs_name,
    ground_pixel_size,
    is_synthetic,
    open_tile,
    tile_bounds_lonlat,
)
from .road import prepare_road

__all__ = ["tile_info"]


def tile_info(tile: Any, road: Any = None, *, road_crs: Any = None, step_m: float = 2.0) -> TileInfo:
    """Describe a tile; with a road, also how many km of it lie on valid data.

    Parameters
    ----------
    tile : str, os.PathLike or rasterio dataset
    road : optional
        A road as accepted by :func:`queuemeasure.road.load_road`.
    road_crs : CRS-like, optional
    step_m : float
        Spacing of the centreline samples used to measure coverage.

    Returns
    -------
    TileInfo
        Only the blocks under the road's centreline are read.
    """
    with open_tile(tile) as ds:
        bh, bw, tiled = block_shape(ds)
        native = ds.block_shapes[0]
        info = dict(
            path=ds.name if not isinstance(tile, (str, os.PathLike)) else os.fspath(tile),
            driver=ds.driver,
            width=ds.width,
            height=ds.height,
            count=ds.count,
            dtypes=list(ds.dtypes),
            crs=crs_name(ds.crs),
            pixel_size_m=ground_pixel_size(ds),
            block_shape=(int(native[0]), int(native[1])),
            tiled=tiled,
            compression=ds.compression.name if ds.compression else None,
            nodata=ds.nodata,
            colorinterp=[c.name for c in ds.colorinterp],
            bands_used=choose_bands(ds),
            bounds_lonlat=tile_bounds_lonlat(ds),
            synthetic=is_synthetic(ds),
        )
        if road is not None:
            sides = prepare_road(road, crs=road_crs)
            path = sides.sides[0]
            sampler = BlockSampler(ds, [1])
            n = max(2, int(np.ceil(path.length_m / step_m)) + 1)
            stations = np.linspace(0.0, path.length_m, n)
            xy = path.xy_at(stations)
            x, y = geo.transformer(path.local_crs, ds.crs).transform(xy[:, 0], xy[:, 1])
            rows, cols = sampler.pixel_coords(np.asarray(x), np.asarray(y))
            valid = np.zeros(n, dtype=bool)
            chunk = 20000
            for i in range(0, n, chunk):
                _, v = sampler.sample(rows[i:i + chunk], cols[i:i + chunk])
                valid[i:i + chunk] = v
                sampler.release()
            mid = 0.5 * (valid[1:].astype(float) + valid[:-1])
            info["road_km"] = path.length_m / 1000.0
            info["road_km_on_valid_data"] = float((np.diff(stations) * mid).sum() / 1000.0)
        return TileInfo(**info)
