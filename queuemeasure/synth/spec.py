"""The scene description a user gives: :class:`SceneSpec`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Sequence

from ..errors import OptionError

__all__ = ["SceneSpec", "UPPER_LARS_CHECKPOINT", "VLADIKAVKAZ"]

#: Upper Lars checkpoint as given with Maxar's picture of 2022-09-26 (lon, lat).
UPPER_LARS_CHECKPOINT = (44.631, 42.768)
#: Vladikavkaz (lon, lat), the direction in which the Upper Lars queue stretched.
VLADIKAVKAZ = (44.6819, 43.0206)


@dataclass
class SceneSpec:
    """Everything that defines a synthetic scene; the same spec and seed give the same
    pixels and the same truth.

    Parameters
    ----------
    seed : int
        Seed of every random choice.
    road : {"straight", "curving", "serpentine", "valley", "switchback"}
        Generated road shape ("switchback": hairpins of 17-24 m radius, legs 20-40 m apart) (ignored when ``road_lonlat`` is given).
    road_lonlat : sequence of (lon, lat), optional
        A given road centreline in WGS84, head first.
    origin_lonlat : (lon, lat)
        Position of the head (checkpoint) for generated roads.
    road_bearing_deg : float
        General direction of a generated road away from the head (degrees from north).
    toward_lonlat : (lon, lat), optional
        If given, the bearing is taken from the origin toward this point.
    road_length_m : float
        Length of a generated road.
    queue_length_m : float
        Intended queue length from the head; 0 gives an empty road.
    max_gap_m : float
        Gap that ends the queue (DESIGN.md); inner gaps stay below it, and free traffic
        beyond the tail starts further than it.
    gsd_m : float
        Ground sample distance, 0.1 to 1.0 m.
    crs : str
        "utm" (UTM zone of the origin) or any CRS string ("EPSG:4326", "EPSG:3857", ...).
    bands : {1, 3, 4}
        Grey, RGB or RGB + NIR.
    dtype : {"uint8", "uint16"}
        uint16 holds 11-bit-like values.
    surface : {"asphalt", "concrete"}
        Road surface.
    lanes : int
        Number of lanes (2 to 4); the carriageway is ``lanes * lane_width_m`` wide.
    lane_width_m : float
        Width of a lane.
    two_lane_queue_fraction : float
        Share of the queue length standing two abreast.
    truck_fraction : float
        Share of trucks and buses in the queue.
    colour_mix : {"mixed", "silver"}
        Vehicle colour distribution; "silver" is mostly silver, white and grey.
    gap_scale : float
        Scales the usual 0.5 to 6 m bumper gaps.
    oncoming_per_km, free_per_km : float
        Density of oncoming traffic and of free traffic beyond the tail.
    terrain : {"mixed", "valley", "fields", "urban"}
        Surroundings; "valley" adds rock, scrub and a gravel river bed.
    river : bool, optional
        Force a river bed on or off (default: on for "valley").
    river_like_road : bool
        Give the river bed's gravel the road's tone and tint (a band the tracer can take
        for the road).
    river_gap_m : float
        Gap between the carriageway's edge and the river bed.
    tree_cover : float
        0 (none) to 1 (dense); some trees overhang the road.
    buildings : float
        0 (none) to 1 (many) buildings near the road.
    laybys : float
        0 (none) to 1 (many) lay-bys with parked cars.
    haze, cloud, noise : float
        Atmospheric haze 0 to 1, thin cloud cover 0 to 1, sensor noise (std as a
        fraction of full scale).
    blur_px : float
        Gaussian MTF blur sigma in output pixels.
    jpeg : bool
        Write JPEG-in-TIFF (lossy, YCbCr for 3 bands) instead of DEFLATE.
    jpeg_quality : int
        JPEG quality.
    sun_azimuth_deg, sun_elevation_deg : float
        Sun position; shadows fall away from it.
    extent_limit_m : float, optional
        Cut the raster footprint with a straight edge across the road this many metres
        along the road from the head.
    margin_m : float
        Terrain rendered either side of the road; farther pixels and blocks are left
        unwritten (nodata).
    supersample : int
        Render at this many sub-samples per pixel side, then area-average.
    asphalt_tone : float, optional
        Mean asphalt brightness 0 to 1 (default: random per scene).
    workers : int
        Rendering threads.
    description : str
        Extra text for the GeoTIFF and truth note.
    """

    seed: int = 0
    road: str = "curving"
    road_lonlat: Sequence[tuple[float, float]] | None = None
    origin_lonlat: tuple[float, float] = UPPER_LARS_CHECKPOINT
    road_bearing_deg: float = 0.0
    toward_lonlat: tuple[float, float] | None = None
    road_length_m: float = 1500.0
    queue_length_m: float = 600.0
    max_gap_m: float = 50.0
    gsd_m: float = 0.5
    crs: str = "utm"
    bands: int = 3
    dtype: str = "uint8"
    surface: str = "asphalt"
    lanes: int = 2
    lane_width_m: float = 3.5
    two_lane_queue_fraction: float = 0.15
    truck_fraction: float = 0.1
    colour_mix: str = "mixed"
    gap_scale: float = 1.0
    oncoming_per_km: float = 4.0
    free_per_km: float = 6.0
    terrain: str = "mixed"
    river: bool | None = None
    river_like_road: bool = False
    river_gap_m: float = 14.0
    tree_cover: float = 0.3
    buildings: float = 0.3
    laybys: float = 0.3
    haze: float = 0.15
    cloud: float = 0.0
    noise: float = 0.012
    blur_px: float = 0.5
    jpeg: bool = False
    jpeg_quality: int = 88
    sun_azimuth_deg: float = 160.0
    sun_elevation_deg: float = 45.0
    extent_limit_m: float | None = None
    margin_m: float = 60.0
    supersample: int = 2
    asphalt_tone: float | None = None
    workers: int = 2
    description: str = ""
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Check ranges; raise :class:`queuemeasure.errors.OptionError` on a bad value."""
        def bad(msg: str) -> None:
            raise OptionError(msg)

        if not 0.1 - 1e-9 <= self.gsd_m <= 1.0 + 1e-9:
            bad(f"gsd_m must be within 0.1..1.0 m, not {self.gsd_m}")
        if self.bands not in (1, 3, 4):
            bad(f"bands must be 1, 3 or 4, not {self.bands}")
        if self.dtype not in ("uint8", "uint16"):
            bad(f"dtype must be uint8 or uint16, not {self.dtype}")
        if self.jpeg and self.dtype != "uint8":
            bad("JPEG-in-TIFF needs dtype uint8")
        if self.surface not in ("asphalt", "concrete"):
            bad(f"surface must be asphalt or concrete, not {self.surface!r}")
        if self.terrain not in ("mixed", "valley", "fields", "urban"):
            bad(f"terrain must be mixed, valley, fields or urban, not {self.terrain!r}")
        if self.colour_mix not in ("mixed", "silver"):
            bad(f"colour_mix must be mixed or silver, not {self.colour_mix!r}")
        if not 1 <= self.lanes <= 4:
            bad(f"lanes must be 1..4, not {self.lanes}")
        if self.max_gap_m <= 6.5:
            bad(f"max_gap_m must exceed the largest bumper gap (6.5 m), not {self.max_gap_m}")
        if self.queue_length_m < 0:
            bad("queue_length_m must be >= 0")
        if self.road_lonlat is None and self.road_length_m < 100:
            bad("road_length_m must be at least 100 m")
        if self.margin_m < self.lanes * self.lane_width_m / 2 + 5:
            bad("margin_m must cover the carriageway and 5 m beyond")
        if self.supersample not in (1, 2, 3, 4):
            bad("supersample must be 1..4")
        if not 5 <= self.sun_elevation_deg <= 90:
            bad("sun_elevation_deg must be within 5..90")
        for name in ("two_lane_queue_fraction", "truck_fraction", "tree_cover", "buildings",
                     "laybys", "haze", "cloud"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                bad(f"{name} must be within 0..1, not {v}")
        if not 0 <= self.noise <= 0.2:
            bad("noise must be within 0..0.2")
        if not 0 <= self.river_gap_m <= 500:
            bad("river_gap_m must be within 0..500")
        if self.extent_limit_m is not None and self.extent_limit_m <= 0:
            bad("extent_limit_m must be positive")

    def as_dict(self) -> dict:
        """The spec as a JSON-friendly dict (for the truth file)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "road_lonlat" and v is not None:
                v = [list(map(float, p)) for p in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out
