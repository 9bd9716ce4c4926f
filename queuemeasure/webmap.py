"""An interactive map of a result: folium (Leaflet), one self-contained HTML page.

:func:`explore` draws, each as one layer that the layer control switches on and off:

- the tile's footprint (its pixel grid's outline, also for a rotated or geographic grid);
- the searched road (the other side of the head dashed);
- the occluded stretches of the searched road (trees, clouds, missing data);
- the queue line, a translucent band under the vehicles;
- every detected vehicle, coloured by queued / not queued / below threshold -- *one*
  GeoJSON layer, so that a 20 km queue of 3 000 vehicles stays responsive;
- the head and tail points;

with a scale bar and a caption (length, range, count, truncation; SYNTHETIC when the tile
is). The basemap is optional: ``tiles=None`` draws none, and the page then needs no
network at all, because Leaflet itself (JavaScript, CSS and its two images) is embedded
from the ``xstatic-leaflet`` package rather than linked from a CDN. folium and
xstatic-leaflet are the optional ``map`` extra: ``pip install 'queuemeasure[map]'``.
"""

from __future__ import annotations

import base64
import html
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import geo
from .errors import MissingDependencyError, OutputError, QueueMeasureError, QueueMeasureWarning
from .export import atomic_writer, check_output_path, round_coords
from .quicklook import C_FREE, C_HEAD, C_OCC, C_QUEUE, C_TAIL, _searched_road

if TYPE_CHECKING:  # pragma: no cover
    from .result import QueueResult

__all__ = ["explore", "write_map", "map_html", "check_map_path", "require_folium", "MAP_HINT",
           "MAP_EXTENSIONS"]

MAP_HINT = "interactive maps need folium: pip install 'queuemeasure[map]'"
MAP_EXTENSIONS = (".html", ".htm")

#: Stroke and fill of the vehicles: queued, not queued, below the detection threshold.
_VEHICLE_STYLE = {
    "queued": {"color": "#b35900", "fillColor": "#ffd21f", "weight": 1, "fillOpacity": 0.8},
    "free": {"color": "#006080", "fillColor": C_FREE, "weight": 1, "fillOpacity": 0.6},
    "weak": {"color": "#777777", "fillColor": "#ffffff", "weight": 1, "fillOpacity": 0.3,
             "dashArray": "2 2"},
}


def require_folium() -> Any:
    """Import folium, or say in one line how to install the ``map`` extra."""
    try:
        import folium
    except ImportError:
        raise MissingDependencyError(MAP_HINT) from None
    return folium


def check_map_path(path: str | os.PathLike[str], *, overwrite: bool = False,
                   inputs: Any = ()) -> Path:
    """Check that ``path`` is an ``.html`` file that can be written; return it.

    Raises
    ------
    OutputError
        Another extension, or one of :func:`queuemeasure.export.check_output_path`'s
        reasons (exists without ``overwrite``, directory missing, ...).
    """
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in MAP_EXTENSIONS:
        raise OutputError(f"a map is an HTML page: {os.fspath(path)} should end in .html "
                          f"(not {suffix or 'no extension'})")
    return check_output_path(path, overwrite=overwrite, inputs=inputs)


# ------------------------------------------------------------------------ geometry
def _footprint_lonlat(tile: str) -> np.ndarray | None:
    """The outline of the tile's pixel grid in lon/lat (densified), or None if unreadable."""
    from .raster import open_tile

    try:
        with open_tile(tile) as ds:
            t = np.linspace(0.0, 1.0, 21)
            w, h = float(ds.width), float(ds.height)
            cols = np.concatenate([t * w, np.full(21, w), (1 - t) * w, np.zeros(21)])
            rows = np.concatenate([np.zeros(21), t * h, np.full(21, h), (1 - t) * h])
            x, y = ds.transform * (cols, rows)
            lon, lat = geo.transformer(ds.crs, geo.WGS84).transform(np.asarray(x), np.asarray(y))
    except (QueueMeasureError, OSError):
        return None
    return np.column_stack([lon, lat])


def _road_between(ll: np.ndarray, st: np.ndarray, a: float, b: float) -> np.ndarray:
    """The road from station ``a`` to ``b`` (metres): its vertices between, ends interpolated."""
    def at(s: float) -> list[float]:
        return [float(np.interp(s, st, ll[:, 0])), float(np.interp(s, st, ll[:, 1]))]

    inside = ll[(st > a) & (st < b)]
    return np.vstack([at(a), *inside, at(b)]) if len(inside) else np.array([at(a), at(b)])


def _line(coords: Any, precision: int | None, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "LineString", "coordinates": round_coords(coords, precision)}}


def _fc(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


# ------------------------------------------------------------------------ layers
def _add_footprint(folium: Any, m: Any, result: "QueueResult") -> bool:
    fp = _footprint_lonlat(result.tile)
    if fp is None:
        return False
    feat = {"type": "Feature", "properties": {"role": "tile"},
            "geometry": {"type": "Polygon", "coordinates": [round_coords(fp, 6)]}}
    folium.GeoJson(_fc([feat]), name="tile footprint", tooltip="tile footprint",
                   style_function=lambda f: {"color": "#333333", "weight": 1.5, "fill": False,
                                             "dashArray": "6 4", "className": "qm-tile"}).add_to(m)
    return True


def _add_road(folium: Any, m: Any, ll: np.ndarray, others: list[np.ndarray], exact: bool,
              precision: int | None) -> None:
    feats = [_line(ll, precision, part="searched" if exact else "queue only")]
    feats += [_line(o, precision, part="other side of the head") for o in others if len(o) >= 2]
    folium.GeoJson(
        _fc(feats), name="searched road",
        style_function=lambda f: {
            "color": "#444444" if f["properties"]["part"] != "other side of the head" else "#888888",
            "weight": 3, "opacity": 0.8, "className": "qm-road",
            **({"dashArray": "8 6"} if f["properties"]["part"] == "other side of the head" else {}),
        },
        tooltip=folium.GeoJsonTooltip(fields=["part"], aliases=["road"]),
    ).add_to(m)


def _add_occluded(folium: Any, m: Any, result: "QueueResult", ll: np.ndarray, st: np.ndarray,
                  precision: int | None) -> None:
    stretches = (result.profile or {}).get("occluded_m")
    if stretches is None:
        stretches = [(a * 1000.0, b * 1000.0) for a, b in result.occluded_stretches_km]
    feats = [
        _line(_road_between(ll, st, float(a), float(b)), precision,
              km=f"{a / 1000:.3f}-{b / 1000:.3f}", metres=round(float(b - a), 1))
        for a, b in np.asarray(stretches, float).reshape(-1, 2) if b > a
    ]
    if not feats:
        return
    folium.GeoJson(
        _fc(feats), name=f"occluded stretches ({len(feats)})",
        style_function=lambda f: {"color": C_OCC, "weight": 8, "opacity": 0.6, "lineCap": "butt",
                                  "className": "qm-occluded"},
        tooltip=folium.GeoJsonTooltip(fields=["km", "metres"], aliases=["occluded, km", "metres"]),
    ).add_to(m)


def _vehicle_class(p: dict[str, Any]) -> str:
    return "queued" if p["in_queue"] else ("free" if p["score"] >= 1.0 else "weak")


def _add_vehicles(folium: Any, m: Any, result: "QueueResult", precision: int | None) -> None:
    if not result.vehicles:
        return
    feats = []
    for i, v in enumerate(result.vehicles):
        f = v.to_feature(precision)
        p = f["properties"]
        f["id"] = i
        f["properties"] = {"kind": p["kind"], "in_queue": p["in_queue"], "score": round(p["score"], 2),
                           "s0_m": round(p["s0_m"], 1), "s1_m": round(p["s1_m"], 1)}
        feats.append(f)
    n = len(feats)
    folium.GeoJson(
        _fc(feats), name=f"vehicles ({result.vehicle_count} queued of {n})",
        style_function=lambda f: dict(_VEHICLE_STYLE[_vehicle_class(f["properties"])],
                                      className="qm-vehicle"),
        tooltip=folium.GeoJsonTooltip(fields=["kind", "in_queue", "score", "s0_m", "s1_m"],
                                      aliases=["kind", "queued", "score", "from head, m", "to, m"]),
    ).add_to(m)


def _add_queue(folium: Any, m: Any, result: "QueueResult", precision: int | None) -> None:
    q = np.asarray(result.queue_lonlat, float).reshape(-1, 2)
    if len(q) < 2:
        return
    bound = "at least " if result.truncated else ""
    label = f"queue: {bound}{result.length_km:.3f} km, {result.vehicle_count} vehicles"
    folium.GeoJson(
        _fc([_line(q, precision, role="queue", length_km=result.length_km)]), name=label,
        style_function=lambda f: {"color": C_QUEUE, "weight": 6, "opacity": 0.6,
                                  "className": "qm-queue"},
        tooltip=label,
    ).add_to(m)


def _add_ends(folium: Any, m: Any, result: "QueueResult") -> None:
    group = folium.FeatureGroup(name="head and tail")
    lon, lat = result.head_lonlat
    folium.CircleMarker((lat, lon), radius=8, color="white", weight=2, fill_color=C_HEAD,
                        fill_opacity=1.0, class_name="qm-head",
                        tooltip=f"head {lon:.6f}, {lat:.6f}").add_to(group)
    if result.tail_lonlat is not None:
        lon, lat = result.tail_lonlat
        why = f" (truncated: {result.truncation_reason}; lower bound)" if result.truncated else ""
        folium.CircleMarker((lat, lon), radius=8, color="white", weight=2, fill_color=C_TAIL,
                            fill_opacity=1.0, class_name="qm-tail",
                            tooltip=f"tail {lon:.6f}, {lat:.6f}{why}").add_to(group)
    group.add_to(m)


def _caption(result: "QueueResult", footprint: bool) -> str:
    lo, hi = result.length_km_range
    bound = "at least " if result.truncated else ""
    lines = [
        f"<b>queue {bound}{result.length_km:.3f} km</b> (range {lo:.3f}-{hi:.3f} km), "
        f"{result.vehicle_count} vehicles",
        html.escape(f"{os.path.basename(str(result.tile)) or result.tile}, "
                    f"{result.gsd_m:.2f} m pixel, max gap {result.max_gap_m:g} m"),
    ]
    if result.truncated:
        lines.append(html.escape(f"truncated ({result.truncation_reason}): a lower bound"))
    if not footprint:
        lines.append("tile not readable here: no footprint drawn")
    if result.synthetic:
        lines.append('<b style="color:#c0392b">SYNTHETIC tile: not a real image</b>')
    return ('<div class="qm-caption" style="position:absolute;bottom:28px;right:10px;z-index:1000;'
            'background:rgba(255,255,255,0.9);padding:4px 8px;border-radius:4px;'
            'font:12px/1.4 sans-serif;max-width:360px">' + "<br>".join(lines) + "</div>")


def _bounds(result: "QueueResult", ll: np.ndarray) -> list[list[float]]:
    pts = np.asarray(result.queue_lonlat, float).reshape(-1, 2)
    pts = np.vstack([pts, np.asarray(result.head_lonlat, float)[None]])
    if len(pts) < 3:  # no queue: the searched road
        pts = np.vstack([pts, ll])
    (w, s), (e, n) = pts.min(axis=0), pts.max(axis=0)
    return [[float(s), float(w)], [float(n), float(e)]]


# ------------------------------------------------------------------------ assets
def _raw(text: str) -> Any:
    """A branca element written as is (no template: Leaflet and file names hold braces)."""
    from branca.element import Element

    el = Element()
    el.render = lambda **kwargs: text  # type: ignore[method-assign]
    return el


def _leaflet_assets() -> tuple[str, str] | None:
    """Leaflet's JavaScript and CSS (images inlined) from xstatic-leaflet, or None."""
    try:
        import xstatic.pkg.leaflet as xl
    except ImportError:
        return None
    base = Path(xl.BASE_DIR)
    js = re.sub(r"//# sourceMappingURL=\S+", "", (base / "leaflet.js").read_text(encoding="utf-8"))
    css = (base / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(mo: re.Match[str]) -> str:
        img = base / mo.group(1)
        return f"url(data:image/png;base64,{base64.b64encode(img.read_bytes()).decode('ascii')})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, css)
    return js.replace("</script", "<\\/script"), css


def _embed_leaflet(m: Any) -> None:
    """Replace the map's CDN links (Leaflet, jQuery, Bootstrap, ...) by Leaflet inline.

    The layers drawn here need Leaflet only. Without xstatic-leaflet the CDN links stay
    (the page then needs network) and a warning says how to embed them.
    """
    assets = _leaflet_assets()
    if assets is None:
        warnings.warn("the map links Leaflet from a CDN (it needs network to open): "
                      "pip install xstatic-leaflet to embed it", QueueMeasureWarning, stacklevel=3)
        return
    js, css = assets
    m.default_js = []
    m.default_css = []
    header = m.get_root().header
    header.add_child(_raw(f"<style>{css}</style>"), name="leaflet_css_inline")
    header.add_child(_raw(f"<script>{js}</script>"), name="leaflet_js_inline")


# ------------------------------------------------------------------------ public
def explore(result: "QueueResult", *, tiles: str | None = "OpenStreetMap", road: Any = None,
            road_crs: Any = None, precision: int | None = 7, embed_leaflet: bool = True,
            height: str | int = "100%") -> Any:
    """An interactive folium map of ``result``.

    Parameters
    ----------
    result : QueueResult
    tiles : str or None
        A folium basemap name or URL template; None draws no basemap (offline).
    road, road_crs : optional
        The road given to :func:`queuemeasure.measure`, only needed when the result does
        not carry the searched road (``result.profile["road_lonlat"]``).
    precision : int or None
        Decimals of the coordinates in the page (7: about 1 cm); None keeps them all.
    embed_leaflet : bool
        Put Leaflet in the page (from xstatic-leaflet), so that it opens without network;
        False links it from folium's CDN.
    height : str or int
        Height of the map in a notebook (CSS, e.g. "500px").

    Returns
    -------
    folium.Map
        Its ``save(path)`` writes one self-contained HTML page.

    Raises
    ------
    MissingDependencyError
        When folium is not installed.
    """
    folium = require_folium()
    ll, st, others, exact = _searched_road(result, road, road_crs)
    m = folium.Map(tiles=tiles, control_scale=True, height=height)
    footprint = _add_footprint(folium, m, result)
    _add_road(folium, m, ll, others, exact, precision)
    _add_occluded(folium, m, result, ll, st, precision)
    _add_queue(folium, m, result, precision)  # under the vehicles, which stay visible
    _add_vehicles(folium, m, result, precision)
    _add_ends(folium, m, result)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds(_bounds(result, ll))
    m.get_root().html.add_child(_raw(_caption(result, footprint)), name="qm_caption")
    if embed_leaflet:
        _embed_leaflet(m)
    return m


def map_html(m: Any) -> str:
    """The whole HTML page of a folium map, as a string."""
    return m.get_root().render()


def write_map(result: "QueueResult", path: str | os.PathLike[str], *, overwrite: bool = False,
              tiles: str | None = "OpenStreetMap", road: Any = None, road_crs: Any = None,
              **kwargs: Any) -> str:
    """Write :func:`explore`'s map of ``result`` to ``path`` (``.html``), atomically.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    OutputError
        Not an ``.html`` path, or it exists and ``overwrite`` is false, or it cannot be
        written; nothing is left behind on failure.
    MissingDependencyError
        When folium is not installed.
    """
    check_map_path(path, overwrite=overwrite, inputs=[result.tile])
    page = map_html(explore(result, tiles=tiles, road=road, road_crs=road_crs, **kwargs))
    with atomic_writer(path, "w", overwrite=overwrite) as fh:
        fh.write(page)
    return os.fspath(path)
