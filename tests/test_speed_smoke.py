"""Smoke run of the speed benchmark (``benchmarks/speed.py --quick``) so that it cannot rot.

It builds a small reference tile in a temporary cache, measures every case once and
checks that the table and the JSON come out with sane fields. There are deliberately no
timing assertions: speed is judged by the benchmark's own report, not by tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "speed.py"


@pytest.mark.slow
def test_quick_speed_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "speed_quick.json"
    env = dict(os.environ, QUEUEMEASURE_BENCH_CACHE=str(tmp_path / "cache"))
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    # the markdown table and the ratios are printed
    assert "| case | tile (px) |" in p.stdout
    assert "| ratio | value | target |" in p.stdout
    res = json.loads(out.read_text())
    assert res["mode"] == "quick"
    assert res["commit"]
    assert set(res["cases"]) == {"q2km", "q4km", "q4km-striped"}
    for name, case in res["cases"].items():
        for kind in ("decode_corridor", "measure_inproc", "measure_cli"):
            row = case[kind]
            assert row["wall_s"] > 0 and row["cpu_s"] > 0, (name, kind, row)
            # peak RSS of the measured process alone: above an interpreter's, far below
            # what a whole-tile read needs
            assert 5 < row["peak_rss_mb"] < 4000, (name, kind, row)
        assert case["decode_corridor"]["blocks"] > 0
        assert case["measure_inproc"]["blocks_read"] == case["decode_corridor"]["blocks"]
        assert case["measure_inproc"]["length_km"] >= 0
        assert case["measure_cli"]["length_km"] == pytest.approx(case["measure_inproc"]["length_km"])
    ref = res["cases"]["q4km"]
    assert ref["read_whole"]["shape"] == [3, 4000, 8000]
    # the reference case is measured on one process too, with the same result
    assert ref["measure_inproc_1proc"]["workers"] == 0
    assert ref["measure_inproc_1proc"]["length_km"] == ref["measure_inproc"]["length_km"]
    assert ref["measure_inproc_1proc"]["vehicle_count"] == ref["measure_inproc"]["vehicle_count"]
    assert ref["measure_inproc"]["workers"] in (0, 2)
    for key in ("cli_wall_over_whole_read", "cli_peak_rss_gb", "inproc_over_decode",
                "inproc_1proc_over_decode",
                "longest_over_half_inproc", "import_s", "help_s", "striped_peak_rss_gb"):
        assert res["ratios"][key] > 0, key
    assert res["startup"]["import"]["wall_s"] > 0
