"""``rio queue ...``: the real ``rio`` console script of this environment, in a subprocess.

rasterio's ``rio`` registers every ``rasterio.rio_plugins`` entry point under its click
command's own name, so this proves the group is named ``queue``. The subprocess gets this
checkout first on PYTHONPATH, so that it runs the code under test whatever checkout the
environment was installed from (the entry point itself comes from the installed metadata).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, SAMPLES
from queuemeasure.cli.main import cli

TILE = SAMPLES / "curve_utm_SYNTHETIC.tif"
ROAD = SAMPLES / "curve_utm_SYNTHETIC.road.geojson"


def _rio() -> Path:
    """The ``rio`` script beside the interpreter running the tests (a venv's bin/Scripts)."""
    here = Path(sys.executable).parent
    for name in ("rio", "rio.exe"):
        if (here / name).is_file():
            return here / name
    pytest.skip(f"no rio console script beside {sys.executable} (rasterio's CLI not installed here)")


def rio(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("QUEUEMEASURE_WORKERS", None)
    return subprocess.run([str(_rio()), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def without_timing(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "elapsed_s"}


def test_rio_lists_queue_and_its_commands():
    res = rio("--help")
    assert res.returncode == 0, res.stderr
    commands = [line.split()[0] for line in res.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert "queue" in commands and "cli" not in commands
    res = rio("queue", "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Usage: rio queue")
    for command in ("measure", "info", "trace", "batch", "synth"):
        assert f"\n  {command} " in res.stdout


def test_rio_queue_measure_prints_the_same_json_as_queuemeasure(tmp_path):
    res = rio("queue", "measure", TILE, "--road", ROAD, "--json")
    assert res.returncode == 0, res.stderr
    via_rio = json.loads(res.stdout)
    direct = CliRunner().invoke(cli, ["measure", str(TILE), "--road", str(ROAD), "--json"])
    assert direct.exit_code == 0, direct.output
    assert without_timing(via_rio) == without_timing(json.loads(direct.stdout))
    assert via_rio["vehicle_count"] > 0


def test_rio_queue_info_and_errors(tmp_path):
    res = rio("queue", "info", TILE, "--json")
    assert res.returncode == 0, res.stderr
    direct = CliRunner().invoke(cli, ["info", str(TILE), "--json"])
    assert json.loads(res.stdout) == json.loads(direct.stdout)
    res = rio("queue", "measure", TILE, "--road", ROAD, "--out", tmp_path / "q.xyz")
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "GeoPackage (.gpkg)" in lines[0]
    assert os.listdir(tmp_path) == []
