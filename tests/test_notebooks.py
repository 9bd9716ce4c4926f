"""The notebooks in notebooks/ run top to bottom on the bundled data (issue 6).

Each is executed with nbclient in a fresh kernel, from the notebooks/ directory, with a
per-cell timeout; any error fails the test. A notebook is skipped only when the data it
needs is missing (say a checkout without the big sample), with the reason.
"""

from __future__ import annotations

import json

import pytest

from conftest import REALDATA, ROOT, SAMPLES

NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 300
MAX_BYTES = 1_000_000

NEEDS = {
    "01_upper_lars.ipynb": [
        SAMPLES / "upper_lars_2022-09-26_SYNTHETIC.tif",
        SAMPLES / "upper_lars_2022-09-26_SYNTHETIC_maxar_cut.tif",
        SAMPLES / "upper_lars_2022-09-26_SYNTHETIC.road.geojson",
        SAMPLES / "upper_lars_2022-09-26_SYNTHETIC.truth.geojson",
    ],
    "02_your_own_imagery.ipynb": [
        SAMPLES / "curve_utm_SYNTHETIC.tif",
        SAMPLES / "curve_utm_SYNTHETIC.road.geojson",
        SAMPLES / "curve_utm_SYNTHETIC.truth.geojson",
        SAMPLES / "curve_3857_SYNTHETIC.tif",
        SAMPLES / "curve_3857_SYNTHETIC.road.geojson",
    ],
    "03_how_it_works.ipynb": [REALDATA / "kit_ais_munich_queue" / "MOS160.png"],
    "04_checking_a_claim.ipynb": [
        SAMPLES / "upper_lars_2022-09-26_S2_SYNTHETIC.tif",
        SAMPLES / "upper_lars_2022-09-21_S2_reference_SYNTHETIC.tif",
        SAMPLES / "upper_lars_2022-09-26_S2_SYNTHETIC.road.geojson",
        SAMPLES / "upper_lars_2022-09-26_S2_SYNTHETIC.truth.geojson",
    ],
}


def _rel(p):
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NEEDS)


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_notebook_is_small_and_clean(name):
    path = NOTEBOOKS / name
    assert path.stat().st_size < MAX_BYTES, f"{name} is {path.stat().st_size} bytes: shrink its outputs"
    nb = json.loads(path.read_text())
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"]
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{name} was saved with an error output"


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_notebook_runs(name, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    missing = [p for p in NEEDS[name] if not p.exists()]
    if missing:
        pytest.skip(f"{name} needs {', '.join(_rel(p) for p in missing)}")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    # outputs stay small when executed (the committed copy is checked above)
    assert len(nbformat.writes(nb).encode()) < MAX_BYTES
