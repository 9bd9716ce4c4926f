"""Speed on coarse pixels (issue 15): a 20 km queue at 10 m with a reference, against the
same road length at 0.5 m (``benchmarks/results/speed.json``, case q20km).

    python benchmarks/coarse_speed.py          # renders once into the bench cache

The SYNTHETIC Sentinel-2-like L2A tile and its reference are rendered by
:mod:`queuemeasure.synth.sensor_render` (a 21.5 km road, 20 km queue, as speed.py's
q20km); the measurement is run three times in process and the fastest library time
(``QueueResult.elapsed_s``: both images' corridors read, aligned, normalised and
differenced) is printed beside speed.py's figure for 0.5 m. Writes
``benchmarks/results/coarse_speed.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("QUEUEMEASURE_BENCH_CACHE",
                            Path.home() / ".cache" / "queuemeasure-bench")) / "coarse_speed"


def main() -> int:
    import queuemeasure as qm
    from queuemeasure.synth import SceneSpec
    from queuemeasure.synth.sensor_render import render_sensor_scene

    CACHE.mkdir(parents=True, exist_ok=True)
    tile, ref = CACHE / "s2_20km.tif", CACHE / "s2_20km_reference.tif"
    if not (CACHE / "s2_20km.truth.geojson").exists():
        t0 = time.perf_counter()
        render_sensor_scene(SceneSpec(seed=11, road="valley", road_length_m=21500.0,
                                      queue_length_m=20000.0), tile, sensor="sentinel2",
                            product="l2a", reference=ref)
        print(f"rendered in {time.perf_counter() - t0:.0f} s")
    road = CACHE / "s2_20km.road.geojson"
    truth = json.loads((CACHE / "s2_20km.truth.geojson").read_text())["properties"]["length_km"]
    runs = []
    for with_ref in (True, False):
        best = None
        for _ in range(3):
            r = qm.measure(str(tile), str(road), reference=str(ref) if with_ref else None)
            best = r if best is None or r.elapsed_s < best.elapsed_s else best
        runs.append({"reference": with_ref, "elapsed_s": best.elapsed_s, "length_km": best.length_km,
                     "truth_km": truth, "blocks_read": best.blocks_read,
                     "low_confidence": best.low_confidence})
    fine = None
    sp = HERE / "results" / "speed.json"
    if sp.exists():
        c = json.loads(sp.read_text())["cases"].get("q20km", {})
        fine = (c.get("measure_inproc") or {}).get("inner_s")
    out = {"runs": runs, "fine_0.5m_q20km_inner_s": fine}
    (HERE / "results" / "coarse_speed.json").write_text(json.dumps(out, indent=1))
    for r in runs:
        print(f"10 m, {'with' if r['reference'] else 'without'} reference: {r['elapsed_s']:.2f} s "
              f"({r['length_km']:.2f} km, truth {r['truth_km']:.2f}; {r['blocks_read']} blocks)")
    if fine:
        print(f"0.5 m, same road length (speed.json q20km, in process): {fine:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
