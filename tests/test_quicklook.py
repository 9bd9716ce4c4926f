"""The quicklook PNG: drawn for painted scenes, written atomically, never clobbering."""

from __future__ import annotations

import pytest

import queuemeasure as qm
from queuemeasure.errors import OutputError
from scenes import blank_across_road, paint_scene

pytest.importorskip("matplotlib")

from queuemeasure.quicklook import OVERVIEW_MAX_PX, plot_result, write_quicklook  # noqa: E402


@pytest.fixture(scope="module")
def short_scene(tmp_path_factory):
    """A 200 m queue on a 600 m road (UTM)."""
    s = paint_scene(tmp_path_factory.mktemp("ql_short"), road_len=600, queue_len=200, name="short")
    return s, qm.measure(s.path, s.road_path, head=s.head)


@pytest.fixture(scope="module")
def truncated_scene(tmp_path_factory):
    """A queue running off the image edge, with 40 m of nodata across the road."""
    d = tmp_path_factory.mktemp("ql_trunc")
    s = paint_scene(d, crs="EPSG:4326", road_len=1100, queue_len=900, extent_m=650, name="trunc")
    blank_across_road(s, 300.0, 340.0)
    return s, qm.measure(s.path, s.road_path, head=s.head)


def _png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_short_queue_quicklook(short_scene, tmp_path):
    s, r = short_scene
    out = tmp_path / "q.png"
    assert write_quicklook(r, out, road=s.road_path) == str(out)
    w, h = _png_size(out)
    assert (w, h) == (1600, 1000)
    assert 50_000 < out.stat().st_size < 5_000_000
    assert not list(tmp_path.glob(".*.part"))


def test_truncated_occluded_quicklook_without_road(truncated_scene, tmp_path):
    s, r = truncated_scene
    assert r.truncated and r.occluded_stretches_km
    out = tmp_path / "q.png"
    write_quicklook(r, out, dpi=60)  # only the queue line is known: still a picture
    assert _png_size(out) == (960, 600)


def test_dpi_scales_the_picture(short_scene, tmp_path):
    s, r = short_scene
    out = tmp_path / "small.png"
    write_quicklook(r, out, road=s.road_path, dpi=50)
    assert _png_size(out) == (800, 500)


def test_refuses_to_overwrite(short_scene, tmp_path):
    s, r = short_scene
    out = tmp_path / "q.png"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        write_quicklook(r, out)
    assert out.read_bytes() == b"keep me"
    write_quicklook(r, out, overwrite=True)
    assert _png_size(out) == (1600, 1000)


def test_no_partial_file_on_error(short_scene, tmp_path, monkeypatch):
    s, r = short_scene
    out = tmp_path / "q.png"
    from matplotlib.figure import Figure

    def boom(self, fh, **kw):
        fh.write(b"\x89PNG half a picture")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_quicklook(r, out)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_an_output_error(short_scene, tmp_path):
    _, r = short_scene
    with pytest.raises(OutputError, match="directory"):
        write_quicklook(r, tmp_path / "nope" / "q.png")


def test_overview_is_decimated_and_reads_only_windows(short_scene, read_calls):
    """The map is read with out_shape (<= OVERVIEW_MAX_PX) and never at full size."""
    s, r = short_scene
    calls = read_calls
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        plot_result(r, ax, what="map", road=s.road_path)
    finally:
        plt.close(fig)
    assert calls and all(w is not None for w, _ in calls)
    for _, shape in calls:
        if shape is not None:
            assert max(shape[-2:]) <= OVERVIEW_MAX_PX


@pytest.mark.parametrize("what", ["map", "profile", "head", "tail", "occlusion"])
def test_plot_result_panels(truncated_scene, what):
    import matplotlib.pyplot as plt

    s, r = truncated_scene
    fig, ax = plt.subplots()
    try:
        assert plot_result(r, ax, what=what, road=s.road_path) is ax
    finally:
        plt.close(fig)


def test_plot_result_rejects_unknown_panel(short_scene):
    with pytest.raises(ValueError, match="map, profile"):
        plot_result(short_scene[1], what="everything")


def test_empty_road_quicklook(tmp_path):
    s = paint_scene(tmp_path, road_len=300, queue_len=0, name="empty")
    r = qm.measure(s.path, s.road_path, head=s.head)
    assert r.vehicle_count == 0
    out = tmp_path / "q.png"
    write_quicklook(r, out, road=s.road_path, dpi=40)
    assert _png_size(out) == (640, 400)


def test_matplotlib_not_imported_by_measure():
    import subprocess
    import sys

    code = ("import sys, queuemeasure, queuemeasure.quicklook, queuemeasure.result; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
