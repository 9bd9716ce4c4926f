"""Size and time of the notebook views of a result (issue 20), on the 20 km Upper Lars sample.

    python benchmarks/notebook_views.py

Measures the SYNTHETIC sample once, then prints, for ``repr``, ``_repr_html_`` (with its
map thumbnail), ``to_geodataframe`` and ``explore`` + the saved page: characters or bytes
and wall time (best of ``--repeats`` runs; the first ``_repr_html_`` also pays for importing
matplotlib, reported apart).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import queuemeasure as qm  # noqa: E402
from queuemeasure.webmap import map_html  # noqa: E402

LARS = REPO / "sample_tiles" / "upper_lars_2022-09-26_SYNTHETIC"


def _best(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    truth = json.loads(LARS.with_suffix(".truth.geojson").read_text())["properties"]
    t = time.perf_counter()
    r = qm.measure(LARS.with_suffix(".tif"), LARS.with_suffix(".road.geojson"),
                   head=tuple(truth["head_lonlat"]), max_gap=truth["max_gap_m"])
    print(f"measure: {time.perf_counter() - t:.2f} s, {len(r.vehicles)} vehicles, "
          f"{r.length_km:.3f} km (SYNTHETIC sample)")
    t = time.perf_counter()
    import matplotlib  # noqa: F401
    import matplotlib.figure  # noqa: F401
    print(f"import matplotlib: {time.perf_counter() - t:.2f} s")
    rows = []
    s, text = _best(lambda: repr(r), args.repeats)
    rows.append(("repr(result)", f"{len(text)} chars", s))
    s, page = _best(r._repr_html_, args.repeats)
    rows.append(("result._repr_html_()", f"{len(page)} chars", s))
    s, gdf = _best(lambda: r.to_geodataframe("vehicles"), args.repeats)
    rows.append(('to_geodataframe("vehicles")', f"{len(gdf)} rows", s))
    s, m = _best(lambda: r.explore(tiles=None), args.repeats)
    rows.append(("explore(tiles=None)", "folium.Map", s))
    s, html = _best(lambda: map_html(m), args.repeats)
    rows.append(("its page (render)", f"{len(html.encode()) / 1e6:.2f} MB", s))
    with tempfile.TemporaryDirectory() as d:
        s, _ = _best(lambda: r.write_map(Path(d) / "q.html", tiles=None, overwrite=True), args.repeats)
    rows.append(("write_map(tiles=None)", "", s))
    print("| view | size | seconds (best) |\n|---|---|---|")
    for name, size, sec in rows:
        print(f"| {name} | {size} | {sec:.3f} |")


if __name__ == "__main__":
    main()
