"""``queuemeasure synth``: render a synthetic scene with known truth.

Heavy imports stay inside the command body so that ``--help`` is fast.
"""

from __future__ import annotations

import json

import click

__all__ = ["synth"]


def _lonlat(ctx, param, value):
    if value is None:
        return None
    try:
        lon, lat = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LON,LAT, got {value!r}", ctx=ctx, param=param) from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise click.BadParameter(f"{value!r} is not a lon,lat position", ctx=ctx, param=param)
    return (lon, lat)


def _read_road(path: str) -> list[tuple[float, float]]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    geom = doc
    if doc.get("type") == "FeatureCollection":
        feats = [f for f in doc.get("features", []) if (f.get("geometry") or {}).get("type") == "LineString"]
        if not feats:
            raise ValueError("no LineString feature")
        geom = feats[0]["geometry"]
    elif doc.get("type") == "Feature":
        geom = doc.get("geometry") or {}
    if geom.get("type") != "LineString":
        raise ValueError("not a LineString")
    return [(float(c[0]), float(c[1])) for c in geom["coordinates"]]


@click.command("synth")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--road", "road", type=click.Choice(["straight", "curving", "serpentine", "valley"]),
              default="curving", show_default=True, help="Shape of a generated road.")
@click.option("--road-geojson", type=click.Path(exists=True, dir_okay=False),
              help="Use this road (GeoJSON LineString, WGS84, head first) instead of a generated one.")
@click.option("--origin", callback=_lonlat, metavar="LON,LAT",
              help="Head (checkpoint) of a generated road [default: Upper Lars checkpoint].")
@click.option("--toward", callback=_lonlat, metavar="LON,LAT",
              help="General direction of a generated road, as a point it heads for.")
@click.option("--bearing", type=float, default=0.0, show_default=True,
              help="General direction of a generated road, degrees from north.")
@click.option("--road-length-km", type=float, default=1.5, show_default=True)
@click.option("--queue-km", type=float, default=0.6, show_default=True, help="0 for an empty road.")
@click.option("--max-gap", type=float, default=50.0, show_default=True, help="Gap (m) that ends the queue.")
@click.option("--gsd", type=float, default=None,
              help="Ground pixel size: 0.1-1.0 m [default 0.5]; with --sensor the sensor's output "
                   "pixel [default 10 m for sentinel2, 3 m for planetscope].")
@click.option("--crs", default="utm", show_default=True,
              help='"utm" (zone of the head) or any CRS: EPSG:4326, EPSG:3857, WKT ...')
@click.option("--bands", type=click.Choice(["1", "3", "4"]), default="3", show_default=True)
@click.option("--dtype", type=click.Choice(["uint8", "uint16"]), default="uint8", show_default=True)
@click.option("--surface", type=click.Choice(["asphalt", "concrete"]), default="asphalt", show_default=True)
@click.option("--lanes", type=click.IntRange(1, 4), default=2, show_default=True)
@click.option("--two-lane-fraction", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Share of the queue standing two abreast.")
@click.option("--truck-fraction", type=click.FloatRange(0, 1), default=0.1, show_default=True)
@click.option("--colours", type=click.Choice(["mixed", "silver"]), default="mixed", show_default=True)
@click.option("--terrain", type=click.Choice(["mixed", "valley", "fields", "urban"]), default="mixed",
              show_default=True)
@click.option("--river/--no-river", default=None, help="Gravel river bed beside the road [default: with valley].")
@click.option("--trees", type=click.FloatRange(0, 1), default=0.3, show_default=True)
@click.option("--buildings", type=click.FloatRange(0, 1), default=0.3, show_default=True)
@click.option("--laybys", type=click.FloatRange(0, 1), default=0.3, show_default=True)
@click.option("--oncoming-per-km", type=click.FloatRange(0), default=4.0, show_default=True)
@click.option("--free-per-km", type=click.FloatRange(0), default=6.0, show_default=True)
@click.option("--haze", type=click.FloatRange(0, 1), default=0.15, show_default=True)
@click.option("--cloud", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--noise", type=click.FloatRange(0, 0.2), default=0.012, show_default=True)
@click.option("--blur", type=click.FloatRange(0), default=0.5, show_default=True, help="MTF blur sigma, pixels.")
@click.option("--jpeg/--deflate", default=False, show_default=True, help="Lossy JPEG-in-TIFF or lossless DEFLATE.")
@click.option("--jpeg-quality", type=click.IntRange(10, 100), default=88, show_default=True)
@click.option("--sun-azimuth", type=float, default=160.0, show_default=True)
@click.option("--sun-elevation", type=click.FloatRange(5, 90), default=45.0, show_default=True)
@click.option("--extent-limit-km", type=float, default=None,
              help="Cut the footprint across the road this far from the head.")
@click.option("--margin", type=float, default=60.0, show_default=True,
              help="Metres of terrain rendered either side of the road.")
@click.option("--supersample", type=click.IntRange(1, 4), default=2, show_default=True)
@click.option("--asphalt-tone", type=click.FloatRange(0, 1), default=None, help="Mean road brightness 0-1.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--description", default="", help="Extra text for the GeoTIFF and truth note.")
@click.option("--sensor", type=click.Choice(["sentinel2", "planetscope"]), default=None,
              help="Render as this coarse sensor sees it: painted at an intermediate pixel, then its "
                   "PSF, pixel, bands (blue, green, red, NIR), noise and quantisation. --blur, --noise, "
                   "--bands, --dtype, --jpeg and --supersample are then the sensor's.")
@click.option("--product", type=click.Choice(["tci", "l2a", "reflectance"]), default="l2a", show_default=True,
              help="With --sensor: uint8 true colour (TCI), uint16 L2A stack (B02,B03,B04,B08, "
                   "BOA_ADD_OFFSET -1000; PlanetScope: SR x 10000) or float32 reflectance.")
@click.option("--reference", "reference", type=click.Path(dir_okay=False, writable=True), default=None,
              help="With --sensor: also write the same road on another date, without the queue "
                   "(other sun, haze, gain/offset and a co-registration shift, drawn from --seed).")
@click.option("--mtf", type=click.FloatRange(0.02, 0.63), default=None,
              help="With --sensor: system MTF at Nyquist [sentinel2 0.28, planetscope 0.2].")
@click.option("--snr", type=click.FloatRange(1, 10000), default=None,
              help="With --sensor: signal-to-noise ratio at reflectance 0.1, all bands "
                   "[sentinel2 140-170, planetscope 70-90].")
@click.option("--ref-shift-m", type=click.FloatRange(0, 50), default=None,
              help="With --reference: largest co-registration shift in metres [sentinel2 3, planetscope 4].")
@click.option("--ref-crs", default=None,
              help="With --reference: its CRS (e.g. EPSG:3857) [default: the tile's grid].")
@click.option("--ref-traffic-per-km", type=click.FloatRange(0), default=1.0, show_default=True,
              help="With --reference: other vehicles on the reference date.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the truth summary as one JSON object.")
def synth(out, road, road_geojson, origin, toward, bearing, road_length_km, queue_km, max_gap, gsd,
          crs, bands, dtype, surface, lanes, two_lane_fraction, truck_fraction, colours, terrain,
          river, trees, buildings, laybys, oncoming_per_km, free_per_km, haze, cloud, noise, blur,
          jpeg, jpeg_quality, sun_azimuth, sun_elevation, extent_limit_km, margin, supersample,
          asphalt_tone, seed, workers, description, sensor, product, reference, mtf, snr, ref_shift_m,
          ref_crs, ref_traffic_per_km, overwrite, as_json):
    """Render a SYNTHETIC scene OUT.tif with a vehicle queue, plus OUT.truth.geojson (what a
    correct measurement finds) and OUT.road.geojson (the road to measure along).

    Example: queuemeasure synth out.tif --road serpentine --road-length-km 22 --queue-km 20
    --gsd 0.5 --crs EPSG:32638 --seed 1

    Coarse sensors: queuemeasure synth s2.tif --sensor sentinel2 --product l2a
    --reference s2_reference.tif --road-length-km 22 --queue-km 20 --seed 1
    """
    from ..errors import CRSError, OptionError, OutputError, RoadError
    from ..synth import SceneSpec, render_scene
    from ..synth.spec import UPPER_LARS_CHECKPOINT

    road_lonlat = None
    if road_geojson:
        try:
            road_lonlat = _read_road(road_geojson)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.BadParameter(f"cannot read a LineString from {road_geojson}: {exc}",
                                     param_hint="--road-geojson") from None
    spec = SceneSpec(
        seed=seed, road=road, road_lonlat=road_lonlat,
        origin_lonlat=origin or UPPER_LARS_CHECKPOINT, road_bearing_deg=bearing,
        toward_lonlat=toward, road_length_m=road_length_km * 1000.0,
        queue_length_m=queue_km * 1000.0, max_gap_m=max_gap,
        gsd_m=0.5 if (gsd is None or sensor) else gsd, crs=crs,
        bands=int(bands), dtype=dtype, surface=surface, lanes=lanes,
        two_lane_queue_fraction=two_lane_fraction, truck_fraction=truck_fraction,
        colour_mix=colours, terrain=terrain, river=river, tree_cover=trees,
        buildings=buildings, laybys=laybys, oncoming_per_km=oncoming_per_km,
        free_per_km=free_per_km, haze=haze, cloud=cloud, noise=noise, blur_px=blur,
        jpeg=jpeg, jpeg_quality=jpeg_quality, sun_azimuth_deg=sun_azimuth,
        sun_elevation_deg=sun_elevation,
        extent_limit_m=None if extent_limit_km is None else extent_limit_km * 1000.0,
        margin_m=margin, supersample=supersample, asphalt_tone=asphalt_tone,
        workers=workers, description=description)
    if sensor is None and (reference or mtf is not None or snr is not None or ref_shift_m is not None
                           or ref_crs is not None):
        raise click.UsageError("--reference, --mtf, --snr, --ref-shift-m and --ref-crs need --sensor")
    try:
        if sensor is None:
            truth = render_scene(spec, out, overwrite=overwrite)
        else:
            from ..synth.sensor_render import render_sensor_scene
            from ..synth.sensor import SENSORS, random_reference_date
            overrides = {"gsd_m": gsd, "mtf_nyquist": mtf, "snr": None if snr is None else (snr,) * 4}
            ref_date = None
            if reference and ref_shift_m is not None:
                ref_date = random_reference_date(seed, SENSORS[sensor], sun_azimuth_deg=sun_azimuth,
                                                 sun_elevation_deg=sun_elevation, max_shift_m=ref_shift_m)
            truth = render_sensor_scene(spec, out, sensor=sensor, product=product, reference=reference,
                                        reference_date=ref_date, reference_traffic_per_km=ref_traffic_per_km,
                                        reference_crs=ref_crs,
                                        overwrite=overwrite, **overrides)
    except (OptionError, CRSError, RoadError) as exc:
        raise click.UsageError(str(exc).splitlines()[0]) from None
    except OutputError as exc:
        msg = str(exc).splitlines()[0]
        if "not overwritten" in msg:
            msg += " (use --overwrite)"
        raise click.UsageError(msg) from None
    summary = {k: truth.properties[k] for k in (
        "length_km", "vehicle_count", "max_gap_m", "gsd_m", "crs", "seed", "truncated",
        "full_length_km", "full_vehicle_count", "head_lonlat", "tail_lonlat", "synthetic")}
    if sensor is not None:
        summary.update(sensor=sensor, product=product, lanes=truth.properties["lanes"],
                       queue_mean_lanes=truth.properties["queue_mean_lanes"])
    summary["files"] = truth.paths
    if as_json:
        click.echo(json.dumps(summary))
    else:
        trunc = " (truncated by the footprint; whole queue %.3f km)" % truth.full_length_km if truth.truncated else ""
        click.echo(f"SYNTHETIC scene {out}: queue {truth.length_km:.3f} km, "
                   f"{truth.vehicle_count} vehicles{trunc}; truth in {truth.paths['truth']}")
