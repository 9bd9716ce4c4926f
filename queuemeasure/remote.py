"""Failures of remote tiles: the server's (:class:`RemoteError`, exit 1) or the input's.

A tile given as a URL (``https://...``, ``/vsicurl/...``, ``s3://...``) is opened by GDAL,
which says why it could not be in the error it raises (GDAL 3.10, through rasterio):

- ``HTTP response code: 404`` (any status the server answered instead of the file);
- ``CURL error: Could not resolve host: ...``, ``CURL error: Failed to connect to ...``,
  ``CURL error: Operation too slow. Less than 1 bytes/sec transferred the last 8 seconds``
  (no answer: DNS, connection refused, timeouts set by ``GDAL_HTTP_*``);
- ``... does not exist in the file system ...`` (the file's size could not be had; older
  GDAL says only this after a first failed attempt on the same URL);
- for ``s3://`` and ``/vsis3/``, the object store's answer as a ``CPLE_AWS*`` error
  (object or bucket not found, access denied, an invalid response), except missing or
  wrong credentials, which are the user's set-up (exit 2).

All of these are the server's failure, whatever the status: 404 and 403 included, as for
the assets of a STAC item. Only a file the server delivered but GDAL cannot read as a
raster (an HTML page, a text file) is the user's bad input (:class:`RasterError`).

Once the tile is open, a read that fails (the server dies, refuses a range request, or
stops answering) is a server failure too: GDAL reports it as a failed block read (the
HTTP status only goes to its log, shown with ``-v``).
"""

from __future__ import annotations

import contextlib
import http
import os
import re
import urllib.parse
from typing import Iterator

from .errors import QueueMeasureError, RasterError, RasterReadError, RemoteError

__all__ = ["http_status", "curl_error", "open_failure", "read_failure", "remote_reads"]

_STATUS = re.compile(r"HTTP (?:response|error) code(?: on \S+)?:\s*(\d{1,3})\b|response_code=(\d{1,3})\b")
_CURL = re.compile(r"CURL error:\s*(.+)")
#: rasterio's classes for GDAL's object-store errors: the server's answer, or the user's credentials
_AWS_SERVER = ("CPLE_AWSObjectNotFoundError", "CPLE_AWSBucketNotFoundError", "CPLE_AWSAccessDeniedError",
               "CPLE_AWSError")
_AWS_CREDENTIALS = ("CPLE_AWSInvalidCredentialsError", "CPLE_AWSSignatureDoesNotMatchError")
_HINTS = {
    401: "access refused: a private file, or credentials needed",
    403: "access refused: a private file, a requester-pays bucket or an expired signed URL?",
    404: "no file at this URL: check it, or the file was moved or removed",
    410: "the file was removed",
    429: "too many requests: try again later",
}


def http_status(message: str) -> int | None:
    """The HTTP status a GDAL error message reports (``HTTP response code: 404``), if any."""
    m = _STATUS.search(message)
    return int(m.group(1) or m.group(2)) if m else None


def curl_error(message: str) -> str | None:
    """The curl error a GDAL error message reports (``CURL error: ...``), if any."""
    m = _CURL.search(message)
    return m.group(1).strip() if m else None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _server_said(code: int) -> str:
    """What the server answered, in words: ``the server answered HTTP 404 Not Found (...)``."""
    if code == 0:  # GDAL's "HTTP response code: 0": no answer at all
        return "no HTTP answer (the connection or its TLS handshake failed)"
    try:
        words = f"HTTP {code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        words = f"HTTP {code}"
    hint = _HINTS.get(code) or ("a server error: try again later" if code >= 500 else "")
    return f"the server answered {words} ({hint})" if hint else f"the server answered {words}"


def _cause_class(exc: BaseException) -> str:
    """The class name of the GDAL error under a rasterio error (``CPLE_AWSAccessDeniedError``...)."""
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause is not None else ""


def open_failure(name: str, exc: BaseException) -> QueueMeasureError:
    """The error to raise when GDAL could not open the remote tile ``name``.

    Parameters
    ----------
    name : str
        The tile as the user gave it (URL or ``/vsi...`` path).
    exc : Exception
        What ``rasterio.open`` raised.

    Returns
    -------
    RemoteError
        The server answered an HTTP error status, could not be reached, or did not
        deliver the file.
    RasterError
        The server delivered something GDAL cannot read as a raster, or the object
        store's credentials are missing or wrong.
    """
    msg = _first_line(exc)
    kind = _cause_class(exc)
    if kind in _AWS_CREDENTIALS:
        return RasterError(f"cannot open the remote tile {name}: the object store's credentials are missing "
                           f"or wrong (AWS_* settings; AWS_NO_SIGN_REQUEST=YES for a public bucket): {msg}")
    if kind in _AWS_SERVER:
        return RemoteError(f"cannot fetch the remote tile {name}: the object store answered: {msg}")
    code = http_status(msg)
    if code is not None:
        return RemoteError(f"cannot fetch the remote tile {name}: {_server_said(code)}")
    curl = curl_error(msg)
    if curl is not None:
        return RemoteError(f"cannot reach the server of the remote tile {name}: {curl}")
    if "does not exist in the file system" in msg:
        return RemoteError(f"cannot fetch the remote tile {name}: the server did not deliver it "
                           "(unreachable or refused; -v shows GDAL's messages)")
    return RasterError(f"remote tile {name} is not a readable raster (is it a GeoTIFF?): {msg}")


def read_failure(name: str, exc: BaseException) -> RemoteError:
    """The error for a read of the opened remote tile ``name`` that failed (``exc``)."""
    cause = exc.__cause__ or exc.__context__ or exc
    detail = _first_line(exc)
    if isinstance(exc, RasterReadError):  # "failed to read ... of NAME ...: GDAL's words"
        detail = detail.split(": ", 1)[-1]
    elif cause is not exc:
        detail = _first_line(cause)
    code = http_status(detail)
    said = _server_said(code) if code is not None else curl_error(detail)
    return RemoteError(
        f"reading the remote tile {name} failed after it was opened (the server stopped answering, "
        f"refused a range request or timed out): {said or detail}"
    )


def _concerns(name: str, exc: BaseException) -> bool:
    """Whether a read error raised while ``name`` was open is about ``name``.

    :class:`RasterReadError` names the dataset; a raw rasterio error names, in GDAL's
    cause, the file's base name (``b.tif, band 1: IReadBlock failed ...``).
    """
    if isinstance(exc, RasterReadError):
        return name in str(exc)
    base = os.path.basename(urllib.parse.urlparse(name.split("/vsicurl/", 1)[-1]).path)
    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    return bool(base) and base in text


@contextlib.contextmanager
def remote_reads(name: str) -> Iterator[None]:
    """Turn the failed reads of the open remote tile ``name`` into :class:`RemoteError`.

    Errors about other datasets (a local reference read inside this block) pass through.
    """
    from rasterio.errors import RasterioIOError

    try:
        yield
    except (RasterReadError, RasterioIOError) as exc:
        if not _concerns(name, exc):
            raise
        raise read_failure(name, exc) from None
