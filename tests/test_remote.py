"""A plain remote tile (a URL, not a STAC item) that fails: the server's failure is exit 1.

A SYNTHETIC painted scene (tests/scenes.py) is served as a COG by the range-capable
server of tests/httpserver.py on 127.0.0.1. Every way the server can fail, at opening
(HTTP 404/403/5xx, refused, no such host, no answer) or part way (it dies, or answers
5xx, after the header was read), gives exit 1 and one line through ``measure``, ``info``
and ``--reference``; a file the server delivers that is not a raster is bad input (exit
2). Timeouts are set far below the server's delays: nothing here depends on timing.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import rasterio
import rasterio.shutil

from clicheck import fails, run
from httpserver import RangeServer
from scenes import paint_scene

from queuemeasure.errors import RasterError, RasterReadError, RemoteError
from queuemeasure.raster import open_tile
from queuemeasure.remote import curl_error, http_status, open_failure, remote_reads

#: GDAL timeouts for the slow-server cases: 1 s against a server sleeping 30 s per request
FAST_GIVE_UP = {"GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_LOW_SPEED_TIME": "1", "GDAL_HTTP_MAX_RETRY": "0",
                "GDAL_HTTP_CONNECTTIMEOUT": "1"}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A SYNTHETIC painted scene, its COG copy, and where the COG's pixel blocks start."""
    d = tmp_path_factory.mktemp("remote")
    sc = paint_scene(d, crs="utm", road_len=500, queue_len=260, name="remote")
    cog = d / "remote_cog.tif"
    rasterio.shutil.copy(sc.path, cog, driver="COG", blocksize=256, compress="DEFLATE", overviews="NONE")
    with rasterio.open(cog) as ds:
        bh, bw = ds.block_shapes[0]
        first = min(int(ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1))
                    for r in range(-(-ds.height // bh)) for c in range(-(-ds.width // bw)))
    return sc, cog, first


@pytest.fixture(scope="module")
def local(scene):
    sc, cog, _ = scene
    res = run("measure", cog, "--road", sc.road_path, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_served_tile_measures_as_the_local_file(scene, local, server):
    sc, cog, _ = scene
    for url in (server.add_file("/ok/tile.tif", cog), "/vsicurl/" + server.add_file("/ok/vsi.tif", cog)):
        res = run("measure", url, "--road", sc.road_path, "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["length_km"] == local["length_km"]


@pytest.mark.parametrize("status, needle", [(404, "404 Not Found"), (403, "403 Forbidden"),
                                            (500, "500 Internal Server Error"), (503, "503")])
def test_http_error_status_is_a_server_failure(scene, server, status, needle):
    sc, cog, _ = scene
    url = server.add_file(f"/status/{status}.tif", cog)
    server.fail[f"/status/{status}.tif"] = status
    for tile in (url, "/vsicurl/" + url):
        line = fails(run("measure", tile, "--road", sc.road_path, "--json"), 1, needle=needle)
        assert url in line
    fails(run("info", url), 1, needle=needle)


def test_unknown_url_is_a_server_failure_as_for_stac_assets(scene, server):
    """404 for a URL the user typed: the server's answer, exit 1 (README, remote tiles)."""
    sc, _, _ = scene
    fails(run("measure", server.url("/nowhere/tile.tif"), "--road", sc.road_path), 1, needle="404")


def test_unreachable_server_is_a_server_failure(scene):
    sc, _, _ = scene
    refused = f"http://127.0.0.1:{_closed_port()}/tile.tif"
    fails(run("measure", refused, "--road", sc.road_path, "--json"), 1, needle="cannot reach")
    # the same URL again in this process: GDAL remembers the failure and now says only that
    # the file "does not exist in the file system": still the server's failure
    fails(run("info", refused), 1, needle=refused)
    fails(run("info", refused.replace("tile.tif", "info.tif")), 1, needle="cannot reach")
    # .invalid never resolves (RFC 2606)
    fails(run("measure", "https://no-such-host.invalid/tile.tif", "--road", sc.road_path), 1,
          needle="resolve host")


def test_a_silent_server_times_out_as_a_server_failure(scene):
    sc, cog, _ = scene
    with RangeServer() as slow:
        url = slow.add_file("/slow/tile.tif", cog)
        slow.delay_s = 30.0  # far beyond the 1 s GDAL is given
        fails(run("measure", url, "--road", sc.road_path, "--json", env=FAST_GIVE_UP), 1, needle="cannot reach")


def test_not_a_raster_is_bad_input(scene, server, tmp_path):
    sc, _, _ = scene
    page = tmp_path / "page.html"
    page.write_text("<html><body>Sign in to download</body></html>\n")
    url = server.add_file("/page/tile.tif", page)
    fails(run("measure", url, "--road", sc.road_path, "--json"), 2, needle="not a readable raster")


@pytest.mark.parametrize("status", [0, 503])
def test_a_server_failing_after_the_header_is_a_server_failure(scene, status):
    """The header is served, then every block request is refused (503) or hung up on (0)."""
    sc, cog, first_block = scene
    with RangeServer() as srv:
        url = srv.add_file(f"/late/{status}.tif", cog)
        srv.broken_from, srv.broken_status = first_block, status
        line = fails(run("measure", url, "--road", sc.road_path, "--json", env=FAST_GIVE_UP), 1,
                     needle="after it was opened")
        assert url in line
        assert any(h.range and int(h.range[6:].split("-")[0]) >= first_block for h in srv.stats.hits)


def test_a_remote_reference_that_fails_is_a_server_failure(scene, server):
    sc, cog, _ = scene
    line = fails(run("measure", cog, "--road", sc.road_path, "--mode", "occupancy", "--reference",
                     server.url("/gone/ref.tif"), "--json"), 1, needle="404")
    assert line.startswith("Error: reference: ")


@pytest.mark.parametrize("how", ["503", "hang-up", "silent"])
def test_library_read_failure_after_open(scene, monkeypatch, how):
    """Open, then the server fails: 503, hangs up, or goes silent (30 s against GDAL's 1 s)."""
    from queuemeasure.corridor import BlockSampler

    sc, cog, first_block = scene
    for k, v in FAST_GIVE_UP.items():
        monkeypatch.setenv(k, v)
    with RangeServer() as srv:
        url = srv.add_file(f"/lib/{how}.tif", cog)
        with pytest.raises(RemoteError, match="after it was opened"):
            with open_tile(url) as ds:
                if how == "silent":
                    srv.delay_s = 30.0
                else:
                    srv.broken_from, srv.broken_status = first_block, 503 if how == "503" else 0
                BlockSampler(ds, [1, 2, 3]).sample(np.array([ds.height - 10.0]), np.array([ds.width - 10.0]))


def test_a_read_error_of_another_dataset_passes_through():
    """A local reference's read failing inside the remote tile's block stays its own error."""
    with pytest.raises(RasterReadError, match="local.tif"):
        with remote_reads("https://example.org/tile.tif"):
            raise RasterReadError("failed to read pixels of /data/local.tif at block row 0, col 0: boom")
    with pytest.raises(RemoteError, match="tile.tif"):
        with remote_reads("https://example.org/tile.tif"):
            raise RasterReadError("failed to read pixels of https://example.org/tile.tif at block row 0, "
                                  "col 0 (is the file truncated or corrupt?): TIFFReadEncodedTile() failed.")


@pytest.mark.parametrize("message, kind, code", [
    ("HTTP response code: 404", RemoteError, 404),
    ("HTTP response code: 0", RemoteError, 0),
    ("HTTP error code: 503 - http://x/t.tif. Retrying again in 1.0 secs", RemoteError, 503),
    ("Request for 10-20 failed with response_code=403", RemoteError, 403),
    ("CURL error: Could not resolve host: no-such-host.invalid", RemoteError, None),
    ("'/vsicurl/http://x/t.tif' does not exist in the file system, and is not recognized as a "
     "supported dataset name.", RemoteError, None),
    ("'/vsicurl/http://x/t.tif' not recognized as being in a supported file format.", RasterError, None),
])
def test_gdal_messages_classified(message, kind, code):
    err = open_failure("http://x/t.tif", OSError(message))
    assert type(err) is kind and "http://x/t.tif" in str(err)
    assert http_status(message) == code
    assert (curl_error(message) is not None) == message.startswith("CURL")


def test_a_batch_row_with_a_failing_remote_tile(scene, server):
    """A batch row whose tile's server fails records the server's one line (batch exits 1)."""
    from queuemeasure.batch import measure_row

    sc, _, _ = scene
    out = measure_row(server.url("/batch/none.tif"), str(sc.road_path), {})
    assert out["status"] == "error" and "HTTP 404" in out["error"] and "internal error" not in out["error"]


def test_object_store_answers(scene, server):
    """s3:// through GDAL's /vsis3/ against the loopback server as the S3 endpoint."""
    sc, cog, _ = scene
    server.add_file("/bucket/tile.tif", cog)
    server.fail["/bucket/denied.tif"] = 403
    port = server.url().rsplit(":", 1)[1].strip("/")
    env = {"AWS_S3_ENDPOINT": f"127.0.0.1:{port}", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
           "AWS_NO_SIGN_REQUEST": "YES", "CPL_AWS_AUTODETECT_EC2": "NO"}
    res = run("measure", "s3://bucket/tile.tif", "--road", sc.road_path, "--json", env=env)
    assert res.exit_code == 0, res.output
    for key in ("none", "denied"):
        fails(run("measure", f"s3://bucket/{key}.tif", "--road", sc.road_path, env=env), 1,
              needle="object store answered")


@pytest.mark.parametrize("cls, kind", [("CPLE_AWSObjectNotFoundError", RemoteError),
                                       ("CPLE_AWSAccessDeniedError", RemoteError),
                                       ("CPLE_AWSInvalidCredentialsError", RasterError),
                                       ("CPLE_AWSSignatureDoesNotMatchError", RasterError)])
def test_object_store_errors_classified(cls, kind):
    import rasterio._err
    from rasterio.errors import RasterioIOError

    try:
        try:
            raise getattr(rasterio._err, cls)(1, 2, "the store's words")
        except Exception as cause:
            raise RasterioIOError("the store's words") from cause
    except RasterioIOError as exc:
        assert type(open_failure("s3://b/t.tif", exc)) is kind
